"""The ``omnidrl`` command line: verilog, sim, synth, lint, report, demo, run, energy, sweep, quantize,
and train/trace.

``train`` and ``trace`` are argument parsing only: the runs themselves are the golden model's
experiment driver, :mod:`golden.run_td3`.

User mistakes (unknown block or preset, bad ``--set`` value, an output path that cannot be
written, a damaged input file, missing tool) print one line naming the thing, the value and what
is allowed, and exit with status 2, having written nothing: every argument and every output
path is checked before any work starts. Argument-parser errors name the subcommand
(``omnidrl verilog: error: ...``). Failing tests or failed synthesis exit with status 1; a synthesis stopped by its
``--timeout`` exits with 124 (as coreutils' ``timeout`` does).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path

from hdl.config import ConfigError
from hdl.registry import BLOCKS, block_names

__all__ = ["main"]

EXIT_USER = 2
EXIT_FAIL = 1
EXIT_TIMEOUT = 124


class UserError(Exception):
    """Reported as one line with exit status 2."""


class _UsageError(Exception):
    """An argument-parser error: ``PROG: error: MESSAGE`` on one line, status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line (argparse prints the usage first by default)
        raise _UsageError(f"{self.prog}: error: {message}")


# -- output paths: checked before any work, so a bad one never costs a run -----------------
def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_folder(bad: str, path: Path) -> None:
    """Refuse (one line starting with ``bad``) a folder that cannot be created and written.

    Folders it has to create for the test it removes again, so a refused path leaves nothing.
    """
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{bad}: {path} is an existing file, not a folder")
        base = _existing_ancestor(path)
        if not base.is_dir():
            raise UserError(f"{bad}: {base} is a file, not a folder")
        if not os.access(base, os.W_OK | os.X_OK):
            raise UserError(f"{bad}: the folder {base} is not writable")
        made = []
        try:
            for folder in reversed([path, *path.parents]):
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
        finally:
            for folder in reversed(made):
                folder.rmdir()
    except OSError as exc:
        raise UserError(f"{bad}: cannot create {path} ({exc.strerror or exc})") from None


def check_output_dir(option: str, text: str | None) -> Path | None:
    """The folder ``text`` names, once it is known that it can be created and written.

    Refuses (one line) an empty path, an existing file, a path under a file, and a folder that
    cannot be created (``/proc/x``, a read-only place), leaving nothing behind.
    """
    if text is None:
        return None
    bad = f"{option} {text!r} is not allowed"
    if not text.strip():
        raise UserError(f"{bad}: give a folder path")
    _check_folder(bad, Path(text))
    return Path(text)


def check_output_file(option: str, text: str, suffix: str) -> Path:
    """The file ``text`` names, once its folder is known to be writable (as check_output_dir)."""
    bad = f"{option} {text!r} is not allowed"
    if not text.strip():
        raise UserError(f"{bad}: give a file path ending in {suffix}")
    path = Path(text)
    if path.suffix != suffix:
        raise UserError(f"{bad}: the file name must end in {suffix}")
    try:
        if path.is_dir():
            raise UserError(f"{bad}: it is an existing folder; give a file path ending in {suffix}")
    except OSError as exc:
        raise UserError(f"{bad}: {exc.strerror or exc}") from None
    _check_folder(bad, path.parent)
    return path


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
    out = check_output_dir("--out", args.out)
    path = generate_verilog(cfg, out, force=True)
    print(_relative(path))
    return 0


def _sims(choice: str) -> list[str]:
    from tb.runner import SIMULATORS

    return list(SIMULATORS) if choice == "all" else [choice]


def cmd_sim(args) -> int:
    from tb.runner import SimulationFailed, run_cocotb

    cfg = _config(args)
    if args.testcase is not None:
        try:
            re.compile(args.testcase)
        except re.error as exc:
            raise UserError(f"--testcase {args.testcase!r} is not allowed: it must be a regular expression "
                            f"over cocotb test names ({exc})") from None
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


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_synth(args) -> int:
    from .report import render_block_markdown
    from .synth import SynthError, SynthTimeout, load_report, synthesize

    cfg = _config(args)
    signal.signal(signal.SIGTERM, _interrupt)  # stop Yosys (its own session) on the way out
    try:
        path = synthesize(cfg, args.target, timeout=args.timeout, hierarchy=args.hierarchy, abc=args.abc)
    except SynthTimeout as exc:
        print(f"omnidrl synth: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
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
    print(f"lint: {cfg.artefact_name} clean (verilator --lint-only -Wall, waivers in flows/lint_waivers.vlt "
          f"and, for unused signals, {cfg.artefact_name}.unused.vlt)")
    return 0


def cmd_report(args) -> int:
    from . import report
    from .report import ReportError, collect_reports, render_summary

    folder = report.BUILD / "reports"
    try:
        reports = collect_reports(folder)
    except ReportError as exc:
        raise UserError(str(exc)) from None
    if not reports:
        print(f"no reports in {_relative(folder)} yet; run: omnidrl synth BLOCK")
        return 0
    text = render_summary(reports)
    out = folder / "summary.md"
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


# -- the whole processor on one TD3 update -------------------------------------------------
def _run_summary(name: str, preset: str, sim: str, r: dict) -> str:
    c = r["counters"]
    k = r["k"]
    rows = [("workload", name), ("preset / simulator", f"{preset} / {sim}"),
            ("chip segments / commands", f"{r['segments']} / {r['commands']}"),
            ("bit-exact: segment images", str(r["images_equal"])),
            ("bit-exact: agent after the update", str(r["state_equal"])),
            ("cycles" + (" (estimate)" if sim == "machine" else ""), f"{r['cycles']:,}"),
            ("array utilization (compute steps / cycles)", f"{r['array_utilization']:.3f}"),
            ("MACs issued / dense-equivalent", f"{c['MACS']:,} / {c['MACS_DENSE']:,}"),
            ("memory read: raw / EMD (bits)", f"{c['MEM_READ_RAW'] * 16 * k:,} / {c['MEM_READ_EMD'] * 16 * k:,}"),
            ("memory write: raw / EMD (bits)", f"{c['MEM_WRITE_RAW'] * 16 * k:,} / {c['MEM_WRITE_EMD'] * 16 * k:,}"),
            ("buffer reads A / B", f"{c['A_READS']:,} / {c['B_READS']:,}"),
            ("buffer writes A / B / bitmap", f"{c['A_WRITES']:,} / {c['B_WRITES']:,} / {c['BITMAP_WRITES']:,}"),
            ("EMD groups decoded / encoded", f"{c['EMD_GROUPS_DECODED']:,} / {c['EMD_GROUPS_ENCODED']:,}"),
            ("transposer tiles", f"{c['TRANSPOSER_TILES']:,}"),
            ("host steps: FLOPs", f"{r['host_flops']:,}" if "host_flops" in r else "(see --sim machine)"),
            ("wall time", f"{r['wall_s']:.1f} s" + (f" ({r['sim_cycles_per_s']:,.0f} cycles/s)"
                                                     if r.get("sim_cycles_per_s") else ""))]
    width = max(len(a) for a, _ in rows)
    return "\n".join(["| what | value |", "|---|---|"] + [f"| {a:{width}s} | {b} |" for a, b in rows])


def cmd_run(args) -> int:
    """Compile one TD3 update of a named workload and run it on the top (or its machine model)."""
    import json
    import tempfile

    from golden.workloads import WORKLOADS

    if args.workload not in WORKLOADS:
        raise UserError(f"--workload {args.workload!r} is not allowed: choose one of {', '.join(WORKLOADS)}")
    from hdl.omnidrl import OmniDRLConfig

    cfg = OmniDRLConfig.preset(args.preset, **OmniDRLConfig.parse_overrides(args.set))
    out = check_output_file("--json", args.json, ".json") if args.json is not None else None
    print(f"[run] {args.workload} on omnidrl {args.preset} ({cfg.config_hash()}), {args.sim}", flush=True)
    if args.sim == "machine":
        from golden.run_top import run_machine

        result = run_machine(cfg, args.workload, progress=lambda m: print(f"[run] {m}", flush=True))
    else:
        from tb.runner import SimulationFailed, run_cocotb

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "result.json"
            env = {"TOP_WORKLOAD": args.workload, "TOP_RESULT": str(path), "TOP_GAP": "0", "TOP_STALL": "0"}
            print(f"[run] building and simulating on {args.sim} (a cold Verilator build of the default top "
                  "takes minutes)", flush=True)
            try:
                run_cocotb(cfg, args.sim, testcase="test_td3_workload", extra_env=env, seed=args.seed)
            except SimulationFailed as exc:
                if not path.exists():
                    print(f"omnidrl run: {str(exc).splitlines()[0]}", file=sys.stderr)
                    return EXIT_FAIL
            if not path.exists():
                print("omnidrl run: the testbench wrote no result", file=sys.stderr)
                return EXIT_FAIL
            result = json.loads(path.read_text())
    result.setdefault("k", cfg.pe_array.block_size)
    print(_run_summary(args.workload, args.preset, args.sim, result))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"written: {_relative(out)}")
    ok = result["images_equal"] and result["state_equal"] and not result.get("errors")
    if not ok:
        print(f"omnidrl run: MISMATCH: {'; '.join(result.get('errors', [])[:3])}", file=sys.stderr)
    return 0 if ok else EXIT_FAIL


# -- golden TD3 runs (train, trace) -------------------------------------------------------
def _int_list(text: str) -> tuple:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")


def _name_list(text: str) -> tuple:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _common_arguments(p: argparse.ArgumentParser, steps_default: int, start_steps_default: int | None) -> None:
    p.add_argument("--env", default="HalfCheetah-v5", help="gymnasium id of a Box-action task (default HalfCheetah-v5)")
    p.add_argument("--steps", type=int, default=steps_default,
                   help=f"environment steps in total (default {steps_default})")
    p.add_argument("--seed", type=int, default=0, help="seed of networks, exploration, replay and env")
    p.add_argument("--numerics", default="bf16", help="fp32 | bf16 | bf16-exact (default bf16)")
    p.add_argument("--preset", default="default", help="default | paper2018 (400-300, lr 1e-3, batch 100, block 4)")
    p.add_argument("--hidden", type=_int_list, default=None, help="hidden widths, e.g. 256,256")
    p.add_argument("--batch", type=int, default=None, help="minibatch size")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument("--start-steps", type=int, default=start_steps_default,
                   help=f"random-action warm-up steps (default {start_steps_default or 25000})")
    p.add_argument("--block", type=int, default=None, help="block size k of circulant / group-sparse layers (default 8)")
    p.add_argument("--compress", type=_name_list, default=None, help="layers to compress, e.g. l2 or l1,l2")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any TD3Config field (repeatable, after the options above), e.g. --set gst_ds=0.1")


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default="dense", help="dense | gmp | gst")
    _common_arguments(p, 1_000_000, None)
    p.add_argument("--out", required=True, help="run folder: metrics, checkpoint, summary, plot")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz exactly")
    p.add_argument("--eval-every", type=int, default=None, help="env steps between evaluations (default 5000)")
    p.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default 10)")
    p.add_argument("--ckpt-every", type=int, default=None, help="env steps between checkpoints (default 10000)")
    p.add_argument("--trace-at", type=_int_list, default=(), help="update numbers to record as OUT/trace_u<N>.npz")
    p.add_argument("--stop-at", type=int, default=None, help=argparse.SUPPRESS)  # tests: simulate an interruption
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _add_trace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", action="append", default=[], metavar="STAGE=PATH",
                   help="record from a training checkpoint instead of training: STAGE names the update after "
                   "it (repeat, in training order; the run's options then come from the checkpoints)")
    p.add_argument("--methods", type=_name_list, default=("dense", "gst"), help="methods to trace (default dense,gst)")
    # the committed trace's run (docs/traces.md): short enough to record, with 7,000 updates
    _common_arguments(p, 12_000, 5_000)
    p.add_argument("--trace-numerics", default="bf16-exact",
                   help="numerics of the recorded update (default bf16-exact: dW/dv are the hardware's bits)")
    p.add_argument("--out", default="build/traces/td3_trace.npz", help="output .npz")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _td3_config(args, method: str, **extra):
    from golden.td3 import TD3Config

    over = {"env": args.env, "method": method, "steps": args.steps, "seed": args.seed,
            "numerics": args.numerics, "hidden": args.hidden, "batch": args.batch, "lr": args.lr,
            "start_steps": args.start_steps, "block": args.block, "compress": args.compress}
    for name in ("eval_every", "eval_episodes", "ckpt_every"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    over.update(extra)
    over.update(TD3Config.parse_overrides(args.set))
    return TD3Config.preset(args.preset, **over)


def cmd_train(args) -> int:
    """Run (or resume) one golden TD3 training run (golden/run_td3.py)."""
    from golden.run_td3 import check_trace_at, run_training

    cfg = _td3_config(args, args.method)
    check_trace_at(cfg, tuple(args.trace_at or ()))
    out = check_output_dir("--out", args.out)
    s = run_training(cfg, out, resume=args.resume, quiet=args.quiet, stop_at=args.stop_at,
                     trace_at=tuple(args.trace_at or ()))
    fr = s["final_return"]
    print(f"{s['env']} {s['method']} seed {s['seed']} {s['numerics']}: steps {s['steps']}  "
          f"final return {fr if fr is None else round(fr, 1)}  average CR {s['avg_cr']:.4f}  "
          f"-> {Path(args.out) / 'summary.json'}")
    return 0


#: ``omnidrl trace`` options that still apply with ``--snapshot`` (the others describe a training run)
_SNAPSHOT_OPTIONS = ("snapshot", "out", "trace_numerics", "quiet")


def _given_trace_options(args) -> list[argparse.Action]:
    """The ``omnidrl trace`` options the command line gave, even at their default value: its
    tokens are parsed again with every default suppressed, so only what was typed lands."""
    given = argparse.ArgumentParser(add_help=False)
    _add_trace_arguments(given)
    for action in given._actions:
        action.default = argparse.SUPPRESS
    tokens = list(getattr(args, "typed", None) or [])
    tokens = tokens[tokens.index("trace") + 1:] if "trace" in tokens else tokens
    seen, _ = given.parse_known_args(tokens)
    return [a for a in given._actions if hasattr(seen, a.dest)]


def cmd_trace(args) -> int:
    """Record the tensors of one real TD3 update per method, or per ``--snapshot`` checkpoint
    (golden/run_td3.py)."""
    from golden.run_td3 import record_stage_trace, record_trace
    from golden.td3 import METHODS

    if args.snapshot:
        for action in _given_trace_options(args):
            if action.dest not in _SNAPSHOT_OPTIONS:
                raise UserError(f"{action.option_strings[0]} is not allowed with --snapshot: the run's "
                                f"configuration comes from the checkpoint (with --snapshot only --out, "
                                f"--trace-numerics and --quiet apply)")
        out = check_output_file("--out", args.out, ".npz")
        path = record_stage_trace(args.snapshot, out, args.trace_numerics, quiet=args.quiet)
        print(f"{path}  ({Path(path).stat().st_size / 1e6:.2f} MB)")
        return 0
    if not args.methods or not set(args.methods) <= set(METHODS):
        raise UserError(f"--methods {','.join(args.methods)!r} is not allowed: give one or more of "
                        + ", ".join(METHODS) + ", separated by commas")
    configs = {method: _td3_config(args, method, eval_every=max(args.steps + 1, 1),
                                   ckpt_every=max(args.steps + 1, 1))
               for method in args.methods}
    out = check_output_file("--out", args.out, ".npz")
    path = record_trace(configs, args.trace_numerics, out, quiet=args.quiet)
    print(f"{path}  ({Path(path).stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_params(args) -> int:
    """Print a block's parameter table, or rewrite the tables embedded in docs/."""
    from .params import params_markdown, update_docs

    if args.block is not None and args.update_docs:
        raise UserError("give a BLOCK or --update-docs, not both")
    if args.update_docs:
        changed = update_docs()
        print("\n".join(f"updated: {_relative(p)}" for p in changed) or "docs: every parameter table is current")
        return 0
    if not args.block:
        raise UserError("give a BLOCK or --update-docs")
    print(params_markdown(args.block), end="")
    return 0


def cmd_quantize(args) -> int:
    """Mixed-precision search of a network under a hardware budget (golden/quant_search.py)."""
    from golden.quant_cost import MAC_TABLE, load_mac_table
    from golden.quant_search import run_search

    if not 0.0 < args.budget <= 1.0:
        raise UserError(f"--budget {args.budget!r} is not allowed: give a fraction of the all-8-bit cost in (0, 1]")
    if args.episodes < 1:
        raise UserError(f"--episodes {args.episodes} is not allowed: give 1 or more")
    if args.cost == "mac":
        try:
            load_mac_table(args.mac_table or MAC_TABLE)
        except (OSError, ValueError) as exc:
            raise UserError(f"--mac-table: {exc}") from None
    out = check_output_dir("--out", args.out or f"build/quantize/{args.net}-{args.cost}-{args.agent}"
                           f"-b{args.budget:g}-s{args.seed}")
    res = run_search(args.net, args.cost, args.budget, args.agent, args.episodes, args.seed, out,
                     resume=args.resume, quiet=args.quiet, mac_table=args.mac_table)
    best = res["best"]
    if best is None:
        print(f"no plan within budget {args.budget:g} was found in {res['episodes_run']} episodes  -> {out}")
        return 0
    print(f"best plan: accuracy {best['accuracy']:.4f} of the float network, cost {best['cost']:.4f} of all-8-bit "
          f"({res['cost_unit']}), found at episode {best['episode']} of {res['episodes_run']}")
    print(f"{'layer':8s} {'w_bits':>6s} {'a_bits':>6s}  {'quantizer':10s} {'cost share':>10s}")
    for row in res["table"]:
        print(f"{row['layer']:8s} {row['w_bits']:6d} {row['a_bits']:6d}  {row['kind']:10s} {row['cost_share']:10.3f}")
    print(f"-> {_relative(out / 'quantized.npz')}, {_relative(out / 'result.json')}")
    return 0


# -- parser -------------------------------------------------------------------------------
def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


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
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="stop the tools after this many seconds (one line, exit status 124; no report)")
    p.add_argument("--hierarchy", default="auto", choices=["auto", "flatten", "keep"],
                   help="generic target: flatten the design, or keep its hierarchy and synthesize each distinct "
                        "module once (auto: keep for Verilog over 150,000 lines; see docs/flows.md)")
    p.add_argument("--abc", default="auto", choices=["auto", "default", "fast"],
                   help="generic target: ABC's default mapping scripts or its fast ones (auto: fast when one "
                        "module is over 50,000 lines; see docs/flows.md)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("lint", help="verilator --lint-only -Wall with the checked-in waiver list")
    _add_block_args(p)
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("params", help="a block's parameters (default, allowed, presets, meaning) as Markdown")
    p.add_argument("block", nargs="?", metavar="BLOCK", help="one of: " + ", ".join(block_names()))
    p.add_argument("--update-docs", action="store_true", help="rewrite the parameter tables embedded in docs/")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("report", help="render every report in build/reports into one Markdown table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="verilog -> cocotb (Icarus + Verilator) -> synthesis -> summary")
    p.add_argument("block", nargs="?", default="pe", metavar="BLOCK", help="block to demonstrate (default pe)")
    _add_block_args(p, with_block=False)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="one complete TD3 update of a workload on the omnidrl top: cycles, "
                       "utilization, traffic, bit-exactness")
    p.add_argument("--workload", default="small-dense", help="golden.workloads name (default small-dense)")
    p.add_argument("--preset", default="tiny", help="omnidrl preset (tiny, default, paper; default tiny)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="omnidrl config override")
    p.add_argument("--sim", default="verilator", choices=["machine", "icarus", "verilator"],
                   help="machine = the golden machine model only (default verilator)")
    p.add_argument("--seed", type=int, help="cocotb random seed")
    p.add_argument("--json", help="also write the figures to this .json file")
    p.set_defaults(func=cmd_run)

    from .energy import add_parser as add_energy_parser

    add_energy_parser(sub)

    from .sweep import add_arguments as add_sweep_arguments, command as cmd_sweep

    p = sub.add_parser("sweep", help="design-space sweep on Ray: area, clock, cycles and energy per point, "
                       "cached, with Pareto plots (docs/sweep.md)")
    add_sweep_arguments(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("train", help="train a TD3 agent in the golden model (dense, gmp or gst)")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("trace", help="record the tensors of one real TD3 update for the hardware tests")
    _add_trace_arguments(p)
    p.set_defaults(func=cmd_trace)
    p = sub.add_parser("quantize", help="search per-layer bit widths of a network under a hardware budget "
                       "(PPO or HAQ-style DDPG; docs/quant.md)")
    p.add_argument("--net", required=True, choices=["td3-actor", "cnn"])
    p.add_argument("--cost", default="reram", choices=["reram", "mac"], help="hardware cost model (default reram)")
    p.add_argument("--budget", type=float, default=0.5, help="cost budget as a fraction of all layers at 8 bits")
    p.add_argument("--agent", default="ppo", choices=["ppo", "ddpg"])
    p.add_argument("--episodes", type=int, default=200, help="search episodes (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default build/quantize/NET-COST-AGENT-bBUDGET-sSEED)")
    p.add_argument("--mac-table", help="measured MAC table for --cost mac (default golden/data/mpmac_area.json)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz exactly")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_quantize)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "trace":  # what was typed: --snapshot refuses options even at their default
            args.typed = list(sys.argv[1:] if argv is None else argv)
        if extra:  # name the subcommand, as its own parser's errors do
            raise _UsageError(f"omnidrl {args.command}: error: unrecognized arguments: {' '.join(extra)}")
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USER
    except SystemExit as exc:  # --help
        return exc.code
    try:
        return args.func(args) or 0
    except (ConfigError, UserError) as exc:
        print(f"omnidrl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except _tool_missing_types() as exc:
        print(f"omnidrl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt as exc:
        print(f"omnidrl {args.command}: {exc or 'interrupted'}", file=sys.stderr)
        return 130


def _tool_missing_types():
    from tb.runner import ToolMissing

    return (ToolMissing,)


if __name__ == "__main__":
    sys.exit(main())
