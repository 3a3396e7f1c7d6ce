"""Tier 2: the EMD encoder and decoder testbench (``tb.test_emd``) on Icarus and Verilator."""

import pytest

from flows.generate import generate_verilog
from hdl.emd import EmdDecoderConfig, EmdEncoderConfig
from tb.runner import SIMULATORS, run_cocotb

# Icarus gets the small preset and modest stimulus; Verilator the default preset, more values
# and every tensor of the committed TD3 trace.
SETTINGS = {
    "icarus": ("tiny", {"EMD_VALUES": "512", "EMD_TRACE": "0"}),
    "verilator": ("default", {"EMD_VALUES": "4096", "EMD_TRACE": "1"}),
}


@pytest.mark.xdist_group("emd")
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cls", [EmdEncoderConfig, EmdDecoderConfig], ids=["enc", "dec"])
def test_emd_cocotb(sim, cls):
    preset, env = SETTINGS[sim]
    cfg = cls.preset(preset)
    # The artefact name is the config hash only, so a file generated from an older hdl/emd.py
    # would be reused; regenerating costs about a second and keeps the test honest.
    generate_verilog(cfg, force=True)
    run_cocotb(cfg, sim, extra_env=env)


# With the optional CRC field: Icarus on tiny with CRC-16, Verilator on default with CRC-32 (the
# stream test, the bad streams and the damaged-stream fuzz; no trace).
CRC_SETTINGS = {
    "icarus": ("tiny", 16, {"EMD_VALUES": "512", "EMD_TRACE": "0", "EMD_DAMAGED": "40"}),
    "verilator": ("default", 32, {"EMD_VALUES": "4096", "EMD_TRACE": "0", "EMD_DAMAGED": "100"}),
}


@pytest.mark.xdist_group("emd")
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cls", [EmdEncoderConfig, EmdDecoderConfig], ids=["enc", "dec"])
def test_emd_cocotb_with_crc(sim, cls):
    preset, crc_bits, env = CRC_SETTINGS[sim]
    cfg = cls.preset(preset, fmt={"crc_bits": crc_bits})
    generate_verilog(cfg, force=True)
    run_cocotb(cfg, sim, extra_env=env, tag="crc")


# The pipelined codecs (``pipeline=1``): `tiny` on Icarus, the 16-lane `paper` preset on
# Verilator (more values and damaged streams); the stream tests, the bad streams and the
# damaged-stream fuzz, no trace. The decoder's record chain is vector operations (22k lines of
# Verilog at 16 lanes; the position-by-position chain before 2026-12-01 made 384k lines, which
# Verilator was still translating after 6 minutes).
PIPELINE_SETTINGS = {
    "icarus": ("tiny", {"EMD_VALUES": "512", "EMD_TRACE": "0", "EMD_DAMAGED": "40"}),
    "verilator": ("paper", {"EMD_VALUES": "4096", "EMD_TRACE": "0", "EMD_DAMAGED": "100"}),
}


@pytest.mark.xdist_group("emd")
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cls", [EmdEncoderConfig, EmdDecoderConfig], ids=["enc", "dec"])
def test_emd_cocotb_pipelined(sim, cls):
    preset, env = PIPELINE_SETTINGS[sim]
    cfg = cls.preset(preset, pipeline=1)
    generate_verilog(cfg, force=True)
    run_cocotb(cfg, sim, extra_env=env, tag="pipe")
