"""cocotb tests of the ECIM/MFEC unit (``hdl.ecim.Ecim``) against ``golden.mfec``.

Settings from the environment (``docs/testing.md``): ``OMNIDRL_CONFIG`` (the config JSON, set
by the runner), ``ECIM_DOTS`` (random dot products per test, default 150), ``ECIM_SEED``,
``ECIM_TD3_LOADS``, and for the random test ``ECIM_MAX_GROUPS`` (groups per dot product: 1 to
this, default min(max_groups, 6)) and ``ECIM_GAP`` / ``ECIM_STALL`` (input gap and output stall
probabilities, default 0.3 each). The stimulus and the expected payloads come from ``tb/stimulus/ecim.py``
(shared with the Amaranth-simulator tests in ``tests/test_ecim_amaranth.py``); payloads are
packed through the unit's own layouts.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge

from hdl.ecim import EcimConfig, group_layout, output_layout, write_layout
from tb import knobs
from tb.stimulus.ecim import (bf16_normal, edge_dots, expected, expected_skipped, group_beats, make_dots,
                              make_weights, normal_dots, td3_dots, write_beats)
from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

CFG = EcimConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else EcimConfig.preset("tiny")


# Payloads travel as integers packed by the layouts (PayloadCodec packs flat fields only).
W_CODEC = PayloadCodec(write_layout(CFG).size)
I_CODEC = PayloadCodec(group_layout(CFG).size)
O_CODEC = PayloadCodec(output_layout(CFG).size)

def _cmp(exp: int, got: int):
    return None if exp == got else f"expected 0x{exp:x}, got 0x{got:x}"

async def _load(dut, weights, gap_prob: float, seed: int):
    src = StreamSource(dut, "w", W_CODEC, gap_prob=gap_prob, rng=random.Random(seed))
    for beat in write_beats(weights):
        src.send(write_layout(CFG).const(beat).as_bits())
    await src.wait_idle(timeout_cycles=50 * weights.shape[0] + 100)
    await FallingEdge(dut.clk)
    _stop(src)
    dut.w__valid.value = 0

def _stop(driver) -> None:
    # A later phase of the same test starts fresh drivers on the same port.
    driver.stop()

async def _run(dut, weights, dots, *, gap_prob, stall_prob, seed, load=True, timing: dict | None = None):
    """Load ``weights``, stream ``dots`` with gaps and back-pressure, check every result.
    Returns the cycles from the first group to the last result; ``timing["seconds"]``, if given,
    gets the wall time of that streaming phase (stimulus and expected results excluded)."""
    if load:
        for port in (dut.w__valid, dut.i__valid, dut.o__ready):
            port.value = 0  # undriven valids would make the DUT's state X under Icarus
        start_clock(dut)
        await reset(dut)
        await _load(dut, weights, gap_prob, seed + 7)
    board = Scoreboard("ecim.o", _cmp)
    for e in expected(CFG, weights, dots):
        board.expect(e)
    sink = StreamSink(dut, "o", O_CODEC, stall_prob=stall_prob, rng=random.Random(seed + 1),
                      callback=board.receive)
    src = StreamSource(dut, "i", I_CODEC, gap_prob=gap_prob, rng=random.Random(seed))
    for beat in group_beats(CFG, dots):
        src.send(group_layout(CFG).const(beat).as_bits())
    n_groups = sum(len(r) for r, _ in dots)
    t0 = time.perf_counter()
    cycles = 0
    limit = 4 * n_groups * (CFG.group_cycles + 2) * (1 + int(10 * max(gap_prob, stall_prob))) + 500
    while len(sink.received) < len(dots):
        await RisingEdge(dut.clk)
        cycles += 1
        assert cycles < limit, f"ECIM stopped making progress: {len(sink.received)} of {len(dots)} results"
    if timing is not None:
        timing["seconds"] = time.perf_counter() - t0
    board.check_done(sink)
    await FallingEdge(dut.clk)
    _stop(src)
    _stop(sink)
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    return cycles

@cocotb.test()
async def random_dots_with_stalls(dut):
    """Random and edge-case dot products (zeros, all-zero groups, Inf/NaN, extreme
    exponents, maximal shifts) with random input gaps and output back-pressure."""
    seed = knobs.count("ECIM_SEED", 2026, lo=0)
    weights = make_weights(CFG, seed)
    max_groups = knobs.count("ECIM_MAX_GROUPS", min(CFG.max_groups, 6))
    dots = edge_dots(CFG) + make_dots(CFG, knobs.count("ECIM_DOTS", 150), seed, max_len=min(max_groups, CFG.max_groups))
    timing: dict = {}
    cycles = await _run(dut, weights, dots, gap_prob=knobs.probability("ECIM_GAP", 0.3),
                        stall_prob=knobs.probability("ECIM_STALL", 0.3), seed=seed, timing=timing)
    knobs.record("ecim", "random_dots_with_stalls", beats=len(dots), cycles=cycles, seconds=timing["seconds"])
    skipped = int(dut.skipped.value)
    assert skipped == expected_skipped(CFG, weights, dots), "skipped-multiply counter"
    assert int(dut.groups.value) == sum(len(r) for r, _ in dots), "group counter"
    dut._log.info("checked %d dot products in %d cycles (%d multiplies skipped)", len(dots), cycles, skipped)

@cocotb.test()
async def td3_dot_products(dut):
    """Real TD3 dot products (forward, backward, weight gradient) from the committed trace;
    ``ECIM_TD3_LOADS`` memory loads of different layers (default 1). Without the trace the
    test fails (``td3_dots`` raises)."""
    seed = knobs.count("ECIM_SEED", 2026, lo=0) + 1
    count = knobs.count("ECIM_DOTS", 150)
    total = 0
    for load in range(int(os.environ.get("ECIM_TD3_LOADS", "1"))):
        weights, dots, source = td3_dots(CFG, seed + load, count)
        assert dots, f"no TD3 dot products from the trace ({source})"
        dut._log.info("TD3 trace, load %d: %s, %d dot products", load, source, len(dots))
        if load:
            await _load(dut, weights, 0.2, seed + load)  # the unit is idle: rewrite the memories
        await _run(dut, weights, dots, gap_prob=0.2, stall_prob=0.2, seed=seed + load, load=load == 0)
        total += len(dots)
    dut._log.info("checked %d TD3 dot products", total)

@cocotb.test()
async def overlap_cycle_count(dut):
    """At full rate the unit takes ``cfg.group_cycles`` per group (the MFEC overlap when
    ``overlap`` is on, exponent + mantissa cycles when it is off)."""
    rng = np.random.default_rng(5)
    weights = bf16_normal(rng, (CFG.rows, CFG.n))
    dots = normal_dots(CFG, rng, 10, 4)
    total = sum(len(r) for r, _ in dots)
    cycles = await _run(dut, weights, dots, gap_prob=0.0, stall_prob=0.0, seed=3)
    fill = CFG.exp_cycles + CFG.mant_cycles + 6
    assert cycles <= total * CFG.group_cycles + fill, f"{cycles} cycles for {total} groups"
    assert cycles >= total * CFG.group_cycles, f"{cycles} cycles for {total} groups: faster than the model?"
    dut._log.info("%d groups in %d cycles: %.2f cycles/group (model %d)", total, cycles, cycles / total,
                  CFG.group_cycles)

@cocotb.test()
async def too_long_flags_error_and_recovers(dut):
    """A dot product longer than max_groups gives err=1 and NaN; the next one is correct.
    Writes between dot products update the memories."""
    rng = np.random.default_rng(9)
    weights = bf16_normal(rng, (CFG.rows, CFG.n))
    long_rows = [int(r) for r in rng.integers(0, CFG.rows, CFG.max_groups + 1)]
    dots = [(long_rows, bf16_normal(rng, len(long_rows) * CFG.n)),
            ([0, 1][:CFG.max_groups], bf16_normal(rng, min(2, CFG.max_groups) * CFG.n))]
    await _run(dut, weights, dots, gap_prob=0.1, stall_prob=0.5, seed=4)
    assert output_layout(CFG).from_bits(expected(CFG, weights, dots[:1])[0]).err == 1
    # Rewrite row 0 and check that the next dot product uses the new values.
    weights = weights.copy()
    weights[0] = bf16_normal(rng, CFG.n, 4.0)
    await _load(dut, weights[:1], 0.0, 11)
    await _run(dut, weights, [([0], bf16_normal(rng, CFG.n))], gap_prob=0.0, stall_prob=0.0, seed=12, load=False)
