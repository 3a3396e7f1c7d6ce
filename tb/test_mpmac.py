"""cocotb tests of the mixed-precision MAC (``hdl.mpmac.MpMac``) against ``golden.mpmac``.

Every result is compared bit for bit with ``golden.mpmac.stream_model``, the scoreboard fails on
any result lost, duplicated or reordered, and the sticky ``error``/``err_code`` pair is compared
with the golden flag every cycle. Stimulus comes from ``tb/stimulus/mpmac.py`` (shared with the
Amaranth-simulator tests). Settings from the environment (``docs/testing.md``):

``OMNIDRL_CONFIG``
    The MAC config JSON (set by the runner).
``MPMAC_DOTS``
    Random dot products per precision pair and activation kind (default 1; an extremes beat
    per pair and kind comes on top).
``MPMAC_GAP``, ``MPMAC_STALL``
    Input gap and output stall probabilities of the every-pair test (default 0.3 each).
``MPMAC_MALFORMED``
    Rounds of the malformed-beat stream (default 1; each round has every kind of bad dot product).
``MPMAC_SEED``
    Stimulus seed (default 2026).
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.triggers import FallingEdge

from golden.codes import MpMacError
from golden.mpmac import Beat, dot_beats, dot_cycles, stream_model
from hdl.mpmac import MpMacConfig, beat_layout, result_layout
from tb import knobs
from tb.stimulus.mpmac import longest_dots, malformed_stream, pair_dots
from tb.stream import FlagMonitor, PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

CFG = MpMacConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else MpMacConfig.preset("tiny")
IN_CODEC = PayloadCodec(beat_layout(CFG))
OUT_CODEC = PayloadCodec(result_layout(CFG))
SEED = knobs.count("MPMAC_SEED", 2026, lo=0)


async def run_stream(dut, beats: list[Beat], *, gap_prob: float, stall_prob: float, seed: int,
                     out_cycles: list[int] | None = None, timing: dict | None = None):
    """Reset, send ``beats``, check every result and the error flags against the golden model.

    Returns the golden result and the clock cycles of the streaming phase. ``out_cycles``, if given, gets the cycle of every result's
    transfer; ``timing["seconds"]`` the wall time of the streaming phase. The clock must run.
    """
    await reset(dut)
    expected = stream_model(CFG, beats)
    mask = (1 << CFG.acc_bits) - 1
    board = Scoreboard("mpmac.o")
    board.expect_all({"value": v & mask} for v in expected.results)
    source = StreamSource(dut, "i", IN_CODEC, gap_prob=gap_prob, rng=random.Random(seed))
    monitor = FlagMonitor(dut, source, lambda sent: (expected.error_after[sent - 1], expected.code_after[sent - 1]))

    def on_result(payload):
        board.receive(payload)
        if out_cycles is not None:
            out_cycles.append(monitor.cycle)

    sink = StreamSink(dut, "o", OUT_CODEC, stall_prob=stall_prob, rng=random.Random(seed + 1), callback=on_result)
    source.send_all(b.as_dict() for b in beats)
    t0 = time.perf_counter()
    limit = 20 * sum(b.a_bits + 2 for b in beats) + 1000
    waited = 0
    while len(sink.received) < len(expected.results) or not source.idle:
        await FallingEdge(dut.clk)
        waited += 1
        assert waited < limit, (f"no progress: {len(sink.received)} of {len(expected.results)} results, "
                                f"{source.sent} of {len(beats)} input beats sent")
    if timing is not None:
        timing["seconds"] = time.perf_counter() - t0
    cycles = monitor.cycle
    for _ in range(2 * CFG.max_a_bits + 8):  # nothing more may come out; the flags hold
        await FallingEdge(dut.clk)
    source.stop()
    sink.stop()
    monitor.stop()
    board.check_done(sink)
    assert not monitor.mismatches, "error flags differ from golden: " + "; ".join(monitor.mismatches)
    count = int(dut.err_count.value)
    assert count == expected.errors, f"err_count {count}, golden model drops {expected.errors} dot products"
    return expected, cycles


@cocotb.test()
async def every_pair_with_gaps_and_backpressure(dut):
    """Every precision pair the instance takes, signed and unsigned activations: random dot
    products (a third of the operands edge values) and a beat of extreme products per pair and
    kind, then the longest dot products of extreme products; random gaps and stalls."""
    start_clock(dut)
    rng = random.Random(SEED)
    beats = pair_dots(CFG, rng, per_pair=knobs.count("MPMAC_DOTS", 1)) + longest_dots(CFG)
    timing: dict = {}
    expected, cycles = await run_stream(dut, beats, gap_prob=knobs.probability("MPMAC_GAP", 0.3),
                                        stall_prob=knobs.probability("MPMAC_STALL", 0.3), seed=SEED, timing=timing)
    assert expected.errors == 0
    knobs.record("mpmac", "every_pair_with_gaps_and_backpressure", beats=len(expected.results), cycles=cycles,
                 seconds=timing["seconds"])
    dut._log.info("%d dot products of %d precision pairs checked", len(expected.results), len(beats))


@cocotb.test()
async def malformed_flagged_and_recovered(dut):
    """Bad precision fields, mixed precisions within a dot product, bits above the precision and
    too many beats, between good dot products: each bad one is dropped and counted,
    error/err_code follow the golden flag, and the good ones around it are exact."""
    start_clock(dut)
    beats = malformed_stream(CFG, random.Random(SEED + 1), rounds=knobs.count("MPMAC_MALFORMED", 1))
    timing: dict = {}
    expected, cycles = await run_stream(dut, beats, gap_prob=0.25, stall_prob=0.3, seed=SEED + 2, timing=timing)
    codes = {code for _, code in expected.rejected}
    assert {MpMacError.BITS, MpMacError.MIXED} <= codes, codes
    knobs.record("mpmac", "malformed_flagged_and_recovered", malformed=expected.errors,
                 beats=len(expected.results), cycles=cycles, seconds=timing["seconds"])


@cocotb.test()
async def full_rate_cycle_count(dut):
    """Without gaps or stalls, consecutive results are ``a_bits * beats`` cycles apart
    (``golden.mpmac.dot_cycles``): the bit-serial engine never idles between beats."""
    start_clock(dut)
    rng = random.Random(SEED + 3)
    w_bits = CFG.max_w_bits
    a_list = list(range(1, CFG.max_a_bits + 1)) if CFG.runtime_precision else [CFG.max_a_bits] * 4
    dots = []
    for a_bits in a_list + a_list[::-1]:
        n = rng.randint(1, min(3, CFG.max_beats))
        lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        ws = [rng.randint(lo, hi) for _ in range(n * CFG.lanes)]
        xs = [rng.randint(0, (1 << a_bits) - 1) for _ in range(n * CFG.lanes)]
        dots.append(dot_beats(ws, xs, w_bits, a_bits, False, CFG.lanes))
    out: list[int] = []
    await run_stream(dut, [b for d in dots for b in d], gap_prob=0.0, stall_prob=0.0, seed=SEED + 4, out_cycles=out)
    gaps = [b - a for a, b in zip(out, out[1:])]
    model = [dot_cycles(d[0].a_bits, len(d)) for d in dots[1:]]
    assert gaps == model, f"result intervals {gaps}, model {model}"
