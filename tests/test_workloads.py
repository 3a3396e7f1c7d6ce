"""golden.workloads: the named TD3 updates the top's testbench, benchmark and CLI share."""

import numpy as np
import pytest

from golden import gst
from golden.bf16 import from_bits
from golden.traces import load_trace
from golden.workloads import WORKLOADS, workload


def test_unknown_workload_is_one_clear_error():
    with pytest.raises(ValueError, match=r"workload='tiny-dense' is not allowed; choose one of small-dense"):
        workload("tiny-dense")


@pytest.mark.parametrize("name", [n for n in WORKLOADS if n.startswith("small")])
def test_small_workloads_run_a_complete_update(name):
    agent, batch, noise = workload(name)
    assert (agent.it + 1) % agent.cfg.policy_freq == 0  # the next update includes the actor
    assert batch[0].shape == (8, 5) and noise.shape == (8, 2)
    info = agent.update(batch, noise_draw=noise)
    assert "actor_loss" in info


def test_halfcheetah_workloads_carry_the_trace_weights():
    trace = load_trace()
    dense, _, _ = workload("halfcheetah-dense")
    w = from_bits(trace["dense/critic2/l2/W"])
    assert np.array_equal(dense.critic2.layers[1].W, w)
    assert np.array_equal(dense.critic2_t.layers[1].W, w)  # targets start equal to the online nets
    circ, _, _ = workload("halfcheetah-circ")
    assert circ.actor.layers[1].mode == "circ"
    assert np.array_equal(circ.actor.layers[1].v, from_bits(trace["gst/actor/l2/v"]))
    sparse, batch, _ = workload("halfcheetah-sparse")
    layer = sparse.critic1.layers[1]
    assert layer.mode == "sparse" and layer.bitmap.mean() == 0.25  # 75 % of the 8 x 8 blocks pruned
    expect = gst.block_bitmap(from_bits(trace["dense/critic1/l2/W"]), 8, 0.75)
    assert np.array_equal(layer.bitmap, expect)
    sa = from_bits(trace["dense/critic1/l1/x"])
    assert np.array_equal(batch[0], sa[:, :17]) and np.array_equal(batch[1], sa[:, 17:])
