"""Machine model of the OmniDRL top: runs a :class:`golden.program.Program` on the block goldens.

Host steps call their function on the memory image. Chip segments execute each command the
way the hardware does, over a model of the operand store (two banks, each ``a_depth`` A words,
``b_depth`` B words and ``max_blocks`` bitmap rows, all zero at reset):

* ``LOAD``: raw words, or an EMD block (``golden.emd.decode`` with ``lanes = k``), into A, B or
  bitmap rows;
* ``TRANSPOSE``: W's kept blocks and bitmap (raw) -> W^T's kept blocks into A and W^T's bitmap
  into the bitmap rows (``docs/formats.md``, "TRANSPOSE");
* ``GEMM``: the PE array's checks (:func:`golden.pe_array.array_error`), then the product of
  what the buffers *hold* (padding lanes included, so every lane of every output beat is
  predicted), then the store: raw fp32, raw bf16 or EMD;
* ``FENCE``: one status beat; ``COUNTERS``: the counters to memory; ``NOP``.

Commands run one after another in program order: the top's dependency rules (``docs/top.md``)
make its overlapped execution equal to this order, so the model does not need them; it does
enforce every extent (a command that would touch memory outside ``[addr, addr + extent)`` is
flagged, as in the hardware).

Flagged commands are skipped and reported in the next FENCE's status beat, exactly as the top
flags them: ``golden.isa.check`` (OPCODE, FIELD), the array's checks (ARRAY with the
``PEArrayError``), EMD decoder faults (EMD with the ``EmdDecoderError``) and LENGTH.

**Cycles** (:attr:`SegmentReport.cycles`, an estimate). Exact parts: each GEMM's array cycles
(``golden.pe_array.cycle_model``, exact when its output is never stalled) and the overlap of a
GEMM's loads with the previous GEMM on two banks (``golden.pe_array.sequence_cycles``, exact for
that host protocol). Approximate parts: a LOAD / TRANSPOSE costs one cycle per memory word read or
buffer word written, whichever is more (no memory latency, decoder at full rate); a store writes
one memory word per cycle and a GEMM whose store is slower than its drain is stretched to the
store's pace; command issue, FENCE, memory latency and the EMD codecs' pipeline latency
(``emd_dec_pipeline``: one cycle per EMD load, ``emd_enc_pipeline``: two per EMD store; their
throughput is unchanged) cost nothing. The timing counters
(:data:`TIMING_COUNTERS`) written by COUNTERS are this estimate; every other counter is exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import emd as emdlib
from .codes import LoadSel, Mode, PEArrayError
from .emd import DEFAULT, EmdFormat, EmdFormatError
from .isa import COUNTER_BITS, Command, Counter, Fmt, IsaShape, Op, TopError, check
from .pe_array import (array_error, ceil_div, circ_dv, command_dims, cycle_model, gemm_sparse,
                       operand_words, output_beats, run, sequence_cycles, tile_order)
from .program import (ChipSegment, HostStep, Memory, Program, lanes_to_words, unpack_a_dense, unpack_b_dense,
                      words_to_lanes)

__all__ = ["ArrayLimits", "Status", "Fault", "SegmentReport", "HostReport", "ProgramRun", "Machine",
           "run_program", "TIMING_COUNTERS"]

#: Counters that measure time: the model writes its estimate, the RTL its cycles.
TIMING_COUNTERS = frozenset({Counter.CYCLES, Counter.LD_BUSY, Counter.LD_STALL, Counter.EX_BUSY,
                             Counter.ST_BUSY, Counter.ST_STALL})


@dataclasses.dataclass(frozen=True)
class ArrayLimits:
    """The PE array of a top, for the golden functions (rows = cols = block_size = k)."""

    rows: int
    cols: int
    block_size: int
    a_depth: int
    b_depth: int
    max_blocks: int

    @classmethod
    def of(cls, shape: IsaShape) -> "ArrayLimits":
        return cls(shape.k, shape.k, shape.k, shape.a_depth, shape.b_depth, shape.max_blocks)


@dataclasses.dataclass(frozen=True)
class Status:
    """One status beat (``docs/top.md``): commands flagged since the previous beat, the first
    one's code, sub-code (``PEArrayError`` / ``EmdDecoderError``, else 0) and index (commands
    since the previous beat, 0 = the first)."""

    errors: int = 0
    err_code: TopError = TopError.NONE
    detail: int = 0
    index: int = 0


@dataclasses.dataclass(frozen=True)
class Fault:
    """A flagged command, with the model's reason (for messages; not on the status port)."""

    segment: str
    position: int
    command: Command
    code: TopError
    detail: int
    why: str


@dataclasses.dataclass
class SegmentReport:
    """What one chip segment did: status beats, counter increments, the cycle estimate."""

    name: str
    statuses: list[Status]
    counts: dict
    cycles: int
    gemm_cycles: list[int]
    faults: list[Fault]
    #: memory words the segment's EMD loads and stores would have moved raw (bf16, one word per
    #: buffer word or output beat): the baseline of the EMD saving
    emd_raw_words: int = 0


@dataclasses.dataclass
class HostReport:
    """One host step as run: its declared cost and the memory words it touched."""

    name: str
    flops: int
    bytes_read: int
    bytes_written: int
    words_read: int
    words_written: int


@dataclasses.dataclass
class ProgramRun:
    """A whole program: per chip segment its report and the memory image after it."""

    segments: list[SegmentReport]
    images: list[Memory]
    host: list[HostReport]
    counters: dict

    @property
    def cycles(self) -> int:
        return sum(s.cycles for s in self.segments)

    def total(self, counter: Counter) -> int:
        return sum(s.counts.get(counter, 0) for s in self.segments)

    def summary(self) -> dict:
        """Totals over the program: chip cycles (estimate), MACs, memory words, host work."""
        out = {"segments": len(self.segments), "cycles": self.cycles,
               "gemms": sum(len(s.gemm_cycles) for s in self.segments),
               "gemm_cycles": sum(sum(s.gemm_cycles) for s in self.segments),
               "emd_raw_words": sum(s.emd_raw_words for s in self.segments)}
        out.update({c.name.lower(): self.total(c) for c in Counter if c not in TIMING_COUNTERS})
        out.update({"host_steps": len(self.host), "host_flops": sum(h.flops for h in self.host),
                    "host_bytes_read": sum(h.bytes_read for h in self.host),
                    "host_bytes_written": sum(h.bytes_written for h in self.host),
                    "host_words_read": sum(h.words_read for h in self.host),
                    "host_words_written": sum(h.words_written for h in self.host)})
        return out


class _Flag(Exception):
    def __init__(self, code: TopError, detail: int, why: str):
        super().__init__(why)
        self.code, self.detail, self.why = code, int(detail), why


class _Bank:
    def __init__(self, shape: IsaShape):
        k = shape.k
        self.a = np.zeros((shape.a_depth, k), dtype=np.uint16)
        self.b = np.zeros((shape.b_depth, k), dtype=np.uint16)
        self.bitmap = [0] * shape.max_blocks
        # words a flagged load may have written (their content is not predicted)
        self.undef = {LoadSel.A: set(), LoadSel.B: set(), LoadSel.BITMAP: set()}

    def target(self, sel: LoadSel):
        return {LoadSel.A: self.a, LoadSel.B: self.b}.get(sel)


class Machine:
    """The top's state: operand banks, counters, the status accumulator, and the memory image.

    Parameters
    ----------
    shape : golden.isa.IsaShape
    emd_fmt : golden.emd.EmdFormat
        The EMD format of the top's decoder and encoder.
    memory : Memory, optional
        The image the commands read and write (a new empty one by default).
    """

    def __init__(self, shape: IsaShape, emd_fmt: EmdFormat = DEFAULT, memory: Memory | None = None):
        self.shape = shape
        self.fmt = emd_fmt
        self.limits = ArrayLimits.of(shape)
        self.memory = memory if memory is not None else Memory(shape.k)
        if self.memory.k != shape.k:
            raise ValueError(f"memory of k={self.memory.k} for a top of k={shape.k}")
        self.banks = [_Bank(shape), _Bank(shape)]
        self.counters = {c: 0 for c in Counter}
        #: counters whose value is no longer predicted (after a mid-way fault)
        self.unpredicted: set[Counter] = set()
        self._since_status = 0
        self._pending: Status | None = None
        self._errors = 0
        self._cycles_before = 0
        self._groups: list[list[list[int]]] = [[]]  # per FENCE group: [load cycles, gemm cycles]
        #: the status beat the last command sent (a FENCE), or None
        self.last_status: Status | None = None
        self._emd_raw = 0

    # ------------------------------------------------------------------ counters and timing
    def _count(self, c: Counter, n: int = 1) -> None:
        self.counters[c] = min(self.counters[c] + int(n), (1 << COUNTER_BITS) - 1)

    def _segment_cycles(self) -> tuple[int, list[int]]:
        total, gemms = 0, []
        for group in self._groups:
            jobs = [(ld, cyc) for ld, cyc in group if cyc is not None]
            trailing = sum(ld for ld, cyc in group if cyc is None)
            total += (sequence_cycles(jobs, banks=2).total if jobs else 0) + trailing
            gemms += [cyc for _, cyc in jobs]
        return total, gemms

    def _load_cycles(self, cycles: int) -> None:
        group = self._groups[-1]
        if group and group[-1][1] is None:
            group[-1][0] += cycles
        else:
            group.append([cycles, None])
        self._count(Counter.LD_BUSY, cycles)

    def _gemm_cycles(self, cycles: int) -> None:
        group = self._groups[-1]
        if group and group[-1][1] is None:
            group[-1][1] = cycles
        else:
            group.append([0, cycles])
        self._count(Counter.EX_BUSY, cycles)

    # ------------------------------------------------------------------ running
    def run_segment(self, segment: ChipSegment) -> SegmentReport:
        """Execute every command of ``segment``; returns its report."""
        before = dict(self.counters)
        self._groups = [[]]
        self._emd_raw = 0
        statuses, faults = [], []
        for pos, cmd in enumerate(segment.commands):
            fault = self.execute(cmd)
            if fault is not None:
                faults.append(Fault(segment.name, pos, cmd, fault.code, fault.detail, fault.why))
            if self.last_status is not None:
                statuses.append(self.last_status)
        cycles, gemm_cycles = self._segment_cycles()
        self._cycles_before += cycles
        self.counters[Counter.CYCLES] = self._cycles_before
        counts = {c: self.counters[c] - before[c] for c in Counter}
        return SegmentReport(segment.name, statuses, counts, cycles, gemm_cycles, faults, self._emd_raw)

    def execute(self, cmd: Command) -> _Flag | None:
        """Run one command; returns the fault when it was flagged (it then did nothing more)."""
        code, why = check(cmd, self.shape)
        fault = None
        try:
            if code != TopError.NONE:
                raise _Flag(code, 0, why)
            op = Op(cmd.op)
            if op == Op.LOAD:
                self._load(cmd)
            elif op == Op.TRANSPOSE:
                self._transpose(cmd)
            elif op == Op.GEMM:
                self._gemm(cmd)
            elif op == Op.COUNTERS:
                self._write_counters(cmd)
        except _Flag as f:
            fault = f
            self._errors += 1
            self._count(Counter.ERRORS)
            if self._pending is None:
                self._pending = Status(0, f.code, f.detail, self._since_status)
        self._count(Counter.COMMANDS)
        self.last_status = None
        if cmd.op == Op.FENCE and fault is None:
            first = self._pending or Status()
            self.last_status = dataclasses.replace(first, errors=self._errors)
            self._pending, self._errors, self._since_status = None, 0, 0
            self._groups.append([])
        else:
            self._since_status += 1
        return fault

    # ------------------------------------------------------------------ LOAD
    def _read_memory(self, addr: int, n: int) -> tuple[np.ndarray, bool]:
        """Words and whether any of them is undefined."""
        und = bool(self.memory.undefined) and not self.memory.undefined.isdisjoint(range(addr, addr + n))
        return self.memory.read(addr, n), und

    def _load(self, cmd: Command) -> None:
        bank = self.banks[cmd.bank]
        sel = LoadSel(cmd.sel)
        k = self.shape.k
        target = range(cmd.buf, cmd.buf + cmd.count)
        if cmd.fmt == Fmt.RAW:
            words, und = self._read_memory(cmd.addr, cmd.count)
            self._count(Counter.MEM_READ_RAW, cmd.count)
            self._load_cycles(cmd.count)
        else:
            length = self.memory.word(cmd.addr)
            self._count(Counter.MEM_READ_EMD, 1)
            if 1 + length > cmd.extent:
                self._load_cycles(1)
                raise _Flag(TopError.LENGTH, 0, f"EMD block of 1+{length} words at {cmd.addr} is longer than "
                                                f"extent={cmd.extent}")
            stream, und = self._read_memory(cmd.addr + 1, length)
            self._count(Counter.MEM_READ_EMD, length)
            self._load_cycles(max(1 + length, cmd.count))
            try:
                values = emdlib.decode(lanes_to_words(stream), self.fmt, word_bits=self.memory.mem_bits, lanes=k)
            except EmdFormatError as e:
                self._poison(bank, sel, target)
                raise _Flag(TopError.EMD, e.code, str(e)) from None
            if values.size != cmd.count * k:
                self._poison(bank, sel, target)
                raise _Flag(TopError.LENGTH, 0, f"EMD block at {cmd.addr} decodes to {values.size} values, "
                                                f"the LOAD asks for {cmd.count} words of {k}")
            self._count(Counter.EMD_GROUPS_DECODED, ceil_div(values.size, self.fmt.group))
            self._emd_raw += cmd.count
            words = values.reshape(cmd.count, k)
        if sel == LoadSel.BITMAP:
            mask = (1 << self.shape.max_blocks) - 1
            for i, w in enumerate(lanes_to_words(words)):
                bank.bitmap[cmd.buf + i] = w & mask
        else:
            bank.target(sel)[cmd.buf:cmd.buf + cmd.count] = words
        if und:
            bank.undef[sel].update(target)
        else:
            bank.undef[sel].difference_update(target)
        self._count({LoadSel.A: Counter.A_WRITES, LoadSel.B: Counter.B_WRITES,
                     LoadSel.BITMAP: Counter.BITMAP_WRITES}[sel], cmd.count)

    def _poison(self, bank: _Bank, sel: LoadSel, target: range) -> None:
        """A load flagged mid-stream may have written any of its words: not predicted."""
        bank.undef[sel].update(target)
        self.unpredicted |= {Counter.A_WRITES, Counter.B_WRITES, Counter.BITMAP_WRITES, Counter.EMD_GROUPS_DECODED}

    # ------------------------------------------------------------------ TRANSPOSE
    def _transpose(self, cmd: Command) -> None:
        bank = self.banks[cmd.bank]
        k = self.shape.k
        p_, q_ = cmd.m, cmd.n
        rows, und_bm = self._read_memory(cmd.addr2, p_)
        self._count(Counter.MEM_READ_RAW, p_)
        qmask = (1 << q_) - 1
        bm = np.array([[(w >> q) & 1 for q in range(q_)] for w in (x & qmask for x in lanes_to_words(rows))],
                      dtype=bool).reshape(p_, q_)
        kept = int(bm.sum())
        if kept * k > cmd.extent:
            self._load_cycles(p_)
            raise _Flag(TopError.LENGTH, 0, f"{kept} kept blocks take {kept * k} words, more than extent={cmd.extent}")
        if cmd.buf + kept * k > self.shape.a_depth:
            self._load_cycles(p_)
            raise _Flag(TopError.LENGTH, 0, f"buf+{kept * k}={cmd.buf + kept * k} words pass the A buffer "
                                            f"({self.shape.a_depth} words)")
        blocks, und = self._read_memory(cmd.addr, kept * k)
        self._count(Counter.MEM_READ_RAW, kept * k)
        blocks = blocks.reshape(kept, k, k)  # [i, c, r]: block i's word c, lane r = W_block[r, c]
        index = -np.ones((p_, q_), dtype=np.int64)
        index[bm] = np.arange(kept)
        order = [index[p, q] for q in range(q_) for p in range(p_) if bm[p, q]]  # W^T row-major
        out = blocks[order].transpose(0, 2, 1).reshape(-1, k)  # word c of a W^T block = row c of W's
        bank.a[cmd.buf:cmd.buf + kept * k] = out
        bank.bitmap = [sum(int(bm[p, q]) << p for p in range(p_)) if q < q_ else 0
                       for q in range(self.shape.max_blocks)]
        for sel, rng in ((LoadSel.A, range(cmd.buf, cmd.buf + kept * k)),
                         (LoadSel.BITMAP, range(self.shape.max_blocks))):
            if und or und_bm:
                bank.undef[sel].update(rng)
            else:
                bank.undef[sel].difference_update(rng)
        self._count(Counter.A_WRITES, kept * k)
        self._count(Counter.BITMAP_WRITES, self.shape.max_blocks)
        self._count(Counter.TRANSPOSER_TILES, kept)
        self._load_cycles(max(p_ + kept * k, kept * k + self.shape.max_blocks))

    # ------------------------------------------------------------------ GEMM
    def _bitmap(self, bank: _Bank, rows: int, cols: int) -> np.ndarray:
        return np.array([[(bank.bitmap[p] >> q) & 1 for q in range(cols)] for p in range(rows)],
                        dtype=bool).reshape(rows, cols)

    def _gemm(self, cmd: Command) -> None:
        bank = self.banks[cmd.bank]
        lim = self.limits
        err = array_error(lim, cmd.mode, cmd.m, cmd.n, cmd.k, bank.bitmap)
        if err != PEArrayError.NONE:
            raise _Flag(TopError.ARRAY, err, f"PE array rejects the GEMM: {err.name}")
        mode = Mode(cmd.mode)
        name = mode.name.lower()
        k = self.shape.k
        d = command_dims(mode, cmd.m, cmd.n, cmd.k, lim)
        mt, nt, kdim = d["MT"], d["NT"], d["K"]
        bitmap = None
        a_used, b_used = operand_words(mode, cmd.m, cmd.n, cmd.k, lim)
        if mode == Mode.SPARSE:
            bitmap = self._bitmap(bank, d["MB"], d["KB"])
            a_used = int(bitmap.sum()) * k
            a = np.zeros((cmd.m, cmd.k), dtype=np.uint16)
            blocks = bank.a[:a_used].reshape(-1, k, k)  # [i, c, r]
            for i, (p, q) in enumerate(zip(*np.nonzero(bitmap))):
                a[p * k:(p + 1) * k, q * k:(q + 1) * k] = blocks[i].T
            result = gemm_sparse(a, bitmap, unpack_b_dense(bank.b, nt, kdim), k)
        elif mode == Mode.CIRC:
            grid = (d["KB"], d["MB"]) if cmd.transpose else (d["MB"], d["KB"])
            v = bank.a[:a_used].reshape(grid[0], grid[1], k)
            result = run("circ", v, unpack_b_dense(bank.b, nt, kdim), k=k, transpose=bool(cmd.transpose))
        elif mode == Mode.DV:
            # column j of tile tj rings block q = tj*C + j: B words q*K + b, also past the edge
            # (other words of the buffer), so every lane is predicted
            q_all = np.arange(nt * lim.cols)
            addrs = (q_all[:, None] * kdim + np.arange(kdim)[None, :]) % self.shape.b_depth
            xt = bank.b[addrs].transpose(1, 0, 2).reshape(kdim, nt * lim.cols * k)
            b_used = int(addrs.max()) + 1
            result = circ_dv(unpack_a_dense(bank.a, mt, kdim), xt, k)
        else:
            if mode == Mode.WGRAD:
                bitmap = self._bitmap(bank, d["MB"], d["QB"])
            result = run(name, unpack_a_dense(bank.a, mt, kdim), unpack_b_dense(bank.b, nt, kdim),
                         bitmap=bitmap, k=k)
        out_cols = d["QB"] if mode == Mode.DV else cmd.n
        tiles = tile_order(name, cmd.m, out_cols, lim, bitmap)
        beats = np.array(output_beats(result, tiles, lim, round_bf16=bool(cmd.round)),
                         dtype=np.uint32).reshape(-1, lim.cols)
        report = cycle_model(name, cmd.m, out_cols, kdim, lim, bitmap)
        undefined = (not bank.undef[LoadSel.A].isdisjoint(range(a_used))
                     or not bank.undef[LoadSel.B].isdisjoint(range(b_used))
                     or (bitmap is not None and bool(bank.undef[LoadSel.BITMAP])))
        self._count(Counter.EX_STEPS, report.macs // (lim.rows * lim.cols))
        self._count(Counter.MACS, report.macs)
        self._count(Counter.MACS_DENSE, cmd.m * cmd.n * cmd.k)
        self._count(Counter.A_READS, report.a_reads)
        self._count(Counter.B_READS, report.b_reads)
        written = self._store(cmd, beats, undefined)
        first_beat = report.cycles - len(beats) if beats.size else report.cycles
        self._gemm_cycles(max(report.cycles, first_beat + written))
        self._count(Counter.ST_BUSY, written)

    def _store(self, cmd: Command, beats: np.ndarray, undefined: bool) -> int:
        """Write the output beats; returns the memory words written."""
        mem = self.memory
        if cmd.fmt == Fmt.RAW:
            if cmd.round:
                lanes = (beats >> 16).astype(np.uint16)
            else:
                flat = beats.reshape(-1)
                lanes = np.empty(2 * flat.size, dtype=np.uint16)
                lanes[0::2], lanes[1::2] = flat & 0xFFFF, flat >> 16
            lanes = lanes.reshape(-1, self.shape.k)
            if undefined:
                mem.mark_undefined(cmd.addr, lanes.shape[0])
            else:
                mem.write(cmd.addr, lanes)
            self._count(Counter.MEM_WRITE_RAW, lanes.shape[0])
            return lanes.shape[0]
        if undefined:
            mem.mark_undefined(cmd.addr, cmd.extent)
            self.unpredicted |= {Counter.MEM_WRITE_EMD, Counter.EMD_GROUPS_ENCODED}
            return cmd.extent
        values = (beats >> 16).astype(np.uint16).reshape(-1)
        words = emdlib.encode(values, self.fmt, word_bits=mem.mem_bits)
        self._emd_raw += len(beats)
        self._count(Counter.EMD_GROUPS_ENCODED, ceil_div(values.size, self.fmt.group))
        fit = min(len(words), cmd.extent - 1)
        mem.write(cmd.addr + 1, words_to_lanes(words[:fit], self.shape.k))
        self._count(Counter.MEM_WRITE_EMD, fit)
        if fit < len(words):
            raise _Flag(TopError.LENGTH, 0, f"EMD result of 1+{len(words)} words does not fit extent={cmd.extent}")
        mem.set_word(cmd.addr, len(words))
        self._count(Counter.MEM_WRITE_EMD, 1)
        return 1 + len(words)

    # ------------------------------------------------------------------ COUNTERS
    def _write_counters(self, cmd: Command) -> None:
        cycles, _ = self._segment_cycles()
        self.counters[Counter.CYCLES] = self._cycles_before + cycles
        width = min(COUNTER_BITS, self.memory.mem_bits)
        values = [self.counters[c] & ((1 << width) - 1) for c in Counter]
        self.memory.write(cmd.addr, words_to_lanes(values, self.shape.k))


def run_program(program: Program, memory: Memory, machine: Machine | None = None, *,
                keep_images: bool = True, on_segment=None) -> ProgramRun:
    """Run every step of ``program`` on ``memory`` (in place); returns the reports and the image
    after every chip segment.

    ``keep_images=False`` keeps none (``ProgramRun.images`` is empty; a HalfCheetah-size image is
    about 20 MB); ``on_segment(index, report, memory)`` is called after every chip segment, with
    the live image, e.g. to compare it with the RTL's at once.
    """
    m = machine or Machine(program.shape, program.emd_fmt, memory)
    if m.memory is not memory:
        raise ValueError("the machine works on another memory image")
    segments, images, host = [], [], []
    for step in program.steps:
        if isinstance(step, HostStep):
            r0, w0 = memory.words_read, memory.words_written
            step.fn(memory)
            host.append(HostReport(step.name, step.flops, step.bytes_read, step.bytes_written,
                                   memory.words_read - r0, memory.words_written - w0))
        elif isinstance(step, ChipSegment):
            segments.append(m.run_segment(step))
            if keep_images:
                images.append(memory.copy())
            if on_segment is not None:
                on_segment(len(segments) - 1, segments[-1], memory)
        else:
            raise TypeError(f"program step {step!r} is neither a ChipSegment nor a HostStep")
    return ProgramRun(segments, images, host, dict(m.counters))
