"""Stimulus for the sparse weight transposer: random, adversarial and malformed tile streams.

NumPy only, shared by ``tests/test_transpose_golden.py``, ``tests/test_transposer_amaranth.py``,
the cocotb module ``tb/test_transposer.py`` and ``bench/transposer.py``. What the transposer
must make of it comes from ``golden.transpose``.
"""

from __future__ import annotations

import numpy as np

from golden.transpose import Beat, pack, tile_matrix, tile_to_beats

__all__ = ["random_dense_tile", "random_density_tile", "random_density_tiles", "pattern_tiles",
           "malformed_stream", "trace_weights", "pruned_weight_tiles", "block_sparse_circulant",
           "pruned_circulant_weights", "pruned_circulant_tiles"]


def random_dense_tile(rng: np.random.Generator, tile: int, nnz: int) -> np.ndarray:
    """A tile x tile tile with exactly ``nnz`` stored elements at random places, random non-zero bits."""
    d = np.zeros(tile * tile, dtype=np.uint16)
    where = rng.choice(tile * tile, size=nnz, replace=False)
    d[where] = rng.integers(1, 1 << 16, nnz)
    return d.reshape(tile, tile)


def random_density_tile(rng: np.random.Generator, tile: int, density: float) -> np.ndarray:
    """A tile x tile tile whose elements are stored with probability ``density`` each."""
    keep = rng.random((tile, tile)) < density
    return np.where(keep, rng.integers(1, 1 << 16, (tile, tile)), 0).astype(np.uint16)


def random_density_tiles(rng: np.random.Generator, tile: int, count: int, density: float) -> np.ndarray:
    """``count`` tiles (shape ``(count, tile, tile)``) of :func:`random_density_tile`, drawn at once."""
    keep = rng.random((count, tile, tile)) < density
    return np.where(keep, rng.integers(1, 1 << 16, keep.shape), 0).astype(np.uint16)


def pattern_tiles(tile: int, rng: np.random.Generator, *, singles: bool = True) -> dict[str, list[np.ndarray]]:
    """Adversarial and sweep stimulus, by name: every density from empty to full, a single
    stored element in every position, diagonal, anti-diagonal, checkerboards, one full row and
    one full column, and edge bit patterns (-0, subnormal, Inf, NaN)."""
    def vals(shape):
        return rng.integers(1, 1 << 16, shape).astype(np.uint16)

    cells = tile * tile
    out: dict[str, list[np.ndarray]] = {}
    out["every_density"] = [random_dense_tile(rng, tile, n) for n in range(cells + 1)]
    if singles:
        singles_list = []
        for p in range(cells):
            d = np.zeros(cells, np.uint16)
            d[p] = int(vals(1)[0])
            singles_list.append(d.reshape(tile, tile))
        out["single"] = singles_list
    eye = np.eye(tile, dtype=bool)
    checker = (np.add.outer(np.arange(tile), np.arange(tile)) % 2) == 0
    row = np.zeros((tile, tile), bool)
    row[tile // 2, :] = True
    masks = {"diagonal": eye, "anti_diagonal": eye[::-1], "checker0": checker, "checker1": ~checker,
             "one_row": row, "one_col": row.T, "full": np.ones((tile, tile), bool),
             "empty": np.zeros((tile, tile), bool)}
    out["patterns"] = [np.where(mk, vals((tile, tile)), 0).astype(np.uint16) for mk in masks.values()]
    edge = np.array([0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0, 0xFFFF, 0x7F7F], np.uint16)
    out["edge_bits"] = [edge[rng.integers(0, len(edge), (tile, tile))] for _ in range(2)]
    return out


def malformed_stream(tile: int, lanes: int, rng: np.random.Generator, n_good: int = 12) -> list[Beat]:
    """Good tiles interleaved with every kind of malformed tile, for the error-recovery tests.

    Bad tile k follows good tile k and is of kind ``k % 6``: ``last`` one beat early, too many
    value beats, cut short by the next header, value beats outside a tile, an empty tile
    without ``last``, a non-empty header with ``last``.
    """
    cells = tile * tile
    good = [pack(random_dense_tile(rng, tile, int(n))) for n in rng.integers(1, cells + 1, n_good)]
    beats: list[Beat] = []
    for k, t in enumerate(good):
        b = tile_to_beats(t, lanes)
        kind = k % 6
        beats += b                                               # a good tile
        # a bad tile of at least two value beats where the shape allows it
        bad = pack(random_dense_tile(rng, tile, int(rng.integers(min(lanes + 1, cells), cells + 1))))
        bb = tile_to_beats(bad, lanes)
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
    beats += tile_to_beats(good[0], lanes)
    return beats


def trace_weights() -> list[np.ndarray]:
    """float32 TD3 weight matrices: the trained dense layers of the committed trace.

    A missing trace raises (``FileNotFoundError`` from ``golden.traces.load_trace``): a test of
    real weights must fail without them, not pass on stand-in data.
    """
    from golden.bf16 import bf16_to_f32
    from golden.traces import iter_tensors, load_trace
    ws = [np.asarray(bf16_to_f32(w), np.float32)
          for name, _, w in iter_tensors(load_trace(), kinds=("W",)) if name.startswith("dense/")]
    if not ws:
        raise ValueError("the TD3 trace holds no dense/ weight matrices")
    return ws


def pruned_weight_tiles(tile: int, count: int, seed: int) -> list[np.ndarray]:
    """Up to ``count`` tiles of TD3 weights magnitude-pruned to 50, 70 and 90% sparsity (bf16).

    The committed trace holds trained dense and circulant layers (circulant ones need no
    transposer), so the pruning to the sparsities of interest happens here.
    """
    from golden.bf16 import f32_to_bf16
    ws = trace_weights()
    tiles: list[np.ndarray] = []
    for sparsity in (0.5, 0.7, 0.9):
        for w in ws:
            cut = np.quantile(np.abs(w), sparsity)
            ts, _ = tile_matrix(np.asarray(f32_to_bf16(np.where(np.abs(w) > cut, w, 0))), tile)
            tiles += ts
    if len(tiles) > count:
        pick = np.random.default_rng(seed + 1).choice(len(tiles), count, replace=False)
        tiles = [tiles[k] for k in sorted(pick)]
    return tiles


def block_sparse_circulant(v: np.ndarray, bitmap: np.ndarray, n_in: int | None = None) -> np.ndarray:
    """The expanded W of a circulant layer with pruned blocks as a block-sparse matrix: the kept
    k x k blocks as the trace's W holds them, the pruned ones not stored (+0 patterns, where the
    PE array's CIRC command is loaded signed zeros), like a group-sparse W with that bitmap."""
    from golden.gst import block_expand, circ_expand

    k = v.shape[2]
    w = circ_expand(np.asarray(v, np.uint16))
    w = np.where(block_expand(np.asarray(bitmap).astype(bool), k).astype(bool), w, 0).astype(np.uint16)
    return w if n_in is None else np.ascontiguousarray(w[:, :n_in])


def pruned_circulant_weights(path=None) -> dict[str, np.ndarray]:
    """``STAGE/NET/LAYER`` -> (W, bitmap) of every circulant layer with pruned blocks in a trace
    (default the circ-prune stage trace ``tests/data/td3_halfcheetah_gstcp_stages.npz``), W as
    :func:`block_sparse_circulant`. A trace without such a layer raises ValueError."""
    from golden.traces import GSTCP_TRACE, layer_names, load_trace

    t = load_trace(GSTCP_TRACE if path is None else path)
    out = {}
    for name in layer_names(t):
        bm = t.get(f"{name}/bitmap")
        if f"{name}/v" in t and bm is not None and not bm.all():
            out[name] = (block_sparse_circulant(t[f"{name}/v"], bm, t[f"{name}/W"].shape[1]), bm)
    if not out:
        raise ValueError("the trace holds no circulant layer with pruned blocks")
    return out


def pruned_circulant_tiles(tile: int, count: int, seed: int, path=None) -> list[np.ndarray]:
    """Up to ``count`` tiles of the pruned circulant layers of a trace (:func:`pruned_circulant_weights`),
    half of them from the block rows that hold pruned blocks (so empty and stored tiles alternate
    in the stream), the rest from the other tiles."""
    rng = np.random.default_rng(seed)
    tiles, near = [], []
    for w, bm in pruned_circulant_weights(path).values():
        ts, (_, cols) = tile_matrix(w, tile)
        k = w.shape[0] // bm.shape[0]
        for idx, t in enumerate(ts):  # tile row idx // cols lies in block row (idx // cols) * tile // k
            (tiles if bm[(idx // cols) * tile // k].all() else near).append(t)
    pick_near = set(rng.choice(len(near), min(len(near), count - count // 2), replace=False).tolist())
    rest = [t for i, t in enumerate(near) if i not in pick_near] + tiles
    pick = rng.choice(len(rest), min(len(rest), count - len(pick_near)), replace=False)
    return [near[i] for i in sorted(pick_near)] + [rest[i] for i in sorted(pick)]


def masked_weights(path=None) -> dict[str, np.ndarray]:
    """``STAGE/NET/LAYER`` -> W (bf16 patterns) of every element-masked layer of a trace (default
    the circ-fine stage trace ``tests/data/td3_halfcheetah_gstcf_stages.npz``): the trained
    values the run kept, the pruned ones not stored (+0 patterns; the trace's W holds signed
    zeros there, ``W * mask``, which the sparse tile format would store) (golden.traces.masked_layers).
    A trace without such a layer raises ValueError."""
    from golden.traces import GSTCF_TRACE, load_trace, masked_layers

    t = load_trace(GSTCF_TRACE if path is None else path)
    out = {}
    for name in masked_layers(t):
        w = np.asarray(t[f"{name}/W"], np.uint16)
        out[name] = np.where(w & 0x7FFF, w, 0).astype(np.uint16)
    if not out:
        raise ValueError("the trace holds no element-masked layer (GMP, or GST circ-fine after its switch)")
    return out


def masked_tiles(tile: int, count: int, seed: int, path=None) -> list[np.ndarray]:
    """``count`` tiles drawn at random (without replacement, in matrix order) from the tiles of
    the element-masked layers of a trace (:func:`masked_weights`)."""
    rng = np.random.default_rng(seed)
    tiles = [t for w in masked_weights(path).values() for t in tile_matrix(w, tile)[0]]
    pick = rng.choice(len(tiles), min(count, len(tiles)), replace=False)
    return [tiles[i] for i in sorted(pick)]
