"""The networks the mixed-precision search quantizes: the trained TD3 actor and a digits CNN.

Both expose the same interface (:class:`QuantNet`): ``layers`` (a :class:`LayerInfo` per
quantized layer, what the search environment observes and the cost models price),
``evaluate(plan)`` (the accuracy of the network quantized by ``plan``, relative to the float
network: 1.0 = no loss) and ``quantized_weights(plan)`` (what ``omnidrl quantize`` saves). A
plan is one :class:`LayerPlan` per layer. Evaluations are cached by plan (they are deterministic).

* ``td3-actor``: the HalfCheetah-v5 actor (17-256-256-6, ReLU, tanh output) of the committed GST
  run trace ``tests/data/td3_halfcheetah_stages.npz``, stage ``middle`` (step 110,002, evaluation
  return 4,257 in training). The trace holds the weights as the PE array read them, not the
  biases; the hidden biases are recovered from the recorded layer inputs (for a unit active in a
  row, ``b = x_next - W x``; the median over the rows), the output bias is taken as 0 (it is not
  recoverable). The reconstructed float policy returns about 4,300 per 1,000-step episode, as the
  run's own evaluation did. Accuracy = mean return of the quantized policy over fixed seeds
  (``episodes`` episodes of ``steps`` steps) / the same for the float policy.
* ``cnn``: a six-layer CNN (four 3x3 convolutions, two fully connected layers) trained here in
  NumPy on scikit-learn's ``load_digits`` (8x8 images shipped inside the package). Its weights are
  committed (``golden/data/cnn_digits.npz``, :func:`train_digits_cnn` remakes them bit for bit).
  Accuracy = classification accuracy on a validation split / the float network's; the test
  split is held out for the reported figure.

Activation quantizers are calibrated on the float network's layer inputs (a fixed sample): the
trace's recorded inputs for the actor, 256 training images for the CNN.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .quant import act_levels, quantize_to_levels, quantize_weights

__all__ = ["LayerInfo", "LayerPlan", "QUANT_KINDS", "QuantNet", "Td3Actor", "DigitsCnn", "NETS",
           "make_net", "uniform_plan", "train_digits_cnn", "CNN_WEIGHTS", "STAGES_TRACE"]

_ROOT = Path(__file__).resolve().parents[1]
STAGES_TRACE = _ROOT / "tests" / "data" / "td3_halfcheetah_stages.npz"
CNN_WEIGHTS = Path(__file__).resolve().parent / "data" / "cnn_digits.npz"

#: quantizer kinds of one layer: name -> (weight quantizer, activation quantizer)
QUANT_KINDS = {
    "uniform": ("uniform", "uniform"),
    "log-w": ("log", "uniform"),
    "ed-a": ("uniform", "equal-distance"),
    "km-a": ("uniform", "kmeans"),
}
#: log-domain weights carry at most this many code bits: their fixed-point value (which the
#: crossbar or the MAC holds) needs 2^(b-1) bits, 8 at b = 4
LOG_MAX_BITS = 4


@dataclass(frozen=True)
class LayerInfo:
    """What the search sees of a layer and what the cost models price."""
    name: str
    kind: str          # "fc" or "conv"
    fan_in: int        # K: inputs of one dot product (C * kh * kw for a convolution)
    fan_out: int       # M: output channels / features
    kernel: int        # kernel side (1 for fc)
    params: int        # weights (K * M)
    positions: int     # output positions per inference (1 for fc, H_out * W_out for conv)

    @property
    def macs(self) -> int:
        return self.fan_in * self.fan_out * self.positions


@dataclass(frozen=True)
class LayerPlan:
    """The precision chosen for one layer."""
    w_bits: int
    a_bits: int
    kind: str = "uniform"

    def __post_init__(self):
        if self.kind not in QUANT_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; choose one of {', '.join(QUANT_KINDS)}")
        for name in ("w_bits", "a_bits"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not 2 <= int(v) <= 8:
                raise ValueError(f"{name}={v!r} is not allowed; give an integer 2..8")
        if self.kind == "log-w" and self.w_bits > LOG_MAX_BITS:
            raise ValueError(f"w_bits={self.w_bits} is not allowed for log-w; give 2..{LOG_MAX_BITS}")

    @property
    def w_kind(self) -> str:
        return QUANT_KINDS[self.kind][0]

    @property
    def a_kind(self) -> str:
        return QUANT_KINDS[self.kind][1]

    @property
    def w_width(self) -> int:
        """Bits of the weight's fixed-point value in the datapath (log weights: 2^(b-1))."""
        return 2 ** (self.w_bits - 1) if self.kind == "log-w" else self.w_bits

    def as_dict(self) -> dict:
        return asdict(self)


def uniform_plan(n_layers: int, bits: int) -> list[LayerPlan]:
    return [LayerPlan(bits, bits, "uniform") for _ in range(n_layers)]


class QuantNet:
    """Common part: activation levels (cached per layer, kind and bits) and the plan cache."""

    name = ""
    layers: list[LayerInfo]

    def __init__(self):
        self._levels: dict = {}
        self._cache: dict = {}
        self.evaluations = 0  # evaluations actually run (cache misses)

    def _calibration(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Forget cached evaluations (a timed search starts without another's results)."""
        self._cache.clear()
        self.evaluations = 0

    def levels(self, i: int, plan: LayerPlan) -> np.ndarray:
        key = (i, plan.a_kind, plan.a_bits)
        if key not in self._levels:
            self._levels[key] = act_levels(self._calibration(i), plan.a_bits, plan.a_kind)
        return self._levels[key]

    def _check(self, plan) -> tuple:
        plan = tuple(plan)
        if len(plan) != len(self.layers):
            raise ValueError(f"a plan for {self.name} needs {len(self.layers)} layers, got {len(plan)}")
        return plan

    def quantized_weights(self, plan) -> list[np.ndarray]:
        plan = self._check(plan)
        return [quantize_weights(w, p.w_bits, p.w_kind) for w, p in zip(self.float_weights(), plan)]

    def evaluate(self, plan) -> float:
        """Accuracy of the quantized network relative to the float one (cached)."""
        plan = self._check(plan)
        if plan not in self._cache:
            self.evaluations += 1
            self._cache[plan] = float(self._score(plan) / self.reference)
        return self._cache[plan]

    def float_weights(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _score(self, plan) -> float:
        raise NotImplementedError


# ----------------------------------------------------------------------------- TD3 actor

def _recover_bias(w: np.ndarray, x_in: np.ndarray, x_out: np.ndarray) -> np.ndarray:
    """Bias of a ReLU layer from recorded inputs and outputs (median over rows where active)."""
    z = x_in @ w.T
    active = x_out > 0
    b = np.where(active, x_out - z, np.nan)
    none = ~active.any(axis=0)
    b[:, none] = 0.0  # a unit never active: its bias cannot be seen (and does not matter here)
    return np.nanmedian(b, axis=0)


class Td3Actor(QuantNet):
    """The trained HalfCheetah-v5 TD3 actor (module docstring)."""

    name = "td3-actor"

    def __init__(self, episodes: int = 2, steps: int = 400, seed: int = 0, stage: str = "middle",
                 trace: str | Path | None = None):
        super().__init__()
        from .bf16 import from_bits

        with np.load(trace or STAGES_TRACE, allow_pickle=False) as z:
            ws = [from_bits(z[f"{stage}/actor/{l}/W"]).astype(np.float64) for l in ("l1", "l2", "l3")]
            xs = [from_bits(z[f"{stage}/actor/{l}/x"]).astype(np.float64) for l in ("l1", "l2", "l3")]
        # the observation channels span 0.6 .. 29 in magnitude: one per-layer activation scale
        # would drown the small ones, so each channel is divided by its calibration max |x| and
        # that scale is folded into l1's columns (the same float function; see docs/quant.md)
        self.obs_scale = np.abs(xs[0]).max(axis=0)
        self.obs_scale[self.obs_scale == 0] = 1.0
        ws[0] = ws[0] * self.obs_scale
        xs[0] = xs[0] / self.obs_scale
        self.W = ws
        self.b = [_recover_bias(ws[0], xs[0], xs[1]), _recover_bias(ws[1], xs[1], xs[2]), np.zeros(ws[2].shape[0])]
        self.x_cal = xs
        self.episodes, self.steps, self.seed = episodes, steps, seed
        self.layers = [LayerInfo(f"l{i + 1}", "fc", w.shape[1], w.shape[0], 1, w.size, 1) for i, w in enumerate(ws)]
        self._env = None
        self.reference = self._score(None)

    def float_weights(self):
        return self.W

    def float_biases(self):
        return self.b

    def _calibration(self, i):
        return self.x_cal[i]

    def _score(self, plan) -> float:
        import gymnasium as gym

        if self._env is None:
            self._env = gym.make("HalfCheetah-v5")
        if plan is None:
            ws, lv = self.W, [None] * 3
        else:
            ws = self.quantized_weights(plan)
            lv = [self.levels(i, p) for i, p in enumerate(plan)]
        total = 0.0
        for ep in range(self.episodes):
            s, _ = self._env.reset(seed=self.seed + ep)
            for _ in range(self.steps):
                h = np.asarray(s, dtype=np.float64) / self.obs_scale
                for i in range(3):
                    if lv[i] is not None:
                        h = quantize_to_levels(h, lv[i])
                    h = ws[i] @ h + self.b[i]
                    h = np.maximum(h, 0.0) if i < 2 else np.tanh(h)
                s, r, term, trunc, _ = self._env.step(h)
                total += r
                if term or trunc:
                    break
        return total / self.episodes


# ----------------------------------------------------------------------------- digits CNN

#: the CNN: (name, kind, in channels, out channels, max-pool after) ; 8x8 input, 3x3 convs, pad 1
_CNN = (("c1", "conv", 1, 8, False), ("c2", "conv", 8, 16, True), ("c3", "conv", 16, 16, False),
        ("c4", "conv", 16, 32, True), ("f5", "fc", 128, 64, False), ("f6", "fc", 64, 10, False))


def _im2col(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W, C*9): 3x3 patches, zero padding 1, (c, dy, dx) order."""
    b, c, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=2)
    return cols.reshape(b, c * 9, h, w).transpose(0, 2, 3, 1)


def _col2im(g: np.ndarray, c: int) -> np.ndarray:
    """Adjoint of :func:`_im2col`: (B, H, W, C*9) -> (B, C, H, W)."""
    b, h, w, _ = g.shape
    g = g.transpose(0, 3, 1, 2).reshape(b, c, 9, h, w)
    p = np.zeros((b, c, h + 2, w + 2))
    for k, (dy, dx) in enumerate((dy, dx) for dy in range(3) for dx in range(3)):
        p[:, :, dy:dy + h, dx:dx + w] += g[:, :, k]
    return p[:, :, 1:-1, 1:-1]


def _pool(x):
    b, c, h, w = x.shape
    r = x.reshape(b, c, h // 2, 2, w // 2, 2)
    out = r.max(axis=(3, 5))
    mask = r == out[:, :, :, None, :, None]
    return out, mask


def _cnn_forward(params, x, quant=None, keep=False):
    """Logits of the CNN; ``quant(i, inputs) -> inputs`` quantizes layer i's inputs."""
    cache = []
    h = x
    for i, (name, kind, cin, cout, pool) in enumerate(_CNN):
        w, b = params[f"{name}/W"], params[f"{name}/b"]
        if kind == "fc" and h.ndim == 4:
            h = h.reshape(h.shape[0], -1)
        inp = quant(i, h) if quant else h
        if kind == "conv":
            cols = _im2col(inp)
            z = cols @ w.T + b
            z = z.transpose(0, 3, 1, 2)
        else:
            cols = inp
            z = inp @ w.T + b
        if i == len(_CNN) - 1:
            cache.append((cols, None, None, inp.shape))
            return (z, cache) if keep else z
        a = np.maximum(z, 0.0)
        mask = None
        if pool:
            a, mask = _pool(a)
        cache.append((cols, z, mask, inp.shape))
        h = a
    raise AssertionError("unreachable")


def _digits_split():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0)[:, None, :, :].astype(np.float64)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(y))
    tr, va, te = order[:1197], order[1197:1497], order[1497:]
    return (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te])


def train_digits_cnn(epochs: int = 30, seed: int = 0, lr: float = 2e-3, batch: int = 64,
                     out: str | Path | None = None, quiet: bool = True) -> dict:
    """Train the CNN with Adam on the training split; return (and optionally save) its params."""
    (xt, yt), (xv, yv), _ = _digits_split()
    rng = np.random.default_rng(seed)
    params = {}
    for name, kind, cin, cout, _ in _CNN:
        fan = cin * 9 if kind == "conv" else cin
        params[f"{name}/W"] = rng.standard_normal((cout, fan)) * np.sqrt(2.0 / fan)
        params[f"{name}/b"] = np.zeros(cout)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    t = 0
    for ep in range(epochs):
        perm = rng.permutation(len(yt))
        for s in range(0, len(yt), batch):
            idx = perm[s:s + batch]
            logits, cache = _cnn_forward(params, xt[idx], keep=True)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g = p
            g[np.arange(len(idx)), yt[idx]] -= 1.0
            g /= len(idx)
            grads = {}
            for i in range(len(_CNN) - 1, -1, -1):
                name, kind, cin, cout, pool = _CNN[i]
                cols, z, mask, in_shape = cache[i]
                if i < len(_CNN) - 1:  # through ReLU (and pool) of layer i
                    if pool:
                        b_, c_, h2, w2 = g.shape
                        g = (g[:, :, :, None, :, None] * mask).reshape(b_, c_, h2 * 2, w2 * 2)
                    g = g * (z > 0)
                if kind == "conv":
                    gz = g.transpose(0, 2, 3, 1)  # (B, H, W, Cout)
                    grads[f"{name}/W"] = np.einsum("bhwo,bhwk->ok", gz, cols)
                    grads[f"{name}/b"] = gz.sum(axis=(0, 1, 2))
                    g = _col2im(gz @ params[f"{name}/W"], cin)
                else:
                    grads[f"{name}/W"] = g.T @ cols
                    grads[f"{name}/b"] = g.sum(axis=0)
                    g = g @ params[f"{name}/W"]
                    if i == 4:  # f5's input is c4's pooled output, flattened
                        g = g.reshape(-1, 32, 2, 2)
            t += 1
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                params[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
        if not quiet:
            acc = float(np.mean(_cnn_forward(params, xv).argmax(axis=1) == yv))
            print(f"cnn: epoch {ep + 1}/{epochs}  validation accuracy {acc:.4f}", flush=True)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        meta = {"epochs": epochs, "seed": seed, "lr": lr, "batch": batch, "data": "sklearn load_digits",
                "split": "1197 train / 300 validation / 300 test, permutation seed 1234"}
        np.savez(out, meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
                 **{k: p.astype(np.float32) for k, p in params.items()})
    return params


class DigitsCnn(QuantNet):
    """The digits CNN (module docstring); ``split`` = "val" for the search, "test" for reports."""

    name = "cnn"

    def __init__(self, weights: str | Path | None = None, split: str = "val"):
        super().__init__()
        with np.load(weights or CNN_WEIGHTS, allow_pickle=False) as z:
            self.params = {k: z[k].astype(np.float64) for k in z.files if k != "meta"}
        (xt, _), val, test = _digits_split()
        if split not in ("val", "test"):
            raise ValueError(f"split={split!r} is not allowed; choose val or test")
        self.x, self.y = val if split == "val" else test
        self._cal_x = xt[:256]
        self._cal = None
        self.layers = []
        hw = 8
        for name, kind, cin, cout, pool in _CNN:
            if kind == "conv":
                self.layers.append(LayerInfo(name, "conv", cin * 9, cout, 3, cin * 9 * cout, hw * hw))
                hw //= 2 if pool else 1
            else:
                self.layers.append(LayerInfo(name, "fc", cin, cout, 1, cin * cout, 1))
        self.reference = self._score(None)

    def float_weights(self):
        return [self.params[f"{name}/W"] for name, *_ in _CNN]

    def float_biases(self):
        return [self.params[f"{name}/b"] for name, *_ in _CNN]

    def _calibration(self, i):
        if self._cal is None:
            ins = []
            _cnn_forward(self.params, self._cal_x, quant=lambda j, h: ins.append(h) or h)
            self._cal = ins
        return self._cal[i]

    def _score(self, plan) -> float:
        if plan is None:
            logits = _cnn_forward(self.params, self.x)
        else:
            params = dict(self.params)
            for (name, *_), w in zip(_CNN, self.quantized_weights(plan)):
                params[f"{name}/W"] = w
            lv = [self.levels(i, p) for i, p in enumerate(plan)]
            logits = _cnn_forward(params, self.x, quant=lambda i, h: quantize_to_levels(h, lv[i]))
        return float(np.mean(logits.argmax(axis=1) == self.y))


NETS = {"td3-actor": Td3Actor, "cnn": DigitsCnn}


def make_net(name: str, **kw) -> QuantNet:
    if name not in NETS:
        raise ValueError(f"--net {name!r} is not allowed; choose one of {', '.join(NETS)}")
    return NETS[name](**kw)
