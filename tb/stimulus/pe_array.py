"""Stimulus for the GST core (``hdl.pe_array``): random bf16 operands, random commands in every
mode and GEMM role, the GEMMs of a recorded TD3 trace, and command sequences for the two-bank
(ping-pong) array.

Each generator returns :class:`golden.pe_array.Job` objects, whose expected beats and cycles
come from the golden model; nothing here decides what a result should be. ``shape`` is anything
with ``rows``, ``cols`` and ``block_size`` (``PEArrayConfig`` itself, or
``golden.pe_array.ArrayShape``).
"""

from __future__ import annotations

import numpy as np

from golden.bf16 import bf16_edge_values, bf16_to_f32
from golden.gst import block_bitmap
from golden.pe_array import ArrayShape, Job, make_job

__all__ = ["rand_bf16", "edge_bf16", "random_jobs", "trace_jobs", "bank_sequence"]


def rand_bf16(rng: np.random.Generator, shape, wild: float = 0.05) -> np.ndarray:
    """Values near 1 with random signs (real rounding and cancellation), some arbitrary patterns."""
    n = int(np.prod(shape))
    near = ((rng.integers(0, 2, n) << 15) | ((127 + rng.integers(-6, 7, n)) << 7)
            | rng.integers(0, 128, n)).astype(np.uint16)
    anyp = rng.integers(0, 1 << 16, n).astype(np.uint16)
    return np.where(rng.random(n) < wild, anyp, near).astype(np.uint16).reshape(shape)


def edge_bf16(rng: np.random.Generator, shape) -> np.ndarray:
    """:func:`rand_bf16` with bf16 edge classes (signed zeros, subnormals, Inf, NaN, extremes)."""
    x = rand_bf16(rng, shape, wild=0.1)
    e = bf16_edge_values()
    mask = rng.random(x.shape) < 0.15
    x[mask] = e[rng.integers(0, len(e), int(mask.sum()))]
    return x


def random_jobs(rng: np.random.Generator, shape: ArrayShape, max_blocks: int, *, edge: bool = False,
                scale: int = 1) -> list[Job]:
    """Every GEMM role in every mode with random shapes (most not dividing the array).

    ``scale`` stretches the shapes (1 for Icarus, larger for Verilator).
    """
    gen = edge_bf16 if edge else rand_bf16
    k, r_, c_ = shape.block_size, shape.rows, shape.cols

    def dim(lo, hi):
        return int(rng.integers(lo, hi * scale + 1))

    jobs = []
    # dense: forward W.x, input gradient W^T.d (host loads W^T), weight gradient d.x^T
    for _ in range(3):
        m, kd, n = dim(1, 2 * r_ + 1), dim(1, 2 * k), dim(1, 2 * c_ + 1)
        jobs.append(make_job("dense", shape, gen(rng, (m, kd)), gen(rng, (kd, n)),
                             round_bf16=bool(rng.integers(0, 2))))
    # sparse: A = W (or W^T with the transposed bitmap) with random kept blocks, one empty row
    for transpose in (False, True):
        p, q = dim(1, 3), dim(1, 3)
        p, q = min(p, max_blocks), min(q, max_blocks)
        bm = (rng.random((p, q)) < 0.5).astype(np.uint8)
        if p > 1:
            bm[rng.integers(0, p)] = 0
        w = gen(rng, (p * k, q * k))
        if transpose:
            w, bm = np.ascontiguousarray(w.T), np.ascontiguousarray(bm.T)
        jobs.append(make_job("sparse", shape, w, gen(rng, (w.shape[1], dim(1, 2 * c_))), bitmap=bm,
                             max_blocks=max_blocks))
    # wgrad: dW tiles of kept blocks only
    p, q = min(dim(1, 4), max_blocks), min(dim(1, 3), max_blocks)
    bm = (rng.random((p, q)) < 0.5).astype(np.uint8)
    dy = gen(rng, (p * k, dim(1, 6)))
    jobs.append(make_job("wgrad", shape, dy, gen(rng, (dy.shape[1], q * k)), bitmap=bm, max_blocks=max_blocks))
    # circulant forward and transpose from the same v, and dv
    p, q = dim(1, 3), dim(1, 3)
    v = gen(rng, (p, q, k))
    jobs.append(make_job("circ", shape, v, gen(rng, (q * k, dim(1, 2 * c_)))))
    jobs.append(make_job("circ", shape, v, gen(rng, (p * k, dim(1, 2 * c_))), transpose=True))
    bt = dim(1, 4)
    jobs.append(make_job("dv", shape, gen(rng, (p * k, bt)), gen(rng, (bt, q * k))))
    return jobs


def trace_jobs(trace: dict, shape: ArrayShape, *, batch: int | None = None, sparsity: float = 0.75,
               max_blocks: int = 64, methods=("dense", "gst")) -> list[tuple[str, Job]]:
    """The three GEMMs of every layer of a recorded TD3 trace, as (name, job).

    Dense layers run dense forward (A = W, B = X^T), input gradient (A = W^T, B = dY^T) and weight
    gradient (A = dY^T, B = X); circulant layers run circ, circ with transpose and dv from their
    v. Every dense layer whose shape divides into blocks also runs the group-sparse forward,
    input gradient and weight gradient with the bitmap that keeps the largest-norm blocks at
    ``sparsity`` (golden.gst.block_bitmap on the real weights). ``batch`` takes the first rows.
    """
    k = shape.block_size
    out = []
    names = sorted({key.rsplit("/", 1)[0] for key in trace if key.count("/") == 3})
    for name in names:
        if name.split("/")[0] not in methods:
            continue
        w, x, dy = trace[f"{name}/W"], trace[f"{name}/x"], trace[f"{name}/dy"]
        if batch is not None:
            x, dy = x[:batch], dy[:batch]
        xt, dyt = np.ascontiguousarray(x.T), np.ascontiguousarray(dy.T)
        if f"{name}/v" in trace:
            v = trace[f"{name}/v"]
            if v.shape[2] != k:
                continue
            q_ = v.shape[1]
            xp = np.zeros((x.shape[0], q_ * k), np.uint16)
            xp[:, :x.shape[1]] = x
            out.append((f"{name}/fwd-circ", make_job("circ", shape, v, np.ascontiguousarray(xp.T))))
            out.append((f"{name}/dx-circ", make_job("circ", shape, v, dyt, transpose=True)))
            out.append((f"{name}/dv", make_job("dv", shape, dyt, xp)))
            continue
        out.append((f"{name}/fwd", make_job("dense", shape, w, xt)))
        out.append((f"{name}/dx", make_job("dense", shape, np.ascontiguousarray(w.T), dyt)))
        out.append((f"{name}/dW", make_job("dense", shape, dyt, x)))
        m, n = w.shape
        if m % k == 0 and n % k == 0 and m // k <= max_blocks and n // k <= max_blocks:
            bm = block_bitmap(bf16_to_f32(w), k, sparsity).astype(np.uint8)
            ws = np.where(np.repeat(np.repeat(bm, k, 0), k, 1).astype(bool), w, 0).astype(np.uint16)
            out.append((f"{name}/fwd-sparse", make_job("sparse", shape, ws, xt, bitmap=bm, max_blocks=max_blocks)))
            out.append((f"{name}/dx-sparse", make_job("sparse", shape, np.ascontiguousarray(ws.T), dyt,
                                                      bitmap=np.ascontiguousarray(bm.T), max_blocks=max_blocks)))
            out.append((f"{name}/dW-sparse", make_job("wgrad", shape, dyt, x, bitmap=bm, max_blocks=max_blocks)))
    return out


def bank_sequence(rng: np.random.Generator, shape: ArrayShape, max_blocks: int, banks: int, *,
                  edge: bool = False, scale: int = 1) -> list[Job]:
    """:func:`random_jobs` in bank order for a command sequence with overlapped loads: job i
    fills and reads bank ``i % banks`` (one-bank jobs carry no bank field)."""
    jobs = random_jobs(rng, shape, max_blocks, edge=edge, scale=scale)
    return [job.in_bank(i % banks) if banks > 1 else job for i, job in enumerate(jobs)]
