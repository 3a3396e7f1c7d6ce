"""Load unit of the OmniDRL top: external memory -> operand buffers, raw, EMD or transposed.

One LOAD or TRANSPOSE at a time (``docs/top.md``, ``docs/formats.md`` "Command stream"):

* **LOAD raw** (A, B or bitmap rows): one read request of ``count`` words at ``addr``; word i
  is written to buffer word (bitmap row) ``buf + i``.
* **LOAD EMD**: the length word L at ``addr`` first (L < extent, else ``LENGTH``; L = 0 is an
  empty, so truncated, stream: ``EMD``/``TRUNCATED``, as ``golden.emd.decode([])`` says), then L
  words at ``addr + 1`` through :class:`hdl.emd.EmdDecoder` (lanes = k, word_bits = mem_bits);
  decoded beat i is written to ``buf + i``. A decoder fault is ``EMD`` (the decoder's code as
  detail); a stream that decodes to another number of beats than ``count`` is ``LENGTH`` (beats
  past ``count`` are dropped, never written).
* **TRANSPOSE**: W has a P x Q block bitmap (P = ``m`` words at ``addr2``, bit q of word p =
  block (p, q) kept; bits q >= Q are ignored) and its kept k x k blocks at ``addr``, row-major
  block order, k words per block (word c = column c). The unit reads the bitmap, then walks
  W^T's blocks q-major (q outer, p inner); each kept block's k words (block index = row-major
  prefix count of the bitmap, so no search) go through :class:`hdl.transposer.Transposer`
  (tile = lanes = k, an all-ones header) and come out as the rows of W's block, which are the
  columns of W^T's block: A words ``buf, buf + 1, ...`` in W^T's block order. Then it writes
  W^T's bitmap into bitmap rows 0..max_blocks-1 (row q = column q of W's bitmap). Blocks that
  would not fit the extent (``kept * k > extent``) or the A buffer (``buf + kept * k >
  a_depth``) flag ``LENGTH`` and nothing is written.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import EmdDecoderError, LoadSel
from golden.isa import Fmt, TopError

from .emd import EmdDecoder
from .lib.reduce import mux_tree, popcount
from .omnidrl_issue import flag_layout, load_job_layout
from .pe_array_store import load_layout
from .transposer import Transposer

__all__ = ["rd_req_layout", "rd_data_layout", "load_events_layout", "LoadUnit"]


def rd_req_layout(shape) -> data.StructLayout:
    """A read request: ``len`` (>= 1) words from word address ``addr``."""
    return data.StructLayout({"addr": shape.mem_addr_bits, "len": shape.mem_addr_bits})


def rd_data_layout(shape) -> data.StructLayout:
    """A word read, ``last`` on each request's final word."""
    return data.StructLayout({"data": shape.mem_bits, "last": 1})


def load_events_layout() -> data.StructLayout:
    """Per-cycle events of the load unit for the counters."""
    return data.StructLayout({"busy": 1, "stall": 1, "emd": 1, "group": 1, "tile": 1})


class State(enum.Enum, shape=4):
    IDLE = 0
    REQ = 1         # the first read request (raw words, EMD length word, TRANSPOSE bitmap)
    RAW = 2         # raw words -> buffer
    EMD_LEN = 3     # the EMD length word
    EMD_REQ = 4     # the EMD stream's request
    EMD_STREAM = 5  # words -> decoder -> buffer
    EMD_DRAIN = 6   # the decoder finishes the stream
    TR_BM = 7       # W's bitmap rows
    TR_CHECK = 8    # kept blocks fit the extent and the A buffer?
    TR_RUN = 9      # block reads -> transposer -> A words
    TR_BITMAP = 10  # W^T's bitmap rows -> bitmap
    FINISH = 11     # report done (and the flag)


class LoadUnit(wiring.Component):
    """The load path: read requests, raw / EMD / transposer data paths, buffer writes.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig

    Members
    -------
    job : In(stream.Signature(load_job_layout(shape)))
        Taken when idle.
    rd_req : Out(stream.Signature(rd_req_layout(shape)))
    rd_data : In(stream.Signature(rd_data_layout(shape)))
    load : Out(stream.Signature(load_layout(pe_array)))
        Buffer and bitmap writes to the PE array.
    done : Out(1)
        One cycle: the job is finished (every buffer write transferred).
    read_done : Out(1)
        One cycle: the job has received its last memory word.
    flag : Out(flag_layout())
        With ``done``: the job was flagged (``LENGTH`` or ``EMD``).
    events : Out(load_events_layout())
    """

    def __init__(self, cfg):
        self.cfg = cfg
        shape = cfg.isa_shape
        super().__init__({
            "job": In(stream.Signature(load_job_layout(shape))),
            "rd_req": Out(stream.Signature(rd_req_layout(shape))),
            "rd_data": In(stream.Signature(rd_data_layout(shape))),
            "load": Out(stream.Signature(load_layout(cfg.pe_array))),
            "done": Out(1), "read_done": Out(1),
            "flag": Out(flag_layout()),
            "events": Out(load_events_layout()),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        shape = cfg.isa_shape
        pe = cfg.pe_array
        k, mb, lk = pe.block_size, pe.max_blocks, pe.block_size.bit_length() - 1
        m = Module()
        state = Signal(State)
        j = Signal(load_job_layout(shape))
        req, rd, ld = self.rd_req, self.rd_data, self.load
        err = Signal(TopError)
        detail = Signal(len(self.flag.detail))
        i = Signal(shape.mem_addr_bits + 1)  # words / beats moved in this job
        length = Signal(shape.mem_addr_bits)  # EMD stream words
        self._beats = Signal(shape.buf_bits + 2)  # EMD: decoded beats (count + 1: too many)

        m.d.comb += [self.job.ready.eq(state == State.IDLE), ld.payload.sel.eq(j.sel)]
        if pe.banks > 1:
            m.d.comb += ld.payload.bank.eq(j.bank)
        rd_take = rd.valid & rd.ready
        ld_take = ld.valid & ld.ready
        # The events are driven in one assignment (fields from plain signals). Field by field
        # would now be safe too (flows/generate.py wakes the per-slice ``always @*`` blocks it
        # gives, which Icarus once left X at time zero, poisoning a counter), but rewriting it
        # would change the top's Verilog for nothing.
        self._group, self._tile = Signal(), Signal()
        busy = state != State.IDLE
        m.d.comb += self.events.eq(Cat(busy, busy & ~rd_take & ~ld_take, ~j.transpose & (j.fmt == Fmt.EMD),
                                       self._group, self._tile))

        # --- the decoder (EMD loads) and the transposer (TRANSPOSE)
        parts = cfg.parts()
        dec = m.submodules.decoder = EmdDecoder(parts["load.decoder"])
        tr = m.submodules.transposer = Transposer(parts["load.transposer"])
        m.d.comb += [dec.i.payload.data.eq(rd.payload.data), dec.i.payload.last.eq(i == length - 1)]

        # --- TRANSPOSE state: W's bitmap (rows >= P zero), row-major prefix counts per row
        bm = [Signal(mb, name=f"w_bitmap{p}") for p in range(mb)]
        rowbase = [Signal(range(mb * mb + 1), name=f"w_rowbase{p}") for p in range(mb)]
        total = Signal(range(mb * mb + 1))
        qmask = Signal(mb)  # bits 0..Q-1 (column q of W exists)
        m.d.comb += qmask.eq(((Const(1, mb + 1) << j.n[:max(1, (mb + 1).bit_length())]) - 1)[:mb])
        wq = Signal(range(max(2, mb)))  # walker: block column q of W (outer) ...
        wp = Signal(range(max(2, mb)))  # ... and block row p (inner)
        walked = Signal()
        hdr_sent = Signal()  # the transposer has this block's header
        word_c = Signal(range(max(2, k)))
        fed = Signal(range(mb * mb + 1))  # blocks fed to the transposer
        out_words = Signal(range(mb * mb * k + 1))  # A words written
        bq = Signal(range(max(2, mb)))  # bitmap row written

        with m.If(state == State.IDLE):
            with m.If(self.job.valid):
                m.d.sync += [j.eq(self.job.payload), state.eq(State.REQ), err.eq(TopError.NONE), detail.eq(0),
                             i.eq(0), total.eq(0)]
                m.d.sync += [row.eq(0) for row in bm]
        with m.Elif(state == State.REQ):
            m.d.comb += req.valid.eq(1)
            with m.If(j.transpose):
                m.d.comb += [req.payload.addr.eq(j.addr2), req.payload.len.eq(j.m)]
            with m.Elif(j.fmt == Fmt.EMD):
                m.d.comb += [req.payload.addr.eq(j.addr), req.payload.len.eq(1)]
            with m.Else():
                m.d.comb += [req.payload.addr.eq(j.addr), req.payload.len.eq(j.count)]
            with m.If(req.ready):
                m.d.sync += state.eq(Mux(j.transpose, State.TR_BM, Mux(j.fmt == Fmt.EMD, State.EMD_LEN, State.RAW)))
        with m.Elif(state == State.RAW):
            m.d.comb += [ld.valid.eq(rd.valid), rd.ready.eq(ld.ready), ld.payload.addr.eq(j.buf + i),
                         ld.payload.data.eq(rd.payload.data)]
            with m.If(ld_take):
                m.d.sync += i.eq(i + 1)
                with m.If(i + 1 == j.count):
                    m.d.comb += self.read_done.eq(1)
                    m.d.sync += state.eq(State.FINISH)
        with m.Elif(state == State.EMD_LEN):
            m.d.comb += rd.ready.eq(1)
            with m.If(rd_take):
                word = rd.payload.data
                with m.If(word >= j.extent):
                    m.d.comb += self.read_done.eq(1)
                    m.d.sync += [err.eq(TopError.LENGTH), state.eq(State.FINISH)]
                with m.Elif(word == 0):  # an empty stream has no terminator: truncated
                    m.d.comb += self.read_done.eq(1)
                    m.d.sync += [err.eq(TopError.EMD), detail.eq(EmdDecoderError.TRUNCATED), state.eq(State.FINISH)]
                with m.Else():
                    m.d.sync += [length.eq(word), state.eq(State.EMD_REQ)]
        with m.Elif(state == State.EMD_REQ):
            m.d.comb += [req.valid.eq(1), req.payload.addr.eq(j.addr + 1), req.payload.len.eq(length)]
            with m.If(req.ready):
                m.d.sync += [state.eq(State.EMD_STREAM), i.eq(0)]
        with m.Elif(state == State.EMD_STREAM):
            m.d.comb += [dec.i.valid.eq(rd.valid), rd.ready.eq(dec.i.ready)]
            with m.If(rd_take):
                m.d.sync += i.eq(i + 1)
                with m.If(i == length - 1):
                    m.d.comb += self.read_done.eq(1)
                    m.d.sync += state.eq(State.EMD_DRAIN)
        with m.Elif(state == State.EMD_DRAIN):
            # The decoder takes words again once it has finished (or dropped) the stream.
            with m.If(dec.i.ready & ~dec.o.valid):
                m.d.sync += state.eq(State.FINISH)
                with m.If(dec.error):
                    m.d.sync += [err.eq(TopError.EMD), detail.eq(dec.err_code)]
                with m.Elif(self._beats != j.count):
                    m.d.sync += err.eq(TopError.LENGTH)
        with m.Elif(state == State.TR_BM):
            m.d.comb += rd.ready.eq(1)
            row = rd.payload.data[:mb] & qmask
            with m.If(rd_take):
                for p in range(mb):
                    with m.If(i == p):
                        m.d.sync += [bm[p].eq(row), rowbase[p].eq(total)]
                m.d.sync += [total.eq(total + popcount(row)), i.eq(i + 1)]
                with m.If(i + 1 == j.m):
                    m.d.sync += state.eq(State.TR_CHECK)
        with m.Elif(state == State.TR_CHECK):
            words = Cat(Const(0, lk), total)
            m.d.sync += [wq.eq(0), wp.eq(0), walked.eq(0), hdr_sent.eq(0), word_c.eq(0), fed.eq(0),
                         out_words.eq(0), bq.eq(0)]
            with m.If((words > j.extent) | (j.buf + words > pe.a_depth)):
                m.d.comb += self.read_done.eq(1)
                m.d.sync += [err.eq(TopError.LENGTH), state.eq(State.FINISH)]
            with m.Elif(total == 0):
                m.d.comb += self.read_done.eq(1)
                m.d.sync += state.eq(State.TR_BITMAP)
            with m.Else():
                m.d.sync += state.eq(State.TR_RUN)
        with m.Elif(state == State.TR_RUN):
            self._transpose(m, j, bm, rowbase, total, (wq, wp, walked, hdr_sent, word_c, fed, out_words), tr, state)
        with m.Elif(state == State.TR_BITMAP):
            m.d.comb += [ld.valid.eq(1), ld.payload.sel.eq(LoadSel.BITMAP), ld.payload.addr.eq(bq),
                         ld.payload.data.eq(Cat(*[bm[p].bit_select(bq, 1) for p in range(mb)]))]
            with m.If(ld.ready):
                m.d.sync += bq.eq(bq + 1)
                with m.If(bq == mb - 1):
                    m.d.sync += state.eq(State.FINISH)
        with m.Elif(state == State.FINISH):
            m.d.comb += [self.done.eq(1), self.flag.valid.eq(err != TopError.NONE), self.flag.code.eq(err),
                         self.flag.detail.eq(detail), self.flag.index.eq(j.index)]
            m.d.sync += state.eq(State.IDLE)
        with m.Else():
            m.d.sync += state.eq(State.IDLE)  # unreachable encodings

        self._emd_output(m, j, dec, state)
        return m

    def _emd_output(self, m: Module, j, dec, state):
        """Decoded beats -> buffer words ``buf + n`` while n < count; later beats are dropped."""
        cfg = self.cfg
        k = cfg.pe_array.block_size
        ld = self.load
        beats = self._beats
        emitting = (state == State.EMD_STREAM) | (state == State.EMD_DRAIN)
        with m.If(state == State.REQ):
            m.d.sync += beats.eq(0)
        with m.If(emitting):
            fits = beats < j.count
            m.d.comb += [ld.valid.eq(dec.o.valid & fits), dec.o.ready.eq(Mux(fits, ld.ready, 1)),
                         ld.payload.addr.eq(j.buf + beats),
                         ld.payload.data.eq(Cat(*[dec.o.payload.data[t] for t in range(k)]))]
            with m.If(dec.o.valid & dec.o.ready):
                m.d.sync += beats.eq(Mux(fits, beats + 1, j.count + 1))
                per_group = cfg.emd.group // k
                m.d.comb += self._group.eq((beats & (per_group - 1)) == 0 if per_group > 1 else 1)

    def _transpose(self, m: Module, j, bm, rowbase, total, regs, tr, state):
        """TR_RUN: the walker's read requests, the transposer's input and its output to A."""
        cfg = self.cfg
        pe = cfg.pe_array
        k, mb, lk = pe.block_size, pe.max_blocks, pe.block_size.bit_length() - 1
        wq, wp, walked, hdr_sent, word_c, fed, out_words = regs
        req, rd, ld = self.rd_req, self.rd_data, self.load
        # Walker: W^T's blocks in row-major order = W's blocks (p, q), q outer, p inner.
        row = mux_tree(bm, wp)
        kept = row.bit_select(wq, 1)
        before = popcount(row & ((Const(1, mb + 1) << wq) - 1)[:mb])
        index = mux_tree(rowbase, wp) + before
        last_p = wp == j.m - 1
        step = Signal()
        with m.If(~walked):
            m.d.comb += [req.valid.eq(kept), req.payload.addr.eq(j.addr + Cat(Const(0, lk), index)),
                         req.payload.len.eq(k), step.eq(~kept | req.ready)]
        with m.If(step):
            m.d.sync += wp.eq(Mux(last_p, 0, wp + 1))
            with m.If(last_p):
                m.d.sync += wq.eq(wq + 1)
                with m.If(wq == j.n - 1):
                    m.d.sync += walked.eq(1)
        # Transposer input: an all-ones header, then the block's k words as the tile's rows.
        ones = (1 << (k * k)) - 1
        with m.If(~hdr_sent & (fed != total)):
            m.d.comb += [tr.i.valid.eq(1), tr.i.payload.first.eq(1), tr.i.payload.data.eq(ones)]
            with m.If(tr.i.ready):
                m.d.sync += hdr_sent.eq(1)
                m.d.comb += self._tile.eq(1)
        with m.Elif(hdr_sent):
            m.d.comb += [tr.i.valid.eq(rd.valid), rd.ready.eq(tr.i.ready), tr.i.payload.data.eq(rd.payload.data),
                         tr.i.payload.last.eq(word_c == k - 1)]
            with m.If(rd.valid & tr.i.ready):
                m.d.sync += word_c.eq(Mux(word_c == k - 1, 0, word_c + 1))
                with m.If(word_c == k - 1):
                    m.d.sync += [hdr_sent.eq(0), fed.eq(fed + 1)]
                    with m.If(fed + 1 == total):
                        m.d.comb += self.read_done.eq(1)
        # Transposer output: drop the header, value beat r = row r of W's block -> A word.
        m.d.comb += [tr.o.ready.eq(tr.o.payload.first | ld.ready), ld.valid.eq(tr.o.valid & ~tr.o.payload.first),
                     ld.payload.sel.eq(LoadSel.A),
                     ld.payload.addr.eq(j.buf + out_words), ld.payload.data.eq(tr.o.payload.data[:16 * k])]
        with m.If(ld.valid & ld.ready):
            m.d.sync += out_words.eq(out_words + 1)
            with m.If(out_words + 1 == Cat(Const(0, lk), total)):
                m.d.sync += state.eq(State.TR_BITMAP)
