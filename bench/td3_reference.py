"""Reference vectors for the golden TD3 update, computed independently with PyTorch.

The golden TD3 (``golden/td3.py``) is NumPy with hand-written backward passes and its own Adam.
This script computes the same updates from the TD3 paper's definition (Fujimoto et al. 2018,
the form of sfujim/TD3) with torch autograd and ``torch.optim.Adam`` in float64, from fixed
weights, fixed batches and fixed target-smoothing noise, and writes every tensor after each
update to ``tests/data/td3_reference.npz``. ``tests/test_td3_reference.py`` (no torch needed)
runs ``golden.td3`` in ``fp32`` on the same inputs and compares. Nothing here imports the
golden model: the two sides share only the inputs and the hyper-parameters written below.

Two agents, the same inputs otherwise:

* ``dense``: every layer a dense ``nn.Linear``-style weight;
* ``circ``: ``l1`` and ``l2`` block-circulant (block k = 4). The dense weight is built from v
  (``W[p*k+r, q*k+c] = v[p, q, (r-c) mod k]``, the input padded to a multiple of k and the
  padding columns dropped) and autograd carries the gradient back to v through the expansion.

Four updates with policy delay 2: updates 1 and 3 step the critics only; updates 2 and 4 also
step the actor and soft-update all three targets. The inputs are chosen so that every part of
the update shows in the result: targets differ from the online nets (a swapped tau moves them
far), some transitions are terminal, about a fifth of the noise entries lie beyond the noise
clip, and the action bounds differ per dimension. A single circulant layer's forward, input
gradient and weight gradient are written too (``layer/...``).

Conditioning: the test compares fp32 against float64, so the script refuses inputs on which
fp32 rounding could flip a discrete decision or swamp a value: it runs the same updates once
more in float32 and requires every ReLU input and every gradient entry Adam receives to be at
least ``MIN_MARGIN`` times its own float32 rounding error (a gradient near zero is Adam's weak
point: its first step moves a weight by about ``lr * sign(g)`` whatever the size of g).

    .venv/bin/pip install -e '.[bench]'      # torch
    .venv/bin/python bench/td3_reference.py  # writes tests/data/td3_reference.npz
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, bench_parser, utc_now  # noqa: E402

OUT = ROOT / "tests" / "data" / "td3_reference.npz"

OBS, ACT, HIDDEN, BATCH, BLOCK, UPDATES = 5, 3, (16, 16), 8, 4, 4
MAX_ACTION = (1.0, 2.0, 0.5)
#: TD3's settings (sfujim/TD3; also golden's TD3Config defaults); Adam as torch.optim.Adam's defaults
HYPER = {"lr": 3e-4, "gamma": 0.99, "tau": 0.005, "policy_noise": 0.2, "noise_clip": 0.5, "policy_freq": 2}
ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}
#: the layers each agent holds block-circulant
AGENTS = {"dense": (), "circ": ("l1", "l2")}
NETS = ("actor", "critic1", "critic2")
#: the noise draw is scaled up so that some entries pass the clip (policy_noise * |z| > noise_clip)
NOISE_SCALE = 2.0
DONE_PER_BATCH = 3
#: an entry must be this many times its float32 rounding error (see Conditioning above)
MIN_MARGIN = 1000.0
#: the standalone circulant layer: n_in not a multiple of k, so the padding is exercised
LAYER = {"n_in": 10, "n_out": 12, "k": 4, "batch": 5}


# ----------------------------------------------------------------------------- inputs (NumPy)

def net_sizes(net: str) -> list[int]:
    out = ACT if net == "actor" else 1
    first = OBS if net == "actor" else OBS + ACT
    return [first, *HIDDEN, out]


def draw_params(rng, net: str, circ_layers) -> dict[str, np.ndarray]:
    """``nn.Linear``'s default init, U(-1/sqrt(n_in), 1/sqrt(n_in)), for W or v and b."""
    sizes = net_sizes(net)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = 1.0 / math.sqrt(n_in)
        if f"l{i}" in circ_layers:
            shape = (n_out // BLOCK, -(-n_in // BLOCK), BLOCK)
            params[f"l{i}/v"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        else:
            params[f"l{i}/W"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        params[f"l{i}/b"] = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
    return params


def draw_batch(rng) -> dict[str, np.ndarray]:
    ma = np.asarray(MAX_ACTION, np.float32)
    done = np.zeros((BATCH, 1), np.float32)
    done[rng.permutation(BATCH)[:DONE_PER_BATCH]] = 1.0
    return {
        "s": rng.standard_normal((BATCH, OBS)).astype(np.float32),
        "a": (rng.uniform(-1.0, 1.0, (BATCH, ACT)) * ma).astype(np.float32),
        "r": rng.standard_normal((BATCH, 1)).astype(np.float32),
        "s2": rng.standard_normal((BATCH, OBS)).astype(np.float32),
        "done": done,
        "noise_draw": (rng.standard_normal((BATCH, ACT)) * NOISE_SCALE).astype(np.float32),
    }


# ----------------------------------------------------------------------------- PyTorch TD3

def circulant_weight(torch, v, n_in: int):
    """The dense weight of circulant v (P, Q, k): column c of block (p, q) is v[p, q] rolled by c.

    ``torch.roll(x, c)[r] == x[(r - c) mod k]``, so ``W[p*k+r, q*k+c] = v[p, q, (r-c) mod k]``;
    the padding columns (beyond ``n_in``) are dropped.
    """
    p_blocks, q_blocks, k = v.shape
    rows = []
    for p in range(p_blocks):
        blocks = [torch.stack([torch.roll(v[p, q], c) for c in range(k)], dim=1) for q in range(q_blocks)]
        rows.append(torch.cat(blocks, dim=1))
    return torch.cat(rows, dim=0)[:, :n_in]


class TorchMLP:
    """A ReLU MLP over named leaf tensors; the actor's output is ``tanh(y) * max_action``."""

    def __init__(self, torch, params: dict[str, np.ndarray], sizes: list[int], dtype, out_scale=None):
        self.torch, self.sizes, self.out_scale = torch, sizes, out_scale
        self.params = {name: torch.tensor(arr, dtype=dtype, requires_grad=True) for name, arr in params.items()}

    def weight(self, i: int):
        if f"l{i}/v" in self.params:
            return circulant_weight(self.torch, self.params[f"l{i}/v"], self.sizes[i - 1])
        return self.params[f"l{i}/W"]

    def __call__(self, x, relu_inputs: list | None = None):
        n_layers = len(self.sizes) - 1
        for i in range(1, n_layers + 1):
            x = x @ self.weight(i).T + self.params[f"l{i}/b"]
            if i < n_layers:
                if relu_inputs is not None:
                    relu_inputs.append(x.detach().numpy().astype(np.float64))
                x = self.torch.relu(x)
        return x if self.out_scale is None else self.torch.tanh(x) * self.out_scale


class TorchTD3:
    """TD3's update as in the paper: twin critics, clipped target smoothing, delayed actor."""

    def __init__(self, torch, init: dict[str, dict[str, np.ndarray]], dtype):
        self.torch, self.dtype = torch, dtype
        self.max_action = torch.tensor(MAX_ACTION, dtype=dtype)
        self.nets = {}
        for name in NETS:
            for suffix in ("", "_t"):
                scale = self.max_action if name == "actor" else None
                self.nets[name + suffix] = TorchMLP(torch, init[name + suffix], net_sizes(name), dtype, scale)
        for name in NETS:  # targets take no gradient
            for p in self.nets[name + "_t"].params.values():
                p.requires_grad_(False)
        adam = {"lr": HYPER["lr"], "betas": (ADAM["b1"], ADAM["b2"]), "eps": ADAM["eps"]}
        self.actor_opt = torch.optim.Adam(list(self.nets["actor"].params.values()), **adam)
        self.critic_opt = torch.optim.Adam(list(self.nets["critic1"].params.values())
                                           + list(self.nets["critic2"].params.values()), **adam)
        self.iteration = 0
        # every ReLU input and every gradient handed to Adam, in order (for the conditioning check)
        self.relu_inputs: list[np.ndarray] = []
        self.gradients: list[np.ndarray] = []

    def _note_gradients(self, nets) -> None:
        for net in nets:
            self.gradients += [p.grad.numpy().astype(np.float64) for p in self.nets[net].params.values()]

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        torch, h, n = self.torch, HYPER, self.nets
        t = {k: torch.tensor(v, dtype=self.dtype) for k, v in batch.items()}
        ma, relu = self.max_action, self.relu_inputs
        self.iteration += 1
        with torch.no_grad():
            noise = torch.clamp(t["noise_draw"] * h["policy_noise"] * ma,
                                -h["noise_clip"] * ma, h["noise_clip"] * ma)
            next_action = torch.clamp(n["actor_t"](t["s2"], relu) + noise, -ma, ma)
            next_sa = torch.cat([t["s2"], next_action], dim=1)
            next_q = torch.min(n["critic1_t"](next_sa, relu), n["critic2_t"](next_sa, relu))
            target_q = t["r"] + (1.0 - t["done"]) * h["gamma"] * next_q
        sa = torch.cat([t["s"], t["a"]], dim=1)
        critic_loss = (torch.nn.functional.mse_loss(n["critic1"](sa, relu), target_q)
                       + torch.nn.functional.mse_loss(n["critic2"](sa, relu), target_q))
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self._note_gradients(("critic1", "critic2"))
        self.critic_opt.step()
        losses = {"critic_loss": critic_loss.item()}
        if self.iteration % h["policy_freq"] == 0:
            policy_sa = torch.cat([t["s"], n["actor"](t["s"], relu)], dim=1)
            actor_loss = -n["critic1"](policy_sa, relu).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self._note_gradients(("actor",))
            self.actor_opt.step()
            losses["actor_loss"] = actor_loss.item()
            with torch.no_grad():
                for name in NETS:
                    online, target = n[name].params, n[name + "_t"].params
                    for key, p in online.items():
                        target[key].copy_(h["tau"] * p + (1.0 - h["tau"]) * target[key])
        return losses

    def state(self) -> dict[str, np.ndarray]:
        """Every parameter of the six nets, and the Adam moments of the online ones once they exist."""
        out = {}
        for name, net in self.nets.items():
            opt = self.actor_opt if name == "actor" else self.critic_opt
            for key, p in net.params.items():
                out[f"{name}/{key}"] = p.detach().numpy().copy()
                moments = opt.state.get(p, {}) if not name.endswith("_t") else {}
                if "exp_avg" in moments:
                    out[f"{name}/{key}/adam_m"] = moments["exp_avg"].numpy().copy()
                    out[f"{name}/{key}/adam_s"] = moments["exp_avg_sq"].numpy().copy()
        return out


def circulant_layer_reference(torch, rng) -> dict[str, np.ndarray]:
    """One circulant layer: y = x W^T + b, and the gradients of sum(y * dy) for x, v and b."""
    n_in, n_out, k, b = LAYER["n_in"], LAYER["n_out"], LAYER["k"], LAYER["batch"]
    bound = 1.0 / math.sqrt(n_in)
    inputs = {
        "v": rng.uniform(-bound, bound, (n_out // k, -(-n_in // k), k)).astype(np.float32),
        "b": rng.uniform(-bound, bound, (n_out,)).astype(np.float32),
        "x": rng.standard_normal((b, n_in)).astype(np.float32),
        "dy": rng.standard_normal((b, n_out)).astype(np.float32),
    }
    t = {key: torch.tensor(arr, dtype=torch.float64, requires_grad=True) for key, arr in inputs.items()}
    y = t["x"] @ circulant_weight(torch, t["v"], n_in).T + t["b"]
    y.backward(t["dy"])
    out = {f"layer/{key}": arr for key, arr in inputs.items()}
    out.update({"layer/y": y.detach().numpy(), "layer/dx": t["x"].grad.numpy(),
                "layer/dv": t["v"].grad.numpy(), "layer/db": t["b"].grad.numpy()})
    return out


# ----------------------------------------------------------------------------- main

def margin(exact: list[np.ndarray], rounded: list[np.ndarray]) -> float:
    """Smallest ``|x| / |x - x_fp32|`` over all entries (entries exactly 0 in both runs left out)."""
    worst = math.inf
    for x, y in zip(exact, rounded, strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((x == 0) & (y == 0), np.inf, np.abs(x) / np.abs(x - y))
        worst = min(worst, float(ratio.min()))
    return worst


def build(seed: int) -> tuple[dict[str, np.ndarray], dict]:
    import torch

    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    batches = [draw_batch(rng) for _ in range(UPDATES)]
    for u, batch in enumerate(batches, start=1):
        arrays.update({f"inputs/u{u}/{key}": arr for key, arr in batch.items()})
    margins = {}
    for agent, circ_layers in AGENTS.items():
        # targets are drawn apart from their online nets, as they are after any training
        init = {name + suffix: draw_params(rng, name, circ_layers) for name in NETS for suffix in ("", "_t")}
        arrays.update({f"{agent}/init/{net}/{key}": arr for net, p in init.items() for key, arr in p.items()})
        td3, td3_fp32 = TorchTD3(torch, init, torch.float64), TorchTD3(torch, init, torch.float32)
        for u, batch in enumerate(batches, start=1):
            losses = td3.update(batch)
            td3_fp32.update(batch)
            arrays.update({f"{agent}/after{u}/{key}": arr for key, arr in td3.state().items()})
            arrays.update({f"{agent}/after{u}/{key}": np.float64(val) for key, val in losses.items()})
        margins[agent] = {"relu_input": margin(td3.relu_inputs, td3_fp32.relu_inputs),
                          "gradient": margin(td3.gradients, td3_fp32.gradients)}
        if min(margins[agent].values()) < MIN_MARGIN:
            raise SystemExit(f"seed {seed}: agent {agent} is ill-conditioned for an fp32 comparison: an "
                             f"entry is within {MIN_MARGIN:g} float32 errors of zero ({margins[agent]}); "
                             f"choose another --seed")
    arrays.update(circulant_layer_reference(torch, rng))
    meta = {"obs_dim": OBS, "act_dim": ACT, "hidden": list(HIDDEN), "batch": BATCH, "block": BLOCK,
            "max_action": list(MAX_ACTION), "updates": UPDATES, "hyper": HYPER, "adam": ADAM,
            "agents": {k: list(v) for k, v in AGENTS.items()}, "nets": list(NETS), "seed": seed,
            "margins": margins, "reference": "PyTorch float64, torch.optim.Adam",
            "torch": torch.__version__, "date": utc_now(), "written_by": "bench/td3_reference.py"}
    return arrays, meta


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--seed", type=int, default=0, help="seed of weights, batches and noise")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    arrays, meta = build(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **arrays)
    print(f"written: {args.out} ({args.out.stat().st_size} bytes, {len(arrays)} arrays); "
          f"margins {json.dumps(margins_line(meta))}")
    return 0


def margins_line(meta: dict) -> dict:
    return {agent: {k: float(f"{v:.3g}") for k, v in m.items()} for agent, m in meta["margins"].items()}


if __name__ == "__main__":
    sys.exit(main())
