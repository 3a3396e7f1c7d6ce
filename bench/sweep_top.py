"""The first real design-space sweep: the OmniDRL top on the HalfCheetah TD3 update.

Runs ``bench/sweeps/top_td3.toml`` (array size / block size k, EMD group size, transposer tile
banks; 33 points) with ``omnidrl sweep``'s runner on Ray, then checks the split synthesis (each
sub-block config once, plus the glue) against the whole-top figures of
``bench/results/top_td3.json`` (tiny and default presets). Writes ``bench/results/sweep_top.json``
(+ ``.md``, ``sweep_top_area_cycles.png``) and the summary ``bench/results/sweep.json``.

Every job is cached (``build/sweep/cache``), so the script is resumable: kill it and start it
again, and only what was not finished runs. Run it niced in the background::

    nice -n 10 .venv/bin/python bench/sweep_top.py --cpus 2 > build/bench/sweep_top.log 2>&1 &

``sweep.json`` also carries the worst critical path of the blocks' ``paper`` presets before and
after the pipelining work of issue 15 (``max_period_ns_paper_before`` / ``_after``): *before* is
the recorded figure, *after* is recomputed from ``bench/results/paper_synth.json`` at every run
(null while that file has not been re-measured since).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, ROOT, bench_parser, stamp, write_results  # noqa: E402
from flows.sweep import load_spec, run_sweep, spec_from_args  # noqa: E402

SPEC = ROOT / "bench" / "sweeps" / "top_td3.toml"
#: The worst block critical path of the paper presets before pipelining: bench/results/paper_synth.json
#: as recorded on 2026-11-30T18:46:28Z (emd_dec 11.355 ns; transposer 7.46, emd_enc 4.395, pe_array 3.8,
#: pe 3.69, ecim 3.135).
PAPER_BEFORE = {"max_period_ns": 11.355, "block": "emd_dec", "paper_synth_date": "2026-11-30T18:46:28Z"}


def paper_after(path: Path = RESULTS / "paper_synth.json") -> dict:
    """The worst paper-preset critical path in ``path`` now, or null while it is the recording
    the *before* figure came from."""
    doc = json.loads(path.read_text())
    periods = {b: v["min_period"] for b, v in doc["blocks"].items() if v.get("min_period") is not None}
    worst = max(periods, key=periods.get)
    if doc.get("date") == PAPER_BEFORE["paper_synth_date"]:
        return {"max_period_ns": None, "block": None, "paper_synth_date": doc.get("date"),
                "note": "bench/results/paper_synth.json has not been re-measured since the before figure"}
    return {"max_period_ns": periods[worst], "block": worst, "paper_synth_date": doc.get("date"), "periods": periods}


def validate_split(address, cpus, run: bool = True) -> dict:
    """Split synthesis (sub-blocks + glue) of the tiny and default tops against the whole-top
    figures recorded in bench/results/top_td3.json."""
    recorded = json.loads((RESULTS / "top_td3.json").read_text())["area"]
    out = {}
    for preset in ("tiny", "default"):
        spec = spec_from_args("omnidrl", preset, [], [], [], "grid", True, ["generic"], "keep", "auto", True, False)
        doc = run_sweep(spec, ROOT / "build" / "sweep", f"validate_{preset}", address=address, cpus=cpus, run=run)
        point = doc["points"][0]
        whole = recorded[preset]
        out[preset] = {"split_logic_ge": point.get("area_ge"), "whole_logic_ge": whole["logic_ge"],
                       "ratio": None if point.get("area_ge") is None else round(point["area_ge"] / whole["logic_ge"], 4),
                       "split_min_period_ns": point.get("min_period_ns"), "whole_min_period_ns": whole["min_period_ns"],
                       "split_flip_flops": point.get("flip_flops"), "whole_flip_flops": whole["flip_flops"],
                       "whole_how": whole["source"], "parts": point.get("synth_split"), "errors": point["errors"]}
    return out


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--address", default=None, help="Ray cluster address (default: Ray embedded here)")
    ap.add_argument("--cpus", type=int, default=None, help="cores of the embedded Ray")
    ap.add_argument("--skip-validation", action="store_true", help="leave the split-vs-whole check out")
    ap.add_argument("--report-only", action="store_true", help="write the results from the cache, run nothing "
                    "(while a run goes on, or after it was stopped)")
    args = ap.parse_args(argv)
    spec = load_spec(SPEC)
    run = not args.report_only
    # the check of the method first: the default top is also a point of the sweep (cached for it)
    validation = None if args.skip_validation else validate_split(args.address, args.cpus, run)
    doc = run_sweep(spec, RESULTS, "sweep_top", address=args.address, cpus=args.cpus, run=run)
    done = [p for p in doc["points"] if not p["errors"] and not p.get("pending")]
    summary = {**stamp("sweep", ("numpy", "amaranth", "pyosys", "ray")),
               "spec": str(SPEC.relative_to(ROOT)), "workload": spec.workloads[0],
               "points": len(doc["points"]), "points_complete": len(done),
               "pareto_points": doc["pareto"],
               "max_period_ns_paper_before": PAPER_BEFORE["max_period_ns"],
               "max_period_ns_paper_after": paper_after()["max_period_ns"],
               "paper_period": {"before": PAPER_BEFORE, "after": paper_after()},
               "split_synthesis_validation": validation, "stats": doc["stats"],
               "energy_note": doc["energy_note"]}
    md = ["# Sweep summary (bench/sweep_top.py)", "",
          f"{summary['points_complete']} of {summary['points']} points complete; table and plots in "
          "bench/results/sweep_top.md.", "",
          f"Worst paper-preset block critical path: before {summary['max_period_ns_paper_before']} ns "
          f"({PAPER_BEFORE['block']}), after "
          + (f"{summary['max_period_ns_paper_after']} ns ({summary['paper_period']['after']['block']})"
             if summary["max_period_ns_paper_after"] is not None
             else "not re-measured yet (bench/results/paper_synth.json is the before recording)") + ".", ""]
    if validation:
        md += ["Split synthesis (sub-blocks + glue) against the whole top (bench/results/top_td3.json):", "",
               "| preset | split logic GE | whole-top logic GE | ratio | flip-flops split / whole | "
               "min period split / whole (ns) |", "|---|---:|---:|---:|---|---|"]
        for preset, v in validation.items():
            n = lambda x: "-" if x is None else f"{x:,.0f}"  # noqa: E731
            md.append(f"| {preset} | {n(v['split_logic_ge'])} | {n(v['whole_logic_ge'])} | {v['ratio']} | "
                      f"{n(v['split_flip_flops'])} / {n(v['whole_flip_flops'])} | "
                      f"{v['split_min_period_ns']} / {v['whole_min_period_ns']} |")
    md += ["", "Pareto-optimal:", ""] + [f"- `{p['name']}`: {p['area_ge']} GE, {p['cycles']} cycles; {p['limits']}"
                                        for p in doc["pareto"]]
    write_results("sweep", summary, "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
