"""Tier 2: the transposer's cocotb testbench on the generated Verilog, on Icarus and Verilator.

tiny (tile=4, lanes=2) runs on both simulators; small (tile=8, lanes=4: more lanes, wider ranks) on both as
well; tiny again without registered rank bases (``rank_registers=false``, the design before the
common clock target). A missing simulator fails with its install command (tb.runner.check_simulator).
"""

import pytest

from hdl.transposer import TransposerConfig
from tb.runner import SIMULATORS, run_cocotb

# "preset+key=value": the preset with an override (the same checks, the cycle model included).
CASES = [(sim, preset) for preset in ("tiny", "small", "tiny+rank_registers=false") for sim in SIMULATORS]


@pytest.mark.xdist_group("transposer")
@pytest.mark.parametrize("sim,preset", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_transposer_cocotb(sim, preset):
    name, *overrides = preset.split("+")
    cfg = TransposerConfig.preset(name, **TransposerConfig.parse_overrides(overrides))
    run_cocotb(cfg, sim, extra_env={"TP_REAL_TILES": "48"})
