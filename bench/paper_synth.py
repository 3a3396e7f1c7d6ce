"""Every block's ``paper`` preset through ``omnidrl synth``: area, flip-flops, critical path, time.

Reads the reports of ``omnidrl synth BLOCK --preset paper`` (generic target), synthesizing the
missing ones first (about 40 minutes in all on the 2-core machine, most of it the PE array and
the transposer). Figures whose hierarchy was kept (``--hierarchy auto`` above 150,000 lines of
Verilog, docs/flows.md) are marked: they are not optimized across module boundaries; so are
those mapped with the fast ABC script (``--abc auto`` for a module over 50,000 lines).

Usage: ``python bench/paper_synth.py [--no-synth]``; writes ``bench/results/paper_synth.json``
and ``.md``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import run_info, synth_records, write_results  # noqa: E402
from flows.generate import resolve_config  # noqa: E402
from hdl.registry import BLOCKS  # noqa: E402

METRICS = ("area", "flip_flops", "transistors", "cells", "blackbox_instances", "min_period", "fmax_estimate",
           "synth_time", "elapsed", "hierarchy_kept", "abc_fast")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-synth", action="store_true", help="only read the reports there are")
    args = parser.parse_args()
    rows = {}
    for block in sorted(BLOCKS):
        cfg = resolve_config(block, "paper")
        records = synth_records(cfg, "generic", synthesize_missing=not args.no_synth)
        if not records:
            print(f"{block}: no report (run: omnidrl synth {block} --preset paper)")
            continue
        rows[block] = {"config": cfg.to_dict(), "full_hash": cfg.full_hash(),
                       **{m: records[m]["value"] for m in METRICS if m in records}}
        print(block, {m: rows[block].get(m) for m in ("area", "min_period", "elapsed")}, flush=True)
    md = ["| block | area (GE) | flip-flops | critical path (ns) | black boxes | Yosys (s) | whole run (s) | hierarchy, ABC script |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    for block, r in rows.items():
        md.append(f"| {block} | {r['area']:,.0f} | {r['flip_flops']:,} | {r.get('min_period', float('nan')):.2f} | "
                  f"{r.get('blackbox_instances', 0)} | {r['synth_time']:,.0f} | {r.get('elapsed', float('nan')):,.0f} | "
                  f"{'kept' if r.get('hierarchy_kept') else 'flattened'}, {'fast' if r.get('abc_fast') else 'default'} |")
    write_results("paper_synth", {**run_info(), "benchmark": "paper_synth", "blocks": rows}, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
