"""golden/transpose.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived tests/test_transpose_golden.py. The cycle
numbers below are worked by hand from the rules in ``stream_cycles``' docstring.
"""

import numpy as np
import pytest

from golden.config import ConfigError
from golden.transpose import (
    Beat, TileFormat, beats_to_tiles, bitmap_to_int, int_to_bitmap, iter_tile_beats, pack, stream_cycles,
    stream_model, tile_to_beats, untile_matrix,
)


def test_tile_format_defaults_and_bounds():
    assert TileFormat() == TileFormat(tile=16, lanes=8)
    assert TileFormat(tile=2, lanes=4).cells == 4 and TileFormat(tile=32, lanes=64).lanes == 64
    for changes in ({"tile": 1}, {"tile": 33}, {"lanes": 3}, {"lanes": 128}, {"tile": 2, "lanes": 8}):
        with pytest.raises(ConfigError):
            TileFormat(**changes)
    assert TileFormat(tile=8, lanes=1).lanes == 1


def test_pack_rejects_what_is_not_square():
    for shape in ((2, 3), (3, 2), (4,)):
        with pytest.raises(ValueError, match="is not square"):
            pack(np.ones(shape, dtype=np.uint16))


def test_bitmaps_travel_as_integers_lsb_first():
    bitmap = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=bool)  # bits 0, 5 and 7
    assert bitmap_to_int(bitmap) == 0b10100001
    assert np.array_equal(int_to_bitmap(0b10100001, 3), bitmap)
    # bits above tile*tile are ignored, also when tile*tile is a whole number of bytes
    assert np.array_equal(int_to_bitmap((1 << 16) | 1, 4), np.eye(1, 16, dtype=bool).reshape(4, 4))


def test_value_beats_decode_strictly():
    tile = pack(np.diag([1, 2, 3, 4]).astype(np.uint16))     # four values: two beats of two lanes
    beats = tile_to_beats(tile, 2)
    with pytest.raises(ValueError, match="stream ends after 1 of 2 value beats"):
        beats_to_tiles(beats[:2], 4, 2)
    with pytest.raises(ValueError, match="value beat 1 of 2 has first=1"):
        beats_to_tiles(beats[:2] + [Beat(beats[2].data, 1, 1)], 4, 2)
    wide = pack(np.diag(np.arange(1, 9)).astype(np.uint16))  # tile 8, lanes 2: beats are 64 bits wide
    beats = tile_to_beats(wide, 2)
    bad = beats[:1] + [Beat(beats[1].data | (1 << 32), 0, 0)] + beats[2:]  # just above lane 1
    with pytest.raises(ValueError, match=r"value beat has bits set above lane 1$"):
        beats_to_tiles(bad, 8, 2)


def test_stream_model_numbers_the_accepted_tiles_from_zero():
    tiles = [pack(np.diag([k + 1, 0, 5, 0]).astype(np.uint16)) for k in range(3)]
    beats = list(iter_tile_beats(tiles, 2))
    assert len(beats) == 3 * 2 and beats_to_tiles(beats, 4, 2) == tiles
    assert stream_model(beats, 4, 2).accepted == [0, 1, 2]


def test_untile_matrix_of_a_single_tile():
    tile = np.arange(16, dtype=np.uint16).reshape(4, 4)
    assert np.array_equal(untile_matrix([tile], (1, 1), (3, 2)), tile[:3, :2])


@pytest.mark.parametrize("nnz,lanes,buffers,expected", [
    # two banks; an empty tile whose output waits for the previous tile's last beat; a tile that
    # reuses bank 0 in the cycle it is released
    ([4, 0, 6, 1], 2, 2, ([0, 3, 4, 8], [2, 3, 7, 9], [3, 6, 8, 12], [5, 6, 11, 13])),
    # one bank: the second tile's single value beat waits until the bank is released at cycle 7
    ([3, 1], 1, 1, ([0, 4], [3, 7], [4, 8], [7, 9])),
    # an empty first tile commits in its header's cycle
    ([0, 2], 2, 2, ([0, 1], [0, 2], [1, 3], [1, 4])),
    # one bank: an empty tile commits only when the bank is released
    ([4, 0], 2, 1, ([0, 3], [2, 5], [3, 6], [5, 6])),
])
def test_stream_cycles_by_hand(nnz, lanes, buffers, expected):
    cycles = stream_cycles(nnz, lanes, buffers)
    assert (cycles.header_in, cycles.commit, cycles.header_out, cycles.last_out) == expected
