"""Tier 2: the ECIM/MFEC unit's cocotb testbench on the generated Verilog, Icarus and Verilator."""

import pytest

from hdl.ecim import EcimConfig
from tb.runner import SIMULATORS, run_cocotb

# Icarus (4-state, slow) runs the small preset; Verilator runs the default and the baseline
# (no overlap) and fp32-output variants of it.
CASES = [
    ("icarus", "tiny", {}),
    ("verilator", "default", {}),
    ("verilator", "tiny", {"overlap": False, "out_format": "fp32", "zero_skip": False}),
]
assert {sim for sim, _, _ in CASES} == set(SIMULATORS)


@pytest.mark.xdist_group("ecim")
@pytest.mark.parametrize("sim,preset,overrides", CASES,
                         ids=[f"{s}-{p}" + "".join(f"-{k}={v}" for k, v in o.items()) for s, p, o in CASES])
def test_ecim_cocotb(sim, preset, overrides):
    dots = "150" if sim == "icarus" else "400"
    run_cocotb(EcimConfig.preset(preset, **overrides), sim, extra_env={"ECIM_DOTS": dots},
               tag="-".join(f"{k}{v}" for k, v in overrides.items()) or None)
