"""Short TD3 probes of GST rules against dense and GMP (HalfCheetah-v5, bf16, one seed).

The full comparison (``bench/gst_vs_pruning.py``: 3 x 300k HalfCheetah, 2 x 300k Humanoid) takes
hours per run on this machine, so a candidate GST rule is first measured on a short run with its
schedule compressed so that it acts inside the probe (a larger ``gst_ds``; GMP's cubic schedule
is a fraction of the run's steps, so it compresses by itself). Each probe is one named
:class:`golden.td3.TD3Config`; every probe of one table shares env, seed, steps and numerics.

Each probe trains into ``build/bench/gst_probes/<name>/`` with checkpoints, so a killed probe
continues with ``--resume`` semantics when the script is started again with the same name.
Run at most two at a time (``nice -n 19``, one per core)::

    export OPENBLAS_NUM_THREADS=1
    nice -n 19 .venv/bin/python bench/gst_probes.py dense80 gst_switch_k16 > build/bench/p1.log 2>&1 &
    nice -n 19 .venv/bin/python bench/gst_probes.py gmp80 circprune_k16 > build/bench/p2.log 2>&1 &
    .venv/bin/python bench/gst_probes.py --report-only

Writes ``bench/results/gst_probes.{json,md,png}`` from every probe folder after each probe (and
with ``--report-only``): per probe the settings, average and final CR, final return (mean of the
last 3 evaluations), best return, return as a fraction of the dense probe of the same table, and
the evaluation curve.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, WORK as BENCH_WORK, bench_parser, stamp, write_results  # noqa: E402
from golden.run_td3 import CHECKPOINT, run_training  # noqa: E402
from golden.td3 import TD3Config  # noqa: E402

WORK = BENCH_WORK / "gst_probes"

#: what every probe of the HalfCheetah table shares
BASE = {"env": "HalfCheetah-v5", "seed": 0, "steps": 80_000, "numerics": "bf16", "compress": ("l2",)}

#: name -> (what it tests, TD3Config fields on top of BASE)
PROBES = {
    "dense80": ("dense baseline", {"method": "dense"}),
    "gmp80": ("GMP (Zhu-Gupta cubic to 0.9, 20%-80% of the probe, every 1000 steps), l2",
              {"method": "gmp", "block": 16}),
    "gst_switch_k16": ("current rule: l2 circulant k=16, reward-aware target, one switch to 16x16 "
                       "group-sparse past 1-1/k; ds=0.1 so the switch falls inside the probe",
                       {"method": "gst", "block": 16, "gst_ds": 0.1}),
    "circprune_k16": ("l2 circulant k=16 throughout; circulant blocks pruned by |v| with commit "
                      "(patience 1) / rollback (cool-down 2), ds=0.1 of the blocks, up to 0.9",
                      {"method": "gst", "block": 16, "gst_rule": "circ-prune", "gst_ds": 0.1,
                       "gst_smax": 0.9}),
    "circprune_k8": ("as circprune_k16 with k=8",
                     {"method": "gst", "block": 8, "gst_rule": "circ-prune", "gst_ds": 0.1,
                      "gst_smax": 0.9}),
    "circ_k8": ("control: l2 circulant k=8, nothing pruned (gst_smax=0): what circprune_k8 costs beyond k=8",
                {"method": "gst", "block": 8, "gst_smax": 0.0}),
    "circ_k16": ("control: l2 circulant k=16, nothing pruned (gst_smax=0)",
                 {"method": "gst", "block": 16, "gst_smax": 0.0}),
}


def probe_config(name: str) -> TD3Config:
    return TD3Config(**{**BASE, **PROBES[name][1]})


#: earlier full-length runs used as references at the probe's step (bench/results/gst_vs_pruning.json,
#: 2026-11-29, same algorithm and seed). Not the same bits: the probes reproduce its GST run's
#: warm-up evaluations (steps 5k-25k) exactly, but the first trained one differs (step 30k:
#: -540.7 here, -476.2 there), so the golden code changed since; the ``dense80`` probe is the
#: same-code reference where it has reached the step. Its ``gst`` run is l2 circulant k=16 with
#: nothing pruned until its reward-aware target passes 0.9375, which takes at least 19 holding
#: evaluations after the warm-up (step 120k).
REFERENCES = {"ref_dense": ("dense", "dense run of the 2026-11-29 set, truncated at the probe's step"),
              "ref_circ_k16": ("gst", "l2 circulant k=16, nothing pruned yet (the 2026-11-29 gst run up to "
                                      "the probe's step <= 120k)")}


def _row(evals: list[dict], upto: int) -> dict:
    """Final return (mean of the last 3 evaluations at or before ``upto``) and best return."""
    ev = [e for e in evals if e["step"] <= upto]
    last = [e["return"] for e in ev[-3:]]
    return {"final_return": round(sum(last) / len(last), 2) if last else None,
            "best_return": round(max(e["return"] for e in ev), 2) if ev else None}


def collect() -> list[dict]:
    """One row per probe folder, from its metrics (a probe still running counts to its last
    evaluation), then the recorded reference runs truncated at the probes' common step."""
    rows = []
    for name, (what, fields) in PROBES.items():
        path = WORK / name / "metrics.jsonl"
        recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
        evs = [r for r in recs if r["kind"] == "eval"]
        if not evs or evs[-1]["avg_cr"] is None:
            continue
        cfg = probe_config(name)
        summ = WORK / name / "summary.json"
        s = json.loads(summ.read_text()) if summ.is_file() else {}
        evals = [{"step": e["step"], "return": round(e["return"], 2)} for e in evs]
        rows.append({"probe": name, "what": what, "settings": {k: (list(v) if isinstance(v, tuple) else v)
                                                                for k, v in {**BASE, **fields}.items()},
                     "block": None if cfg.method == "dense" else cfg.block, "steps": evs[-1]["step"], "target_steps": cfg.steps,
                     "finished": evs[-1]["step"] >= cfg.steps, "avg_cr": evs[-1]["avg_cr"],
                     "final_cr": evs[-1]["cr"], **_row(evals, evs[-1]["step"]),
                     "gst_target": evs[-1].get("gst_target"), "gst_committed": evs[-1].get("gst_committed"),
                     "gst_events": s.get("gst_events"), "evals": evals,
                     "cr_curve": [[e["step"], e["cr"]] for e in evs]})
    if rows:
        upto = max(r["steps"] for r in rows)
        rec = json.loads((RESULTS / "gst_vs_pruning.json").read_text())
        for name, (method, what) in REFERENCES.items():
            run = next(r for r in rec["runs"] if r["env"] == BASE["env"] and r["seed"] == BASE["seed"]
                       and r["method"] == method)
            evals = [{"step": e["step"], "return": round(e["return"], 2)} for e in run["evals"] if e["step"] <= upto]
            cr = 0.0 if method == "dense" else (1 - 1 / 16) * 196_608 / 214_784  # l2 of actor and critics
            rows.append({"probe": name, "what": what, "settings": {"recorded": "bench/results/gst_vs_pruning.json",
                                                                    "method": method, "steps": run["steps"]},
                         "block": None if method == "dense" else 16, "steps": upto, "target_steps": run["steps"], "finished": True,
                         "avg_cr": round(cr, 5), "final_cr": round(cr, 5), **_row(evals, upto), "evals": evals,
                         "cr_curve": [[e["step"], round(cr, 6)] for e in evals]})
    # return / dense at the row's own step: the dense probe (this code) where it got that far,
    # else the recorded dense run
    dense = [r for r in rows if r["probe"] in ("dense80", "ref_dense")]
    for r in rows:
        src = next((d for d in dense if d["steps"] >= r["steps"]), None)
        d = _row(src["evals"], r["steps"]) if src else None
        r["dense_source"] = src["probe"] if src else None
        r["return_vs_dense"] = (round(r["final_return"] / d["final_return"], 4)
                                if d and d["final_return"] and d["final_return"] > 0 and r["final_return"] is not None
                                else None)  # a ratio of negative early returns means nothing
    return rows


def write_report(rows: list[dict]) -> None:
    doc = {**stamp("gst_probes", ("numpy", "gymnasium", "mujoco")),
           "settings": "TD3 defaults (256-256, lr 3e-4, batch 256, 25k random steps, eval every 5k x 10 "
                       "episodes), bf16 numerics; fields per probe in `settings`; final_return = mean of the "
                       "last 3 evaluations; return_vs_dense = final_return / the dense probe's at the same "
                       "env, seed and steps",
           "probes": rows}
    md = ["# GST rule probes (short TD3 runs, bf16)", "",
          "Each probe is one short run; its schedule is compressed so the rule acts inside it. "
          "One seed: returns at these lengths move by hundreds between evaluations, so a probe "
          "ranks ideas, it does not measure them. Written by `bench/gst_probes.py`.", "",
          "| probe | k | steps | average CR | final CR | final return | best | vs dense (source) | what |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = "" if r["return_vs_dense"] is None else f"{r['return_vs_dense']:.2f} ({r['dense_source']})"
        md.append(f"| {r['probe']} | {r['block'] or '-'} | {r['steps']} | {r['avg_cr']:.3f} | {r['final_cr']:.3f} | "
                  f"{r['final_return']} | {r['best_return']} | {vs} | {r['what']} |")
    write_results("gst_probes", doc, "\n".join(md) + "\n")
    try:
        plot(rows, RESULTS / "gst_probes.png")
    except Exception as exc:  # a plot must never lose the JSON
        print(f"plot failed: {exc}", file=sys.stderr)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for r in rows:
        a1.plot([e["step"] for e in r["evals"]], [e["return"] for e in r["evals"]], "-o", ms=2, label=r["probe"])
        a2.plot([c[0] for c in r["cr_curve"]], [c[1] for c in r["cr_curve"]], label=f"{r['probe']} (avg {r['avg_cr']:.3f})")
    a1.set_ylabel("evaluation return")
    a1.set_title("GST probes (HalfCheetah-v5, bf16, seed 0)")
    a2.set_ylabel("compression ratio")
    a2.set_xlabel("environment steps")
    a2.set_ylim(-0.02, 1.0)
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("probes", nargs="*", help=f"probe names, run in order: {', '.join(PROBES)}")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the results from the probe folders")
    args = ap.parse_args(argv)
    for name in args.probes:
        if name not in PROBES:
            ap.error(f"probe {name!r} is not defined; probes are {', '.join(PROBES)}")
    if not args.report_only:
        for name in args.probes:
            d = WORK / name
            summ = run_training(probe_config(name), d, resume=(d / CHECKPOINT).is_file(), quiet=True)
            print(f"{name}: steps {summ['steps']} avg CR {summ['avg_cr']:.3f} final return {summ['final_return']}",
                  flush=True)
            write_report(collect())
    write_report(collect())
    return 0


if __name__ == "__main__":
    sys.exit(main())
