"""Tier 1: the sparse transposer in Amaranth's simulator against golden/transpose.py.

Quick checks of the tiny configuration (tile=4, lanes=2) with random input gaps and output
back-pressure, the error-recovery stream (the sticky ``error`` flag checked every cycle against
the golden model), the back-to-back throughput and the config checks.
The full stimulus runs on the generated Verilog in tests/test_transposer_cocotb.py.
"""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.codes import TransposerError
from golden.transpose import (Beat, beats_to_tiles, pack, stream_model, tile_to_beats, transpose_packed, unpack,
                              value_beats)
from hdl.config import ConfigError
from hdl.transposer import Transposer, TransposerConfig, tile_beat_layout
from tb.stimulus.transposer import malformed_stream, pattern_tiles, random_density_tile


def run_stream(cfg, beats, *, gap_prob=0.0, stall_prob=0.0, seed=0, max_cycles=100_000):
    """Drive ``beats`` into the DUT; return (golden result, output beats, status, out-last cycles).

    One testbench drives both ports each cycle and samples after both are set, because
    ``i.ready`` may depend on ``o.ready`` combinationally (a bank freed in the same cycle).
    Every cycle, ``error`` and ``err_code`` must equal the golden flag after the input beats
    taken so far; ``status`` counts the cycles with ``error`` set and the final ``err_count``.
    """
    dut = Transposer(cfg)
    layout = tile_beat_layout(cfg)
    expected = stream_model(beats, cfg.tile, cfg.lanes)
    n_out = len(expected.out_beats)
    got: list[Beat] = []
    lasts: list[int] = []
    status = {"error_cycles": 0, "count": 0}

    def check_error_flag(ctx, taken: int) -> None:
        want = expected.error_after[taken - 1] if taken else False
        error, code = ctx.get(dut.error), ctx.get(dut.err_code)
        assert error == want, f"error={error} after {taken} input beats, golden says {int(want)}"
        assert code == (TransposerError.MALFORMED if want else TransposerError.NONE), f"err_code={code}"
        status["error_cycles"] += error

    async def bench(ctx):
        rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
        k = 0                 # next input beat
        presenting = False
        pending = None
        for cycle in range(max_cycles):
            if not presenting and k < len(beats) and rng_in.random() >= gap_prob:
                b = beats[k]
                ctx.set(dut.i.p, layout.const(b.as_dict()))
                presenting = True
            ctx.set(dut.i.valid, int(presenting))
            ready_out = int(rng_out.random() >= stall_prob)
            ctx.set(dut.o.ready, ready_out)
            in_ready = ctx.get(dut.i.ready)
            valid = ctx.get(dut.o.valid)
            word = (ctx.get(dut.o.p.data), ctx.get(dut.o.p.first), ctx.get(dut.o.p.last))
            check_error_flag(ctx, k)
            if pending is not None:
                assert valid and word == pending, "output changed while valid and not ready"
            if valid and ready_out:
                got.append(Beat(*word))
                if word[2]:
                    lasts.append(cycle)
                pending = None
            elif valid:
                pending = word
            if presenting and in_ready:
                presenting = False
                k += 1
            await ctx.tick()
            if len(got) >= n_out and k == len(beats):
                ctx.set(dut.i.valid, 0)
                for _ in range(3):  # the flags hold once the input has stopped
                    check_error_flag(ctx, k)
                    await ctx.tick()
                status["count"] = ctx.get(dut.err_count)
                for _ in range(2 * cfg.tile):
                    assert not ctx.get(dut.o.valid), "spurious output beat"
                    await ctx.tick()
                return
        raise AssertionError(f"timeout: {len(got)} of {n_out} output beats, {k} of {len(beats)} input beats")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return expected, got, status, lasts


CFG = TransposerConfig.preset("tiny")


def test_patterns_with_gaps_and_backpressure():
    rng = np.random.default_rng(0)
    tiles = [pack(d) for group in pattern_tiles(CFG.tile, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, CFG.lanes)]
    expected, got, status, _ = run_stream(CFG, beats, gap_prob=0.3, stall_prob=0.3, seed=1)
    assert got == expected.out_beats
    out_tiles = beats_to_tiles(got, CFG.tile, CFG.lanes)
    assert len(out_tiles) == len(tiles)
    for t_in, t_out in zip(tiles, out_tiles):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
    assert status["count"] == 0 and status["error_cycles"] == 0


def test_malformed_tiles_flagged_and_recovered():
    rng = np.random.default_rng(2)
    beats = malformed_stream(CFG.tile, CFG.lanes, rng)
    expected, got, status, _ = run_stream(CFG, beats, gap_prob=0.2, stall_prob=0.2, seed=3)
    assert expected.errors == 12
    assert got == expected.out_beats
    assert status["count"] == expected.errors
    assert status["error_cycles"] > 0  # (each cycle's flag was compared with golden in run_stream)
    # The flag is sticky: it stays up over the beats that follow a fault, up to the next header.
    assert any(not b.first and up for b, up in zip(beats, expected.error_after))


def test_error_holds_until_the_next_header():
    """A stray value beat raises error; more stray beats and idle cycles keep it; a good
    header clears it; a header that cuts a tile short raises it again at once."""
    good = tile_to_beats(pack(np.eye(CFG.tile, dtype=np.uint16)), CFG.lanes)
    beats = good + [Beat(7, 0, 0), Beat(8, 0, 1)] + good + good[:2] + good
    expected, got, status, _ = run_stream(CFG, beats, gap_prob=0.5, seed=11)
    n = len(good)
    assert expected.error_after[n:n + 2] == [True, True]       # stray beats: raised and held
    assert not any(expected.error_after[n + 2:2 * n + 2])      # the next header clears it
    assert expected.error_after[2 * n + 4]                     # a header cutting a tile short
    assert got == expected.out_beats and status["count"] == 2


@pytest.mark.parametrize("buffers", [2, 3])
def test_back_to_back_throughput(buffers):
    cfg = CFG.replace(buffers=buffers)
    rng = np.random.default_rng(4)
    tiles = [pack(random_density_tile(rng, cfg.tile, 0.3)) for _ in range(60)]
    beats = [b for t in tiles for b in tile_to_beats(t, cfg.lanes)]
    expected, got, _, lasts = run_stream(cfg, beats)
    assert got == expected.out_beats
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


@pytest.mark.parametrize("tile,lanes,buffers", [(3, 1, 2), (5, 4, 3), (2, 4, 4), (6, 16, 2)])
def test_other_shapes(tile, lanes, buffers):
    """Odd tile sides, one lane, lanes = tile*tile, lanes > tile*tile/2, four banks: patterns
    and a malformed stream."""
    cfg = TransposerConfig(tile=tile, lanes=lanes, buffers=buffers)
    rng = np.random.default_rng(tile * 31 + lanes)
    tiles = [pack(d) for group in pattern_tiles(tile, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, lanes)] + malformed_stream(tile, lanes, rng, n_good=6)
    expected, got, status, _ = run_stream(cfg, beats, gap_prob=0.3, stall_prob=0.3, seed=tile)
    assert got == expected.out_beats
    assert status["count"] == expected.errors > 0
    for t_in, t_out in zip(tiles, beats_to_tiles(got, tile, lanes)):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
