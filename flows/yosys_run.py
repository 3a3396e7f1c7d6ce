"""Run a Yosys script with pyosys (native Yosys 0.70) in its own process, logging to a file.

Usage: ``python -m flows.yosys_run SCRIPT.ys LOGFILE``. pyosys keeps global state and prints
to the process's stdout, so each synthesis runs in a fresh process whose stdout is the log.
"""

import os
import sys


def main() -> int:
    script, logfile = sys.argv[1], sys.argv[2]
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from pyosys import libyosys as ys

    design = ys.Design()
    ys.run_pass(f"script {script}", design)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
