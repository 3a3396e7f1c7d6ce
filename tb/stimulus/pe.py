"""Stimulus for the PE and its arithmetic units: operand mixes, edge grids, dot products.

Only inputs live here; the expected results come from ``golden.bf16``.

The fp32 adder inside the PE only ever sees (accumulator, product) pairs, so an adder edge grid
reaches it as dot products: a prefix whose sum is the first operand exactly, then one product
equal to the second (:func:`adder_grid_dots`). Values that no bf16 product or sum of products
can be (fp32 subnormals, NaN payloads, significand bits below 2**-141) are left to the unit
tests in ``tests/test_fp_units_edges.py``.
"""

from __future__ import annotations

import numpy as np

from golden.bf16 import FP32_ADD_RULES, bf16_edge_values, dots, fp32_edge_values

__all__ = ["random_bf16", "make_dots", "near_min_fp32_pairs", "near_min_bf16_pairs", "product_operands",
           "accumulator_operands", "adder_grid_dots", "near_min_dots"]

ONE = 0x3F80  # bf16 1.0: x * 1.0 is x exactly


def random_bf16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Operands that exercise the adder: mostly values near 1 (real cancellation and rounding),
    some fully random patterns (overflow, underflow, NaN, Inf) and edge values."""
    kind = rng.random(n)
    near = ((rng.integers(0, 2, n) << 15) | ((127 + rng.integers(-12, 13, n)) << 7)
            | rng.integers(0, 128, n)).astype(np.uint16)
    wild = rng.integers(0, 1 << 16, n).astype(np.uint16)
    edges = bf16_edge_values()
    edge = edges[rng.integers(0, len(edges), n)]
    return np.where(kind < 0.75, near, np.where(kind < 0.95, wild, edge)).astype(np.uint16)


def make_dots(seed: int, pairs: int, *, grids: bool = False):
    """Every edge-class pair as a one-element dot (the multiplier's edge grid), then random dots
    of length 1..24 until at least ``pairs`` operand pairs; with ``grids`` also, on top of
    those, :func:`adder_grid_dots` and :func:`near_min_dots`. Returns (list of (a, b) arrays,
    operand pairs)."""
    rng = np.random.default_rng(seed)
    edges = bf16_edge_values()
    out = [(np.array([x], np.uint16), np.array([y], np.uint16)) for x in edges for y in edges]
    count = len(out)
    while count < pairs:
        length = int(rng.integers(1, 25))
        out.append((random_bf16(rng, length), random_bf16(rng, length)))
        count += length
    if grids:
        extra = adder_grid_dots() + near_min_dots(rng, 600)
        out += extra
        count += sum(len(a) for a, _ in extra)
    return out, count


# -- operands around the smallest exponents ------------------------------------------------
def _fp32(sign, exp, frac) -> np.ndarray:
    return ((np.asarray(sign, np.uint64) << 31) | (np.asarray(exp, np.uint64) << 23)
            | np.asarray(frac, np.uint64)).astype(np.uint32)


def near_min_fp32_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """fp32 adder operands around the smallest normal exponents, where a sum or difference lands
    on exponent field 0 (and must flush) or just above it.

    Both operands have biased exponents 1..3 and random signs and fractions; in a third of the
    pairs ``b`` is ``-a`` moved by a few ulps (deep cancellation), in a tenth ``b`` is 1..30
    binades above (an aligned tiny addend) and in a tenth ``a`` is an fp32 subnormal or zero
    (read as zero).
    """
    a = _fp32(rng.integers(0, 2, n), rng.integers(1, 4, n), rng.integers(0, 1 << 23, n))
    b = _fp32(rng.integers(0, 2, n), rng.integers(1, 4, n), rng.integers(0, 1 << 23, n))
    kind = rng.random(n)
    close = (a ^ np.uint32(0x80000000)) + rng.integers(-4, 5, n).astype(np.int64).astype(np.uint32)
    b = np.where(kind < 0.33, close, b)
    far = _fp32(rng.integers(0, 2, n), rng.integers(4, 31, n), rng.integers(0, 1 << 23, n))
    b = np.where((kind >= 0.33) & (kind < 0.43), far, b)
    tiny = _fp32(rng.integers(0, 2, n), 0, rng.integers(0, 1 << 23, n))
    a = np.where(kind >= 0.9, tiny, a)
    return a.astype(np.uint32), b.astype(np.uint32)


def near_min_bf16_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """bf16 multiplier operands whose product exponent is near the bottom of fp32's range:
    ``ea + eb - 127`` from -2 to 3 (underflow to zero, the carry that rescues it, the smallest
    normals), random signs and mantissas."""
    ea = rng.integers(1, 255, n)
    eb = np.clip(127 - ea + rng.integers(-2, 4, n), 1, 254)
    a = (rng.integers(0, 2, n) << 15) | (ea << 7) | rng.integers(0, 128, n)
    b = (rng.integers(0, 2, n) << 15) | (eb << 7) | rng.integers(0, 128, n)
    return a.astype(np.uint16), b.astype(np.uint16)


# -- the adder's operands as the PE presents them --------------------------------------------
def product_operands(v: int) -> tuple[int, int] | None:
    """bf16 operands whose product is exactly the fp32 pattern ``v``, or None when no product
    is (a subnormal, a NaN other than the canonical one, more than 8 significant bits)."""
    sign, exp, frac = v >> 31, (v >> 23) & 0xFF, v & 0x7FFFFF
    if exp == 0:
        return ((sign << 15), ONE) if frac == 0 else None
    if exp == 0xFF:
        if frac == 0:
            return ((sign << 15) | 0x7F80, ONE)
        return (0x7FC0, ONE) if v == 0x7FC00000 else None
    return (v >> 16, ONE) if frac & 0xFFFF == 0 else None


def accumulator_operands(v: int) -> list[tuple[int, int]] | None:
    """Operand pairs whose dot product (the PE's accumulator) is exactly the fp32 pattern ``v``.

    One product when :func:`product_operands` can make ``v``; otherwise the 24-bit significand
    in three 8-bit chunks, largest first, each a bf16 value times 1.0: every partial sum is
    exact. None when a chunk would fall below the smallest normal (``v`` under about 2**-103
    with low significand bits set: no sum of bf16 products reaches it).
    """
    single = product_operands(v)
    if single is not None:
        return [single]
    sign, exp, frac = v >> 31, (v >> 23) & 0xFF, v & 0x7FFFFF
    if exp in (0, 0xFF):
        return None
    sig = frac | (1 << 23)
    out = []
    for shift in (16, 8, 0):
        chunk = (sig >> shift) & 0xFF
        if not chunk:
            continue
        lead = chunk.bit_length() - 1
        e = lead + shift + exp - 23  # biased exponent of chunk * 2**(shift + exp - 150)
        if not 1 <= e <= 254:
            return None
        out.append(((sign << 15) | (e << 7) | ((chunk << (7 - lead)) & 0x7F), ONE))
    return out


def _as_dot(pairs: list[tuple[int, int]]):
    return np.array([a for a, _ in pairs], np.uint16), np.array([b for _, b in pairs], np.uint16)


def adder_grid_dots() -> list:
    """The adder's edge grid (every pair of ``golden.bf16.fp32_edge_values``) and the rule
    cases ``FP32_ADD_RULES``, as dot products: for ``x + y``, a prefix that sums to ``x`` then
    one product equal to ``y`` (or the other way round; fp32 addition commutes). Pairs the PE
    cannot present are left out."""
    edges = [int(v) for v in fp32_edge_values()]
    pairs = [(x, y) for x in edges for y in edges] + [(a, b) for a, b, _, _ in FP32_ADD_RULES]
    out = []
    for x, y in pairs:
        for first, second in ((x, y), (y, x)):
            prefix, last = accumulator_operands(first), product_operands(second)
            if prefix is not None and last is not None:
                out.append(_as_dot(prefix + [last]))
                break
    # Each prefix must put exactly the intended operand in the accumulator.
    reachable = [v for v in edges if accumulator_operands(v) is not None]
    sums = dots([_as_dot(accumulator_operands(v)) for v in reachable])
    assert [int(s) for s in sums] == reachable, "a prefix does not sum to its operand"
    return out


def near_min_dots(rng: np.random.Generator, count: int) -> list:
    """``count`` dot products of 2..4 products whose exponents are at the bottom of fp32's range
    (biased 1..4) and whose signs alternate: the sums cancel onto exponent field 0 (flushed to
    a signed zero) or land just above it."""
    out = []
    for _ in range(count):
        n = int(rng.integers(2, 5))
        ea = rng.integers(1, 128, n)
        eb = 128 - ea + rng.integers(0, 3, n)  # product exponent ea + eb - 127 (+ carry): 1..4
        sign_b = rng.integers(0, 2, n)
        sign_a = sign_b ^ (np.arange(n) % 2) ^ int(rng.integers(0, 2))  # product signs alternate
        a = (sign_a << 15) | (ea << 7) | rng.integers(0, 128, n)
        b = (sign_b << 15) | (eb << 7) | rng.integers(0, 128, n)
        out.append((a.astype(np.uint16), b.astype(np.uint16)))
    return out
