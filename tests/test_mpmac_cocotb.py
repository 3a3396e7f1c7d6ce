"""Tier 2: the mixed-precision MAC's cocotb testbench on the generated Verilog, Icarus and Verilator.

One compiled design per simulator, the tiny runtime-precision instance (8 x 8 maxima), serves
every precision pair: random and extreme dot products of all 64 pairs with gaps and stalls, the
malformed-beat stream, the full-rate cycle count (tb/test_mpmac.py).
"""

import pytest

from hdl.mpmac import MpMacConfig
from tb.runner import SIMULATORS, run_cocotb


@pytest.mark.xdist_group("mpmac")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_mpmac_cocotb(sim):
    run_cocotb(MpMacConfig.preset("tiny"), sim)
