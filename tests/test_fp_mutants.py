"""hdl/lib/fp.py: the checks that mutation testing (bench/mutation.py) showed were missing.

``round_bf16`` was only reached through the PE array's rounded jobs; here it runs on its own, on the
fp32 edge grid and random patterns, against ``golden.bf16.f32_round_to_bf16_bits``.
"""

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal

from golden.bf16 import f32_round_to_bf16_bits, fp32_edge_values
from hdl.lib.fp import round_bf16
from tb.amsim import assert_same, evaluate


class RoundBf16(Elaboratable):
    """round_bf16 between two ports, to simulate it alone."""

    def __init__(self):
        self.x = Signal(32)
        self.y = Signal(32)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(round_bf16(m, self.x, "rnd"))
        return m


def test_round_bf16_matches_golden_on_edges_and_random():
    rng = np.random.default_rng(11)
    edges = fp32_edge_values()
    # every exponent with the rounding-relevant low bits: ties, just above, just below, odd and even
    low = np.array([0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x18000, 0x17FFF], np.uint32)
    grid = ((np.arange(256, dtype=np.uint32)[:, None] << 23) | low[None, :]).reshape(-1)
    x = np.concatenate([edges, grid, grid | 0x80000000, rng.integers(0, 1 << 32, 3000, dtype=np.uint64)])
    x = x.astype(np.uint32)
    dut = RoundBf16()
    got = evaluate(dut, [(dut.x, x)], dut.y)
    want = f32_round_to_bf16_bits(x).astype(np.uint64) << 16
    assert_same("round_bf16", (x,), got, want)
