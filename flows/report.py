"""Render synthesis reports (flat JSON records) as Markdown tables."""

from __future__ import annotations

import json
from pathlib import Path

from .generate import BUILD

__all__ = ["SUMMARY_COLUMNS", "ReportError", "render_block_markdown", "render_summary", "collect_reports"]


class ReportError(ValueError):
    """A file in the reports folder is not a readable synthesis report (one line naming it)."""


# (target, metric, column heading) in the order the summary shows them.
SUMMARY_COLUMNS = [
    ("generic", "area", "area (GE)"),
    ("generic", "transistors", "transistors"),
    ("generic", "cells", "cells"),
    ("generic", "flip_flops", "flops"),
    ("generic", "min_period", "worst path (ns)"),
    ("ice40", "luts", "iCE40 LUT4"),
    ("ice40", "flip_flops", "iCE40 FF"),
    ("ice40", "dsps", "iCE40 DSP"),
    ("ice40", "fmax", "iCE40 Fmax (MHz)"),
    ("xilinx", "luts", "xc7 LUT"),
    ("xilinx", "flip_flops", "xc7 FF"),
    ("xilinx", "dsps", "xc7 DSP"),
]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _hashes(report: dict) -> str:
    """The features hash, and the full hash too when the config has implementation knobs."""
    full = report.get("full_hash", report["config_hash"])
    return report["config_hash"] if full == report["config_hash"] else f"{report['config_hash']}, full {full}"


def render_block_markdown(report: dict) -> str:
    """One block's report: every record as a row."""
    lines = [f"# {report['block']} ({_hashes(report)})", "",
             f"Config: `{json.dumps(report['config'], sort_keys=True)}`", ""]
    boxes = {t: names for t, names in report.get("blackboxes", {}).items() if names}
    if boxes:
        lines += ["Black boxes: " + "; ".join(f"{t}: " + ", ".join(f"`{n}`" for n in names)
                                          for t, names in boxes.items()), ""]
    lines += ["| target | metric | value | unit | tool |", "|---|---|---:|---|---|"]
    for r in report["records"]:
        lines.append(f"| {r['target']} | {r['metric']} | {_fmt(r['value'])} | {r['unit']} | "
                     f"{r['tool']} {r['tool_version']} |")
    return "\n".join(lines) + "\n"


_REPORT_KEYS = ("block", "config", "config_hash", "records")
_RECORD_KEYS = ("target", "metric", "value", "unit", "tool", "tool_version")


def load_report_file(path: Path) -> dict:
    """One report, or :class:`ReportError` naming the file and what is wrong with it."""
    where = f"the synthesis report {path}"
    try:
        report = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; "
                          f"truncated?): delete it or run omnidrl synth again") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{where} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    missing = [k for k in _REPORT_KEYS if k not in report] if isinstance(report, dict) else ["everything"]
    if not missing and not (isinstance(report["records"], list) and isinstance(report["config"], dict)
                            and all(isinstance(r, dict) and all(k in r for k in _RECORD_KEYS)
                                    for r in report["records"])):
        missing = ["well-formed records"]
    if missing:
        raise ReportError(f"{where} is not a report written by omnidrl synth (it has no "
                          f"{', '.join(missing)}): delete it or run omnidrl synth again")
    return report


def collect_reports(directory: Path | None = None) -> list[dict]:
    """Every report in ``directory`` (default build/reports); :class:`ReportError` names a bad one."""
    directory = Path(directory or BUILD / "reports")
    return [load_report_file(p) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []


def render_summary(reports: list[dict]) -> str:
    """All reports in one table: a row per configuration, the key figures as columns."""
    used = [c for c in SUMMARY_COLUMNS
            if any(r["target"] == c[0] and r["metric"] == c[1] for rep in reports for r in rep["records"])]
    head = "| block | config | " + " | ".join(c[2] for c in used) + " |"
    lines = [head, "|---|---|" + "---:|" * len(used)]
    for rep in reports:
        values = {(r["target"], r["metric"]): r["value"] for r in rep["records"]}
        knobs = ", ".join(f"{k}={v}" for k, v in rep["config"].items() if k != "block")
        cells = [_fmt(values[(t, m)]) if (t, m) in values else "" for t, m, _ in used]
        lines.append(f"| {rep['block']} | {_hashes(rep)} ({knobs}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
