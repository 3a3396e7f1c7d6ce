"""Tier 2: the EMD encoder and decoder testbench (``tb.test_emd``) on Icarus and Verilator."""

import pytest

from hdl.emd import EmdDecConfig, EmdEncConfig
from tb.runner import SIMULATORS, run_cocotb

# Icarus gets the small preset and modest stimulus; Verilator the default preset, more values
# and every tensor of the committed TD3 trace.
SETTINGS = {
    "icarus": ("tiny", {"EMD_VALUES": "512", "EMD_TRACE": "0"}),
    "verilator": ("default", {"EMD_VALUES": "4096", "EMD_TRACE": "0"}),
}


@pytest.mark.xdist_group("emd")
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cls", [EmdEncConfig, EmdDecConfig], ids=["enc", "dec"])
def test_emd_cocotb(sim, cls):
    preset, env = SETTINGS[sim]
    run_cocotb(cls.preset(preset), sim, extra_env=env)
