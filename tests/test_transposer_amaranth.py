"""Tier 1: the sparse transposer in Amaranth's simulator against golden/transpose.py.

Quick checks of the tiny configuration (T=4, P=2) with random input gaps and output
back-pressure, the error-recovery stream, the back-to-back throughput and the config checks.
The full stimulus runs on the generated Verilog in tests/test_transposer_cocotb.py.
"""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.transpose import (Beat, beats_to_tiles, malformed_stream, pack, pattern_tiles, stream_model,
                              tile_to_beats, transpose_packed, unpack, value_beats)
from hdl.config import ConfigError
from hdl.transposer import SparseTransposer, TransposerConfig, tile_beat_layout


def run_stream(cfg, beats, *, gap_prob=0.0, stall_prob=0.0, seed=0, max_cycles=100_000):
    """Drive ``beats`` into the DUT; return (golden result, output beats, status, out-last cycles).

    One testbench drives both ports each cycle and samples after both are set, because
    ``i.ready`` may depend on ``o.ready`` combinationally (a bank freed in the same cycle).
    """
    dut = SparseTransposer(cfg)
    layout = tile_beat_layout(cfg)
    expected = stream_model(beats, cfg.T, cfg.P)
    n_out = len(expected.out_beats)
    got: list[Beat] = []
    lasts: list[int] = []
    status = {"pulses": 0, "count": 0}

    async def bench(ctx):
        rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
        k = 0                 # next input beat
        presenting = False
        pending = None
        for cycle in range(max_cycles):
            if not presenting and k < len(beats) and rng_in.random() >= gap_prob:
                b = beats[k]
                ctx.set(dut.i.p, layout.const({"data": b.data, "first": b.first, "last": b.last}))
                presenting = True
            ctx.set(dut.i.valid, int(presenting))
            ready_out = int(rng_out.random() >= stall_prob)
            ctx.set(dut.o.ready, ready_out)
            in_ready = ctx.get(dut.i.ready)
            valid = ctx.get(dut.o.valid)
            word = (ctx.get(dut.o.p.data), ctx.get(dut.o.p.first), ctx.get(dut.o.p.last))
            status["pulses"] += ctx.get(dut.err)
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
                for _ in range(3):  # let the error flags of the final input beats settle
                    status["pulses"] += ctx.get(dut.err)
                    await ctx.tick()
                status["count"] = ctx.get(dut.err_count)
                for _ in range(2 * cfg.T):
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
    tiles = [pack(d) for group in pattern_tiles(CFG.T, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, CFG.P)]
    expected, got, status, _ = run_stream(CFG, beats, gap_prob=0.3, stall_prob=0.3, seed=1)
    assert got == expected.out_beats
    out_tiles = beats_to_tiles(got, CFG.T, CFG.P)
    assert len(out_tiles) == len(tiles)
    for t_in, t_out in zip(tiles, out_tiles):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
    assert status["count"] == 0 and status["pulses"] == 0


def test_malformed_tiles_flagged_and_recovered():
    rng = np.random.default_rng(2)
    beats = malformed_stream(CFG.T, CFG.P, rng)
    expected, got, status, _ = run_stream(CFG, beats, gap_prob=0.2, stall_prob=0.2, seed=3)
    assert expected.errors == 12
    assert got == expected.out_beats
    assert status["count"] == expected.errors
    assert 0 < status["pulses"] <= expected.errors


@pytest.mark.parametrize("buffers", [2, 3])
def test_back_to_back_throughput(buffers):
    cfg = CFG.replace(buffers=buffers)
    rng = np.random.default_rng(4)
    nnz = rng.binomial(cfg.cells, 0.3, 60)
    tiles = [pack(d) for d in (np.where(rng.random((cfg.T, cfg.T)) < 0.3,
                                        rng.integers(1, 1 << 16, (cfg.T, cfg.T)), 0).astype(np.uint16)
                               for _ in nnz)]
    beats = [b for t in tiles for b in tile_to_beats(t, cfg.P)]
    expected, got, _, lasts = run_stream(cfg, beats)
    assert got == expected.out_beats
    bounds = [value_beats(t.nnz, cfg.P) for t in tiles]
    over = (lasts[-1] - lasts[0] - sum(bounds[1:])) / (len(tiles) - 1)
    assert over <= 2.0, f"{over:.2f} cycles per tile over ceil(nnz/P)"


def test_transpose_twice_is_identity():
    rng = np.random.default_rng(5)
    tiles = [pack(d) for d in pattern_tiles(CFG.T, rng, singles=False)["every_density"]]
    beats = [b for t in tiles for b in tile_to_beats(t, CFG.P)]
    _, once, _, _ = run_stream(CFG, beats, stall_prob=0.5, seed=6)
    _, twice, _, _ = run_stream(CFG, once, gap_prob=0.5, seed=7)
    assert beats_to_tiles(twice, CFG.T, CFG.P) == tiles
    assert [transpose_packed(t) for t in tiles] == beats_to_tiles(once, CFG.T, CFG.P)


@pytest.mark.parametrize("field,value,needle", [
    ("T", 1, "T=1 is not allowed; T must be an integer from 2 to 32"),
    ("T", 33, "T=33"),
    ("P", 3, "P=3 is not allowed; P must be a power of two"),
    ("P", 32, "P=32 is not allowed"),      # tiny: T*T = 16 lanes at most
    ("buffers", 1, "buffers=1 is not allowed; buffers must be an integer from 2 to 4"),
])
def test_config_errors_name_parameter_value_and_range(field, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("*", r"\*").replace("(", r"\(")):
        CFG.replace(**{field: value})


@pytest.mark.parametrize("T,P,buffers", [(3, 1, 2), (5, 4, 3), (2, 4, 4), (6, 16, 2)])
def test_other_shapes(T, P, buffers):
    """Odd tile edges, one lane, P = T*T, P > T*T/2, four banks: patterns and a malformed stream."""
    cfg = TransposerConfig(T=T, P=P, buffers=buffers)
    rng = np.random.default_rng(T * 31 + P)
    tiles = [pack(d) for group in pattern_tiles(T, rng).values() for d in group]
    beats = [b for t in tiles for b in tile_to_beats(t, P)] + malformed_stream(T, P, rng, n_good=6)
    expected, got, status, _ = run_stream(cfg, beats, gap_prob=0.3, stall_prob=0.3, seed=T)
    assert got == expected.out_beats
    assert status["count"] == expected.errors > 0
    for t_in, t_out in zip(tiles, beats_to_tiles(got, T, P)):
        assert np.array_equal(unpack(t_out), unpack(t_in).T)
