"""Tier 1: the sparse tile format and its transpose in golden/transpose.py (NumPy only)."""

import numpy as np
import pytest

from golden.config import ConfigError
from golden.transpose import (
    Beat, SparseTile, TileFormat, beat_width, beats_to_tiles, bitmap_to_int, circulant_to_dense, int_to_bitmap,
    pack, src_dst_ranks, stream_model, tile_matrix, tile_to_beats, transpose_circulant, transpose_matrix_tiles,
    transpose_packed, unpack, untile_matrix, value_beats,
)
from tb.stimulus.transposer import random_density_tile as random_tile


@pytest.mark.parametrize("tile", [2, 4, 7, 16])
def test_pack_unpack_transpose_random(tile):
    rng = np.random.default_rng(tile)
    for density in np.linspace(0, 1, 11):
        d = random_tile(rng, tile, density)
        t = pack(d)
        assert np.array_equal(unpack(t), d)
        out = transpose_packed(t)
        # The check of the issue, against numpy's own transpose.
        assert np.array_equal(unpack(out), d.T)
        assert out == pack(d.T)


def test_every_bit_pattern_is_lossless():
    # -0, subnormals, Inf and NaN are moved as bits; only 0x0000 is "not stored".
    d = np.array([[0x8000, 0x0001, 0x7F80], [0xFFC1, 0x0000, 0x7FC0], [0x0080, 0xFFFF, 0x3F80]], np.uint16)
    t = pack(d)
    assert t.nnz == 8
    assert np.array_equal(unpack(transpose_packed(t)), d.T)


def test_ranks_are_prefix_counts():
    rng = np.random.default_rng(1)
    bm = rng.random((8, 8)) < 0.4
    src, dst = src_dst_ranks(bm)
    rows, cols = np.nonzero(bm)                      # row-major order of the stored cells
    assert np.array_equal(src[rows, cols], np.arange(len(rows)))
    cols_t, rows_t = np.nonzero(bm.T)                # column-major order
    assert np.array_equal(dst[rows_t, cols_t], np.arange(len(rows_t)))


def test_bitmap_int_roundtrip_and_bit_order():
    bm = np.zeros((4, 4), bool)
    bm[1, 2] = True
    assert bitmap_to_int(bm) == 1 << (1 * 4 + 2)
    rng = np.random.default_rng(2)
    for _ in range(20):
        bm = rng.random((16, 16)) < 0.5
        assert np.array_equal(int_to_bitmap(bitmap_to_int(bm), 16), bm)


@pytest.mark.parametrize("tile,lanes", [(4, 2), (4, 1), (8, 4), (16, 8), (16, 16)])
def test_beats_roundtrip(tile, lanes):
    rng = np.random.default_rng(tile * 100 + lanes)
    tiles = [pack(random_tile(rng, tile, dens)) for dens in (0, 0.05, 0.5, 1)]
    beats = [b for t in tiles for b in tile_to_beats(t, lanes)]
    assert len(beats) == sum(1 + value_beats(t.nnz, lanes) for t in tiles)
    assert beats_to_tiles(beats, tile, lanes) == tiles
    assert beats[0].first == 1 and beats[0].last == 1          # empty tile: header only


def test_beats_to_tiles_rejects_bad_padding():
    t = pack(np.array([[1, 0], [0, 0]], np.uint16))
    beats = tile_to_beats(t, 2)
    bad = beats[:1] + [Beat(beats[1].data | (5 << 16), 0, 1)]
    with pytest.raises(ValueError, match="padding"):
        beats_to_tiles(bad, 2, 2)


def test_stream_model_good_stream_is_transpose():
    rng = np.random.default_rng(3)
    tiles = [pack(random_tile(rng, 4, d)) for d in rng.random(30)]
    beats = [b for t in tiles for b in tile_to_beats(t, 2)]
    res = stream_model(beats, 4, 2)
    assert res.errors == 0
    assert res.out_tiles == [transpose_packed(t) for t in tiles]
    assert beats_to_tiles(res.out_beats, 4, 2) == res.out_tiles


def test_stream_model_malformed_tiles_are_dropped_and_counted():
    tile, lanes = 4, 2
    good = pack(np.arange(1, 17, dtype=np.uint16).reshape(4, 4) * (np.eye(4, dtype=np.uint16) + 1))
    g = tile_to_beats(good, lanes)                     # header + 8 value beats
    three = pack(np.diag([1, 2, 3, 0]).astype(np.uint16))
    h = tile_to_beats(three, lanes)                    # header + 2 value beats
    cases = {
        "early last": h[:1] + [Beat(h[1].data, 0, 1)],
        "missing last, then more": h[:2] + [Beat(h[2].data, 0, 0), Beat(0, 0, 0), Beat(0, 0, 1)],
        "header cuts a tile": h[:2],
        "stray value beat": [Beat(7, 0, 1)],
        "stray value beats": [Beat(7, 0, 0), Beat(7, 0, 0), Beat(7, 0, 1)],
        "empty tile without last": [Beat(0, 1, 0), Beat(0, 0, 1)],
        "non-empty header with last": [Beat(h[0].data, 1, 1)],
    }
    for name, bad in cases.items():
        beats = g + bad + g
        res = stream_model(beats, tile, lanes)
        assert res.errors == 1, name
        assert res.out_tiles == [transpose_packed(good)] * 2, name
        # the sticky flag: down over the good tile, up from the fault up to the next header
        up = res.error_after
        fault = up.index(True)
        after = next((k for k in range(fault + 1, len(beats)) if beats[k].first), len(beats))
        assert fault >= len(g) and all(up[fault:after]) and not any(up[after:]), name


def test_matrix_tiling_roundtrip_and_transpose():
    rng = np.random.default_rng(4)
    w = random_tile(rng, 40, 0.3)[:37, :21]
    tiles, grid = tile_matrix(w, 16)
    assert grid == (3, 2)
    assert np.array_equal(untile_matrix(tiles, grid, w.shape), w)
    t_tiles = [unpack(transpose_packed(pack(t))) for t in transpose_matrix_tiles(tiles, grid)]
    assert np.array_equal(untile_matrix(t_tiles, (grid[1], grid[0]), w.T.shape), w.T)


def test_circulant_transpose_is_index_reversal():
    rng = np.random.default_rng(5)
    v = rng.integers(0, 1 << 16, (3, 5, 4)).astype(np.uint16)
    assert np.array_equal(circulant_to_dense(transpose_circulant(v)), circulant_to_dense(v).T)


def test_sparse_tile_equality():
    a = pack(np.eye(3, dtype=np.uint16))
    assert a == SparseTile(np.eye(3, dtype=bool), np.ones(3, np.uint16)) and a.tile == 3
    assert a != pack(np.eye(3, dtype=np.uint16) * 2)


def test_tile_format_widths_and_ranges():
    fmt = TileFormat(tile=4, lanes=2)
    assert (fmt.cells, fmt.data_width, fmt.max_value_beats) == (16, 32, 8)
    assert TileFormat(tile=16, lanes=8).data_width == beat_width(16, 8) == 256
    assert TileFormat(tile=2, lanes=4).data_width == 64  # a value beat wider than the bitmap
    with pytest.raises(ConfigError, match=r"lanes=32 is not allowed; lanes must be a power of two from 1 to 16"):
        TileFormat(tile=4, lanes=32)
    with pytest.raises(ConfigError, match=r"tile=1 is not allowed; tile must be an integer from 2 to 32"):
        TileFormat(tile=1)
