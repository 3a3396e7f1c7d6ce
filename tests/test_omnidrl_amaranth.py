"""Tier 1: the OmniDRL top (``hdl.omnidrl``, tiny preset) in Amaranth's simulator.

A Python memory model (``tb.stimulus.omnidrl``) serves ``rd_req``/``rd_data``/``wr`` with random
gaps and back-pressure; every test compares the whole memory image bit for bit with the words
the golden block functions give (``golden.pe_array.make_job``, ``golden.emd.encode``), the
status beats with the flags the commands must raise and, where the program ends with COUNTERS,
the counters with what the program implies. The programs are in ``tb/stimulus/omnidrl.py``
(the cocotb testbench runs the same ones).
"""

import pytest

from hdl.omnidrl import OmniDRLConfig
from tb.stimulus.omnidrl import CASES, case_mismatches, run_amsim

CFG = OmniDRLConfig.preset("tiny")


def test_config_cross_checks_and_shape():
    shape = CFG.isa_shape
    assert (shape.k, shape.mem_bits, shape.max_blocks) == (4, 64, 8)
    assert CFG.pe_array.banks == 2
    for preset in ("default", "paper"):
        cfg = OmniDRLConfig.preset(preset)
        assert cfg.pe_array.banks == 2 and cfg.isa_shape.k == cfg.pe_array.rows
    with pytest.raises(Exception, match="pe_array.rows"):
        OmniDRLConfig.preset("tiny", pe_array={"rows": 8, "cols": 8, "circulant": False, "sparse": False})
    with pytest.raises(Exception, match="emd.group"):
        OmniDRLConfig.preset("default", emd={"group": 4})
    with pytest.raises(Exception, match="block_size"):
        OmniDRLConfig.preset("tiny", pe_array={"rows": 2, "cols": 2, "block_size": 2})


@pytest.mark.parametrize("name", sorted(CASES))
def test_program(name):
    """every_mode: every GEMM mode, fp32 / bf16 / EMD stores, raw and EMD loads, two banks
    overlapping loads and compute, COUNTERS. transpose: W^T's blocks and bitmap built on chip
    for the sparse input gradient. dependencies: RAW and WAR through memory. errors: every
    TopError flagged, reported and recovered from."""
    case = CASES[name](CFG)
    host, cycles = run_amsim(CFG, case.pb.initial(), case.segments, seed=len(name), gap=0.25, stall=0.25)
    errors = case_mismatches(case, host.memory, host.statuses)
    assert not errors, "; ".join(errors)
