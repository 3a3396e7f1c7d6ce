"""Sparse weight tiles and their transpose: the format, pack/unpack, and the stream model.

The format (written out in ``docs/formats.md``, section "Sparse tile format"), with ``tile``
the side of a square tile and ``lanes`` the values per stream beat (:class:`TileFormat`):

* A tile is a tile x tile block of bf16 bit patterns (``uint16``).
* Its **bitmap** has tile*tile bits, row-major: bit ``r*tile + c`` is set when element
  ``(r, c)`` is stored. An element is stored when its bit pattern is not ``0x0000``. ``-0``
  (``0x8000``) is stored like any other value, so pack/unpack is lossless on every bit pattern.
* Its **values** are the stored elements in row-major order (``nnz`` of them).
* On a stream, a tile is one header beat (the bitmap) followed by ``ceil(nnz / lanes)`` value
  beats of ``lanes`` bf16 values. Every beat has ``data`` (:func:`beat_width` =
  ``max(tile*tile, 16*lanes)`` bits), ``first`` and ``last``. The header beat has ``first = 1``
  and ``data[0:tile*tile]`` = bitmap; value beat ``j`` has ``first = 0`` and lane ``l``
  (``data[16*l : 16*l + 16]``) = value ``j*lanes + l``; lanes past ``nnz`` are zero. ``last``
  marks the final beat of the tile (the header itself when ``nnz == 0``). Unused high ``data``
  bits are zero.

The transpose of a packed tile is the packed tile of ``dense.T``: its bitmap is the bitmap
transposed (a pure re-wiring), its values are the input values in column-major order. Each value
moves from source rank ``src`` (row-major rank of ``(r, c)`` among the stored elements) to
destination rank ``dst`` (column-major rank); both are prefix counts of the bitmap, see
:func:`src_dst_ranks`, and this is how the hardware finds them too.

Block-circulant weights need no transposer: :func:`transpose_circulant` swaps the block indices
and reverses the index of each defining vector.

Random and adversarial stimulus lives in ``tb/stimulus/transposer.py``; this module is the truth.

NumPy only: no Amaranth or cocotb imports here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Iterator

import numpy as np

from golden.config import Config, param

__all__ = [
    "TileFormat", "SparseTile", "is_stored", "pack", "unpack", "transpose_packed", "transpose_dense",
    "src_dst_ranks", "bitmap_to_int", "int_to_bitmap", "transpose_bitmap_int",
    "beat_width", "value_beats", "tile_to_beats", "beats_to_tiles", "Beat",
    "stream_model", "StreamResult", "stream_cycles", "StreamCycles", "tile_matrix", "untile_matrix",
    "transpose_matrix_tiles", "iter_tile_beats", "transpose_circulant", "circulant_to_dense",
]


# ---------------------------------------------------------------------------------------------
# The format's parameters and the widths that follow from them (the hardware uses these too)
# ---------------------------------------------------------------------------------------------
def beat_width(tile: int, lanes: int) -> int:
    """Width of the ``data`` field: a header carries tile*tile bits, a value beat 16*lanes."""
    return max(tile * tile, 16 * lanes)


def value_beats(nnz: int, lanes: int) -> int:
    """Value beats of a tile with ``nnz`` stored elements: ``ceil(nnz / lanes)``."""
    return -(-int(nnz) // lanes)


@dataclasses.dataclass(frozen=True)
class TileFormat(Config):
    """The sparse tile stream format's two parameters, declared once.

    ``hdl.transposer.TransposerConfig`` inherits these fields (and their ranges), so the
    hardware's widths and the golden model's come from the same place.

    Parameters
    ----------
    tile : int
        Side of a square tile: tile x tile bf16 values, a bitmap of tile*tile bits (2 to 32).
    lanes : int
        bf16 values per value beat (a power of two from 1 to min(64, tile*tile)).
    """

    NAME = "tile_format"

    tile: int = param(16, lo=2, hi=32, doc="side of a square tile (tile x tile bf16 values)")
    lanes: int = param(8, lo=1, hi=64, pow2=True, doc="bf16 values per value beat (at most tile*tile)")

    def validate(self) -> None:
        limit = min(64, self.cells)
        self.check(self.lanes <= limit, "lanes", f"a power of two from 1 to {limit} (min(64, tile*tile))")

    @property
    def cells(self) -> int:
        """Elements of a tile, and bits of its bitmap."""
        return self.tile * self.tile

    @property
    def data_width(self) -> int:
        """Width of a beat's ``data`` field (:func:`beat_width`)."""
        return beat_width(self.tile, self.lanes)

    @property
    def max_value_beats(self) -> int:
        """Value beats of a full tile."""
        return value_beats(self.cells, self.lanes)


# ---------------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SparseTile:
    """A packed tile x tile tile.

    Attributes
    ----------
    bitmap : numpy.ndarray
        ``bool`` array of shape ``(tile, tile)``; True where the element is stored.
    values : numpy.ndarray
        ``uint16`` bf16 patterns of the stored elements, row-major order.
    """

    bitmap: np.ndarray
    values: np.ndarray

    @property
    def tile(self) -> int:
        """Side of the tile."""
        return int(self.bitmap.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    def __eq__(self, other) -> bool:
        return (isinstance(other, SparseTile) and np.array_equal(self.bitmap, other.bitmap)
                and np.array_equal(self.values, other.values))

    def __hash__(self):  # frozen dataclass with arrays: hash on the bytes
        return hash((self.bitmap.shape, self.bitmap.tobytes(), self.values.tobytes()))


def is_stored(dense) -> np.ndarray:
    """True where a bf16 pattern is stored: every pattern except ``+0`` (``0x0000``)."""
    return np.asarray(dense, dtype=np.uint16) != 0


def pack(dense) -> SparseTile:
    """Pack a square ``uint16`` tile into bitmap + row-major values."""
    d = np.asarray(dense, dtype=np.uint16)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"tile shape {d.shape} is not square")
    bm = is_stored(d)
    return SparseTile(bm, d[bm].astype(np.uint16))  # boolean indexing is row-major


def unpack(tile: SparseTile) -> np.ndarray:
    """Dense ``uint16`` tile x tile array of a packed tile (``+0`` where the bitmap is clear)."""
    if int(tile.bitmap.sum()) != tile.values.size:
        raise ValueError(f"bitmap has {int(tile.bitmap.sum())} bits set but {tile.values.size} values")
    d = np.zeros((tile.tile, tile.tile), dtype=np.uint16)
    d[tile.bitmap] = tile.values
    return d


def src_dst_ranks(bitmap) -> tuple[np.ndarray, np.ndarray]:
    """Per-position source and destination ranks, from prefix counts only.

    ``src[r, c]`` = stored elements before ``(r, c)`` in row-major order
    = (stored in rows ``< r``) + (stored in row ``r``, columns ``< c``).
    ``dst[r, c]`` = stored elements before ``(r, c)`` in column-major order
    = (stored in columns ``< c``) + (stored in column ``c``, rows ``< r``).
    The value at packed input index ``src`` goes to packed output index ``dst``. Entries where
    the bitmap is clear are meaningless (still defined, as the hardware computes them).
    """
    b = np.asarray(bitmap, dtype=np.int64)
    row_before = np.concatenate([[0], np.cumsum(b.sum(axis=1))[:-1]])
    in_row_before = np.cumsum(b, axis=1) - b
    col_before = np.concatenate([[0], np.cumsum(b.sum(axis=0))[:-1]])
    in_col_before = np.cumsum(b, axis=0) - b
    return row_before[:, None] + in_row_before, col_before[None, :] + in_col_before


def transpose_packed(tile: SparseTile) -> SparseTile:
    """Packed transpose, computed the way the hardware does: scatter by prefix-count ranks.

    The result equals ``pack(unpack(tile).T)`` (the tests check this independently).
    """
    bm = np.asarray(tile.bitmap, dtype=bool)
    src, dst = src_dst_ranks(bm)
    out = np.zeros(tile.nnz, dtype=np.uint16)
    out[dst[bm]] = tile.values[src[bm]]
    return SparseTile(bm.T.copy(), out)


def transpose_dense(dense) -> np.ndarray:
    """Reference: the plain dense transpose (for ``unpack(transpose(t)) == unpack(t).T``)."""
    return np.asarray(dense, dtype=np.uint16).T.copy()


# ---------------------------------------------------------------------------------------------
# Bitmaps as integers (bit r*tile + c, LSB first), as they travel on the wires
# ---------------------------------------------------------------------------------------------
def bitmap_to_int(bitmap) -> int:
    bits = np.asarray(bitmap, dtype=bool).reshape(-1)
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


def int_to_bitmap(word: int, tile: int) -> np.ndarray:
    n = tile * tile
    raw = (word & ((1 << n) - 1)).to_bytes((n + 7) // 8, "little")
    return np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:n].astype(bool).reshape(tile, tile)


def transpose_bitmap_int(word: int, tile: int) -> int:
    return bitmap_to_int(int_to_bitmap(word, tile).T)


# ---------------------------------------------------------------------------------------------
# Beats
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Beat:
    """One stream beat: ``data`` (an int of :func:`beat_width` bits), ``first``, ``last``."""

    data: int
    first: int
    last: int

    def as_dict(self) -> dict[str, int]:
        return {"data": self.data, "first": self.first, "last": self.last}


def tile_to_beats(tile: SparseTile, lanes: int) -> list[Beat]:
    """Header beat, then ``ceil(nnz/lanes)`` value beats; ``last`` on the final one."""
    n = value_beats(tile.nnz, lanes)
    beats = [Beat(bitmap_to_int(tile.bitmap), 1, int(n == 0))]
    vals = [int(v) for v in tile.values]
    for j in range(n):
        word = 0
        for lane, v in enumerate(vals[j * lanes:(j + 1) * lanes]):
            word |= v << (16 * lane)
        beats.append(Beat(word, 0, int(j == n - 1)))
    return beats


def beats_to_tiles(beats: Iterable[Beat], tile: int, lanes: int) -> list[SparseTile]:
    """Decode a well-formed beat sequence (as the transposer emits it) back into tiles.

    Raises ``ValueError`` on anything malformed: a missing header, a wrong value-beat count,
    non-zero padding lanes or non-zero unused bits.
    """
    tiles: list[SparseTile] = []
    it = iter(beats)
    width = beat_width(tile, lanes)
    for head in it:
        if not head.first:
            raise ValueError(f"tile {len(tiles)}: expected a header beat (first=1), got {head}")
        if head.data >> (tile * tile):
            raise ValueError(f"tile {len(tiles)}: header has bits set above tile*tile")
        bm = int_to_bitmap(head.data, tile)
        nnz = int(bm.sum())
        n = value_beats(nnz, lanes)
        if head.last != int(n == 0):
            raise ValueError(f"tile {len(tiles)}: header last={head.last} but nnz={nnz}")
        vals: list[int] = []
        for j in range(n):
            try:
                b = next(it)
            except StopIteration:
                raise ValueError(f"tile {len(tiles)}: stream ends after {j} of {n} value beats") from None
            if b.first or b.last != int(j == n - 1):
                raise ValueError(f"tile {len(tiles)}: value beat {j} of {n} has first={b.first} last={b.last}")
            if b.data >> width:
                raise ValueError(f"tile {len(tiles)}: beat wider than {width} bits")
            for lane in range(lanes):
                v = (b.data >> (16 * lane)) & 0xFFFF
                if j * lanes + lane < nnz:
                    vals.append(v)
                elif v:
                    raise ValueError(f"tile {len(tiles)}: padding lane {lane} of the last beat is 0x{v:04x}, not 0")
            if b.data >> (16 * lanes):
                raise ValueError(f"tile {len(tiles)}: value beat has bits set above lane {lanes - 1}")
        tiles.append(SparseTile(bm, np.array(vals, dtype=np.uint16)))
    return tiles


# ---------------------------------------------------------------------------------------------
# The transposer as a stream function, malformed tiles included
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StreamResult:
    """What the transposer emits for an input beat sequence.

    ``error_after[k]`` is the transposer's sticky ``error`` flag once input beat ``k`` has been
    taken: raised by a beat that makes a tile malformed, cleared by the next header unless that
    header is itself a fault (it cuts an open tile short, or its ``last`` is wrong).
    """

    out_beats: list[Beat]
    out_tiles: list[SparseTile]
    errors: int
    accepted: list[int]  # indices (in input tile order of headers) of tiles that were good
    error_after: list[bool]


def stream_model(beats: Iterable[Beat], tile: int, lanes: int) -> StreamResult:
    """Bit-exact model of the transposer's stream behaviour, including error recovery.

    Rules (the same as ``docs/formats.md`` and the hardware):

    * A header (``first = 1``) always starts a new tile; if a tile was still open, that tile is
      malformed (too few value beats): it is dropped and counted as one error.
    * A tile is good when its value beats number exactly ``ceil(nnz / lanes)`` and ``last`` is
      on the final beat (on the header itself when ``nnz == 0``). A good tile is transposed and
      emitted; a malformed one is dropped and counts one error.
    * ``last`` too early (fewer value beats): error, the tile ends there.
    * No ``last`` on the expected final beat: error; following beats are discarded up to and
      including the next ``last``, or up to the next header, which starts a new tile.
    * A value beat (``first = 0``) outside a tile: error; discarded the same way.
    * Padding lanes and unused bits on input are ignored.
    """
    out_tiles: list[SparseTile] = []
    accepted: list[int] = []
    error_after: list[bool] = []
    errors = 0
    flag = False
    state = "idle"  # idle | values | discard
    bm = None
    vals: list[int] = []
    need = got = 0
    header_index = -1
    mask = (1 << (tile * tile)) - 1

    def commit():
        packed = SparseTile(bm, np.array(vals[:int(bm.sum())], dtype=np.uint16))
        out_tiles.append(transpose_packed(packed))
        accepted.append(header_index)

    for b in beats:
        fault = 0
        if b.first:
            if state == "values":
                fault += 1  # the open tile never got its last beat
            header_index += 1
            bm = int_to_bitmap(b.data & mask, tile)
            need = value_beats(int(bm.sum()), lanes)
            vals, got = [], 0
            if need == 0:
                if b.last:
                    commit()
                    state = "idle"
                else:
                    fault += 1
                    state = "discard"
            elif b.last:
                fault += 1
                state = "idle"
            else:
                state = "values"
            flag = False  # a new tile starts: the flag of the previous one is done
        elif state == "idle":  # a value beat outside a tile
            fault += 1
            state = "idle" if b.last else "discard"
        elif state == "discard":
            if b.last:
                state = "idle"
        else:
            got += 1
            vals += [(b.data >> (16 * lane)) & 0xFFFF for lane in range(lanes)]
            if b.last:
                if got == need:
                    commit()
                else:
                    fault += 1
                state = "idle"
            elif got == need:
                fault += 1
                state = "discard"
        errors += fault
        flag = flag or fault > 0
        error_after.append(flag)
    # A tile still open at the end of the stream is waiting, not an error yet.
    out_beats = [beat for t in out_tiles for beat in tile_to_beats(t, lanes)]
    return StreamResult(out_beats, out_tiles, errors, accepted, error_after)


# ---------------------------------------------------------------------------------------------
# The bank schedule: cycles of a back-to-back stream
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StreamCycles:
    """When each tile of a back-to-back stream moves (cycle numbers, the first header at 0).

    ``header_in[k]``: the cycle tile k's header is taken; ``commit[k]``: the cycle it becomes
    complete in its bank (its last value beat, or its header when empty); ``header_out[k]`` and
    ``last_out[k]``: the cycles its first and last output beats leave.
    """

    header_in: list[int]
    commit: list[int]
    header_out: list[int]
    last_out: list[int]


def stream_cycles(nnz: Iterable[int], lanes: int, buffers: int) -> StreamCycles:
    """The transposer's cycle model for tiles of ``nnz`` stored elements sent back to back.

    The input offers a beat every cycle and the output is always ready; the hardware then
    follows these rules (``docs/transposer.md``, "Banks"), with ``n_k = ceil(nnz_k / lanes)``:

    * Tile k fills bank ``k mod buffers``. Its header is taken the cycle after the previous
      tile committed (a header never waits for a bank).
    * Its value beats need that bank free: not before the cycle the bank's previous tile
      (k - buffers) sends its last beat, since a bank released in a cycle takes value beats in
      that same cycle. After the header, one value beat per cycle; the last one commits.
    * An empty tile commits in its header's cycle if the bank is free, else it waits (taking
      nothing more) until the cycle the bank is released.
    * The output sends a committed bank from the cycle after the commit, and not before the
      cycle after the previous tile's last beat: a header, then ``n_k`` value beats.

    The hardware's ``rank_registers`` knob does not enter: the registered rank bases are loaded
    in the header's and the commit's own cycles, so the schedule is the same with and without.
    """
    header_in, commit, header_out, last_out = [], [], [], []
    t = 0  # the cycle the next header is taken
    for k, count in enumerate(nnz):
        beats = value_beats(count, lanes)
        released = last_out[k - buffers] if k >= buffers else -1  # the bank is free from here
        done = max(t, released) if beats == 0 else max(t + 1, released) + beats - 1
        out = done + 1 if k == 0 else max(done + 1, last_out[k - 1] + 1)
        header_in.append(t)
        commit.append(done)
        header_out.append(out)
        last_out.append(out + beats)
        t = done + 1
    return StreamCycles(header_in, commit, header_out, last_out)


# ---------------------------------------------------------------------------------------------
# Whole matrices
# ---------------------------------------------------------------------------------------------
def tile_matrix(w, tile: int) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Split a ``uint16`` matrix into tile x tile tiles, row-major over tiles, zero-padded at the edges.

    Returns the dense tiles and the tile-grid shape ``(rows, cols)``.
    """
    w = np.asarray(w, dtype=np.uint16)
    if w.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {w.shape}")
    R, C = math.ceil(w.shape[0] / tile), math.ceil(w.shape[1] / tile)
    pad = np.zeros((R * tile, C * tile), dtype=np.uint16)
    pad[:w.shape[0], :w.shape[1]] = w
    tiles = [pad[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile].copy() for i in range(R) for j in range(C)]
    return tiles, (R, C)


def untile_matrix(tiles, grid: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`tile_matrix`."""
    R, C = grid
    tiles = [np.asarray(t, dtype=np.uint16) for t in tiles]
    side = tiles[0].shape[0]
    pad = np.zeros((R * side, C * side), dtype=np.uint16)
    for k, t in enumerate(tiles):
        i, j = divmod(k, C)
        pad[i * side:(i + 1) * side, j * side:(j + 1) * side] = t
    return pad[:shape[0], :shape[1]].copy()


def transpose_matrix_tiles(tiles, grid: tuple[int, int]) -> list:
    """Order of the transposed matrix's tiles: tile (i, j) of W^T is tile (j, i) of W, transposed.

    Only the order matters here; each tile goes through the transposer unchanged in content.
    """
    R, C = grid
    return [tiles[i * C + j] for j in range(C) for i in range(R)]


# ---------------------------------------------------------------------------------------------
# Block-circulant weights: no transposer needed
# ---------------------------------------------------------------------------------------------
def circulant_to_dense(v) -> np.ndarray:
    """Expand block-circulant vectors ``v[p, q, d]`` (any dtype) into the dense matrix.

    ``W[p*k + r, q*k + c] = v[p, q, (r - c) mod k]`` (DESIGN.md section 4).
    """
    v = np.asarray(v)
    P_, Q, k = v.shape
    r = np.arange(k)[:, None]
    c = np.arange(k)[None, :]
    blocks = v[:, :, (r - c) % k]  # (P, Q, k, k)
    return blocks.transpose(0, 2, 1, 3).reshape(P_ * k, Q * k)


def transpose_circulant(v) -> np.ndarray:
    """Block-circulant transpose by index reversal; **no transposer hardware is used**.

    W^T is block-circulant too: its block (q, p) is defined by ``v'[q, p, d] = v[p, q, (-d) mod k]``.
    So the GST core reads the same vectors with the block indices swapped and the rotation
    reversed; nothing is moved, re-packed or sent through :func:`transpose_packed`.
    """
    v = np.asarray(v)
    k = v.shape[2]
    return v.transpose(1, 0, 2)[:, :, (-np.arange(k)) % k].copy()


def iter_tile_beats(tiles: Iterable[SparseTile], lanes: int) -> Iterator[Beat]:
    for t in tiles:
        yield from tile_to_beats(t, lanes)
