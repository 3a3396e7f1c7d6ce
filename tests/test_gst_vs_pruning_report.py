"""The long-run report's verdict against issue 14's targets (bench/gst_vs_pruning.verdict), on hand-made rows."""

import pytest

from bench import gst_vs_pruning as gvp
from bench.gst_vs_pruning import verdict


def _row(method, seed, avg_cr, final_return, steps=300_000, target=300_000, env="HalfCheetah-v5"):
    return {"env": env, "method": method, "seed": seed, "steps": steps, "target_steps": target,
            "finished": steps >= target, "avg_cr": avg_cr, "final_return": final_return}


def test_means_gap_and_lowest_seed_by_hand():
    rows = [_row("dense", 0, 0.0, 6000.0), _row("gmp", 0, 0.60, 5900.0), _row("gst-cp", 0, 0.88, 5400.0),
            _row("dense", 1, 0.0, 4000.0), _row("gmp", 1, 0.62, 4100.0), _row("gst-cp", 1, 0.90, 4300.0)]
    (v,) = verdict(rows)
    # gap: (0.89 - 0.61) * 100 = 28 points; return ratio (5400 + 4300) / (6000 + 4000) = 0.97
    assert v["cr_gap_points"] == pytest.approx(28.0) and v["return_ratio"] == pytest.approx(0.97)
    assert v["seed_return_ratio"] == {0: 0.9, 1: 1.075} and v["seeds"] == [0, 1]
    assert v["met"] == {"cr_gap_points": True, "return_ratio": True, "seed_return_ratio": True}


def test_unfinished_runs_do_not_count_and_a_weak_seed_fails_its_target():
    rows = [_row("dense", 0, 0.0, 6000.0), _row("gmp", 0, 0.70, 5900.0), _row("gst-cp", 0, 0.88, 4800.0),
            _row("dense", 1, 0.0, 4000.0), _row("gmp", 1, 0.62, 4100.0), _row("gst-cp", 1, 0.90, 9000.0, steps=100_000)]
    (v,) = verdict(rows)
    assert v["seeds"] == [0]  # seed 1's GST run has not reached its target
    assert v["cr_gap_points"] == pytest.approx(18.0) and v["return_ratio"] == pytest.approx(0.8)
    assert v["met"] == {"cr_gap_points": False, "return_ratio": False, "seed_return_ratio": False}
    assert verdict([_row("dense", 0, 0.0, 1.0), _row("gst-cp", 0, 0.9, 1.0)]) == []  # no GMP run: no verdict


def test_interim_claims_compare_returns_at_the_step_all_runs_reached():
    from bench.gst_vs_pruning import claims

    ev = lambda *pairs: [{"step": s, "return": r} for s, r in pairs]  # noqa: E731
    rows = [{**_row("dense", 0, 0.0, None, steps=60_000), "evals": ev((40_000, 10), (50_000, 20), (60_000, 900))},
            {**_row("gmp", 0, 0.1, None, steps=50_000), "evals": ev((40_000, 30), (50_000, 40))},
            {**_row("gst-cp", 0, 0.86, None, steps=50_000), "evals": ev((40_000, 15), (50_000, 15))}]
    (line,) = claims(rows)
    # at 50k: gst-cp 15 / dense 15 (dense's 60k evaluation is left out) = 1.00
    assert "@ 50000 steps" in line and "final return gst-cp 15.0 / dense 15.0 = 1.00" in line and "gmp 35.0" in line


def test_the_circ_control_gets_a_verdict_like_a_gst_rule():
    rows = [_row("dense", 0, 0.0, 6000.0), _row("gmp", 0, 0.60, 5900.0), _row("circ", 0, 0.858, 5400.0)]
    (v,) = verdict(rows)
    assert v["method"] == "circ" and v["cr_gap_points"] == pytest.approx(25.8) and v["return_ratio"] == pytest.approx(0.9)


def test_means_per_method_over_finished_seeds_by_hand():
    from bench.gst_vs_pruning import means

    rows = [{**_row("dense", 0, 0.0, 6000.0), "final_cr": 0.0, "best_return": 6100.0},
            {**_row("dense", 1, 0.0, 4000.0), "final_cr": 0.0, "best_return": 4500.0},
            {**_row("gst-cp", 0, 0.88, 5400.0), "final_cr": 0.90, "best_return": 5500.0},
            {**_row("gst-cp", 1, 0.90, 4300.0), "final_cr": 0.92, "best_return": 4400.0},
            {**_row("gst-cp", 2, 0.99, 1.0, steps=10_000), "final_cr": 0.99, "best_return": 1.0}]  # unfinished
    by = {m["method"]: m for m in means(rows)}
    g = by["gst-cp"]
    assert g["seeds"] == [0, 1] and g["avg_cr"] == pytest.approx(0.89) and g["final_cr"] == pytest.approx(0.91)
    assert g["final_return"] == pytest.approx(4850.0) and g["best_return"] == pytest.approx(4950.0)
    assert g["final_return_of_dense"] == pytest.approx(0.97) and by["dense"]["final_return_of_dense"] == 1.0
    lone = means([{**_row("gmp", 3, 0.6, 10.0), "final_cr": 0.8, "best_return": 11.0}])
    assert lone[0]["final_return_of_dense"] is None  # no dense seed to compare with


def test_mean_curves_use_only_the_steps_every_seed_reached():
    from bench.gst_vs_pruning import mean_curves

    ev = lambda *pairs: [{"step": s, "return": r} for s, r in pairs]  # noqa: E731
    rows = [{**_row("dense", 0, 0.0, None), "evals": ev((5, 10.0), (10, 30.0), (15, 50.0))},
            {**_row("dense", 1, 0.0, None), "evals": ev((5, 20.0), (10, 10.0))},
            {**_row("gmp", 0, 0.5, None), "evals": ev((5, 1.0))}]
    c = mean_curves(rows)
    assert c["dense"] == {"seeds": [0, 1], "step": [5, 10], "mean": [15.0, 20.0], "min": [10.0, 10.0],
                          "max": [20.0, 30.0]}
    assert c["gmp"]["step"] == [5] and c["gmp"]["mean"] == [1.0]


def test_tradeoff_points_divide_by_the_same_seeds_dense_and_skip_unfinished_runs():
    from bench.gst_vs_pruning import tradeoff_points

    rows = [_row("dense", 0, 0.0, 8000.0), _row("gst-cp", 0, 0.9, 6000.0), _row("dense", 1, 0.0, 5000.0),
            _row("gst-cp", 1, 0.88, 5500.0), _row("circ", 2, 0.86, 100.0),  # no dense seed 2
            _row("gmp", 1, 0.5, 4000.0, steps=10)]  # unfinished
    pts = {(p["method"], p["seed"]): p for p in tradeoff_points(rows)}
    assert set(pts) == {("dense", 0), ("gst-cp", 0), ("dense", 1), ("gst-cp", 1)}
    assert pts["gst-cp", 0]["of_dense"] == pytest.approx(0.75) and pts["gst-cp", 1]["of_dense"] == pytest.approx(1.1)
    assert pts["gst-cp", 1]["avg_cr"] == 0.88


def test_every_method_has_a_plot_colour_and_a_valid_config():
    from golden.td3 import TD3Config

    assert set(gvp.METHOD_COLORS) == set(gvp.METHODS)
    for env in gvp.COMPRESSION:
        for method in gvp.METHODS:
            cfg = gvp.run_config(env, method, 0, 300_000, "bf16")
            assert isinstance(cfg, TD3Config) and cfg.steps == 300_000


def test_the_curve_plot_has_one_legend_entry_per_method_and_seed(tmp_path):
    """Two envs, three methods, two seeds: the PNG is written from the runs' metrics files and
    the return panel's legend names methods and seeds (5 entries), not the 6 runs one by one."""
    import json

    rows = []
    for env in ("HalfCheetah-v5", "Humanoid-v5"):
        for method in ("dense", "gmp", "gst-cfr"):
            for seed in (0, 1):
                evals = [{"step": s, "return": float(s // 1000 + seed)} for s in (5_000, 10_000, 15_000)]
                rows.append({**_row(method, seed, 0.5, 10.0, env=env), "evals": evals})
                run = gvp.run_dir(env, method, seed, tmp_path)
                run.mkdir(parents=True)
                run.joinpath("metrics.jsonl").write_text("".join(
                    json.dumps({"kind": "eval", "step": e["step"], "cr": 0.5}) + "\n" for e in evals)
                    + json.dumps({"kind": "train", "step": 1}) + "\n")
    labels = gvp.plot(rows, tmp_path / "curves.png", tmp_path)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert labels == {env: ["dense", "gmp", "gst-cfr", "seed 0", "seed 1"] for env in ("HalfCheetah-v5", "Humanoid-v5")}
    gvp.plot_tradeoff(rows, tmp_path / "tradeoff.png")
    assert (tmp_path / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"
