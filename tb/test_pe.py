"""cocotb tests of the bf16 MAC PE (``hdl.pe.PE``) against ``golden.bf16.dot``.

Settings come from the environment (``docs/testing.md``): ``OMNIDRL_CONFIG`` (the PE config
JSON, set by the runner), ``PE_PAIRS`` (operand pairs of the edge-class and random dots, default
12000; the adder's edge grid and the near-minimum sums come on top), ``PE_SEED`` (default 2026)
and ``PE_GAP`` / ``PE_STALL`` (input gap and output stall probabilities of the random test,
default 0.3 each).
"""

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from golden.bf16 import dot, dots
from hdl.pe import PEConfig, pe_input_layout
from tb import knobs
from tb.stimulus.pe import make_dots
from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

CFG = PEConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else PEConfig()
LAYOUT = pe_input_layout()
IN = PayloadCodec(LAYOUT.size)
OUT = PayloadCodec(32)


def beats_of(a: np.ndarray, b: np.ndarray) -> list[int]:
    """The beats of one dot product, packed through the PE's input layout."""
    n = len(a)
    return [LAYOUT.const({"a": int(a[k]), "b": int(b[k]), "clear": int(k == 0), "last": int(k == n - 1)}).as_bits()
            for k in range(n)]


def fp32_compare(expected: int, got: int):
    return None if expected == got else f"expected 0x{expected:08x}, got 0x{got:08x}"


async def run_dots(dut, pairs, gap_prob: float, stall_prob: float, seed: int) -> tuple[int, float]:
    """Stream the dot products ``pairs`` through the PE and check every result; returns the
    cycles and the seconds taken."""
    start_clock(dut)
    await reset(dut)
    board = Scoreboard("pe.o", fp32_compare)
    sink = StreamSink(dut, "o", OUT, stall_prob=stall_prob, rng=random.Random(seed + 1), callback=board.receive)
    source = StreamSource(dut, "i", IN, gap_prob=gap_prob, rng=random.Random(seed))
    for (a, b), expected in zip(pairs, dots(pairs)):
        board.expect(int(expected))
        source.send_all(beats_of(a, b))
    start, t0 = sink.loop.cycle, time.perf_counter()
    await sink.wait_for(len(pairs), timeout_cycles=20 * sum(len(a) for a, _ in pairs) + 1000)
    cycles, seconds = sink.loop.cycle - start, time.perf_counter() - t0
    # Simulation speed of the streaming phase alone (stimulus and golden model excluded),
    # read by bench/sim_speed.py.
    dut._log.info("SIMSPEED cycles=%d seconds=%.6f", cycles, seconds)
    board.check_done(sink)
    return cycles, seconds


@cocotb.test()
async def random_and_edge_dots_with_stalls(dut):
    """The multiplier's edge grid (every edge-class pair) and random dots up to ``PE_PAIRS``
    pairs, then the adder's edge grid and rule cases as far as (accumulator, product) pairs
    reach them and sums cancelling at the bottom of the exponent range; random gaps and
    back-pressure."""
    seed = knobs.count("PE_SEED", 2026, lo=0)
    pairs, count = make_dots(seed, knobs.count("PE_PAIRS", 12000), grids=True)
    cycles, seconds = await run_dots(dut, pairs, gap_prob=knobs.probability("PE_GAP", 0.3),
                                     stall_prob=knobs.probability("PE_STALL", 0.3), seed=seed)
    dut._log.info("checked %d dot products (%d operand pairs) in %d cycles", len(pairs), count, cycles)
    knobs.record("pe", "random_and_edge_dots_with_stalls", beats=len(pairs), in_beats=count, cycles=cycles,
                 seconds=seconds)


@cocotb.test()
async def full_throughput_without_stalls(dut):
    """With no gaps and no back-pressure the PE takes one pair per cycle."""
    pairs, count = make_dots(7, 2000)
    cycles, _ = await run_dots(dut, pairs, gap_prob=0.0, stall_prob=0.0, seed=7)
    # One cycle per pair, plus the pipeline latency and the driver's first-beat cycle.
    assert cycles <= count + CFG.latency + 4, f"{cycles} cycles for {count} pairs: the PE stalled"


@cocotb.test()
async def latency_matches_config(dut):
    """``o.valid`` rises exactly ``cfg.latency`` edges after a ``last`` beat transfers."""
    start_clock(dut)
    await reset(dut)
    dut.o__ready.value = 1
    await FallingEdge(dut.clk)
    dut.i__payload.value = LAYOUT.const({"a": 0x3F80, "b": 0x4000, "clear": 1, "last": 1}).as_bits()  # 1.0 * 2.0
    dut.i__valid.value = 1
    await ReadOnly()
    assert int(dut.i__ready.value) == 1
    await FallingEdge(dut.clk)  # the beat transferred on the rising edge before this
    dut.i__valid.value = 0
    edges = 1
    while True:
        await ReadOnly()
        if int(dut.o__valid.value):
            break
        await FallingEdge(dut.clk)
        edges += 1
        assert edges <= 10, "no result"
    assert edges == CFG.latency, f"latency {edges}, config says {CFG.latency}"
    assert int(dut.o__payload.value) == 0x40000000


@cocotb.test()
async def output_holds_under_back_pressure(dut):
    """Results wait in the output register while ready is low, and input stalls behind them."""
    start_clock(dut)
    await reset(dut)
    board = Scoreboard("pe.o", fp32_compare)
    pairs = make_dots(11, 200)[0][-40:]
    sink = StreamSink(dut, "o", OUT, stall_prob=0.95, rng=random.Random(3), callback=board.receive)
    source = StreamSource(dut, "i", IN, gap_prob=0.0, rng=random.Random(4))
    for a, b in pairs:
        board.expect(int(dot(a, b)))  # the scalar golden function, as a cross-check of dots()
        source.send_all(beats_of(a, b))
    await sink.wait_for(len(pairs), timeout_cycles=200_000)
    board.check_done(sink)
