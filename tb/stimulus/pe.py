"""Stimulus for the PE tests: operand mixes and dot products of random length.

Only inputs live here; the expected results come from ``golden.bf16``.
"""

from __future__ import annotations

import numpy as np

from golden.bf16 import bf16_edge_values

__all__ = ["random_bf16", "make_dots"]


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


def make_dots(seed: int, pairs: int):
    """Every edge-class pair as a one-element dot, then random dots of length 1..24 until at
    least ``pairs`` operand pairs; returns (list of (a, b) arrays, operand pairs)."""
    rng = np.random.default_rng(seed)
    edges = bf16_edge_values()
    dots = [(np.array([x], np.uint16), np.array([y], np.uint16)) for x in edges for y in edges]
    count = sum(len(a) for a, _ in dots)
    while count < pairs:
        length = int(rng.integers(1, 25))
        dots.append((random_bf16(rng, length), random_bf16(rng, length)))
        count += length
    return dots, count
