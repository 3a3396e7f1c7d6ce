"""Group-sparse training (GST) layer math, pruning schedules and compression accounting.

NumPy only. A layer's weight matrix W has shape (M, N) (``y = x @ W.T + b`` with ``x`` of shape
(B, N)); it is held in one of three modes:

``dense``
    W stored in full. The gradual-magnitude-pruning (GMP) baseline adds an element mask.
``circ``
    Block-circulant with block size k: W[p*k+r, q*k+c] = v[p, q, (r-c) mod k]. The input width is
    padded with zero columns to a multiple of k (padding is never stored); M must be a multiple of
    k. A per-layer bitmap of kept blocks is carried too (all ones while the layer is circulant).
``sparse``
    Group-sparse: dense values inside the kept k x k blocks of a per-layer bitmap; pruned blocks
    cost nothing (no storage, no cycles).

The circulant kernels are written in the direct (time-domain) form the GST core computes: the
forward is a sum of k rotated products, the input gradient reads the same v in reverse rotation,
and the weight gradient ``dv`` is accumulated without ever forming the dense k x k gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "circ_index", "circ_expand", "circ_project", "circ_forward_direct", "circ_input_grad_direct",
    "circ_weight_grad_direct", "circ_weight_grad_direct_exact", "block_expand", "block_norms",
    "block_bitmap", "prune_more", "magnitude_mask", "cubic_sparsity", "RewardAwareSparsity",
    "CommitRollbackSparsity", "compression_ratio",
]


# ----------------------------------------------------------------------------- circulant algebra

def circ_index(k: int) -> np.ndarray:
    """Return the (k, k) table ``(r - c) mod k``: which v entry sits at row r, column c of a block."""
    r = np.arange(k)[:, None]
    c = np.arange(k)[None, :]
    return (r - c) % k


def circ_expand(v: np.ndarray) -> np.ndarray:
    """Expand circulant parameters v (P, Q, k) into the dense (P*k, Q*k) matrix.

    ``W[p*k+r, q*k+c] = v[p, q, (r-c) mod k]``: the first column of block (p, q) is v[p, q, :].
    """
    p, q, k = v.shape
    blocks = v[:, :, circ_index(k)]  # (P, Q, r, c)
    return np.ascontiguousarray(blocks.transpose(0, 2, 1, 3)).reshape(p * k, q * k)


def circ_project(w: np.ndarray, k: int) -> np.ndarray:
    """Least-squares projection of a dense (P*k, Q*k) matrix onto the circulant set.

    ``v[p, q, d]`` is the mean of the k entries of block (p, q) on the wrapped diagonal
    ``(r - c) mod k == d``. Projecting an expanded v returns v exactly (up to float rounding of
    the mean of k equal values, which is exact).
    """
    m, n = w.shape
    if m % k or n % k:
        raise ValueError(f"circ_project: shape {w.shape} is not a multiple of block size k={k}")
    p, q = m // k, n // k
    blocks = w.reshape(p, k, q, k).transpose(0, 2, 1, 3)  # (P, Q, r, c)
    idx = circ_index(k)
    v = np.zeros((p, q, k), dtype=np.float64)
    for d in range(k):
        rr, cc = np.nonzero(idx == d)
        v[:, :, d] = blocks[:, :, rr, cc].mean(axis=-1)
    return v.astype(w.dtype)


def _split(x: np.ndarray, k: int) -> np.ndarray:
    """(B, Q*k) -> (B, Q, k)."""
    b, n = x.shape
    return x.reshape(b, n // k, k)


def circ_forward_direct(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Direct-form forward ``y = x @ W.T`` for circulant v (P, Q, k) and x (B, Q*k).

    ``y[b, p*k+r] = sum_d sum_q v[p, q, d] * x[b, q*k + (r-d) mod k]``: one (B*k, Q) x (Q, P)
    product per rotation d, so the k x k blocks are never expanded.
    """
    p, q, k = v.shape
    xs = _split(x, k)  # (B, Q, k)
    b = x.shape[0]
    y = np.zeros((b, k, p), dtype=np.result_type(v, x))
    for d in range(k):
        xr = np.roll(xs, d, axis=2)  # xr[b, q, r] = x[b, q, (r-d) mod k]
        y += xr.transpose(0, 2, 1).reshape(b * k, q).dot(v[:, :, d].T).reshape(b, k, p)
    return y.transpose(0, 2, 1).reshape(b, p * k)


def circ_input_grad_direct(v: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Direct-form input gradient ``dx = dy @ W`` for circulant v (P, Q, k), dy (B, P*k).

    ``dx[b, q*k+c] = sum_d sum_p v[p, q, d] * dy[b, p*k + (c+d) mod k]``: the same v, read in
    reverse rotation.
    """
    p, q, k = v.shape
    ds = _split(dy, k)  # (B, P, k)
    b = dy.shape[0]
    dx = np.zeros((b, k, q), dtype=np.result_type(v, dy))
    for d in range(k):
        dr = np.roll(ds, -d, axis=2)  # dr[b, p, c] = dy[b, p, (c+d) mod k]
        dx += dr.transpose(0, 2, 1).reshape(b * k, p).dot(v[:, :, d]).reshape(b, k, q)
    return dx.transpose(0, 2, 1).reshape(b, q * k)


def circ_weight_grad_direct(dy: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Direct-form weight gradient ``dv[p,q,d] = sum_b sum_r dy[b,p*k+r] * x[b,q*k+(r-d) mod k]``.

    One (P, B*k) x (B*k, Q) product per rotation d; the dense (P*k, Q*k) gradient is never
    formed. Accumulation order is whatever BLAS uses (this is the fp32/bf16 fast path); see
    :func:`circ_weight_grad_direct_exact` for the hardware order.
    """
    b = dy.shape[0]
    ds = _split(dy, k)  # (B, P, k)
    xs = _split(x, k)  # (B, Q, k)
    p, q = ds.shape[1], xs.shape[1]
    a = np.ascontiguousarray(ds.transpose(1, 0, 2)).reshape(p, b * k)
    dv = np.empty((p, q, k), dtype=np.result_type(dy, x))
    xt = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (Q, B, k)
    c = np.empty_like(xt)
    for d in range(k):
        # c[q, b, r] = x[b, q*k + (r-d) mod k]: the rotation as two slice copies (np.roll's
        # bookkeeping cost more than the copy at these sizes)
        c[:, :, d:] = xt[:, :, :k - d]
        c[:, :, :d] = xt[:, :, k - d:]
        dv[:, :, d] = a.dot(c.reshape(q, b * k).T)
    return dv


def circ_weight_grad_direct_exact(dy: np.ndarray, x: np.ndarray, k: int, add_fn) -> np.ndarray:
    """Hardware-order dv: for every (p, q, d), products added for b ascending, then r ascending.

    ``add_fn(acc, prod)`` supplies the accumulator arithmetic (the bf16-exact mode passes the
    golden fp32 RNE/FTZ add; products of bf16 values are exact in float32). dy and x hold bf16
    values as float32.
    """
    b = dy.shape[0]
    ds = _split(dy, k)
    xs = _split(x, k)
    p, q = ds.shape[1], xs.shape[1]
    # xrot[b, q, r, d] = x[b, q, (r-d) mod k]
    idx = (np.arange(k)[:, None] - np.arange(k)[None, :]) % k  # [r, d]
    xrot = xs[:, :, idx]  # (B, Q, r, d)
    xrot = np.ascontiguousarray(xrot.transpose(0, 2, 1, 3))  # (B, r, Q, d)
    dcol = np.ascontiguousarray(ds.transpose(0, 2, 1))[:, :, :, None, None]  # (B, r, P, 1, 1)
    acc = np.full((p, q, k), -0.0, dtype=np.float32)
    prod = np.empty((p, q, k), dtype=np.float32)
    for bb in range(b):
        for r in range(k):
            np.multiply(dcol[bb, r], xrot[bb, r][None, :, :], out=prod)
            acc = add_fn(acc, prod)
    return acc


# ----------------------------------------------------------------------------- group sparsity

def block_expand(bitmap: np.ndarray, k: int) -> np.ndarray:
    """Expand a (P, Q) block bitmap into the (P*k, Q*k) element mask."""
    return np.repeat(np.repeat(bitmap, k, axis=0), k, axis=1)


def block_norms(w: np.ndarray, k: int) -> np.ndarray:
    """L2 norm of every k x k block of w (P*k, Q*k) -> (P, Q)."""
    m, n = w.shape
    blocks = w.reshape(m // k, k, n // k, k).astype(np.float64)
    return np.sqrt((blocks ** 2).sum(axis=(1, 3)))


def _keep_top(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Boolean mask keeping the ``round((1-sparsity)*size)`` largest scores (ties: lower index)."""
    n = scores.size
    keep = int(round((1.0 - sparsity) * n))
    keep = min(max(keep, 0), n)
    out = np.zeros(n, dtype=bool)
    if keep:
        order = np.argsort(-scores.reshape(-1), kind="stable")
        out[order[:keep]] = True
    return out.reshape(scores.shape)


def block_bitmap(w: np.ndarray, k: int, sparsity: float) -> np.ndarray:
    """Bitmap of kept k x k blocks: prune the fraction ``sparsity`` of blocks with smallest L2 norm."""
    return _keep_top(block_norms(w, k), sparsity)


def prune_more(bitmap: np.ndarray, scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Bitmap at block sparsity ``sparsity`` that only prunes blocks ``bitmap`` keeps.

    Keeps the ``round((1-sparsity)*size)`` kept blocks with the largest ``scores`` (ties: lower
    index); blocks already pruned stay pruned, and when the bitmap already keeps no more than
    that it is returned unchanged (a copy).
    """
    bitmap = np.asarray(bitmap, dtype=bool)
    if scores.shape != bitmap.shape:
        raise ValueError(f"prune_more: scores {scores.shape} and bitmap {bitmap.shape} differ in shape")
    if int(round((1.0 - sparsity) * bitmap.size)) >= int(bitmap.sum()):
        return bitmap.copy()
    return _keep_top(np.where(bitmap, scores.astype(np.float64), -np.inf), sparsity) & bitmap


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Unstructured magnitude mask: prune the fraction ``sparsity`` of smallest |w| (GMP)."""
    return _keep_top(np.abs(w), sparsity)


# ----------------------------------------------------------------------------- schedules

def cubic_sparsity(t: float, s_final: float, t_start: float, t_end: float,
                   s_init: float = 0.0) -> float:
    """Zhu and Gupta's gradual pruning schedule.

    ``s_t = s_f + (s_i - s_f) * (1 - (t - t_start) / (t_end - t_start))**3`` for t in
    [t_start, t_end]; ``s_i`` before t_start and ``s_f`` after t_end.
    """
    if t <= t_start:
        return float(s_init)
    if t >= t_end:
        return float(s_final)
    frac = (t - t_start) / (t_end - t_start)
    return float(s_final + (s_init - s_final) * (1.0 - frac) ** 3)


def return_holds(ret: float, best: float, delta: float) -> bool:
    """The reward-aware test of both sparsity rules: the return is within ``delta`` of the best."""
    return ret >= best - delta * abs(best)


@dataclass
class RewardAwareSparsity:
    """Reward-aware target sparsity (our rule; the GST paper states only the idea).

    At every evaluation after the warm-up: ``best = max(best, R)``; if the return holds,
    ``R >= best - delta * |best|``, the target rises by ``ds`` (up to ``s_max``), otherwise it
    backs off by ``ds`` (down to ``s_min``). Defaults: ds = 0.05, delta = 0.05, s_min = 0,
    s_max = 0.95, start at 0.
    """

    ds: float = 0.05
    delta: float = 0.05
    s_min: float = 0.0
    s_max: float = 0.95
    s: float = 0.0
    best: float = -math.inf
    history: list = field(default_factory=list)

    def update(self, ret: float) -> float:
        """Feed one evaluation return; return the new target sparsity."""
        self.best = max(self.best, float(ret))
        holds = return_holds(ret, self.best, self.delta)
        if holds:
            self.s = min(self.s + self.ds, self.s_max)
        else:
            self.s = max(self.s - self.ds, self.s_min)
        self.s = round(self.s, 10)  # keep the scripted sequence exact (no 0.30000000000000004)
        self.history.append((float(ret), bool(holds), self.s))
        return self.s

    def state(self) -> dict:
        return {"ds": self.ds, "delta": self.delta, "s_min": self.s_min, "s_max": self.s_max,
                "s": self.s, "best": self.best, "history": list(self.history)}

    @classmethod
    def from_state(cls, st: dict) -> "RewardAwareSparsity":
        return cls(**st)


@dataclass
class CommitRollbackSparsity:
    """Reward-aware sparsity that commits a level only after the return held at it (our rule).

    Two levels: ``committed`` (the return has held there) and ``s`` (the level applied now; above
    ``committed`` while a level is on trial). At every evaluation after the warm-up, with
    ``best = max(best, R)`` and the return holding when ``R >= best - delta * |best|``:

    * on trial (``s > committed``): ``patience`` holding evaluations in a row commit ``s`` and the
      next trial, ``s + ds`` (up to ``s_max``), starts at once; one evaluation that does not hold
      rolls back to ``committed`` (the caller restores what the trial pruned) and the next
      ``cooldown`` evaluations try nothing;
    * at the committed level: after the cool-down, a holding evaluation starts a trial at
      ``committed + ds``; one that does not hold changes nothing (the committed level has held
      before, and a level is never given up on one evaluation).

    ``update`` returns the event: ``trial``, ``commit`` (a level committed and the next on
    trial), ``commit-last`` (committed at ``s_max``), ``hold`` (on trial, not yet committed),
    ``rollback``, ``wait`` (cool-down), ``stay`` (at the committed level, return not holding or
    nothing left to try).
    """

    ds: float = 0.05
    delta: float = 0.05
    s_max: float = 0.95
    patience: int = 1
    cooldown: int = 2
    s: float = 0.0
    committed: float = 0.0
    best: float = -math.inf
    held: int = 0
    wait: int = 0
    history: list = field(default_factory=list)

    def _next(self) -> float:
        return round(min(self.committed + self.ds, self.s_max), 10)

    def update(self, ret: float) -> str:
        """Feed one evaluation return; return the event (the new level is ``self.s``)."""
        self.best = max(self.best, float(ret))
        holds = return_holds(ret, self.best, self.delta)
        if self.s > self.committed:  # a level on trial
            if not holds:
                self.s, self.held, self.wait, event = self.committed, 0, self.cooldown, "rollback"
            else:
                self.held += 1
                if self.held < self.patience:
                    event = "hold"
                else:
                    self.committed, self.held = self.s, 0
                    self.s = self._next()
                    event = "commit" if self.s > self.committed else "commit-last"
        elif self.wait > 0:
            self.wait -= 1
            event = "wait"
        elif holds and self._next() > self.committed:
            self.s, self.held, event = self._next(), 0, "trial"
        else:
            event = "stay"
        self.history.append((float(ret), bool(holds), event, self.committed, self.s))
        return event

    def state(self) -> dict:
        return {k: (list(v) if k == "history" else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, st: dict) -> "CommitRollbackSparsity":
        return cls(**st)


def compression_ratio(stored: int, dense: int) -> float:
    """CR = 1 - stored values / dense values."""
    return 1.0 - stored / dense if dense else 0.0
