"""hdl/lib/fp.py: the checks that mutation testing (bench/mutation.py) showed were missing.

``round_bf16`` was only reached through the PE array's rounded jobs; here it runs on its own, on the
fp32 edge grid and random patterns, against ``golden.bf16.f32_round_to_bf16_bits``. The adder gets the
NaN whose only set fraction bit is the last and a carrying sum whose sticky bit decides the rounding.
"""

import numpy as np
from amaranth.hdl import Elaboratable, Module, Shape, Signal, unsigned
from amaranth.lib.wiring import In, Out

from golden.bf16 import f32_round_to_bf16_bits, fp32_add, fp32_edge_values
from hdl.lib.fp import FP32_INF, FP32_NEG_ZERO, FP32_QNAN, Bf16Multiplier, Fp32Adder, round_bf16
from tb.amsim import assert_same, evaluate


class RoundBf16(Elaboratable):
    """round_bf16 between two ports, to simulate it alone."""

    def __init__(self):
        self.x = Signal(32)
        self.y = Signal(32)

    def elaborate(self, platform):
        m = Module()
        rounded = round_bf16(m, self.x, "rnd")
        self.width = len(rounded)  # checked by test_unit_ports_are_the_documented_widths
        m.d.comb += self.y.eq(rounded)
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


def add_in_hardware(a, b) -> np.ndarray:
    dut = Fp32Adder()
    return evaluate(dut, [(dut.a, np.asarray(a, np.uint32)), (dut.b, np.asarray(b, np.uint32))], dut.sum)


def test_nan_with_only_the_last_fraction_bit():
    """0x7F800001 is a NaN, not Inf: the edge grids' NaNs all have high fraction bits (kills the
    `a[1:23]` / `b[1:23]` / `x[1:23]` NaN and Inf test mutants, fp.py lines 92-95 and 167)."""
    nans = [0x7F800001, 0xFF800001]
    others = [0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x00000000, 0x7F800001]
    a = np.array([n for n in nans for _ in others] + [o for _ in nans for o in others], np.uint32)
    b = np.array([o for _ in nans for o in others] + [n for n in nans for _ in others], np.uint32)
    got = add_in_hardware(a, b)
    assert_same("fp32 add of a low NaN", (a, b), got, fp32_add(a, b))
    assert set(got.tolist()) == {0x7FC00000}
    dut = RoundBf16()
    x = np.array(nans, np.uint32)
    assert evaluate(dut, [(dut.x, x)], dut.y).tolist() == [0x7FC00000, 0x7FC00000]


def test_sum_that_carries_keeps_the_sticky_bit():
    """1.fffffd * 2^0 + (1 + 2^-23) * 2^-4: the sum carries into 2^1, and the bit shifted out by that
    carry is the sticky bit that makes the halfway-looking remainder round up: 0x4003FFFF, not the
    even 0x4003FFFE (kills `total[1] | total[0]` -> `total[1] | total[1]`, fp.py line 120)."""
    a = np.array([0x3FFFFFFD, 0x3D800001, 0xBFFFFFFD, 0xBD800001], np.uint32)
    b = np.array([0x3D800001, 0x3FFFFFFD, 0xBD800001, 0xBFFFFFFD], np.uint32)
    want = [0x4003FFFF, 0x4003FFFF, 0xC003FFFF, 0xC003FFFF]
    assert fp32_add(a, b).tolist() == want
    assert add_in_hardware(a, b).tolist() == want


def test_unit_ports_are_the_documented_widths():
    """The ports are the generated Verilog's interface (a port one bit wider is a different module;
    kills the In(17) / Out(33) port mutants, lines 35-37 and 83-85)."""
    def ports(unit):  # a Component's signature comes from its class annotations
        return {name: (member.flow, Shape.cast(member.shape)) for name, member in unit.__annotations__.items()}

    assert ports(Bf16Multiplier) == {"a": (In, unsigned(16)), "b": (In, unsigned(16)), "product": (Out, unsigned(32))}
    assert ports(Fp32Adder) == {"a": (In, unsigned(32)), "b": (In, unsigned(32)), "sum": (Out, unsigned(32))}
    # round_bf16 returns one fp32 lane: the PE array concatenates C of them into an output beat, so a
    # wider value would shift every lane after the first (kills `r16 = Signal(17)`, line 172)
    dut = RoundBf16()
    evaluate(dut, [(dut.x, np.array([0x3F800000], np.uint32))], dut.y)
    assert dut.width == 32
    # the shared patterns are the golden model's
    assert (FP32_QNAN, FP32_INF, FP32_NEG_ZERO) == (0x7FC00000, 0x7F800000, 0x80000000)
