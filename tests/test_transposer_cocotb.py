"""Tier 2: the transposer's cocotb testbench on the generated Verilog, on Icarus and Verilator.

tiny (tile=4, lanes=2) runs on both simulators; small (tile=8, lanes=4: more lanes, wider ranks) on both as
well. A missing simulator fails with its install command (tb.runner.check_simulator).
"""

import pytest

from hdl.transposer import TransposerConfig
from tb.runner import SIMULATORS, run_cocotb

CASES = [(sim, preset) for preset in ("tiny", "small") for sim in SIMULATORS]


@pytest.mark.xdist_group("transposer")
@pytest.mark.parametrize("sim,preset", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_transposer_cocotb(sim, preset):
    run_cocotb(TransposerConfig.preset(preset), sim, extra_env={"TP_REAL_TILES": "48"})
