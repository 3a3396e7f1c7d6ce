"""Programs for the OmniDRL top: one memory image, chip segments and host steps.

A :class:`Program` is what ``golden/compile_td3.py`` makes of one TD3 update and what
``golden/machine.py`` (or a testbench driving the RTL) runs: an ordered list of

* :class:`ChipSegment`: commands for the top (``golden.isa.Command``), ending with a FENCE;
* :class:`HostStep`: a Python function of the memory image (the fp32 vector work), with its
  FLOPs and the bytes it moves, so a later on-chip vector unit can be costed.

Both work on one :class:`Memory`: a sparse, word-addressed image of ``mem_bits = 16 * k`` bit
words. The agent's whole state (fp32 master weights, Adam moments, targets, the Adam and update
counters) lives in it, so a host step reads everything it needs from memory and writes back what
it produces; nothing is carried between steps in Python.

Memory-side formats (``docs/formats.md``, "Command stream"):

* **raw bf16**: one word = ``k`` bf16 lanes, lane 0 in the low 16 bits;
* **fp32**: ``k / 2`` fp32 values per word, value 0 in the low 32 bits; a GEMM's fp32 output beat
  of ``k`` lanes is two words, lanes ``0 .. k/2 - 1`` in the first;
* **EMD block**: one length word ``L`` then the ``L`` words of
  ``golden.emd.encode(values, fmt, word_bits=mem_bits)``;
* **integers** (counters, host scalars): one value per word, in the low bits.

Operand layouts (:func:`a_dense_words` and friends) are the PE array's buffer layouts
(``docs/pe_array.md``) as ``(words, k)`` lane arrays: a LOAD copies memory words to buffer words
one for one, so a tensor is written to memory in the order of the buffer words it fills.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from . import emd as emdlib
from .emd import EmdFormat
from .isa import Command, IsaShape
from .pe_array import ceil_div

__all__ = ["Memory", "Region", "Layout", "ChipSegment", "HostStep", "Program", "words_to_lanes",
           "lanes_to_words", "a_dense_words", "b_dense_words", "a_sparse_words", "a_circ_words",
           "bitmap_words", "unpack_a_dense", "unpack_b_dense", "beats_to_matrix", "fp32_beats_words",
           "words_fp32_beats"]

_PAGE = 4096  # words per page of the sparse image


# ----------------------------------------------------------------------------- words and lanes

def words_to_lanes(words, k: int) -> np.ndarray:
    """Integers of ``16 * k`` bits -> a ``(n, k)`` uint16 lane array (lane 0 = low bits)."""
    raw = b"".join(int(w).to_bytes(2 * k, "little") for w in words)
    return np.frombuffer(raw, dtype="<u2").astype(np.uint16).reshape(-1, k)


def lanes_to_words(lanes) -> list[int]:
    """Inverse of :func:`words_to_lanes`."""
    lanes = np.asarray(lanes, dtype=np.uint16)
    data = lanes.astype("<u2").tobytes()
    step = 2 * lanes.shape[1]
    return [int.from_bytes(data[i:i + step], "little") for i in range(0, len(data), step)]


def fp32_beats_words(bits) -> np.ndarray:
    """fp32 patterns (``(n, L)``, L even) -> ``(n * L // (k/2), k)`` word lanes, value 0 low.

    A flat vector of fp32 values is laid out the same way: ``k / 2`` values per word.
    """
    b = np.asarray(bits, dtype=np.uint32).reshape(-1)
    out = np.empty(2 * b.size, dtype=np.uint16)
    out[0::2] = b & 0xFFFF
    out[1::2] = b >> 16
    return out


def words_fp32_beats(lanes) -> np.ndarray:
    """Inverse of :func:`fp32_beats_words`: word lanes -> flat fp32 patterns."""
    flat = np.asarray(lanes, dtype=np.uint16).reshape(-1).astype(np.uint32)
    return flat[0::2] | (flat[1::2] << 16)


# ----------------------------------------------------------------------------- memory image

class Memory:
    """Word-addressed memory image of ``16 * k`` bit words, sparse (unwritten words read 0).

    Words are held as ``k`` uint16 lanes. ``undefined`` holds addresses whose content the
    machine model does not predict (written by a command that was flagged mid-way, see
    ``docs/formats.md``); :meth:`diff` skips them. ``words_read`` / ``words_written`` count
    every access (the machine model reports them per host step).
    """

    def __init__(self, k: int):
        if k < 2 or k & (k - 1):
            raise ValueError(f"k={k} is not allowed: the lanes per word must be a power of two >= 2")
        self.k = k
        self._pages: dict[int, np.ndarray] = {}
        self.undefined: set[int] = set()
        self.words_read = 0
        self.words_written = 0

    @property
    def mem_bits(self) -> int:
        return 16 * self.k

    # -- raw access ------------------------------------------------------------------------
    def _chunks(self, addr: int, n: int):
        if addr < 0:
            raise ValueError(f"address {addr} is negative")
        pos = 0
        while pos < n:
            a = addr + pos
            page, off = divmod(a, _PAGE)
            take = min(n - pos, _PAGE - off)
            yield page, off, pos, take
            pos += take

    def read(self, addr: int, n: int) -> np.ndarray:
        """``n`` words from ``addr`` as a ``(n, k)`` uint16 array."""
        out = np.zeros((n, self.k), dtype=np.uint16)
        for page, off, pos, take in self._chunks(addr, n):
            p = self._pages.get(page)
            if p is not None:
                out[pos:pos + take] = p[off:off + take]
        self.words_read += n
        return out

    def write(self, addr: int, lanes) -> int:
        """Write ``(n, k)`` lanes from ``addr``; returns n."""
        lanes = np.asarray(lanes, dtype=np.uint16).reshape(-1, self.k)
        n = lanes.shape[0]
        for page, off, pos, take in self._chunks(addr, n):
            p = self._pages.get(page)
            if p is None:
                p = self._pages[page] = np.zeros((_PAGE, self.k), dtype=np.uint16)
            p[off:off + take] = lanes[pos:pos + take]
        if self.undefined:
            self.undefined.difference_update(range(addr, addr + n))
        self.words_written += n
        return n

    def word(self, addr: int) -> int:
        return lanes_to_words(self.read(addr, 1))[0]

    def set_word(self, addr: int, value: int) -> None:
        self.write(addr, words_to_lanes([int(value) & ((1 << self.mem_bits) - 1)], self.k))

    def mark_undefined(self, addr: int, n: int) -> None:
        self.undefined.update(range(addr, addr + n))

    # -- formats ---------------------------------------------------------------------------
    def write_bf16(self, addr: int, values) -> int:
        """bf16 patterns, ``k`` per word (the last word padded with +0); returns words written."""
        v = np.asarray(values, dtype=np.uint16).reshape(-1)
        pad = (-v.size) % self.k
        return self.write(addr, np.concatenate([v, np.zeros(pad, np.uint16)]).reshape(-1, self.k))

    def read_bf16(self, addr: int, n_values: int) -> np.ndarray:
        return self.read(addr, ceil_div(n_values, self.k)).reshape(-1)[:n_values]

    def write_fp32(self, addr: int, bits) -> int:
        """fp32 patterns, ``k / 2`` per word (last word padded with +0); returns words written."""
        b = np.asarray(bits, dtype=np.uint32).reshape(-1)
        half = self.k // 2
        b = np.concatenate([b, np.zeros((-b.size) % half, np.uint32)])
        return self.write(addr, fp32_beats_words(b).reshape(-1, self.k))

    def read_fp32(self, addr: int, n_values: int) -> np.ndarray:
        lanes = self.read(addr, ceil_div(n_values, self.k // 2))
        return words_fp32_beats(lanes)[:n_values]

    def write_f32(self, addr: int, values) -> int:
        """float32 values (any shape, C order) as fp32 words."""
        return self.write_fp32(addr, np.ascontiguousarray(values, dtype=np.float32).view(np.uint32))

    def read_f32(self, addr: int, shape) -> np.ndarray:
        n = int(np.prod(shape))
        return self.read_fp32(addr, n).view(np.float32).reshape(shape).copy()

    def write_emd(self, addr: int, values, fmt: EmdFormat) -> int:
        """An EMD block: the length word L, then L stream words. Returns 1 + L."""
        words = emdlib.encode(np.asarray(values, dtype=np.uint16).reshape(-1), fmt, word_bits=self.mem_bits)
        self.set_word(addr, len(words))
        self.write(addr + 1, words_to_lanes(words, self.k))
        return 1 + len(words)

    def read_emd(self, addr: int, fmt: EmdFormat, lanes: int | None = None) -> np.ndarray:
        """Decode the EMD block at ``addr`` (``golden.emd.decode``; raises EmdFormatError)."""
        length = self.word(addr)
        words = lanes_to_words(self.read(addr + 1, length))
        return emdlib.decode(words, fmt, word_bits=self.mem_bits, lanes=lanes or self.k)

    def emd_words(self, addr: int) -> int:
        """Words the EMD block at ``addr`` takes (length word included)."""
        return 1 + self.word(addr)

    # -- whole images ----------------------------------------------------------------------
    def copy(self) -> "Memory":
        m = Memory(self.k)
        m._pages = {p: a.copy() for p, a in self._pages.items()}
        m.undefined = set(self.undefined)
        return m

    def diff(self, other: "Memory", limit: int = 20) -> list[int]:
        """Addresses (at most ``limit``) whose words differ, skipping either image's undefined words."""
        if other.k != self.k:
            raise ValueError(f"images of k={self.k} and k={other.k} cannot be compared")
        out = []
        zero = np.zeros((_PAGE, self.k), dtype=np.uint16)
        skip = self.undefined | other.undefined
        for page in sorted(set(self._pages) | set(other._pages)):
            a, b = self._pages.get(page, zero), other._pages.get(page, zero)
            for off in np.nonzero((a != b).any(axis=1))[0]:
                addr = page * _PAGE + int(off)
                if addr not in skip:
                    out.append(addr)
                    if len(out) >= limit:
                        return out
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, Memory) and not self.diff(other, limit=1)

    __hash__ = None


# ----------------------------------------------------------------------------- layout table

#: Region kinds (what the words at a region hold).
KINDS = {
    "f32": "fp32 host tensor, k/2 values per word, C order",
    "int": "integers, one per word",
    "bf16": "raw bf16 operand words (k lanes)",
    "bitmap": "raw bitmap words, bit q of word p = block (p, q) kept, max_blocks words",
    "emd": "EMD block (length word + stream) of bf16 operand words",
    "beats32": "raw fp32 GEMM output beats, two words per beat",
}


@dataclasses.dataclass(frozen=True)
class Region:
    """A named range of the memory image: ``[addr, addr + words)``.

    ``shape`` is the logical tensor (for operands: the matrix whose buffer words the region
    holds), ``note`` says what it is.
    """

    name: str
    addr: int
    words: int
    kind: str
    shape: tuple = ()
    note: str = ""

    @property
    def end(self) -> int:
        return self.addr + self.words


class Layout:
    """Named regions allocated one after another from ``base``."""

    def __init__(self, base: int = 0):
        self.regions: dict[str, Region] = {}
        self.next = base

    def add(self, name: str, kind: str, words: int, shape=(), note: str = "") -> Region:
        if name in self.regions:
            raise ValueError(f"region {name!r} is allocated twice")
        if kind not in KINDS:
            raise ValueError(f"region kind {kind!r} is not one of {', '.join(KINDS)}")
        r = Region(name, self.next, int(words), kind, tuple(shape), note)
        self.regions[name] = r
        self.next += max(1, int(words))
        return r

    def __getitem__(self, name: str) -> Region:
        return self.regions[name]

    def __contains__(self, name: str) -> bool:
        return name in self.regions

    @property
    def words(self) -> int:
        return self.next

    def table(self) -> str:
        """The layout as a Markdown table."""
        rows = ["| region | addr | words | kind | shape | note |", "|---|---|---|---|---|---|"]
        rows += [f"| {r.name} | {r.addr} | {r.words} | {r.kind} | {'x'.join(map(str, r.shape))} | {r.note} |"
                 for r in self.regions.values()]
        return "\n".join(rows)


# ----------------------------------------------------------------------------- program pieces

@dataclasses.dataclass
class ChipSegment:
    """Commands for the top, run in order; the last one is a FENCE."""

    name: str
    commands: list[Command]


@dataclasses.dataclass
class HostStep:
    """Host work between chip segments: ``fn(memory)`` reads its inputs from the image and
    writes its results back.

    ``flops``: arithmetic operations (one per elementwise add, multiply, divide, compare, max,
    sqrt or tanh; a reduction of n values counts n - 1). ``bytes_read`` / ``bytes_written``:
    the logical tensors it moves (fp32 values 4 bytes, bf16 values 2 bytes, integers 8 bytes),
    what an on-chip vector unit would move; the machine model also measures the memory words.
    """

    name: str
    fn: Callable[[Memory], None]
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


@dataclasses.dataclass
class Program:
    """Steps in order over one memory image laid out by ``layout``."""

    shape: IsaShape
    emd_fmt: EmdFormat
    layout: Layout
    steps: list = dataclasses.field(default_factory=list)
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def segments(self) -> list[ChipSegment]:
        return [s for s in self.steps if isinstance(s, ChipSegment)]

    @property
    def host_steps(self) -> list[HostStep]:
        return [s for s in self.steps if isinstance(s, HostStep)]

    def commands(self) -> list[Command]:
        return [c for s in self.segments for c in s.commands]


# ----------------------------------------------------------------------------- operand layouts

def _pad2(x: np.ndarray, rows: int, cols: int, fill: int = 0) -> np.ndarray:
    out = np.full((rows, cols), fill, dtype=np.uint16)
    out[:x.shape[0], :x.shape[1]] = x
    return out


def a_dense_words(a, rows: int) -> np.ndarray:
    """A (M x K) in the dense A layout: word ``ti*K + kk`` = ``A[ti*R : ti*R+R, kk]`` (rows past
    M zero). ``golden.pe_array.a_words_dense`` as a lane array."""
    a = np.asarray(a, dtype=np.uint16)
    m, k = a.shape
    mt = ceil_div(m, rows)
    return _pad2(a, mt * rows, k).reshape(mt, rows, k).transpose(0, 2, 1).reshape(mt * k, rows)


def b_dense_words(b, cols: int) -> np.ndarray:
    """B (K x N) in the B layout: word ``tj*K + kk`` = ``B[kk, tj*C : tj*C+C]`` (columns past N
    zero). ``golden.pe_array.b_words`` as a lane array."""
    b = np.asarray(b, dtype=np.uint16)
    k, n = b.shape
    nt = ceil_div(n, cols)
    return _pad2(b, k, nt * cols).reshape(k, nt, cols).transpose(1, 0, 2).reshape(nt * k, cols)


def a_sparse_words(a, bitmap, k: int) -> np.ndarray:
    """Kept k x k blocks of A (M x K, whole blocks), row-major block order, block i's column c
    at word ``i*k + c``. ``golden.pe_array.a_words_sparse`` as a lane array."""
    a = np.asarray(a, dtype=np.uint16)
    bm = np.asarray(bitmap).astype(bool)
    p_, q_ = bm.shape
    blocks = a[:p_ * k, :q_ * k].reshape(p_, k, q_, k).transpose(0, 2, 3, 1)  # [p, q, c, r]
    return blocks[bm].reshape(-1, k)


def a_circ_words(v) -> np.ndarray:
    """Circulant v (P, Q, k): word ``p*Q + q`` = ``v[p, q, :]``."""
    v = np.asarray(v, dtype=np.uint16)
    return v.reshape(-1, v.shape[-1])


def bitmap_words(bitmap, rows: int) -> list[int]:
    """A (P, Q) block bitmap as ``rows`` integers (bit q of row p; rows past P are 0)."""
    bm = np.asarray(bitmap).astype(bool)
    out = [0] * rows
    for p in range(bm.shape[0]):
        out[p] = sum(1 << int(q) for q in np.nonzero(bm[p])[0])
    return out


def unpack_a_dense(words, m_tiles: int, kdim: int) -> np.ndarray:
    """Buffer words ``[0, MT*K)`` in the dense A layout -> the (MT*R, K) matrix they hold."""
    w = np.asarray(words, dtype=np.uint16)[:m_tiles * kdim]
    r = w.shape[1]
    return w.reshape(m_tiles, kdim, r).transpose(0, 2, 1).reshape(m_tiles * r, kdim)


def unpack_b_dense(words, n_tiles: int, kdim: int) -> np.ndarray:
    """Buffer words ``[0, NT*K)`` in the B layout -> the (K, NT*C) matrix they hold."""
    w = np.asarray(words, dtype=np.uint16)[:n_tiles * kdim]
    c = w.shape[1]
    return w.reshape(n_tiles, kdim, c).transpose(1, 0, 2).reshape(kdim, n_tiles * c)


def beats_to_matrix(beats, tiles, rows: int, m_tiles: int, n_tiles: int, fill: int = 0) -> np.ndarray:
    """Output beats (R per tile, tiles in ``tiles`` order) -> the (MT*R, NT*C) matrix; tiles not
    in the list (wgrad's pruned blocks) hold ``fill``."""
    beats = np.asarray(beats)
    c = beats.shape[1]
    out = np.full((m_tiles * rows, n_tiles * c), fill, dtype=beats.dtype)
    for n, (ti, tj) in enumerate(tiles):
        out[ti * rows:(ti + 1) * rows, tj * c:(tj + 1) * c] = beats[n * rows:(n + 1) * rows]
    return out
