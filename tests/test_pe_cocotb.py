"""Tier 2: the PE's cocotb testbench on the generated Verilog, on Icarus and on Verilator."""

import pytest

from hdl.pe import PEConfig
from tb.runner import run_cocotb

CASES = [
    ("icarus", "default"),
    ("verilator", "tiny"),
    ("verilator", "default"),
    ("verilator", "paper"),
]


@pytest.mark.xdist_group("pe")
@pytest.mark.parametrize("sim,preset", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_pe_cocotb(sim, preset):
    run_cocotb(PEConfig.preset(preset), sim, extra_env={"PE_PAIRS": "12000"})
