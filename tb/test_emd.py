"""cocotb tests of the EMD encoder (``emd_enc``) and decoder (``emd_dec``) against ``golden.emd``.

One module serves both blocks: the block named in ``$OMNIDRL_CONFIG`` picks the tests that run
(the others return at once). Settings from the environment (``docs/testing.md``):

* ``EMD_VALUES``: random values per stream set (default 2048);
* ``EMD_TRACE``: ``1`` to stream every tensor of the committed TD3 trace as well, the tensors
  of the pruned circulant layer of the circ-prune stage trace's last stage, and W and dW of the
  element-masked layer of the circ-fine stage trace's last stage (slow on Icarus);
* ``EMD_SEED``: random seed (default 2026);
* ``EMD_GAP`` / ``EMD_STALL``: input gap and output stall probabilities of the stream test
  (default 0.3 each);
* ``EMD_DAMAGED``: damaged streams of the decoder's fuzz test (default 60).

Every stream test runs with random input gaps and random output back-pressure and checks, word
for word (encoder) or beat for beat (decoder), that nothing is lost, duplicated or reordered.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden import emd
from golden.bf16 import f32_to_bf16
from golden.codes import EmdDecoderError
from hdl.emd import EmdDecoderConfig, EmdEncoderConfig, lanes_layout, words_layout
from tb import knobs
from tb.stimulus.emd import adversarial_groups, bad_streams, damaged_streams, random_runs
from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

_RAW = json.loads(os.environ.get("OMNIDRL_CONFIG", '{"block": "emd_enc"}'))
BLOCK = _RAW.get("block", "emd_enc")
CFG = (EmdDecoderConfig if BLOCK == "emd_dec" else EmdEncoderConfig).from_dict(_RAW)
FMT = CFG.fmt
LANES_LAYOUT, WORDS_LAYOUT = lanes_layout(CFG.lanes), words_layout(CFG.word_bits)
LANES, WORDS = PayloadCodec(LANES_LAYOUT.size), PayloadCodec(WORDS_LAYOUT.size)
SEED = knobs.count("EMD_SEED", 2026, lo=0)


def trace_tensors() -> list[tuple[str, np.ndarray]]:
    """Every tensor of the committed TD3 trace, then the actor's circulant layer with pruned
    blocks at the last stage of the circ-prune stage trace (its v and dv with zero words in the
    pruned blocks, its expanded W with zero blocks), then the actor's element-masked l2 at the
    last stage of the circ-fine stage trace (W and dW, most values zero: sparse groups),
    flattened and cut to whole beats."""
    from golden.traces import (GSTCF_TRACE, GSTCP_TRACE, iter_tensors, load_trace,  # noqa: PLC0415
                               masked_layers, trace_meta)

    stages = load_trace(GSTCP_TRACE)
    name = f"{trace_meta(stages)['stages'][-1]}/actor/l2"
    assert not stages[f"{name}/bitmap"].all(), f"{name} has no pruned block"
    tensors = list(iter_tensors(load_trace()))
    tensors += [(name, kind, stages[f"{name}/{kind}"]) for kind in ("v", "dv", "W")]
    fine = load_trace(GSTCF_TRACE)
    name = f"{trace_meta(fine)['stages'][-1]}/actor/l2"
    assert name in masked_layers(fine), f"{name} is not element-masked"
    tensors += [(name, kind, fine[f"{name}/{kind}"]) for kind in ("W", "dW")]
    out = []
    for name, kind, values in tensors:
        v = np.asarray(values, dtype=np.uint16).reshape(-1)
        v = v[: len(v) - len(v) % CFG.lanes]
        if len(v):
            out.append((f"{name}:{kind}", v))
    return out


def stream_sets(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    n = knobs.count("EMD_VALUES", 2048)
    sets = [("random", random_runs(rng, n - n % CFG.fmt.group, CFG.fmt.group))]
    # Partial final groups: lengths that are whole beats but not whole groups.
    for beats in (1, CFG.beats_per_group - 1, CFG.beats_per_group + 1):
        if beats > 0:
            sets.append((f"partial-{beats}", random_runs(rng, beats * CFG.lanes, CFG.fmt.group)))
    sets.append(("adversarial", np.concatenate(adversarial_groups(CFG.fmt.group))))
    for k, grp in enumerate(adversarial_groups(CFG.fmt.group)):
        sets.append((f"single-{k}", grp))
    if os.environ.get("EMD_TRACE", "0") == "1":
        sets += trace_tensors()
    return sets


def beats_of(values: np.ndarray) -> list[int]:
    """Input or output beats of the lane side, packed through the lanes layout."""
    v = np.asarray(values, dtype=np.uint16).reshape(-1, CFG.lanes)
    return [LANES_LAYOUT.const({"data": [int(x) for x in row], "last": int(i == len(v) - 1)}).as_bits()
            for i, row in enumerate(v)]


def framed(words: list[int]) -> list[int]:
    """Word beats, ``last`` on the final one, packed through the words layout."""
    return [WORDS_LAYOUT.const({"data": w, "last": int(i == len(words) - 1)}).as_bits() for i, w in enumerate(words)]


def words_of(values: np.ndarray) -> list[int]:
    return framed(emd.encode(values, FMT, CFG.word_bits))


def compare(expected: int, got: int):
    if expected == got:
        return None
    layout = WORDS_LAYOUT if BLOCK == "emd_enc" else LANES_LAYOUT
    e, g = layout.from_bits(expected), layout.from_bits(got)
    return f"expected {e.data.as_bits():#x} last={e.last}, got {g.data.as_bits():#x} last={g.last}"


class StallCounter:
    """Counts cycles in which the DUT's input had a beat offered and refused it."""

    def __init__(self, dut):
        self.dut, self.refused = dut, 0
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await FallingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.i__valid.value) and not int(self.dut.i__ready.value):
                self.refused += 1


async def run_streams(dut, streams, *, gap: float, stall: float, seed: int, test: str = ""):
    """Send every stream through the DUT and check every output; returns the StallCounter.
    With ``test`` named, the output beats, cycles and seconds go to :func:`tb.knobs.record`."""
    start_clock(dut)
    await reset(dut)
    board = Scoreboard(BLOCK, compare)
    out_codec, in_codec = (WORDS, LANES) if BLOCK == "emd_enc" else (LANES, WORDS)
    sink = StreamSink(dut, "o", out_codec, stall_prob=stall, rng=random.Random(seed + 1), callback=board.receive)
    source = StreamSource(dut, "i", in_codec, gap_prob=gap, rng=random.Random(seed))
    counter = StallCounter(dut)
    expected = 0
    for _, values in streams:
        if BLOCK == "emd_enc":
            ins, outs = beats_of(values), words_of(values)
        else:
            ins, outs = words_of(values), beats_of(values)
        for o in outs:
            board.expect(o)
        source.send_all(ins)
        expected += len(outs)
    budget = 40 * (expected + sum(len(v) for _, v in streams) // CFG.lanes) + 2000
    start, t0 = sink.loop.cycle, time.perf_counter()
    await sink.wait_for(expected, timeout_cycles=budget)
    cycles, seconds = sink.loop.cycle - start, time.perf_counter() - t0
    for _ in range(20):
        await RisingEdge(dut.clk)
    board.check_done(sink)
    if BLOCK == "emd_dec":
        assert int(dut.error.value) == 0, "decoder flagged an error on a valid stream"
    dut._log.info("%s: %d streams, %d output beats checked in %d cycles", BLOCK, len(streams), expected, cycles)
    if test:
        knobs.record(BLOCK, test, beats=expected, cycles=cycles, seconds=seconds, streams=len(streams))
    return counter


@cocotb.test()
async def streams_with_gaps_and_backpressure(dut):
    """Random, partial-group, adversarial (and traced) streams; random gaps and stalls."""
    rng = np.random.default_rng(SEED)
    await run_streams(dut, stream_sets(rng), gap=knobs.probability("EMD_GAP", 0.3),
                      stall=knobs.probability("EMD_STALL", 0.3), seed=SEED, test="streams_with_gaps_and_backpressure")


@cocotb.test()
async def one_beat_per_cycle(dut):
    """No gaps, no back-pressure, data that compresses: the input is never refused."""
    rng = np.random.default_rng(SEED + 1)
    values = f32_to_bf16(rng.normal(0, 0.05, 32 * CFG.fmt.group))
    if BLOCK == "emd_dec":
        # The decoder is fed as fast as it takes words; it must then emit one beat per cycle
        # apart from the terminator's cycle, which the cycle count below allows for.
        start_clock(dut)
        await reset(dut)
        sink = StreamSink(dut, "o", LANES, stall_prob=0.0)
        source = StreamSource(dut, "i", WORDS, gap_prob=0.0)
        source.send_all(words_of(values))
        beats = len(values) // CFG.lanes
        first = None
        cycles = 0
        while len(sink.received) < beats:
            await RisingEdge(dut.clk)
            cycles += 1
            if first is None and sink.received:
                first = cycles
            assert cycles < 20 * beats, "decoder stopped"
        assert cycles - first <= beats + 2, f"{cycles - first} cycles for {beats} beats after the first"
        return
    counter = await run_streams(dut, [("weights", values)], gap=0.0, stall=0.0, seed=SEED)
    assert counter.refused == 0, f"the encoder refused {counter.refused} beats"


# -- decoder: corrupt and truncated streams -------------------------------------------------------

def expected_code(words: list[int]) -> EmdDecoderError:
    """The cause the golden decoder reports for ``words`` (NONE if it accepts them)."""
    try:
        emd.decode(words, FMT, CFG.word_bits, lanes=CFG.lanes)
    except emd.EmdFormatError as exc:
        return exc.code
    return EmdDecoderError.NONE


@cocotb.test()
async def decoder_flags_bad_streams_and_recovers(dut):
    """Each bad stream raises ``error`` without hanging; the good stream after it decodes."""
    if BLOCK != "emd_dec":
        return
    rng = np.random.default_rng(SEED + 2)
    start_clock(dut)
    await reset(dut)
    sink = StreamSink(dut, "o", LANES, stall_prob=0.2, rng=random.Random(SEED))
    source = StreamSource(dut, "i", WORDS, gap_prob=0.2, rng=random.Random(SEED + 1))
    for name, words in bad_streams(rng, FMT, CFG.word_bits, CFG.lanes):
        code = expected_code(words)
        assert code != EmdDecoderError.NONE, f"golden decoder accepted bad stream {name}"
        source.send_all(framed(words))
        await source.wait_idle(timeout_cycles=20000)
        for _ in range(3 * CFG.beats_per_group + 20):
            await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.error.value) == 1, f"{name}: error flag not raised"
        got_code = EmdDecoderError(int(dut.err_code.value))
        assert got_code == code, f"{name}: err_code {got_code.name}, golden says {code.name}"
        await FallingEdge(dut.clk)
        # The next, valid stream must decode exactly (the decoder went back to idle).
        sink.received.clear()
        good = random_runs(rng, 2 * CFG.fmt.group + CFG.lanes, CFG.fmt.group)
        source.send_all(words_of(good))
        try:
            await sink.wait_for(len(good) // CFG.lanes, timeout_cycles=20000)
        except AssertionError as exc:
            raise AssertionError(f"after {name}: {exc}") from None
        beats = [LANES_LAYOUT.from_bits(b) for b in sink.received]
        got = np.array([int(x) for b in beats for x in b.data], dtype=np.uint16)
        assert np.array_equal(got, good), f"after {name}: the next stream decoded wrongly"
        assert beats[-1].last == 1, f"after {name}: no last on the final beat"
        for _ in range(10):
            await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.error.value) == 0, f"after {name}: error not cleared by the next stream"
        assert int(dut.err_code.value) == EmdDecoderError.NONE, f"after {name}: err_code not cleared"
        await FallingEdge(dut.clk)
    assert not sink.protocol_errors, sink.protocol_errors


@cocotb.test()
async def decoder_fuzz_damaged_streams(dut):
    """``EMD_DAMAGED`` streams, one in five of each kind (intact, a few bit flips, cut short, an
    extra word, random words), back to back with gaps and stalls: ``error``/``err_code`` must
    match the golden decoder's verdict and cause, an accepted stream must decode exactly, and
    the decoder must take every word (it recovers after each bad stream)."""
    if BLOCK != "emd_dec":
        return
    rng = np.random.default_rng(SEED + 3)
    start_clock(dut)
    await reset(dut)
    sink = StreamSink(dut, "o", LANES, stall_prob=0.2, rng=random.Random(SEED + 4))
    source = StreamSource(dut, "i", WORDS, gap_prob=0.2, rng=random.Random(SEED + 5))
    counts = {"flagged": 0, "decoded": 0}
    start, t0 = sink.loop.cycle, time.perf_counter()
    n = knobs.count("EMD_DAMAGED", 60)
    for k, words in enumerate(damaged_streams(rng, FMT, CFG.word_bits, CFG.lanes, n)):
        try:
            expect, code = emd.decode(words, FMT, CFG.word_bits, lanes=CFG.lanes), EmdDecoderError.NONE
        except emd.EmdFormatError as exc:
            expect, code = None, exc.code
        sink.received.clear()
        source.send_all(framed(words))
        await source.wait_idle(timeout_cycles=200 * len(words) + 1000)
        for _ in range(3 * CFG.beats_per_group + 20):
            await RisingEdge(dut.clk)
        await ReadOnly()
        got = (int(dut.error.value), EmdDecoderError(int(dut.err_code.value)))
        assert got == (int(code != EmdDecoderError.NONE), code), \
            f"stream {k}: error={got[0]} err_code={got[1].name}, golden says {code.name}"
        if expect is not None:
            beats = [LANES_LAYOUT.from_bits(b) for b in sink.received]
            values = np.array([int(x) for b in beats for x in b.data], dtype=np.uint16)
            assert np.array_equal(values, expect), f"stream {k}: accepted but decoded wrongly"
            assert beats and beats[-1].last == 1, f"stream {k}: no last on the final beat"
        counts["decoded" if expect is not None else "flagged"] += 1
        await FallingEdge(dut.clk)
    assert not sink.protocol_errors, sink.protocol_errors
    dut._log.info("%d damaged streams: %d flagged, %d decoded exactly", n, counts["flagged"], counts["decoded"])
    knobs.record(BLOCK, "decoder_fuzz_damaged_streams", streams=n, cycles=sink.loop.cycle - start,
                 seconds=time.perf_counter() - t0, **counts)
