"""GST circ-prune rule: the commit / rollback policy on scripted returns, pruning only among kept
blocks, the restore of pruned blocks from their frozen masters, CR over actor and critics, and a
circulant layer with pruned blocks bit for bit against the PE array's CIRC command."""

import numpy as np
import pytest

from golden import bf16 as B
from golden import gst
from golden import pe_array as PA
from golden.td3 import Layer, Numerics, TD3Config, TD3ConfigError, Trainer, to_bits


def test_commit_rollback_policy_on_scripted_returns():
    pol = gst.CommitRollbackSparsity(ds=0.1, delta=0.05, s_max=0.3, patience=2, cooldown=1)
    rets = [100, 101, 102, 50, 103, 104, 104, 104, 104, 104, 104, 10]
    events = [pol.update(r) for r in rets]
    # 100 holds -> trial 0.1; 101 holds once (patience 2); 102 commits 0.1, trial 0.2;
    # 50 < 102 - 5.1 -> rollback to 0.1 with one evaluation of cool-down; 103 waits;
    # 104 -> trial 0.2; 104 hold; 104 commit 0.2, trial 0.3; 104 hold; 104 commit 0.3 = s_max;
    # 104 nothing left to try; 10 at the committed level changes nothing
    assert events == ["trial", "hold", "commit", "rollback", "wait", "trial", "hold", "commit", "hold",
                      "commit-last", "stay", "stay"]
    assert [(c, s) for *_, c, s in pol.history] == [
        (0.0, 0.1), (0.0, 0.1), (0.1, 0.2), (0.1, 0.1), (0.1, 0.1), (0.1, 0.2), (0.1, 0.2), (0.2, 0.3),
        (0.2, 0.3), (0.3, 0.3), (0.3, 0.3), (0.3, 0.3)]
    again = gst.CommitRollbackSparsity.from_state(pol.state())
    assert again.state() == pol.state()


def test_commit_rollback_policy_never_trials_on_a_drop():
    pol = gst.CommitRollbackSparsity(ds=0.25, delta=0.1, s_max=0.5, patience=1, cooldown=0)
    # 200 holds -> trial 0.25; 150 drops -> rollback (no cool-down); 150 still below 180 -> stay;
    # 190 holds -> trial again; 300 holds -> commit 0.25 and trial 0.5
    assert [pol.update(r) for r in (200, 150, 150, 190, 300)] == ["trial", "rollback", "stay", "trial", "commit"]
    assert (pol.committed, pol.s) == (0.25, 0.5)


def test_prune_more_prunes_only_kept_blocks_by_score():
    scores = np.array([[5.0, 1.0, 4.0], [3.0, 6.0, 2.0]])
    kept = np.array([[True, True, True], [False, True, True]])
    got = gst.prune_more(kept, scores, 0.5)  # keep 3 of the 5 kept: 6, 5, 4
    assert got.tolist() == [[True, False, True], [False, True, False]]
    # the pruned block (score 3) does not come back even though it outranks kept ones
    assert gst.prune_more(kept, scores, 1 / 6).tolist() == kept.tolist()
    with pytest.raises(ValueError, match="differ in shape"):
        gst.prune_more(kept, scores.T, 0.5)


def _tiny_trainer(**kw):
    cfg = TD3Config(hidden=(32, 32), batch=32, start_steps=0, method="gst", block=8, steps=1000,
                    numerics="bf16", gst_rule="circ-prune", gst_ds=0.25, gst_smax=0.75, gst_cooldown=1, **kw)
    return Trainer(cfg)


def _hand_cr(kept_blocks_l2: int, k: int = 8) -> float:
    """CR over actor (17-32-32-6) and two critics (23-32-32-1), l2 circulant with k values per
    kept block; biases excluded."""
    dense_rest = (17 * 32 + 32 * 6) + 2 * (23 * 32 + 32 * 1)
    total = dense_rest + 3 * 32 * 32
    return 1 - (dense_rest + 3 * kept_blocks_l2 * k) / total


def test_circ_prune_trial_commit_rollback_restores_pruned_blocks():
    tr = _tiny_trainer()
    layers = list(tr.compressible_layers())
    assert tr.agent.compression()["cr"] == pytest.approx(_hand_cr(16))
    tr._apply_gst(100.0)  # trial at 0.25: 12 of 16 blocks kept, the 4 smallest |v| pruned
    for layer in layers:
        assert layer.mode == "circ" and layer.bitmap.sum() == 12
        norms = np.linalg.norm(layer.v, axis=2)
        assert norms[layer.bitmap].min() >= norms[~layer.bitmap].max()
    assert tr.agent.compression()["cr"] == pytest.approx(_hand_cr(12))
    for net, tgt in tr.agent.nets():  # targets mirror the bitmap
        assert np.array_equal(tgt.layers[1].bitmap, net.layers[1].bitmap)
    first_pruned = [~layer.bitmap.copy() for layer in layers]
    tr._apply_gst(100.0)  # commit 0.25, trial 0.5: 8 kept, a subset of the committed 12
    for layer, pruned in zip(layers, first_pruned):
        assert layer.bitmap.sum() == 8 and not np.any(layer.bitmap & pruned)
    assert tr.agent.compression()["cr"] == pytest.approx(_hand_cr(8))
    # train a few updates at the trial level: the pruned blocks' masters stay frozen, read as 0
    before = [layer.v.copy() for layer in layers]
    for _ in range(40):
        tr.replay.add(np.ones(17, np.float32), np.zeros(6, np.float32), 1.0, np.ones(17, np.float32), False)
    for _ in range(3):
        tr.agent.update(tr.replay.sample(tr.rng, 32))
    for layer, v0 in zip(layers, before):
        off = ~layer.bitmap
        assert np.array_equal(layer.v[off], v0[off])
        assert not np.array_equal(layer.v[layer.bitmap], v0[layer.bitmap])
        assert np.all(layer.effective()[gst.block_expand(off, 8)[:, :32].astype(bool)] == 0)
    trial_pruned = [(~layer.bitmap) & ~p for layer, p in zip(layers, first_pruned)]
    tr._apply_gst(10.0)  # the return drops: roll back to the committed 0.25
    assert (tr.policy.committed, tr.policy.s) == (0.25, 0.25)
    for layer, p, tp, v0 in zip(layers, first_pruned, trial_pruned, before):
        assert np.array_equal(layer.bitmap, ~p)  # the committed bitmap, exactly
        # the blocks the trial pruned are back with the master values they were frozen at
        assert np.array_equal(layer.v[tp], v0[tp])
        w = layer.effective()
        assert np.array_equal(w, gst.circ_expand(layer.v * layer.bitmap[:, :, None])[:, :32])
    assert tr.agent.compression()["cr"] == pytest.approx(_hand_cr(12))
    tr._apply_gst(500.0)  # cool-down of one evaluation: nothing moves
    assert tr.gst_events[-1][1] == "wait" and all(layer.bitmap.sum() == 12 for layer in layers)
    # the whole rule state survives a checkpoint
    again = Trainer.from_state(tr.state_bytes(), tr.cfg)
    assert again.policy.state() == tr.policy.state() and again.gst_events == tr.gst_events
    assert all(np.array_equal(a, b) for a, b in zip(again.gst_committed, tr.gst_committed))


def test_circ_prune_options_are_validated():
    with pytest.raises(TD3ConfigError, match="gst_smax=1.0 is not allowed: gst_smax must be below 1.0"):
        TD3Config(method="gst", gst_rule="circ-prune", gst_smax=1.0)
    with pytest.raises(TD3ConfigError, match="gst_rule"):
        TD3Config(method="gst", gst_rule="prune")
    with pytest.raises(TD3ConfigError, match="gst_patience"):
        TD3Config(method="gst", gst_patience=0)
    # the new fields stay out of the canonical JSON at their defaults (existing hashes unchanged)
    assert "gst_rule" not in TD3Config().to_json()


def test_bf16_exact_circulant_with_pruned_blocks_equals_circ_command():
    """A circulant layer with pruned blocks runs on the PE array's CIRC command with zero words
    in the pruned blocks: their products are added (as +-0), not skipped. The stimulus makes
    every kept product -0 in some outputs and every pruned one +0, so skipping would differ."""
    rng = np.random.default_rng(21)
    k = 4
    layer = Layer("l2", 16, 12, "circ", k, rng)
    layer.bitmap = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool)
    layer.v = np.where(layer.bitmap[:, :, None], -np.abs(layer.v), np.abs(layer.v)).astype(np.float32)
    layer.b = np.full(12, -0.0, np.float32)
    layer.touch()
    num = Numerics("bf16-exact")
    x = np.maximum(rng.standard_normal((6, 16)), 0).astype(np.float32)
    x[0] = 0.0
    dy = (rng.standard_normal((6, 12)) * 1e-2).astype(np.float32)
    dy[1] = 0.0
    y, cache = layer.forward(x, num)
    dx, grads, dyq = layer.backward(dy, cache, num)
    vb = to_bits(num.q(layer.v * layer.bitmap[:, :, None]))  # the words the host loads: +-0 when pruned
    xb, dyb = to_bits(cache[0]), to_bits(dyq)
    acc = PA.run("circ", vb, xb.T, k=k).T
    assert np.any(acc == 0x00000000), "the stimulus must add +0 pruned products to -0 sums"
    want_y = B.fp32_add(acc, B.f32_bits(np.broadcast_to(layer.b, acc.shape)))
    assert np.array_equal(y.view(np.uint32), want_y)
    want_dx = PA.run("circ", vb, dyb.T, k=k, transpose=True).T
    assert np.array_equal(dx.view(np.uint32), want_dx)
    dv = PA.run("dv", dyb.T, xb, k=k)  # (P*k, Q): DV[p*k+d, q] = dv[p, q, d]
    want_dv = B.f32_round_to_bf16_bits(dv).reshape(3, k, 4).transpose(0, 2, 1)
    got_dv = to_bits(grads["v"])
    assert np.array_equal(got_dv[layer.bitmap], want_dv[layer.bitmap])
    assert np.all((got_dv[~layer.bitmap] & 0x7FFF) == 0)  # pruned blocks: a zero gradient
