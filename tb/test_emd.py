"""cocotb tests of the EMD encoder (``emd_enc``) and decoder (``emd_dec``) against ``golden.emd``.

One module serves both blocks: the block named in ``$OMNIDRL_CONFIG`` picks the tests that run
(the others return at once). Settings from the environment:

* ``EMD_VALUES``: random values per stream set (default 2048);
* ``EMD_TRACE``: ``1`` to stream every tensor of the committed TD3 trace as well (slow on Icarus);
* ``EMD_SEED``: random seed (default 2026).

Every stream test runs with random input gaps and random output back-pressure and checks, word
for word (encoder) or beat for beat (decoder), that nothing is lost, duplicated or reordered.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden import emd
from golden.bf16 import f32_to_bf16
from hdl.emd import EmdDecoderConfig, EmdEncoderConfig, lanes_layout, words_layout
from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

_RAW = json.loads(os.environ.get("OMNIDRL_CONFIG", '{"block": "emd_enc"}'))
BLOCK = _RAW.get("block", "emd_enc")
CFG = (EmdDecoderConfig if BLOCK == "emd_dec" else EmdEncoderConfig).from_dict(_RAW)
FMT = CFG.fmt
LANES = PayloadCodec(lanes_layout(CFG.lanes))
WORDS = PayloadCodec(words_layout(CFG.word_bits))
SEED = int(os.environ.get("EMD_SEED", "2026"))


# -- stimulus -----------------------------------------------------------------------------------

def random_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Weights, ReLU activations, small gradients and arbitrary bit patterns, mixed in runs."""
    out = []
    while sum(len(x) for x in out) < n:
        run = int(rng.integers(1, 4 * CFG.fmt.group))
        kind = rng.integers(0, 4)
        if kind == 0:
            x = f32_to_bf16(rng.normal(0, 0.05, run))
        elif kind == 1:
            x = f32_to_bf16(np.maximum(rng.normal(0, 1, run), 0))
        elif kind == 2:
            # Gradients, masked by a ReLU: the masked negatives become -0.
            x = f32_to_bf16(rng.normal(0, 1e-3, run) * rng.lognormal(0, 2, run) * (rng.random(run) < 0.6))
        else:
            x = rng.integers(0, 1 << 16, run).astype(np.uint16)
        out.append(x)
    return np.concatenate(out)[:n].astype(np.uint16)


def adversarial_groups() -> list[np.ndarray]:
    """One group of each hard case: zeros, escapes, range ends, NaN/Inf, lone values, extremes."""
    g = CFG.fmt.group
    idx = np.arange(g)
    cases = [
        np.zeros(g),                                         # all +0: a sparse group
        np.full(g, 0x8000),                                  # all -0: exponent 0, sign kept
        np.full(g, 0x0001),                                  # subnormal patterns (exponent 0)
        np.where(idx % 2, 0x0080, 0x7F7F),                   # alternating min/max normal: all escapes
        np.where(idx % 2, 0x8080, 0xFF7F),
        np.full(g, 0x0080),                                  # min exponent only
        np.full(g, 0x7F7F),                                  # max finite exponent only
        np.where(idx % 3 == 0, 0x7FC0, np.where(idx % 3 == 1, 0xFF80, 0x7F81)),  # NaN, -Inf, sNaN
        np.where(idx == g // 2, 0x3F80, 0),                  # a single non-zero among zeros
        np.where(idx == 0, 0x0080, 0x7F00),                  # one far-low escape
        np.where(idx % 2, 0, 0x7F80),                        # zeros and Inf
        np.where(idx % 2, 0x8000, 0x0000),                   # as many -0 as +0 (the tie picks +0)
        np.where(idx % 4 == 0, 0x0000, 0x8000),              # mostly -0: a sparse group of -0
        np.where(idx % 3 == 0, 0x8000, 0x3F80),              # -0 among equal values
        ((idx * 37) % 256) << 7 | (idx & 0x7F),              # every exponent step
    ]
    return [np.asarray(c, dtype=np.uint16) for c in cases]


def trace_tensors() -> list[tuple[str, np.ndarray]]:
    """Every tensor of the committed TD3 trace, flattened and cut to whole beats."""
    from golden.traces import iter_tensors, load_trace  # noqa: PLC0415 (optional until it lands)

    out = []
    for name, kind, values in iter_tensors(load_trace()):
        v = np.asarray(values, dtype=np.uint16).reshape(-1)
        v = v[: len(v) - len(v) % CFG.lanes]
        if len(v):
            out.append((f"{name}:{kind}", v))
    return out


def stream_sets(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    n = int(os.environ.get("EMD_VALUES", "2048"))
    sets = [("random", random_values(rng, n - n % CFG.fmt.group))]
    # Partial final groups: lengths that are whole beats but not whole groups.
    for beats in (1, CFG.beats_per_group - 1, CFG.beats_per_group + 1):
        if beats > 0:
            sets.append((f"partial-{beats}", random_values(rng, beats * CFG.lanes)))
    sets.append(("adversarial", np.concatenate(adversarial_groups())))
    for k, grp in enumerate(adversarial_groups()):
        sets.append((f"single-{k}", grp))
    if os.environ.get("EMD_TRACE", "0") == "1":
        sets += trace_tensors()
    return sets


def beats_of(values: np.ndarray) -> list[dict[str, int]]:
    v = np.asarray(values, dtype=np.uint16).reshape(-1, CFG.lanes)
    return [{"data": sum(int(x) << (16 * k) for k, x in enumerate(row)), "last": int(i == len(v) - 1)}
            for i, row in enumerate(v)]


def words_of(values: np.ndarray) -> list[dict[str, int]]:
    words = emd.encode(values, FMT, CFG.word_bits)
    return [{"data": w, "last": int(i == len(words) - 1)} for i, w in enumerate(words)]


def compare(expected, got):
    if expected == got:
        return None
    return f"expected {expected['data']:#x} last={expected['last']}, got {got['data']:#x} last={got['last']}"


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


async def run_streams(dut, streams, *, gap: float, stall: float, seed: int):
    """Send every stream through the DUT and check every output; returns the StallCounter."""
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
    await sink.wait_for(expected, timeout_cycles=budget)
    for _ in range(20):
        await RisingEdge(dut.clk)
    board.check_done(sink)
    if BLOCK == "emd_dec":
        assert int(dut.error.value) == 0, "decoder flagged an error on a valid stream"
    dut._log.info("%s: %d streams, %d output beats checked", BLOCK, len(streams), expected)
    return counter


@cocotb.test()
async def streams_with_gaps_and_backpressure(dut):
    """Random, partial-group, adversarial (and traced) streams; random gaps and stalls."""
    rng = np.random.default_rng(SEED)
    await run_streams(dut, stream_sets(rng), gap=0.3, stall=0.3, seed=SEED)


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

def _bits_to_words(bits) -> list[dict[str, int]]:
    words = emd.bits_to_words(np.asarray(bits, dtype=np.uint8), CFG.word_bits)
    return [{"data": w, "last": int(i == len(words) - 1)} for i, w in enumerate(words)]


def bad_streams(rng: np.random.Generator) -> list[tuple[str, list[dict[str, int]]]]:
    """Streams the golden decoder rejects; each must raise ``error`` and let the next stream pass."""
    good = random_values(rng, 4 * CFG.fmt.group)
    bits = emd.encode_bits(good, FMT)
    words = words_of(good)
    out = []
    # Truncated: the stream stops one word early (that word is now flagged last).
    if len(words) > 1:
        cut = [dict(w) for w in words[:-1]]
        cut[-1]["last"] = 1
        out.append(("truncated", cut))
    # Truncated in the middle of the first group.
    out.append(("truncated-early", _bits_to_words(bits[: 9 + 3 * CFG.lanes])))
    # A relative code that leaves the exponent range: base 255 and the top delta (> 0), or
    # base 1 and the bottom delta (< 0) when the window has no positive delta.
    mu, code = (255, FMT.window - 1) if FMT.hi > 0 else (1, 0)
    hdr = [0] + [(mu >> i) & 1 for i in range(8)]
    rec = [(code >> i) & 1 for i in range(FMT.delta_bits)] + [0] * 8
    out.append(("exponent-out-of-range", _bits_to_words(hdr + rec * CFG.fmt.group + [0] * 20)))
    # A sparse header with the reserved zero mode 3.
    out.append(("reserved-zero-mode", _bits_to_words([1] + [1, 0, 0, 0, 0, 0, 0, 1] + [1, 1] + [0] * (CFG.fmt.group + 40))))
    # A terminator with the sparse bit set.
    out.append(("bad-terminator", _bits_to_words([1] + [0] * (8 + FMT.count_bits))))
    # A whole word of data after the terminator.
    extra = [dict(w) for w in words]
    extra[-1]["last"] = 0
    extra.append({"data": 0x5A, "last": 1})
    out.append(("data-after-end", extra))
    # Non-zero padding after the terminator.
    pad = emd.bits_to_words(bits, CFG.word_bits)
    tail_bits = len(pad) * CFG.word_bits - len(bits)
    if tail_bits:
        pad[-1] |= 1 << (CFG.word_bits - 1)
        out.append(("dirty-padding", [{"data": w, "last": int(i == len(pad) - 1)} for i, w in enumerate(pad)]))
    for name, ws in out:  # the golden decoder must agree that each one is bad
        try:
            emd.decode([w["data"] for w in ws], FMT, CFG.word_bits)
        except emd.EmdFormatError:
            continue
        raise AssertionError(f"golden decoder accepted bad stream {name}")
    return out


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
    for name, ws in bad_streams(rng):
        source.send_all(ws)
        await source.wait_idle(timeout_cycles=20000)
        for _ in range(3 * CFG.beats_per_group + 20):
            await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.error.value) == 1, f"{name}: error flag not raised"
        await FallingEdge(dut.clk)
        # The next, valid stream must decode exactly (the decoder went back to idle).
        sink.received.clear()
        good = random_values(rng, 2 * CFG.fmt.group + CFG.lanes)
        source.send_all(words_of(good))
        try:
            await sink.wait_for(len(good) // CFG.lanes, timeout_cycles=20000)
        except AssertionError as exc:
            raise AssertionError(f"after {name}: {exc}") from None
        got = np.concatenate([[(b["data"] >> (16 * k)) & 0xFFFF for k in range(CFG.lanes)] for b in sink.received])
        assert np.array_equal(got.astype(np.uint16), good), f"after {name}: the next stream decoded wrongly"
        assert sink.received[-1]["last"] == 1, f"after {name}: no last on the final beat"
        for _ in range(10):
            await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.error.value) == 0, f"after {name}: error not cleared by the next stream"
        await FallingEdge(dut.clk)
    assert not sink.protocol_errors, sink.protocol_errors
