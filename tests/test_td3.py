"""Golden TD3 on real HalfCheetah-v5: smoke runs per numerics mode, exact resume, GST policy,
and the committed hardware trace (checkpoint format and interruption: test_td3_checkpoint.py)."""

import json

import numpy as np
import pytest

from flows import cli
from golden import bf16 as B
from golden import gst
from golden.td3 import TD3Config, Trainer
from golden.traces import KINDS, iter_tensors, layer_names, load_trace, trace_meta

# tiny networks keep these fast; the environment is the real HalfCheetah-v5
TINY = ["--env", "HalfCheetah-v5", "--hidden", "32,32", "--batch", "32", "--start-steps", "1000",
        "--eval-every", "1000", "--eval-episodes", "1", "--quiet"]


def _train(tmp, *extra):
    return cli.main(["train", *TINY, "--out", str(tmp), *extra])


def _records(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("numerics,method,steps", [
    ("fp32", "gmp", 3000), ("bf16", "gst", 3000), ("bf16-exact", "gst", 1500), ("bf16-exact", "dense", 1300),
])
def test_smoke_run_every_numerics_mode(tmp_path, numerics, method, steps):
    rc = _train(tmp_path, "--numerics", numerics, "--method", method, "--steps", str(steps), "--block", "8")
    assert rc == 0
    summ = json.loads((tmp_path / "summary.json").read_text())
    assert summ["steps"] == steps and summ["updates"] == steps - 1000 and summ["finished"]
    assert summ["numerics"] == numerics
    evals = [r for r in _records(tmp_path) if r["kind"] == "eval"]
    assert len(evals) == steps // 1000 and all(np.isfinite(r["return"]) for r in evals)
    assert (tmp_path / "plot.png").stat().st_size > 1000
    if method == "gst":  # l2 is circulant from the first update: CR = (32*32/8) stored of ...
        dense = 3 * 32 * 32 + (17 + 23 + 23) * 32 + 6 * 32 + 32 + 32
        stored = dense - 3 * 32 * 32 + 3 * 32 * 32 // 8
        assert summ["avg_cr"] == pytest.approx(1 - stored / dense)
    elif method == "dense":
        assert summ["avg_cr"] == 0.0
    else:
        assert 0 < summ["avg_cr"] < summ["final_cr"] <= 0.9


@pytest.mark.parametrize("method", ["gmp", "gst", "gst-circ-fine"])
def test_resume_equals_uninterrupted(tmp_path, method):
    extra = ["--method", method.split("-")[0], "--steps", "2600", "--eval-every", "500", "--ckpt-every", "700"]
    if method.startswith("gst"):
        extra += ["--block", "4"]
    if method == "gst-circ-fine":  # the switch (step 1820) comes after the stop: the resumed run makes it
        extra += ["--set", "gst_rule=circ-fine", "--set", "gst_switch=0.7", "--set", "gst_smax=0.8",
                  "--set", "gmp_every=100"]
    assert _train(tmp_path / "a", *extra) == 0
    assert _train(tmp_path / "b", *extra, "--stop-at", "1650") == 0  # stopped mid-episode
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["steps"] == 1650
    assert _train(tmp_path / "b", *extra, "--resume") == 0
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    # the same state gives the same checkpoint bytes, however the run got there
    assert (tmp_path / "a" / "checkpoint.npz").read_bytes() == (tmp_path / "b" / "checkpoint.npz").read_bytes()
    sa = json.loads((tmp_path / "a" / "summary.json").read_text())
    sb = json.loads((tmp_path / "b" / "summary.json").read_text())
    for key in ("steps", "avg_cr", "final_cr", "final_return", "evals", "gst_target", "gmp_target"):
        assert sa[key] == sb[key], key


def test_gst_policy_switches_circulant_layers_to_group_sparse():
    cfg = TD3Config(hidden=(32, 32), batch=32, start_steps=0, method="gst", block=8, steps=1000,
                    gst_ds=0.5, numerics="bf16")
    tr = Trainer(cfg)
    cr0 = tr.agent.compression()["cr"]
    tr._apply_gst(100.0)  # holds -> 0.5: still below the circulant CR 0.875, stays circulant
    assert [l.mode for l in tr.compressible_layers()] == ["circ"] * 3
    assert tr.agent.compression()["cr"] == cr0
    tr._apply_gst(100.0)  # -> 0.95 (s_max): passes 0.875, switches to group-sparse
    layers = list(tr.compressible_layers())
    assert [l.mode for l in layers] == ["sparse"] * 3
    for l in layers:
        assert l.bitmap.sum() == round(0.05 * l.bitmap.size)
    for net, tgt in tr.agent.nets():  # targets mirror mode and bitmap
        assert tgt.layers[1].mode == "sparse" and tgt.layers[1].bitmap is net.layers[1].bitmap
    assert tr.agent.compression()["cr"] > cr0
    tr._apply_gst(10.0)  # return drop -> back off by ds to 0.45: the layer stays sparse, blocks regrow
    assert tr.policy.s == 0.45
    assert all(l.mode == "sparse" and l.bitmap.sum() == round(0.55 * l.bitmap.size) for l in layers)
    # an update still runs and keeps pruned blocks at zero in the effective weight
    tr.replay.add(np.zeros(17), np.zeros(6), 0.0, np.zeros(17), False)
    tr.agent.update(tr.replay.sample(tr.rng, 32))
    w = layers[0].effective()
    assert np.all(w[gst.block_expand(~layers[0].bitmap, 8)[:, :32]] == 0)


# bad options (one line, exit 2, nothing written): tests/test_cli_fuzz.py


def test_resume_from_another_config_is_refused(tmp_path, capsys):
    assert _train(tmp_path, "--steps", "1100", "--eval-every", "5000") == 0
    capsys.readouterr()
    assert _train(tmp_path, "--steps", "1100", "--eval-every", "5000", "--seed", "3", "--resume") == 2
    err = [e for e in capsys.readouterr().err.splitlines() if "settotalmass" not in e]
    assert len(err) == 1 and "seed=0" in err[0] and "seed=3" in err[0]
    assert _train(tmp_path / "none", "--steps", "1100", "--resume") == 2


def test_set_reaches_every_config_field(tmp_path):
    assert _train(tmp_path, "--steps", "1002", "--eval-every", "5000", "--set", "gst_ds=0.1",
                  "--set", "tau=0.01") == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert (cfg["gst_ds"], cfg["tau"], cfg["hidden"]) == (0.1, 0.01, [32, 32])


def test_config_round_trip_and_presets():
    cfg = TD3Config.preset("paper2018", seed=3, compress=None)
    assert (cfg.hidden, cfg.lr, cfg.batch, cfg.block, cfg.seed, cfg.compress) == ((400, 300), 1e-3, 100, 4, 3, ("l2",))
    assert TD3Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert TD3Config.preset_names() == ["default", "paper2018"]
    assert TD3Config().override(["hidden=64,64", "method=gst"]).hidden == (64, 64)


def test_same_seed_same_numbers():
    cfg = TD3Config(hidden=(16, 16), batch=16, start_steps=300, steps=600, eval_every=10_000, numerics="bf16")
    a, b = Trainer(cfg), Trainer(cfg)
    a.run()
    b.run()
    for (na, _), (nb, _) in zip(a.agent.nets(), b.agent.nets()):
        for la, lb in zip(na.layers, nb.layers):
            assert np.array_equal(la.W, lb.W) and np.array_equal(la.b, lb.b)


def test_training_runs_blas_on_one_thread_whatever_the_caller_set():
    """bf16 and fp32 multiply through BLAS, whose bits depend on its thread count: a run must be
    the same bits under any OPENBLAS_NUM_THREADS (and when resumed under another)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    cfg = TD3Config(hidden=(16, 16), batch=16, start_steps=300, steps=310, eval_every=10_000, numerics="bf16")
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        Trainer(cfg).run(on_step=lambda t: seen.append(blas_threads()))
        assert blas_threads() == before  # the caller's setting comes back
    assert before and len(seen) == 310 and all(s == {1} for s in seen)


# ----------------------------------------------------------------------------- the committed trace

def test_committed_trace_schema_and_bits():
    t = load_trace()
    meta = trace_meta(t)
    assert meta["env"] == "HalfCheetah-v5" and meta["trace_numerics"] == "bf16-exact"
    names = layer_names(t)
    for method in ("dense", "gst"):
        for net in ("actor", "critic1", "critic2"):
            for layer in ("l1", "l2", "l3"):
                assert f"{method}/{net}/{layer}" in names
    assert meta["layers"]["gst/critic1/l2"]["mode"] == "circ"
    assert meta["layers"]["dense/critic1/l2"]["mode"] == "dense"
    seen = set()
    for name, kind, arr in iter_tensors(t, KINDS):
        seen.add(kind)
        assert arr.dtype == (np.uint8 if kind == "bitmap" else np.uint16)
        info = meta["layers"][name]
        if kind in ("W", "dW"):
            assert arr.shape == (info["M"], info["N"])
        if kind in ("v", "dv"):
            assert arr.shape == (info["M"] // info["k"], -(-info["N"] // info["k"]), info["k"])
    assert seen == set(KINDS)
    with pytest.raises(ValueError, match="kind"):
        list(iter_tensors(t, ("Q",)))


def test_committed_trace_products_are_golden_gemm_bits():
    t = load_trace()
    # weight gradient of a dense layer: bf16(gemm(dy^T, x)), accumulation over the batch
    for name in ("dense/critic1/l3", "dense/actor/l3", "gst/critic2/l1"):
        x, dy, dw = t[f"{name}/x"], t[f"{name}/dy"], t[f"{name}/dW"]
        assert np.array_equal(B.f32_round_to_bf16_bits(B.gemm(dy.T, x)), dw), name
    # circulant layer: W is the expansion of v, and sampled dv entries follow the hardware order
    name = "gst/actor/l2"
    v, w = t[f"{name}/v"], t[f"{name}/W"]
    k = v.shape[2]
    from golden.gst import circ_expand
    assert np.array_equal(circ_expand(v)[:, :w.shape[1]], w)
    x, dy, dv = t[f"{name}/x"], t[f"{name}/dy"], t[f"{name}/dv"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        p, q, d = rng.integers(0, v.shape[0]), rng.integers(0, v.shape[1]), rng.integers(0, k)
        a = np.stack([dy[:, p * k + r] for r in range(k)], axis=1).reshape(-1)  # b-major, then r
        c = np.stack([x[:, q * k + (r - d) % k] for r in range(k)], axis=1).reshape(-1)
        assert B.f32_round_to_bf16_bits(B.dot(a, c)) == dv[p, q, d]


def test_stage_traces_schema_and_bits():
    """The early/middle/late trace: three stages of one run, in training order, golden bits."""
    from golden.traces import DEFAULT_TRACE

    t = load_trace(DEFAULT_TRACE.with_name("td3_halfcheetah_stages.npz"))
    meta = trace_meta(t)
    assert meta["stages"] == ["early", "middle", "late"] and meta["trace_numerics"] == "bf16-exact"
    runs = [meta["runs"][s] for s in meta["stages"]]
    assert len({(r["method"], r["seed"], r["env"]) for r in runs}) == 1, "one run, three points"
    assert runs[0]["step"] < runs[1]["step"] < runs[2]["step"]
    for stage in meta["stages"]:
        for net in ("actor", "critic1", "critic2"):
            for layer in ("l1", "l2", "l3"):
                assert f"{stage}/{net}/{layer}" in layer_names(t)
        name = f"{stage}/critic1/l3"  # a dense layer: dW = bf16(gemm(dy^T, x)), over the batch
        x, dy, dw = t[f"{name}/x"], t[f"{name}/dy"], t[f"{name}/dW"]
        assert np.array_equal(B.f32_round_to_bf16_bits(B.gemm(dy.T, x)), dw), name
    # the weights moved between stages
    assert not np.array_equal(t["early/actor/l1/W"], t["late/actor/l1/W"])


def test_train_trace_at_writes_a_loadable_trace(tmp_path):
    assert _train(tmp_path, "--method", "gst", "--steps", "1100", "--eval-every", "5000", "--trace-at", "50") == 0
    t = load_trace(tmp_path / "trace_u50.npz")
    assert trace_meta(t)["update"] == 50
    kinds = {(n, k) for n, k, _ in iter_tensors(t, KINDS)}
    assert ("gst/actor/l2", "dv") in kinds and ("gst/critic2/l1", "dW") in kinds


def test_trace_command_records_both_methods_and_its_defaults_can_run(tmp_path):
    out = tmp_path / "traces" / "t.npz"
    rc = cli.main(["trace", "--steps", "1104", "--start-steps", "1100", "--hidden", "16,16", "--batch", "16",
                   "--out", str(out), "--quiet"])
    assert rc == 0
    t = load_trace(out)
    assert {name.split("/")[0] for name in layer_names(t)} == {"dense", "gst"}
    assert trace_meta(t)["trace_numerics"] == "bf16-exact"
    defaults = cli.build_parser().parse_args(["trace"])  # the committed trace's run: it has updates
    assert (defaults.steps, defaults.start_steps) == (12_000, 5_000)


# ----------------------------------------------------------------------------- traces from checkpoints

def _circ_prune_snapshots(tmp_path):
    """Checkpoints of a tiny circ-prune run (l2 circulant, k = 8) at steps 150 and 250: the first
    before any pruning, the second after the evaluation at step 200 started a trial (the first
    evaluation always holds), which pruned a quarter of l2's blocks."""
    import shutil

    from golden.run_td3 import CHECKPOINT, run_training

    cfg = TD3Config(env="HalfCheetah-v5", hidden=(32, 32), batch=32, start_steps=100, steps=300, method="gst",
                    block=8, numerics="bf16", gst_rule="circ-prune", gst_ds=0.25, gst_cooldown=0,
                    eval_every=100, eval_episodes=1)
    run = tmp_path / "run"
    snaps = []
    for step in (150, 250):
        run_training(cfg, run, resume=bool(snaps), stop_at=step)
        snaps.append(tmp_path / f"checkpoint-{step}.npz")
        shutil.copy(run / CHECKPOINT, snaps[-1])
    return snaps


def test_trace_from_snapshots_records_each_stage_in_golden_bits(tmp_path, capfd):
    """`omnidrl trace --snapshot`: one bf16-exact update after each checkpoint, in the given
    order, with the circulant layer's pruned blocks as zero v words, zero blocks of W and their
    dv dropped; dense dW and kept dv are the PE array's bits."""
    from golden import pe_array as PA
    from golden.gst import block_expand, circ_expand

    first, second = _circ_prune_snapshots(tmp_path)
    out = tmp_path / "t" / "stages.npz"
    rc = cli.main(["trace", "--snapshot", f"before={first}", "--snapshot", f"after={second}",
                   "--out", str(out), "--quiet"])
    assert rc == 0, capfd.readouterr().err
    t = load_trace(out)
    meta = trace_meta(t)
    assert meta["stages"] == ["before", "after"] and meta["trace_numerics"] == "bf16-exact"
    runs = [meta["runs"][s] for s in meta["stages"]]
    # the next actor-training update after each checkpoint (policy_freq 2)
    assert [r["step"] for r in runs] in ([151, 251], [152, 252])
    assert all(r["update"] % 2 == 0 and r["method"] == "gst" for r in runs)
    assert runs[1]["cr"] > runs[0]["cr"], "pruning raised the compression ratio"
    for stage in meta["stages"]:
        for net in ("actor", "critic1", "critic2"):
            assert meta["layers"][f"{stage}/{net}/l2"]["mode"] == "circ"
            name = f"{stage}/{net}/l1"  # dense: dW = bf16(gemm(dy^T, x)), over the batch
            assert np.array_equal(B.f32_round_to_bf16_bits(B.gemm(t[f"{name}/dy"].T, t[f"{name}/x"])),
                                  t[f"{name}/dW"]), name
    assert t["before/actor/l2/bitmap"].all()
    for net in ("actor", "critic1", "critic2"):
        name = f"after/{net}/l2"
        v, w, bm = t[f"{name}/v"], t[f"{name}/W"], t[f"{name}/bitmap"].astype(bool)
        k = v.shape[2]
        assert bm.sum() == bm.size * 3 // 4, "the trial pruned a quarter of the blocks"
        assert not np.any(v[~bm] & 0x7FFF), "pruned v words are signed zeros"
        assert np.array_equal(circ_expand(v)[:, :w.shape[1]], w)
        assert not np.any(w[~block_expand(bm, k)[:, :w.shape[1]].astype(bool)] & 0x7FFF)
        x, dy, dv = t[f"{name}/x"], t[f"{name}/dy"], t[f"{name}/dv"]
        # the DV command walks every block; the host keeps the kept blocks' results
        want = B.f32_round_to_bf16_bits(PA.run("dv", np.ascontiguousarray(dy.T), x, k=k))
        want = want.reshape(v.shape[0], k, v.shape[1]).transpose(0, 2, 1)
        assert np.array_equal(dv[bm], want[bm]) and not np.any(dv[~bm] & 0x7FFF)
    # a checkpoint still in the random warm-up has no update to record: one line, exit 2
    early = tmp_path / "warmup.npz"
    from golden.run_td3 import run_training
    cfg = TD3Config(env="HalfCheetah-v5", hidden=(16, 16), batch=16, start_steps=100, steps=50,
                    eval_every=1000, eval_episodes=1)
    run_training(cfg, tmp_path / "warm")
    early.write_bytes((tmp_path / "warm" / "checkpoint.npz").read_bytes())
    capfd.readouterr()
    assert cli.main(["trace", "--snapshot", f"w={early}", "--out", str(tmp_path / "w.npz")]) == 2
    err = capfd.readouterr().err.strip().splitlines()[-1]
    assert "still in its random warm-up (start_steps 100)" in err and err.startswith("omnidrl trace: error:")
    assert not (tmp_path / "w.npz").exists()


# -- rule circ-fine -----------------------------------------------------------------------------------

def _expand_by_formula(v: np.ndarray, n_in: int) -> np.ndarray:
    """W[p*k + r, q*k + c] = v[p, q, (r - c) mod k] (docs/td3.md), written out element by element."""
    p_, q_, k = v.shape
    w = np.zeros((p_ * k, q_ * k), v.dtype)
    for p in range(p_):
        for q in range(q_):
            for r in range(k):
                for c in range(k):
                    w[p * k + r, q * k + c] = v[p, q, (r - c) % k]
    return w[:, :n_in]


def test_to_fine_keeps_the_weight_and_the_adam_step():
    """The switch changes the representation, not the function: the effective weight is the same
    bits, and the first Adam step after it moves every element as the circulant step would have
    (m / sqrt(s) per element is v's per diagonal, since m and s are scaled by 1/k and 1/k^2)."""
    from golden.td3 import Layer

    rng = np.random.default_rng(3)
    layer = Layer("l1", 10, 8, "circ", 4, rng)  # 10 inputs, padded to 12
    m = rng.standard_normal(layer.v.shape).astype(np.float32) * 1e-3
    s = rng.uniform(1e-8, 1e-6, layer.v.shape).astype(np.float32)
    layer.adam["v"] = [m.copy(), s.copy()]
    v, before = layer.v.copy(), layer.effective().copy()
    layer.to_fine()
    assert layer.mode == "dense" and layer.v is None and layer.n_in_pad == 10
    assert np.array_equal(layer.W, _expand_by_formula(v, 10))
    assert np.array_equal(layer.effective(), before)
    mw, sw = layer.adam["W"]
    assert np.array_equal(mw, _expand_by_formula(m, 10) / np.float32(4))
    assert np.array_equal(sw, _expand_by_formula(s, 10) / np.float32(16))
    np.testing.assert_allclose(mw / np.sqrt(sw), _expand_by_formula(m / np.sqrt(s), 10), rtol=1e-6)


def _fine_cfg(**overrides) -> TD3Config:
    return TD3Config(**{**dict(hidden=(32, 32), batch=32, start_steps=200, steps=1000, eval_every=500,
                               eval_episodes=1, method="gst", block=8, gst_rule="circ-fine", gst_switch=0.5,
                               gst_smax=0.75, gmp_every=100, numerics="bf16"), **overrides})


def test_circ_fine_trains_as_the_circulant_control_until_its_switch_then_masks_elements():
    fine, control = Trainer(_fine_cfg()), Trainer(_fine_cfg(gst_rule="circ-prune", gst_smax=0.0))
    fine.run(until=499)
    control.run(until=499)
    for nets_f, nets_c in zip(fine.agent.nets(), control.agent.nets()):
        for net_f, net_c in zip(nets_f, nets_c):
            for lf, lc in zip(net_f.layers, net_c.layers):
                assert np.array_equal(lf.effective(), lc.effective()), lf.name
    assert [l.mode for l in fine.compressible_layers()] == ["circ"] * 3 and fine.fine_s == 0.0
    cr_circ = fine.agent.compression()["cr"]

    fine.run()  # the switch at step 500, mask updates every 100 steps after it
    layers = list(fine.compressible_layers())
    assert [l.mode for l in layers] == ["dense"] * 3
    for layer in layers:
        assert layer.W.shape == (32, 32) and layer.mask.sum() == 256  # 1 - 0.75 of 32 x 32
        assert np.all(layer.effective()[layer.mask == 0] == 0)
    for net, tgt in fine.agent.nets():
        assert tgt.layers[1].mode == "dense" and tgt.layers[1].mask is net.layers[1].mask
    dense = 3 * 32 * 32 + (17 + 23 + 23) * 32 + 6 * 32 + 32 + 32
    cr_fine = 1 - (dense - 3 * 32 * 32 + 3 * 256) / dense
    assert fine.agent.compression()["cr"] == pytest.approx(cr_fine)
    summ = fine.summary()
    assert summ["gst_target"] == 0.75 and summ["final_cr"] == pytest.approx(cr_fine)
    # updates at steps 201..1000: 299 circulant ones, then 501 from the switch's own step on
    assert summ["avg_cr"] == pytest.approx((299 * cr_circ + 501 * cr_fine) / 800)
    assert [e["step"] for e in summ["evals"]] == [500, 1000]


def test_circ_fine_regrows_a_frozen_value_that_outranks_a_kept_one():
    """The ranking holds the pruned values frozen where they were pruned: one that now outranks a
    kept value returns with that value, and the kept one is pruned (the count stays)."""
    tr = Trainer(_fine_cfg())
    tr.step = 500
    tr._apply_circ_fine()
    layer = next(tr.compressible_layers())
    mask, w = layer.mask.reshape(-1), layer.W.reshape(-1)
    kept, pruned = np.flatnonzero(mask == 1)[0], np.flatnonzero(mask == 0)[0]
    w[kept], w[pruned] = 0.0, 10.0
    layer.touch()
    tr.step = 600
    tr._apply_circ_fine()
    mask = layer.mask.reshape(-1)
    assert mask[pruned] == 1 and mask[kept] == 0 and mask.sum() == 256
    assert layer.W.reshape(-1)[pruned] == 10.0 and layer.effective().reshape(-1)[pruned] == 10.0
    assert tr.agent.actor_t.layers[1].mask is layer.mask
    fresh = Trainer(_fine_cfg())  # before the switch step nothing happens
    fresh.step = 400
    fresh._apply_circ_fine()
    assert [l.mode for l in fresh.compressible_layers()] == ["circ"] * 3


def test_circ_fine_ramp_raises_the_element_sparsity_cubically_from_the_switch():
    """gst_ramp: at the switch the whole expanded W is kept (sparsity 0), then Zhu and Gupta's
    cubic rise reaches gst_smax gst_ramp steps later, and stays."""
    tr = Trainer(_fine_cfg(gst_ramp=400))
    kept = {}
    for step in (500, 600, 700, 800, 900, 1000):
        tr.step = step
        tr._apply_circ_fine()
        kept[step] = int(next(tr.compressible_layers()).mask.sum())
    # s(t) = 0.75 * (1 - (1 - (t - 500) / 400)^3): 0, 0.434, 0.656, 0.738, 0.75, 0.75 of 1,024
    want = {t: 1024 - round(1024 * 0.75 * (1 - (1 - min(t - 500, 400) / 400) ** 3)) for t in kept}
    assert kept == want and kept[500] == 1024 and kept[1000] == 256
    assert tr.fine_start == 500 and tr.fine_s == 0.75
