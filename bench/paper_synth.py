"""Every block's ``paper`` preset through ``omnidrl synth``: area, flip-flops, critical path, time.

Reads the reports of ``omnidrl synth BLOCK --preset paper`` (generic target), synthesizing the
missing ones first (about 40 minutes in all on the 2-core machine, most of it the PE array and
the transposer). Figures whose hierarchy was kept (``--hierarchy auto`` above 150,000 lines of
Verilog, docs/flows.md) are marked: they are not optimized across module boundaries; so are
those mapped with the fast ABC script (``--abc auto`` for a module over 50,000 lines).

When a block's ``paper`` configuration has changed since the recorded figures (another
``full_hash``), the recorded ones are kept as its ``before`` (the pipelining of the common
clock target, docs/results.md), and the Markdown adds a before/after table.

Usage: ``python bench/paper_synth.py [--no-synth] [--blocks emd_dec,emd_enc]`` (``--blocks``:
re-read or synthesize these only, keep the others' recorded entries); writes
``bench/results/paper_synth.json`` and ``.md``.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, run_info, synth_records, write_results  # noqa: E402
from flows.generate import BUILD, resolve_config  # noqa: E402
from flows.synth import load_report  # noqa: E402
from hdl.registry import BLOCKS  # noqa: E402

METRICS = ("area", "flip_flops", "transistors", "cells", "blackbox_instances", "min_period", "fmax_estimate",
           "synth_time", "elapsed", "hierarchy_kept", "abc_fast")


def _flat(config: dict, prefix: str = "") -> dict:
    """A config dict with nested configs as dotted names."""
    out = {}
    for key, value in config.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def _entry(config: dict, full_hash: str, records: dict) -> dict:
    return {"config": config, "full_hash": full_hash, **{m: records[m]["value"] for m in METRICS if m in records}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-synth", action="store_true", help="only read the reports there are")
    parser.add_argument("--blocks", help="comma-separated blocks to (re)read; the others keep their recorded entry")
    parser.add_argument("--also", action="append", default=[], metavar="BLOCK:PRESET[:BEFORE_HASH]",
                        help="also record this preset's report (never synthesized here), as `other_presets`; "
                             "BEFORE_HASH names the report (build/reports/BLOCK-HASH.json) of its `before`")
    args = parser.parse_args()
    old_path = RESULTS / "paper_synth.json"
    old_doc = json.loads(old_path.read_text()) if old_path.exists() else {}
    recorded = old_doc.get("blocks", {})
    others = dict(old_doc.get("other_presets", {}))
    for spec in args.also:
        block, preset, *before = spec.split(":")
        if block not in BLOCKS:
            parser.error(f"--also: {block} is not a block; choose from {', '.join(sorted(BLOCKS))}")
        cfg = resolve_config(block, preset)
        records = synth_records(cfg, "generic", synthesize_missing=False)
        if not records:
            parser.error(f"--also: no report for {block} --preset {preset} (run: omnidrl synth {block} --preset {preset})")
        others[f"{block}/{preset}"] = _entry(cfg.to_dict(), cfg.full_hash(), records)
        if before:
            report = load_report(BUILD / "reports" / f"{block}-{before[0]}.json")
            old = {r["metric"]: r for r in report["records"] if r["target"] == "generic"}
            others[f"{block}/{preset}"]["before"] = _entry(report["config"], report["full_hash"], old)
    chosen = sorted(BLOCKS) if not args.blocks else args.blocks.split(",")
    unknown = [b for b in chosen if b not in BLOCKS]
    if unknown:
        parser.error(f"--blocks: {', '.join(unknown)} is not a block; choose from {', '.join(sorted(BLOCKS))}")
    rows = {b: recorded[b] for b in sorted(BLOCKS) if b not in chosen and b in recorded}
    for block in chosen:
        cfg = resolve_config(block, "paper")
        records = synth_records(cfg, "generic", synthesize_missing=not args.no_synth)
        if not records:
            print(f"{block}: no report (run: omnidrl synth {block} --preset paper)")
            if block in recorded and recorded[block]["full_hash"] == cfg.full_hash():
                rows[block] = recorded[block]  # the same configuration: keep what was measured
            continue
        rows[block] = _entry(cfg.to_dict(), cfg.full_hash(), records)
        old = recorded.get(block)
        if old and old["full_hash"] != cfg.full_hash():
            rows[block]["before"] = {k: v for k, v in old.items() if k != "before"}
        elif old and "before" in old:
            rows[block]["before"] = old["before"]
        print(block, {m: rows[block].get(m) for m in ("area", "min_period", "elapsed")}, flush=True)
    md = ["| block | area (GE) | flip-flops | critical path (ns) | black boxes | Yosys (s) | whole run (s) | hierarchy, ABC script |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    rows = dict(sorted(rows.items()))
    for block, r in rows.items():
        md.append(f"| {block} | {r['area']:,.0f} | {r['flip_flops']:,} | {r.get('min_period', float('nan')):.2f} | "
                  f"{r.get('blackbox_instances', 0)} | {r['synth_time']:,.0f} | {r.get('elapsed', float('nan')):,.0f} | "
                  f"{'kept' if r.get('hierarchy_kept') else 'flattened'}, {'fast' if r.get('abc_fast') else 'default'} |")
    changed = {b: r for b, r in {**rows, **others}.items() if "before" in r}
    if changed:
        md += ["", "Before and after (the `before` configuration: its `full_hash` and the fields that changed):", "",
               "| block | area before | area after | flip-flops before | flip-flops after | path before (ns) | "
               "path after (ns) | before |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        for block, r in changed.items():
            b = r["before"]
            was, now = _flat(b["config"]), _flat(r["config"])   # a field added since reads "absent"
            diff = [f"{k} {was.get(k, 'absent')} -> {now.get(k, 'absent')}" for k in sorted(set(was) | set(now))
                    if was.get(k, 'absent') != now.get(k, 'absent')]
            md.append(f"| {block} | {b['area']:,.0f} | {r['area']:,.0f} | {b['flip_flops']:,} | {r['flip_flops']:,} | "
                      f"{b.get('min_period', float('nan')):.2f} | {r.get('min_period', float('nan')):.2f} | "
                      f"{b['full_hash']}: {', '.join(diff) or 'same fields'} |")
    write_results("paper_synth", {**run_info(), "benchmark": "paper_synth", "blocks": rows,
                                  **({"other_presets": others} if others else {})}, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
