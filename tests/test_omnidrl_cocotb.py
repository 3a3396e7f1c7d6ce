"""Tier 2: the OmniDRL top's cocotb testbench on the generated Verilog, on Icarus and Verilator."""

import pytest

from hdl.omnidrl import OmniDRLConfig
from tb.runner import SIMULATORS, run_cocotb


@pytest.mark.xdist_group("omnidrl")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_omnidrl_programs(sim):
    """Every test program (every mode and format on two banks with counters, TRANSPOSE, RAW/WAR,
    every error) on the tiny top, with random gaps and back-pressure on every port."""
    run_cocotb(OmniDRLConfig.preset("tiny"), sim, testcase="test_programs", tag="programs")
