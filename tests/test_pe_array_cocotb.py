"""Tier 2: the GST core's cocotb testbench on the generated Verilog, on Icarus and Verilator."""

import pytest

from hdl.pe_array import PEArrayConfig
from tb.runner import SIMULATORS, run_cocotb


@pytest.mark.xdist_group("pe_array")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_pe_array_random_and_errors(sim):
    """Every mode and GEMM role, random shapes and edge values, bit- and cycle-exact; errors.
    On Verilator also the dense GEMMs of real TD3 layers (actor and critic 1 of the dense run,
    4 batch rows; the whole trace in every mode runs in ``bench/pe_array.py --trace``)."""
    tests = "random_every_mode|rejected_commands|bank_sequence" + ("|trace_layers" if sim == "verilator" else "")
    run_cocotb(PEArrayConfig.preset("tiny"), sim, testcase=tests,
               extra_env={"PEA_ROUNDS": "1" if sim == "icarus" else "4",
                          "PEA_SCALE": "1" if sim == "icarus" else "2",
                          "PEA_TRACE_BATCH": "4", "PEA_TRACE_METHODS": "dense",
                          "PEA_TRACE_NETS": "actor,critic1"},
               tag="random")


@pytest.mark.xdist_group("pe_array")
def test_pe_array_pruned_circulant_trace_layer():
    """The circ-prune stage trace's last stage, actor l2 (k = 16, pruned blocks), on the tiny
    array (k = 4), Verilator: a 4 x 4-block window of it (the one with the most pruned blocks,
    4 batch rows) as dense GEMMs on its expanded W, and its sub-circulant at k = 4 (each block's
    first 4 values, same bitmap) as CIRC, CIRC^T and DV with the pruned blocks' v words zero;
    both with the probe on which adding the pruned zero products (the contract) and skipping them
    give different bits. The whole layer on a k = 16 array runs in ``bench/pe_array.py --trace``."""
    from golden.traces import GSTCP_TRACE

    run_cocotb(PEArrayConfig.preset("tiny"), "verilator", testcase="trace_layers",
               extra_env={"PEA_TRACE_FILE": GSTCP_TRACE.name, "PEA_TRACE_METHODS": "late", "PEA_TRACE_NETS": "actor",
                          "PEA_TRACE_LAYERS": "l2", "PEA_TRACE_CIRC_BLOCKS": "4", "PEA_TRACE_BATCH": "4"},
               tag="gstcp")


@pytest.mark.xdist_group("pe_array")
def test_pe_array_element_masked_trace_layer():
    """The circ-fine stage trace's last stage, actor l2 (the trained W with the values the run
    pruned as zeros, GST after its switch), on the tiny array, Verilator, 4 batch rows: the
    dense forward, input gradient and weight gradient the chip runs it with (its 64 x 64 block
    grid is past the tiny array's bitmap, so no group-sparse variant)."""
    from golden.traces import GSTCF_TRACE

    run_cocotb(PEArrayConfig.preset("tiny"), "verilator", testcase="trace_layers",
               extra_env={"PEA_TRACE_FILE": GSTCF_TRACE.name, "PEA_TRACE_METHODS": "late", "PEA_TRACE_NETS": "actor",
                          "PEA_TRACE_LAYERS": "l2", "PEA_TRACE_BATCH": "4"},
               tag="gstcf")


@pytest.mark.xdist_group("pe_array")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_pe_array_two_banks(sim):
    """Ping-pong banks: a command sequence with loads overlapping compute, bit-exact and every
    command's accept and finish cycle equal to golden.pe_array.sequence_cycles; the earlier
    tests again on the two-bank build (its loads and commands carry the bank field)."""
    run_cocotb(PEArrayConfig.preset("tiny", banks=2), sim, testcase="bank_sequence|rejected_commands",
               extra_env={"PEA_SEED": "3"}, tag="banks")
