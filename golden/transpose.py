"""Sparse weight tiles and their transpose: the format, pack/unpack, and the stream model.

The format (written out in ``docs/formats.md``, section "Sparse tile format"):

* A tile is a T x T block of bf16 bit patterns (``uint16``).
* Its **bitmap** has T*T bits, row-major: bit ``r*T + c`` is set when element ``(r, c)`` is
  stored. An element is stored when its bit pattern is not ``0x0000``. ``-0`` (``0x8000``) is
  stored like any other value, so pack/unpack is lossless on every bit pattern.
* Its **values** are the stored elements in row-major order (``nnz`` of them).
* On a stream, a tile is one header beat (the bitmap) followed by ``ceil(nnz / P)`` value beats
  of P bf16 lanes. Every beat has ``data`` (``max(T*T, 16*P)`` bits), ``first`` and ``last``.
  The header beat has ``first = 1`` and ``data[0:T*T]`` = bitmap; value beat ``j`` has
  ``first = 0`` and lane ``l`` (``data[16*l : 16*l + 16]``) = value ``j*P + l``; lanes past
  ``nnz`` are zero. ``last`` marks the final beat of the tile (the header itself when
  ``nnz == 0``). Unused high ``data`` bits are zero.

The transpose of a packed tile is the packed tile of ``dense.T``: its bitmap is the bitmap
transposed (a pure re-wiring), its values are the input values in column-major order. Each value
moves from source rank ``src`` (row-major rank of ``(r, c)`` among the stored elements) to
destination rank ``dst`` (column-major rank); both are prefix counts of the bitmap, see
:func:`src_dst_ranks`, and this is how the hardware finds them too.

Block-circulant weights need no transposer: :func:`transpose_circulant` swaps the block indices
and reverses the index of each defining vector.

NumPy only: no Amaranth or cocotb imports here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Iterator

import numpy as np

__all__ = [
    "SparseTile", "is_stored", "pack", "unpack", "transpose_packed", "transpose_dense",
    "src_dst_ranks", "bitmap_to_int", "int_to_bitmap", "transpose_bitmap_int",
    "beat_width", "value_beats", "tile_to_beats", "beats_to_tiles", "Beat",
    "stream_model", "StreamResult", "tile_matrix", "untile_matrix",
    "transpose_matrix_tiles", "iter_tile_beats", "transpose_circulant", "circulant_to_dense",
    "random_dense_tile", "pattern_tiles", "malformed_stream",
]


# ---------------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SparseTile:
    """A packed T x T tile.

    Attributes
    ----------
    T : int
        Tile edge.
    bitmap : numpy.ndarray
        ``bool`` array of shape ``(T, T)``; True where the element is stored.
    values : numpy.ndarray
        ``uint16`` bf16 patterns of the stored elements, row-major order.
    """

    T: int
    bitmap: np.ndarray
    values: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    def __eq__(self, other) -> bool:
        return (isinstance(other, SparseTile) and self.T == other.T
                and np.array_equal(self.bitmap, other.bitmap) and np.array_equal(self.values, other.values))

    def __hash__(self):  # frozen dataclass with arrays: hash on the bytes
        return hash((self.T, self.bitmap.tobytes(), self.values.tobytes()))


def is_stored(dense) -> np.ndarray:
    """True where a bf16 pattern is stored: every pattern except ``+0`` (``0x0000``)."""
    return np.asarray(dense, dtype=np.uint16) != 0


def pack(dense) -> SparseTile:
    """Pack a square ``uint16`` tile into bitmap + row-major values."""
    d = np.asarray(dense, dtype=np.uint16)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"tile shape {d.shape} is not square T x T")
    bm = is_stored(d)
    return SparseTile(d.shape[0], bm, d[bm].astype(np.uint16))  # boolean indexing is row-major


def unpack(tile: SparseTile) -> np.ndarray:
    """Dense ``uint16`` T x T tile of a packed tile (``+0`` where the bitmap is clear)."""
    if int(tile.bitmap.sum()) != tile.values.size:
        raise ValueError(f"bitmap has {int(tile.bitmap.sum())} bits set but {tile.values.size} values")
    d = np.zeros((tile.T, tile.T), dtype=np.uint16)
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
    return SparseTile(tile.T, bm.T.copy(), out)


def transpose_dense(dense) -> np.ndarray:
    """Reference: the plain dense transpose (for ``unpack(transpose(t)) == unpack(t).T``)."""
    return np.asarray(dense, dtype=np.uint16).T.copy()


# ---------------------------------------------------------------------------------------------
# Bitmaps as integers (bit r*T + c, LSB first), as they travel on the wires
# ---------------------------------------------------------------------------------------------
def bitmap_to_int(bitmap) -> int:
    bits = np.asarray(bitmap, dtype=bool).reshape(-1)
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


def int_to_bitmap(word: int, T: int) -> np.ndarray:
    n = T * T
    raw = (word & ((1 << n) - 1)).to_bytes((n + 7) // 8, "little")
    return np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:n].astype(bool).reshape(T, T)


def transpose_bitmap_int(word: int, T: int) -> int:
    return bitmap_to_int(int_to_bitmap(word, T).T)


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


def beat_width(T: int, P: int) -> int:
    """Width of the ``data`` field: a header carries T*T bits, a value beat 16*P."""
    return max(T * T, 16 * P)


def value_beats(nnz: int, P: int) -> int:
    """Value beats of a tile with ``nnz`` stored elements: ``ceil(nnz / P)``."""
    return -(-int(nnz) // P)


def tile_to_beats(tile: SparseTile, P: int) -> list[Beat]:
    """Header beat, then ``ceil(nnz/P)`` value beats; ``last`` on the final one."""
    n = value_beats(tile.nnz, P)
    beats = [Beat(bitmap_to_int(tile.bitmap), 1, int(n == 0))]
    vals = [int(v) for v in tile.values]
    for j in range(n):
        word = 0
        for lane, v in enumerate(vals[j * P:(j + 1) * P]):
            word |= v << (16 * lane)
        beats.append(Beat(word, 0, int(j == n - 1)))
    return beats


def beats_to_tiles(beats: Iterable[Beat], T: int, P: int) -> list[SparseTile]:
    """Decode a well-formed beat sequence (as the transposer emits it) back into tiles.

    Raises ``ValueError`` on anything malformed: a missing header, a wrong value-beat count,
    non-zero padding lanes or non-zero unused bits.
    """
    tiles: list[SparseTile] = []
    it = iter(beats)
    width = beat_width(T, P)
    for head in it:
        if not head.first:
            raise ValueError(f"tile {len(tiles)}: expected a header beat (first=1), got {head}")
        if head.data >> (T * T):
            raise ValueError(f"tile {len(tiles)}: header has bits set above T*T")
        bm = int_to_bitmap(head.data, T)
        nnz = int(bm.sum())
        n = value_beats(nnz, P)
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
            for lane in range(P):
                v = (b.data >> (16 * lane)) & 0xFFFF
                if j * P + lane < nnz:
                    vals.append(v)
                elif v:
                    raise ValueError(f"tile {len(tiles)}: padding lane {lane} of the last beat is 0x{v:04x}, not 0")
            if b.data >> (16 * P):
                raise ValueError(f"tile {len(tiles)}: value beat has bits set above lane {P - 1}")
        tiles.append(SparseTile(T, bm, np.array(vals, dtype=np.uint16)))
    return tiles


# ---------------------------------------------------------------------------------------------
# The transposer as a stream function, malformed tiles included
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StreamResult:
    """What the transposer emits for an input beat sequence."""

    out_beats: list[Beat]
    out_tiles: list[SparseTile]
    errors: int
    accepted: list[int]  # indices (in input tile order of headers) of tiles that were good


def stream_model(beats: Iterable[Beat], T: int, P: int) -> StreamResult:
    """Bit-exact model of the transposer's stream behaviour, including error recovery.

    Rules (the same as ``docs/formats.md`` and the hardware):

    * A header (``first = 1``) always starts a new tile; if a tile was still open, that tile is
      malformed (too few value beats): it is dropped and counted as one error.
    * A tile is good when its value beats number exactly ``ceil(nnz / P)`` and ``last`` is on
      the final beat (on the header itself when ``nnz == 0``). A good tile is transposed and
      emitted; a malformed one is dropped and counts one error.
    * ``last`` too early (fewer value beats): error, the tile ends there.
    * No ``last`` on the expected final beat: error; following beats are discarded up to and
      including the next ``last``, or up to the next header, which starts a new tile.
    * A value beat (``first = 0``) outside a tile: error; discarded the same way.
    * Padding lanes and unused bits on input are ignored.
    """
    out_tiles: list[SparseTile] = []
    accepted: list[int] = []
    errors = 0
    state = "idle"  # idle | values | discard
    bm = None
    vals: list[int] = []
    need = got = 0
    header_index = -1
    mask = (1 << (T * T)) - 1

    def commit():
        tile = SparseTile(T, bm, np.array(vals[:int(bm.sum())], dtype=np.uint16))
        out_tiles.append(transpose_packed(tile))
        accepted.append(header_index)

    for b in beats:
        if b.first:
            if state == "values":
                errors += 1  # the open tile never got its last beat
            header_index += 1
            bm = int_to_bitmap(b.data & mask, T)
            need = value_beats(int(bm.sum()), P)
            vals, got = [], 0
            if need == 0:
                if b.last:
                    commit()
                    state = "idle"
                else:
                    errors += 1
                    state = "discard"
            elif b.last:
                errors += 1
                state = "idle"
            else:
                state = "values"
            continue
        # a value beat
        if state == "idle":
            errors += 1
            state = "idle" if b.last else "discard"
        elif state == "discard":
            if b.last:
                state = "idle"
        else:
            got += 1
            vals += [(b.data >> (16 * lane)) & 0xFFFF for lane in range(P)]
            if b.last:
                if got == need:
                    commit()
                else:
                    errors += 1
                state = "idle"
            elif got == need:
                errors += 1
                state = "discard"
    if state == "values":
        pass  # an unfinished tile at the end of the stream is still waiting, not an error yet
    out_beats = [beat for t in out_tiles for beat in tile_to_beats(t, P)]
    return StreamResult(out_beats, out_tiles, errors, accepted)


# ---------------------------------------------------------------------------------------------
# Whole matrices
# ---------------------------------------------------------------------------------------------
def tile_matrix(w, T: int) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Split a ``uint16`` matrix into T x T tiles, row-major over tiles, zero-padded at the edges.

    Returns the dense tiles and the tile-grid shape ``(rows, cols)``.
    """
    w = np.asarray(w, dtype=np.uint16)
    if w.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {w.shape}")
    R, C = math.ceil(w.shape[0] / T), math.ceil(w.shape[1] / T)
    pad = np.zeros((R * T, C * T), dtype=np.uint16)
    pad[:w.shape[0], :w.shape[1]] = w
    tiles = [pad[i * T:(i + 1) * T, j * T:(j + 1) * T].copy() for i in range(R) for j in range(C)]
    return tiles, (R, C)


def untile_matrix(tiles, grid: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`tile_matrix`."""
    R, C = grid
    tiles = [np.asarray(t, dtype=np.uint16) for t in tiles]
    T = tiles[0].shape[0]
    pad = np.zeros((R * T, C * T), dtype=np.uint16)
    for k, t in enumerate(tiles):
        i, j = divmod(k, C)
        pad[i * T:(i + 1) * T, j * T:(j + 1) * T] = t
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


def iter_tile_beats(tiles: Iterable[SparseTile], P: int) -> Iterator[Beat]:
    for t in tiles:
        yield from tile_to_beats(t, P)


# ---------------------------------------------------------------------------------------------
# Stimulus shared by the tests and the benchmark
# ---------------------------------------------------------------------------------------------
def random_dense_tile(rng: np.random.Generator, T: int, nnz: int) -> np.ndarray:
    """A T x T tile with exactly ``nnz`` stored elements at random places, random non-zero bits."""
    d = np.zeros(T * T, dtype=np.uint16)
    where = rng.choice(T * T, size=nnz, replace=False)
    d[where] = rng.integers(1, 1 << 16, nnz)
    return d.reshape(T, T)


def pattern_tiles(T: int, rng: np.random.Generator, *, singles: bool = True) -> dict[str, list[np.ndarray]]:
    """Adversarial and sweep stimulus, by name: every density from empty to full, a single
    stored element in every position, diagonal, anti-diagonal, checkerboards, one full row and
    one full column, and edge bit patterns (-0, subnormal, Inf, NaN)."""
    def vals(shape):
        return rng.integers(1, 1 << 16, shape).astype(np.uint16)

    out: dict[str, list[np.ndarray]] = {}
    out["every_density"] = [random_dense_tile(rng, T, n) for n in range(T * T + 1)]
    if singles:
        singles_list = []
        for p in range(T * T):
            d = np.zeros(T * T, np.uint16)
            d[p] = int(vals(1)[0])
            singles_list.append(d.reshape(T, T))
        out["single"] = singles_list
    eye = np.eye(T, dtype=bool)
    checker = (np.add.outer(np.arange(T), np.arange(T)) % 2) == 0
    row = np.zeros((T, T), bool)
    row[T // 2, :] = True
    masks = {"diagonal": eye, "anti_diagonal": eye[::-1], "checker0": checker, "checker1": ~checker,
             "one_row": row, "one_col": row.T, "full": np.ones((T, T), bool), "empty": np.zeros((T, T), bool)}
    out["patterns"] = [np.where(mk, vals((T, T)), 0).astype(np.uint16) for mk in masks.values()]
    edge = np.array([0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0, 0xFFFF, 0x7F7F], np.uint16)
    out["edge_bits"] = [edge[rng.integers(0, len(edge), (T, T))] for _ in range(2)]
    return out


def malformed_stream(T: int, P: int, rng: np.random.Generator, n_good: int = 12) -> list[Beat]:
    """Good tiles interleaved with every kind of malformed tile, for the error-recovery tests."""
    good = [pack(random_dense_tile(rng, T, int(n))) for n in rng.integers(1, T * T + 1, n_good)]
    beats: list[Beat] = []
    for k, t in enumerate(good):
        b = tile_to_beats(t, P)
        kind = k % 6
        beats += b                                               # a good tile
        # a bad tile of at least two value beats where the shape allows it
        bad = pack(random_dense_tile(rng, T, int(rng.integers(min(P + 1, T * T), T * T + 1))))
        bb = tile_to_beats(bad, P)
        if kind == 0:
            if len(bb) >= 3:
                beats += bb[:-2] + [Beat(bb[-2].data, 0, 1)]       # last one beat early
            else:
                beats += [Beat(bb[0].data, 1, 1)]                  # last on a non-empty header
        elif kind == 1:
            beats += bb[:-1] + [Beat(bb[-1].data, 0, 0), Beat(1, 0, 0), Beat(2, 0, 1)]  # too many
        elif kind == 2:
            beats += bb[:-1]                                     # cut short by the next header
        elif kind == 3:
            beats += [Beat(3, 0, 0), Beat(4, 0, 1)]              # value beats outside a tile
        elif kind == 4:
            beats += [Beat(0, 1, 0), Beat(5, 0, 1)]              # empty tile without last
        else:
            beats += [Beat(bb[0].data, 1, 1)]                    # non-empty header with last
    beats += tile_to_beats(good[0], P)
    return beats
