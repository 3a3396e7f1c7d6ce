"""What the lint waivers hide: warnings per rule with no waivers, the old global list and the
scoped one, for every block and preset, plus the planted mistakes of tests/test_lint_waivers.py.

Before issue 17 ``flows/lint_waivers.vlt`` switched five rules off for every file; now every
waiver names Amaranth's header and a message shape, and unused signals are waived per file
everywhere except the top module's input declarations (docs/flows.md, "Lint"). The generated
Verilog must lint clean under both lists (the same warnings waived); the planted mistakes must
be hidden by the old list and reported by the new one.

Usage: ``python bench/lint_waivers.py [--before-commit c068393]`` (about 25 minutes on the
2-core machine: three Verilator runs per configuration); writes ``bench/results/lint_waivers.json``
and ``.md``.
"""

import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, bench_parser, run_info, write_results  # noqa: E402
from flows.generate import generate_component_verilog, generate_verilog, resolve_config  # noqa: E402
from flows.lint import WAIVERS, waiver_files  # noqa: E402
from hdl.registry import BLOCKS, get_block  # noqa: E402
from tb.runner import check_simulator  # noqa: E402

_WARNING = re.compile(r"%Warning-(\w+):")


def rule_counts(verilog: Path, top: str, controls: list[Path]) -> collections.Counter:
    """Verilator's ``-Wall`` warnings on ``verilog`` after ``controls``, counted per rule."""
    proc = subprocess.run([check_simulator("verilator"), "--lint-only", "-Wall", "--top-module", top,
                           *map(str, controls), str(verilog.resolve())], capture_output=True, text=True)
    return collections.Counter(m[1] for m in map(_WARNING.match, (proc.stdout + proc.stderr).splitlines()) if m)


def planted(directory: Path) -> list[tuple[str, Path, str]]:
    """The planted mistakes of tests/test_lint_waivers.py: (name, file, top)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_lint_waivers import HAND_WRITTEN_MODEL, _Planted  # noqa: PLC0415

    model = directory / "model.v"
    model.write_text(HAND_WRITTEN_MODEL)
    return [("unused top-level input (Amaranth)", generate_component_verilog(_Planted(), "planted", directory),
             "planted"),
            ("width bugs (hand-written model)", model, "model")]


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--before-commit", default="c068393", help="commit holding the old waiver list")
    args = parser.parse_args()
    t0 = time.time()
    scratch = Path(tempfile.mkdtemp(prefix="lint_waivers_"))
    old = scratch / "old_waivers.vlt"
    old.write_text(subprocess.run(["git", "show", f"{args.before_commit}:flows/lint_waivers.vlt"], cwd=ROOT,
                                  check=True, capture_output=True, text=True).stdout)
    designs = []
    for block in sorted(BLOCKS):
        for preset in get_block(block).config_type().PRESETS:
            designs.append((f"{block}/{preset}", generate_verilog(resolve_config(block, preset)), block))
    designs += planted(scratch)

    rows, totals = {}, {k: collections.Counter() for k in ("raw", "old", "new")}
    for name, verilog, top in designs:
        counts = {"raw": rule_counts(verilog, top, []), "old": rule_counts(verilog, top, [old]),
                  "new": rule_counts(verilog, top, waiver_files(verilog, top))}
        rows[name] = {k: dict(sorted(c.items())) for k, c in counts.items()}
        if "/" in name:
            for k, c in counts.items():
                totals[k].update(c)
        print(f"{name}: raw {sum(counts['raw'].values())}, reported with the old list "
              f"{sum(counts['old'].values())}, with the new {sum(counts['new'].values())}", flush=True)

    rules = sorted(totals["raw"])
    md = ["| rule | warnings (no waivers) | waived, old list | waived, new list |", "|---|---:|---:|---:|"]
    for rule in rules:
        md.append(f"| {rule} | {totals['raw'][rule]:,} | {totals['raw'][rule] - totals['old'][rule]:,} | "
                  f"{totals['raw'][rule] - totals['new'][rule]:,} |")
    raw, old_n, new_n = (sum(totals[k].values()) for k in ("raw", "old", "new"))
    md.append(f"| all | {raw:,} | {raw - old_n:,} | {raw - new_n:,} |")
    md += ["", "| planted mistake | warnings | reported, old list | reported, new list |", "|---|---:|---:|---:|"]
    for name, _, _ in designs:
        if "/" not in name:
            r = rows[name]
            md.append(f"| {name} | {sum(r['raw'].values())} | {sum(r['old'].values())} | {sum(r['new'].values())} |")
    doc = {**run_info(), "seconds": round(time.time() - t0, 1), "before_commit": args.before_commit,
           "waivers": str(WAIVERS.relative_to(ROOT)), "totals": {k: dict(sorted(c.items())) for k, c in totals.items()},
           "per_design": rows}
    write_results("lint_waivers", doc, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
