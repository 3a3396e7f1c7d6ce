"""golden.bf16 against independent references: ml_dtypes for bf16, NumPy float32/float64 for fp32.

The references know nothing of our policy, so each comparison applies the policy (FTZ,
canonical NaN) to the reference's IEEE result explicitly here, written independently of the
golden code.
"""

import ml_dtypes
import numpy as np
import pytest

from golden import bf16 as g

ALL_BF16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
N_RANDOM = 1_000_000


# -- an independent statement of the policy, on float values -------------------------------
def policy_f32(values: np.ndarray) -> np.ndarray:
    """IEEE float32 values -> fp32 patterns under FTZ + canonical NaN."""
    v = np.asarray(values, dtype=np.float32).copy()
    tiny = np.abs(v) < np.float32(2.0 ** -126)
    v[tiny] = np.copysign(np.float32(0), v[tiny])
    bits = v.view(np.uint32).copy()
    bits[np.isnan(v)] = 0x7FC00000
    return bits


def policy_bf16_values(bits16: np.ndarray) -> np.ndarray:
    """bf16 patterns -> float32 values, inputs flushed (ml_dtypes decodes subnormals exactly)."""
    v = bits16.view(ml_dtypes.bfloat16).astype(np.float32)
    tiny = np.abs(v) < np.float32(2.0 ** -126)
    v[tiny] = np.copysign(np.float32(0), v[tiny])
    return v


def random_f32_bits(rng, n):
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)


# -- conversions: exhaustive -----------------------------------------------------------------
def test_bf16_to_f32_exhaustive():
    got = g.bf16_to_f32_bits(ALL_BF16)
    ref = policy_f32(policy_bf16_values(ALL_BF16))
    np.testing.assert_array_equal(got, ref)


def test_f32_to_bf16_roundtrip_exhaustive():
    """Every bf16 pattern survives bf16 -> fp32 -> bf16 under the policy."""
    back = g.f32_round_to_bf16_bits(g.bf16_to_f32_bits(ALL_BF16))
    exp = ALL_BF16.copy()
    e = (exp >> 7) & 0xFF
    f = exp & 0x7F
    exp = np.where(e == 0, exp & 0x8000, exp)  # subnormals flush
    exp = np.where((e == 0xFF) & (f != 0), 0x7FC0, exp)  # NaNs become canonical
    np.testing.assert_array_equal(back, exp.astype(np.uint16))


def _ref_round(bits32: np.ndarray) -> np.ndarray:
    """fp32 patterns -> bf16 patterns via ml_dtypes' RNE cast, with the policy applied."""
    v = bits32.view(np.float32).copy()
    v[np.abs(v) < np.float32(2.0 ** -126)] = np.copysign(np.float32(0), v[np.abs(v) < np.float32(2.0 ** -126)])
    with np.errstate(invalid="ignore", over="ignore"):
        r = v.astype(ml_dtypes.bfloat16)
    out = r.view(np.uint16).copy()
    rf = r.astype(np.float32)
    tiny = (np.abs(rf) < np.float32(2.0 ** -126)) & ~np.isnan(rf)
    out[tiny] &= 0x8000
    out[np.isnan(rf)] = 0x7FC0
    return out


def test_f32_to_bf16_every_rounding_neighbourhood():
    """For every bf16 pattern, the fp32 values just below, at, just above and exactly halfway
    to the next pattern (the ties) round as ml_dtypes does."""
    base = ALL_BF16.astype(np.uint32) << 16
    cases = np.concatenate([base, base + 1, base + 0x7FFF, base + 0x8000, base + 0x8001, base + 0xFFFF])
    np.testing.assert_array_equal(g.f32_round_to_bf16_bits(cases), _ref_round(cases))


def test_f32_to_bf16_random():
    rng = np.random.default_rng(1)
    x = random_f32_bits(rng, N_RANDOM)
    np.testing.assert_array_equal(g.f32_round_to_bf16_bits(x), _ref_round(x))


def test_f32_to_bf16_edges():
    cases = {
        0x00000000: 0x0000, 0x80000000: 0x8000,  # signed zeros
        0x00000001: 0x0000, 0x807FFFFF: 0x8000,  # fp32 subnormals flush
        0x007FFFFF: 0x0000,  # largest subnormal does not round up into a normal
        0x00800000: 0x0080,  # min normal
        0x3F808000: 0x3F80, 0x3F818000: 0x3F82,  # ties to even, both directions
        0x7F7FFFFF: 0x7F80,  # max fp32 rounds to Inf
        0x7F7F7FFF: 0x7F7F,  # largest value that stays at bf16 max
        0x7F800000: 0x7F80, 0xFF800000: 0xFF80,  # Inf
        0x7F800001: 0x7FC0, 0xFFC12345: 0x7FC0,  # NaNs become canonical
    }
    got = g.f32_round_to_bf16_bits(np.array(list(cases), dtype=np.uint32))
    assert [hex(v) for v in got] == [hex(v) for v in cases.values()]


# -- products ---------------------------------------------------------------------------------
def _ref_mul(a16, b16):
    with np.errstate(over="ignore", invalid="ignore"):
        p = policy_bf16_values(a16).astype(np.float64) * policy_bf16_values(b16).astype(np.float64)
        p32 = p.astype(np.float32)  # exact in float64; one rounding to float32
    return policy_f32(p32)


def test_bf16_mul_edge_classes():
    e = g.bf16_edge_values()
    a, b = np.repeat(e, len(e)), np.tile(e, len(e))
    np.testing.assert_array_equal(g.bf16_mul(a, b), _ref_mul(a, b))


def test_bf16_mul_random():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 1 << 16, N_RANDOM).astype(np.uint16)
    b = rng.integers(0, 1 << 16, N_RANDOM).astype(np.uint16)
    np.testing.assert_array_equal(g.bf16_mul(a, b), _ref_mul(a, b))


def test_bf16_mul_is_exact_in_range():
    rng = np.random.default_rng(3)
    a = ((127 + rng.integers(-40, 40, 10000)) << 7 | rng.integers(0, 128, 10000)).astype(np.uint16)
    b = ((127 + rng.integers(-40, 40, 10000)) << 7 | rng.integers(0, 128, 10000)).astype(np.uint16)
    exact = policy_bf16_values(a).astype(np.float64) * policy_bf16_values(b).astype(np.float64)
    assert np.array_equal(g.bits_f32(g.bf16_mul(a, b)).astype(np.float64), exact)


# -- additions --------------------------------------------------------------------------------
def _ref_add(a32, b32):
    fa = a32.view(np.float32).copy()
    fb = b32.view(np.float32).copy()
    for v in (fa, fb):
        v[np.abs(v) < np.float32(2.0 ** -126)] = np.copysign(np.float32(0), v[np.abs(v) < np.float32(2.0 ** -126)])
    with np.errstate(over="ignore", invalid="ignore"):
        # float64 holds the sum with enough bits (53 >= 2*24+2) that one more rounding to
        # float32 is correctly rounded: an independent route to the IEEE result.
        s = (fa.astype(np.float64) + fb.astype(np.float64)).astype(np.float32)
    return policy_f32(s)


def _add_cases(rng, n):
    a = random_f32_bits(rng, n)
    b = random_f32_bits(rng, n)
    # Half the pairs get nearby exponents so that rounding and cancellation really happen.
    near = rng.random(n) < 0.5
    e = ((a >> 23) & 0xFF).astype(np.int64) + rng.integers(-3, 4, n)
    b = np.where(near, (b & 0x807FFFFF) | (np.clip(e, 0, 255).astype(np.uint32) << 23), b)
    # A quarter: b = -a plus a few ulps (massive cancellation).
    canc = rng.random(n) < 0.25
    b = np.where(canc, (a ^ 0x80000000) + rng.integers(0, 8, n).astype(np.uint32), b)
    return a, b.astype(np.uint32)


@pytest.mark.parametrize("impl", [g.fp32_add, g.fp32_add_reference], ids=["fast", "integer"])
def test_fp32_add_random(impl):
    rng = np.random.default_rng(4)
    a, b = _add_cases(rng, N_RANDOM)
    np.testing.assert_array_equal(impl(a, b), _ref_add(a, b))


@pytest.mark.parametrize("impl", [g.fp32_add, g.fp32_add_reference], ids=["fast", "integer"])
def test_fp32_add_edge_classes(impl):
    e32 = g.fp32_edge_values()
    a, b = np.repeat(e32, len(e32)), np.tile(e32, len(e32))
    np.testing.assert_array_equal(impl(a, b), _ref_add(a, b))


@pytest.mark.parametrize("impl", [g.fp32_add, g.fp32_add_reference], ids=["fast", "integer"])
def test_fp32_add_specific_rules(impl):
    """g.FP32_ADD_RULES (also driven through the hardware adder), both operand orders."""
    for a, b, want, rule in g.FP32_ADD_RULES:
        for x, y in ((a, b), (b, a)):
            got = int(impl(np.uint32(x), np.uint32(y)))
            assert got == want, f"{rule}: 0x{x:08x} + 0x{y:08x} = 0x{got:08x}, want 0x{want:08x}"


# -- dot and gemm -----------------------------------------------------------------------------
def test_dot_order_is_sequential():
    # 2^24 + 1 + 1 is order sensitive in fp32: 2^24 first absorbs each 1 (ties to even);
    # the ones first sum to 2 and survive (2^24 + 2 = 0x4B800001).
    one, big = 0x3F80, 0x4B80  # 1.0 and 2^24
    got = g.dot(np.array([big, one, one], np.uint16), np.array([one, one, one], np.uint16))
    assert int(got) == 0x4B800000
    got = g.dot(np.array([one, one, big], np.uint16), np.array([one, one, one], np.uint16))
    assert int(got) == 0x4B800001


def test_dot_single_negative_zero_product():
    # The accumulator starts at the first product, so a lone -0 product stays -0.
    assert int(g.dot(np.array([0x8000], np.uint16), np.array([0x3F80], np.uint16))) == 0x80000000


def test_dots_batch_matches_dot_one_by_one():
    rng = np.random.default_rng(7)
    edges = g.bf16_edge_values()
    pairs = [(edges[rng.integers(0, len(edges), n)], rng.integers(0, 1 << 16, n).astype(np.uint16))
             for n in rng.integers(1, 20, 300)]
    pairs.append((np.array([0x8000], np.uint16), np.array([0x3F80], np.uint16)))  # lone -0 product
    assert [int(v) for v in g.dots(pairs)] == [int(g.dot(a, b)) for a, b in pairs]


def test_gemm_starts_from_negative_zero():
    # -0 is the additive identity: a lone -0 product stays -0 (from +0 it would become +0).
    assert int(g.gemm(np.array([[0x8000]], np.uint16), np.array([[0x3F80]], np.uint16))[0, 0]) == 0x80000000


def test_gemm_matches_dot():
    rng = np.random.default_rng(5)
    a = g.f32_to_bf16(rng.standard_normal((7, 13)))
    b = g.f32_to_bf16(rng.standard_normal((13, 5)))
    c = g.gemm(a, b)
    for i in range(7):
        for j in range(5):
            assert int(c[i, j]) == int(g.dot(a[i], b[:, j]))


def test_gemm_close_to_float64():
    rng = np.random.default_rng(6)
    a = g.f32_to_bf16(rng.standard_normal((16, 64)))
    b = g.f32_to_bf16(rng.standard_normal((64, 16)))
    exact = g.bf16_to_f32(a).astype(np.float64) @ g.bf16_to_f32(b).astype(np.float64)
    got = g.bits_f32(g.gemm(a, b)).astype(np.float64)
    assert np.max(np.abs(got - exact)) < 1e-4 * np.max(np.abs(exact))


def test_gemm_rejects_bad_shapes():
    with pytest.raises(ValueError, match="do not chain"):
        g.gemm(np.zeros((2, 3), np.uint16), np.zeros((4, 2), np.uint16))
