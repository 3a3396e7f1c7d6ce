"""GST vs iterative pruning (GMP) vs dense TD3 on MuJoCo, in bf16 numerics.

Every run advances in chunks of ``--chunk`` env steps, each chunk a Ray task
(:mod:`flows.raytasks`: Ray embedded on this machine, or a cluster with ``--address``); a run's
next chunk is submitted when its last one ends, so every run advances together and a stop at
any moment leaves comparable runs. Every chunk resumes from the run's checkpoint
(``build/bench/gst_vs_pruning/<run>/``), so a chunk whose worker died is rerun by Ray from
there, and killing this script and starting it again continues exactly where it was.
``--deadline HH:MM`` (UTC) submits no chunk that would end after that time.

Writes ``bench/results/gst_vs_pruning.json`` (``{"runs": [{"env", "method", "seed", "steps",
"avg_cr", "final_return", ...}]}``, final_return = mean of the last 3 evaluations; ``steps`` is
the number actually reached), ``bench/results/gst_vs_pruning.png`` and
``bench/results/gst_vs_pruning.md``, after every chunk. ``--report-only`` rewrites the results
from the run folders::

    export OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456
    nice -n 19 .venv/bin/python bench/gst_vs_pruning.py --cpus 2 > build/bench/gst.log 2>&1 &

On the 2-core machine the full set took about 3 hours of both cores (2026-11-29).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, WORK as BENCH_WORK, run_info, write_results  # noqa: E402
from golden.run_td3 import CHECKPOINT, run_training  # noqa: E402
from golden.td3 import TD3Config  # noqa: E402
from flows.raytasks import Progress, ray_session, run_tasks  # noqa: E402

WORK = BENCH_WORK / "gst_vs_pruning"
FULL_SET = ([("HalfCheetah-v5", m, s) for s in (0, 1) for m in ("dense", "gmp", "gst")]
            + [("Humanoid-v5", m, 0) for m in ("dense", "gmp", "gst")])
STEPS = {"HalfCheetah-v5": 200_000, "Humanoid-v5": 150_000}
#: what is compressed, per env, for gmp and gst alike. HalfCheetah's l2 holds 91.5 % of the
#: weights of actor and critics; Humanoid's 348-wide input makes l1 hold 57.8 %, so l1 is
#: compressed there too. k = 16: circulant CR 0.9375 (docs/td3.md, "What is compressed, and why k = 16").
COMPRESSION = {"HalfCheetah-v5": {"block": 16, "compress": ("l2",)},
               "Humanoid-v5": {"block": 16, "compress": ("l1", "l2")}}
#: method name (the run folder's and the tables') -> TD3Config fields on top of COMPRESSION[env].
#: ``gst`` is the rule of the 2026-11-29 runs (one switch to group-sparse past 1 - 1/k);
#: ``gst-cp`` keeps the layers circulant and prunes circulant blocks with commit / rollback
#: (docs/td3.md, "Rule circ-prune"; probes in bench/gst_probes.py: not yet shown to keep the return).
METHODS = {"dense": {"method": "dense"}, "gmp": {"method": "gmp"}, "gst": {"method": "gst"},
           "gst-cp": {"method": "gst", "gst_rule": "circ-prune", "gst_ds": 0.05, "gst_smax": 0.9,
                      "gst_patience": 1, "gst_cooldown": 2},
           # control: gst-cp's circulant layers with nothing pruned (s_max 0), what k alone costs
           "circ": {"method": "gst", "gst_rule": "circ-prune", "gst_smax": 0.0},
           # circulant for the first third, then fine-grained (element) sparsity 0.92 with regrowth
           "gst-cf": {"method": "gst", "gst_rule": "circ-fine", "gst_switch": 1 / 3, "gst_smax": 0.92},
           # the same, the element sparsity rising over 10k steps from the switch (cubic) instead of at once
           "gst-cfr": {"method": "gst", "gst_rule": "circ-fine", "gst_switch": 1 / 3, "gst_smax": 0.92,
                       "gst_ramp": 10_000}}
#: a chunk that ends on a multiple of this many env steps keeps a copy of its checkpoint in
#: ``<run>/snapshots/checkpoint-<steps>.npz``: the early / middle / late points that
#: ``bench/td3_stage_traces.py --snapshot`` records traces from
SNAPSHOT_EVERY = 50_000


def run_config(env: str, method: str, seed: int, steps: int, numerics: str, overrides=None) -> TD3Config:
    """The TD3Config of one run of the set (``overrides``: more TD3Config fields, e.g. tests' short runs)."""
    return TD3Config(env=env, seed=seed, steps=steps, numerics=numerics,
                     **{**COMPRESSION[env], **METHODS[method], **(overrides or {})})


def run_dir(env, method, seed, work: Path = WORK) -> Path:
    return Path(work) / f"{env}-{method}-s{seed}"


def read_summary(env, method, seed, work: Path = WORK):
    p = run_dir(env, method, seed, work) / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None


def run_chunk(env, method, seed, steps, numerics, stop_at, work, overrides=None, crash_once=None,
              snapshot_every=SNAPSHOT_EVERY) -> dict:
    """One chunk of one run, from its checkpoint to ``stop_at`` env steps (a Ray task).

    ``crash_once`` (tests only): a folder; the first attempt of each chunk trains half-way,
    puts the checkpoint back to where the chunk started (as if the process had died between two
    checkpoints, with metrics written past the last one) and ends its worker process.
    """
    cfg = run_config(env, method, seed, steps, numerics, overrides)
    d = run_dir(env, method, seed, work)
    ckpt = d / CHECKPOINT
    if crash_once is not None:
        mark = Path(crash_once) / f"{d.name}-{stop_at}.crashed"
        if not mark.exists():
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.write_text("")
            start = (read_summary(env, method, seed, work) or {}).get("steps", 0)
            saved = ckpt.read_bytes() if ckpt.is_file() else None
            run_training(cfg, d, resume=ckpt.is_file(), quiet=True, stop_at=(start + stop_at) // 2)
            if saved is None:
                ckpt.unlink()
            else:
                ckpt.write_bytes(saved)
            os._exit(1)
    summary = run_training(cfg, d, resume=ckpt.is_file(), quiet=True, stop_at=stop_at)
    if summary["steps"] % snapshot_every == 0:
        snap = d / "snapshots" / f"checkpoint-{summary['steps']}.npz"
        snap.parent.mkdir(exist_ok=True)
        shutil.copyfile(ckpt, snap)
    return summary


def run_grid(runs, target, numerics="bf16", chunk=10_000, deadline=None, work: Path = WORK, address=None, cpus=None,
             overrides=None, crash_once=None, on_chunk=lambda rows: None, sec_per_chunk=None,
             snapshot_every=SNAPSHOT_EVERY, together=None) -> list[dict]:
    """Train every ``(env, method, seed)`` of ``runs`` to ``target[env]`` steps, ``chunk`` steps
    per Ray task; ``on_chunk(rows)`` after every chunk; returns :func:`collect`'s rows.

    ``together``: how many runs advance at once. None (all of them, the run furthest behind
    first) leaves comparable runs at any stop; a number takes the runs in the order given and
    starts the next one when one finishes, so the first ones are done early."""
    sec_per_chunk = dict(sec_per_chunk or {})
    pending = []
    for env, method, seed in runs:
        s = read_summary(env, method, seed, work)
        reached = s["steps"] if s else 0
        if reached < target[env]:
            pending.append((reached / target[env], env, method, seed, reached))
    if together is None:
        pending.sort()  # the run furthest behind first
        together = len(pending)
    later = pending[together:]

    def task(env, method, seed, reached):
        stop_at = min(reached + chunk, target[env])
        return (f"{env} {method} s{seed} -> {stop_at}",
                (env, method, seed, target[env], numerics, stop_at, str(work), overrides,
                 None if crash_once is None else str(crash_once), snapshot_every))

    def on_result(label, args, summ):
        env, method, seed = args[:3]
        if isinstance(summ, BaseException):
            print(f"{time.strftime('%H:%M:%S')} {label}: failed: {summ}", flush=True)
            return [task(*later.pop(0)[1:])] if later else []
        print(f"{time.strftime('%H:%M:%S')} {env} {method} s{seed}: step {summ['steps']}  "
              f"last eval {summ['evals'][-1]['return'] if summ['evals'] else None}  "
              f"avg CR {summ['avg_cr']:.3f}", flush=True)
        on_chunk(collect(runs, target, work))
        if summ["steps"] < target[env]:
            return [task(env, method, seed, summ["steps"])]
        return [task(*later.pop(0)[1:])] if later else []  # this run is done: start the next one

    def stop() -> bool:  # no chunk may end after the deadline
        if deadline is None:
            return False
        est = max(sec_per_chunk.values(), default=0.0) * chunk / 10_000
        return time.time() + est > deadline.timestamp()

    chunks = sum(-(-(target[e] - r) // chunk) for _, e, m, s, r in pending)
    with ray_session(address, cpus):
        run_tasks(run_chunk, [task(e, m, s, r) for _, e, m, s, r in pending[:together]], on_result=on_result,
                  progress=Progress("gst_vs_pruning", chunks) if pending else None, stop=stop,
                  max_in_flight=cpus or os.cpu_count())
    if deadline is not None and stop():
        print("deadline reached: stopping with every run checkpointed", flush=True)
    return collect(runs, target, work)


def collect(runs, target_steps, work: Path = WORK) -> list[dict]:
    out = []
    for env, method, seed in runs:
        s = read_summary(env, method, seed, work)
        if s is None:
            continue
        out.append({"env": env, "method": method, "seed": seed, "steps": s["steps"],
                    "target_steps": target_steps[env], "finished": s["steps"] >= target_steps[env],
                    "avg_cr": round(s["avg_cr"], 5), "final_cr": round(s["final_cr"], 5),
                    "final_return": None if s["final_return"] is None else round(s["final_return"], 2),
                    "best_return": None if s["best_return"] is None else round(s["best_return"], 2),
                    "meta_bits": s["meta_bits"], "updates": s["updates"],
                    "evals": s["evals"]})
    return out


def _final_at(row, step) -> float | None:
    """A run's final return as of ``step``: the mean of its last 3 evaluations up to it."""
    ev = [e["return"] for e in row.get("evals", []) if e["step"] <= step][-3:]
    return sum(ev) / len(ev) if ev else None


def claims(rows) -> list[str]:
    """One line per env/seed: GST vs GMP average CR and GST vs dense final return, the returns
    taken at the step all three runs have reached (runs in progress stand at different steps)."""
    lines = []
    keys = sorted({(r["env"], r["seed"]) for r in rows})
    for env, seed in keys:
        by = {r["method"]: r for r in rows if r["env"] == env and r["seed"] == seed}
        if not {"gmp", "dense"} <= set(by):
            continue
        p, d = by["gmp"], by["dense"]
        for name in sorted(m for m in by if m not in BASELINES):
            g = by[name]
            step = min(g["steps"], p["steps"], d["steps"])
            fg, fd, fp = (_final_at(r, step) for r in (g, d, p))
            dcr = 100 * (g["avg_cr"] - p["avg_cr"])
            ratio = fg / fd if fg is not None and fd else float("nan")
            show = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
            lines.append(f"{env} seed {seed} @ {step} steps (returns: last 3 evaluations up to it): "
                         f"avg CR {name} {g['avg_cr']:.3f} vs gmp {p['avg_cr']:.3f} ({dcr:+.1f} %p, target >= +25; "
                         f"each run's own average to its own step); final return {name} {show(fg)} / dense "
                         f"{show(fd)} = {ratio:.2f} (target >= 0.95); gmp {show(fp)}")
    return lines


#: the issue's targets: mean CR gap GST - GMP (points), GST's mean final return over dense's,
#: and the least any one seed's GST final return may be of its own dense seed's
TARGETS = {"cr_gap_points": 25.0, "return_ratio": 0.95, "seed_return_ratio": 0.85}
#: plot colour of each method (every key of METHODS)
METHOD_COLORS = {"dense": "k", "gmp": "tab:red", "gst": "tab:blue", "gst-cp": "tab:green", "circ": "tab:purple",
                 "gst-cf": "tab:orange", "gst-cfr": "tab:brown"}
#: the methods every other one (a GST rule or the ``circ`` control) is measured against
BASELINES = ("dense", "gmp")


def means(rows) -> list[dict]:
    """Per env and method, over its finished seeds: the means of average CR, final CR, final
    return (last 3 evaluations) and best evaluation, and the mean final return over dense's on
    the seeds where both finished (``None`` without such a seed)."""
    out = []
    done = [r for r in rows if r["finished"] and r["final_return"] is not None]
    for env, method in sorted({(r["env"], r["method"]) for r in done}):
        mine = {r["seed"]: r for r in done if r["env"] == env and r["method"] == method}
        dense = {r["seed"]: r for r in done if r["env"] == env and r["method"] == "dense"}
        avg = lambda key, seeds: sum(mine[s][key] for s in seeds) / len(seeds)  # noqa: E731
        both = sorted(set(mine) & set(dense))
        of_dense = (sum(mine[s]["final_return"] for s in both) / sum(dense[s]["final_return"] for s in both)
                    if both else None)
        out.append({"env": env, "method": method, "seeds": sorted(mine),
                    **{k: round(avg(k, sorted(mine)), 4) for k in ("avg_cr", "final_cr", "final_return", "best_return")},
                    "final_return_of_dense": None if of_dense is None else round(of_dense, 3),
                    "dense_seeds": both})
    return out


def verdict(rows) -> list[dict]:
    """Per env and GST method, over the seeds whose dense, GMP and GST runs all reached their
    target steps: mean average CR gap GST - GMP (points), mean final return of GST over that of
    dense, the lowest per-seed GST / dense ratio, and whether each target is met."""
    out = []
    for env in sorted({r["env"] for r in rows}):
        done = [r for r in rows if r["env"] == env and r["finished"]]
        for name in sorted({r["method"] for r in done if r["method"] not in BASELINES}):
            seeds = sorted(s for s in {r["seed"] for r in done}
                           if {"dense", "gmp", name} <= {r["method"] for r in done if r["seed"] == s})
            if not seeds:
                continue
            by = {(r["method"], r["seed"]): r for r in done}
            mean = lambda m, key: sum(by[m, s][key] for s in seeds) / len(seeds)  # noqa: E731
            gap = 100 * (mean(name, "avg_cr") - mean("gmp", "avg_cr"))
            ratio = mean(name, "final_return") / mean("dense", "final_return")
            per_seed = {s: by[name, s]["final_return"] / by["dense", s]["final_return"] for s in seeds}
            out.append({"env": env, "method": name, "seeds": seeds, "steps": by["dense", seeds[0]]["target_steps"],
                        "avg_cr": {m: round(mean(m, "avg_cr"), 4) for m in ("dense", "gmp", name)},
                        "final_return": {m: round(mean(m, "final_return"), 1) for m in ("dense", "gmp", name)},
                        "cr_gap_points": round(gap, 2), "return_ratio": round(ratio, 3),
                        "seed_return_ratio": {s: round(v, 3) for s, v in per_seed.items()},
                        "met": {"cr_gap_points": gap >= TARGETS["cr_gap_points"],
                                "return_ratio": ratio >= TARGETS["return_ratio"],
                                "seed_return_ratio": min(per_seed.values()) >= TARGETS["seed_return_ratio"]}})
    return out


def write_report(rows, meta, name: str = "gst_vs_pruning") -> None:
    doc = dict(meta)
    doc["runs"] = rows
    doc["claims"] = claims(rows)
    doc["targets"] = TARGETS
    doc["verdict"] = verdict(rows)
    doc["means"] = means(rows)
    md = ["# GST vs gradual magnitude pruning vs dense (TD3, bf16 numerics)", "",
          f"Recorded {meta['date']} on {meta['machine']['processor']} ({meta['machine']['cpus']} CPUs), "
          "one Ray task per 10k-step chunk of a run, one task per core (`OPENBLAS_NUM_THREADS=1`). "
          "`steps` is what was actually reached; `target` what was asked. "
          "Average CR is over all updates (the 25k random-action steps have none).", "",
          "| env | method | seed | steps | target | average CR | final CR | final return (last 3 evals) | best eval |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['env']} | {r['method']} | {r['seed']} | {r['steps']} | {r['target_steps']} | "
                  f"{r['avg_cr']:.3f} | {r['final_cr']:.3f} | {r['final_return']} | {r['best_return']} |")
    md += [""] + [f"- {c}" for c in doc["claims"]] + [""]
    md += ["## Means over finished seeds", "",
           "`of dense`: the method's mean final return over dense's, on the seeds where both finished.", "",
           "| env | method | seeds | average CR | final CR | final return | best eval | of dense |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for m in doc["means"]:
        od = "-" if m["final_return_of_dense"] is None else f"{m['final_return_of_dense']:.2f}"
        md.append(f"| {m['env']} | {m['method']} | {','.join(map(str, m['seeds']))} | {m['avg_cr']:.3f} | "
                  f"{m['final_cr']:.3f} | {m['final_return']:.0f} | {m['best_return']:.0f} | {od} |")
    md.append("")
    md += ["## Against the targets (finished seeds only)", "",
           f"Targets: mean CR gap >= +{TARGETS['cr_gap_points']:.0f} points, GST mean final return >= "
           f"{TARGETS['return_ratio']:.0%} of dense's, no seed below {TARGETS['seed_return_ratio']:.0%} of its own "
           "dense seed.", ""]
    if doc["verdict"]:
        md += ["| env | method | seeds | steps | avg CR gmp | avg CR gst | gap (points) | return gst / dense | "
               "lowest seed | met |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for v in doc["verdict"]:
            met = ", ".join(f"{k} {'yes' if ok else 'no'}" for k, ok in v["met"].items())
            md.append(f"| {v['env']} | {v['method']} | {','.join(map(str, v['seeds']))} | {v['steps']} | "
                      f"{v['avg_cr']['gmp']:.3f} | {v['avg_cr'][v['method']]:.3f} | {v['cr_gap_points']:+.1f} | "
                      f"{v['return_ratio']:.2f} | {min(v['seed_return_ratio'].values()):.2f} | {met} |")
    else:
        md.append("No seed has all of dense, GMP and GST finished yet.")
    md.append("")
    write_results(name, doc, "\n".join(md))
    try:
        plot(rows, RESULTS / f"{name}.png")
        plot_tradeoff(rows, RESULTS / f"{name}_tradeoff.png")
    except Exception as exc:  # a plot must never lose the JSON
        print(f"plot failed: {exc}", file=sys.stderr)


def mean_curves(rows) -> dict:
    """Per method: the evaluation return at every step all its seeds reached, as mean, min and max
    over the seeds (one env's rows)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        runs = [{e["step"]: e["return"] for e in r["evals"]} for r in rows if r["method"] == method]
        steps = sorted(set.intersection(*(set(run) for run in runs)))
        vals = [[run[s] for run in runs] for s in steps]
        out[method] = {"seeds": sorted(r["seed"] for r in rows if r["method"] == method), "step": steps,
                       "mean": [sum(v) / len(v) for v in vals], "min": [min(v) for v in vals],
                       "max": [max(v) for v in vals]}
    return out


def tradeoff_points(rows) -> list[dict]:
    """Per finished run with a finished dense run of the same env and seed: its average CR and
    its final return over that dense run's (the trade-off each method makes, seed by seed)."""
    done = {(r["env"], r["method"], r["seed"]): r for r in rows if r["finished"] and r["final_return"] is not None}
    return [{"env": e, "method": m, "seed": s, "avg_cr": r["avg_cr"],
             "of_dense": r["final_return"] / done[e, "dense", s]["final_return"]}
            for (e, m, s), r in done.items() if (e, "dense", s) in done]


def plot_tradeoff(rows, path: Path) -> None:
    """Average CR against final return over the same seed's dense, one marker per run, with the
    targets: GST right of GMP's mean average CR + 25 points and above 0.95."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = tradeoff_points(rows)
    envs = sorted({p["env"] for p in pts})
    if not envs:
        return
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.2), squeeze=False)
    for ax, env in zip(axes[0], envs):
        mine = [p for p in pts if p["env"] == env]
        for method in dict.fromkeys(p["method"] for p in mine):
            ps = [p for p in mine if p["method"] == method]
            ax.scatter([p["avg_cr"] for p in ps], [p["of_dense"] for p in ps], color=METHOD_COLORS[method],
                       label=method, zorder=3)
            for p in ps:
                ax.annotate(f"s{p['seed']}", (p["avg_cr"], p["of_dense"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        gmp = [p["avg_cr"] for p in mine if p["method"] == "gmp"]
        if gmp:
            ax.axvline(sum(gmp) / len(gmp) + TARGETS["cr_gap_points"] / 100, color="gray", ls="--", lw=1,
                       label="GMP mean + 25 points")
        ax.axhline(TARGETS["return_ratio"], color="gray", ls=":", lw=1, label="95 % of dense")
        ax.set_title(f"{env}: the trade-off per seed")
        ax.set_xlabel("average compression ratio over the run")
        ax.set_ylabel("final return / same seed's dense")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot(rows, path: Path, work: Path = WORK) -> dict:
    """Per env (columns): evaluation return and compression ratio of every run against steps
    (colour: method, line style: seed; the CR curves from each run's ``metrics.jsonl`` under
    ``work``), then each method's mean return over its seeds. Returns each env's legend labels
    of the return panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    envs = sorted({r["env"] for r in rows})
    fig, axes = plt.subplots(3, len(envs), figsize=(6.5 * len(envs), 10), squeeze=False)
    seed_style = lambda seed: ("-", "--", ":", "-.")[seed % 4]  # noqa: E731
    labels = {}
    for j, env in enumerate(envs):
        mine = [r for r in rows if r["env"] == env]
        for r in mine:
            ev = r["evals"]
            axes[0][j].plot([e["step"] for e in ev], [e["return"] for e in ev], seed_style(r["seed"]),
                            color=METHOD_COLORS[r["method"]], lw=1)
            recs = [json.loads(x) for x in (run_dir(env, r["method"], r["seed"], work) / "metrics.jsonl").read_text().splitlines()]
            recs = [x for x in recs if x["kind"] == "eval"]
            axes[1][j].plot([x["step"] for x in recs], [x["cr"] for x in recs], seed_style(r["seed"]),
                            color=METHOD_COLORS[r["method"]], lw=1)
        # one legend entry per method and per seed, not per run: 18 runs made the legend cover the curves
        methods = list(dict.fromkeys(r["method"] for r in mine))
        avg_cr = {m: sum(r["avg_cr"] for r in mine if r["method"] == m) / sum(r["method"] == m for r in mine)
                  for m in methods}
        seeds = sorted({r["seed"] for r in mine})
        labels[env] = methods + [f"seed {s}" for s in seeds]
        axes[0][j].legend([Line2D([], [], color=METHOD_COLORS[m]) for m in methods]
                          + [Line2D([], [], color="gray", ls=seed_style(s)) for s in seeds],
                          labels[env], fontsize=7, ncol=2, loc="upper left")
        axes[1][j].legend([Line2D([], [], color=METHOD_COLORS[m]) for m in methods],
                          [f"{m} (average CR {avg_cr[m]:.3f})" for m in methods], fontsize=7, ncol=2, loc="lower right")
        for method, curve in mean_curves(mine).items():
            axes[2][j].plot(curve["step"], curve["mean"], color=METHOD_COLORS[method],
                            label=f"{method} ({len(curve['seeds'])} seeds)")
            axes[2][j].fill_between(curve["step"], curve["min"], curve["max"], color=METHOD_COLORS[method], alpha=0.15)
        axes[2][j].legend(fontsize=7, ncol=2, loc="upper left")
        axes[2][j].set_ylabel("return, mean of seeds (band: min-max)")
        axes[0][j].set_title(f"{env} (bf16; colour: method, line style: seed)")
        axes[0][j].set_ylabel("evaluation return")
        axes[1][j].set_ylabel("compression ratio (all weights)")
        axes[2][j].set_xlabel("environment steps")
        axes[1][j].set_ylim(-0.02, 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return labels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=None,
                    help="comma list ENV:METHOD:SEED, METHOD one of " + ", ".join(METHODS)
                    + " (default: the full set, 6 HalfCheetah + 3 Humanoid)")
    ap.add_argument("--steps-halfcheetah", type=int, default=STEPS["HalfCheetah-v5"])
    ap.add_argument("--steps-humanoid", type=int, default=STEPS["Humanoid-v5"])
    ap.add_argument("--numerics", default="bf16")
    ap.add_argument("--chunk", type=int, default=10_000, help="env steps per turn")
    ap.add_argument("--deadline", default=None, help="UTC HH:MM: stop (checkpointed) before then")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the results from the run folders")
    ap.add_argument("--address", default=None, help="Ray cluster address (default: Ray embedded on this machine)")
    ap.add_argument("--cpus", type=int, default=None, help="cores of the embedded Ray (default: all)")
    ap.add_argument("--together", type=int, default=None,
                    help="runs that advance at once, taken in the order of --runs (default: all, so that a "
                         "stop leaves comparable runs)")
    ap.add_argument("--results", default="gst_vs_pruning",
                    help="name of the result files bench/results/NAME.{json,md,png} (a partial set of runs "
                         "should not overwrite the recorded full set)")
    args = ap.parse_args(argv)
    runs = FULL_SET if args.runs is None else [
        (e, m, int(s)) for e, m, s in (t.split(":") for t in args.runs.split(","))]
    for env, method, _ in runs:
        if method not in METHODS or env not in COMPRESSION:
            print(f"gst_vs_pruning: error: --runs {env}:{method} is not allowed: METHOD must be one of "
                  f"{', '.join(METHODS)} and ENV one of {', '.join(COMPRESSION)}", file=sys.stderr)
            return 2
    if args.together is not None and args.together < 1:
        print(f"gst_vs_pruning: error: --together {args.together} is not allowed: give at least 1 run", file=sys.stderr)
        return 2
    target = {"HalfCheetah-v5": args.steps_halfcheetah, "Humanoid-v5": args.steps_humanoid}
    deadline = None
    if args.deadline:
        h, m = map(int, args.deadline.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        deadline = now.replace(hour=h, minute=m, second=0, microsecond=0)
    meta = {"benchmark": "gst_vs_pruning", "numerics": args.numerics, **run_info(("numpy", "gymnasium", "mujoco")),
            "settings": "TD3 defaults (256-256, lr 3e-4, batch 256, 25k random steps, eval every 5k x 10 "
                        "episodes); compressed layers and block size per env: "
                        + "; ".join(f"{e}: {','.join(c['compress'])} k={c['block']}" for e, c in COMPRESSION.items())
                        + "; GST (gst): those layers start block-circulant, reward-aware ds=0.05 delta=0.05 s_max=0.95, "
                        "one switch to group-sparse past 1-1/k; gst-cp: circulant throughout, circulant blocks "
                        "pruned by |v| with commit (patience 1) / rollback (cool-down 2), ds=0.05 of the blocks "
                        "per evaluation, at most 0.9; "
                        "GMP: the same layers magnitude-pruned to 0.9, cubic from 20% to 80% of the target steps, "
                        "every 1000 steps"}
    if not args.report_only:
        # first guesses for the deadline check (s per 10k-step chunk on this machine, 2 processes)
        sec_per_chunk = {("HalfCheetah-v5", m): t for m, t in (("dense", 95), ("gmp", 115), ("gst", 130))}
        sec_per_chunk.update({("Humanoid-v5", m): t for m, t in (("dense", 160), ("gmp", 210), ("gst", 260))})
        run_grid(runs, target, args.numerics, args.chunk, deadline, address=args.address, cpus=args.cpus,
                 together=args.together,
                 on_chunk=lambda rows: write_report(rows, meta, args.results),
                 sec_per_chunk={k: v for k, v in sec_per_chunk.items() if k in {(e, m) for e, m, _ in runs}})
    rows = collect(runs, target)
    write_report(rows, meta, args.results)
    for r in rows:
        print(f"{r['env']} {r['method']} seed {r['seed']}: steps {r['steps']}/{r['target_steps']}  "
              f"avg_cr {r['avg_cr']:.4f}  final_return {r['final_return']}")
    for c in claims(rows):
        print(c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
