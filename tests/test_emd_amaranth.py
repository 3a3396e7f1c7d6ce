"""Tier 1: EMD encoder and decoder in Amaranth's simulator against ``golden.emd`` (quick checks).

Every stream runs on :class:`tb.amsim.StreamBench`: beats are ``lanes_layout``/``words_layout``
values packed by the harness's codec, outputs are compared with golden through a scoreboard.
"""

import numpy as np
import pytest

from golden import emd
from golden.bf16 import f32_to_bf16
from golden.codes import EmdDecoderError
from hdl.config import ConfigError
from hdl.emd import EmdDecoder, EmdDecoderConfig, EmdEncoder, EmdEncoderConfig
from tb.amsim import PayloadCodec, Scoreboard, StreamBench, StreamSink, StreamSource
from tb.stimulus.emd import damaged_streams, mixed_values


def _lane_beats(values, lanes: int) -> list[dict]:
    """Uncompressed beats of ``values``: ``lanes_layout`` values, ``last`` on the final one."""
    rows = np.asarray(values, dtype=np.uint16).reshape(-1, lanes)
    return [{"data": [int(x) for x in row], "last": int(k == len(rows) - 1)} for k, row in enumerate(rows)]


def _word_beats(words) -> list[dict]:
    """Compressed beats of ``words``: ``words_layout`` values, ``last`` on the final one."""
    return [{"data": int(w), "last": int(k == len(words) - 1)} for k, w in enumerate(words)]


def _lanes_codec(dut) -> PayloadCodec:
    """The decoder's output beats with ``data`` as a list of lanes, as :func:`_lane_beats` gives them."""
    return PayloadCodec(dut.o.payload.shape(), nested=True)


def _run(dut, inputs, expect, *, gap: float, stall: float, seed: int, max_cycles: int, codec=None, watch=()):
    """Stream ``inputs`` into ``dut.i`` with random gaps, check the ``dut.o`` beats against
    ``expect`` under random back-pressure (10 more cycles catch extra beats).

    Returns the per-cycle samples of each signal in ``watch``.
    """
    bench = StreamBench(dut, seed=seed, max_cycles=max_cycles)
    samples = [bench.watch(signal) for signal in watch]
    board = Scoreboard(f"{type(dut).__name__}.o")
    source = StreamSource(bench, "i", gap_prob=gap)
    sink = StreamSink(bench, "o", codec, stall_prob=stall, callback=board.receive, count=len(expect))
    source.send_all(inputs)
    board.expect_all(expect)
    bench.run(settle=10)
    board.check_done(sink)
    return samples


CONFIGS = {
    "tiny": EmdEncoderConfig.preset("tiny"),
    "default": EmdEncoderConfig.preset("default"),
    "simple-l1": EmdEncoderConfig.preset("simple", lanes=1, word_bits=16, fmt={"group": 8}),
    "paper-p0": EmdEncoderConfig.preset("paper", pipeline=0),
    # The ends of the format's group range (golden.emd.EmdFormat declares it; the hardware
    # takes all of it).
    "g2-l1": EmdEncoderConfig.preset("tiny", lanes=1, word_bits=16, fmt={"group": 2}),
    "g256": EmdEncoderConfig.preset("paper", fmt={"group": 256}, pipeline=0),
    # The optional CRC field: 16 bits on tiny, 32 bits on default, and a 32-bit CRC longer than
    # any beat's chunk (lanes 1, D 3: 30 bits), so the chunk width comes from the CRC.
    "tiny-crc16": EmdEncoderConfig.preset("tiny", fmt={"crc_bits": 16}),
    "default-crc32": EmdEncoderConfig.preset("default", fmt={"crc_bits": 32}),
    "simple-l1-crc32": EmdEncoderConfig.preset("simple", lanes=1, word_bits=16, fmt={"group": 8, "crc_bits": 32}),
    # The pipelined codecs (``pipeline=1``): two lanes, one lane with a dense-only format, the
    # CRC field.
    "tiny-p1": EmdEncoderConfig.preset("tiny", pipeline=1),
    "simple-l1-p1": EmdEncoderConfig.preset("simple", lanes=1, word_bits=16, fmt={"group": 8}, pipeline=1),
    "tiny-crc16-p1": EmdEncoderConfig.preset("tiny", fmt={"crc_bits": 16}, pipeline=1),
}
# The `paper` preset (16 lanes, pipeline=1) here for the encoder only: the pipelined 16-lane
# decoder is ~25k gates of one-hot chain, over 2 minutes in this simulator; Verilator runs it
# (tests/test_emd_cocotb.py).
ENCODER_CONFIGS = {**CONFIGS, "paper": EmdEncoderConfig.preset("paper")}


def _streams(cfg, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [mixed_values(rng, cfg.fmt.group * 5 + cfg.lanes * 3), np.zeros(cfg.fmt.group, np.uint16),
            np.arange(cfg.lanes, dtype=np.uint16) | 0x7F80]


@pytest.mark.parametrize("name", list(ENCODER_CONFIGS))
def test_encoder_matches_golden(name):
    cfg = ENCODER_CONFIGS[name]
    inputs, expect = [], []
    for s in _streams(cfg, 5):
        inputs += _lane_beats(s, cfg.lanes)
        expect += _word_beats(emd.encode(s, cfg.fmt, cfg.word_bits))
    _run(EmdEncoder(cfg), inputs, expect, gap=0.2, stall=0.3, seed=1, max_cycles=20000)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_decoder_round_trip(name):
    cfg = EmdDecoderConfig.from_dict({**CONFIGS[name].to_dict(), "block": "emd_dec"})
    inputs, expect = [], []
    for s in _streams(cfg, 6):
        inputs += _word_beats(emd.encode(s, cfg.fmt, cfg.word_bits))
        expect += _lane_beats(s, cfg.lanes)
    dut = EmdDecoder(cfg)
    errors, = _run(dut, inputs, expect, gap=0.2, stall=0.3, seed=2, max_cycles=20000, codec=_lanes_codec(dut),
                   watch=[dut.error])
    assert not any(errors)


@pytest.mark.parametrize("pipeline", [0, 1])
def test_full_throughput(pipeline):
    """No gaps, no back-pressure, compressible data: the encoder takes one beat per cycle."""
    cfg = EmdEncoderConfig.preset("default", pipeline=pipeline)
    rng = np.random.default_rng(7)
    values = f32_to_bf16(rng.normal(0, 0.05, cfg.fmt.group * 16))
    dut = EmdEncoder(cfg)
    valid, ready = _run(dut, _lane_beats(values, cfg.lanes), _word_beats(emd.encode(values, cfg.fmt, cfg.word_bits)),
                        gap=0, stall=0, seed=3, max_cycles=5000, watch=[dut.i.valid, dut.i.ready])
    held = sum(v and not r for v, r in zip(valid, ready))
    assert held == 0, f"the encoder refused a beat {held} times"


def test_bad_config_message():
    with pytest.raises(ConfigError, match="group=12 is not allowed"):
        EmdEncoderConfig.preset("default", fmt={"group": 12})
    with pytest.raises(ConfigError, match="lanes=8 is not allowed; lanes must be at most fmt.group=4"):
        EmdEncoderConfig.preset("default", lanes=8, fmt={"group": 4})


@pytest.mark.parametrize("preset,crc_bits,pipeline", [("tiny", 0, 0), ("default", 0, 0), ("tiny", 16, 0),
                                                      ("tiny", 0, 1), ("tiny", 16, 1)],
                         ids=["tiny", "default", "tiny-crc16", "tiny-p1", "tiny-crc16-p1"])
def test_decoder_fuzz_agrees_with_golden_and_never_hangs(preset, crc_bits, pipeline):
    """Damaged streams (bit flips, cuts, extra words, random words): the decoder takes every
    word, flags ``error`` exactly when the golden decoder (told the beat width) rejects the
    stream, with the golden decoder's cause on ``err_code``, and otherwise decodes it exactly.

    The streams go in back to back without gaps, each followed by ``idle`` cycles without input;
    ``error`` and ``err_code`` (registers) are read in the last of them.
    """
    cfg = EmdDecoderConfig.preset(preset, fmt={"crc_bits": crc_bits}, pipeline=pipeline)
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
    patience = 200  # cycles a word may wait before the decoder counts as hung
    bench = StreamBench(dut, max_cycles=sum(patience * len(words) + idle + 1 for words, _, _ in cases))
    source = StreamSource(bench, "i")
    outputs = [[]]  # the output beats of each case so far
    StreamSink(bench, "o", _lanes_codec(dut), callback=lambda beat: outputs[-1].append(beat))
    results = []
    case = {"start": 0, "last_taken": None}

    def next_case_when_idle(ctx, cycle):
        words = cases[len(results)][0]
        if not source.idle:
            assert cycle - case["start"] < patience * len(words), \
                f"case {len(results)}: the decoder stopped taking words: {source.status()}"
            return
        if case["last_taken"] is None:
            case["last_taken"] = cycle
        if cycle - case["last_taken"] < idle:
            return
        results.append((ctx.get(dut.error), ctx.get(dut.err_code), outputs[-1]))
        if len(results) < len(cases):
            outputs.append([])
            source.send_all(_word_beats(cases[len(results)][0]))
            case.update(start=cycle + 1, last_taken=None)

    source.send_all(_word_beats(cases[0][0]))
    bench.on_cycle(next_case_when_idle)
    bench.run(until=lambda: len(results) == len(cases))
    codes = [code for _, code, _ in cases]
    # One in five streams is intact; with a CRC every damaged one is flagged.
    assert 40 < sum(code != EmdDecoderError.NONE for code in codes) <= 160, "the fuzz cases should mix good and bad streams"
    assert len(set(codes)) >= 5, f"the fuzz cases should reach most causes, got {sorted(set(codes))}"
    assert (EmdDecoderError.CRC in codes) == bool(crc_bits), "bit flips that decode must fail the CRC, and only with one"
    for n, ((words, code, expect), (error, err_code, got)) in enumerate(zip(cases, results)):
        assert (error, EmdDecoderError(err_code)) == (int(code != EmdDecoderError.NONE), code), \
            f"case {n}: error={error} err_code={EmdDecoderError(err_code).name}, golden says {code.name}; words {words}"
        if code == EmdDecoderError.NONE:
            assert got == (_lane_beats(expect, L) if len(expect) else []), f"case {n}: wrong values"


def test_pipelined_decoder_verilog_grows_about_linearly_with_lanes(tmp_path):
    """The pipelined decoder's record chain is vector operations (docs/emd.md, "Pipelining"):
    the Verilog grows with the lanes, not with lanes x window positions, so the 16-lane `paper`
    decoder stays small enough for Verilator (it was 384k lines written position by position)."""
    from flows.generate import generate_verilog

    lines = {preset: len(generate_verilog(EmdDecoderConfig.preset(preset, pipeline=1), tmp_path / preset)
                         .read_text().splitlines()) for preset in ("tiny", "paper")}
    assert lines["paper"] < 30_000, lines
    assert lines["paper"] < 12 * lines["tiny"], lines  # 8x the lanes, 4x the word: not 150x the lines


@pytest.mark.parametrize("fmt", [emd.SIMPLE, emd.DEFAULT,
                                 emd.EmdFormat(group=8, delta_bits=5, hi=30, escape_bits=4, sparse=True),
                                 emd.EmdFormat(group=64, delta_bits=2, hi=0, escape_bits=0, sparse=True)],
                         ids=lambda f: f.label())
def test_record_chain_longest_length_is_max_record_bits(fmt):
    """The pipelined decoder sizes its chain vectors by ``fmt.max_record_bits`` (the longest record
    the golden format allows); the chain's own record lengths must top out exactly there, and the
    shortest is the 1-bit zero of a sparse group (2 bits with the signed zero mode)."""
    from amaranth.hdl import Const

    from hdl.emd import _record_lengths

    lengths = set(_record_lengths(fmt, lambda i: Const(0, 1), Const(0, 1), Const(0, 2)))
    D, E, s = fmt.delta_bits, fmt.escape_bits, int(fmt.sparse)
    raw = {D + E + 16, D + E + 16 + s}
    assert max(lengths) == fmt.max_record_bits == D + E + 16 + s
    assert raw <= lengths and ({1, 2} <= lengths) == fmt.sparse
