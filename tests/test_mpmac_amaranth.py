"""Tier 1: the mixed-precision MAC in Amaranth's simulator against golden/mpmac.py.

Every precision pair on the tiny runtime-precision instance with random input gaps and output
back-pressure, dedicated (fixed-precision) instances, the malformed-beat stream with the sticky
``error``/``err_code`` checked every cycle, and the full-rate cycle count. :func:`run_stream`
compares every result with ``golden.mpmac.stream_model``, whatever else a test checks. The
same stimulus runs on the generated Verilog in tests/test_mpmac_cocotb.py.
"""

import random

import pytest

from golden.codes import MpMacError
from golden.mpmac import Beat, acc_bits_for, dot_beats, dot_cycles, stream_model
from hdl.config import ConfigError
from hdl.mpmac import MpMac, MpMacConfig
from tb.amsim import Scoreboard, StreamBench, StreamSink, StreamSource
from tb.stimulus.mpmac import longest_dots, malformed_stream, pair_dots

TINY = MpMacConfig.preset("tiny")


def run_stream(cfg: MpMacConfig, beats: list[Beat], *, gap_prob=0.0, stall_prob=0.0, seed=0):
    """Drive ``beats`` into an MpMac (random gaps and stalls) and check it against the golden
    stream model: every result (scoreboard), and every cycle ``error``/``err_code`` against the
    golden flag after the beats taken in earlier cycles. Returns (golden result, cycles of the
    input transfers, cycles of the output transfers, final ``err_count``)."""
    dut = MpMac(cfg)
    expected = stream_model(cfg, beats)
    bench = StreamBench(dut, seed=seed, max_cycles=50 * sum(b.a_bits + 2 for b in beats) + 200)
    board = Scoreboard("mpmac.o")
    mask = (1 << cfg.acc_bits) - 1
    out_cycles: list[int] = []

    def receive(payload: dict) -> None:
        board.receive(payload)
        out_cycles.append(bench.cycles)

    source = StreamSource(bench, "i", gap_prob=gap_prob)
    sink = StreamSink(bench, "o", stall_prob=stall_prob, callback=receive, count=len(expected.results))
    source.send_all(b.as_dict() for b in beats)
    board.expect_all({"value": v & mask} for v in expected.results)
    err_count = bench.watch(dut.err_count)
    in_cycles: list[int] = []
    before = {"taken": 0}

    def check_flags(ctx, cycle: int) -> None:
        taken = before["taken"]
        want = expected.error_after[taken - 1] if taken else False
        code_want = expected.code_after[taken - 1] if taken else MpMacError.NONE
        error, code = ctx.get(dut.error), ctx.get(dut.err_code)
        assert (error, code) == (int(want), code_want), \
            f"cycle {cycle}, after {taken} input beats: error={error} err_code={code!r}, golden {int(want)} {code_want!r}"
        in_cycles.extend([cycle] * (source.sent - taken))
        before["taken"] = source.sent

    bench.on_cycle(check_flags)
    bench.run(settle=12)
    board.check_done(sink)
    return expected, in_cycles, out_cycles, err_count[-1]


def test_every_precision_pair_with_gaps_and_backpressure():
    beats = pair_dots(TINY, random.Random(1), per_pair=1) + longest_dots(TINY)
    expected, _, out, dropped = run_stream(TINY, beats, gap_prob=0.3, stall_prob=0.3, seed=2)
    assert len(out) == 64 * 2 * 2 + 2 and dropped == 0


@pytest.mark.parametrize("w_bits,a_bits", [(1, 1), (8, 8), (3, 6), (7, 2)])
def test_dedicated_instances(w_bits, a_bits):
    """A MAC built for exactly one pair (the configurations bench/mpmac_area.py synthesizes)."""
    cfg = MpMacConfig(lanes=3, max_w_bits=w_bits, max_a_bits=a_bits, runtime_precision=False,
                      acc_bits=acc_bits_for(3, w_bits, a_bits, 4))
    beats = pair_dots(cfg, random.Random(w_bits * 8 + a_bits), per_pair=3) + longest_dots(cfg)
    run_stream(cfg, beats, gap_prob=0.2, stall_prob=0.4, seed=3)


@pytest.mark.parametrize("cfg", [TINY, MpMacConfig(lanes=2, max_w_bits=3, max_a_bits=5, acc_bits=10, runtime_precision=False)],
                         ids=["tiny", "fixed-3x5"])
def test_malformed_beats_flagged_and_recovered(cfg):
    beats = malformed_stream(cfg, random.Random(4))
    expected, _, _, dropped = run_stream(cfg, beats, gap_prob=0.25, stall_prob=0.3, seed=5)
    assert dropped == expected.errors > 0
    codes = {code for _, code in expected.rejected}
    assert MpMacError.BITS in codes and MpMacError.MIXED in codes and MpMacError.LENGTH in codes


def test_full_rate_cycle_count():
    """Back to back, a dot product of n beats of a bits takes n * a cycles (golden.mpmac.dot_cycles),
    and its result is offered one cycle after its last bit."""
    rng = random.Random(6)
    dots = []
    for a_bits, n in [(1, 1), (1, 3), (8, 1), (5, 2), (2, 4), (8, 4), (3, 1)]:
        ws = [rng.randint(-8, 7) for _ in range(n * TINY.lanes)]
        xs = [rng.randint(0, (1 << a_bits) - 1) for _ in range(n * TINY.lanes)]
        dots.append(dot_beats(ws, xs, 4, a_bits, False, TINY.lanes))
    beats = [b for d in dots for b in d]
    _, ins, outs, _ = run_stream(TINY, beats)
    start = ins[0]
    for d, out_cycle in zip(dots, outs):
        start_of_next = start + dot_cycles(d[0].a_bits, len(d))
        assert out_cycle == start_of_next + 1, (d[0].a_bits, len(d), start, out_cycle)
        start = start_of_next
    # the beats themselves are taken every a_bits cycles
    assert [b - a for a, b in zip(ins, ins[1:])] == [b.a_bits for b in beats[:-1]]


def test_backpressure_holds_results_and_stops_input():
    """With the sink stalled for long stretches nothing is lost and i.ready falls."""
    beats = [b for _ in range(6) for b in dot_beats([1, -2, 3, -4], [1, 1, 0, 1], 3, 1, False, TINY.lanes)]
    run_stream(TINY, beats, stall_prob=0.9, seed=7)


def test_config_messages():
    with pytest.raises(ConfigError, match=r"^mpmac: acc_bits=12 is not allowed; acc_bits must be an integer from 18 to 48"):
        MpMacConfig(lanes=4, acc_bits=12)
    with pytest.raises(ConfigError, match=r"mpmac: lanes=0 is not allowed; lanes must be an integer from 1 to 64"):
        MpMacConfig(lanes=0)
    with pytest.raises(ConfigError, match=r"max_a_bits=0 is not allowed"):
        MpMacConfig(max_a_bits=0)
    assert TINY.max_beats == 4 and MpMacConfig.preset("paper").lanes == 16
