"""Stimulus for the OmniDRL top: a memory model, a host that runs programs, and test programs.

The same :class:`TopHost` serves the top in Amaranth's simulator (:func:`run_amsim`) and in the
cocotb testbench (``tb/test_omnidrl.py``): it answers ``rd_req`` with ``rd_data`` words (each
read just before it is offered, :class:`LazyWords`, so a write that lands early is seen),
applies every ``wr`` beat, and sends the program one segment at a time: a
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
from golden.isa import Command, Counter, Fmt, IsaShape, Op, encode
from golden.run_top import state_diff

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
    """Commands of one chip segment (the host appends a FENCE unless the last command is one)
    and the host step after it."""

    commands: list[Command]
    host_step: Callable[[Memory], None] | None = None


class TopHost:
    """Serves the top's memory ports and feeds its command stream, segment by segment.

    Parameters
    ----------
    shape : golden.isa.IsaShape
    memory : Memory or GoldenMemoryPort
        Anything with ``read(addr, n) -> list[int]`` and ``write(addr, word)``.
    segments : list of Segment
        Each is sent with a FENCE appended; the next one after that FENCE's status beat (and
        the host step) -- so a host step always sees every store of its segment.
    send_cmd : callable(int)
        Queue one encoded command on the top's ``cmd`` stream.
    send_data : callable(dict)
        Queue one ``rd_data`` beat ``{"data", "last"}``.
    """

    def __init__(self, shape: IsaShape, memory, segments, send_cmd, send_data, on_segment=None):
        self.shape, self.memory = shape, memory
        self.segments = list(segments)
        self.send_cmd, self.send_data = send_cmd, send_data
        self.on_segment = on_segment  # on_segment(index): the image right after segment index
        self.statuses: list[dict] = []
        self.next_segment = 0

    def start(self) -> None:
        self._send_segment()

    def _send_segment(self) -> None:
        if self.next_segment < len(self.segments):
            cmds = list(self.segments[self.next_segment].commands)
            if not cmds or cmds[-1] != Command(op=Op.FENCE):
                cmds.append(Command(op=Op.FENCE))
            for cmd in cmds:
                self.send_cmd(encode(cmd, self.shape))
            self.next_segment += 1

    @property
    def finished(self) -> bool:
        return len(self.statuses) == len(self.segments)

    def on_rd_req(self, req: dict) -> None:
        """Queue the request's words as callables: the harness's source reads each word when it
        is about to offer it (:class:`LazyWords`), so a write that lands before the word goes
        out is seen, as in a real memory."""
        addr, n = int(req["addr"]), int(req["len"])
        for i in range(n):
            self.send_data(lambda a=addr + i, last=int(i == n - 1): {"data": self.memory.read(a, 1)[0], "last": last})

    def on_wr(self, beat: dict) -> None:
        self.memory.write(int(beat["addr"]), int(beat["data"]))

    def on_status(self, beat: dict) -> None:
        self.statuses.append({k: int(v) for k, v in beat.items()})
        if self.on_segment is not None:
            self.on_segment(len(self.statuses) - 1)
        step = self.segments[len(self.statuses) - 1].host_step
        if step is not None:
            step(self.memory)
        self._send_segment()


class LazyWords:
    """Mixin for a stream source: a queued callable becomes its beat (packed) only when it
    reaches the head of the queue, just before it is offered."""

    def send(self, beat) -> None:
        self.queue.append(beat if callable(beat) else self.codec.pack(beat))

    def _resolve_head(self) -> None:
        if self.queue and callable(self.queue[0]):
            self.queue[0] = self.codec.pack(self.queue[0]())


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
            words = emd_words(bf16_values(beats), self.cfg.emd, self.mem_bits)  # no beats: [1, 0]
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

def run_amsim(cfg, memory, segments, *, seed: int = 0, gap: float = 0.0, stall: float = 0.0,
              max_cycles: int = 200_000, on_cycle=None, on_segment=None):
    """Run ``segments`` on ``hdl.omnidrl.OmniDRL(cfg)`` in Amaranth's simulator with ``memory``.

    ``gap``: probability of an idle cycle before each command, read data word; ``stall``:
    probability that ``rd_req``, ``wr`` or ``status`` is not ready. Returns (host, cycles).
    """
    from hdl.omnidrl import OmniDRL
    from tb.amsim import StreamBench, StreamSink, StreamSource

    class LazySource(LazyWords, StreamSource):
        def _drive(self, ctx, cycle):
            if not self._holding:
                self._resolve_head()
            super()._drive(ctx, cycle)

    dut = OmniDRL(cfg)
    bench = StreamBench(dut, seed=seed, max_cycles=max_cycles)
    cmd = StreamSource(bench, "cmd", gap_prob=gap)
    data = LazySource(bench, "rd_data", gap_prob=gap)
    host = TopHost(cfg.isa_shape, memory, segments, cmd.send, data.send, on_segment)
    StreamSink(bench, "rd_req", stall_prob=stall, callback=host.on_rd_req)
    StreamSink(bench, "wr", stall_prob=stall, callback=host.on_wr)
    StreamSink(bench, "status", stall_prob=stall, callback=host.on_status)
    idle = bench.watch(dut.idle)
    if on_cycle is not None:
        bench.on_cycle(lambda ctx, cycle: on_cycle(dut, ctx, cycle))
    host.start()
    cycles = bench.run(until=lambda: host.finished and idle[-1], settle=2)
    return host, cycles


# ----------------------------------------------------------------------------- test programs

@dataclasses.dataclass
class Case:
    """A test program: its builder (initial memory, expected words), segments, the status beats
    it must produce, and (when it ends with COUNTERS) what the counters are checked against."""

    pb: ProgramBuilder
    segments: list
    statuses: list
    jobs: list = dataclasses.field(default_factory=list)
    counters_at: int | None = None


def _no_errors(n: int = 1) -> list[dict]:
    return [{"errors": 0, "err_code": 0, "detail": 0, "index": 0}] * n


def _bitmap(rng, p, q, density=0.5):
    bm = (rng.random((p, q)) < density).astype(np.uint8)
    bm[0, 0] = 1
    return bm


def case_every_mode(cfg, seed: int = 1) -> Case:
    """Every GEMM mode with fp32 raw, bf16 raw and EMD stores, A and B loaded raw and EMD,
    banks 0 and 1 alternating (one bank loads while the other computes), then COUNTERS."""
    from golden.pe_array import make_job
    from tb.stimulus.pe_array import rand_bf16

    pe, k, mb = cfg.pe_array, cfg.pe_array.block_size, cfg.pe_array.max_blocks
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(cfg)
    R, E = Fmt.RAW, Fmt.EMD
    v = rand_bf16(rng, (2, 3, k))
    jobs = [
        (make_job("dense", pe, rand_bf16(rng, (2 * k, 3 * k)), rand_bf16(rng, (3 * k, 2 * k))), R, R, R),
        (make_job("sparse", pe, rand_bf16(rng, (2 * k, 3 * k)), rand_bf16(rng, (3 * k, k)), bitmap=_bitmap(rng, 2, 3),
                  max_blocks=mb, round_bf16=True), R, E, R),
        (make_job("wgrad", pe, rand_bf16(rng, (2 * k, 2 * k)), rand_bf16(rng, (2 * k, 2 * k)),
                  bitmap=_bitmap(rng, 2, 2), max_blocks=mb, round_bf16=True), E, R, E),
        (make_job("circ", pe, v, rand_bf16(rng, (3 * k, k))), R, R, R),
        (make_job("circ", pe, v, rand_bf16(rng, (2 * k, k)), transpose=True, round_bf16=True), R, R, E),
        (make_job("dv", pe, rand_bf16(rng, (2 * k, k)), rand_bf16(rng, (k, k * k))), E, E, R),
        (make_job("dense", pe, rand_bf16(rng, (k, k)), rand_bf16(rng, (k, k)), round_bf16=True), R, R, R),
        # a block row with no kept block (a forced -0 step), and wgrad with nothing kept
        (make_job("sparse", pe, rand_bf16(rng, (2 * k, 2 * k)), rand_bf16(rng, (2 * k, k)),
                  bitmap=np.array([[0, 1], [0, 0]], dtype=np.uint8), max_blocks=mb), R, R, R),
        (make_job("wgrad", pe, rand_bf16(rng, (2 * k, k)), rand_bf16(rng, (k, 2 * k)),
                  bitmap=np.zeros((2, 2), dtype=np.uint8), max_blocks=mb, round_bf16=True), R, R, E),
        (make_job("wgrad", pe, rand_bf16(rng, (2 * k, k)), rand_bf16(rng, (k, 2 * k)),
                  bitmap=np.zeros((2, 2), dtype=np.uint8), max_blocks=mb), R, R, R),
    ]
    for i, (job, fa, fb, fo) in enumerate(jobs):
        pb.load_job(job, i % 2, fmt_a=fa, fmt_b=fb)
        pb.gemm(job, i % 2, fmt=fo)
    at = pb.alloc(len(Counter))
    pb.emit(op=Op.COUNTERS, addr=at)
    return Case(pb, [Segment(pb.commands)], _no_errors(), [job for job, *_ in jobs], at)


def _transpose_case(pb: ProgramBuilder, rng, p: int, q: int, batch: int, bank: int):
    """W (p*k x q*k, group-sparse) in memory as kept blocks + bitmap; TRANSPOSE into ``bank``
    (A words from 0), load dY^T as B, and the job of the sparse GEMM on W^T."""
    from golden.pe_array import a_words_sparse, make_job
    from tb.stimulus.pe_array import rand_bf16

    k, mb = pb.k, pb.cfg.pe_array.max_blocks
    w = rand_bf16(rng, (p * k, q * k))
    bm = _bitmap(rng, p, q)
    blocks = pb.place(a_words_sparse(w, bm, k))
    rows = pb.place([sum(int(bm[i, j]) << j for j in range(q)) for i in range(p)])
    pb.emit(op=Op.TRANSPOSE, bank=bank, buf=0, addr=blocks, extent=int(bm.sum()) * k, addr2=rows, m=p, n=q)
    job = make_job("sparse", pb.cfg.pe_array, np.ascontiguousarray(w.T), rand_bf16(rng, (p * k, batch)),
                   bitmap=bm.T, max_blocks=mb, round_bf16=True)
    pb.load_words(LoadSel.B, bank, 0, [word for sel, _, word in job.loads if sel == LoadSel.B])
    return job


def case_transpose(cfg, seed: int = 2) -> Case:
    """TRANSPOSE W's kept blocks and bitmap into W^T's, and the sparse GEMM on them: P != Q
    both ways, 1 x 1, a full max_blocks-wide case; both banks; EMD and raw stores."""
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(cfg)
    mb = cfg.pe_array.max_blocks
    jobs = []
    for i, (p, q) in enumerate([(2, 3), (3, 2), (1, 1), (min(4, mb), min(4, mb))]):
        job = _transpose_case(pb, rng, p, q, pb.k, i % 2)
        pb.gemm(job, i % 2, fmt=Fmt.RAW if i % 2 else Fmt.EMD)
        jobs.append(job)
    return Case(pb, [Segment(pb.commands)], _no_errors(), jobs)


def case_dependencies(cfg, seed: int = 3) -> Case:
    """RAW: a LOAD of a stored result (the second GEMM's B is the first one's bf16 output).
    WAR: a GEMM storing over the source of an earlier LOAD (the later GEMM uses the old words)."""
    from golden.pe_array import make_job
    from tb.stimulus.pe_array import rand_bf16

    pe, k = cfg.pe_array, cfg.pe_array.block_size
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(cfg)
    first = make_job("dense", pe, rand_bf16(rng, (2 * k, 2 * k)), rand_bf16(rng, (2 * k, k)), round_bf16=True)
    pb.load_job(first, 0)
    store = pb.gemm(first, 0)
    c_bf16 = f32_round_to_bf16_bits(np.asarray(first.result, dtype=np.uint32)).astype(np.uint16)
    second = make_job("dense", pe, rand_bf16(rng, (k, 2 * k)), c_bf16)  # B = the first GEMM's output
    pb.load_words(LoadSel.A, 1, 0, [w for s, _, w in second.loads if s == LoadSel.A])
    pb.emit(op=Op.LOAD, sel=LoadSel.B, bank=1, buf=0, count=2 * k, addr=store.addr, extent=2 * k)  # RAW
    pb.gemm(second, 1)
    # WAR: the last LOAD before a GEMM on the other bank reads a region that GEMM overwrites;
    # the memory reads each word as it offers it, so a store landing early would be seen.
    third = make_job("dense", pe, rand_bf16(rng, (k, 4 * k)), rand_bf16(rng, (4 * k, k)))
    over = make_job("dense", pe, rand_bf16(rng, (k, k)), rand_bf16(rng, (k, k)), round_bf16=True)
    pb.load_job(over, 1)
    pb.load_words(LoadSel.B, 0, 0, [w for s, _, w in third.loads if s == LoadSel.B])
    a_load = pb.load_words(LoadSel.A, 0, 0, [w for s, _, w in third.loads if s == LoadSel.A])
    # WAR on the last A words being loaded (read last, so an early store would land first)
    pb.gemm(over, 1, dst=a_load.addr + a_load.extent - k, extent=k)
    pb.gemm(third, 0)
    return Case(pb, [Segment(pb.commands)], _no_errors(), [first, second, over, third])


def case_errors(cfg, seed: int = 4) -> Case:
    """Each TopError in its own segment, between good commands: the status beat counts it,
    names it (code, sub-code) and its index; the good GEMM after it still computes right."""
    from golden.codes import EmdDecoderError, PEArrayError
    from golden.emd import EmdFormatError, decode as emd_decode
    from golden.isa import TopError, check
    from golden.pe_array import make_job
    from tb.stimulus.pe_array import rand_bf16

    pe, k, mb = cfg.pe_array, cfg.pe_array.block_size, cfg.pe_array.max_blocks
    shape, mem_bits = cfg.isa_shape, cfg.isa_shape.mem_bits
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(cfg)
    segments, statuses = [], []

    def good_gemm(bank):
        job = make_job("dense", pe, rand_bf16(rng, (k, 2 * k)), rand_bf16(rng, (2 * k, k)))
        pb.load_job(job, bank)
        pb.gemm(job, bank)

    def close(start, errors, code, detail=0, index=0):
        segments.append(Segment(pb.commands[start:]))
        statuses.append({"errors": errors, "err_code": int(code), "detail": int(detail), "index": index})

    def segment(bad: Command, code: TopError, detail: int = 0, before: int = 0):
        decoder = code if code in (TopError.OPCODE, TopError.FIELD) else TopError.NONE
        assert check(bad, shape)[0] == decoder, (bad, check(bad, shape))
        start = len(pb.commands)
        for _ in range(before):
            pb.emit(op=Op.NOP)
        pb.commands.append(bad)
        good_gemm(len(segments) % 2)
        close(start, 1, code, detail, before)

    segment(Command(op=7), TopError.OPCODE)
    segment(Command(op=Op.NOP, bank=1), TopError.FIELD, before=1)
    segment(Command(op=Op.FENCE, addr=5), TopError.FIELD, before=2)
    segment(Command(op=Op.LOAD, sel=3, count=1, addr=1, extent=1), TopError.FIELD)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, count=4, addr=1, extent=3), TopError.FIELD)
    segment(Command(op=Op.GEMM, fmt=Fmt.EMD, round=0, m=k, n=k, k=k, extent=9), TopError.FIELD)
    segment(Command(op=Op.TRANSPOSE, m=mb + 1, n=1), TopError.FIELD)
    # the array's own checks
    dst = pb.alloc(4 * k)
    segment(Command(op=Op.GEMM, mode=Mode.SPARSE, m=k + 2, n=k, k=2 * k, addr=dst, extent=4 * k), TopError.ARRAY,
            PEArrayError.SHAPE, before=1)
    segment(Command(op=Op.GEMM, mode=Mode.DENSE, m=k, n=k, k=pe.b_depth + 4, addr=dst, extent=2 * k), TopError.ARRAY,
            PEArrayError.BUFFER)
    # an EMD stream cut one word short, with golden's verdict on it
    block = emd_words(rand_bf16(rng, (4 * k,)).reshape(-1), cfg.emd, mem_bits)
    stream = block[1:-1]
    try:
        emd_decode(stream, cfg.emd, mem_bits, lanes=k)
        raise AssertionError("the cut stream decodes")
    except EmdFormatError as exc:
        code = EmdDecoderError(exc.code)
    cut = pb.place([len(stream)] + stream)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=4, addr=cut, extent=len(stream) + 1),
            TopError.EMD, code)
    good = emd_words(rand_bf16(rng, (4 * k,)).reshape(-1), cfg.emd, mem_bits)
    at = pb.place(good)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=4, addr=at, extent=len(good) - 1),
            TopError.LENGTH)  # the length word does not fit the extent
    segment(Command(op=Op.LOAD, sel=LoadSel.B, fmt=Fmt.EMD, count=3, addr=at, extent=len(good)),
            TopError.LENGTH)  # decodes to 4 beats, 3 asked
    segment(Command(op=Op.LOAD, sel=LoadSel.B, fmt=Fmt.EMD, count=5, addr=at, extent=len(good)),
            TopError.LENGTH)  # decodes to 4 beats, 5 asked
    zero = pb.place([0, 0])  # an EMD block of no words: no terminator
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=1, addr=zero, extent=2), TopError.EMD,
            EmdDecoderError.TRUNCATED)
    # a store past its extent: the EMD output of k x k values does not fit 2 words
    job = make_job("dense", pe, rand_bf16(rng, (k, k)), rand_bf16(rng, (k, k)), round_bf16=True)
    start = len(pb.commands)
    pb.load_job(job, 0)
    small = pb.alloc(2)
    pb.emit(op=Op.GEMM, bank=0, fmt=Fmt.EMD, round=1, m=k, n=k, k=k, addr=small, extent=2)
    good_gemm(1)
    close(start, 1, TopError.LENGTH, index=2)
    out = emd_words(bf16_values(job.expected), cfg.emd, mem_bits)
    assert len(out) > 2
    pb.expected[small + 1] = out[1]  # the one stream word that fits; no length word
    # a TRANSPOSE whose kept blocks exceed its extent
    rows = pb.place([1, 1])
    segment(Command(op=Op.TRANSPOSE, addr=pb.alloc(2 * k), extent=k, addr2=rows, m=2, n=1), TopError.LENGTH)
    # two flags in one segment: the first in program order is reported
    start = len(pb.commands)
    pb.emit(op=Op.NOP)
    pb.emit(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=1, addr=zero, extent=2)
    pb.emit(op=Op.NOP, n=1)
    good_gemm(0)
    close(start, 2, TopError.EMD, EmdDecoderError.TRUNCATED, index=1)
    return Case(pb, segments, statuses)


CASES = {"every_mode": case_every_mode, "transpose": case_transpose, "dependencies": case_dependencies,
         "errors": case_errors}


def machine_run(case: Case):
    """``case`` on ``golden.machine``: (final image as {addr: word}, undefined addresses, status
    beats, the counters it predicts exactly as {Counter: value} when the case ends with COUNTERS)."""
    from golden.machine import TIMING_COUNTERS, Machine
    from golden.program import ChipSegment, Memory as GoldenMemory, lanes_to_words, words_to_lanes

    pb = case.pb
    memory = GoldenMemory(pb.k)
    for addr, word in pb.memory.words.items():
        memory.write(addr, words_to_lanes([word], pb.k))
    machine = Machine(pb.shape, pb.cfg.emd, memory)
    statuses = []
    for i, seg in enumerate(case.segments):
        cmds = list(seg.commands)
        if not cmds or cmds[-1] != Command(op=Op.FENCE):
            cmds.append(Command(op=Op.FENCE))
        report = machine.run_segment(ChipSegment(f"segment {i}", cmds))
        statuses += [{"errors": st.errors, "err_code": int(st.err_code), "detail": st.detail, "index": st.index}
                     for st in report.statuses]
    image = {}
    for page, lanes in memory._pages.items():  # the golden image has no word iterator
        for off, word in enumerate(lanes_to_words(lanes)):
            if word:
                image[page * lanes.shape[0] + off] = word
    exact = {}
    if case.counters_at is not None:
        exact = {c: image.get(case.counters_at + c, 0) for c in Counter
                 if c not in TIMING_COUNTERS and c not in machine.unpredicted}
    return image, set(memory.undefined), statuses, exact


def case_mismatches(case: Case, memory: Memory, statuses: list[dict]) -> list[str]:
    """Everything a run of ``case`` got wrong: status beats, memory words, counters, against the
    program's own expectations (golden block functions) and against ``golden.machine``."""

    errors = []
    model_image, undefined, model_statuses, model_counters = machine_run(case)
    if statuses != model_statuses:
        errors.append(f"status beats {statuses}, golden.machine {model_statuses}")
    got = {a: w for a, w in memory.image().items()}
    skip = undefined | ({case.counters_at + c for c in Counter} if case.counters_at is not None else set())
    diff = [a for a in sorted(set(model_image) | set(got))
            if a not in skip and model_image.get(a, 0) != got.get(a, 0)]
    if diff:
        errors.append(f"{len(diff)} memory words differ from golden.machine's; first at {[hex(a) for a in diff[:6]]}")
    chip_counters = {} if case.counters_at is None else {
        c: memory.words.get(case.counters_at + c, 0) for c in Counter}
    errors += [f"counter {c.name}: {chip_counters[c]}, golden.machine {v}" for c, v in model_counters.items()
               if chip_counters[c] != v]
    if statuses != case.statuses:
        errors.append(f"status beats {statuses}, expected {case.statuses}")
    got = memory.image()
    values = {}
    if case.counters_at is not None:
        values = {c: memory.words.get(case.counters_at + c, 0) for c in Counter}
        for c in Counter:
            got.pop(case.counters_at + c, None)
    expected = case.pb.expected_image()
    diff = [f"0x{a:x}: expected 0x{expected.get(a, 0):x}, got 0x{got.get(a, 0):x}"
            for a in sorted(set(expected) | set(got)) if expected.get(a, 0) != got.get(a, 0)]
    if diff:
        errors.append(f"{len(diff)} memory words differ; first: " + "; ".join(diff[:6]))
    if values:
        errors += counter_mismatches(case, values, memory)
    return errors


def counter_mismatches(case: Case, count: dict, memory: Memory) -> list[str]:
    """The counters against what the program implies (loads, stores, GEMM reports)."""

    cmds = case.pb.commands
    pe = case.pb.cfg.pe_array
    loads = [c for c in cmds if c.op == Op.LOAD]
    gemms = [c for c in cmds if c.op == Op.GEMM]
    reports = [job.report for job in case.jobs]
    want = {
        Counter.COMMANDS: len(cmds) - 1,
        Counter.ERRORS: 0,
        Counter.A_WRITES: sum(c.count for c in loads if c.sel == LoadSel.A),
        Counter.B_WRITES: sum(c.count for c in loads if c.sel == LoadSel.B),
        Counter.BITMAP_WRITES: sum(c.count for c in loads if c.sel == LoadSel.BITMAP),
        Counter.MEM_READ_RAW: sum(c.count for c in loads if c.fmt == Fmt.RAW),
        Counter.MEM_READ_EMD: sum(c.extent for c in loads if c.fmt == Fmt.EMD),
        Counter.MEM_WRITE_RAW: sum(1 for c in gemms if c.fmt == Fmt.RAW for a in range(c.addr, c.addr + c.extent)
                                   if a in case.pb.expected),
        Counter.MEM_WRITE_EMD: sum(1 + memory.words[c.addr] for c in gemms if c.fmt == Fmt.EMD),
        Counter.MACS: count[Counter.EX_STEPS] * pe.rows * pe.cols,
        Counter.MACS_DENSE: sum(c.m * c.n * c.k for c in gemms),
        Counter.A_READS: sum(r.a_reads for r in reports),
        Counter.B_READS: sum(r.b_reads for r in reports),
        # steps with products: not dv's ring filling, not a sparse row's forced -0
        Counter.EX_STEPS: sum(r.macs for r in reports) // (pe.rows * pe.cols),
    }
    errors = [f"counter {c.name}: {count[c]}, expected {v}" for c, v in want.items() if count[c] != v]
    # loads overlapped compute: the two units were busy longer, together, than the whole run
    if not count[Counter.LD_BUSY] + count[Counter.EX_BUSY] > count[Counter.CYCLES]:
        errors.append(f"no overlap: LD_BUSY {count[Counter.LD_BUSY]} + EX_BUSY {count[Counter.EX_BUSY]} "
                      f"<= CYCLES {count[Counter.CYCLES]}")
    return errors


# ----------------------------------------------------------------------------- TD3 programs

class GoldenMemoryPort:
    """:class:`TopHost`'s word interface over a ``golden.program.Memory`` (lanes), so the RTL
    and the host steps work on one image."""

    def __init__(self, memory):
        self.memory = memory

    def read(self, addr: int, n: int) -> list[int]:
        from golden.program import lanes_to_words
        return lanes_to_words(self.memory.read(addr, n))

    def write(self, addr: int, word: int) -> None:
        from golden.program import words_to_lanes
        self.memory.write(addr, words_to_lanes([word], self.memory.k))


@dataclasses.dataclass
class Td3Case:
    """One compiled TD3 update on the tiny agent, and what the RTL must reproduce."""

    name: str                  # the golden.workloads name
    program: object            # golden.program.Program
    memory: object             # golden.program.Memory: the initial image (agent, batch, noise)
    images: list               # golden.machine.run_program's image after every chip segment
    prelude: list              # host steps before the first chip segment
    segments: list             # Segment per chip segment, with the host steps after it
    agent: object              # the agent the program was compiled for (before the update)
    reference: object          # TD3Agent.update applied to a copy: the expected state
    counters_at: int           # past the program's layout: where a last COUNTERS segment writes
    model_counters: dict       # golden.machine's totals of the counters it predicts exactly

    def run_segments(self) -> list:
        """The program's segments and one more that reads the counters out (COUNTERS, FENCE)."""
        return self.segments + [Segment([Command(op=Op.COUNTERS, addr=self.counters_at)])]

    def counters(self, memory) -> dict:
        """The counters the last segment wrote."""
        from golden.program import lanes_to_words
        words = lanes_to_words(memory.read(self.counters_at, len(Counter)))
        return {c.name: int(w) for c, w in zip(Counter, words)}


def td3_case(cfg, name: str) -> Td3Case:
    """Workload ``name`` of ``golden.workloads`` (e.g. ``small-dense``, ``small-circ``,
    ``small-sparse``: a complete update, critics, actor and targets) compiled for the top
    ``cfg``, with the machine model's image after every chip segment and the agent state
    ``TD3Agent.update`` gives, to compare with."""
    import copy

    from golden.compile_td3 import compile_update, write_agent, write_batch
    from golden.machine import TIMING_COUNTERS, Machine, run_program
    from golden.program import ChipSegment, Memory as GoldenMemory
    from golden.workloads import workload

    k = cfg.pe_array.block_size
    agent, batch, noise = workload(name, k=k)
    program = compile_update(agent, cfg.isa_shape, cfg.emd)
    memory = GoldenMemory(k)
    write_agent(program, memory, agent)
    write_batch(program, memory, batch, noise)
    model_memory = memory.copy()
    model = Machine(program.shape, program.emd_fmt, model_memory)
    run = run_program(program, model_memory, model)
    reference = copy.deepcopy(agent)
    reference.update(batch, noise_draw=noise)
    prelude, segments = [], []
    for step in program.steps:
        if isinstance(step, ChipSegment):
            segments.append(Segment(list(step.commands), []))
        else:
            (segments[-1].host_step if segments else prelude).append(step.fn)
    for seg in segments:
        seg.host_step = _run_all(seg.host_step)
    exact = {c.name: run.total(c) for c in Counter if c not in TIMING_COUNTERS and c not in model.unpredicted}
    return Td3Case(name, program, memory, run.images, prelude, segments, agent, reference,
                   counters_at=program.layout.words + 16, model_counters=exact)


def _run_all(fns):
    def run(port):
        for fn in fns:
            fn(port.memory)
    return run


def td3_segment_check(case: Td3Case, memory, seen: dict):
    """``on_segment`` for a TD3 run: record how segment i's image differs from the model's."""
    def check(i: int) -> None:
        if i < len(case.images):
            seen[i] = memory.diff(case.images[i])
    return check


def td3_mismatches(case: Td3Case, memory, statuses: list[dict], seen: dict) -> list[str]:
    """What a run of ``case`` got wrong: status beats, segment images (``seen``: index -> the
    differing addresses the run recorded), and the agent read back from the final image."""
    import copy

    from golden.compile_td3 import read_agent

    errors = []
    if any(s["errors"] for s in statuses) or len(statuses) != len(case.run_segments()):
        errors.append(f"status beats {statuses}")
    for i, diff in sorted(seen.items()):
        if diff:
            errors.append(f"segment {i} ({case.program.segments[i].name}): {len(diff)} words differ from the "
                          f"machine model, first at {[hex(a) for a in diff[:4]]}")
    if len(seen) != len(case.segments):
        errors.append(f"{len(seen)} of {len(case.segments)} segment images compared")
    chip_counters = case.counters(memory)
    errors += [f"counter {name}: chip {chip_counters[name]}, machine model {value}"
               for name, value in case.model_counters.items() if chip_counters[name] != value]
    chip = copy.deepcopy(case.agent)
    read_agent(case.program, memory, chip)
    state = state_diff(chip, case.reference)
    if state:
        errors.append(f"agent after the update differs from TD3Agent.update in {state[:6]}")
    return errors


def run_td3_amsim(cfg, case: Td3Case, *, seed: int = 0, gap: float = 0.2, stall: float = 0.2):
    """One compiled TD3 update on the top in Amaranth's simulator; returns (errors, cycles)."""
    memory = case.memory.copy()
    port = GoldenMemoryPort(memory)
    for fn in case.prelude:
        fn(memory)
    seen = {}
    host, cycles = run_amsim(cfg, port, case.run_segments(), seed=seed, gap=gap, stall=stall, max_cycles=400_000,
                             on_segment=td3_segment_check(case, memory, seen))
    return td3_mismatches(case, memory, host.statuses, seen), cycles
