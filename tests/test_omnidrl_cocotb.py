"""Tier 2: the OmniDRL top's cocotb testbench on the generated Verilog, on Icarus and Verilator."""

import pytest

from golden.workloads import SMALL_WORKLOADS
from hdl.omnidrl import OmniDRLConfig
from tb.runner import SIMULATORS, run_cocotb


@pytest.mark.xdist_group("omnidrl")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_omnidrl_programs(sim):
    """Every test program (every mode and format on two banks with counters, TRANSPOSE, RAW/WAR,
    every error) on the tiny top, with random gaps and back-pressure on every port."""
    run_cocotb(OmniDRLConfig.preset("tiny"), sim, testcase="test_programs", tag="programs")


@pytest.mark.xdist_group("omnidrl")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_omnidrl_td3_update(sim):
    """One complete TD3 update (critics, actor, targets) of the small agent in dense, GST
    circulant, GST group-sparse and element-masked dense (GST circ-fine, GMP), compiled by golden.compile_td3, host steps in Python between
    the chip segments: every segment's memory image equals golden.machine's, the agent read
    back equals TD3Agent.update's, bit for bit; gaps and back-pressure on every port."""
    run_cocotb(OmniDRLConfig.preset("tiny"), sim, testcase="test_td3_workload",
               extra_env={"TOP_WORKLOAD": ",".join(SMALL_WORKLOADS)}, tag="td3")
