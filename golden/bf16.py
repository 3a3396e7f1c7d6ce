"""Bit-exact bfloat16 / fp32 arithmetic of the accelerator (the numerics contract).

Every function works on NumPy arrays of raw bit patterns: ``uint16`` for bf16 and ``uint32``
for fp32. Working on bits rather than on floats keeps the policy explicit and lets a hardware
engineer read each rule next to the RTL that implements it. The policy, written out in
``docs/numerics.md``:

* fp32 -> bf16 rounds to nearest, ties to even (RNE).
* Subnormals flush to zero, on input and on output, keeping their sign.
* Any NaN result is the canonical quiet NaN (``0x7FC0`` in bf16, ``0x7FC00000`` in fp32).
* Inf follows IEEE 754: ``Inf - Inf`` and ``0 * Inf`` are NaN, overflow gives signed Inf.
* A bf16 x bf16 product is exact in fp32 (8-bit x 8-bit significands); only its range is
  limited (overflow -> Inf, underflow -> signed zero).
* fp32 addition rounds to nearest even, then flushes a subnormal result to zero. An exact
  zero sum of operands of opposite sign is +0.
* Dot products and GEMMs accumulate in fp32 in a fixed order: the first product starts the
  accumulator and each later product is added with one RNE rounding (see :func:`dot`).

No Amaranth or cocotb imports here: this module is the truth every block is compared with.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BF16_QNAN", "FP32_QNAN", "BF16_POS_INF", "BF16_NEG_INF", "FP32_POS_INF", "FP32_NEG_INF",
    "BF16_MAX", "BF16_MIN_NORMAL", "FP32_NEG_ZERO",
    "f32_bits", "bits_f32", "ftz_f32_bits", "canon_f32_bits",
    "f32_to_bf16", "bf16_to_f32", "bf16_to_f32_bits", "bf16_from_float", "bf16_to_float",
    "f32_round_to_bf16_bits", "bf16_mul", "fp32_add", "fp32_add_reference", "dot", "dots", "gemm",
    "bf16_edge_values", "fp32_edge_values", "FP32_ADD_RULES",
    "round_bf16", "to_bits", "from_bits", "ftz", "fp32_add_ftz", "min_exponent", "canon_nan", "gemm_exact",
]

BF16_QNAN = np.uint16(0x7FC0)
FP32_QNAN = np.uint32(0x7FC00000)
BF16_POS_INF = np.uint16(0x7F80)
BF16_NEG_INF = np.uint16(0xFF80)
FP32_POS_INF = np.uint32(0x7F800000)
FP32_NEG_INF = np.uint32(0xFF800000)
FP32_NEG_ZERO = np.uint32(0x80000000)
BF16_MAX = np.uint16(0x7F7F)
BF16_MIN_NORMAL = np.uint16(0x0080)

_F32_EXP = np.uint32(0x7F800000)
_F32_FRAC = np.uint32(0x007FFFFF)
_F32_SIGN = np.uint32(0x80000000)


def f32_bits(x) -> np.ndarray:
    """Return the fp32 bit patterns (``uint32``) of ``x`` converted to float32."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def bits_f32(bits) -> np.ndarray:
    """Reinterpret ``uint32`` fp32 bit patterns as ``float32`` values."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def _is_nan32(u: np.ndarray) -> np.ndarray:
    return ((u & _F32_EXP) == _F32_EXP) & ((u & _F32_FRAC) != 0)


def ftz_f32_bits(bits) -> np.ndarray:
    """Flush subnormal fp32 patterns to a zero of the same sign; leave everything else."""
    u = np.asarray(bits, dtype=np.uint32)
    sub = (u & _F32_EXP) == 0
    return np.where(sub, u & _F32_SIGN, u).astype(np.uint32)


def canon_f32_bits(bits) -> np.ndarray:
    """Apply the output policy to fp32 patterns: FTZ, and every NaN becomes ``0x7FC00000``."""
    u = ftz_f32_bits(bits)
    return np.where(_is_nan32(u), FP32_QNAN, u).astype(np.uint32)


def f32_round_to_bf16_bits(bits) -> np.ndarray:
    """Round fp32 patterns to bf16 patterns: RNE, FTZ on input and output, canonical NaN.

    The rounding is the usual integer trick: add ``0x7FFF`` plus the bit that becomes the bf16
    LSB, then drop the low 16 bits. A carry out of the mantissa moves into the exponent, which
    is exactly what RNE needs, and rounding the largest finite values up gives Inf.
    """
    u = ftz_f32_bits(bits)
    nan = _is_nan32(u)
    rounded = (u.astype(np.uint64) + 0x7FFF + ((u >> 16) & 1)) >> 16
    r = rounded.astype(np.uint32)
    # A value just below the smallest normal cannot round into the subnormal range here because
    # inputs were flushed first, and rounding only ever moves the magnitude up to a normal.
    r = np.where((r & 0x7F80) == 0, r & 0x8000, r)
    r = np.where(nan, np.uint32(BF16_QNAN), r)
    return r.astype(np.uint16)


def f32_to_bf16(x) -> np.ndarray:
    """Convert float values (any float dtype, taken as float32 first) to bf16 bit patterns."""
    return f32_round_to_bf16_bits(f32_bits(x))


bf16_from_float = f32_to_bf16


def bf16_to_f32_bits(b) -> np.ndarray:
    """Widen bf16 patterns to fp32 patterns under the input policy (FTZ, canonical NaN)."""
    u = np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16
    return canon_f32_bits(u)


def bf16_to_f32(b) -> np.ndarray:
    """Widen bf16 patterns to ``float32`` values under the input policy."""
    return bits_f32(bf16_to_f32_bits(b))


bf16_to_float = bf16_to_f32


def bf16_mul(a, b) -> np.ndarray:
    """Exact bf16 x bf16 product as fp32 patterns, in the hardware's integer form.

    Parameters
    ----------
    a, b : array_like of uint16
        bf16 bit patterns (broadcast against each other).

    Returns
    -------
    numpy.ndarray of uint32
        fp32 patterns. The 8x8-bit significand product has at most 16 significant bits, so the
        result is exact unless it leaves fp32's normal range (Inf above, signed zero below).
    """
    a = np.asarray(a, dtype=np.uint16).astype(np.int64)
    b = np.asarray(b, dtype=np.uint16).astype(np.int64)
    a, b = np.broadcast_arrays(a, b)
    sign = ((a ^ b) >> 15) & 1
    ea, eb = (a >> 7) & 0xFF, (b >> 7) & 0xFF
    fa, fb = a & 0x7F, b & 0x7F
    a_nan, b_nan = (ea == 0xFF) & (fa != 0), (eb == 0xFF) & (fb != 0)
    a_inf, b_inf = (ea == 0xFF) & (fa == 0), (eb == 0xFF) & (fb == 0)
    a_zero, b_zero = ea == 0, eb == 0  # subnormal inputs count as zero (FTZ)

    sig = (fa | 0x80) * (fb | 0x80)  # 16 bits, value in [1, 4) with 14 fraction bits
    carry = (sig >> 15) & 1
    exp = ea + eb - 127 + carry
    frac = np.where(carry == 1, (sig & 0x7FFF) << 8, (sig & 0x3FFF) << 9)
    out = (sign << 31) | (np.clip(exp, 0, 255) << 23) | frac
    out = np.where(exp >= 255, (sign << 31) | 0x7F800000, out)
    out = np.where(exp <= 0, sign << 31, out)
    out = np.where(a_zero | b_zero, sign << 31, out)
    out = np.where(a_inf | b_inf, (sign << 31) | 0x7F800000, out)
    nan = a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)
    out = np.where(nan, int(FP32_QNAN), out)
    return out.astype(np.uint32)


def fp32_add(a, b) -> np.ndarray:
    """fp32 addition under the policy (RNE, FTZ in and out, canonical NaN), vectorized.

    Uses NumPy's IEEE float32 addition for speed; :func:`fp32_add_reference` is the same
    operation written the way the hardware adder computes it, and the test suite proves the
    two identical.
    """
    fa = bits_f32(ftz_f32_bits(a))
    fb = bits_f32(ftz_f32_bits(b))
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.add(fa, fb, dtype=np.float32)
    return canon_f32_bits(f32_bits(s))


def fp32_add_reference(a, b) -> np.ndarray:
    """fp32 addition in integer form: the algorithm of ``hdl.lib.fp.Fp32Adder``, step by step.

    Swap so the larger magnitude comes first, align the smaller significand with guard, round
    and sticky bits, add or subtract, normalise (one right shift or a leading-zero left shift),
    round to nearest even, then apply overflow (Inf) and FTZ.
    """
    a = ftz_f32_bits(a).astype(np.int64)
    b = ftz_f32_bits(b).astype(np.int64)
    a, b = np.broadcast_arrays(a, b)
    mag_a, mag_b = a & 0x7FFFFFFF, b & 0x7FFFFFFF
    swap = mag_a < mag_b
    big, small = np.where(swap, b, a), np.where(swap, a, b)
    s_big, s_small = (big >> 31) & 1, (small >> 31) & 1
    e_big, e_small = (big >> 23) & 0xFF, (small >> 23) & 0xFF
    m_big = ((big & 0x7FFFFF) | 0x800000) << 3  # 27 bits: hidden 1, 23 fraction, G R S
    m_small = ((small & 0x7FFFFF) | 0x800000) << 3
    d = np.minimum(e_big - e_small, 31)
    aligned = m_small >> d
    lost = (m_small & ((np.int64(1) << d) - 1)) != 0
    aligned = aligned | lost.astype(np.int64)  # sticky into the LSB
    subtract = s_big != s_small
    total = np.where(subtract, m_big - aligned, m_big + aligned)
    exp = e_big.copy()
    # Addition may carry into bit 27: shift right once, keeping the sticky bit.
    carry = (total >> 27) & 1
    total = np.where(carry == 1, (total >> 1) | (total & 1), total)
    exp = exp + carry
    # Subtraction may cancel: shift left so bit 26 is set (no bits were lost when it shifts > 1).
    nbits = np.zeros_like(total)
    t = total.copy()
    for _ in range(27):
        nbits += (t > 0)
        t >>= 1
    lzc = np.where(total == 0, 0, 27 - nbits)
    total = total << lzc
    exp = exp - lzc
    mant = total >> 3
    guard = (total >> 2) & 1
    rest = (total & 3) != 0
    round_up = guard & (rest | (mant & 1)).astype(np.int64)
    mant = mant + round_up
    over = (mant >> 24) & 1
    mant = np.where(over == 1, mant >> 1, mant)
    exp = exp + over
    out = (s_big << 31) | (np.clip(exp, 0, 255) << 23) | (mant & 0x7FFFFF)
    out = np.where(exp >= 255, (s_big << 31) | 0x7F800000, out)
    out = np.where(exp <= 0, s_big << 31, out)
    out = np.where(total == 0, 0, out)  # exact cancellation gives +0 under RNE

    # Special operands, in the priority order the hardware uses.
    ea, eb = (a >> 23) & 0xFF, (b >> 23) & 0xFF
    a_zero, b_zero = ea == 0, eb == 0
    a_inf = (ea == 0xFF) & ((a & 0x7FFFFF) == 0)
    b_inf = (eb == 0xFF) & ((b & 0x7FFFFF) == 0)
    a_nan = (ea == 0xFF) & ((a & 0x7FFFFF) != 0)
    b_nan = (eb == 0xFF) & ((b & 0x7FFFFF) != 0)
    out = np.where(b_zero, a, out)
    out = np.where(a_zero, b, out)
    out = np.where(a_zero & b_zero, a & b & 0x80000000, out)
    out = np.where(b_inf, b, out)
    out = np.where(a_inf, a, out)
    nan = a_nan | b_nan | (a_inf & b_inf & (((a ^ b) >> 31) & 1 == 1))
    out = np.where(nan, int(FP32_QNAN), out)
    return out.astype(np.uint32)


def dot(a, b, acc=None) -> np.uint32:
    """Dot product of two bf16 vectors in the PE's order, as an fp32 pattern.

    The accumulator starts at the first product (equivalently at -0, the additive identity),
    or at ``acc`` when given, and adds products ``i = 0, 1, ...`` one at a time with RNE.
    This is exactly what ``hdl.pe.PE`` computes between a ``clear`` and a ``last`` beat.
    """
    a = np.asarray(a, dtype=np.uint16).reshape(-1)
    b = np.asarray(b, dtype=np.uint16).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"dot: a has {a.size} elements and b has {b.size}; they must match")
    products = bf16_mul(a, b)
    total = np.uint32(FP32_NEG_ZERO) if acc is None else np.uint32(acc)
    for p in products:
        total = fp32_add(total, p)
    return np.uint32(total)


def dots(pairs) -> np.ndarray:
    """Many dot products at once, each exactly as :func:`dot` computes it.

    Parameters
    ----------
    pairs : sequence of (a, b)
        bf16 pattern vectors; each pair may have its own length.

    Returns
    -------
    numpy.ndarray of uint32, one fp32 pattern per pair.

    The vectors are padded with products of -0, the additive identity (``x + -0 == x`` for every
    x, signed zeros and NaN included), so the padded sequential sums equal the unpadded ones.
    """
    pairs = list(pairs)
    if not pairs:
        return np.zeros(0, dtype=np.uint32)
    length = max(len(a) for a, _ in pairs)
    products = np.full((len(pairs), length), FP32_NEG_ZERO, dtype=np.uint32)
    for row, (a, b) in enumerate(pairs):
        a = np.asarray(a, dtype=np.uint16).reshape(-1)
        b = np.asarray(b, dtype=np.uint16).reshape(-1)
        if a.shape != b.shape:
            raise ValueError(f"dots: pair {row} has {a.size} and {b.size} elements; they must match")
        products[row, :a.size] = bf16_mul(a, b)
    total = products[:, 0]
    for k in range(1, length):
        total = fp32_add(total, products[:, k])
    return total.astype(np.uint32)


def gemm(a, b, acc=None) -> np.ndarray:
    """bf16 GEMM ``C[m, n] = sum_k A[m, k] * B[k, n]`` with fp32 accumulation in k order.

    Every output accumulates its K products in increasing k, one RNE add each, starting from
    ``acc`` (fp32 patterns of shape (M, N)) or from -0. The loop runs over k and is vectorized
    over the M x N outputs.
    """
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: shapes {a.shape} and {b.shape} do not chain (need (M,K) x (K,N))")
    m, k = a.shape
    n = b.shape[1]
    total = np.full((m, n), FP32_NEG_ZERO, dtype=np.uint32) if acc is None \
        else np.array(acc, dtype=np.uint32).reshape(m, n)
    for kk in range(k):
        total = fp32_add(total, bf16_mul(a[:, kk:kk + 1], b[kk:kk + 1, :]))
    return total


def bf16_edge_values() -> np.ndarray:
    """One bf16 pattern of every edge class, both signs: the set every test must cover."""
    pos = [
        0x0000,  # +0
        0x0001, 0x007F,  # subnormals (smallest, largest): read as zero
        0x0080, 0x0081,  # min normal and its neighbour
        0x3F80, 0x3F81, 0x3FFF, 0x4000,  # 1.0 and neighbours, 2.0
        0x7F7F, 0x7F7E,  # max normal and its neighbour
        0x7F80,  # Inf
        0x7FC0, 0x7F81, 0x7FFF,  # quiet NaN, signalling NaN, NaN with all payload bits
        0x0100, 0x3400, 0x4B00, 0x5F00,  # assorted powers of two across the range
    ]
    return np.array(pos + [p | 0x8000 for p in pos], dtype=np.uint16)


def fp32_edge_values() -> np.ndarray:
    """The adder's edge grid operands: every bf16 edge value widened to fp32, plus fp32 values
    that bf16 cannot hold (24-bit significands, the smallest exponents, the largest finite)."""
    extra = [0x00800000, 0x00800001, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x33800000, 0x3F800001,
             0x4B800000, 0x00FFFFFF, 0x3F7FFFFF]
    return np.concatenate([bf16_edge_values().astype(np.uint32) << 16, np.array(extra, dtype=np.uint32)])


#: fp32 additions that pin one rule of the policy each: (a, b, a + b, the rule).
FP32_ADD_RULES = (
    (0x3F800000, 0xBF800000, 0x00000000, "x + (-x) = +0"),
    (0x80000000, 0x80000000, 0x80000000, "-0 + -0 = -0"),
    (0x7F800000, 0xFF800000, 0x7FC00000, "Inf - Inf = NaN"),
    (0x7F7FFFFF, 0x7F7FFFFF, 0x7F800000, "overflow gives Inf"),
    (0x00800001, 0x80800000, 0x00000000, "a subnormal result flushes (sign +)"),
    (0x80800001, 0x00800000, 0x80000000, "... keeping its sign"),
    (0x00FFFFFF, 0x80800000, 0x00000000, "exponent field 0 after normalising: flushed"),
    (0x00C00000, 0x80800000, 0x00000000, "exactly half the smallest normal: flushed"),
    (0x00800000, 0x80000000, 0x00800000, "the smallest normal + -0 stays"),
    (0x01000000, 0x80800000, 0x00800000, "2^-125 - 2^-126 lands on the smallest normal"),
)


# ============================================================================ fast float32-held kernels
# The functions above define the numerics on bit patterns, one rule at a time. Training runs
# (golden/td3.py) need the same results on bf16 values held in float32 at BLAS-like speed; the
# kernels below give them, and tests/test_gst_layers.py checks them against the bit-pattern
# functions on random and edge values.

_F32_MIN_NORMAL = np.float32(1.17549435e-38)  # smallest normal fp32


def round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bf16 values (returned as float32): RNE, FTZ, canonical NaN.

    Same result as ``bf16_to_f32(f32_to_bf16(x))`` for every input. The common case (no
    subnormal, no Inf/NaN) is five in-place uint32 operations; anything else takes the general
    path :func:`_round_bf16_general`.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    t = u >> 16
    t &= 1
    t += 0x7FFF
    t += u
    t &= np.uint32(0xFFFF0000)
    a = u & np.uint32(0x7FFFFFFF)
    if a.size and a.max() >= 0x7F800000:  # Inf or NaN
        return _round_bf16_general(x)
    a -= 1  # zero wraps to the top; a nonzero subnormal lands below 0x007FFFFF
    if a.size and a.min() < 0x007FFFFF:
        return _round_bf16_general(x)
    return t.view(np.float32)


def _round_bf16_general(x: np.ndarray) -> np.ndarray:
    """Round to bf16 with every special case handled (subnormal inputs, Inf, NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    nan = np.isnan(x)
    r = ((u.astype(np.uint64) + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    sub_in = (u & _F32_EXP) == 0
    r = np.where(sub_in, u & _F32_SIGN, r)
    if nan.any():
        r = np.where(nan, FP32_QNAN, r)
    return r.view(np.float32)


def to_bits(x: np.ndarray) -> np.ndarray:
    """bf16 values held in float32 -> uint16 bf16 patterns (exact: the low 16 bits are zero)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return (u >> 16).astype(np.uint16)


def from_bits(b: np.ndarray) -> np.ndarray:
    """uint16 bf16 patterns -> float32 values under the input policy (FTZ, canonical NaN)."""
    u = np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16
    sub = (u & _F32_EXP) == 0
    u = np.where(sub, u & _F32_SIGN, u)
    nan = ((u & _F32_EXP) == _F32_EXP) & ((u & 0x007FFFFF) != 0)
    u = np.where(nan, FP32_QNAN, u)
    return u.astype(np.uint32).view(np.float32)


def ftz(x: np.ndarray) -> np.ndarray:
    """Flush subnormal float32 values to a zero of the same sign (in place when writable)."""
    tiny = np.abs(x) < _F32_MIN_NORMAL
    if tiny.any():
        x = np.where(tiny, np.copysign(np.float32(0), x), x).astype(np.float32)
    return x


def fp32_add_ftz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fp32 add under the policy (FTZ in and out, RNE); NaNs are canonicalised by the caller."""
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.add(ftz(np.asarray(a, np.float32)), ftz(np.asarray(b, np.float32)), dtype=np.float32)
    return ftz(s)


def min_exponent(x: np.ndarray) -> int:
    """Smallest unbiased exponent of the non-zero finite entries of x (large when none)."""
    a = np.abs(x)
    a = a[(a > 0) & np.isfinite(a)]
    if a.size == 0:
        return 1000
    return int(np.frexp(a.min())[1]) - 1


def canon_nan(x: np.ndarray) -> np.ndarray:
    """Replace every NaN with the canonical quiet NaN 0x7FC00000."""
    nan = np.isnan(x)
    if nan.any():
        x = np.where(nan, np.uint32(FP32_QNAN).view(np.float32), x)
    return x


def gemm_exact(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """``C = A @ B`` for bf16 values held in float32, in the hardware order, bit for bit.

    Every C[m, n] starts at -0 and adds the products ``A[m, k] * B[k, n]`` for k ascending, one
    RNE add each, flushing subnormal products and sums (``golden.bf16.gemm``). Returns float32.

    ``keep`` (bool, shape of B) names the products that exist: where ``keep[k, n]`` is False the
    product is skipped, not added as a zero. That is what the group-sparse PE array does with a
    pruned block (``golden.pe_array.gemm_sparse``), and it matters for the sign of an exact-zero
    sum: -0 + (+0) is +0, while a skipped product leaves -0.

    Every bf16 product is an integer multiple of ``2**(ea_min + eb_min - 14)``, and so is every
    RNE-rounded partial sum; when that grain is at least the smallest normal, no product or sum
    can be subnormal and the flushes are skipped (two NumPy calls per k instead of ten).
    """
    a = ftz(np.asarray(a, dtype=np.float32))
    b = ftz(np.asarray(b, dtype=np.float32))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_exact: shapes {a.shape} and {b.shape} do not chain")
    m, kk = a.shape
    n = b.shape[1]
    acc = np.full((m, n), -0.0, dtype=np.float32)
    if kk == 0:
        return acc
    safe = min_exponent(a) + min_exponent(b) - 14 >= -126
    prod = np.empty((m, n), dtype=np.float32)
    at = np.ascontiguousarray(a.T)  # rows of A.T are the columns a[:, k]
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != b.shape:
            raise ValueError(f"gemm_exact: keep has shape {keep.shape}, B has {b.shape}")
        if keep.all():
            keep = None
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for k in range(kk):
            np.multiply(at[k][:, None], b[k][None, :], out=prod)
            if safe and keep is None:
                np.add(acc, prod, out=acc)
            elif safe:
                np.add(acc, prod, out=acc, where=keep[k][None, :])
            else:
                nxt = ftz(np.add(acc, ftz(prod), dtype=np.float32))
                acc = nxt if keep is None else np.where(keep[k][None, :], nxt, acc)
    return canon_nan(acc)
