"""Golden model of the GST core (``hdl.pe_array``): buffer layouts, tile order, accumulation
order, output beats and the exact cycle model.

NumPy only. Every GEMM is ``C = A . B`` with A (M x K) and B (K x N), bf16 in, fp32 out. The
array has R x C PEs; output tile (ti, tj) covers rows ti*R.. and columns tj*C..; tiles run
row-major (ti outer). Every output accumulates its products in increasing k, starting from -0,
one RNE add each: exactly :func:`golden.bf16.gemm`. The modes (``docs/pe_array.md``):

``dense``   A and B in full.
``sparse``  A group-sparse: only its kept k x k blocks are stored; a (P, Q) bitmap says which.
            An output row block accumulates over its kept blocks only (q ascending).
``wgrad``   dense operands, sparse *output*: output tile (p, q) = block (p, q) is computed only
            where ``bitmap[p, q]`` is set (weight gradient of a group-sparse layer).
``circ``    A block-circulant, stored as v (P, Q, k); ``transpose`` makes A = W^T from the same v.
``dv``      circulant weight gradient: A = dY (M x Bt), B = X^T (Bt x N);
            ``dv[p, q, d] = sum_b sum_r dY[p*k+r, b] * X[q*k+(r-d) mod k, b]`` (b outer, r inner).

Buffer words (lane 0 in the low 16 bits):

* A word (R lanes): dense/wgrad/dv ``A[ti*R + r, kk]`` at address ``ti*K + kk``; sparse: the
  kept blocks row-major, block i of the list holds its k columns at ``i*k + c``; circ: one word
  ``v[p, q, :]`` per block at ``p*Q + q``.
* B word (C lanes): ``B[kk, tj*C + c]`` at address ``tj*K + kk`` in every mode.

Padding lanes (rows or columns past the matrix edge) are zero; an output tile always drains R
beats of C fp32 lanes, and lanes past the edge carry whatever the padding produced.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .codes import LoadSel, Mode, PEArrayError
from .bf16 import FP32_NEG_ZERO, bf16_mul, f32_round_to_bf16_bits, fp32_add, gemm
from .gst import circ_expand

__all__ = [
    "PEArrayCommandError", "check_bitmap_grid",
    "MODES", "ArrayShape", "ceil_div", "tile_order", "pack_lanes", "unpack_lanes",
    "a_words_dense", "a_words_sparse", "a_words_circ", "b_words", "circ_operand", "circ_ring_lanes",
    "gemm_sparse", "gemm_wgrad", "circ_dv", "circ_dv_reference", "run", "output_beats",
    "CycleReport", "cycle_model", "PIPE_DEPTH", "Job", "make_job", "SequenceReport", "sequence_cycles",
    "command_dims", "operand_words", "array_error",
]

MODES = tuple(mode.name.lower() for mode in Mode)
#: S0 issue -> S1 operand registers -> S2 product register -> S3 accumulator
PIPE_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class ArrayShape:
    """An array shape for golden-only use (tests, notebooks without a hardware config).

    Every golden function that takes a ``shape`` reads only its ``rows``, ``cols`` and
    ``block_size`` attributes, so the hardware's ``PEArrayConfig`` is passed as it is: the
    config stays the one source of the array's dimensions, and this class only spells the
    same three names for callers that have no config.
    """

    rows: int
    cols: int
    block_size: int


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ----------------------------------------------------------------------------- buffer layouts

def pack_lanes(lanes) -> int:
    """bf16 (or any 16-bit) lanes -> one integer word, lane 0 in the low bits."""
    word = 0
    for i, v in enumerate(np.asarray(lanes).reshape(-1)):
        word |= int(v) << (16 * i)
    return word


def unpack_lanes(word: int, n: int, width: int = 32) -> np.ndarray:
    mask = (1 << width) - 1
    return np.array([(word >> (width * i)) & mask for i in range(n)],
                    dtype=np.uint32 if width == 32 else np.uint16)


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=np.uint16)
    out[:x.shape[0], :x.shape[1]] = x
    return out


def a_words_dense(a, rows: int) -> list[int]:
    """A (M x K) as column-slice words: address ti*K + kk holds A[ti*R:(ti+1)*R, kk]."""
    a = np.asarray(a, dtype=np.uint16)
    m, k = a.shape
    mt = ceil_div(m, rows)
    p = _pad(a, mt * rows, k)
    return [pack_lanes(p[ti * rows:(ti + 1) * rows, kk]) for ti in range(mt) for kk in range(k)]


def b_words(b, cols: int) -> list[int]:
    """B (K x N) as row-slice words: address tj*K + kk holds B[kk, tj*C:(tj+1)*C]."""
    b = np.asarray(b, dtype=np.uint16)
    k, n = b.shape
    nt = ceil_div(n, cols)
    p = _pad(b, k, nt * cols)
    return [pack_lanes(p[kk, tj * cols:(tj + 1) * cols]) for tj in range(nt) for kk in range(k)]


def a_words_sparse(a, bitmap, k: int) -> list[int]:
    """Kept k x k blocks of A (M x K, multiples of k), row-major block order, k words each."""
    a = np.asarray(a, dtype=np.uint16)
    bm = np.asarray(bitmap).astype(bool)
    words = []
    for p, q in zip(*np.nonzero(bm)):
        for c in range(k):
            words.append(pack_lanes(a[p * k:(p + 1) * k, q * k + c]))
    return words


def a_words_circ(v) -> list[int]:
    """Circulant v (P, Q, k): address p*Q + q holds v[p, q, 0..k-1]."""
    v = np.asarray(v, dtype=np.uint16)
    return [pack_lanes(v[p, q]) for p in range(v.shape[0]) for q in range(v.shape[1])]


def circ_operand(v, transpose: bool = False) -> np.ndarray:
    """The dense A the circulant mode multiplies by: W = circ_expand(v), or W^T."""
    w = circ_expand(np.asarray(v, dtype=np.uint16))
    return np.ascontiguousarray(w.T) if transpose else w


def circ_ring_lanes(v, transpose: bool = False) -> np.ndarray:
    """The A column slices the rotating ring produces, block by block, step by step.

    Returns (MB, KB, k, k) = [block row i, block column j, step c, lane r], computed the way the
    hardware does it: load the word ``v`` of the block (index-reversed when ``transpose``) at
    step 0, then move every lane up by one (lane r takes lane r-1) each step. The identity
    ``circ_ring_lanes(v, t)[i, j, c, r] == circ_operand(v, t)[i*k + r, j*k + c]`` is what lets the
    hardware expand a block from one buffer read (checked in the tests).
    """
    v = np.asarray(v, dtype=np.uint16)
    p_, q_, k = v.shape
    mb, kb = (q_, p_) if transpose else (p_, q_)
    out = np.zeros((mb, kb, k, k), dtype=np.uint16)
    perm = (-np.arange(k)) % k if transpose else np.arange(k)
    for i in range(mb):
        for j in range(kb):
            word = v[j, i] if transpose else v[i, j]
            ring = word[perm]
            for c in range(k):
                out[i, j, c] = ring
                ring = np.roll(ring, 1)  # lane r <- lane r-1
    return out


# ----------------------------------------------------------------------------- arithmetic

def gemm_sparse(a, bitmap, b, k: int) -> np.ndarray:
    """A . B over A's kept blocks only: row block p sums its kept q ascending (then c)."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    bm = np.asarray(bitmap).astype(bool)
    m, n = a.shape[0], b.shape[1]
    out = np.full((m, n), FP32_NEG_ZERO, dtype=np.uint32)
    for p in range(bm.shape[0]):
        cols = np.concatenate([np.arange(q * k, (q + 1) * k) for q in np.nonzero(bm[p])[0]] or
                              [np.zeros(0, dtype=int)])
        if cols.size:
            out[p * k:(p + 1) * k] = gemm(a[p * k:(p + 1) * k, cols], b[cols, :])
    return out


def gemm_wgrad(a, b, bitmap, k: int) -> np.ndarray:
    """Dense A . B of which only the kept k x k output blocks are produced (others stay -0)."""
    full = gemm(a, b)
    mask = np.repeat(np.repeat(np.asarray(bitmap).astype(bool), k, 0), k, 1)[:full.shape[0], :full.shape[1]]
    return np.where(mask, full, np.uint32(FP32_NEG_ZERO)).astype(np.uint32)


def circ_dv(dy, xt, k: int) -> np.ndarray:
    """Circulant weight gradient in hardware order, as a (P*k, Q) matrix ``DV[p*k+d, q]``.

    ``dy`` is dY (M x Bt), ``xt`` is X^T (Bt x N); M and N are multiples of k. For each (p, q, d)
    the products ``dY[p*k+r, b] * X[q*k+(r-d) mod k, b]`` are added for b ascending, then r
    ascending, from -0 (vectorized over p, q, d).
    """
    dy = np.asarray(dy, dtype=np.uint16)
    xt = np.asarray(xt, dtype=np.uint16)
    m, bt = dy.shape
    n = xt.shape[1]
    p_, q_ = m // k, n // k
    ys = dy.reshape(p_, k, bt)  # [p, r, b]
    xs = xt.T.reshape(q_, k, bt)  # [q, i, b]
    idx = (np.arange(k)[:, None] - np.arange(k)[None, :]) % k  # [r, d] -> (r-d) mod k
    acc = np.full((p_, k, q_), FP32_NEG_ZERO, dtype=np.uint32)  # [p, d, q]
    for b in range(bt):
        for r in range(k):
            xv = xs[:, idx[r], b]  # [q, d]
            acc = fp32_add(acc, bf16_mul(ys[:, r, b][:, None, None], xv.T[None, :, :]))
    return acc.reshape(p_ * k, q_)


def circ_dv_reference(dy, xt, k: int) -> np.ndarray:
    """Scalar loop form of :func:`circ_dv` (independent check for small shapes)."""
    dy = np.asarray(dy, dtype=np.uint16)
    xt = np.asarray(xt, dtype=np.uint16)
    m, bt = dy.shape
    n = xt.shape[1]
    out = np.zeros((m, n // k), dtype=np.uint32)
    for p in range(m // k):
        for q in range(n // k):
            for d in range(k):
                acc = np.uint32(FP32_NEG_ZERO)
                for b in range(bt):
                    for r in range(k):
                        prod = bf16_mul(np.uint16(dy[p * k + r, b]), np.uint16(xt[b, q * k + (r - d) % k]))
                        acc = fp32_add(acc, prod)
                out[p * k + d, q] = acc
    return out


def run(mode: str, a, b, *, k: int, bitmap=None, transpose: bool = False) -> np.ndarray:
    """The fp32 result matrix of one command (the math, independent of the array shape).

    ``a`` is A (dense, sparse, wgrad: M x K with sparse's pruned blocks ignored), v (circ) or dY
    (dv); ``b`` is B (K x N); ``k`` the block size (read by sparse, wgrad and dv; no default:
    0 is no block size).
    """
    if mode == "dense":
        return gemm(a, b)
    if mode == "sparse":
        return gemm_sparse(a, bitmap, b, k)
    if mode == "wgrad":
        return gemm_wgrad(a, b, bitmap, k)
    if mode == "circ":
        return gemm(circ_operand(a, transpose), b)
    if mode == "dv":
        return circ_dv(a, b, k)
    raise ValueError(f"mode={mode!r} is not a mode; modes are {', '.join(MODES)}")


# ----------------------------------------------------------------------------- tiles and beats

def tile_order(mode: str, m: int, n: int, shape: ArrayShape, bitmap=None) -> list[tuple[int, int]]:
    """Output tiles (ti, tj) in the order the controller runs them.

    ``m`` x ``n`` is the output matrix (for ``dv``: M rows and Q = N/k block columns). In
    ``wgrad`` mode tiles of pruned blocks are skipped.
    """
    mt, nt = ceil_div(m, shape.rows), ceil_div(n, shape.cols)
    tiles = [(i, j) for i in range(mt) for j in range(nt)]
    if mode == "wgrad":
        bm = np.asarray(bitmap).astype(bool)
        tiles = [(i, j) for i, j in tiles if bm[i, j]]
    return tiles


def output_beats(result: np.ndarray, tiles, shape: ArrayShape, round_bf16: bool = False) -> list[int]:
    """The output stream: per tile, R beats (rows) of C fp32 lanes packed LSB-first.

    Lanes past the matrix edge are not predicted: they are returned as None-masked by
    :func:`beat_masks`; here they are filled from a padded result (the caller compares only the
    valid lanes). With ``round_bf16`` each lane is the bf16 rounding, as an fp32 pattern.
    """
    r_, c_ = shape.rows, shape.cols
    res = np.asarray(result, dtype=np.uint32)
    if round_bf16:
        res = f32_round_to_bf16_bits(res).astype(np.uint32) << 16
    beats = []
    for ti, tj in tiles:
        for r in range(r_):
            row = ti * r_ + r
            lanes = []
            for c in range(c_):
                col = tj * c_ + c
                lanes.append(int(res[row, col]) if row < res.shape[0] and col < res.shape[1] else None)
            beats.append(lanes)
    return beats


# ----------------------------------------------------------------------------- cycle model

@dataclasses.dataclass
class CycleReport:
    """Exact cycle count of one command and the work behind it."""

    cycles: int
    macs: int  # useful multiply-accumulates (each PE-step of a real product counts once)
    steps: int  # issue cycles (including step slots that only fetch)
    tiles: int
    a_reads: int
    b_reads: int
    stall_cycles: int

    @property
    def utilization(self) -> float:
        return self.macs / (self.cycles * self._pes) if self.cycles else 0.0

    _pes: int = 1


def _row_lengths(mode, m, n, kdim, shape, bitmap):
    """Per-tile issue lengths L (cycles between consecutive last-issues, no stalls), and the
    per-tile A/B reads and MACs."""
    r_, c_, k = shape.rows, shape.cols, shape.block_size
    tiles = tile_order(mode, m, n, shape, bitmap)
    lengths, a_reads, b_reads, macs = [], 0, 0, 0
    if mode == "wgrad":
        prev_row = tiles[0][0] if tiles else 0
        for ti, tj in tiles:
            # Rows with no kept tile cost one search cycle each (the FIND state); those before
            # the first tile are counted by cycle_model.
            empty = ti - prev_row - 1 if ti > prev_row else 0
            lengths.append(kdim + empty)
            prev_row = ti
            a_reads += kdim
            b_reads += kdim
            macs += kdim * r_ * c_
        return tiles, lengths, a_reads, b_reads, macs
    for ti, tj in tiles:
        if mode in ("dense", "circ"):
            lengths.append(kdim)
            a_reads += kdim if mode == "dense" else kdim // k
            b_reads += kdim
            macs += kdim * r_ * c_
        elif mode == "sparse":
            kept = int(np.asarray(bitmap)[ti].astype(bool).sum())
            lengths.append(max(1, kept * k))
            a_reads += kept * k
            b_reads += kept * k
            macs += kept * k * r_ * c_
        elif mode == "dv":
            lengths.append((kdim + 1) * k)
            a_reads += kdim
            b_reads += kdim * k
            macs += kdim * k * r_ * c_
    return tiles, lengths, a_reads, b_reads, macs


def cycle_model(mode: str, m: int, n: int, kdim: int, shape: ArrayShape, bitmap=None,
                useful_macs: int | None = None) -> CycleReport:
    """Cycles of one command from the cycle after it is accepted to the transfer of its last
    output beat, with the output never stalled (``busy`` is high for exactly this many cycles).

    ``m`` x ``n`` is the output (for ``dv``: rows M and block columns Q); ``kdim`` the reduction
    length (K; for ``dv`` the batch). The schedule (``docs/pe_array.md``)::

        cycles = 1 (CHECK) + pre + 1 (FIND) + L_0 + PIPE_DEPTH + sum_{n>=1} max(L_n, R+1) + R

    (``wgrad`` only: at least the cycle after the last issue plus one per trailing empty row.)

    with ``pre`` = P rows of bitmap pre-scan in ``sparse`` mode, L_n the issue cycles of tile n
    and R the drain of the last tile. A tile shorter than R+1 waits for the previous drain.
    """
    r_ = shape.rows
    tiles, lengths, a_reads, b_reads, macs = _row_lengths(mode, m, n, kdim, shape, bitmap)
    pre = int(np.asarray(bitmap).shape[0]) if mode == "sparse" else 0
    if not tiles:  # wgrad with an all-zero bitmap: FIND walks every row, then one DRAIN cycle
        mt = ceil_div(m, r_)
        cycles = 1 + mt + 2
        rep = CycleReport(cycles, 0, 0, 0, 0, 0, 0)
        rep._pes = shape.rows * shape.cols
        return rep
    # wgrad: empty rows before the first kept tile are searched too.
    lead = 0
    if mode == "wgrad":
        bm = np.asarray(bitmap).astype(bool)
        lead = sum(1 for i in range(tiles[0][0]) if not bm[i].any())
    t = 1 + pre + 1 + lead + lengths[0] + PIPE_DEPTH
    stalls = 0
    for length in lengths[1:]:
        t += max(length, r_ + 1)
        stalls += max(0, r_ + 1 - length)
    cycles = t + r_
    if mode == "wgrad":
        # Empty rows after the last kept tile are still searched (one cycle each, then DRAIN);
        # a long tail of them can outlast the pipeline drain.
        bm = np.asarray(bitmap).astype(bool)
        tail = sum(1 for i in range(tiles[-1][0] + 1, ceil_div(m, r_)) if not bm[i].any())
        cycles = max(cycles, t - PIPE_DEPTH + 1 + tail)
    steps = sum(lengths)
    rep = CycleReport(cycles, macs if useful_macs is None else useful_macs, steps, len(tiles),
                      a_reads, b_reads, stalls)
    rep._pes = shape.rows * shape.cols
    return rep


# ----------------------------------------------------------------------------- host jobs

@dataclasses.dataclass
class Job:
    """Everything a host does for one command, and what it must get back.

    ``loads`` are (sel, addr, word) buffer writes (``LoadSel``: A, B or a bitmap row), ``cmd``
    the command fields, ``expected`` the output beats (lists of C fp32 patterns, None = lane past
    the edge, not checked), ``report`` the cycle model. ``bank`` is the operand bank the loads
    fill and the command reads (None on a one-bank array: the beats then carry no bank field).
    """

    mode: str
    loads: list
    cmd: dict
    expected: list
    report: CycleReport
    result: np.ndarray
    bank: int | None = None

    def load_beats(self) -> list[dict]:
        """The load stream's payloads (with the bank field when the job has a bank)."""
        extra = {} if self.bank is None else {"bank": self.bank}
        return [{"sel": sel, "addr": addr, "data": word, **extra} for sel, addr, word in self.loads]

    def command(self) -> dict:
        """The command stream's payload (with the bank field when the job has a bank)."""
        return dict(self.cmd) if self.bank is None else {**self.cmd, "bank": self.bank}

    def in_bank(self, bank: int) -> "Job":
        """The same job with its operands in ``bank``."""
        return dataclasses.replace(self, bank=bank)


class PEArrayCommandError(ValueError):
    """A command the PE array rejects; ``code`` is the :class:`golden.codes.PEArrayError` it
    puts on ``err_code`` for it."""

    def __init__(self, code: PEArrayError, message: str):
        super().__init__(message)
        self.code = code


def check_bitmap_grid(mode: str, m: int, n: int, kdim: int, k: int, bitmap, max_blocks: int) -> None:
    """Refuse a sparse or wgrad command whose bitmap the array cannot hold.

    The block grid of the command (sparse: M/k x K/k, wgrad: M/k x N/k) must fit the
    ``max_blocks`` x ``max_blocks`` bitmap register file: otherwise the array rejects the command
    with ``PEArrayError.SHAPE`` (docs/pe_array.md). Set bits at a block row or column of
    ``max_blocks`` or more cannot even be loaded; they lie outside any grid the array accepts,
    so they are refused as ``PEArrayError.BITMAP``.
    """
    grid = (m // k, (kdim if mode == "sparse" else n) // k)
    if max(grid) > max_blocks:
        raise PEArrayCommandError(
            PEArrayError.SHAPE, f"pe_array: a {mode} command of {grid[0]} x {grid[1]} blocks is rejected "
            f"(err_code SHAPE): the bitmap holds at most max_blocks={max_blocks} blocks per side")
    bm = np.asarray(bitmap).astype(bool)
    if bm[max_blocks:].any() or bm[:, max_blocks:].any():
        raise PEArrayCommandError(
            PEArrayError.BITMAP, f"pe_array: the {bm.shape[0]} x {bm.shape[1]} bitmap has kept blocks at a row or "
            f"column >= max_blocks={max_blocks}, which cannot be loaded (err_code BITMAP: outside the grid)")


def make_job(mode: str, shape: ArrayShape, a, b, *, bitmap=None, transpose: bool = False,
             round_bf16: bool = False, max_blocks: int | None = None, bank: int | None = None) -> Job:
    """Lay out the operands, compute the golden result, beats and cycles of one command.

    ``a``: A (M x K) for dense, sparse and wgrad; v (P, Q, k) for circ; dY as (M x Bt) for dv.
    ``b``: B (K x N); for dv X^T (Bt x N). ``shape``: anything with ``rows``, ``cols`` and
    ``block_size`` (the hardware config itself, or :class:`ArrayShape`). ``max_blocks``: the
    array's bitmap size; with it, a sparse or wgrad command the array would reject for its
    bitmap grid raises :class:`PEArrayCommandError` (:func:`check_bitmap_grid`) instead of
    predicting results for it, and the loads clear every bitmap row of the array.
    """
    k = shape.block_size
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    if mode == "sparse":
        aw = a_words_sparse(a, bitmap, k)
    elif mode == "circ":
        aw = a_words_circ(a)
    else:
        aw = a_words_dense(a, shape.rows)
    loads = [(LoadSel.A, i, w) for i, w in enumerate(aw)]
    loads += [(LoadSel.B, i, w) for i, w in enumerate(b_words(b, shape.cols))]
    if mode in ("sparse", "wgrad"):
        bm = np.asarray(bitmap).astype(np.uint8)
        if max_blocks is not None:
            check_bitmap_grid(mode, a.shape[0], b.shape[1], a.shape[1], k, bm, max_blocks)
        rows = max_blocks if max_blocks is not None else bm.shape[0]
        for p in range(rows):
            word = 0
            if p < bm.shape[0]:
                for q in range(bm.shape[1]):
                    word |= int(bm[p, q]) << q
            loads.append((LoadSel.BITMAP, p, word))
    if mode == "circ":
        p_, q_, _ = a.shape
        m, kdim = (q_ * k, p_ * k) if transpose else (p_ * k, q_ * k)
    else:
        m, kdim = a.shape
    n = b.shape[1]
    result = run(mode, a, b, bitmap=bitmap, k=k, transpose=transpose)
    out_cols = n // k if mode == "dv" else n
    tiles = tile_order(mode, m, out_cols, shape, bitmap)
    expected = output_beats(result, tiles, shape, round_bf16)
    report = cycle_model(mode, m, out_cols, kdim, shape, bitmap)
    cmd = {"mode": Mode.parse(mode), "transpose": int(transpose), "round": int(round_bf16),
           "m": m, "n": n, "k": kdim}
    return Job(mode, loads, cmd, expected, report, result, bank)


# ----------------------------------------------------------------------------- command sequences

@dataclasses.dataclass
class SequenceReport:
    """Cycle timeline of a command sequence with its loads (:func:`sequence_cycles`).

    Cycle 0 is the first cycle the host offers a load beat. ``accepted[i]`` is the cycle command
    i transfers, ``done[i]`` the first cycle after its last output beat (``busy`` low again),
    ``load_start[i]`` the cycle job i's first load beat transfers; ``total`` = ``done[-1]``.
    """

    banks: int
    load_start: list[int]
    accepted: list[int]
    done: list[int]
    load_beats: int
    busy_cycles: int

    @property
    def total(self) -> int:
        return self.done[-1] if self.done else 0

    @property
    def exposed_load_cycles(self) -> int:
        """Cycles the array sat waiting for operands (the sequence minus its commands)."""
        return self.total - self.busy_cycles - len(self.done)


def sequence_cycles(jobs, banks: int) -> SequenceReport:
    """Exact cycles of a command sequence whose loads overlap compute on a ``banks``-bank array.

    ``jobs``: per command ``(load beats, busy cycles)`` (a :class:`Job` gives
    ``len(job.loads)``, ``job.report.cycles``). Job i's operands go to bank ``i % banks``. The
    host protocol (``docs/pe_array.md``, driven this way by the tests): one load stream carries
    every job's beats in order, back to back, and starts job i's beats only after command
    ``i - banks`` has transferred (the last command that reads that bank before job i); command i
    is offered from the cycle after its last load beat; the output is never stalled. The
    hardware holds a load to the bank of the running command until that command is done, so::

        load_start[i] = max(load_end[i-1], done[i - banks])     (jobs with loads)
        load_end[i]   = load_start[i] + beats[i]
        accepted[i]   = max(load_end[i], done[i-1])
        done[i]       = accepted[i] + cycles[i] + 1

    With one bank this is the serial sum of (beats + cycles + 1); with two, job i+1's loads
    run during command i and cost nothing when command i is the longer.
    """
    if banks < 1:
        raise ValueError(f"banks={banks} is not allowed; banks must be 1 or more")
    items = [(len(j.loads), j.report.cycles) if isinstance(j, Job) else tuple(j) for j in jobs]
    starts, accepted, done = [], [], []
    load_end = 0
    for i, (beats, cycles) in enumerate(items):
        if beats:
            start = max(load_end, done[i - banks] if i >= banks else 0)
            load_end = start + beats
        else:
            start = load_end
        starts.append(start)
        accepted.append(max(load_end, done[i - 1] if i else 0))
        done.append(accepted[-1] + cycles + 1)
    return SequenceReport(banks, starts, accepted, done, sum(b for b, _ in items), sum(c for _, c in items))


# ----------------------------------------------------------------------------- command checks

#: Per mode, what the sequencer's CHECK state needs of a command (``hdl.pe_array_sequencer``'s
#: ``SHAPE_RULES``, the same table): the config flag that builds the mode, the dims that must be
#: whole blocks, the bitmap grid (row dim, column dim), and the A / B words the operands take as
#: functions of the dims (None: the kept blocks are counted in PRE, see ``BLOCKS``).
_CHECK_RULES = {
    Mode.DENSE: (None, "", (), lambda d: d["MT"] * d["K"], lambda d: d["NT"] * d["K"]),
    Mode.SPARSE: ("sparse", "mk", ("m", "k"), None, lambda d: d["NT"] * d["K"]),
    Mode.WGRAD: ("sparse", "mn", ("m", "n"), lambda d: d["MT"] * d["K"], lambda d: d["NT"] * d["K"]),
    Mode.CIRC: ("circulant", "mk", (), lambda d: d["MB"] * d["KB"], lambda d: d["NT"] * d["K"]),
    Mode.DV: ("circulant", "mn", (), lambda d: d["MT"] * d["K"], lambda d: d["QB"] * d["K"]),
}


def command_dims(mode: int, m: int, n: int, kdim: int, shape) -> dict[str, int]:
    """The command's dimensions in tiles and blocks, as the sequencer derives them.

    ``MT``/``NT``: output tile rows/columns (dv: columns are blocks), ``MB``/``QB``/``KB``: M, N,
    K in whole blocks (floor), ``M``/``N``/``K``: the fields.
    """
    k = shape.block_size
    qb = n // k
    cols = qb if mode == Mode.DV else n
    return {"M": m, "N": n, "K": kdim, "MT": ceil_div(m, shape.rows), "NT": ceil_div(cols, shape.cols),
            "MB": m // k, "QB": qb, "KB": kdim // k}


def operand_words(mode: int, m: int, n: int, kdim: int, shape) -> tuple[int | None, int]:
    """Buffer words (A, B) a command reads from address 0 (A None for sparse: the kept blocks)."""
    _, _, _, a_words, b_words = _CHECK_RULES[Mode(mode)]
    d = command_dims(mode, m, n, kdim, shape)
    return (None if a_words is None else a_words(d)), b_words(d)


def array_error(shape, mode: int, m: int, n: int, kdim: int, bitmap_rows=()) -> PEArrayError:
    """What the PE array's CHECK/PRE states say of one command: a :class:`PEArrayError`.

    ``shape`` has ``rows``, ``cols``, ``block_size``, ``a_depth``, ``b_depth``, ``max_blocks``
    and optionally ``circulant`` / ``sparse`` (the build flags, True when absent):
    ``hdl.pe_array.PEArrayConfig`` is passed as it is. ``bitmap_rows`` are the bank's bitmap rows
    (bit q of row p = block (p, q) kept; missing rows are 0). The checks run in the hardware's
    order: MODE, SHAPE, BUFFER, BITMAP (sparse modes), BLOCKS (sparse, after the PRE count).
    """
    if mode not in tuple(Mode):
        return PEArrayError.MODE
    feature, whole, grid, a_fn, b_fn = _CHECK_RULES[Mode(mode)]
    if feature is not None and not getattr(shape, feature, True):
        return PEArrayError.MODE
    k, mb = shape.block_size, shape.max_blocks
    d = command_dims(mode, m, n, kdim, shape)
    fields = {"m": m, "n": n, "k": kdim}
    blocks = {"m": d["MB"], "n": d["QB"], "k": d["KB"]}
    if (0 in (m, n, kdim) or any(fields[x] % k for x in whole)
            or any(blocks[x] > mb for x in grid)):
        return PEArrayError.SHAPE
    if b_fn(d) > shape.b_depth or (a_fn is not None and a_fn(d) > shape.a_depth):
        return PEArrayError.BUFFER
    if not grid:
        return PEArrayError.NONE
    rows = [int(r) for r in bitmap_rows] + [0] * max(0, mb - len(bitmap_rows))
    qmask = (1 << blocks[grid[1]]) - 1
    if any((row & ~qmask) if p < d["MB"] else row for p, row in enumerate(rows[:mb])):
        return PEArrayError.BITMAP
    if mode == Mode.SPARSE:
        kept = sum(bin(rows[p] & qmask).count("1") for p in range(d["MB"]))
        if kept * k > shape.a_depth:
            return PEArrayError.BLOCKS
    return PEArrayError.NONE
