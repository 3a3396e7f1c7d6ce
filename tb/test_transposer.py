"""cocotb tests of the sparse weight transposer (``hdl.transposer.Transposer``).

Every output beat is compared bit for bit with ``golden.transpose.stream_model``, every output
tile is decoded and checked as ``unpack(out) == unpack(in).T``, the scoreboard fails on any
beat lost, duplicated or reordered, and the sticky ``error``/``err_code`` pair is compared
with the golden flag every cycle. Stimulus comes from ``tb/stimulus/transposer.py``. Settings
from the environment:

``OMNIDRL_CONFIG``
    The transposer config JSON (set by the runner).
``TP_SEED``
    Stimulus seed (default 1).
``TP_REAL_TILES``
    How many tiles of pruned TD3 weights from the committed trace (default 64).
``TP_CIRC_TILES``
    How many tiles of the block-sparse expanded W of the circ-prune stage trace's circulant
    layers with pruned blocks (default 48).
``TP_FINE_TILES``
    How many tiles of the element-masked layers of the circ-fine stage trace (default 32).
``TP_TILES``, ``TP_GAP``, ``TP_STALL``
    The random-tile test: tiles (default 60), input gap and output stall probabilities
    (default 0.05 and 0.7: rare gaps, heavy back-pressure).
``TP_MALFORMED``
    Malformed tiles of the recovery test, each after a good tile (default 12).
``TP_THROUGHPUT_JSON``
    If set, the throughput test writes its cycle counts there (used by bench/transposer.py).
``TP_THROUGHPUT_STREAMS``
    For the benchmark: path of an ``.npz`` whose arrays are named tile streams (uint16,
    shape ``(n, tile, tile)``) to time back-to-back.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden.codes import TransposerError
from golden.transpose import (Beat, beats_to_tiles, pack, stream_cycles, stream_model, tile_to_beats, unpack,
                              value_beats)
from hdl.transposer import TransposerConfig, tile_beat_layout
from tb import knobs
from tb.stimulus.transposer import (malformed_stream, masked_tiles, pattern_tiles, pruned_circulant_tiles,
                                    pruned_weight_tiles, random_dense_tile, random_density_tile,
                                    random_density_tiles)
from tb.stream import FlagMonitor, PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

CFG = TransposerConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else TransposerConfig.preset("tiny")
CODEC = PayloadCodec(tile_beat_layout(CFG))
SEED = knobs.count("TP_SEED", 1, lo=0)


def beats_of(tiles) -> list[Beat]:
    return [b for t in tiles for b in tile_to_beats(t, CFG.lanes)]


def compare_beat(exp: Beat, got: dict) -> str | None:
    g = Beat(got["data"], got["first"], got["last"])
    return None if g == exp else f"expected {exp}, got {g}"


async def run_stream(dut, beats: list[Beat], *, gap_prob: float, stall_prob: float, seed: int,
                     lasts: list[int] | None = None, timing: dict | None = None):
    """Reset, send ``beats``, check the output against the golden stream model.

    Returns the golden result, the decoded output tiles and the cycles taken. The clock must
    already run (each test starts it once); the drivers are stopped at the end so that a test can call
    this again.
    """
    await reset(dut)
    expected = stream_model(beats, CFG.tile, CFG.lanes)
    board = Scoreboard("transposer.o", compare_beat)
    for b in expected.out_beats:
        board.expect(b)
    cycle = {"n": 0}

    def on_beat(beat):
        board.receive(beat)
        if lasts is not None and beat["last"]:
            lasts.append(cycle["n"])

    sink = StreamSink(dut, "o", CODEC, stall_prob=stall_prob, rng=random.Random(seed + 1), callback=on_beat)
    source = StreamSource(dut, "i", CODEC, gap_prob=gap_prob, rng=random.Random(seed))
    monitor = FlagMonitor(dut, source, lambda sent: (expected.error_after[sent - 1],
                                                     TransposerError.MALFORMED if expected.error_after[sent - 1]
                                                     else TransposerError.NONE))
    source.send_all(b.as_dict() for b in beats)
    t0 = time.perf_counter()
    limit = 50 * len(beats) + 1000
    while len(sink.received) < len(expected.out_beats) or not source.idle:
        await FallingEdge(dut.clk)
        cycle["n"] += 1
        assert cycle["n"] < limit, (f"no progress: {len(sink.received)} of {len(expected.out_beats)} "
                                    f"output beats, {source.sent} of {len(beats)} input beats sent")
    if timing is not None:   # wall time of the streaming phase (stimulus and golden model excluded)
        timing["seconds"] = time.perf_counter() - t0
    for _ in range(4 * CFG.tile + 8):   # nothing extra may come out; the error flag holds
        await FallingEdge(dut.clk)
    source.stop()
    sink.stop()
    monitor.stop()
    board.check_done(sink)
    got_tiles = beats_to_tiles([Beat(b["data"], b["first"], b["last"]) for b in sink.received],
                               CFG.tile, CFG.lanes)
    assert len(got_tiles) == len(expected.out_tiles)
    count = int(dut.err_count.value)
    assert count == expected.errors, f"err_count {count}, golden model counts {expected.errors} malformed tiles"
    assert not monitor.mismatches, "error flag differs from golden: " + "; ".join(monitor.mismatches)
    assert (monitor.up_cycles > 0) == (expected.errors > 0)
    return expected, got_tiles, cycle["n"]


def check_transposes(tiles, got_tiles) -> None:
    """The issue's check, independent of the golden transpose: unpack(out) == unpack(in).T."""
    assert len(got_tiles) == len(tiles), f"{len(got_tiles)} tiles out for {len(tiles)} in"
    for k, (t_in, t_out) in enumerate(zip(tiles, got_tiles)):
        ref = unpack(t_in).T
        assert np.array_equal(unpack(t_out), ref), f"tile {k}: transpose differs"


@cocotb.test()
async def patterns_with_gaps_and_backpressure(dut):
    """Every density from empty to full, a single non-zero in every position, diagonals,
    checkerboards, a full row/column, edge bit patterns; 30% input gaps, 30% output stalls."""
    start_clock(dut)
    rng = np.random.default_rng(SEED)
    groups = pattern_tiles(CFG.tile, rng)
    tiles = [pack(d) for g in groups.values() for d in g]
    _, got, cycles = await run_stream(dut, beats_of(tiles), gap_prob=0.3, stall_prob=0.3, seed=SEED)
    check_transposes(tiles, got)
    dut._log.info(f"{len(tiles)} pattern tiles in {cycles} cycles")


@cocotb.test()
async def random_tiles_heavy_backpressure(dut):
    """Random tiles at random densities; rare input gaps and 70% output stalls (all banks fill)."""
    start_clock(dut)
    rng = np.random.default_rng(SEED + 10)
    tiles = [pack(random_density_tile(rng, CFG.tile, d)) for d in rng.random(knobs.count("TP_TILES", 60))]
    timing: dict = {}
    expected, got, cycles = await run_stream(dut, beats_of(tiles), gap_prob=knobs.probability("TP_GAP", 0.05),
                                             stall_prob=knobs.probability("TP_STALL", 0.7), seed=SEED + 11,
                                             timing=timing)
    check_transposes(tiles, got)
    knobs.record("transposer", "random_tiles_heavy_backpressure", beats=len(expected.out_beats), tiles=len(tiles),
                 cycles=cycles, seconds=timing["seconds"])


@cocotb.test()
async def malformed_tiles_flagged_and_recovered(dut):
    """Short, long, cut-off, stray and mis-flagged tiles between good ones: each bad tile is
    dropped and counted on err_count, error/err_code follow the golden flag, the good ones
    around it come out transposed."""
    start_clock(dut)
    rng = np.random.default_rng(SEED + 20)
    bad = knobs.count("TP_MALFORMED", 12)
    beats = malformed_stream(CFG.tile, CFG.lanes, rng, n_good=bad)
    timing: dict = {}
    expected, got, cycles = await run_stream(dut, beats, gap_prob=0.25, stall_prob=0.25, seed=SEED + 21, timing=timing)
    assert expected.errors == bad and len(got) == bad + 1
    knobs.record("transposer", "malformed_tiles_flagged_and_recovered", malformed=bad, good=len(got),
                 beats=len(expected.out_beats), cycles=cycles, seconds=timing["seconds"])


@cocotb.test()
async def real_pruned_weights(dut):
    """Tiles of the trained TD3 weights of the committed trace, magnitude-pruned to 50-90%."""
    start_clock(dut)
    tiles = [pack(d) for d in pruned_weight_tiles(CFG.tile, knobs.count("TP_REAL_TILES", 64), SEED + 30)]
    _, got, _ = await run_stream(dut, beats_of(tiles), gap_prob=0.2, stall_prob=0.2, seed=SEED + 32)
    check_transposes(tiles, got)
    dut._log.info(f"{len(tiles)} trained TD3 weight tiles transposed bit-exactly")


@cocotb.test()
async def real_pruned_circulant_weights(dut):
    """Tiles of the circulant layers with pruned blocks of the circ-prune stage trace, as a
    block-sparse W (kept k x k blocks, pruned ones not stored), half of them from block rows
    with pruned blocks."""
    count = knobs.count("TP_CIRC_TILES", 48)
    start_clock(dut)
    tiles = [pack(d) for d in pruned_circulant_tiles(CFG.tile, count, SEED + 40)]
    assert any(t.nnz == 0 for t in tiles) and any(t.nnz == CFG.tile * CFG.tile for t in tiles)
    _, got, _ = await run_stream(dut, beats_of(tiles), gap_prob=0.2, stall_prob=0.2, seed=SEED + 42)
    check_transposes(tiles, got)
    dut._log.info(f"{len(tiles)} tiles of pruned circulant TD3 layers transposed bit-exactly")


@cocotb.test()
async def real_masked_weights(dut):
    """Tiles of the element-masked layers of the circ-fine stage trace (GST after its switch:
    the trained W with 92 % of its values pruned by magnitude, stored as they are)."""
    count = knobs.count("TP_FINE_TILES", 32)
    start_clock(dut)
    tiles = [pack(d) for d in masked_tiles(CFG.tile, count, SEED + 50)]
    assert len(tiles) == count and any(0 < t.nnz < CFG.tile * CFG.tile for t in tiles)
    _, got, _ = await run_stream(dut, beats_of(tiles), gap_prob=0.2, stall_prob=0.2, seed=SEED + 52)
    check_transposes(tiles, got)
    dut._log.info(f"{len(tiles)} tiles of element-masked TD3 layers transposed bit-exactly")


async def time_stream(dut, tiles) -> dict:
    """Back-to-back, no gaps, no back-pressure: cycles per tile over ceil(nnz/lanes), and every
    tile's last output beat in exactly the cycle of the bank-scheduling model
    (``golden.transpose.stream_cycles``; counted from the first tile's, whose absolute cycle
    includes the reset)."""
    lasts: list[int] = []
    beats = beats_of(tiles)
    _, got, _ = await run_stream(dut, beats, gap_prob=0.0, stall_prob=0.0, seed=SEED, lasts=lasts)
    check_transposes(tiles, got)
    model = stream_cycles([t.nnz for t in tiles], CFG.lanes, CFG.buffers).last_out
    late = [(k, lasts[k] - lasts[0], model[k] - model[0]) for k in range(len(tiles))
            if lasts[k] - lasts[0] != model[k] - model[0]]
    assert not late, (f"{len(late)} of {len(tiles)} tiles leave off the bank model's cycle; first "
                      "(tile, cycle, model): " + ", ".join(map(str, late[:4])))
    bounds = [value_beats(t.nnz, CFG.lanes) for t in tiles]
    # Output interval between consecutive tiles' last beats, minus the tile's bound: the
    # pipeline fill (latency of the first tile) is left out.
    per_tile = [lasts[k] - lasts[k - 1] - bounds[k] for k in range(1, len(tiles))]
    return {"tiles": len(tiles), "sum_bound": int(sum(bounds)), "first_last_cycle": lasts[0],
            "span_cycles": lasts[-1] - lasts[0],
            "avg_cycles_over_bound": float(np.mean(per_tile)),
            "median_cycles_over_bound": float(np.median(per_tile)),
            "max_cycles_over_bound": int(max(per_tile)),
            "nnz": [int(t.nnz) for t in tiles], "intervals": [int(lasts[k] - lasts[k - 1]) for k in range(1, len(tiles))]}


@cocotb.test()
async def back_to_back_throughput(dut):
    """Tiles back to back, at fixed densities and at the block-pruned densities (0, 1/4, 1/2,
    3/4, all) where the banks set the pace: every tile leaves in the bank model's cycle."""
    start_clock(dut)
    streams: dict[str, np.ndarray] = {}
    path = os.environ.get("TP_THROUGHPUT_STREAMS")
    if path:
        with np.load(path) as z:
            streams = {k: z[k] for k in z.files}
    else:
        rng = np.random.default_rng(SEED + 40)
        for sparsity in (0.5, 0.9):
            streams[f"sparsity_{sparsity}"] = random_density_tiles(rng, CFG.tile, 40, 1 - sparsity)
        cells = CFG.cells
        streams["block_pruned"] = np.array([random_dense_tile(rng, CFG.tile, int(n)) for n in
                                            rng.choice([0, cells // 4, cells // 2, 3 * cells // 4, cells], 40)])
    results = {}
    for name, arr in streams.items():
        stats = await time_stream(dut, [pack(d) for d in arr])
        results[name] = stats
        dut._log.info(f"{name}: {stats['tiles']} tiles, {stats['avg_cycles_over_bound']:.3f} cycles/tile over bound")
    out = os.environ.get("TP_THROUGHPUT_JSON")
    if out:
        with open(out, "w") as f:
            json.dump({"config": json.loads(CFG.to_json()), "streams": results}, f)
