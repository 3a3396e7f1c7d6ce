"""golden/pe_array.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived the golden tests (test_pe_array_golden.py,
test_gst_layers.py) and the two cycle-exact hardware tests run with them.
"""

import numpy as np
import pytest
from test_pe_array_amaranth import OK, TINY, busy_cycles, simulate  # the Amaranth run of a job list

from golden.bf16 import gemm
from golden.codes import LoadSel
from golden.gst import circ_expand
from golden.pe_array import (ArrayShape, CycleReport, a_words_dense, a_words_sparse, b_words, circ_operand,
                             circ_ring_lanes, cycle_model, make_job, output_beats, run, sequence_cycles,
                             unpack_lanes)
from tb.stimulus.pe_array import rand_bf16

SHAPE = ArrayShape(4, 4, block_size=4)


def test_unpack_lanes_default_is_32_bit_lanes():
    got = unpack_lanes((7 << 32) | 0xFFFFFFFF, 2)
    assert got.dtype == np.uint32 and got.tolist() == [0xFFFFFFFF, 7]
    half = unpack_lanes(0x0003_0002_0001, 3, 16)
    assert half.dtype == np.uint16 and half.tolist() == [1, 2, 3]


def test_utilization():
    report = CycleReport(10, 30, 0, 0, 0, 0, 0)
    assert report.utilization == 3.0              # one PE unless told otherwise
    report._pes = 4
    assert report.utilization == 0.75
    assert CycleReport(0, 0, 0, 0, 0, 0, 0).utilization == 0.0


def test_sequence_of_nothing_and_loadless_commands():
    assert sequence_cycles([], banks=1).total == 0
    # (load beats, command cycles): a command without loads is accepted once the previous is done
    seq = sequence_cycles([(3, 5), (0, 2)], banks=2)
    assert (seq.load_start, seq.accepted, seq.done) == ([0, 3], [3, 9], [9, 12])
    first = sequence_cycles([(0, 2)], banks=1)    # nothing to load: the first command starts at once
    assert (first.accepted, first.done) == ([0], [3])


# ----------------------------------------------------------------------------- buffer words

def test_buffer_words_hold_exactly_their_lanes():
    """Each word packs exactly R (A) or C (B) lanes: a slice one tile too long puts the next
    tile's values above the word (kills the `(ti + 1) * rows`, `(tj + 1) * cols` and sparse
    `(p + 1) * k` slice-end mutants, lines 98, 107, 117)."""
    a = (np.arange(8 * 8).reshape(8, 8) + 1).astype(np.uint16)  # no zero: every lane shows
    words = a_words_dense(a, 4)
    assert words[0] == 1 | 9 << 16 | 17 << 32 | 25 << 48   # A[0:4, 0]
    assert words[8 + 2] == 35 | 43 << 16 | 51 << 32 | 59 << 48  # A[4:8, 2]
    assert all(w < 1 << 64 for w in words)
    words = b_words(a, 4)
    assert words[0] == 1 | 2 << 16 | 3 << 32 | 4 << 48     # B[0, 0:4]
    assert all(w < 1 << 64 for w in words)
    words = a_words_sparse(a, np.array([[1, 0], [0, 1]]), 4)
    assert words[0] == 1 | 9 << 16 | 17 << 32 | 25 << 48   # block (0, 0), column 0
    assert words[4] == 37 | 45 << 16 | 53 << 32 | 61 << 48  # block (1, 1), column 0 (A[4:8, 4])
    assert all(w < 1 << 64 for w in words)


def test_defaults_are_w_and_fp32_beats():
    """transpose and round_bf16 default to off (kills the False -> True default mutants)."""
    rng = np.random.default_rng(3)
    v = rng.integers(0x3F00, 0x3F80, (1, 2, 4)).astype(np.uint16)
    x = rng.integers(0x3F00, 0x3F80, (8, 3)).astype(np.uint16)
    assert np.array_equal(circ_operand(v), circ_expand(v))          # (4 x 8), not its transpose
    assert np.array_equal(circ_ring_lanes(v), circ_ring_lanes(v, False))
    assert np.array_equal(run("circ", v, x, k=4), gemm(circ_expand(v), x))
    res = np.array([[0x3F812345]], dtype=np.uint32)                  # rounds to 0x3F810000 in bf16
    assert output_beats(res, [(0, 0)], SHAPE) == [[0x3F812345, None, None, None]] + [[None] * 4] * 3


def test_bitmap_loads_default_to_the_bitmap_rows():
    """Without max_blocks, one bitmap load per bitmap row (kills shape[0] -> shape[1], line 443)."""
    rng = np.random.default_rng(4)
    bm = np.array([[1, 0, 1]], dtype=np.uint8)  # 1 row of 3 blocks
    job = make_job("sparse", SHAPE, rng.integers(0x3F00, 0x3F80, (4, 12)), rng.integers(0x3F00, 0x3F80, (12, 4)),
                   bitmap=bm)
    assert [ld[1:] for ld in job.loads if ld[0] == LoadSel.BITMAP] == [(0, 0b101)]


# ----------------------------------------------------------------------------- the work counters

# (mode, m, n, kdim, bitmap) -> (steps, tiles, a_reads, b_reads, macs, stall_cycles), counted by hand on a
# 4 x 4 array with k = 4 from docs/pe_array.md: a tile issues L steps (dense/circ/wgrad: K, sparse: k per
# kept block of its row, dv: (Bt + 1) * k), each step one B read and (but circ: one per block, dv: one
# per batch) one A read, and every PE does one MAC per step with a product (not dv's fetch-only step).
# A tile shorter than R + 1 = 5 steps stalls 5 - L cycles after the first tile.
COUNTERS = [
    (("dense", 6, 9, 7, None), (42, 6, 42, 42, 42 * 16, 0)),
    (("dense", 9, 5, 3, None), (18, 6, 18, 18, 18 * 16, 5 * 2)),
    (("circ", 8, 5, 12, None), (48, 4, 4 * 3, 48, 48 * 16, 0)),
    (("sparse", 8, 4, 12, [[1, 0, 1], [0, 0, 1]]), (12, 2, 12, 12, 12 * 16, 1)),
    (("wgrad", 12, 8, 2, [[0, 1], [0, 0], [1, 1]]), (2 + 3 + 2, 3, 6, 6, 6 * 16, 2 + 3)),
    (("dv", 8, 2, 3, None), (2 * 16, 2, 2 * 3, 2 * 12, 2 * 12 * 16, 0)),
]


@pytest.mark.parametrize("args, counts", COUNTERS, ids=[c[0][0] + str(i) for i, c in enumerate(COUNTERS)])
def test_cycle_report_work_counters(args, counts):
    """The counters the benchmarks divide by (kills the macs/a_reads/b_reads/stall mutants, 307-336, 373)."""
    mode, m, n, kdim, bitmap = args
    rep = cycle_model(mode, m, n, kdim, SHAPE, None if bitmap is None else np.array(bitmap))
    assert (rep.steps, rep.tiles, rep.a_reads, rep.b_reads, rep.macs, rep.stall_cycles) == counts
    assert rep.utilization == rep.macs / (rep.cycles * 16)  # the array's 16 PEs, not rows / cols


def test_all_pruned_wgrad_report_has_no_work():
    rep = cycle_model("wgrad", 12, 8, 2, SHAPE, np.zeros((3, 2), np.uint8))
    assert (rep.macs, rep.steps, rep.tiles, rep.a_reads, rep.b_reads, rep.stall_cycles) == (0,) * 6
    assert rep.cycles == 1 + 3 + 2 and rep.utilization == 0.0 and rep._pes == 16


# ----------------------------------------------------------------------------- wgrad's empty rows

# Bitmaps (tile rows x tile columns, k = 4 on tiny) whose empty rows the random cycle-exact test
# never has: two leading empty rows, a row with two kept tiles, kept rows back to back, gaps of one
# and two rows, and seven trailing empty rows (more than PIPE_DEPTH + R - 1 = 6: the search then
# outlasts the drain). Kills the lead/empty/tail mutants (lines 309, 313, 368, 375-380).
WGRAD_BITMAPS = [
    [[0, 0], [0, 0], [1, 0], [0, 1], [0, 0], [1, 1], [0, 0], [0, 0]],
    [[0, 1], [1, 0], [0, 0], [0, 0], [0, 1], [0, 0]],
    [[1, 1], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],
    [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],
    [[0, 0], [0, 0], [0, 0]],  # nothing kept: FIND walks every row, then DRAIN
]


def test_wgrad_empty_rows_cycle_exact_on_hardware():
    rng = np.random.default_rng(31)
    jobs = []
    for bitmap in WGRAD_BITMAPS:
        bm = np.array(bitmap, dtype=np.uint8)
        m, n = 4 * bm.shape[0], 4 * bm.shape[1]
        jobs.append(make_job("wgrad", TINY, rand_bf16(rng, (m, 2)), rand_bf16(rng, (2, n)), bitmap=bm, max_blocks=8))
    host = simulate(TINY, jobs)
    assert host.status == [OK] * len(jobs)
    assert host.mismatches(TINY.cols) == []
    assert busy_cycles(host) == [job.report.cycles for job in jobs]
    # the last three hand-counted from docs/pe_array.md: CHECK, FIND, lead, L_0, PIPE_DEPTH, max(L, R+1), drain R;
    # the third ends on its 7 trailing FIND rows + DRAIN, the fourth (6 rows) ties with the drain
    assert [job.report.cycles for job in jobs][2:] == [1 + 1 + 2 + 5 + 7 + 1, 1 + 1 + 1 + 2 + 3 + 4, 1 + 3 + 2]
