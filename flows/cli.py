"""The ``omnidrl`` command line: verilog, sim, synth, lint, report, demo (and train/trace).

User mistakes (unknown block or preset, bad ``--set`` value, missing tool) print one line
naming the thing, the value and what is allowed, and exit with status 2. Failing tests or
failed synthesis exit with status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from hdl.config import ConfigError
from hdl.registry import BLOCKS, block_names

__all__ = ["main"]

EXIT_USER = 2
EXIT_FAIL = 1


class UserError(Exception):
    """Reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2 (argparse prints usage first by default)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USER)


def _config(args):
    from .generate import resolve_config

    return resolve_config(args.block, args.preset, args.set)


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- subcommands ---------------------------------------------------------------------------
def cmd_verilog(args) -> int:
    from .generate import generate_verilog

    cfg = _config(args)
    path = generate_verilog(cfg, Path(args.out) if args.out else None, force=True)
    print(_relative(path))
    return 0


def _sims(choice: str) -> list[str]:
    from tb.runner import SIMULATORS

    return list(SIMULATORS) if choice == "all" else [choice]


def cmd_sim(args) -> int:
    from tb.runner import SimulationFailed, run_cocotb

    cfg = _config(args)
    failed = []
    for sim in _sims(args.sim):
        t0 = time.monotonic()
        try:
            run_cocotb(cfg, sim, testcase=args.testcase, seed=args.seed)
            print(f"{sim:10s} PASS  {cfg.artefact_name}  {time.monotonic() - t0:.1f} s")
        except SimulationFailed as exc:
            failed.append(sim)
            print(f"{sim:10s} FAIL  {cfg.artefact_name}: {str(exc).splitlines()[0]}")
    return EXIT_FAIL if failed else 0


def cmd_synth(args) -> int:
    from .report import render_block_markdown
    from .synth import SynthError, load_report, synthesize

    cfg = _config(args)
    try:
        path = synthesize(cfg, args.target)
    except SynthError as exc:
        print(f"omnidrl synth: {exc}", file=sys.stderr)
        return EXIT_FAIL
    report = load_report(path)
    report["records"] = [r for r in report["records"] if r["target"] == args.target
                         and not r["metric"].startswith("cells.")]
    print(render_block_markdown(report))
    print(f"report: {_relative(path)} (and .md)")
    return 0


def cmd_lint(args) -> int:
    from .generate import generate_verilog
    from .lint import lint

    cfg = _config(args)
    problems = lint(generate_verilog(cfg), cfg.BLOCK)
    if problems:
        print("\n".join(problems))
        print(f"lint: {len(problems)} unwaived Verilator warnings in {cfg.artefact_name}")
        return EXIT_FAIL
    print(f"lint: {cfg.artefact_name} clean (verilator --lint-only -Wall, waivers in flows/lint_waivers.vlt)")
    return 0


def cmd_report(args) -> int:
    from .report import collect_reports, render_summary

    reports = collect_reports()
    if not reports:
        print("no reports in build/reports yet; run: omnidrl synth BLOCK")
        return 0
    text = render_summary(reports)
    out = Path("build/reports/summary.md")
    out.write_text(text)
    print(text)
    print(f"written: {_relative(out)}")
    return 0


def cmd_demo(args) -> int:
    """Verilog -> cocotb on both simulators -> synthesis -> summary, for one block."""
    from tb.runner import SIMULATORS, SimulationFailed, run_cocotb

    from .generate import generate_verilog
    from .synth import SynthError, load_report, synthesize

    cfg = _config(args)
    rows = []
    print(f"== demo: {cfg.BLOCK}, preset {args.preset}, config {cfg.config_hash()}", flush=True)
    t0 = time.monotonic()
    verilog = generate_verilog(cfg, force=True)
    rows.append(("verilog", "ok", f"{time.monotonic() - t0:.1f} s", _relative(verilog)))
    ok = True
    for sim in SIMULATORS:
        t0 = time.monotonic()
        try:
            results = run_cocotb(cfg, sim)
            rows.append((f"cocotb {sim}", "PASS", f"{time.monotonic() - t0:.1f} s", _relative(results.parent)))
        except SimulationFailed as exc:
            ok = False
            rows.append((f"cocotb {sim}", "FAIL", f"{time.monotonic() - t0:.1f} s", str(exc).splitlines()[0]))
    t0 = time.monotonic()
    try:
        path = synthesize(cfg, "generic")
        values = {r["metric"]: r["value"] for r in load_report(path)["records"] if r["target"] == "generic"}
        detail = (f"{values['area']:,.0f} GE, {values['transistors']:,} transistors, {values['cells']:,} cells"
                  + (f", worst path {values['min_period']} ns" if "min_period" in values else ""))
        rows.append(("synthesis", "ok", f"{time.monotonic() - t0:.1f} s", detail))
        rows.append(("report", "", "", _relative(path)))
    except SynthError as exc:
        ok = False
        rows.append(("synthesis", "FAIL", f"{time.monotonic() - t0:.1f} s", str(exc)))
    print()
    print("| step | result | time | artefact / figures |")
    print("|---|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if ok else EXIT_FAIL


# -- parser -------------------------------------------------------------------------------
def _add_block_args(p, with_block=True):
    if with_block:
        p.add_argument("block", metavar="BLOCK", help="one of: " + ", ".join(block_names()))
    p.add_argument("--preset", default="default", help="named configuration (tiny, default, paper, ...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config parameter (repeatable); a dotted KEY reaches into a "
                        "nested config, e.g. --set pe_array.rows=16")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="omnidrl", description="OmniDRL-gen: generate, simulate and synthesize the "
                     "blocks of a DRL training accelerator.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    blocks = "\n".join(f"  {name:12s} {spec.summary}" for name, spec in sorted(BLOCKS.items()))

    p = sub.add_parser("verilog", help="write <block>-<hash>.v and its config JSON; print the .v path",
                       epilog="blocks:\n" + blocks, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_block_args(p)
    p.add_argument("--out", help="output directory (default build/<block>/<hash>)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("sim", help="run the block's cocotb tests on Icarus and/or Verilator")
    _add_block_args(p)
    p.add_argument("--sim", default="all", choices=["icarus", "verilator", "all"])
    p.add_argument("--testcase", help="regular expression selecting cocotb tests")
    p.add_argument("--seed", type=int, help="cocotb random seed")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("synth", help="Yosys synthesis: cells, transistors, GE area, worst path; iCE40; Xilinx")
    _add_block_args(p)
    p.add_argument("--target", default="generic", choices=["generic", "ice40", "xilinx"])
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("lint", help="verilator --lint-only -Wall with the checked-in waiver list")
    _add_block_args(p)
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("report", help="render every report in build/reports into one Markdown table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="verilog -> cocotb (Icarus + Verilator) -> synthesis -> summary")
    p.add_argument("block", nargs="?", default="pe", metavar="BLOCK", help="block to demonstrate (default pe)")
    _add_block_args(p, with_block=False)
    p.set_defaults(func=cmd_demo)

    if importlib.util.find_spec("flows.train") is not None:
        from . import train

        p = sub.add_parser("train", help="train a TD3 agent in the golden model (dense, gmp or gst)")
        train.add_train_arguments(p)
        p.set_defaults(func=train.train_main)
        p = sub.add_parser("trace", help="record the tensors of one real TD3 update for the hardware tests")
        train.add_trace_arguments(p)
        p.set_defaults(func=train.trace_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ConfigError, UserError) as exc:
        print(f"omnidrl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except _tool_missing_types() as exc:
        print(f"omnidrl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _tool_missing_types():
    from tb.runner import ToolMissing

    return (ToolMissing,)


if __name__ == "__main__":
    sys.exit(main())
