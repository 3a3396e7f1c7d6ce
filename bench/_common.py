"""What every benchmark script needs: where results go, the run stamp, synthesis figures, writing.

A benchmark script starts with::

    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench._common import ROOT, bench_parser, stamp, write_results  # noqa: E402

parses its options with ``bench_parser(__doc__)`` and ends with
``write_results("name", {**stamp("name", packages), ...}, markdown)``. The pieces:

* :func:`bench_parser`: the command line's parser: the docstring's first paragraph as its
  description, and a bad option value reported on one line with exit status 2;
* :func:`stamp`: the ``benchmark`` name and the run stamp (:func:`run_info`) a result file starts with;
* :func:`run_info`: the ``machine`` / ``versions`` / ``date`` block every result file carries;
* :func:`synth_records` and :func:`area_ge`: a block's synthesis figures, read from its
  ``omnidrl synth`` report (``flows.synth.report_path``, named by the config's full hash) and
  synthesized first when the report lacks the target;
* :func:`write_results` and :func:`read_results`: ``bench/results/<name>.json`` and, if given,
  ``<name>.md``;
* :func:`td3_layer_sizes`: the layer widths of the TD3 networks the benchmarks are shaped after;
* :func:`sram_ge`: the area of black-boxed SRAM in the SRAM model of docs/ecim.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "build" / "bench"

# SRAM model (docs/ecim.md): OpenRAM's FreePDK45 arrays reach 0.826 Mb/mm^2 with their periphery;
# in the project's GE unit (NanGate45 NAND2_X1 = 0.798 um^2) that is 1.517 GE per bit.
SRAM_GE_PER_BIT = 1.0 / 0.826 / 0.798

__all__ = ["ROOT", "RESULTS", "WORK", "bench_parser", "utc_now", "run_info", "stamp", "synth_records", "area_ge",
           "write_results", "read_results", "td3_layer_sizes", "SRAM_GE_PER_BIT", "sram_ge"]


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints its usage first by default: one line instead
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def bench_parser(doc: str, **kwargs) -> argparse.ArgumentParser:
    """The argument parser of a benchmark script whose module docstring is ``doc``.

    Its description is the docstring's first paragraph (whitespace joined), and every error,
    argparse's own (``--beats x``) or the script's ``parser.error(...)``, is one line
    ``PROG: error: MESSAGE`` on stderr and exit status 2.

    Parameters
    ----------
    doc : str
        The script's ``__doc__``.
    **kwargs
        Passed to :class:`argparse.ArgumentParser` (``prog``, ``epilog``, ...).
    """
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return _OneLineParser(description=first, **kwargs)


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _tool_version(command: list[str]) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def run_info(packages=("numpy",), tools: dict[str, list[str]] | None = None) -> dict:
    """The block every result file carries: ``machine``, ``versions`` and ``date``.

    Parameters
    ----------
    packages : sequence of str
        Python distributions whose installed versions to record (Python itself always is).
    tools : dict, optional
        Name -> command printing the tool's version on its first line (``{"icarus": ["iverilog", "-V"]}``).
    """
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    for name, command in (tools or {}).items():
        versions[name] = _tool_version(command)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count()}
    return {"machine": machine, "versions": versions, "date": utc_now()}


def stamp(benchmark: str, packages=("numpy",), tools: dict[str, list[str]] | None = None) -> dict:
    """``{"benchmark": benchmark, **run_info(packages, tools)}``: the start of a result file."""
    return {"benchmark": benchmark, **run_info(packages, tools)}


def synth_records(cfg, target: str = "generic", *, synthesize_missing: bool = True) -> dict[str, dict]:
    """``metric -> record`` of ``cfg``'s synthesis report for ``target`` (``{}`` if there is none).

    The report keeps every target's records, so a target already synthesized for this exact
    configuration (implementation knobs included) is read, not run again, unless it is stale
    (:func:`flows.synth.report_is_stale`: its Verilog has been generated again with other
    bytes): then it is synthesized again, or, without ``synthesize_missing``, read with a
    warning on stderr. A failed synthesis raises :class:`flows.synth.SynthError`.
    """
    from flows.synth import load_report, report_is_stale, report_path, synthesize

    path = report_path(cfg)
    report = load_report(path) if path.exists() else {"records": []}
    have = any(r["target"] == target for r in report["records"])
    stale = have and report_is_stale(report, target)
    if stale:
        print(f"[bench] {cfg.BLOCK} ({cfg.full_hash()}), target {target}: the synthesis report is older than "
              f"its Verilog ({report['verilog']} was generated again with other bytes)"
              + ("; synthesizing again" if synthesize_missing else "; using it anyway (--no-synth)"),
              file=sys.stderr, flush=True)
    if not have or (stale and synthesize_missing):
        if not synthesize_missing:
            return {}
        path = synthesize(cfg, target)
    return {r["metric"]: r for r in load_report(path)["records"] if r["target"] == target}


def area_ge(cfg, *, synthesize_missing: bool = True) -> float | None:
    """The generic-target area of ``cfg`` in gate equivalents (None without a report)."""
    record = synth_records(cfg, "generic", synthesize_missing=synthesize_missing).get("area")
    return None if record is None else float(record["value"])


def write_results(name: str, doc: dict, markdown: str | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (and ``<name>.md`` when given); return the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    if markdown is not None:
        path.with_suffix(".md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    print(f"written: {path.relative_to(ROOT)}" + (" (and .md)" if markdown is not None else ""))
    return path


def read_results(name: str) -> dict | None:
    """The recorded ``bench/results/<name>.json``, or None when there is none."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def td3_layer_sizes(obs: int = 17, act: int = 6, hidden=(256, 256)) -> dict[str, list[int]]:
    """Layer widths, input first, of the TD3 actor and of one critic (which sees obs + act).

    The defaults are HalfCheetah's: ``{"actor": [17, 256, 256, 6], "critic": [23, 256, 256, 1]}``.
    """
    return {"actor": [obs, *hidden, act], "critic": [obs + act, *hidden, 1]}


def sram_ge(bits: int) -> int:
    """GE of ``bits`` stored bits (bit cells and periphery) in the SRAM model, rounded."""
    return round(SRAM_GE_PER_BIT * bits)
