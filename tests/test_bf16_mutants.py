"""golden/bf16.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived tests/test_bf16.py and tests/test_gst_layers.py.
"""

import numpy as np

from golden.bf16 import bits_f32, f32_round_to_bf16_bits, from_bits, gemm, gemm_exact, min_exponent, round_bf16


def test_round_bf16_fast_path_breaks_ties_to_even():
    # only normal values, so the five-operation fast path runs: ties down to even, ties up to even
    u = np.array([0x3F808000, 0x3F818000, 0x3F818001, 0x3F807FFF, 0xBF818000, 0x7F7F8000], np.uint32)
    got = round_bf16(u.view(np.float32)).view(np.uint32)
    assert got.tolist() == [0x3F800000, 0x3F820000, 0x3F820000, 0x3F800000, 0xBF820000, 0x7F800000]
    assert np.array_equal(got >> 16, f32_round_to_bf16_bits(u))


def test_from_bits_applies_the_input_policy():
    got = from_bits(np.array([0x3F81, 0x7F80, 0x7F81, 0x0001, 0x8001, 0xFF80], np.uint16))
    bits = got.view(np.uint32).tolist()
    assert bits == [0x3F810000, 0x7F800000, 0x7FC00000, 0x00000000, 0x80000000, 0xFF800000]


def test_min_exponent():
    assert min_exponent(np.array([3.0, -0.75, 0.0, np.inf], np.float32)) == -1   # 0.75 = 1.5 * 2**-1
    assert min_exponent(np.array([1.0], np.float32)) == 0
    assert min_exponent(np.array([0.0, np.nan], np.float32)) == 1000


def test_gemm_exact_of_length_one():
    a = bits_f32(np.array([[0x3FC00000], [0xC0200000]], np.uint32))    # 1.5, -2.5
    b = bits_f32(np.array([[0x40400000, 0x80000000]], np.uint32))       # 3, -0
    got = gemm_exact(a, b).view(np.uint32)
    want = gemm(np.array([[0x3FC0], [0xC020]], np.uint16), np.array([[0x4040, 0x8000]], np.uint16))
    assert np.array_equal(got, want) and got.tolist() == [[0x40900000, 0x80000000], [0xC0F00000, 0x00000000]]


def test_named_patterns_are_what_their_names_say():
    import golden.bf16 as B
    f32 = lambda v: int(np.array(v, np.float32).view(np.uint32))  # noqa: E731
    assert int(B.FP32_POS_INF) == f32(np.inf) and int(B.FP32_NEG_INF) == f32(-np.inf)
    assert int(B.FP32_NEG_ZERO) == f32(-0.0) and int(B.FP32_QNAN) == 0x7FC00000
    assert int(B.BF16_POS_INF) << 16 == f32(np.inf) and int(B.BF16_NEG_INF) << 16 == f32(-np.inf)
    assert int(B.BF16_QNAN) << 16 == int(B.FP32_QNAN)
    assert int(B.BF16_MAX) << 16 == f32(np.finfo(np.float32).max) & 0xFFFF0000    # 0x7F7F: largest finite
    assert int(B.BF16_MIN_NORMAL) << 16 == f32(np.finfo(np.float32).tiny)         # 2**-126


def test_edge_grids_hold_every_edge_class():
    from golden.bf16 import bf16_edge_values, fp32_edge_values
    pos = {0x0000, 0x0001, 0x007F, 0x0080, 0x0081, 0x3F80, 0x3F81, 0x3FFF, 0x4000, 0x7F7F, 0x7F7E, 0x7F80,
           0x7FC0, 0x7F81, 0x7FFF, 0x0100, 0x3400, 0x4B00, 0x5F00}
    assert set(bf16_edge_values().tolist()) == pos | {p | 0x8000 for p in pos}
    extra = {0x00800000, 0x00800001, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x33800000, 0x3F800001, 0x4B800000,
             0x00FFFFFF, 0x3F7FFFFF}
    assert set(fp32_edge_values().tolist()) == {p << 16 for p in pos | {p | 0x8000 for p in pos}} | extra


def test_shapes_that_do_not_chain_are_refused():
    import pytest
    from golden.bf16 import dots
    assert dots([]).shape == (0,)
    for a, b in (((2, 3), (2, 3)), ((3,), (3, 2)), ((2, 3), (3,))):
        with pytest.raises(ValueError, match="do not chain"):
            gemm(np.zeros(a, np.uint16), np.zeros(b, np.uint16))
        with pytest.raises(ValueError, match="do not chain"):
            gemm_exact(np.zeros(a, np.float32), np.zeros(b, np.float32))


def test_ftz_flushes_below_the_smallest_normal_only():
    from golden.bf16 import ftz
    tiny = np.finfo(np.float32).tiny
    x = np.array([tiny, -tiny, tiny / 2, -tiny / 4, 1.0], np.float32)
    got = ftz(x.copy())
    assert got.view(np.uint32).tolist() == [0x00800000, 0x80800000, 0x00000000, 0x80000000, 0x3F800000]


def test_round_bf16_sends_every_special_value_to_the_general_path():
    """The fast path is only for arrays without Inf/NaN and without zeros or subnormals (lines 368-372):
    a NaN whose only fraction bit is the last would round to Inf there, a negative NaN would keep its
    sign; an empty array must not reach ``a.max()``."""
    cases = [([0x3F800000, 0x7F800001], [0x3F800000, 0x7FC00000]),   # only positives: kills `u & 0x80000000`
             ([0x3F800000, 0xFFC00000], [0x3F800000, 0x7FC00000])]   # no zero: kills `if not (... NaN)`
    for bits, want in cases:
        got = round_bf16(np.array(bits, np.uint32).view(np.float32)).view(np.uint32)
        assert got.tolist() == want
    assert round_bf16(np.zeros(0, np.float32)).size == 0  # kills `a.size or ...` (both lines)


def test_gemm_exact_fast_path_only_when_no_sum_can_be_subnormal():
    """Operands whose grain is exactly 2**-127: two normal products (2**-113) cancel to 2**-127, which
    must flush to +0. The flush-free fast path would keep the subnormal 0x00400000 (kills the `safe`
    mutants of line 462: `>= -127`, `+ 14`, `min_exponent(a) - min_exponent(b)`)."""
    a16 = np.array([[0x2381, 0xA382]], np.uint16)   # (1 + 2**-7) 2**-56, -(1 + 2**-6) 2**-56
    b16 = np.array([[0x2301], [0x2300]], np.uint16)  # (1 + 2**-7) 2**-57, 2**-57
    a, b = bits_f32(a16.astype(np.uint32) << 16), bits_f32(b16.astype(np.uint32) << 16)
    assert min_exponent(a) + min_exponent(b) - 14 == -127
    assert gemm(a16, b16).tolist() == [[0x00000000]]
    assert gemm_exact(a, b).view(np.uint32).tolist() == [[0x00000000]]
