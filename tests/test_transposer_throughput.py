"""The transposer's back-to-back timing, cycle for cycle, against the bank-scheduling model.

``golden.transpose.stream_cycles`` says in which cycle every tile's header goes in and its first
and last beats come out when the input offers a beat every cycle and the output is always
ready. Here the hardware (Amaranth simulator) must hit those cycles exactly, for streams where
the banks are the bottleneck (tiles of very different sizes, empty tiles) and for 2, 3 and 4
banks. The cocotb run checks the same on the generated Verilog (``tb/test_transposer.py``,
``back_to_back_throughput``).
"""

import numpy as np
import pytest

from golden.transpose import Beat, pack, stream_cycles, stream_model, tile_to_beats
from hdl.transposer import Transposer, TransposerConfig
from tb.amsim import Scoreboard, StreamBench, StreamSink, StreamSource
from tb.stimulus.transposer import random_dense_tile, random_density_tile


# -- the model on hand-worked cases ----------------------------------------------------------
def test_model_equal_tiles_stream_at_one_header_per_tile():
    # lanes 2, 2 banks, three tiles of 4 values (2 value beats): header at 0, values at 1, 2
    # (commit), out from 3 to 5; the next header at 3, ... one tile every 3 cycles.
    c = stream_cycles([4, 4, 4], lanes=2, buffers=2)
    assert (c.header_in, c.commit, c.header_out, c.last_out) == ([0, 3, 6], [2, 5, 8], [3, 6, 9], [5, 8, 11])


def test_model_waits_for_the_bank_and_reuses_it_in_its_release_cycle():
    # Tile 2 (one value beat) needs bank 0, which sends its last beat of tile 0 in cycle 17:
    # its value beat goes in that very cycle. Empty tile 5 waits for bank 1 (free at 18 < 29:
    # no wait), and goes out after tile 4's last beat.
    c = stream_cycles([16, 0, 2, 2, 16, 0], lanes=2, buffers=2)
    assert c.header_in == [0, 9, 10, 18, 20, 29]
    assert c.commit == [8, 9, 17, 19, 28, 29]
    assert c.last_out == [17, 18, 20, 22, 37, 38]
    # An empty tile whose bank is still draining waits for the release cycle.
    assert stream_cycles([16, 2, 0], lanes=2, buffers=2).commit == [8, 10, 17]


# -- the hardware against the model ----------------------------------------------------------
def run_back_to_back(cfg, tiles):
    """Stream ``tiles`` with no gaps and no back-pressure; return the cycles of input headers,
    output headers and output last beats (the output checked against the golden model)."""
    dut = Transposer(cfg)
    beats = [b for t in tiles for b in tile_to_beats(t, cfg.lanes)]
    expected = stream_model(beats, cfg.tile, cfg.lanes).out_beats
    bench = StreamBench(dut, max_cycles=20 * len(beats) + 200)
    board = Scoreboard("transposer.o")
    source = StreamSource(bench, "i")
    sink = StreamSink(bench, "o", callback=lambda b: board.receive(Beat(b["data"], b["first"], b["last"])),
                      count=len(expected))
    header_in = bench.watch(dut.i.valid & dut.i.ready & dut.i.p.first)
    header_out = bench.watch(dut.o.valid & dut.o.ready & dut.o.p.first)
    last_out = bench.watch(dut.o.valid & dut.o.ready & dut.o.p.last)
    source.send_all(b.as_dict() for b in beats)
    board.expect_all(expected)
    bench.run(settle=2)
    board.check_done(sink)
    return [[k for k, v in enumerate(w) if v] for w in (header_in, header_out, last_out)]


def streams(tile: int, rng) -> dict[str, list]:
    cells = tile * tile
    sizes = {
        # block-pruned layers: 0, 1/4, 1/2, 3/4 or all of a tile, in random order
        "block_pruned": [int(x) for x in rng.choice([0, cells // 4, cells // 2, 3 * cells // 4, cells], 40)],
        # a full tile, then small ones: the banks, not the beats, set the pace
        "big_then_small": [cells, 1, 2, 0, 1] * 6 + [0, 0, cells, cells, 0],
    }
    out = {name: [pack(random_dense_tile(rng, tile, n)) for n in nnz] for name, nnz in sizes.items()}
    out["random_density"] = [pack(random_density_tile(rng, tile, d)) for d in rng.random(40)]
    return out


@pytest.mark.parametrize("tile,lanes,buffers,rank_registers", [
    (4, 2, 2, True), (4, 2, 3, True), (4, 2, 4, True), (5, 4, 2, True), (3, 1, 3, True), (5, 4, 3, False)])
def test_back_to_back_cycles_match_the_bank_model(tile, lanes, buffers, rank_registers):
    """Registered rank bases (``rank_registers``, on by default) cost no cycle: the same model
    holds with and without them."""
    cfg = TransposerConfig(tile=tile, lanes=lanes, buffers=buffers, rank_registers=rank_registers)
    rng = np.random.default_rng(tile * 10 + buffers)
    for name, tiles in streams(cfg.tile, rng).items():
        header_in, header_out, last_out = run_back_to_back(cfg, tiles)
        model = stream_cycles([t.nnz for t in tiles], cfg.lanes, cfg.buffers)
        assert header_in == model.header_in, f"{name}: input headers in cycles {header_in}, model {model.header_in}"
        assert header_out == model.header_out, f"{name}: output headers {header_out}, model {model.header_out}"
        assert last_out == model.last_out, f"{name}: last beats out {last_out}, model {model.last_out}"
