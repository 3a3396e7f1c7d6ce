"""Tier 1: the GST core's golden model (layouts, ring identities, sparse/circulant math, cycles)."""

import numpy as np
import pytest

from golden.bf16 import bits_f32, dot, f32_bits, fp32_add, gemm
from golden.gst import circ_expand, circ_weight_grad_direct_exact
from golden.pe_array import (ArrayShape, a_words_circ, a_words_dense, a_words_sparse, b_words, circ_dv,
                             circ_dv_reference, circ_operand, circ_ring_lanes, cycle_model, gemm_sparse,
                             gemm_wgrad, make_job, tile_order, unpack_lanes)


def near_one(rng, shape):
    n = int(np.prod(shape))
    return ((rng.integers(0, 2, n) << 15) | ((127 + rng.integers(-5, 6, n)) << 7)
            | rng.integers(0, 128, n)).astype(np.uint16).reshape(shape)


def test_dense_layouts_round_trip():
    rng = np.random.default_rng(0)
    a = near_one(rng, (7, 5))
    b = near_one(rng, (5, 9))
    aw = a_words_dense(a, 4)
    assert len(aw) == 2 * 5
    for ti in range(2):
        for kk in range(5):
            lanes = unpack_lanes(aw[ti * 5 + kk], 4, 16)
            rows = a[ti * 4:(ti + 1) * 4, kk]
            assert list(lanes[:len(rows)]) == list(rows) and not lanes[len(rows):].any()
    bw = b_words(b, 4)
    assert len(bw) == 3 * 5
    assert list(unpack_lanes(bw[2 * 5 + 3], 4, 16)[:1]) == [b[3, 8]]


@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize("transpose", [False, True])
def test_ring_expands_circulant_blocks(k, transpose):
    """Load once per block (index-reversed for W^T), rotate one lane per step: that is W (W^T)."""
    rng = np.random.default_rng(k)
    v = near_one(rng, (3, 2, k))
    lanes = circ_ring_lanes(v, transpose)
    a = circ_operand(v, transpose)
    mb, kb = lanes.shape[:2]
    for i in range(mb):
        for j in range(kb):
            assert np.array_equal(lanes[i, j].T, a[i * k:(i + 1) * k, j * k:(j + 1) * k])
    assert np.array_equal(circ_operand(v, False), circ_expand(v))
    assert np.array_equal(circ_operand(v, True), circ_expand(v).T)
    assert len(a_words_circ(v)) == 6  # one word per block: reads fall by k


def test_circulant_equals_dense_on_expanded_weights():
    rng = np.random.default_rng(5)
    v = near_one(rng, (2, 3, 4))
    x = near_one(rng, (12, 5))
    job = make_job("circ", ArrayShape(4, 4, block_size=4), v, x)
    assert np.array_equal(job.result, gemm(circ_expand(v), x))


def test_dv_matches_scalar_loop_and_gst_exact():
    rng = np.random.default_rng(6)
    k, bt = 4, 5
    dy = near_one(rng, (8, bt))  # dY as M x B
    xt = near_one(rng, (bt, 12))  # X^T as B x N
    dv = circ_dv(dy, xt, k)
    assert np.array_equal(dv, circ_dv_reference(dy, xt, k))
    # The TD3/GST model's hardware-order dv, fed the same bf16 values (products exact in fp32).
    add = lambda acc, prod: bits_f32(fp32_add(f32_bits(acc), f32_bits(prod)))  # noqa: E731
    ref = circ_weight_grad_direct_exact(bits_f32(dy.T.astype(np.uint32) << 16),
                                        bits_f32(xt.astype(np.uint32) << 16), k, add)
    assert np.array_equal(f32_bits(ref), dv.reshape(2, k, 3).transpose(0, 2, 1))


def test_sparse_sums_kept_blocks_only_in_order():
    rng = np.random.default_rng(7)
    k = 4
    a = near_one(rng, (8, 12))
    b = near_one(rng, (12, 3))
    b[5, 0] = 0x7F80  # Inf inside a pruned block must not reach the output
    bm = np.array([[1, 0, 1], [0, 0, 0]], dtype=np.uint8)
    out = gemm_sparse(a, bm, b, k)
    cols = [c for q in (0, 2) for c in range(q * k, (q + 1) * k)]
    for r in range(4):
        for n in range(3):
            assert out[r, n] == dot(a[r, cols], b[cols, n])
    assert (out[4:] == 0x80000000).all()  # an empty block row is the empty sum, -0
    assert len(a_words_sparse(a, bm, k)) == 2 * k


def test_wgrad_keeps_only_kept_blocks():
    rng = np.random.default_rng(8)
    a, b = near_one(rng, (8, 5)), near_one(rng, (5, 8))
    bm = np.array([[1, 0], [0, 1]])
    out, full = gemm_wgrad(a, b, bm, 4), gemm(a, b)
    assert np.array_equal(out[:4, :4], full[:4, :4]) and np.array_equal(out[4:, 4:], full[4:, 4:])
    assert (out[:4, 4:] == 0x80000000).all()


def test_wgrad_bitmap_is_read_row_major_not_transposed():
    """An asymmetric square bitmap: its transpose has the same shape, so only the values show
    which blocks a transposed read would produce (a symmetric one, or a non-square one that
    crashes on the shape, cannot)."""
    rng = np.random.default_rng(18)
    k = 4
    bm = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=np.uint8)
    assert not np.array_equal(bm, bm.T)
    a, b = near_one(rng, (3 * k, 5)), near_one(rng, (5, 3 * k))
    out, full = gemm_wgrad(a, b, bm, k), gemm(a, b)
    for p in range(3):
        for q in range(3):
            block = out[p * k:(p + 1) * k, q * k:(q + 1) * k]
            want = full[p * k:(p + 1) * k, q * k:(q + 1) * k] if bm[p, q] else np.uint32(0x80000000)
            assert np.all(block == want), f"dW block ({p}, {q}) with bitmap bit {bm[p, q]}"
    shape = ArrayShape(k, k, k)  # one output tile per block
    assert tile_order("wgrad", 3 * k, 3 * k, shape, bm) == [(0, 0), (0, 1), (1, 2), (2, 1)]
    job = make_job("wgrad", shape, a, b, bitmap=bm)
    assert [word for sel, _, word in job.loads if sel == 2] == [0b011, 0b100, 0b010]  # bit q of row p
    assert len(job.expected) == 4 * k and job.expected[k] == [int(v) for v in full[0, k:2 * k]]


def test_cycle_model_targets():
    shape = ArrayShape(8, 8, block_size=8)
    rep = cycle_model("dense", 256, 256, 256, shape)
    assert rep.utilization > 0.9
    rng = np.random.default_rng(9)
    bm = np.zeros((32, 32), np.uint8)
    for p in range(32):
        bm[p, rng.choice(32, 8, replace=False)] = 1  # 75 % block sparsity
    sp = cycle_model("sparse", 256, 256, 256, shape, bm)
    assert rep.cycles / sp.cycles >= 0.8 * 4
    circ = cycle_model("circ", 256, 256, 256, shape)
    assert rep.a_reads == 8 * circ.a_reads


def test_cycle_model_short_tiles_wait_for_drain():
    shape = ArrayShape(4, 4, block_size=4)
    # K=2 < R+1: every tile after the first takes R+1 cycles.
    rep = cycle_model("dense", 8, 8, 2, shape)
    assert rep.cycles == 1 + 1 + 2 + 3 + 3 * 5 + 4
    assert rep.stall_cycles == 3 * 3


def test_sequence_model_limits():
    """One bank: the serial sum. Two banks, commands longer than the next loads: only the
    first job's loads are exposed. Loads longer than the commands: the loads set the pace."""
    from golden.pe_array import sequence_cycles
    long_cmds = [(10, 100)] * 4
    assert sequence_cycles(long_cmds, 1).total == 4 * (10 + 100 + 1)
    two = sequence_cycles(long_cmds, 2)
    assert two.total == 10 + 4 * (100 + 1) and two.exposed_load_cycles == 10
    assert two.load_start == [0, 10, 111, 212]  # job 2 waits for command 0 (its bank) to finish
    short_cmds = sequence_cycles([(50, 5)] * 3, 2)
    assert short_cmds.accepted == [50, 100, 150] and short_cmds.total == 150 + 5 + 1


def test_make_job_refuses_bitmaps_the_array_cannot_hold():
    from golden.codes import LoadSel, PEArrayError
    from golden.pe_array import PEArrayCommandError, check_bitmap_grid, make_job

    shape = ArrayShape(4, 4, 4)
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1 << 16, (36, 8)).astype(np.uint16)
    b = rng.integers(0, 1 << 16, (8, 4)).astype(np.uint16)
    bm = np.ones((9, 2), np.uint8)
    job = make_job("sparse", shape, a, b, bitmap=bm, max_blocks=9)  # fits: 9 bitmap rows loaded
    assert sum(1 for sel, _, _ in job.loads if sel == LoadSel.BITMAP) == 9
    with pytest.raises(PEArrayCommandError, match="9 x 2 blocks is rejected .*max_blocks=8") as info:
        make_job("sparse", shape, a, b, bitmap=bm, max_blocks=8)
    assert info.value.code == PEArrayError.SHAPE
    # bits the bitmap register file cannot hold lie outside any accepted grid
    wide = np.zeros((10, 2), np.uint8)
    wide[9, 0] = 1
    with pytest.raises(PEArrayCommandError, match="cannot be loaded") as info:
        check_bitmap_grid("sparse", 8, 4, 8, 4, wide, 8)
    assert info.value.code == PEArrayError.BITMAP
    check_bitmap_grid("wgrad", 32, 32, 5, 4, np.ones((8, 8)), 8)  # exactly max_blocks: accepted
    with pytest.raises(PEArrayCommandError):
        check_bitmap_grid("wgrad", 32, 36, 5, 4, np.ones((8, 9)), 8)
