"""The golden TD3 update against an independent implementation (PyTorch reference vectors).

``tests/data/td3_reference.npz`` is written by ``bench/td3_reference.py``: TD3 from the paper's
definition with torch autograd and ``torch.optim.Adam`` in float64, from fixed weights, batches
and target-smoothing noise, four updates (policy delay 2), a dense agent and one with circulant
``l1`` / ``l2``, and a single circulant layer. These tests run ``golden.td3`` in ``fp32`` on the
same inputs (no torch needed) and compare every tensor after every update: the six nets'
parameters, the Adam moments and the losses.

Tolerance: golden computes in float32 with its own summation orders, the reference in float64,
so every value differs by float32 rounding, grown through four updates. A tensor passes when
``max|golden - ref| <= TOLERANCE * max|ref|``: the error against the tensor's own scale, so a
parameter (about 0.3), a first moment (about 1e-3) and a second moment (about 1e-6) are held
to the same relative standard. Parameters and losses agree to about 1.5e-7 (one or two float32
ulps); the largest error is 4.4e-6, the first moment of a critic's output bias after update 2
(a batch sum of TD errors, then m = 0.09 g1 + 0.1 g2, both of which partly cancel).
TOLERANCE = 1e-4 leaves a factor 20 above that for other BLAS builds and summation orders. The
generator refuses inputs where any ReLU input or gradient entry lies within 1000 float32 errors
of zero, so rounding cannot flip a ReLU or the sign Adam steps by. Each planted bug in the update
maths (``MUTANTS``) moves some tensor by at least 0.2 of its scale (2000 x TOLERANCE);
``test_every_planted_bug_is_caught`` plants them one at a time in a copy of golden/td3.py and
requires more than ``CAUGHT_BY`` x TOLERANCE.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import golden.td3

REF_PATH = Path(__file__).parent / "data" / "td3_reference.npz"
TOLERANCE = 1e-4
#: a planted bug must push some tensor this far past the tolerance
CAUGHT_BY = 100.0
NET_NAMES = ("actor", "critic1", "critic2", "actor_t", "critic1_t", "critic2_t")


@functools.cache
def reference() -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(REF_PATH) as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def build_agent(td3, agent: str):
    """A golden agent in fp32 holding the reference's initial weights and hyper-parameters."""
    meta, ref = reference()
    circ, hyper = tuple(meta["agents"][agent]), meta["hyper"]
    cfg = td3.TD3Config(numerics="fp32", method="gst" if circ else "dense", compress=circ,
                        hidden=tuple(meta["hidden"]), batch=meta["batch"], block=meta["block"], **hyper)
    obj = td3.TD3Agent(meta["obs_dim"], meta["act_dim"], np.asarray(meta["max_action"], np.float32), cfg,
                       np.random.default_rng(0))
    for opt in (obj.actor_opt, obj.critic_opt):
        assert (opt.b1, opt.b2, opt.eps) == (meta["adam"]["b1"], meta["adam"]["b2"], meta["adam"]["eps"])
    loaded = set()
    for net, layer, name in golden_params(obj):
        key = f"{agent}/init/{net}/{layer.name}/{name}"
        layer.param(name)[...] = ref[key]
        layer.touch()
        loaded.add(key)
    assert loaded == {k for k in ref if k.startswith(f"{agent}/init/")}, "golden and reference nets differ"
    return obj


def golden_params(obj):
    for net in NET_NAMES:
        for layer in getattr(obj, net).layers:
            for name in layer.param_names():
                yield net, layer, name


def golden_state(obj, info: dict) -> dict[str, np.ndarray]:
    """The tensors the reference records, under its names."""
    out = {}
    for net, layer, name in golden_params(obj):
        key = f"{net}/{layer.name}/{name}"
        out[key] = layer.param(name)
        if name in layer.adam:
            out[f"{key}/adam_m"], out[f"{key}/adam_s"] = layer.adam[name]
    out.update({key: np.float64(val) for key, val in info.items()})
    return out


def run_and_compare(td3, agent: str) -> dict[str, float]:
    """Run the reference's updates in golden; return each tensor's error relative to its scale."""
    meta, ref = reference()
    obj = build_agent(td3, agent)
    errors = {}
    for u in range(1, meta["updates"] + 1):
        inp = {key: ref[f"inputs/u{u}/{key}"] for key in ("s", "a", "r", "s2", "done", "noise_draw")}
        batch = (inp["s"], inp["a"], inp["r"], inp["s2"], (1.0 - inp["done"]).astype(np.float32))
        info = obj.update(batch, noise_draw=inp["noise_draw"])
        prefix = f"{agent}/after{u}/"
        want = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
        got = golden_state(obj, info)
        for key in set(got) ^ set(want):  # a tensor only one side has (an actor step too many)
            errors[f"after{u}/{key} (only in {'golden' if key in got else 'the reference'})"] = np.inf
        for key in set(got) & set(want):
            errors[f"after{u}/{key}"] = relative_error(got[key], want[key])
    return errors


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    scale = float(np.max(np.abs(want)))
    err = float(np.max(np.abs(np.asarray(got, np.float64) - want)))
    return err / scale if scale else err


def worst(errors: dict[str, float], n: int = 5) -> str:
    return ", ".join(f"{k}: {v:.2e}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:n])


# ----------------------------------------------------------------------------- the comparison

@pytest.mark.parametrize("agent", ["dense", "circ"])
def test_golden_update_matches_pytorch_reference(agent):
    errors = run_and_compare(golden.td3, agent)
    meta = reference()[0]
    # every parameter of six nets and the moments after every update; losses too
    assert len(errors) > meta["updates"] * 18
    bad = {k: v for k, v in errors.items() if v > TOLERANCE}
    assert not bad, f"{len(bad)} tensors differ from the PyTorch reference beyond {TOLERANCE:g}: {worst(bad)}"


def test_circulant_layer_matches_autograd_through_expanded_weight():
    """One circulant layer: forward, input gradient and dv (the direct form, never the dense
    gradient) equal autograd's gradient through W[p*k+r, q*k+c] = v[p, q, (r-c) mod k]."""
    from golden import gst

    meta, ref = reference()
    v, b, x, dy = (ref[f"layer/{key}"] for key in ("v", "b", "x", "dy"))
    n_out, n_in = b.size, x.shape[1]
    k = v.shape[2]
    layer = golden.td3.Layer("l1", n_in, n_out, "circ", k, np.random.default_rng(0))
    layer.v[...], layer.b[...] = v, b
    layer.touch()
    num = golden.td3.Numerics("fp32")
    y, cache = layer.forward(x, num)
    dx, grads, _ = layer.backward(dy, cache, num)
    x_pad = np.pad(x, ((0, 0), (0, v.shape[1] * k - n_in)))
    results = {"y": y, "dx": dx, "dv": grads["v"], "db": grads["b"],
               "y (direct form)": gst.circ_forward_direct(v, x_pad) + b,
               "dx (direct form)": gst.circ_input_grad_direct(v, dy)[:, :n_in]}
    for name, got in results.items():
        err = relative_error(got, ref[f"layer/{name.split()[0]}"])
        assert err <= TOLERANCE, f"{name}: {err:.2e} from the PyTorch reference"


def test_reference_inputs_exercise_every_part_of_the_update():
    """The inputs are such that each part of TD3 shows in the result."""
    meta, ref = reference()
    hyper, ma = meta["hyper"], np.asarray(meta["max_action"])
    assert len(set(meta["max_action"])) > 1  # per-dimension bounds
    for u in range(1, meta["updates"] + 1):
        done = ref[f"inputs/u{u}/done"]
        assert 0 < done.sum() < done.size, "terminal and non-terminal transitions in every batch"
        clipped = np.abs(ref[f"inputs/u{u}/noise_draw"]) * hyper["policy_noise"] > hyper["noise_clip"]
        assert 0 < clipped.sum() < clipped.size, "some smoothing noise lies beyond the clip"
    for agent in meta["agents"]:
        for net in ("actor", "critic1", "critic2"):  # targets start apart from the online nets
            for key in (k for k in ref if k.startswith(f"{agent}/init/{net}/")):
                assert not np.array_equal(ref[key], ref[key.replace(f"/{net}/", f"/{net}_t/")])
        # policy delay 2: the actor and targets stay put on update 1 and move on update 2
        for u, moves in ((1, False), (2, True)):
            key = f"{agent}/after{u}/actor_t/l3/W"
            assert np.array_equal(ref[key], ref[f"{agent}/init/actor_t/l3/W"]) != moves
            assert (f"{agent}/after{u}/actor_loss" in ref) == moves
    assert ma.shape == (meta["act_dim"],)


# ----------------------------------------------------------------------------- the test can fail

#: bugs planted in golden/td3.py, one at a time: (name, [(text in golden/td3.py, replacement)])
MUTANTS = [
    ("Adam without first-moment bias correction",
     [("step_size = F32(self.lr / bc1)", "step_size = F32(self.lr)")]),
    ("target smoothing noise not clipped",
     [("-cfg.noise_clip * ma, cfg.noise_clip * ma)", "-np.inf, np.inf)")]),
    ("twin-critic max instead of min", [("np.minimum(q1t, q2t)", "np.maximum(q1t, q2t)")]),
    ("no terminal mask", [("r + nd * F32(cfg.gamma)", "r + F32(cfg.gamma)")]),
    ("soft update with tau swapped",
     [("pt *= F32(1.0) - tau", "pt *= tau"),
      ("pt += tau * lo.param(name)", "pt += (F32(1.0) - tau) * lo.param(name)")]),
    ("actor loss through critic 2",
     [("q, cq = self.critic1.forward(np.concatenate([s, pi]", "q, cq = self.critic2.forward(np.concatenate([s, pi]"),
      ("dsa, _ = self.critic1.backward(dq, cq", "dsa, _ = self.critic2.backward(dq, cq")]),
    ("no policy delay", [("if self.it % cfg.policy_freq == 0:", "if True:")]),
]


def load_mutant(edits: list[tuple[str, str]], monkeypatch):
    """A fresh copy of golden.td3 with ``edits`` applied to its source, importable for the test."""
    path = Path(golden.td3.__file__)
    src = path.read_text()
    for old, new in edits:
        assert src.count(old) == 1, (f"{old!r} is no longer in {path.name} exactly once: update MUTANTS in "
                                     f"{Path(__file__).name} to plant the same bug in the new code")
        src = src.replace(old, new)
    name = "golden._td3_mutant"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    # dataclasses, get_type_hints and pickle (the agent copies its nets) look the module up
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(src, f"{path} (mutant)", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("bug,edits", MUTANTS, ids=[m[0].replace(" ", "-") for m in MUTANTS])
def test_every_planted_bug_is_caught(bug, edits, monkeypatch):
    mutant = load_mutant(edits, monkeypatch)
    for agent in reference()[0]["agents"]:
        errors = run_and_compare(mutant, agent)
        assert max(errors.values()) > CAUGHT_BY * TOLERANCE, (
            f"{bug} ({agent} agent) stays within {CAUGHT_BY:g} x the tolerance: {worst(errors, 3)}")
