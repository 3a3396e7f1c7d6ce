"""Every block's ``paper`` preset through ``omnidrl synth``: area, flip-flops, critical path, time.

Reads the reports of ``omnidrl synth BLOCK --preset paper`` (generic target), synthesizing the
missing ones first (about 40 minutes in all on the 2-core machine, most of it the PE array and
the transposer). Figures whose hierarchy was kept (``--hierarchy auto`` above 150,000 lines of
Verilog, docs/flows.md) are marked: they are not optimized across module boundaries; so are
those mapped with the fast ABC script (``--abc auto`` for a module over 50,000 lines).

``--preset default`` records another preset the same way (under ``presets`` in the JSON);
``--blocks`` re-runs some blocks and keeps the others' records. When a block's configuration
changed since the recorded run (its ``full_hash``, e.g. a pipelining knob turned on), the old
record is kept as ``before``; a re-run of the same configuration keeps the ``before`` it had.
Those pairs make the "common clock target" table (docs/results.md): every block against
:data:`COMMON_PERIOD_NS`.

Usage: ``python bench/paper_synth.py [--preset P] [--blocks a,b] [--no-synth]``; writes
``bench/results/paper_synth.json`` and ``.md``.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, bench_parser, run_info, synth_records, write_results  # noqa: E402
from flows.generate import resolve_config  # noqa: E402
from hdl.registry import BLOCKS  # noqa: E402

METRICS = ("area", "flip_flops", "transistors", "cells", "blackbox_instances", "min_period", "fmax_estimate",
           "synth_time", "elapsed", "hierarchy_kept", "abc_fast")
BEFORE_KEYS = ("config", "full_hash", "area", "flip_flops", "min_period", "hierarchy_kept", "abc_fast")
# The period every block's paper preset is to meet: the PE's (3.69 ns) and the PE array's, rounded up.
COMMON_PERIOD_NS = 4.0
# What the pipelining knobs turned on for the common clock cost in cycles, per block.
CYCLES_EFFECT = {
    "transposer": "none (rank_registers: bases registered in the header / commit cycle; cycle model unchanged)",
    "emd_dec": "+1 cycle of latency per EMD stream (pipeline=1); one beat per cycle as before",
    "emd_enc": "+2 cycles of latency per EMD stream (pipeline=1); input never refused, as before",
    "omnidrl": "at most 276 cycles more on the 4,303,756-cycle HalfCheetah update (the codecs' latency; "
               "an upper bound, not in the machine model's estimate)",
}


def _row(cfg, records: dict, old: dict | None) -> dict:
    row = {"config": cfg.to_dict(), "full_hash": cfg.full_hash(),
           **{m: records[m]["value"] for m in METRICS if m in records}}
    if old and old.get("full_hash") != row["full_hash"]:
        row["before"] = {k: old[k] for k in BEFORE_KEYS if k in old}
    elif old and "before" in old:
        row["before"] = old["before"]
    return row


def _blocks_table(rows: dict) -> list[str]:
    md = ["| block | area (GE) | flip-flops | critical path (ns) | black boxes | Yosys (s) | whole run (s) | hierarchy, ABC script |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    for block, r in rows.items():
        md.append(f"| {block} | {r['area']:,.0f} | {r['flip_flops']:,} | {r.get('min_period', float('nan')):.2f} | "
                  f"{r.get('blackbox_instances', 0)} | {r['synth_time']:,.0f} | {r.get('elapsed', float('nan')):,.0f} | "
                  f"{'kept' if r.get('hierarchy_kept') else 'flattened'}, {'fast' if r.get('abc_fast') else 'default'} |")
    return md


def common_clock_table(doc: dict) -> list[str]:
    """Before / after rows of every block with a ``before`` record, paper preset first."""
    md = [f"| block | preset | area before (GE) | area after (GE) | FFs before | FFs after | path before (ns) | "
          f"path after (ns) | cycles effect |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    sections = [("paper", doc.get("blocks", {}))] + sorted(doc.get("presets", {}).items())
    for preset, rows in sections:
        for block, r in sorted(rows.items()):
            b = r.get("before")
            if not b:
                continue
            md.append(f"| {block} | {preset} | {b['area']:,.0f} | {r['area']:,.0f} | {b['flip_flops']:,} | "
                      f"{r['flip_flops']:,} | {b['min_period']:.2f} | {r['min_period']:.2f} | "
                      f"{CYCLES_EFFECT.get(block, 'none')} |")
    return md


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--no-synth", action="store_true", help="only read the reports there are")
    parser.add_argument("--preset", default="paper", help="the preset to record (default: paper)")
    parser.add_argument("--blocks", default=",".join(sorted(BLOCKS)),
                        help="comma-separated blocks to run; the others' records are kept (default: all)")
    args = parser.parse_args()
    blocks = [b for b in args.blocks.split(",") if b]
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown:
        parser.error(f"--blocks: unknown block {unknown[0]!r}; choose from {', '.join(sorted(BLOCKS))}")
    path = RESULTS / "paper_synth.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    previous = doc.get("blocks", {}) if args.preset == "paper" else doc.get("presets", {}).get(args.preset, {})
    rows = dict(previous)
    for block in blocks:
        cfg = resolve_config(block, args.preset)
        records = synth_records(cfg, "generic", synthesize_missing=not args.no_synth)
        if not records:
            print(f"{block}: no report (run: omnidrl synth {block} --preset {args.preset})")
            continue
        rows[block] = _row(cfg, records, previous.get(block))
        print(block, {m: rows[block].get(m) for m in ("area", "min_period", "elapsed")}, flush=True)
    rows = dict(sorted(rows.items()))
    doc = {**doc, **run_info(), "benchmark": "paper_synth", "common_period_ns": COMMON_PERIOD_NS}
    if args.preset == "paper":
        doc["blocks"] = rows
    else:
        doc["presets"] = {**doc.get("presets", {}), args.preset: rows}
    md = _blocks_table(doc["blocks"])
    for preset, preset_rows in sorted(doc.get("presets", {}).items()):
        md += ["", f"Preset `{preset}`:", "", *_blocks_table(preset_rows)]
    md += ["", f"Common clock target ({COMMON_PERIOD_NS} ns): before and after the pipelining knobs", "",
           *common_clock_table(doc)]
    write_results("paper_synth", doc, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
