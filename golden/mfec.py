"""Bit-exact MFEC (mantissa-free exponent computation) dot products, and the fp32 baseline.

An MFEC dot product splits every bf16 x bf16 product into an exponent part, handled beside the
exponent memory without looking at a single mantissa bit, and a mantissa part, handled in a
fixed-point engine. This module is the truth ``hdl.ecim.Ecim`` is compared with; the exact
rules are written out in ``docs/numerics.md`` (section "MFEC"). In short, for a dot product of
``K = G * n`` pairs ``(a_i, b_i)`` processed as ``G`` groups of ``n``:

Exponent side, per group (no mantissas needed)::

    z_i   = ea_i == 0 or eb_i == 0                  zero product (FTZ): skipped
    x_i   = ea_i == 255 or eb_i == 255              Inf/NaN operand: handled by flags
    S_i   = ea_i + eb_i                             product exponent in excess-254 form
    S_new = max(S_run, max{S_i : not z_i, not x_i}) running maximum over the dot product
    sh_i  = S_new - S_i                             alignment shift of product i
    sa    = S_new - S_run                           alignment shift of the accumulator

Mantissa side, per group::

    P_i = (1.ma_i) * (1.mb_i)                       8 x 8 -> 16 bits, 14 fraction bits
    T_i = +-((P_i << guard) >> sh_i)                magnitude truncated, then signed
    A   = (A >> sa) + sum_i T_i                     two's complement, arithmetic shift

At the end (``last``): ``|A| = 1.f * 2^p`` gives the normalization amount
``p - 14 - guard``, which goes back to the exponent side:
``E_out = S_run - 127 + p - 14 - guard``; the significand is rounded to the output format
(RNE), then overflow gives Inf and ``E_out <= 0`` (before rounding) gives a signed zero.

Shifts beyond the width simply contribute zero (the product) or 0 / -1 (the accumulator,
an arithmetic shift); no sticky bit is kept. The accumulator is wide enough that it can never
overflow for up to ``max_groups`` groups; a longer dot product is malformed input and returns
the canonical NaN with the error flag set.

No Amaranth or cocotb imports here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from golden.bf16 import (BF16_QNAN, FP32_NEG_ZERO, FP32_QNAN, bf16_mul, bf16_to_f32, f32_round_to_bf16_bits,
                         fp32_add)
from golden.config import Config, param

__all__ = ["MfecParams", "MfecResult", "PRODUCT_FRAC_BITS", "EXP_SUM_BITS", "SHIFT_BITS", "SHIFT_SAT",
           "exponent_stage", "mfec_dot", "mfec_dot_detail",
           "fp32_seq_dot", "f64_dot", "split_groups", "rel_error", "pad_to_groups", "training_dot_operands"]

PRODUCT_FRAC_BITS = 14  # (1.ma)(1.mb): 16-bit integer, value in [1, 4), 14 fraction bits
EXP_SUM_BITS = 9  # ea + eb of two 8-bit exponent fields: 0..510
SHIFT_BITS = 6  # alignment shifts are carried in 6 bits...
SHIFT_SAT = (1 << SHIFT_BITS) - 1  # ...and saturate at 63, which already clears every operand


@dataclasses.dataclass(frozen=True)
class MfecParams(Config):
    """The numerics of one MFEC unit.

    ``hdl.ecim.EcimConfig`` inherits these fields, so the hardware and the golden model share
    one declaration (and one range) of each.

    Parameters
    ----------
    n : int
        Group size: products whose exponents are compared together (lanes of the macro).
    guard : int
        Bits kept below the LSB of the largest product when aligning (0..16).
    max_groups : int
        Longest dot product, in groups, that the accumulator is sized for.
    out_format : {"bf16", "fp32"}
        Output format; the fixed-point sum is rounded once (RNE) into it.
    zero_skip : bool
        Whether multiplies (and mantissa reads) of zero products are skipped. Numerics are the
        same either way; only the activity counts change.
    """

    NAME = "mfec"

    n: int = param(16, lo=2, hi=64, pow2=True, doc="group size: products whose exponents are compared together")
    guard: int = param(10, lo=0, hi=16, doc="guard bits below the largest product's LSB in the accumulator")
    max_groups: int = param(64, lo=1, hi=65536, doc="longest dot product in groups; sizes the accumulator (16 + guard + ceil(log2(n * max_groups)) + 1 bits)")
    out_format: str = param("bf16", choices=("bf16", "fp32"), doc="result format, rounded once (RNE)")
    zero_skip: bool = param(True, doc="skip the multiplies of zero products (activity only, same numerics)")

    def validate(self) -> None:
        # Unreachable inside the ranges above (at most 55 bits); it guards the int64 model.
        self.check(self.acc_width <= 62, "acc_width", "<= 62 (it follows from guard, n and max_groups)")

    @property
    def acc_width(self) -> int:
        """Signed accumulator width that cannot overflow: 16 + guard + ceil(log2(n*max_groups)) + 1."""
        return 16 + self.guard + math.ceil(math.log2(self.n * self.max_groups)) + 1

    @property
    def out_sig_bits(self) -> int:
        """Significand bits of the output format, hidden bit included."""
        return 8 if self.out_format == "bf16" else 24

    @property
    def mfec(self) -> "MfecParams":
        """The numerics alone (for a subclass such as ``EcimConfig``, its MFEC fields)."""
        names = [f.name for f in dataclasses.fields(MfecParams)]
        return MfecParams(**{k: getattr(self, k) for k in names})


@dataclasses.dataclass
class MfecResult:
    """Result of :func:`mfec_dot_detail`; arrays have one entry per dot product."""

    bits: np.ndarray  # uint16 (bf16) or uint32 (fp32) result patterns
    err: np.ndarray  # bool: malformed input (longer than max_groups); bits is NaN then
    acc: np.ndarray  # int64 final fixed-point accumulator A
    s_run: np.ndarray  # int64 final running max exponent (excess-254), -1 when no finite non-zero product
    groups: np.ndarray  # int64 groups per dot product
    exp_reads: np.ndarray  # 8-bit exponent reads in the macro
    mant_reads: np.ndarray  # 8-bit sign+mantissa reads (zeros skipped when zero_skip)
    multiplies: np.ndarray  # mantissa multiplies performed
    skipped: np.ndarray  # mantissa multiplies skipped for zero products


def split_groups(a, b, n: int):
    """Check ``a``, ``b`` (shape (D, K) or (K,)) and return them as int64 arrays (D, G, n)."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    if a.shape != b.shape:
        raise ValueError(f"mfec: a has shape {a.shape} and b has {b.shape}; they must match")
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    if a.ndim != 2 or a.shape[1] == 0 or a.shape[1] % n:
        raise ValueError(f"mfec: dot-product length {a.shape[-1]} is not allowed; it must be a positive multiple "
                         f"of n={n} (pad with zeros)")
    d, k = a.shape
    return a.astype(np.int64).reshape(d, k // n, n), b.astype(np.int64).reshape(d, k // n, n)


def exponent_stage(ea, eb, s_run, has_run):
    """What the ECIM macro computes for one group, from exponent fields only.

    Parameters
    ----------
    ea, eb : array_like of int, shape (..., n)
        Biased 8-bit exponent fields of the weights (in the macro) and of the broadcast inputs.
    s_run : array_like of int, shape (...)
        Running maximum product exponent (excess-254) of the earlier groups.
    has_run : array_like of bool, shape (...)
        Whether ``s_run`` is valid (an earlier group had a finite non-zero product).

    Returns
    -------
    dict
        ``s`` (per-entry product exponents ea+eb), ``zero`` (either exponent 0), ``special``
        (either exponent 255), ``gmax`` (group maximum, 0 when none), ``has_g``, ``s_new``,
        ``has_new``, ``shift`` (per entry, saturated at 63, 0 for skipped entries) and
        ``acc_shift`` (saturated at 63, 0 unless ``has_run``).
    """
    ea = np.asarray(ea, dtype=np.int64)
    eb = np.asarray(eb, dtype=np.int64)
    s_run = np.asarray(s_run, dtype=np.int64)
    has_run = np.asarray(has_run, dtype=bool)
    s = ea + eb
    zero = (ea == 0) | (eb == 0)
    special = (ea == 255) | (eb == 255)
    cand = ~zero & ~special
    has_g = cand.any(axis=-1)
    gmax = np.where(cand, s, -1).max(axis=-1)
    s_new = np.where(has_run, np.maximum(s_run, gmax), gmax)
    has_new = has_run | has_g
    s_new = np.where(has_new, s_new, 0)
    shift = np.where(cand, np.minimum(s_new[..., None] - s, SHIFT_SAT), 0)
    acc_shift = np.where(has_run, np.minimum(s_new - s_run, SHIFT_SAT), 0)
    return {"s": s, "zero": zero, "special": special, "gmax": np.where(has_g, gmax, 0), "has_g": has_g,
            "s_new": s_new, "has_new": has_new, "shift": shift, "acc_shift": acc_shift}


def _bit_length(m: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values, exactly (no float rounding)."""
    m = m.copy()
    n = np.zeros_like(m)
    for step in (32, 16, 8, 4, 2, 1):
        big = (m >> step) > 0
        n += np.where(big, step, 0)
        m = np.where(big, m >> step, m)
    return n + (m > 0)


def mfec_dot_detail(a, b, params: MfecParams = MfecParams()) -> MfecResult:
    """MFEC dot products of bf16 vectors, with the activity counts.

    Parameters
    ----------
    a : array_like of uint16, shape (D, K) or (K,)
        Weights (the operand whose exponents live in the macro), bf16 patterns.
    b : array_like of uint16, same shape
        Inputs (broadcast activations), bf16 patterns.
    params : MfecParams

    Returns
    -------
    MfecResult
    """
    p = params
    ga, gb = split_groups(a, b, p.n)
    d, n_groups, _ = ga.shape
    acc = np.zeros(d, dtype=np.int64)
    s_run = np.zeros(d, dtype=np.int64)
    has = np.zeros(d, dtype=bool)
    nan = np.zeros(d, dtype=bool)
    pinf = np.zeros(d, dtype=bool)
    ninf = np.zeros(d, dtype=bool)
    allneg = np.ones(d, dtype=bool)
    mults = np.zeros(d, dtype=np.int64)
    mreads = np.zeros(d, dtype=np.int64)
    for g in range(n_groups):
        a16, b16 = ga[:, g, :], gb[:, g, :]
        ea, eb = (a16 >> 7) & 0xFF, (b16 >> 7) & 0xFF
        ma, mb = a16 & 0x7F, b16 & 0x7F
        sign = ((a16 ^ b16) >> 15) & 1
        ex = exponent_stage(ea, eb, s_run, has)
        za, zb, xa, xb = ea == 0, eb == 0, ea == 255, eb == 255
        e_nan = (xa & (ma != 0)) | (xb & (mb != 0)) | (xa & zb) | (xb & za)
        e_inf = (xa | xb) & ~e_nan
        nan |= e_nan.any(axis=1)
        pinf |= (e_inf & (sign == 0)).any(axis=1)
        ninf |= (e_inf & (sign == 1)).any(axis=1)
        allneg &= (sign == 1).all(axis=1)
        cand = ~ex["zero"] & ~ex["special"]
        prod = (ma | 0x80) * (mb | 0x80)
        mag = np.where(cand, (prod << p.guard) >> ex["shift"], 0)
        acc = (acc >> ex["acc_shift"]) + np.where(sign == 1, -mag, mag).sum(axis=1)
        s_run, has = ex["s_new"], ex["has_new"]
        mults += cand.sum(axis=1)
        mreads += (~ex["zero"]).sum(axis=1) if p.zero_skip else p.n

    bits = _finish(acc, s_run, has, nan, pinf, ninf, allneg, p)
    err = np.full(d, n_groups > p.max_groups)
    qnan = int(BF16_QNAN) if p.out_format == "bf16" else int(FP32_QNAN)
    bits = np.where(err, qnan, bits)
    dtype = np.uint16 if p.out_format == "bf16" else np.uint32
    k = n_groups * p.n
    return MfecResult(bits=bits.astype(dtype), err=err, acc=acc, s_run=np.where(has, s_run, -1),
                      groups=np.full(d, n_groups), exp_reads=np.full(d, k), mant_reads=mreads,
                      multiplies=mults if p.zero_skip else np.full(d, k), skipped=(k - mults) if p.zero_skip
                      else np.zeros(d, dtype=np.int64))


def _finish(acc, s_run, has, nan, pinf, ninf, allneg, p: MfecParams) -> np.ndarray:
    """Normalize, round (RNE) and apply the special-value rules; returns int64 patterns."""
    f = p.out_sig_bits
    frac_bits = f - 1
    exp_shift = 15 if p.out_format == "bf16" else 31  # sign position
    sign = (acc < 0).astype(np.int64)
    mag = np.abs(acc)
    width = _bit_length(mag)  # p + 1
    e_out = s_run - 127 + (width - 1) - PRODUCT_FRAC_BITS - p.guard
    r = np.maximum(width - f, 0)
    q = np.where(r > 0, mag >> r, mag << np.maximum(f - width, 0))
    rem = mag & ((np.int64(1) << r) - 1)
    half = np.where(r > 0, np.int64(1) << np.maximum(r - 1, 0), 0)
    up = (r > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    q = q + up
    carry = q >> f
    q = np.where(carry == 1, q >> 1, q)
    e_fin = e_out + carry
    inf_pat = (np.int64(0xFF) << frac_bits)
    out = (sign << exp_shift) | (np.clip(e_fin, 0, 255) << frac_bits) | (q & ((np.int64(1) << frac_bits) - 1))
    out = np.where(e_fin >= 255, (sign << exp_shift) | inf_pat, out)
    out = np.where(e_out <= 0, sign << exp_shift, out)  # FTZ, decided before rounding
    out = np.where(mag == 0, 0, out)  # exact cancellation is +0
    out = np.where(~has, allneg.astype(np.int64) << exp_shift, out)  # only zero products: AND of signs
    out = np.where(pinf, inf_pat, out)
    out = np.where(ninf, (np.int64(1) << exp_shift) | inf_pat, out)
    qnan = int(BF16_QNAN) if p.out_format == "bf16" else int(FP32_QNAN)
    out = np.where(nan | (pinf & ninf), qnan, out)
    return out


def mfec_dot(a, b, params: MfecParams = MfecParams()) -> np.ndarray:
    """MFEC dot products: result patterns (uint16 for bf16 output, uint32 for fp32), shape (D,)."""
    return mfec_dot_detail(a, b, params).bits


def fp32_seq_dot(a, b, out_format: str = "bf16") -> np.ndarray:
    """The conventional dot product: fp32 sequential accumulation, then rounding to ``out_format``.

    Exactly :func:`golden.bf16.dot` (accumulator starts at -0, one RNE add per product in index
    order), vectorized over the rows of ``a`` and ``b`` (shape (D, K) or (K,)).
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.uint16))
    b = np.atleast_2d(np.asarray(b, dtype=np.uint16))
    if a.shape != b.shape:
        raise ValueError(f"fp32_seq_dot: a has shape {a.shape} and b has {b.shape}; they must match")
    total = np.full(a.shape[0], FP32_NEG_ZERO, dtype=np.uint32)
    prods = bf16_mul(a, b)
    for k in range(a.shape[1]):
        total = fp32_add(total, prods[:, k])
    if out_format == "fp32":
        return total
    if out_format == "bf16":
        return f32_round_to_bf16_bits(total)
    raise ValueError(f"fp32_seq_dot: out_format={out_format!r} is not allowed; out_format must be bf16 or fp32")


def f64_dot(a, b) -> np.ndarray:
    """float64 reference of bf16 dot products (inputs under the FTZ policy), shape (D,)."""
    a = np.atleast_2d(bf16_to_f32(a)).astype(np.float64)
    b = np.atleast_2d(bf16_to_f32(b)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sum(a * b, axis=1)


def rel_error(bits, ref: np.ndarray, out_format: str = "bf16") -> np.ndarray:
    """|y - ref| / |ref| for result patterns ``bits``; NaN where ``ref`` is zero or not finite."""
    bits = np.asarray(bits)
    if out_format == "bf16":
        y = bf16_to_f32(bits.astype(np.uint16)).astype(np.float64)
    else:
        y = np.ascontiguousarray(bits.astype(np.uint32)).view(np.float32).astype(np.float64)
    ok = np.isfinite(ref) & (ref != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.abs(y - ref) / np.abs(np.where(ok, ref, 1.0)), np.nan)


def pad_to_groups(x: np.ndarray, n: int) -> np.ndarray:
    """Pad the last axis of bf16 patterns with +0 up to a multiple of ``n`` (zero products)."""
    x = np.asarray(x, dtype=np.uint16)
    extra = (-x.shape[-1]) % n
    if not extra:
        return x
    return np.concatenate([x, np.zeros(x.shape[:-1] + (extra,), dtype=np.uint16)], axis=-1)


def training_dot_operands(layers: dict, n: int, max_dots: int = 2000, seed: int = 0):
    """The dot products of one training step, as (weight-side, input-side) operand pairs.

    Parameters
    ----------
    layers : dict
        ``name -> {"W": (M, N), "x": (B, N), "dy": (B, M)}`` bf16 patterns (``dy`` optional).
    n : int
        Group size; lengths are padded with zeros to a multiple of it.
    max_dots : int
        At most this many dot products (sampled without replacement) per layer and pass.

    Yields
    ------
    (name, pass, a, b, length)
        ``length`` is the dot-product length before padding. ``pass`` is ``fwd`` (``y = x W^T``: a row of W with a row of x), ``bwd``
        (``dx = dy W``: a column of W with a row of dy) or ``wgrad`` (``dW = dy^T x``: a
        column of dy with a column of x, over the batch). ``a`` goes to the macro.
    """
    rng = np.random.default_rng(seed)
    for name in sorted(layers):
        t = layers[name]
        w, x, dy = t["W"], t["x"], t.get("dy")
        passes = [("fwd", w, x)]
        if dy is not None:
            passes += [("bwd", w.T, dy), ("wgrad", dy.T, x.T)]
        for pname, left, right in passes:
            total = left.shape[0] * right.shape[0]
            pick = rng.choice(total, size=min(max_dots, total), replace=False)
            i, j = pick // right.shape[0], pick % right.shape[0]
            yield name, pname, pad_to_groups(left[i], n), pad_to_groups(right[j], n), left.shape[1]
