"""Tier 1: EMD encoder and decoder in Amaranth's simulator against ``golden.emd`` (quick checks)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import emd
from golden.codes import EmdDecoderError
from hdl.config import ConfigError
from hdl.emd import EmdDecoder, EmdDecoderConfig, EmdEncoder, EmdEncoderConfig, lanes_layout
from tb.stimulus.emd import damaged_streams, mixed_values


def _sim_stream(dut, inputs, n_out, *, gap: float, stall: float, seed: int, max_cycles: int, error=None,
                settle: int = 0):
    """Push ``inputs`` (list of (data, last)) into ``dut.i``, collect ``dut.o`` beats.

    Random input gaps and output back-pressure; returns (outputs, cycles, error samples).
    """
    rng = random.Random(seed)
    got, errors = [], []
    state = {"cycles": 0, "held": 0}
    in_bits = len(dut.i.payload.as_value()) - 1
    out_bits = len(dut.o.payload.as_value()) - 1

    async def bench(ctx):
        left = settle
        pending = list(inputs)
        holding = None
        for cycle in range(max_cycles):
            if holding is None and pending and rng.random() >= gap:
                holding = pending.pop(0)
            ctx.set(dut.i.valid, holding is not None)
            if holding is not None:
                ctx.set(dut.i.payload.as_value(), holding[0] | (holding[1] << in_bits))
            ctx.set(dut.o.ready, rng.random() >= stall)
            in_fire = holding is not None and ctx.get(dut.i.ready)
            if holding is not None and not in_fire:
                state["held"] += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                word = ctx.get(dut.o.payload.as_value())
                got.append((word & ((1 << out_bits) - 1), word >> out_bits))
            if error is not None:
                errors.append(ctx.get(error))
            await ctx.tick()
            if in_fire:
                holding = None
            state["cycles"] = cycle
            if len(got) >= n_out:
                left -= 1
                if left < 0:
                    break
        state["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, state, errors


def _beats(values, lanes):
    """(data, last) pairs of lane beats, packed through the lanes layout."""
    layout = lanes_layout(lanes)
    v = np.asarray(values, dtype=np.uint16).reshape(-1, lanes)
    return [(layout.const({"data": [int(x) for x in row]}).data.as_bits(), int(k == len(v) - 1))
            for k, row in enumerate(v)]


CONFIGS = {
    "tiny": EmdEncoderConfig.preset("tiny"),
    "default": EmdEncoderConfig.preset("default"),
    "simple-l1": EmdEncoderConfig.preset("simple", lanes=1, word_bits=16, fmt={"group": 8}),
    "paper": EmdEncoderConfig.preset("paper"),
    # The ends of the format's group range (golden.emd.EmdFormat declares it; the hardware
    # takes all of it).
    "g2-l1": EmdEncoderConfig.preset("tiny", lanes=1, word_bits=16, fmt={"group": 2}),
    "g256": EmdEncoderConfig.preset("paper", fmt={"group": 256}),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_encoder_matches_golden(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(5)
    streams = [mixed_values(rng, cfg.fmt.group * 5 + cfg.lanes * 3), np.zeros(cfg.fmt.group, np.uint16),
               np.arange(cfg.lanes, dtype=np.uint16) | 0x7F80]
    inputs, expect = [], []
    for s in streams:
        inputs += _beats(s, cfg.lanes)
        words = emd.encode(s, cfg.fmt, cfg.word_bits)
        expect += [(w, int(k == len(words) - 1)) for k, w in enumerate(words)]
    got, cycles, _ = _sim_stream(EmdEncoder(cfg), inputs, len(expect), gap=0.2, stall=0.3, seed=1, max_cycles=20000)
    assert got == expect


@pytest.mark.parametrize("name", list(CONFIGS))
def test_decoder_round_trip(name):
    cfg = EmdDecoderConfig.from_dict({**CONFIGS[name].to_dict(), "block": "emd_dec"})
    rng = np.random.default_rng(6)
    streams = [mixed_values(rng, cfg.fmt.group * 5 + cfg.lanes * 3), np.zeros(cfg.fmt.group, np.uint16),
               np.arange(cfg.lanes, dtype=np.uint16) | 0x7F80]
    inputs, expect = [], []
    for s in streams:
        words = emd.encode(s, cfg.fmt, cfg.word_bits)
        inputs += [(w, int(k == len(words) - 1)) for k, w in enumerate(words)]
        expect += _beats(s, cfg.lanes)
    dut = EmdDecoder(cfg)
    got, cycles, errors = _sim_stream(dut, inputs, len(expect), gap=0.2, stall=0.3, seed=2, max_cycles=20000, error=dut.error)
    assert not any(errors)
    assert got == expect


def test_full_throughput():
    """No gaps, no back-pressure, compressible data: the encoder takes one beat per cycle."""
    cfg = EmdEncoderConfig.preset("default")
    rng = np.random.default_rng(7)
    from golden.bf16 import f32_to_bf16
    values = f32_to_bf16(rng.normal(0, 0.05, cfg.fmt.group * 16))
    beats = _beats(values, cfg.lanes)
    got, cycles, _ = _sim_stream(EmdEncoder(cfg), beats, -(-emd.encoded_bits(values, cfg.fmt) // cfg.word_bits), gap=0, stall=0, seed=3, max_cycles=5000)
    assert [w for w, _ in got] == emd.encode(values, cfg.fmt, cfg.word_bits)
    assert cycles["held"] == 0, f"the encoder refused a beat {cycles['held']} times"


def test_bad_config_message():
    with pytest.raises(ConfigError, match="group=12 is not allowed"):
        EmdEncoderConfig.preset("default", fmt={"group": 12})
    with pytest.raises(ConfigError, match="lanes=8 is not allowed; lanes must be at most fmt.group=4"):
        EmdEncoderConfig.preset("default", lanes=8, fmt={"group": 4})


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_decoder_fuzz_agrees_with_golden_and_never_hangs(preset):
    """Damaged streams (bit flips, cuts, extra words, random words): the decoder takes every
    word, flags ``error`` exactly when the golden decoder (told the beat width) rejects the
    stream, with the golden decoder's cause on ``err_code``, and otherwise decodes it exactly."""
    cfg = EmdDecoderConfig.preset(preset)
    fmt, W, L = cfg.fmt, cfg.word_bits, cfg.lanes
    cases = []
    for words in damaged_streams(np.random.default_rng(11), fmt, W, L, 200):
        try:
            expect, code = emd.decode(words, fmt, W, lanes=L), EmdDecoderError.NONE
        except emd.EmdFormatError as exc:
            expect, code = None, exc.code
        cases.append((words, code, expect))

    dut = EmdDecoder(cfg)
    idle = 3 * cfg.beats_per_group + 30
    results = []

    async def bench(ctx):
        for words, bad, expect in cases:
            got = []
            for i, w in enumerate(words):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), w | (int(i == len(words) - 1) << W))
                for _ in range(200):
                    ctx.set(dut.o.ready, 1)
                    if ctx.get(dut.o.valid):
                        got.append(ctx.get(dut.o.payload.as_value()))
                    taken = ctx.get(dut.i.ready)
                    await ctx.tick()
                    if taken:
                        break
                else:
                    results.append(("hang", words))
                    return
            ctx.set(dut.i.valid, 0)
            for _ in range(idle):
                if ctx.get(dut.o.valid):
                    got.append(ctx.get(dut.o.payload.as_value()))
                await ctx.tick()
            results.append((ctx.get(dut.error), ctx.get(dut.err_code), got))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == len(cases), f"decoder stopped taking words: {results[-1]}"
    codes = [code for _, code, _ in cases]
    assert 40 < sum(code != EmdDecoderError.NONE for code in codes) < 160, "the fuzz cases should mix good and bad streams"
    assert len(set(codes)) >= 5, f"the fuzz cases should reach most causes, got {sorted(set(codes))}"
    for n, ((words, code, expect), (error, err_code, got)) in enumerate(zip(cases, results)):
        assert (error, EmdDecoderError(err_code)) == (int(code != EmdDecoderError.NONE), code), \
            f"case {n}: error={error} err_code={EmdDecoderError(err_code).name}, golden says {code.name}; words {words}"
        if code == EmdDecoderError.NONE:
            beats = _beats(expect, L) if len(expect) else []
            got_beats = [(v.data.as_bits(), int(v.last)) for v in map(lanes_layout(L).from_bits, got)]
            assert got_beats == beats, f"case {n}: wrong values"
