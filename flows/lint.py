"""``verilator --lint-only -Wall`` on generated Verilog with the checked-in waiver list."""

import re
import subprocess
from pathlib import Path

__all__ = ["WAIVERS", "lint"]

WAIVERS = Path(__file__).with_name("lint_waivers.vlt")


def lint(verilog: Path, top: str, *, waivers: Path = WAIVERS) -> list[str]:
    """Return the unwaived warnings and errors (an empty list means clean).

    ``waivers`` is the Verilator control file read first (the checked-in list by default).
    """
    from tb.runner import check_simulator

    exe = check_simulator("verilator")
    proc = subprocess.run([exe, "--lint-only", "-Wall", "--top-module", top, str(waivers), str(verilog)],
                          capture_output=True, text=True)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if re.match(r"%(Warning|Error)", ln)]
    if proc.returncode != 0 and not problems:
        problems = [f"verilator exited with {proc.returncode}: {(proc.stdout + proc.stderr).strip()[:400]}"]
    return problems


