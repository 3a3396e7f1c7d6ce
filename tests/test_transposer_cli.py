"""The transposer through the CLI: bad parameters give one line, exit status 2, no traceback."""

import subprocess
import sys

import pytest

from flows.generate import ROOT


@pytest.mark.parametrize("args,needle", [
    (["--set", "lanes=3"], "transposer: lanes=3 is not allowed; lanes must be a power of two from 1 to 64"),
    (["--preset", "tiny", "--set", "lanes=32"], "lanes=32 is not allowed; lanes must be a power of two from 1 to 16"),
    (["--set", "tile=40"], "transposer: tile=40 is not allowed; tile must be an integer from 2 to 32"),
    (["--set", "T=16"], "transposer: unknown parameter 'T'"),
    (["--set", "buffers=9"], "buffers=9 is not allowed; buffers must be an integer from 2 to 4"),
    (["--set", "rank_registers=maybe"], "transposer: rank_registers='maybe' is not a valid bool"),
])
def test_bad_parameters_one_line_exit_2(args, needle):
    r = subprocess.run([sys.executable, "-m", "flows.cli", "verilog", "transposer", *args],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
