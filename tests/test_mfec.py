"""Tier 1: golden MFEC and fp32-sequential dot products against independent references."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from golden.bf16 import bf16_edge_values, dot, f32_round_to_bf16_bits, f32_to_bf16
from golden.config import ConfigError
from golden.mfec import MfecParams, exponent_stage, f64_dot, fp32_seq_dot, mfec_dot, mfec_dot_detail, rel_error


# -- an independent scalar model of the MFEC definition (Python integers and fractions) ------
def _decode(x: int):
    s, e, f = x >> 15, (x >> 7) & 0xFF, x & 0x7F
    return s, e, f


def _round_to_format(v: Fraction, sig_bits: int, sign_of_zero: int):
    """RNE of an exact value into a format with ``sig_bits`` significand bits, FTZ, Inf."""
    if v == 0:
        return ("zero", sign_of_zero)
    sign = int(v < 0)
    mag = abs(v)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1
    if e + 127 <= 0:
        return ("zero", sign)
    scaled = mag / Fraction(2) ** (e - (sig_bits - 1))
    q = scaled.numerator // scaled.denominator
    rem = scaled - q
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and q % 2 == 1):
        q += 1
    if q == 1 << sig_bits:
        q >>= 1
        e += 1
    if e + 127 >= 255:
        return ("inf", sign)
    return ("num", sign, e + 127, q - (1 << (sig_bits - 1)))


def ref_mfec(a, b, n: int, guard: int, fmt: str, max_groups: int) -> int:
    frac = 7 if fmt == "bf16" else 23
    top = 15 if fmt == "bf16" else 31
    qnan = 0x7FC0 if fmt == "bf16" else 0x7FC00000
    groups = len(a) // n
    if groups > max_groups:
        return qnan
    nan = pinf = ninf = False
    allneg = True
    s_run, acc = None, 0
    for g in range(groups):
        terms = []
        for i in range(g * n, (g + 1) * n):
            sa, ea, fa = _decode(int(a[i]))
            sb, eb, fb = _decode(int(b[i]))
            sign = sa ^ sb
            allneg = allneg and sign == 1
            if (ea == 255 and fa) or (eb == 255 and fb) or (ea == 255 and eb == 0) or (eb == 255 and ea == 0):
                nan = True
            elif ea == 255 or eb == 255:
                pinf, ninf = pinf or sign == 0, ninf or sign == 1
            elif ea and eb:
                terms.append((sign, ea + eb, (fa | 0x80) * (fb | 0x80)))
        if terms:
            gmax = max(t[1] for t in terms)
            s_new = gmax if s_run is None else max(s_run, gmax)
            if s_run is not None:
                acc = acc // 2 ** (s_new - s_run)  # floor: the arithmetic shift of the spec
            for sign, s, p in terms:
                mag = (p * 2 ** guard) // 2 ** (s_new - s)
                acc += -mag if sign else mag
            s_run = s_new
    if nan or (pinf and ninf):
        return qnan
    if pinf or ninf:
        return (int(ninf) << top) | (0xFF << frac)
    if s_run is None:
        return int(allneg) << top
    value = Fraction(acc) * Fraction(2) ** (s_run - 254 - 14 - guard)
    r = _round_to_format(value, frac + 1, 0)
    if r[0] == "zero":
        return r[1] << top
    if r[0] == "inf":
        return (r[1] << top) | (0xFF << frac)
    return (r[1] << top) | (r[2] << frac) | r[3]


def _mixed_vectors(rng, count, length):
    """Realistic values, wide exponents, edge values and zeros, mixed per element."""
    kind = rng.random((count, length))
    normal = f32_to_bf16(rng.normal(0, 1, (count, length)).astype(np.float32))
    wide = ((rng.integers(0, 2, (count, length)) << 15) | (rng.integers(1, 255, (count, length)) << 7)
            | rng.integers(0, 128, (count, length))).astype(np.uint16)
    edges = bf16_edge_values()
    edge = edges[rng.integers(0, len(edges), (count, length))]
    out = np.where(kind < 0.6, normal, np.where(kind < 0.8, wide, np.where(kind < 0.9, 0, edge)))
    return out.astype(np.uint16)


@pytest.mark.parametrize("n,guard,fmt", [(16, 10, "bf16"), (16, 6, "bf16"), (4, 0, "bf16"), (8, 3, "fp32"),
                                         (16, 16, "fp32")])
def test_mfec_matches_independent_model(n, guard, fmt):
    rng = np.random.default_rng(n * 100 + guard)
    params = MfecParams(n=n, guard=guard, max_groups=4, out_format=fmt)
    for length in (n, 2 * n, 4 * n, 5 * n):
        # Mostly ordinary data (normal dot products), plus rows with specials and wide exponents.
        a = np.concatenate([f32_to_bf16(rng.normal(0, 1, (150, length)).astype(np.float32)),
                            _mixed_vectors(rng, 50, length)])
        b = np.concatenate([f32_to_bf16(np.maximum(rng.normal(0, 1, (150, length)), 0).astype(np.float32)),
                            _mixed_vectors(rng, 50, length)])
        got = mfec_dot(a, b, params)
        want = [ref_mfec(a[k], b[k], n, guard, fmt, 4) for k in range(len(a))]
        bad = [(k, hex(int(got[k])), hex(want[k])) for k in range(len(a)) if int(got[k]) != want[k]]
        assert not bad, f"length {length}: {len(bad)} mismatches, first {bad[:3]}"


def test_fp32_sequential_is_golden_dot():
    rng = np.random.default_rng(3)
    a = _mixed_vectors(rng, 40, 48)
    b = _mixed_vectors(rng, 40, 48)
    got32 = fp32_seq_dot(a, b, "fp32")
    got16 = fp32_seq_dot(a, b, "bf16")
    for k in range(len(a)):
        assert int(got32[k]) == int(dot(a[k], b[k]))
        assert int(got16[k]) == int(f32_round_to_bf16_bits(dot(a[k], b[k])))


def test_equal_exponents_round_once_like_ml_dtypes():
    """With every product in one binade nothing is truncated: MFEC is the exact sum rounded once."""
    rng = np.random.default_rng(4)
    a = ((rng.integers(0, 2, (500, 16)) << 15) | (127 << 7) | rng.integers(0, 128, (500, 16))).astype(np.uint16)
    b = np.full((500, 16), 0x3F80, dtype=np.uint16)  # 1.0: products are the weights themselves
    exact = f64_dot(a, b)  # a sum of 16 bf16 values of one binade is exact in float64
    want = exact.astype(ml_dtypes.bfloat16).view(np.uint16)
    want = np.where(exact == 0, 0, want)  # exact cancellation gives +0
    assert np.array_equal(mfec_dot(a, b, MfecParams(guard=0)), want)


@pytest.mark.parametrize("a,b,want", [
    ([0x3F80, 0, 0, 0], [0x4000, 0, 0, 0], 0x4000),  # 1 * 2
    ([0x7FC0, 0, 0, 0], [0x3F80, 0, 0, 0], 0x7FC0),  # NaN
    ([0x7F81, 0, 0, 0], [0x3F80, 0, 0, 0], 0x7FC0),  # signalling NaN -> canonical
    ([0x7F80, 0, 0, 0], [0x0000, 0, 0, 0], 0x7FC0),  # Inf * 0
    ([0x7F80, 0x0001, 0, 0], [0x3F80, 0xFF80, 0, 0], 0x7FC0),  # a subnormal reads as 0, and 0 * Inf is NaN
    ([0x7F80, 0xFF80, 0, 0], [0x3F80, 0x3F80, 0, 0], 0x7FC0),  # Inf - Inf
    ([0xFF80, 0x3F80, 0, 0], [0x3F80, 0x3F80, 0, 0], 0xFF80),  # -Inf + 1
    ([0x8000, 0x8000, 0x8000, 0x8000], [0x3F80, 0x3F80, 0x3F80, 0x3F80], 0x8000),  # all -0 products: -0
    ([0x8000, 0x0000, 0x8000, 0x8000], [0x3F80, 0x3F80, 0x3F80, 0x3F80], 0x0000),  # one +0: +0
    ([0x3F80, 0xBF80, 0, 0], [0x3F80, 0x3F80, 0, 0], 0x0000),  # exact cancellation: +0
    ([0x7F7F, 0x7F7F, 0, 0], [0x7F7F, 0x3F80, 0, 0], 0x7F80),  # overflow -> Inf
    ([0x0080, 0, 0, 0], [0x0080, 0, 0, 0], 0x0000),  # underflow -> 0 (FTZ)
    ([0x8080, 0, 0, 0], [0x0080, 0, 0, 0], 0x8000),  # negative underflow -> -0
    ([0x5F00, 0x0080, 0, 0], [0x5F00, 0x0080, 0, 0], 0x7E80),  # maximal shift: the tiny product drops out
])
def test_special_values(a, b, want):
    got = mfec_dot(np.array(a, np.uint16), np.array(b, np.uint16), MfecParams(n=4))
    assert int(got[0]) == want, f"got 0x{int(got[0]):04x}"
    assert int(got[0]) == ref_mfec(a, b, 4, MfecParams().guard, "bf16", 64)


def test_too_long_is_flagged_nan_and_counts():
    p = MfecParams(n=4, max_groups=2)
    a = np.full(12, 0x3F80, np.uint16)
    r = mfec_dot_detail(a, a, p)
    assert r.err[0] and int(r.bits[0]) == 0x7FC0
    r = mfec_dot_detail(a[:8], np.where(np.arange(8) % 2 == 0, 0x3F80, 0).astype(np.uint16), p)
    assert not r.err[0] and int(r.bits[0]) == 0x4080  # 4.0
    assert (r.exp_reads[0], r.mant_reads[0], r.multiplies[0], r.skipped[0]) == (8, 4, 4, 4)


def test_exponent_stage_values():
    ea = np.array([[127, 0, 130, 255]])
    eb = np.array([[127, 127, 120, 127]])
    ex = exponent_stage(ea, eb, np.array([260]), np.array([True]))
    assert ex["s"].tolist() == [[254, 127, 250, 382]]
    assert ex["zero"].tolist() == [[False, True, False, False]]
    assert ex["special"].tolist() == [[False, False, False, True]]
    assert int(ex["s_new"][0]) == 260 and int(ex["acc_shift"][0]) == 0
    assert ex["shift"].tolist() == [[6, 0, 10, 0]]
    ex = exponent_stage(ea, eb, np.array([0]), np.array([False]))
    assert int(ex["s_new"][0]) == 254 and ex["shift"].tolist() == [[0, 0, 4, 0]]


def test_error_target_on_synthetic_layer():
    """Default guard bits: MFEC's 99.9th-percentile error is no worse than fp32-seq -> bf16."""
    rng = np.random.default_rng(8)
    w = f32_to_bf16(rng.normal(0, 0.05, (3000, 128)).astype(np.float32))
    x = f32_to_bf16(np.maximum(rng.normal(0, 1, (3000, 128)), 0).astype(np.float32))
    ref = f64_dot(w, x)
    from hdl.ecim import EcimConfig
    e_mfec = rel_error(mfec_dot(w, x, EcimConfig().mfec), ref)
    e_seq = rel_error(fp32_seq_dot(w, x), ref)
    assert np.nanpercentile(e_mfec, 99.9) <= np.nanpercentile(e_seq, 99.9)


def test_params_validation():
    with pytest.raises(ConfigError, match=r"mfec: guard=17 is not allowed; guard must be an integer from 0 to 16"):
        MfecParams(guard=17)
    with pytest.raises(ConfigError, match=r"out_format='fp16' is not allowed; out_format must be one of bf16, fp32"):
        MfecParams(out_format="fp16")
    with pytest.raises(ConfigError, match=r"max_groups=0 is not allowed"):
        MfecParams.preset("default", **MfecParams.parse_overrides(["max_groups=0"]))
    with pytest.raises(ValueError, match="multiple of n=16"):
        mfec_dot(np.zeros(10, np.uint16), np.zeros(10, np.uint16))
