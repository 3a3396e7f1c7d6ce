"""Named TD3 workloads for the OmniDRL top: an agent, one minibatch and a smoothing-noise draw.

The testbenches, the benchmark (``bench/top_td3.py``) and ``omnidrl run`` build their update
from here, so a workload name means the same stimulus everywhere:

* ``small-dense``, ``small-circ``, ``small-sparse``, ``small-fine``: the small agent of the tests
  (obs 5, act 2, hidden 16-16, batch 8, k = 4; ``golden.compile_td3.example_agent``), sparse
  (blocks, or elements for ``fine``) at 50 %.
* ``halfcheetah-dense``, ``halfcheetah-circ``, ``halfcheetah-sparse``: the HalfCheetah-v5
  networks (17-256-256-6 and 23-256-256-1, batch 256, k = 8) with the weights of the committed
  trace (``tests/data/td3_halfcheetah_trace.npz``, recorded from real training runs): dense from
  its dense run, circ from its GST run's circulant ``l2``, sparse = the dense run's ``l2`` pruned to
  75 % of its 8 x 8 blocks by block norm (``golden.gst.block_bitmap``). The trace holds the bf16
  weights as the array read them and the minibatch's ``(s, a)`` (the first layer inputs); it does
  not hold biases, Adam moments, targets, rewards or next states, so those are made here from a
  fixed seed: biases PyTorch-initialised, moments zero, targets equal to the online networks,
  ``s2`` the batch's states shifted by one row, rewards N(0, 1), 5 % terminal.

Every workload's agent sits at ``it = 1`` with ``policy_freq = 2``, so its next update is a
complete one: critics, actor, and soft target updates.
"""

from __future__ import annotations

import numpy as np

from . import gst
from .bf16 import from_bits
from .compile_td3 import example_agent, example_batch
from .td3 import F32, TD3Agent, TD3Config
from .traces import load_trace

__all__ = ["WORKLOADS", "SMALL_WORKLOADS", "workload", "halfcheetah_agent"]

#: workload name -> one-line description
WORKLOADS = {
    "small-dense": "small agent (obs 5, act 2, 16-16, batch 8, k 4), dense",
    "small-circ": "small agent, l2 block-circulant (GST)",
    "small-sparse": "small agent, l2 group-sparse at 50 % (GST)",
    "small-fine": "small agent, l2 element-masked at 50 % (GST circ-fine after its switch; GMP's form)",
    "halfcheetah-dense": "HalfCheetah-v5 networks (batch 256, k 8), trace weights, dense",
    "halfcheetah-circ": "HalfCheetah-v5 networks, l2 block-circulant v from the trace's GST run",
    "halfcheetah-sparse": "HalfCheetah-v5 networks, l2 group-sparse at 75 % of the trace's dense weights",
}
#: the small agent's workloads, every layer form once: what the top's TD3 testbench runs by default
SMALL_WORKLOADS = tuple(name for name in WORKLOADS if name.startswith("small-"))

_NETS = {"actor": "actor", "critic1": "critic1", "critic2": "critic2"}


def halfcheetah_agent(kind: str, trace_path=None, seed: int = 0, k: int = 8) -> TD3Agent:
    """The HalfCheetah-v5 agent of workload ``halfcheetah-<kind>`` (see the module docstring).

    ``k`` is the block size of the compressed layers (the top's; the trace's GST run used 8).
    With another k the circulant ``l2`` is the projection of the dense run's ``l2`` onto
    k x k circulant blocks (``golden.gst.circ_project``), since the trace's v are 8-blocks.
    """
    trace = load_trace(trace_path)
    cfg = TD3Config(env="HalfCheetah-v5", method="dense" if kind == "dense" else "gst",
                    numerics="bf16-exact", hidden=(256, 256), batch=256, block=k, compress=("l2",))
    agent = TD3Agent(17, 6, np.ones(6, F32), cfg, np.random.default_rng(seed))
    run = "gst" if kind == "circ" else "dense"
    for net in _NETS:
        layers = getattr(agent, net).layers
        for layer in layers:
            key = f"{run}/{net}/{layer.name}"
            if layer.mode == "circ" and kind == "circ" and k == 8:
                layer.v[...] = from_bits(trace[f"{key}/v"])
            elif layer.mode == "circ" and kind == "circ":
                layer.v[...] = gst.circ_project(from_bits(trace[f"dense/{net}/{layer.name}/W"]), k)
            elif layer.mode == "circ":  # sparse: from the dense run's weights
                w = from_bits(trace[f"dense/{net}/{layer.name}/W"])
                layer.to_sparse(gst.block_bitmap(w, layer.k, 0.75))
                layer.W[...] = w
            else:
                layer.W[...] = from_bits(trace[f"{key}/W"])
            layer.touch()
    for net, tgt in agent.nets():  # targets = the online networks (the trace has no targets)
        for lo, lt in zip(net.layers, tgt.layers):
            if lo.mode == "sparse" and lt.mode == "circ":
                lt.to_sparse(lo.bitmap.copy())
            for name in lo.param_names():
                lt.param(name)[...] = lo.param(name)
            lt.touch()
    agent.it = 1
    return agent


def _halfcheetah_batch(agent: TD3Agent, trace_path=None, seed: int = 0):
    trace = load_trace(trace_path)
    sa = from_bits(trace["dense/critic1/l1/x"])  # (256, 23): the minibatch's s and a, as bf16
    s, a = sa[:, :17].astype(F32), sa[:, 17:].astype(F32)
    rng = np.random.default_rng(seed + 1)
    n = s.shape[0]
    batch = (s, a, rng.standard_normal((n, 1)).astype(F32), np.roll(s, 1, axis=0).astype(F32),
             (rng.uniform(size=(n, 1)) > 0.05).astype(F32))
    return batch, rng.standard_normal((n, 6)).astype(F32)


def workload(name: str, trace_path=None, k: int | None = None):
    """``(agent, batch, noise_draw)`` of a named workload; unknown names raise ValueError.

    ``k`` overrides the block size of the compressed layers (small: 4, HalfCheetah: 8).
    """
    if name not in WORKLOADS:
        raise ValueError(f"workload={name!r} is not allowed; choose one of {', '.join(WORKLOADS)}")
    size, kind = name.split("-")
    if size == "small":
        agent = example_agent(kind, k=k or 4)
        agent.it = 1
        batch, noise = example_batch(np.random.default_rng(1), agent)
        return agent, batch, noise
    agent = halfcheetah_agent(kind, trace_path, k=k or 8)
    batch, noise = _halfcheetah_batch(agent, trace_path)
    return agent, batch, noise
