"""golden/td3.py: the checks that mutation testing (bench/mutation.py) showed were missing.

The PyTorch reference vectors (test_td3_reference.py) run with tracing off and without pruned
weights, so they cannot see a masked Adam step or an update's trace records go wrong.
"""

import numpy as np
from test_td3_reference import build_agent, reference  # the reference's dense agent and its inputs

import golden.td3 as td3

F32 = np.float32


def test_masked_adam_step_freezes_pruned_values():
    """A pruned weight gets no update; a kept one moves by lr against its gradient's sign (Adam's
    first bias-corrected step is lr * g / (|g| + eps)). Kills `upd * mask` -> `upd / mask`."""
    rng = np.random.default_rng(5)
    dense = td3.Layer("l1", 8, 4, "dense", 4, rng)
    dense.mask = (rng.random((4, 8)) < 0.5).astype(F32)
    circ = td3.Layer("l2", 8, 8, "circ", 4, rng)
    circ.bitmap = np.array([[True, False], [False, True]])
    layers = [dense, circ]
    params = [(layer, name) for layer in layers for name in layer.param_names()]  # W, b, v, b
    before = [layer.param(name).copy() for layer, name in params]
    grads = [{name: (rng.choice([-1, 1], layer.param(name).shape) * rng.uniform(0.1, 1.0, layer.param(name).shape))
              .astype(F32) for name in layer.param_names()} for layer in layers]
    td3.Adam(lr=1e-3).step(layers, grads)
    keeps = [dense.mask, np.ones(4), np.broadcast_to(circ.bitmap[:, :, None], circ.v.shape), np.ones(8)]
    for (layer, name), old, keep in zip(params, before, keeps):
        new, grad, keep = layer.param(name), grads[layers.index(layer)][name], np.asarray(keep, bool)
        assert 0 < keep.sum() and np.array_equal(new[~keep], old[~keep]), name  # frozen, bit for bit
        np.testing.assert_allclose(new[keep], old[keep] - 1e-3 * np.sign(grad[keep]), rtol=0, atol=1e-8)


def test_update_trace_records_the_gradients_it_applies():
    """With a trace, each update records critic 1 and 2 (and on a policy step the actor) per layer,
    and the recorded weight gradient is the one Adam applied: after the first step of a layer its
    first moment is (1 - b1) * g. Kills the `trace is not None` record guards (negated or `is`)."""
    meta, ref = reference()
    agent = build_agent(td3, "dense")
    assert agent.cfg.policy_freq == 2
    traces = []
    for u in (1, 2):
        inp = {key: ref[f"inputs/u{u}/{key}"] for key in ("s", "a", "r", "s2", "done", "noise_draw")}
        batch = (inp["s"], inp["a"], inp["r"], inp["s2"], (1.0 - inp["done"]).astype(F32))
        trace = {}
        agent.update(batch, trace=trace, noise_draw=inp["noise_draw"])
        traces.append(trace)
        if u == 1:  # the critics' first step: m = (1 - b1) * g, so g is recoverable exactly enough
            for net in ("critic1", "critic2"):
                for layer in getattr(agent, net).layers:
                    g = trace[net][layer.name]["grads"]["W"]
                    np.testing.assert_allclose(layer.adam["W"][0], F32(0.1) * g, rtol=1e-6, atol=0)
    assert sorted(traces[0]) == ["critic1", "critic2"]  # no actor step on update 1 (policy delay 2)
    assert sorted(traces[1]) == ["actor", "critic1", "critic2"]
    for trace in traces:
        for net, rec in trace.items():
            assert sorted(rec) == [layer.name for layer in getattr(agent, net).layers], net
    for layer in agent.actor.layers:  # the actor's first step
        np.testing.assert_allclose(layer.adam["W"][0], F32(0.1) * traces[1]["actor"][layer.name]["grads"]["W"],
                                   rtol=1e-6, atol=0)
