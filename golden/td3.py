"""TD3 (Fujimoto et al. 2018) in NumPy, with GST / GMP compression and three numerics modes.

NumPy (and gymnasium for the environments) only. Pieces, top to bottom:

* the fast bf16 kernels on float32-held values live in ``golden.bf16`` (:func:`round_bf16`,
  :func:`gemm_exact`) and are re-exported here;
* :class:`Numerics`: where each mode rounds (``fp32``, ``bf16``, ``bf16-exact``; see docs/td3.md);
* :class:`Layer` (dense / circulant / group-sparse), :class:`MLP`, :class:`Adam`,
  :class:`ReplayBuffer`;
* :class:`TD3Agent`: one update = critic step, and every ``policy_freq``-th update an actor step
  and the soft target updates; it can record a tensor trace of one update;
* :class:`TD3Config` (validated, frozen) and :class:`Trainer`: the environment loop with
  evaluation, pruning schedules, compression-ratio logging and exact checkpoint/resume.
"""

from __future__ import annotations

import difflib
import math
import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from golden import checkpoint, gst
from golden.config import Config, ConfigError, param
from golden.bf16 import (canon_nan, fp32_add_ftz, from_bits, ftz, gemm_exact, min_exponent,  # noqa: F401
                         round_bf16, to_bits)

__all__ = [
    "round_bf16", "gemm_exact", "to_bits", "from_bits", "Numerics", "Layer", "MLP", "Adam",
    "ReplayBuffer", "TD3Agent", "TD3Config", "TD3ConfigError", "Trainer", "check_env_id", "make_env", "PRESETS",
    "NUMERICS", "METHODS", "GST_RULES",
]

NUMERICS = ("fp32", "bf16", "bf16-exact")
METHODS = ("dense", "gmp", "gst")
#: what GST does past the circulant CR 1 - 1/k (docs/td3.md, "GST policy")
GST_RULES = ("switch", "circ-prune", "circ-fine")
F32 = np.float32

# ============================================================================ numerics modes

class Numerics:
    """Where a numerics mode rounds, and how it computes the three layer products.

    ``fp32``: nothing is rounded; products are float32 BLAS. ``bf16``: every tensor the
    accelerator holds (weights as read by the PE array, layer inputs, output gradients, weight
    gradients) is rounded to bf16; products are float32 BLAS on those values (exact bf16
    products, fp32 accumulation in BLAS order). ``bf16-exact``: the same rounding points, and
    every product accumulates in the hardware order (:func:`gemm_exact`).
    """

    def __init__(self, mode: str):
        if mode not in NUMERICS:
            raise ValueError(f"numerics={mode!r} is not allowed; choose one of {', '.join(NUMERICS)}")
        self.mode = mode
        self.bf16 = mode != "fp32"
        self.exact = mode == "bf16-exact"

    def q(self, x: np.ndarray) -> np.ndarray:
        """Round a tensor the accelerator holds (a no-op in fp32)."""
        return round_bf16(x) if self.bf16 else np.asarray(x, dtype=F32)

    def mm(self, a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """``a @ b`` with fp32 accumulation: BLAS order, or the hardware order in bf16-exact.

        ``keep`` marks B's stored entries (group-sparse layers); only the hardware order needs
        it, since a skipped product and an added zero differ only in the sign of a zero sum.
        """
        if self.exact:
            return gemm_exact(a, b, keep)
        return np.dot(a, b)

    def circ_dv(self, dyq: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
        if self.exact:
            dyq, xq = ftz(dyq), ftz(xq)
            # same exponent-grain argument as gemm_exact: skip the flushes when none can occur
            safe = min_exponent(dyq) + min_exponent(xq) - 14 >= -126
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                dv = gst.circ_weight_grad_direct_exact(dyq, xq, k, _add_fast if safe else _add_ftz)
            return canon_nan(dv)
        return gst.circ_weight_grad_direct(dyq, xq, k)


def _add_fast(acc, prod):
    return np.add(acc, prod, out=acc)


def _add_ftz(acc, prod):
    return fp32_add_ftz(acc, ftz(prod))


# ============================================================================ layers and nets

def _ceil_to(n: int, k: int) -> int:
    return -(-n // k) * k


class Layer:
    """One fully connected layer ``y = x @ W.T + b`` held dense, circulant or group-sparse.

    Parameters
    ----------
    name : str
        ``l1``, ``l2``, ... (used in traces and reports).
    n_in, n_out : int
        Logical sizes. Compressed layers pad the input width up to a multiple of ``k`` (zero
        columns, never stored); ``n_out`` must be a multiple of ``k``.
    mode : {"dense", "circ", "sparse"}
    k : int
        Block size of the circulant / group-sparse forms.
    rng : numpy.random.Generator
        Initialisation: PyTorch's ``nn.Linear`` default, U(-1/sqrt(n_in), 1/sqrt(n_in)), for
        W (or each v entry) and b.
    """

    def __init__(self, name: str, n_in: int, n_out: int, mode: str, k: int, rng):
        self.name, self.n_in, self.n_out, self.mode, self.k = name, n_in, n_out, mode, k
        self.compressible = mode != "dense"
        self.n_in_pad = _ceil_to(n_in, k) if mode != "dense" else n_in
        bound = 1.0 / math.sqrt(n_in)
        self.W = self.v = self.bitmap = self.mask = None
        if mode == "circ":
            p, q = n_out // k, self.n_in_pad // k
            self.v = rng.uniform(-bound, bound, (p, q, k)).astype(F32)
            self.bitmap = np.ones((p, q), dtype=bool)
        elif mode == "dense":
            self.W = rng.uniform(-bound, bound, (n_out, n_in)).astype(F32)
        else:
            raise ValueError(f"layer {name}: a layer starts dense or circ, not {mode!r}")
        self.b = rng.uniform(-bound, bound, (n_out,)).astype(F32)
        self.adam: dict[str, list] = {}
        self.version = 0  # bumped on every parameter or mask change
        self._wcache = None

    def touch(self) -> None:
        """Mark the parameters or masks changed (drops the rounded-weight cache)."""
        self.version += 1
        self._wcache = None

    def __getstate__(self):
        st = dict(self.__dict__)
        st["_wcache"] = None
        return st

    def qweight(self, num: "Numerics"):
        """The weight as the PE array reads it (rounded in bf16 modes), cached per version.

        Returns ``(wq, wq_t)``: (n_out, n_in) and its contiguous transpose.
        """
        c = self._wcache
        if c is None or c[0] != (self.version, num.mode):
            wq = np.ascontiguousarray(num.q(self.effective()))
            # BLAS takes the transposed view as it is; the hardware-order loop wants rows
            wq_t = np.ascontiguousarray(wq.T) if num.exact else wq.T
            c = self._wcache = ((self.version, num.mode), wq, wq_t)
        return c[1], c[2]

    # -- parameters -----------------------------------------------------------------------
    def param_names(self) -> tuple[str, str]:
        return ("v" if self.mode == "circ" else "W", "b")

    def param(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def update_mask(self, name: str):
        """Mask for Adam updates of ``name`` (pruned values stay frozen), or None."""
        if name == "b":
            return None
        if self.mode == "circ":
            return None if self.bitmap.all() else self.bitmap[:, :, None]
        if self.mode == "sparse":
            return gst.block_expand(self.bitmap, self.k)
        return self.mask

    def effective(self) -> np.ndarray:
        """The dense (n_out, n_in) float32 weight the layer computes with (masks applied)."""
        if self.mode == "circ":
            v = self.v if self.bitmap.all() else self.v * self.bitmap[:, :, None]
            return gst.circ_expand(v)[:, :self.n_in]
        if self.mode == "sparse":
            return (self.W * gst.block_expand(self.bitmap, self.k))[:, :self.n_in]
        return self.W if self.mask is None else self.W * self.mask

    def stored_mask(self) -> np.ndarray | None:
        """(n_out, n_in) bool: True where a block-structured weight is stored, or None when all
        are (dense, GMP and fully kept circulant layers)."""
        if self.mode in ("circ", "sparse") and not self.bitmap.all():
            return gst.block_expand(self.bitmap, self.k)[:, :self.n_in].astype(bool)
        return None

    # -- compression accounting ---------------------------------------------------------------
    def dense_values(self) -> int:
        return self.n_out * self.n_in

    def stored_values(self) -> int:
        """Weight values held in memory (biases excluded; padding never stored)."""
        if self.mode == "circ":
            return int(self.bitmap.sum()) * self.k
        if self.mode == "sparse":
            return int(gst.block_expand(self.bitmap, self.k)[:, :self.n_in].sum())
        return self.dense_values() if self.mask is None else int(self.mask.sum())

    def meta_bits(self) -> int:
        """Index / bitmap bits (reported apart from CR): one bit per block, or per weight for GMP."""
        if self.mode in ("circ", "sparse"):
            return int(self.bitmap.size)
        return 0 if self.mask is None else int(self.mask.size)

    # -- mode changes -----------------------------------------------------------------------
    def to_sparse(self, bitmap: np.ndarray) -> None:
        """Switch a circulant layer to group-sparse: expand v (and its Adam moments)."""
        assert self.mode == "circ"
        self.W = gst.circ_expand(self.v)
        for key, (m, s) in list(self.adam.items()):
            if key == "v":
                self.adam["W"] = [gst.circ_expand(m), gst.circ_expand(s)]
                del self.adam["v"]
        self.v = None
        self.mode = "sparse"
        self.bitmap = bitmap
        self.touch()

    def to_fine(self) -> None:
        """Switch a circulant layer to its dense form ``W`` (rule ``circ-fine``: the caller puts
        an element mask on it, which is GMP's representation; the PE array runs it with dense
        commands). Adam's moments are expanded with ``m / k`` and ``s / k**2``: ``dv`` sums the
        ``k`` products of a diagonal, so these are the moments of one element's share and the
        first step after the switch moves every element as the circulant step did."""
        assert self.mode == "circ" and self.bitmap.all(), "circ-fine switches unpruned circulant layers"
        k, n = self.k, self.n_in
        self.W = np.ascontiguousarray(gst.circ_expand(self.v)[:, :n])
        if "v" in self.adam:
            m, sq = self.adam.pop("v")
            self.adam["W"] = [np.ascontiguousarray(gst.circ_expand(m)[:, :n] / F32(k)),
                              np.ascontiguousarray(gst.circ_expand(sq)[:, :n] / F32(k * k))]
        self.v = self.bitmap = None
        self.mode, self.n_in_pad = "dense", n
        self.touch()

    # -- products -----------------------------------------------------------------------------
    def forward(self, x: np.ndarray, num: Numerics):
        """Return ``(y, cache)``; y is the fp32 accumulator plus the fp32 bias."""
        xq = num.q(x)
        wq, wq_t = self.qweight(num)
        keep = self.stored_mask() if num.exact and self.mode == "sparse" else None
        y = num.mm(xq, wq_t, None if keep is None else keep.T) + self.b
        return y.astype(F32, copy=False), (xq, wq)

    def backward(self, dy: np.ndarray, cache, num: Numerics, need_dx=True, need_w=True):
        """Return ``(dx, grads, dyq)``; grads maps parameter name -> gradient (masked)."""
        xq, wq = cache
        dyq = num.q(dy)
        dx = num.mm(dyq, wq, self.stored_mask() if num.exact and self.mode == "sparse" else None) if need_dx else None
        grads = {}
        if need_w:
            if self.mode == "circ":
                xp = xq if self.n_in_pad == self.n_in else np.pad(xq, ((0, 0), (0, self.n_in_pad - self.n_in)))
                dv = num.q(num.circ_dv(dyq, xp, self.k))
                if not self.bitmap.all():
                    dv = dv * self.bitmap[:, :, None]
                grads["v"] = dv
            else:
                dw = num.q(num.mm(dyq.T, xq))
                if self.mode == "sparse":
                    if self.n_in_pad != self.n_in:
                        dw = np.pad(dw, ((0, 0), (0, self.n_in_pad - self.n_in)))
                    # pruned blocks are not produced: -0, as the PE array's wgrad mode leaves them
                    dw = np.where(gst.block_expand(self.bitmap, self.k).astype(bool), dw, F32(-0.0))
                elif self.mask is not None:
                    dw = dw * self.mask
                grads["W"] = dw
            grads["b"] = dy.sum(axis=0, dtype=F32)
        return dx, grads, dyq


class MLP:
    """Three-layer ReLU network; ``out_scale`` turns the output into ``tanh(y) * out_scale``."""

    def __init__(self, sizes: list[int], modes: list[str], k: int, rng, out_scale=None):
        self.layers = [Layer(f"l{i + 1}", sizes[i], sizes[i + 1], modes[i], k, rng)
                       for i in range(len(sizes) - 1)]
        self.out_scale = out_scale

    def forward(self, x: np.ndarray, num: Numerics):
        caches = []
        h = x
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            y, c = layer.forward(h, num)
            caches.append((c, y))
            h = np.maximum(y, 0) if i < n - 1 else y
        if self.out_scale is not None:
            t = np.tanh(h)
            caches.append(t)
            return (t * self.out_scale).astype(F32), caches
        return h, caches

    def backward(self, dout: np.ndarray, caches, num: Numerics, need_w=True, need_dx_in=False,
                 record=None):
        """Back-propagate ``dout``; return ``(dx_in, grads per layer)``.

        ``record`` (a dict) receives, per layer name, the tensors a trace needs.
        """
        n = len(self.layers)
        d = dout
        if self.out_scale is not None:
            t = caches[-1]
            d = (d * self.out_scale * (1.0 - t * t)).astype(F32)
        grads = [None] * n
        for i in range(n - 1, -1, -1):
            layer = self.layers[i]
            c, y = caches[i]
            if i < n - 1:
                d = d * (y > 0)
            need_dx = i > 0 or need_dx_in
            dx, g, dyq = layer.backward(d.astype(F32, copy=False), c, num, need_dx=need_dx, need_w=need_w)
            grads[i] = g
            if record is not None:
                rec = {"x": c[0], "dy": dyq, "W": c[1], "grads": g, "mode": layer.mode, "k": layer.k}
                if layer.mode == "circ":
                    v = layer.v if layer.bitmap.all() else layer.v * layer.bitmap[:, :, None]
                    rec["v"] = num.q(v)
                if layer.bitmap is not None:
                    rec["bitmap"] = layer.bitmap.copy()
                record[layer.name] = rec
            d = dx
        return d, grads


class Adam:
    """Adam with PyTorch's update (bias-corrected, eps outside the sqrt), fp32 master weights.

    Moments live in each layer (``layer.adam``) so a mode switch can carry them over. Pruned
    values (the layer's update mask) receive no update: they stay frozen, ready to regrow.
    """

    def __init__(self, lr: float, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.t = 0

    def step(self, layers: list[Layer], grads: list[dict]) -> None:
        self.t += 1
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        step_size = F32(self.lr / bc1)
        sq2 = F32(math.sqrt(bc2))
        for layer, g in zip(layers, grads):
            for name, grad in g.items():
                p = layer.param(name)
                if name not in layer.adam:
                    layer.adam[name] = [np.zeros_like(p), np.zeros_like(p)]
                m, s = layer.adam[name]
                m *= F32(self.b1)
                m += F32(1.0 - self.b1) * grad
                s *= F32(self.b2)
                s += F32(1.0 - self.b2) * grad * grad
                upd = step_size * m / (np.sqrt(s) / sq2 + F32(self.eps))
                mask = layer.update_mask(name)
                if mask is not None:
                    upd = upd * mask
                p -= upd.astype(F32, copy=False)
            layer.touch()


class ReplayBuffer:
    """Fixed-capacity ring buffer of (s, a, r, s', not_done) in float32."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity, self.ptr, self.size = capacity, 0, 0
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self._alloc()

    def _alloc(self):
        c = self.capacity
        self.s = np.zeros((c, self.obs_dim), F32)
        self.a = np.zeros((c, self.act_dim), F32)
        self.r = np.zeros((c, 1), F32)
        self.s2 = np.zeros((c, self.obs_dim), F32)
        self.nd = np.zeros((c, 1), F32)

    def add(self, s, a, r, s2, done: bool) -> None:
        i = self.ptr
        self.s[i], self.a[i], self.r[i], self.s2[i], self.nd[i] = s, a, r, s2, 1.0 - float(done)
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng, n: int):
        idx = rng.integers(0, self.size, size=n)
        return self.s[idx], self.a[idx], self.r[idx], self.s2[idx], self.nd[idx]

    def __getstate__(self):  # only the filled part goes into a checkpoint
        st = dict(self.__dict__)
        for key in ("s", "a", "r", "s2", "nd"):
            st[key] = st[key][:self.size].copy()
        return st

    def __setstate__(self, st):
        self.__dict__.update({k: v for k, v in st.items() if k not in ("s", "a", "r", "s2", "nd")})
        self._alloc()
        for key in ("s", "a", "r", "s2", "nd"):
            getattr(self, key)[:self.size] = st[key]


# ============================================================================ TD3 agent

class TD3Agent:
    """Twin critics, target policy smoothing, delayed policy updates, soft targets.

    ``modes`` gives each layer's starting mode ("dense" or "circ"), the same for actor and
    critics. The two critics are separate networks with their own layers.
    """

    def __init__(self, obs_dim, act_dim, max_action, cfg: "TD3Config", rng):
        self.cfg = cfg
        self.num = Numerics(cfg.numerics)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.max_action = np.asarray(max_action, F32)
        self.rng = rng
        h = list(cfg.hidden)
        modes = ["circ" if (cfg.method == "gst" and f"l{i + 1}" in cfg.compress) else "dense"
                 for i in range(len(h) + 1)]
        k = cfg.block
        self.actor = MLP([obs_dim] + h + [act_dim], modes, k, rng, out_scale=self.max_action)
        self.critic1 = MLP([obs_dim + act_dim] + h + [1], modes, k, rng)
        self.critic2 = MLP([obs_dim + act_dim] + h + [1], modes, k, rng)
        self.actor_t = copy.deepcopy(self.actor)
        self.critic1_t = copy.deepcopy(self.critic1)
        self.critic2_t = copy.deepcopy(self.critic2)
        self.actor_opt = Adam(cfg.lr)
        self.critic_opt = Adam(cfg.lr)
        self.it = 0

    # -- networks ------------------------------------------------------------------------------
    def nets(self):
        """(online, target) pairs: actor, critic1, critic2."""
        return [(self.actor, self.actor_t), (self.critic1, self.critic1_t), (self.critic2, self.critic2_t)]

    def act(self, obs: np.ndarray, num: Numerics | None = None) -> np.ndarray:
        a, _ = self.actor.forward(np.asarray(obs, F32)[None, :], num or self.num)
        return a[0]

    def compression(self) -> dict:
        stored = dense = meta = 0
        for net, _ in self.nets():
            for layer in net.layers:
                stored += layer.stored_values()
                dense += layer.dense_values()
                meta += layer.meta_bits()
        return {"stored": stored, "dense": dense, "cr": gst.compression_ratio(stored, dense),
                "meta_bits": meta}

    def sync_target_masks(self) -> None:
        """Targets mirror their online layer's mode and masks."""
        for net, tgt in self.nets():
            for lo, lt in zip(net.layers, tgt.layers):
                if lo.mode == "sparse" and lt.mode == "circ":
                    lt.to_sparse(lo.bitmap)
                elif lo.mode == "dense" and lt.mode == "circ":  # circ-fine's switch
                    lt.to_fine()
                lt.bitmap, lt.mask = lo.bitmap, lo.mask
                lo.touch()
                lt.touch()

    # -- one update ----------------------------------------------------------------------------
    def update(self, batch, trace: dict | None = None, noise_draw: np.ndarray | None = None) -> dict:
        """One TD3 iteration. ``trace`` (a dict) receives the tensors of this update.

        ``noise_draw`` is the standard-normal draw behind the target policy smoothing noise,
        shaped like the actions; by default it comes from the agent's generator. Passing it
        lets a test replay fixed noise (tests/test_td3_reference.py).
        """
        cfg, num = self.cfg, self.num
        s, a, r, s2, nd = batch
        self.it += 1
        n = s.shape[0]
        ma = self.max_action
        if noise_draw is None:
            noise_draw = self.rng.standard_normal(a.shape)
        noise = np.clip(np.asarray(noise_draw, F32) * (cfg.policy_noise * ma),
                        -cfg.noise_clip * ma, cfg.noise_clip * ma)
        a2, _ = self.actor_t.forward(s2, num)
        a2 = np.clip(a2 + noise, -ma, ma).astype(F32)
        sa2 = np.concatenate([s2, a2], axis=1)
        q1t, _ = self.critic1_t.forward(sa2, num)
        q2t, _ = self.critic2_t.forward(sa2, num)
        target = (r + nd * F32(cfg.gamma) * np.minimum(q1t, q2t)).astype(F32)

        sa = np.concatenate([s, a], axis=1)
        q1, c1 = self.critic1.forward(sa, num)
        q2, c2 = self.critic2.forward(sa, num)
        e1, e2 = q1 - target, q2 - target
        closs = float(np.mean(e1 * e1) + np.mean(e2 * e2))
        rec1 = {} if trace is not None else None
        rec2 = {} if trace is not None else None
        _, g1 = self.critic1.backward((2.0 / n * e1).astype(F32), c1, num, record=rec1)
        _, g2 = self.critic2.backward((2.0 / n * e2).astype(F32), c2, num, record=rec2)
        self.critic_opt.step(self.critic1.layers + self.critic2.layers, g1 + g2)
        info = {"critic_loss": closs}
        if trace is not None:
            trace["critic1"], trace["critic2"] = rec1, rec2

        if self.it % cfg.policy_freq == 0:
            pi, ca = self.actor.forward(s, num)
            q, cq = self.critic1.forward(np.concatenate([s, pi], axis=1), num)
            dq = np.full((n, 1), -1.0 / n, F32)
            dsa, _ = self.critic1.backward(dq, cq, num, need_w=False, need_dx_in=True)
            da = dsa[:, self.obs_dim:]
            reca = {} if trace is not None else None
            _, ga = self.actor.backward(da.astype(F32), ca, num, record=reca)
            self.actor_opt.step(self.actor.layers, ga)
            info["actor_loss"] = float(-q.mean())
            if trace is not None:
                trace["actor"] = reca
            tau = F32(cfg.tau)
            for net, tgt in self.nets():
                for lo, lt in zip(net.layers, tgt.layers):
                    for name in lo.param_names():
                        pt = lt.param(name)
                        pt *= F32(1.0) - tau
                        pt += tau * lo.param(name)
                    lt.touch()
        return info


# ============================================================================ configuration

class TD3ConfigError(ConfigError):
    """A training option is out of range; the message names option, value and what is allowed."""


@dataclass(frozen=True)
class TD3Config(Config):
    """Everything that defines a training run (the checkpoint refuses a different one).

    Defaults are TD3's current reference settings (256-256, lr 3e-4, batch 256, 25k random
    start steps); ``PRESETS["paper2018"]`` is the ICML 2018 network (400-300, lr 1e-3, batch 100).
    Errors speak in ``omnidrl train`` options: ``--steps 0 is not allowed: steps must be ...``.
    """

    NAME = "td3"
    PRESETS = {
        "default": {},
        "paper2018": {"hidden": (400, 300), "lr": 1e-3, "batch": 100, "block": 4},
    }

    env: str = param("HalfCheetah-v5", doc="gymnasium id of a Box-action task")
    method: str = param("dense", choices=METHODS, doc="compression: none, gradual magnitude pruning or GST")
    steps: int = param(1_000_000, lo=1, doc="environment steps in total")
    seed: int = param(0, lo=0, doc="seed of networks, exploration, replay and environment")
    numerics: str = param("bf16", choices=NUMERICS, doc="where values are rounded (docs/td3.md)")
    hidden: tuple[int, ...] = param((256, 256), doc="hidden layer widths")
    lr: float = param(3e-4, doc="Adam learning rate, in (0, 1)")
    batch: int = param(256, lo=1, doc="minibatch size")
    start_steps: int = param(25_000, lo=0, doc="random-action warm-up steps")
    expl_noise: float = param(0.1, doc="exploration noise (fraction of the action range)")
    policy_noise: float = param(0.2, doc="target policy smoothing noise")
    noise_clip: float = param(0.5, doc="clip of the target policy smoothing noise")
    policy_freq: int = param(2, lo=1, doc="critic updates per actor update")
    tau: float = param(0.005, lo=0.0, hi=1.0, doc="soft target update rate")
    gamma: float = param(0.99, lo=0.0, hi=1.0, doc="discount")
    buffer: int = param(1_000_000, lo=1, doc="replay capacity (at least batch)")
    eval_every: int = param(5_000, lo=1, doc="environment steps between evaluations")
    eval_episodes: int = param(10, lo=1, doc="episodes per evaluation")
    block: int = param(8, lo=2, doc="block size k of circulant / group-sparse layers")
    compress: tuple[str, ...] = param(("l2",), doc="hidden layers to compress (l1, l2, ...)")
    gmp_final: float = param(0.9, doc="GMP final sparsity, in [0, 1)")
    gmp_start: float = param(0.2, doc="GMP schedule start (fraction of steps)")
    gmp_end: float = param(0.8, doc="GMP schedule end (fraction of steps)")
    gmp_every: int = param(1_000, lo=1, doc="environment steps between GMP pruning steps (and circ-fine mask updates)")
    gst_ds: float = param(0.05, lo=0.0, hi=1.0, doc="GST sparsity step")
    gst_delta: float = param(0.05, lo=0.0, hi=1.0, doc="GST return-drop tolerance")
    gst_smax: float = param(0.95, lo=0.0, hi=1.0, doc="GST largest sparsity")
    gst_rule: str = param("switch", choices=GST_RULES, omit_default=True,
                          doc="GST past 1 - 1/k: switch to group-sparse, prune circulant blocks (commit / "
                              "rollback), or turn fine-grained sparse at gst_switch")
    gst_patience: int = param(1, lo=1, hi=100, omit_default=True,
                              doc="circ-prune: holding evaluations before a trial level is committed")
    gst_cooldown: int = param(2, lo=0, hi=100, omit_default=True,
                              doc="circ-prune: evaluations after a rollback before the next trial")
    gst_switch: float = param(1 / 3, lo=0.0, hi=1.0, omit_default=True,
                              doc="circ-fine: when the circulant layers turn fine-grained sparse (fraction of steps)")
    gst_ramp: int = param(0, lo=0, omit_default=True,
                          doc="circ-fine: steps after the switch over which the element sparsity rises from 0 "
                              "to gst_smax (cubic, as GMP's); 0: at once")
    ckpt_every: int = param(10_000, lo=1, doc="environment steps between checkpoints")

    #: fields with an ``omnidrl train`` option of their own; the others are set with --set
    OPTIONS = ("env", "method", "steps", "seed", "numerics", "hidden", "batch", "lr", "start_steps", "block",
               "compress", "eval_every", "eval_episodes", "ckpt_every")

    @classmethod
    def reject(cls, name: str, value, allowed: str):
        given = f"--{name.replace('_', '-')} {value!r}" if name in cls.OPTIONS else f"--set {name}={value!r}"
        raise TD3ConfigError(f"{given} is not allowed: {name} must be {allowed}")

    def validate(self) -> None:
        self.check(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden), "hidden",
                   "one or more positive layer widths")
        self.check(0 < self.lr < 1, "lr", "in (0, 1)")
        self.check(0 <= self.gmp_final < 1, "gmp_final", "in [0, 1)")
        self.check(self.gst_rule != "circ-prune" or self.gst_smax < 1, "gst_smax",
                   "below 1.0 with gst_rule=circ-prune (it is the largest fraction of circulant blocks pruned)")
        self.check(self.gst_rule != "circ-fine" or self.gst_smax < 1, "gst_smax",
                   "below 1.0 with gst_rule=circ-fine (it is the element sparsity after the switch)")
        self.check(0 <= self.gmp_start < self.gmp_end <= 1, "gmp_start", "in [0, gmp_end)")
        self.check(self.batch <= self.buffer, "batch",
                   f"at most the replay capacity, buffer={self.buffer} (raise it with --set buffer=N)")
        n_layers = len(self.hidden) + 1
        valid = [f"l{i + 1}" for i in range(n_layers - 1)]  # the output layer stays dense
        for name in self.compress:
            self.check(name in valid, "compress", "a subset of " + ", ".join(valid)
                       + " (the output layer is never compressed)")
        if self.method != "dense":
            for name in self.compress:
                width = self.hidden[int(name[1:]) - 1]
                if width % self.block:
                    divisors = [d for d in range(2, width + 1) if width % d == 0][:6]
                    raise TD3ConfigError(
                        f"--block {self.block} is not allowed: it does not divide the output width "
                        f"{width} of layer {name} (inputs are padded to a multiple of the block, "
                        f"outputs are not); use a divisor of {width}, e.g. "
                        + ", ".join(map(str, divisors)))

    @classmethod
    def preset(cls, name: str = "default", **overrides) -> "TD3Config":
        """The named preset with the options that are not None applied on top."""
        if name not in cls.preset_names():
            raise TD3ConfigError(f"--preset {name!r} is not allowed: choose one of {', '.join(cls.PRESETS)}")
        return super().preset(name, **{k: v for k, v in overrides.items() if v is not None})


#: the training presets (``TD3Config.PRESETS``)
PRESETS = TD3Config.PRESETS


def check_env_id(env_id: str) -> None:
    """Refuse an id gymnasium does not know (one line, with the nearest ids); builds nothing."""
    import gymnasium as gym

    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TD3ConfigError(f"--env {env_id!r} is not a registered gymnasium environment{hint}")


def make_env(env_id: str):
    """``gym.make(env_id)`` with one-line errors for unknown ids and non-Box spaces."""
    import gymnasium as gym

    check_env_id(env_id)
    env = gym.make(env_id)
    for what, space in (("action", env.action_space), ("observation", env.observation_space)):
        if not isinstance(space, gym.spaces.Box):
            env.close()
            raise TD3ConfigError(f"--env {env_id!r} is not allowed: its {what} space is "
                                 f"{type(space).__name__}; TD3 needs a continuous Box space")
    return env


# ============================================================================ environment state

def _time_limit(env):
    w = env
    while w is not None:
        if hasattr(w, "_elapsed_steps"):
            return w
        w = getattr(w, "env", None)
    return None


def env_get_state(env) -> dict:
    """Everything needed to continue an episode bit for bit (MuJoCo integration state)."""
    import mujoco

    u = env.unwrapped
    st = {"np_random": u.np_random.bit_generator.state}
    tl = _time_limit(env)
    st["elapsed"] = None if tl is None else tl._elapsed_steps
    if hasattr(u, "model") and hasattr(u, "data"):
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        buf = np.empty(mujoco.mj_stateSize(u.model, spec), dtype=np.float64)
        mujoco.mj_getState(u.model, u.data, buf, spec)
        st["mujoco"] = buf
    return st


def env_set_state(env, st: dict) -> None:
    import mujoco

    u = env.unwrapped
    u.np_random.bit_generator.state = st["np_random"]
    tl = _time_limit(env)
    if tl is not None:
        tl._elapsed_steps = st["elapsed"]
    if "mujoco" in st:
        mujoco.mj_setState(u.model, u.data, st["mujoco"], mujoco.mjtState.mjSTATE_INTEGRATION)


# ============================================================================ training loop

#: config fields that may differ between a checkpoint and the run that resumes it
RESUMABLE_CHANGES = ("steps", "ckpt_every")

#: the only classes a checkpoint may rebuild (golden.checkpoint refuses any other)
_CHECKPOINT_CLASSES = {c.__name__: c for c in (Layer, MLP, Adam, ReplayBuffer, TD3Agent, Numerics, TD3Config,
                                               gst.RewardAwareSparsity, gst.CommitRollbackSparsity)}
#: what a trainer checkpoint holds besides the trainer's attributes
_CHECKPOINT_KEYS = {"cfg", "env_state", "agent", "replay", "rng", "step"}


class Trainer:
    """The environment loop: warm-up, one update per step, evaluation, pruning, CR logging.

    The whole state (agent, optimizers, replay buffer, RNG, pruning state, the running
    episode's MuJoCo state and every metric accumulator) goes into a checkpoint, so a run stopped
    at any step, or in the middle of an evaluation, resumes exactly (:meth:`state_bytes` /
    :meth:`from_state`).
    """

    def __init__(self, cfg: TD3Config):
        self.cfg = cfg
        self.env = make_env(cfg.env)
        obs_space, act_space = self.env.observation_space, self.env.action_space
        self.obs_dim = int(np.prod(obs_space.shape))
        self.act_dim = int(np.prod(act_space.shape))
        self.max_action = np.asarray(act_space.high, F32).reshape(-1)
        self.rng = np.random.default_rng(cfg.seed)
        self.agent = TD3Agent(self.obs_dim, self.act_dim, self.max_action, cfg, self.rng)
        self.replay = ReplayBuffer(self.obs_dim, self.act_dim, min(cfg.buffer, cfg.steps))
        if cfg.gst_rule == "circ-prune":
            self.policy = gst.CommitRollbackSparsity(ds=cfg.gst_ds, delta=cfg.gst_delta, s_max=cfg.gst_smax,
                                                     patience=cfg.gst_patience, cooldown=cfg.gst_cooldown)
        else:
            self.policy = gst.RewardAwareSparsity(ds=cfg.gst_ds, delta=cfg.gst_delta, s_max=cfg.gst_smax)
        self.gst_events: list = []  # circ-prune: (step, event, committed, level) per evaluation
        self.gst_committed = None  # circ-prune: the committed level's bitmap per compressed layer
        self.gmp_s = 0.0
        self.fine_s = 0.0  # circ-fine: the element sparsity in force (0 before the switch)
        self.fine_start = None  # circ-fine: the step the switch happened at
        self.step = 0
        self.cr_sum = 0.0
        self.n_updates = 0
        self.evals: list[dict] = []
        self.episode = {"num": 0, "ret": 0.0, "len": 0}
        self.last_train_return = None
        self.eval_due = False  # the evaluation of the current step is still to run (interrupted)
        obs, _ = self.env.reset(seed=cfg.seed)
        self.obs = np.asarray(obs, F32).reshape(-1)
        self._cr_cache = self.agent.compression()

    # -- checkpoint ----------------------------------------------------------------------------
    def state_bytes(self) -> bytes:
        """The whole state as checkpoint bytes (:mod:`golden.checkpoint`: the same state gives
        the same bytes, and loading them runs no code from the file)."""
        st = {k: v for k, v in self.__dict__.items() if k != "env"}
        st["env_state"] = env_get_state(self.env)
        st["cfg"] = self.cfg.to_dict()
        return checkpoint.encode(st, _CHECKPOINT_CLASSES)

    @staticmethod
    def checkpoint_config(data: bytes, source="checkpoint") -> dict:
        """The configuration (``TD3Config.to_dict()``) a checkpoint was written with."""
        st = checkpoint.decode(data, _CHECKPOINT_CLASSES, source)
        if not isinstance(st, dict) or not isinstance(st.get("cfg"), dict):
            raise checkpoint.CheckpointError(f"{source} is not a readable checkpoint: it holds no configuration")
        return st["cfg"]

    @classmethod
    def from_state(cls, data: bytes, cfg: TD3Config, source="checkpoint") -> "Trainer":
        """The trainer stored in ``data`` (from :meth:`state_bytes`), continuing under ``cfg``.

        Raises :class:`golden.checkpoint.CheckpointError` for a file that is not a checkpoint and
        :class:`TD3ConfigError` for one written with another configuration.
        """
        st = checkpoint.decode(data, _CHECKPOINT_CLASSES, source)
        missing = sorted(_CHECKPOINT_KEYS - set(st)) if isinstance(st, dict) else ["everything"]
        if missing:
            raise checkpoint.CheckpointError(f"{source} is not a readable checkpoint: it has no "
                                             f"{', '.join(missing)} (not a TD3 training checkpoint)")
        old = st.pop("cfg")
        new = cfg.to_dict()
        new.pop(cfg.NAME_KEY)  # only the fields: older checkpoints carry no name
        defaults = {f.name: f.default for f in dataclasses.fields(cfg) if f.metadata.get("omit_default")}
        diff = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k, defaults.get(k)) != new[k]]
        if diff:
            k = diff[0]
            raise TD3ConfigError(f"--resume is not allowed: the checkpoint was written with {k}="
                                 f"{old.get(k)!r} but this run has {k}={new[k]!r} "
                                 f"(only {', '.join(RESUMABLE_CHANGES)} may change)")
        self = cls.__new__(cls)
        env_state = st.pop("env_state")
        st.setdefault("fine_s", 0.0)  # checkpoints written before rule circ-fine existed
        st.setdefault("fine_start", None)
        self.__dict__.update(st)
        self.cfg = cfg
        self.agent.cfg = cfg
        self.env = make_env(cfg.env)
        self.env.reset(seed=cfg.seed)
        env_set_state(self.env, env_state)
        return self

    # -- pieces --------------------------------------------------------------------------------
    def compressible_layers(self):
        for net, _ in self.agent.nets():
            for layer in net.layers:
                if layer.name in self.cfg.compress:
                    yield layer

    def evaluate(self, should_stop: Callable[[], bool] | None = None) -> list[float] | None:
        """Returns of ``eval_episodes`` noise-free episodes on a separately seeded env.

        bf16-exact runs evaluate with bf16 numerics (same rounding, BLAS order): evaluation
        actions never enter training, and 10k single-sample hardware-order forwards would cost
        more than the training they measure. The evaluation changes no state, so when
        ``should_stop()`` turns true (read every env step) it gives up and returns None; the
        same evaluation can run again later with the same result.
        """
        cfg = self.cfg
        num = Numerics("bf16") if cfg.numerics == "bf16-exact" else self.agent.num
        env = make_env(cfg.env)
        rets = []
        for ep in range(cfg.eval_episodes):
            obs, _ = env.reset(seed=cfg.seed + 10_000 + 100 * len(self.evals) + ep)
            done, total = False, 0.0
            while not done:
                if should_stop is not None and should_stop():
                    env.close()
                    return None
                a = self.agent.act(np.asarray(obs, F32).reshape(-1), num)
                obs, r, term, trunc, _ = env.step(a)
                total += float(r)
                done = term or trunc
            rets.append(total)
        env.close()
        return rets

    def _apply_gmp(self) -> None:
        cfg = self.cfg
        s = gst.cubic_sparsity(self.step, cfg.gmp_final, cfg.gmp_start * cfg.steps, cfg.gmp_end * cfg.steps)
        if s == self.gmp_s:
            return
        self.gmp_s = s
        for layer in self.compressible_layers():
            cur = layer.W if layer.mask is None else layer.W * layer.mask
            layer.mask = gst.magnitude_mask(cur, s).astype(F32)  # pruned weights never return
        self.agent.sync_target_masks()
        self._cr_cache = self.agent.compression()

    def _apply_gst(self, ret: float) -> None:
        if self.cfg.gst_rule == "circ-prune":
            self._apply_circ_prune(ret)
            return
        if self.cfg.gst_rule == "circ-fine":  # on its schedule (_apply_circ_fine), not on returns
            return
        old = self.policy.s
        s = self.policy.update(ret)
        if s == old:
            return
        for layer in self.compressible_layers():
            circ_cr = 1.0 - 1.0 / layer.k
            if layer.mode == "circ" and s > circ_cr:
                w = gst.circ_expand(layer.v)
                layer.to_sparse(gst.block_bitmap(w, layer.k, s))
            elif layer.mode == "sparse":
                # regrow allowed: pruned blocks kept their frozen master values
                layer.bitmap = gst.block_bitmap(layer.W, layer.k, s)
        self.agent.sync_target_masks()
        self._cr_cache = self.agent.compression()

    def _apply_circ_prune(self, ret: float) -> None:
        """circ-prune: the layers stay circulant; the policy's level is the fraction of circulant
        blocks pruned (layer CR ``1 - (1 - s) / k``). A trial prunes, among the committed level's
        kept blocks, those with the smallest ``|v[p, q, :]|``; a rollback restores the committed
        bitmap, so the pruned blocks return with the master values they were frozen at."""
        pol = self.policy
        before = pol.committed
        event = pol.update(ret)
        self.gst_events.append((self.step, event, pol.committed, pol.s))
        layers = list(self.compressible_layers())
        if self.gst_committed is None or pol.committed != before:
            # the level just committed is what the layers hold now
            self.gst_committed = [layer.bitmap.copy() for layer in layers]
        changed = False
        for layer, base in zip(layers, self.gst_committed):
            if pol.s == pol.committed:
                new = base.copy()
            else:
                new = gst.prune_more(base, np.sqrt((layer.v.astype(np.float64) ** 2).sum(axis=2)), pol.s)
            if not np.array_equal(new, layer.bitmap):
                layer.bitmap = new
                changed = True
        if changed:
            self.agent.sync_target_masks()
            self._cr_cache = self.agent.compression()

    def _apply_circ_fine(self) -> None:
        """circ-fine: circulant until ``gst_switch`` of the steps, then every ``gmp_every`` steps
        an element mask keeping the ``1 - s`` largest ``|W|`` of each compressed layer, with
        ``s = gst_smax`` (after ``gst_ramp`` steps of Zhu and Gupta's cubic rise from 0).

        The ranking includes the pruned values, frozen where they were pruned (at the switch: the
        circulant values), so a pruned value returns when kept ones shrink below it. Until the
        switch the layer's CR is ``1 - 1/k``; after the ramp ``gst_smax``."""
        cfg = self.cfg
        if self.step < cfg.gst_switch * cfg.steps:
            return
        if self.fine_start is None:
            self.fine_start = self.step
        start = self.fine_start
        s = gst.cubic_sparsity(self.step, cfg.gst_smax, start, start + cfg.gst_ramp) if cfg.gst_ramp else cfg.gst_smax
        changed = False
        for layer in self.compressible_layers():
            if layer.mode == "circ":
                layer.to_fine()
                changed = True
            mask = gst.magnitude_mask(layer.W, s).astype(F32)
            if layer.mask is None or not np.array_equal(mask, layer.mask):
                layer.mask = mask
                changed = True
        self.fine_s = s
        if changed:
            self.agent.sync_target_masks()
            self._cr_cache = self.agent.compression()

    @property
    def gst_level(self) -> float:
        """The GST sparsity in force: circ-fine's element sparsity, else the reward-aware policy's."""
        return self.fine_s if self.cfg.gst_rule == "circ-fine" else self.policy.s

    def metrics_base(self) -> dict:
        c = self._cr_cache
        return {"step": self.step, "updates": self.n_updates, "cr": round(c["cr"], 6),
                "avg_cr": round(self.cr_sum / self.n_updates, 6) if self.n_updates else None,
                "stored": c["stored"], "dense": c["dense"], "meta_bits": c["meta_bits"],
                "gst_target": self.gst_level, "gmp_target": round(self.gmp_s, 6),
                **({"gst_committed": self.policy.committed} if self.cfg.gst_rule == "circ-prune" else {}),
                "modes": "".join(l.mode[0] for l in self.compressible_layers())}

    # -- the loop ------------------------------------------------------------------------------
    def run(self, until: int | None = None, on_record: Callable[[dict], None] | None = None,
            on_step: Callable[["Trainer"], None] | None = None,
            trace_at: tuple = (), on_trace: Callable[[int, dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
        """Advance to ``until`` env steps (default cfg.steps), calling ``on_record`` per record.

        BLAS runs on one thread inside: ``fp32`` and ``bf16`` numerics multiply through BLAS,
        whose result bits depend on its thread count (OpenBLAS, HalfCheetah-v5 dense seed 0, first
        trained evaluation: -745.35 on one thread, -596.57 on two), so a run, and a run resumed on
        another machine or under another ``OPENBLAS_NUM_THREADS``, stays the same bits.

        Records: ``{"kind": "episode", ...}`` at each training-episode end and
        ``{"kind": "eval", ...}`` at each evaluation. ``trace_at`` lists update numbers
        whose tensors are passed to ``on_trace(update_number, trace)``. ``should_stop()`` is
        read before every step and during evaluations: when it turns true the loop returns at
        once, in a state a checkpoint stores exactly (an evaluation it cut short is flagged in
        ``eval_due`` and runs first when the loop is entered again).
        """
        with threadpool_limits(limits=1, user_api="blas"):
            self._run(until, on_record, on_step, trace_at, on_trace, should_stop)

    def _run(self, until, on_record, on_step, trace_at, on_trace, should_stop) -> None:
        cfg = self.cfg
        until = cfg.steps if until is None else min(until, cfg.steps)
        agent, rng = self.agent, self.rng
        ma = self.max_action
        emit = on_record or (lambda rec: None)
        stop = should_stop or (lambda: False)
        while True:
            if self.eval_due:
                rets = self.evaluate(stop)
                if rets is None:
                    return
                self.eval_due = False
                mean = float(np.mean(rets))
                self.evals.append({"step": self.step, "return": mean})
                if cfg.method == "gst" and self.step > cfg.start_steps:
                    self._apply_gst(mean)
                rec = {"kind": "eval", **self.metrics_base(), "return": round(mean, 4),
                       "returns": [round(x, 4) for x in rets]}
                emit(rec)
                if on_step is not None:
                    on_step(self)
            if self.step >= until or stop():
                return
            if self.step < cfg.start_steps:
                a = rng.uniform(-ma, ma).astype(F32)
            else:
                a = agent.act(self.obs)
                a = np.clip(a + rng.normal(0.0, 1.0, self.act_dim).astype(F32) * (cfg.expl_noise * ma),
                            -ma, ma).astype(F32)
            obs2, r, term, trunc, _ = self.env.step(a)
            obs2 = np.asarray(obs2, F32).reshape(-1)
            self.replay.add(self.obs, a, r, obs2, term)
            self.obs = obs2
            self.episode["ret"] += float(r)
            self.episode["len"] += 1
            self.step += 1

            if self.step > cfg.start_steps:
                if cfg.method == "gmp" and self.step % cfg.gmp_every == 0:
                    self._apply_gmp()
                elif cfg.method == "gst" and cfg.gst_rule == "circ-fine" and self.step % cfg.gmp_every == 0:
                    self._apply_circ_fine()
                batch = self.replay.sample(rng, cfg.batch)
                want = (self.n_updates + 1) in trace_at
                trace = {} if want else None
                agent.update(batch, trace)
                self.n_updates += 1
                self.cr_sum += self._cr_cache["cr"]
                if want and on_trace is not None:
                    on_trace(self.n_updates, trace)

            if term or trunc:
                self.last_train_return = self.episode["ret"]
                rec = {"kind": "episode", **self.metrics_base(), "episode": self.episode["num"],
                       "return": round(self.episode["ret"], 4), "length": self.episode["len"]}
                emit(rec)
                self.episode = {"num": self.episode["num"] + 1, "ret": 0.0, "len": 0}
                obs, _ = self.env.reset()
                self.obs = np.asarray(obs, F32).reshape(-1)

            if self.step % cfg.eval_every == 0:
                self.eval_due = True  # run at the top of the loop: it may be cut short there
            elif on_step is not None:
                on_step(self)

    def summary(self) -> dict:
        c = self._cr_cache
        last = [e["return"] for e in self.evals[-3:]]
        return {"env": self.cfg.env, "method": self.cfg.method, "seed": self.cfg.seed,
                "numerics": self.cfg.numerics, "steps": self.step, "updates": self.n_updates,
                "avg_cr": self.cr_sum / self.n_updates if self.n_updates else 0.0,
                "final_cr": c["cr"], "meta_bits": c["meta_bits"], "stored": c["stored"],
                "dense": c["dense"],
                "final_return": float(np.mean(last)) if last else None,
                "best_return": max((e["return"] for e in self.evals), default=None),
                "evals": self.evals, "gst_target": self.gst_level, "gmp_target": self.gmp_s,
                **({"gst_rule": "circ-prune", "gst_committed": self.policy.committed,
                    "gst_events": [list(e) for e in self.gst_events]} if self.cfg.gst_rule == "circ-prune" else {})}
