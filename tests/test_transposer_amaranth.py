"""Tier 1: the sparse transposer in Amaranth's simulator against golden/transpose.py.

Quick checks of the tiny configuration (tile=4, lanes=2) with random input gaps and output
back-pressure, the error-recovery stream (the sticky ``error`` flag checked every cycle against
the golden model), the back-to-back throughput and the config checks. :func:`run_stream`
compares every output beat with the golden model, whatever else a test checks.
The full stimulus runs on the generated Verilog in tests/test_transposer_cocotb.py.
"""

import numpy as np
import pytest

from golden.codes import TransposerError
from golden.transpose import (Beat, beats_to_tiles, pack, stream_model, tile_to_beats, transpose_packed, unpack,
                              value_beats)
from hdl.config import ConfigError
from hdl.transposer import Transposer, TransposerConfig
from tb.amsim import Scoreboard, StreamBench, StreamSink, StreamSource
from tb.stimulus.transposer import malformed_stream, pattern_tiles, random_density_tile


def run_stream(cfg, beats, *, gap_prob=0.0, stall_prob=0.0, seed=0):
    """Drive ``beats`` into a Transposer on a :class:`StreamBench` (random input gaps, output
    back-pressure) and check it against ``golden.transpose.stream_model``.

    Every output beat is compared with golden (scoreboard). Every cycle, ``error`` and
    ``err_code`` must equal the golden flag after the input beats taken in earlier cycles; the
    run goes on ``2 * tile + 3`` cycles after the last beat, where the flags must hold and no
    output beat may appear. Returns (golden result, output beats, status, cycles of the output
    ``last`` beats); ``status`` counts the cycles with ``error`` set and the final ``err_count``.
    """
    dut = Transposer(cfg)
    expected = stream_model(beats, cfg.tile, cfg.lanes)
    bench = StreamBench(dut, seed=seed)
    board = Scoreboard("transposer.o")
    got: list[Beat] = []
    lasts: list[int] = []

    def receive(payload: dict) -> None:
        got.append(Beat(**payload))
        board.receive(got[-1])
        if payload["last"]:
            lasts.append(bench.cycles)

    source = StreamSource(bench, "i", gap_prob=gap_prob)
    sink = StreamSink(bench, "o", stall_prob=stall_prob, callback=receive, count=len(expected.out_beats))
    source.send_all(b.as_dict() for b in beats)
    board.expect_all(expected.out_beats)
    err_count = bench.watch(dut.err_count)
    status = {"error_cycles": 0}
    before = {"taken": 0, "received": 0}  # counts at the end of the previous cycle

    def check_flags(ctx, cycle: int) -> None:
        taken = before["taken"]
        want = expected.error_after[taken - 1] if taken else False
        error, code = ctx.get(dut.error), ctx.get(dut.err_code)
        assert error == want, f"error={error} in cycle {cycle} after {taken} input beats, golden says {int(want)}"
        assert code == (TransposerError.MALFORMED if want else TransposerError.NONE), f"err_code={code}"
        assert before["received"] < len(expected.out_beats) or not ctx.get(dut.o.valid), \
            f"spurious output beat in cycle {cycle}"
        status["error_cycles"] += error
        before.update(taken=source.sent, received=len(got))

    bench.on_cycle(check_flags)
    bench.run(settle=2 * cfg.tile + 3)
    board.check_done(sink)
    status["count"] = err_count[-1]
    return expected, got, status, lasts


CFG = TransposerConfig.preset("tiny")


def test_patterns_with_gaps_and_backpressure():
    rng = np.random.default_rng(0)
    tiles = [pack(d) for group in pattern_tiles(CFG.tile, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, CFG.lanes)]
    _, got, status, _ = run_stream(CFG, beats, gap_prob=0.3, stall_prob=0.3, seed=1)
    out_tiles = beats_to_tiles(got, CFG.tile, CFG.lanes)
    assert len(out_tiles) == len(tiles)
    for t_in, t_out in zip(tiles, out_tiles):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
    assert status["count"] == 0 and status["error_cycles"] == 0


def test_malformed_tiles_flagged_and_recovered():
    rng = np.random.default_rng(2)
    beats = malformed_stream(CFG.tile, CFG.lanes, rng)
    expected, _, status, _ = run_stream(CFG, beats, gap_prob=0.2, stall_prob=0.2, seed=3)
    assert expected.errors == 12
    assert status["count"] == expected.errors
    assert status["error_cycles"] > 0  # (each cycle's flag was compared with golden in run_stream)
    # The flag is sticky: it stays up over the beats that follow a fault, up to the next header.
    assert any(not b.first and up for b, up in zip(beats, expected.error_after))


def test_error_holds_until_the_next_header():
    """A stray value beat raises error; more stray beats and idle cycles keep it; a good
    header clears it; a header that cuts a tile short raises it again at once."""
    good = tile_to_beats(pack(np.eye(CFG.tile, dtype=np.uint16)), CFG.lanes)
    beats = good + [Beat(7, 0, 0), Beat(8, 0, 1)] + good + good[:2] + good
    expected, _, status, _ = run_stream(CFG, beats, gap_prob=0.5, seed=11)
    n = len(good)
    assert expected.error_after[n:n + 2] == [True, True]       # stray beats: raised and held
    assert not any(expected.error_after[n + 2:2 * n + 2])      # the next header clears it
    assert expected.error_after[2 * n + 4]                     # a header cutting a tile short
    assert status["count"] == 2


@pytest.mark.parametrize("buffers", [2, 3])
def test_back_to_back_throughput(buffers):
    cfg = CFG.replace(buffers=buffers)
    rng = np.random.default_rng(4)
    tiles = [pack(random_density_tile(rng, cfg.tile, 0.3)) for _ in range(60)]
    beats = [b for t in tiles for b in tile_to_beats(t, cfg.lanes)]
    _, _, _, lasts = run_stream(cfg, beats)
    bounds = [value_beats(t.nnz, cfg.lanes) for t in tiles]
    over = (lasts[-1] - lasts[0] - sum(bounds[1:])) / (len(tiles) - 1)
    assert over <= 2.0, f"{over:.2f} cycles per tile over ceil(nnz/lanes)"


def test_transpose_twice_is_identity():
    rng = np.random.default_rng(5)
    tiles = [pack(d) for d in pattern_tiles(CFG.tile, rng, singles=False)["every_density"]]
    beats = [b for t in tiles for b in tile_to_beats(t, CFG.lanes)]
    _, once, _, _ = run_stream(CFG, beats, stall_prob=0.5, seed=6)
    _, twice, _, _ = run_stream(CFG, once, gap_prob=0.5, seed=7)
    assert beats_to_tiles(twice, CFG.tile, CFG.lanes) == tiles
    assert [transpose_packed(t) for t in tiles] == beats_to_tiles(once, CFG.tile, CFG.lanes)


@pytest.mark.parametrize("field,value,needle", [
    ("tile", 1, "tile=1 is not allowed; tile must be an integer from 2 to 32"),
    ("tile", 33, "tile=33"),
    ("lanes", 3, "lanes=3 is not allowed; lanes must be a power of two"),
    ("lanes", 32, "lanes=32 is not allowed; lanes must be a power of two from 1 to 16"),  # tiny: tile*tile
    ("buffers", 1, "buffers=1 is not allowed; buffers must be an integer from 2 to 4"),
])
def test_config_errors_name_parameter_value_and_range(field, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("*", r"\*").replace("(", r"\(")):
        CFG.replace(**{field: value})


@pytest.mark.parametrize("tile,lanes,buffers,rank_registers", [
    (3, 1, 2, True), (5, 4, 3, True), (2, 4, 4, True), (6, 16, 2, True), (5, 4, 3, False), (2, 4, 4, False)])
def test_other_shapes(tile, lanes, buffers, rank_registers):
    """Odd tile sides, one lane, lanes = tile*tile, lanes > tile*tile/2, four banks, rank
    bases registered or not: patterns and a malformed stream."""
    cfg = TransposerConfig(tile=tile, lanes=lanes, buffers=buffers, rank_registers=rank_registers)
    rng = np.random.default_rng(tile * 31 + lanes)
    tiles = [pack(d) for group in pattern_tiles(tile, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, lanes)] + malformed_stream(tile, lanes, rng, n_good=6)
    expected, got, status, _ = run_stream(cfg, beats, gap_prob=0.3, stall_prob=0.3, seed=tile)
    assert status["count"] == expected.errors > 0
    for t_in, t_out in zip(tiles, beats_to_tiles(got, tile, lanes)):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
