"""Tier 2: the GST core's cocotb testbench on the generated Verilog, on Icarus and Verilator."""

import pytest

from hdl.pe_array import PEArrayConfig
from tb.runner import SIMULATORS, run_cocotb


@pytest.mark.xdist_group("pe_array")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_pe_array_random_and_errors(sim):
    """Every mode and GEMM role, random shapes and edge values, bit- and cycle-exact; errors."""
    rounds = "1" if sim == "icarus" else "4"
    run_cocotb(PEArrayConfig.preset("tiny"), sim, testcase="random_every_mode|rejected_commands",
               extra_env={"PEA_ROUNDS": rounds, "PEA_SCALE": "1" if sim == "icarus" else "2"},
               tag="random")
