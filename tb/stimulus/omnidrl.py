"""Stimulus for the OmniDRL top: a memory model, a host that runs programs, and test programs.

The same :class:`TopHost` serves the top in Amaranth's simulator (:func:`run_amsim`) and in the
cocotb testbench (``tb/test_omnidrl.py``): it answers ``rd_req`` with ``rd_data`` words (read
when the request is taken: the top only issues a read once every write it depends on has
transferred), applies every ``wr`` beat, and sends the program one segment at a time: a
segment's commands end with a FENCE, and its status beat lets the host run the host step that
follows (Python on the same memory image) and send the next segment.

:class:`ProgramBuilder` lays out small test programs on the golden block functions
(``golden.pe_array.make_job``, ``golden.emd.encode``): it places operands in memory, emits the
commands and records the memory words every store must produce. Nothing here imports the HDL.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from golden.bf16 import f32_round_to_bf16_bits
from golden.codes import LoadSel, Mode
from golden.emd import encode as emd_encode
from golden.isa import Command, Fmt, IsaShape, Op, encode

__all__ = ["Memory", "TopHost", "ProgramBuilder", "fp32_words", "bf16_words", "lanes_of", "run_amsim"]


class Memory:
    """Word-addressed memory of ``mem_bits``-bit words (unwritten words read 0)."""

    def __init__(self, mem_bits: int, words: dict[int, int] | None = None):
        self.mem_bits = mem_bits
        self.words: dict[int, int] = dict(words or {})
        self.writes = 0
        self.reads = 0

    def read(self, addr: int, n: int) -> list[int]:
        self.reads += n
        return [self.words.get(a, 0) for a in range(addr, addr + n)]

    def write(self, addr: int, word: int) -> None:
        assert 0 <= word < (1 << self.mem_bits)
        self.writes += 1
        self.words[addr] = word

    def put(self, addr: int, words) -> None:
        for i, w in enumerate(words):
            self.words[addr + i] = int(w)

    def image(self) -> dict[int, int]:
        """The non-zero words (a comparable image)."""
        return {a: w for a, w in self.words.items() if w}


@dataclasses.dataclass
class Segment:
    """Commands of one chip segment (the host appends a FENCE) and the host step after it."""

    commands: list[Command]
    host_step: Callable[[Memory], None] | None = None


class TopHost:
    """Serves the top's memory ports and feeds its command stream, segment by segment.

    Parameters
    ----------
    shape : golden.isa.IsaShape
    memory : Memory
    segments : list of Segment
        Each is sent with a FENCE appended; the next one after that FENCE's status beat (and
        the host step) -- so a host step always sees every store of its segment.
    send_cmd : callable(int)
        Queue one encoded command on the top's ``cmd`` stream.
    send_data : callable(dict)
        Queue one ``rd_data`` beat ``{"data", "last"}``.
    """

    def __init__(self, shape: IsaShape, memory: Memory, segments, send_cmd, send_data):
        self.shape, self.memory = shape, memory
        self.segments = list(segments)
        self.send_cmd, self.send_data = send_cmd, send_data
        self.statuses: list[dict] = []
        self.images: list[dict[int, int]] = []  # the memory image after each segment (before its host step)
        self.next_segment = 0

    def start(self) -> None:
        self._send_segment()

    def _send_segment(self) -> None:
        if self.next_segment < len(self.segments):
            for cmd in self.segments[self.next_segment].commands + [Command(op=Op.FENCE)]:
                self.send_cmd(encode(cmd, self.shape))
            self.next_segment += 1

    @property
    def finished(self) -> bool:
        return len(self.statuses) == len(self.segments)

    def on_rd_req(self, req: dict) -> None:
        words = self.memory.read(int(req["addr"]), int(req["len"]))
        for i, w in enumerate(words):
            self.send_data({"data": w, "last": int(i == len(words) - 1)})

    def on_wr(self, beat: dict) -> None:
        self.memory.write(int(beat["addr"]), int(beat["data"]))

    def on_status(self, beat: dict) -> None:
        self.statuses.append({k: int(v) for k, v in beat.items()})
        self.images.append(dict(self.memory.words))
        step = self.segments[len(self.statuses) - 1].host_step
        if step is not None:
            step(self.memory)
        self._send_segment()


# ----------------------------------------------------------------------------- memory formats

def lanes_of(word: int, n: int, width: int) -> list[int]:
    mask = (1 << width) - 1
    return [(word >> (width * i)) & mask for i in range(n)]


def _pack(values, width: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= int(v) << (width * i)
    return word


def fp32_words(beats, k: int) -> list[int]:
    """fp32 RAW store: two words per beat, lanes 0..k/2-1 in the first."""
    out = []
    for lanes in beats:
        out += [_pack(lanes[:k // 2], 32), _pack(lanes[k // 2:], 32)]
    return out


def bf16_values(beats) -> list[int]:
    """The bf16 of each lane of beats already rounded (fp32 patterns with zero low halves)."""
    return [int(v) >> 16 for lanes in beats for v in lanes]


def bf16_words(beats, k: int) -> list[int]:
    """bf16 RAW store: one word per beat, lane c in bits 16c.."""
    return [_pack([int(v) >> 16 for v in lanes], 16) for lanes in beats]


def emd_words(values, fmt, mem_bits: int) -> list[int]:
    """An EMD block in memory: the length word, then the stream."""
    stream = emd_encode(np.asarray(values, dtype=np.uint16), fmt, mem_bits)
    return [len(stream)] + stream


# ----------------------------------------------------------------------------- programs

class ProgramBuilder:
    """Small programs for the top on the golden block functions, with expected memory words.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig (only its fields are read: no HDL import)
    base : int
        First word address handed out.
    """

    def __init__(self, cfg, base: int = 0x100):
        self.cfg = cfg
        self.shape = cfg.isa_shape
        self.k = cfg.pe_array.block_size
        self.mem_bits = self.shape.mem_bits
        self.memory = Memory(self.mem_bits)
        self.expected: dict[int, int] = {}
        self.commands: list[Command] = []
        self.next_free = base

    def alloc(self, n: int, gap: int = 3) -> int:
        addr = self.next_free
        self.next_free += n + gap
        return addr

    def place(self, words) -> int:
        addr = self.alloc(len(words))
        self.memory.put(addr, words)
        return addr

    def emit(self, **fields) -> Command:
        cmd = Command(**fields)
        self.commands.append(cmd)
        return cmd

    def load_words(self, sel: LoadSel, bank: int, buf: int, words, fmt: Fmt = Fmt.RAW, slack: int = 0) -> Command:
        """Place ``words`` (buffer words) in memory, raw or EMD, and emit their LOAD."""
        words = list(words)
        if fmt == Fmt.RAW:
            addr = self.place(words)
            extent = len(words) + slack
        else:
            values = [v for w in words for v in lanes_of(w, self.k, 16)]
            block = emd_words(values, self.cfg.emd, self.mem_bits)
            addr = self.place(block)
            extent = len(block) + slack
        return self.emit(op=Op.LOAD, sel=sel, bank=bank, fmt=fmt, buf=buf, count=len(words), addr=addr,
                         extent=extent)

    def load_job(self, job, bank: int, *, fmt_a: Fmt = Fmt.RAW, fmt_b: Fmt = Fmt.RAW) -> None:
        """LOADs for every operand of a ``golden.pe_array.Job`` into ``bank``."""
        by_sel: dict[int, list[tuple[int, int]]] = {}
        for sel, addr, word in job.loads:
            by_sel.setdefault(int(sel), []).append((addr, word))
        for sel, items in by_sel.items():
            assert [a for a, _ in items] == list(range(items[0][0], items[0][0] + len(items)))
            fmt = {LoadSel.A: fmt_a, LoadSel.B: fmt_b}.get(LoadSel(sel), Fmt.RAW)
            self.load_words(LoadSel(sel), bank, items[0][0], [w for _, w in items], fmt)

    def gemm(self, job, bank: int, *, fmt: Fmt = Fmt.RAW, dst: int | None = None, extent: int | None = None,
             expect: bool = True) -> Command:
        """Emit the GEMM of ``job`` on ``bank`` storing at a fresh address (or ``dst``), and record
        the words it must write. ``job`` must have been made with ``round_bf16`` for bf16 / EMD."""
        rounded = bool(job.cmd["round"])
        assert all(None not in lanes for lanes in job.expected), "use shapes that fill whole tiles"
        beats = [[int(v) for v in lanes] for lanes in job.expected]
        if fmt == Fmt.EMD:
            words = emd_words(bf16_values(beats), self.cfg.emd, self.mem_bits) if beats else []
        elif rounded:
            words = bf16_words(beats, self.k)
        else:
            words = fp32_words(beats, self.k)
        need = max(len(words), 2) if fmt == Fmt.EMD else (1 if rounded else 2) * len(job.expected)
        if fmt == Fmt.RAW:  # the decoder wants room for every tile (wgrad skips some)
            from golden.isa import out_beats
            probe = Command(op=Op.GEMM, mode=job.cmd["mode"], m=job.cmd["m"], n=job.cmd["n"])
            need = (1 if rounded else 2) * out_beats(probe, self.k)
        extent = need if extent is None else extent
        addr = self.alloc(extent) if dst is None else dst
        if expect:
            for i, w in enumerate(words):
                self.expected[addr + i] = w
        return self.emit(op=Op.GEMM, bank=bank, fmt=fmt, mode=int(job.cmd["mode"]), transpose=job.cmd["transpose"],
                         round=job.cmd["round"], addr=addr, extent=extent, m=job.cmd["m"], n=job.cmd["n"],
                         k=job.cmd["k"])

    def initial(self) -> Memory:
        """A fresh copy of the initial memory (the run writes into it; this builder's stays)."""
        return Memory(self.mem_bits, self.memory.words)

    def expected_image(self) -> dict[int, int]:
        image = dict(self.memory.words)
        image.update(self.expected)
        return {a: w for a, w in image.items() if w}


# ----------------------------------------------------------------------------- Amaranth simulator

def run_amsim(cfg, memory: Memory, segments, *, seed: int = 0, gap: float = 0.0, stall: float = 0.0,
              max_cycles: int = 200_000, on_cycle=None):
    """Run ``segments`` on ``hdl.omnidrl.OmniDRL(cfg)`` in Amaranth's simulator with ``memory``.

    ``gap``: probability of an idle cycle before each command, read data word; ``stall``:
    probability that ``rd_req``, ``wr`` or ``status`` is not ready. Returns (host, cycles).
    """
    from hdl.omnidrl import OmniDRL
    from tb.amsim import StreamBench, StreamSink, StreamSource

    dut = OmniDRL(cfg)
    bench = StreamBench(dut, seed=seed, max_cycles=max_cycles)
    cmd = StreamSource(bench, "cmd", gap_prob=gap)
    data = StreamSource(bench, "rd_data", gap_prob=gap)
    host = TopHost(cfg.isa_shape, memory, segments, cmd.send, data.send)
    StreamSink(bench, "rd_req", stall_prob=stall, callback=host.on_rd_req)
    StreamSink(bench, "wr", stall_prob=stall, callback=host.on_wr)
    StreamSink(bench, "status", stall_prob=stall, callback=host.on_status)
    idle = bench.watch(dut.idle)
    if on_cycle is not None:
        bench.on_cycle(lambda ctx, cycle: on_cycle(dut, ctx, cycle))
    host.start()
    cycles = bench.run(until=lambda: host.finished and idle[-1], settle=2)
    return host, cycles
