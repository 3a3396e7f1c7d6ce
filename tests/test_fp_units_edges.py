"""Tier 1: every golden edge grid of the fp32 adder and the bf16 multiplier through the hardware
units (``hdl.lib.fp``), plus random operands at the bottom of the exponent range.

The units are combinational, so one testbench sets the inputs and reads the output of each
case without a clock tick (a few thousand cases per second). The grids are the golden
model's own (``golden.bf16.bf16_edge_values``, ``fp32_edge_values``, ``FP32_ADD_RULES``),
the ones ``tests/test_bf16.py`` checks the golden model with; the PE runs them as dot products
on the generated Verilog (``tb/test_pe.py``).
"""

import numpy as np

from golden.bf16 import FP32_ADD_RULES, bf16_edge_values, bf16_mul, bits_f32, fp32_add, fp32_edge_values
from hdl.lib.fp import Bf16Multiplier, Fp32Adder
from tb.amsim import assert_same, evaluate
from tb.stimulus.pe import near_min_bf16_pairs, near_min_fp32_pairs


def add_in_hardware(a, b) -> np.ndarray:
    dut = Fp32Adder()
    return evaluate(dut, [(dut.a, a), (dut.b, b)], dut.sum)


def test_adder_edge_grid():
    """Every pair of the adder's golden edge values (both orders: 2,304 sums)."""
    e = fp32_edge_values()
    a, b = np.repeat(e, len(e)), np.tile(e, len(e))
    assert_same("fp32 add", (a, b), add_in_hardware(a, b), fp32_add(a, b))


def test_adder_rules():
    """The rule cases of the numerics policy, both operand orders, against the stated result."""
    a = np.array([x for x, y, _, _ in FP32_ADD_RULES] + [y for x, y, _, _ in FP32_ADD_RULES], np.uint32)
    b = np.array([y for x, y, _, _ in FP32_ADD_RULES] + [x for x, y, _, _ in FP32_ADD_RULES], np.uint32)
    want = np.array([r for _, _, r, _ in FP32_ADD_RULES] * 2, np.uint32)
    assert_same("fp32 add rules", (a, b), add_in_hardware(a, b), want)


def test_adder_near_the_smallest_exponents():
    """Random operands with exponent fields 1..3: many exact sums are subnormal (must flush)."""
    a, b = near_min_fp32_pairs(np.random.default_rng(31), 3000)
    exact = bits_f32(a).astype(np.float64) + bits_f32(b).astype(np.float64)
    flushed = ((exact != 0) & (np.abs(exact) < 2.0 ** -126) & ((a & 0x7F800000) != 0)).sum()
    assert flushed > 600, f"only {flushed} sums land below the normal range"  # the stimulus does its job
    assert_same("fp32 add near 2^-126", (a, b), add_in_hardware(a, b), fp32_add(a, b))


def test_multiplier_edge_grid_and_underflow_boundary():
    """Every pair of bf16 edge values (1,444 products), then products at the underflow edge."""
    e = bf16_edge_values()
    low_a, low_b = near_min_bf16_pairs(np.random.default_rng(32), 1500)
    a = np.concatenate([np.repeat(e, len(e)), low_a]).astype(np.uint16)
    b = np.concatenate([np.tile(e, len(e)), low_b]).astype(np.uint16)
    dut = Bf16Multiplier()
    assert_same("bf16 mul", (a, b), evaluate(dut, [(dut.a, a), (dut.b, b)], dut.product), bf16_mul(a, b))
