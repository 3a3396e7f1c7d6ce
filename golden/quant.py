"""Per-layer quantizers for the mixed-precision search (``omnidrl quantize``, docs/quant.md).

Four quantizers, all per layer, all returning the dequantized values (the network is evaluated
in float64 on those values, the hardware would hold the codes):

* :func:`uniform_weights`: symmetric, one scale per layer, ``s = max|w| / (2^(b-1) - 1)``,
  ``q = clip(rint(w / s), -(2^(b-1) - 1), 2^(b-1) - 1)``; ``rint`` rounds half to even.
  The code ``-2^(b-1)`` is not used, so the grid is symmetric and 0 is exact.
* :func:`log_weights`: sign and a power-of-two magnitude (the log-domain weights of Wang, Lin and
  Wang, SPL 2018): codes ``0`` (the value zero) and ``m * 2^-j`` for ``j = 0 .. 2^(b-1) - 2``,
  with ``m = max|w|``; ``|w|`` is rounded in the log domain (``j = rint(-log2(|w| / m))``, the
  boundary between two levels is their geometric mean) and a magnitude below
  ``m * 2^-(J-1) / sqrt(2)`` (J = 2^(b-1) - 1 levels) becomes 0.
* Activations, calibrated on a sample of the layer's float inputs (:func:`act_levels`):
  ``uniform`` (zero-anchored: ``[0, max]`` in ``2^b`` steps for non-negative data, symmetric
  ``2^b - 1`` levels otherwise), ``equal-distance`` (``2^b`` levels equally spaced on
  ``[min, max]`` of the sample) and ``kmeans`` (Lloyd's algorithm on the sample, started from the
  equal-distance levels, :data:`KMEANS_ITERS` iterations, an empty cluster keeps its level).
  A value goes to the nearest level; a value exactly half-way goes to the upper level.

Hand-computed cases and the invariants (levels per bit width, idempotence, monotonicity, error
bounds, k-means never worse than its start) are in ``tests/test_quant.py``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WEIGHT_KINDS", "ACT_KINDS", "KMEANS_ITERS", "uniform_weights", "log_weights",
           "quantize_weights", "act_levels", "quantize_to_levels", "uniform_weight_codes"]

WEIGHT_KINDS = ("uniform", "log")
ACT_KINDS = ("uniform", "equal-distance", "kmeans")
#: fixed Lloyd iteration count (determinism: the same sample gives the same levels)
KMEANS_ITERS = 25


def _check_bits(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= 16:
        raise ValueError(f"bits={bits!r} is not allowed; give an integer 1..16")
    return int(bits)


def uniform_weight_codes(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """``(codes, scale)`` of the symmetric uniform quantizer; ``w ~ codes * scale``.

    ``bits`` >= 2 (one bit would leave only the code 0). An all-zero ``w`` has scale 0.
    """
    bits = _check_bits(bits)
    if bits < 2:
        raise ValueError("bits=1 is not allowed for symmetric uniform weights; give 2..16")
    w = np.asarray(w, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    m = float(np.max(np.abs(w))) if w.size else 0.0
    if m == 0.0:
        return np.zeros(w.shape, dtype=np.int64), 0.0
    scale = m / qmax
    codes = np.clip(np.rint(w / scale), -qmax, qmax).astype(np.int64)
    return codes, scale


def uniform_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Dequantized symmetric uniform weights (see the module docstring)."""
    codes, scale = uniform_weight_codes(w, bits)
    return codes * scale


def log_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Dequantized log-domain weights: 0 or ``sign * max|w| * 2^-j`` (module docstring)."""
    bits = _check_bits(bits)
    if bits < 2:
        raise ValueError("bits=1 is not allowed for log weights (a sign bit and a code); give 2..16")
    w = np.asarray(w, dtype=np.float64)
    m = float(np.max(np.abs(w))) if w.size else 0.0
    if m == 0.0:
        return np.zeros_like(w)
    levels = 2 ** (bits - 1) - 1  # non-zero magnitudes; one code of 2^(b-1) is zero
    a = np.abs(w)
    with np.errstate(divide="ignore"):
        j = np.rint(-np.log2(a / m))
    j = np.clip(j, 0, None)
    zero = (a == 0) | (a < m * 2.0 ** (-(levels - 1)) / np.sqrt(2.0))
    j = np.minimum(j, levels - 1)
    out = np.sign(w) * m * np.exp2(-j)
    return np.where(zero, 0.0, out)


def quantize_weights(w: np.ndarray, bits: int, kind: str) -> np.ndarray:
    """Weights through the quantizer ``kind`` (one of :data:`WEIGHT_KINDS`)."""
    if kind == "uniform":
        return uniform_weights(w, bits)
    if kind == "log":
        return log_weights(w, bits)
    raise ValueError(f"weight quantizer {kind!r} is unknown; choose one of {', '.join(WEIGHT_KINDS)}")


def act_levels(sample: np.ndarray, bits: int, kind: str) -> np.ndarray:
    """The sorted levels of an activation quantizer calibrated on ``sample`` (module docstring)."""
    bits = _check_bits(bits)
    x = np.asarray(sample, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("act_levels: the calibration sample is empty")
    lo, hi = float(x.min()), float(x.max())
    n = 2 ** bits
    if kind == "uniform":
        if lo >= 0.0:
            return np.linspace(0.0, hi, n) if hi > 0 else np.zeros(1)
        qmax = 2 ** (bits - 1) - 1
        m = max(-lo, hi)
        return np.arange(-qmax, qmax + 1) * (m / qmax) if qmax else np.zeros(1)
    if kind not in ("equal-distance", "kmeans"):
        raise ValueError(f"activation quantizer {kind!r} is unknown; choose one of {', '.join(ACT_KINDS)}")
    if hi == lo:
        return np.array([lo])
    levels = np.linspace(lo, hi, n)
    if kind == "equal-distance":
        return levels
    for _ in range(KMEANS_ITERS):
        idx = _nearest(x, levels)
        sums = np.bincount(idx, weights=x, minlength=n)
        counts = np.bincount(idx, minlength=n)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), levels)
        new = np.sort(new)
        if np.array_equal(new, levels):
            break
        levels = new
    return levels


def _nearest(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest level; exactly half-way goes to the upper level."""
    mids = (levels[:-1] + levels[1:]) / 2.0
    return np.searchsorted(mids, x, side="right")


def quantize_to_levels(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Every value of ``x`` replaced by its nearest level (``levels`` sorted ascending)."""
    levels = np.asarray(levels, dtype=np.float64)
    return levels[_nearest(np.asarray(x, dtype=np.float64), levels)]
