"""Store unit of the OmniDRL top: the PE array's output beats -> external memory.

One GEMM's output at a time, in the order the array runs them (``docs/formats.md``, "Command
stream"). An output beat is one tile row of k fp32 lanes; by the GEMM's ``fmt`` and ``round``:

* **RAW, round = 0** (fp32): two words per beat at ``addr + 2b`` and ``addr + 2b + 1``, lanes
  0..k/2-1 in the first word (lane 0 in its low 32 bits), lanes k/2..k-1 in the second.
* **RAW, round = 1** (bf16): one word per beat at ``addr + b``, lane c's bf16 in bits 16c..16c+15.
* **EMD** (round = 1): the bf16 beats through :class:`hdl.emd.EmdEncoder` (lanes = k,
  word_bits = mem_bits); word i of the stream at ``addr + 1 + i``, then its length L at
  ``addr``. Words that would land at or past ``addr + extent`` are dropped, the length word is
  not written and the GEMM is flagged ``LENGTH``.

A GEMM without output beats (wgrad with an empty bitmap) writes nothing raw; in EMD it writes
the stream of no values (one all-zero word: a terminator announcing no partial group) and its
length 1, as ``golden.emd.encode`` of nothing. The array's ``busy``
falling (``ex_done``) tells the unit that every beat of its oldest GEMM has left the array, so a
job finishes only once that is known: no beat of the next GEMM is ever taken for this one.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.isa import Fmt, TopError

from .emd import EmdEncoder
from .lib.stream import Queue
from .omnidrl_issue import flag_layout, store_job_layout
from .pe_array_grid import out_layout

__all__ = ["wr_layout", "store_events_layout", "StoreUnit"]


def wr_layout(shape) -> data.StructLayout:
    """A memory write: one word at word address ``addr``."""
    return data.StructLayout({"addr": shape.mem_addr_bits, "data": shape.mem_bits})


def store_events_layout() -> data.StructLayout:
    """Per-cycle events of the store unit for the counters."""
    return data.StructLayout({"busy": 1, "stall": 1, "emd": 1, "group": 1})


class State(enum.Enum, shape=3):
    IDLE = 0
    RAW = 1     # beats -> fp32 or bf16 words
    EMD = 2     # beats -> encoder -> words at addr + 1 + i
    LENGTH = 3  # the EMD length word at addr
    FINISH = 4  # report done (and the flag)


class StoreUnit(wiring.Component):
    """The store path.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig

    Members
    -------
    job : In(stream.Signature(store_job_layout(shape)))
        Accepted GEMMs in order (queued here, ``store_jobs`` deep).
    i : In(stream.Signature(out_layout(pe_array)))
        The PE array's output.
    ex_done : In(1)
        The array finished a GEMM (all its beats transferred).
    wr : Out(stream.Signature(wr_layout(shape)))
    done : Out(1)
        One cycle: the oldest job's last word has been written.
    flag : Out(flag_layout(detail=False))
        With ``done``: the job was flagged (``LENGTH``).
    events : Out(store_events_layout())
    """

    def __init__(self, cfg):
        self.cfg = cfg
        shape = cfg.isa_shape
        super().__init__({
            "job": In(stream.Signature(store_job_layout(shape))),
            "i": In(stream.Signature(out_layout(cfg.pe_array))),
            "ex_done": In(1),
            "wr": Out(stream.Signature(wr_layout(shape))),
            "done": Out(1),
            "flag": Out(flag_layout(detail=False)),
            "events": Out(store_events_layout()),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        shape = cfg.isa_shape
        k = cfg.pe_array.block_size
        m = Module()
        m.submodules.jobs = jobs = Queue(store_job_layout(shape), cfg.store_jobs)
        wiring.connect(m, wiring.flipped(self.job), jobs.i)
        enc_cfg = cfg.parts()["store.encoder"]
        enc = m.submodules.encoder = EmdEncoder(enc_cfg)

        state = Signal(State)
        j = Signal(store_job_layout(shape))
        n = Signal(shape.mem_addr_bits + 1)  # words of this job written (EMD: stream words)
        beat = Signal(32 * k)
        held = Signal()        # beat holds a beat not fully written
        half = Signal()        # fp32: the first word of the beat is written
        got_last = Signal()    # the job's final beat has been taken
        overflow = Signal()    # EMD: a word fell past the extent
        in_beats = Signal(shape.buf_bits + 2)  # EMD: beats into the encoder (for group counting)
        tokens = Signal(range(cfg.store_jobs + 2))  # GEMMs the array finished, not yet done here
        finish = state == State.FINISH
        m.d.sync += tokens.eq(tokens + self.ex_done - finish)
        array_finished = tokens != 0

        i, wr = self.i, self.wr
        lanes32 = [i.payload.data[32 * c:32 * c + 32] for c in range(k)]
        held32 = [beat[32 * c:32 * c + 32] for c in range(k)]
        # One assignment for the whole struct (see the load unit: no per-slice ``always @*``).
        group = Signal()
        m.d.comb += self.events.eq(Cat(state != State.IDLE, wr.valid & ~wr.ready, j.fmt == Fmt.EMD, group))

        with m.If(state == State.IDLE):
            m.d.comb += jobs.o.ready.eq(1)
            with m.If(jobs.o.valid):
                m.d.sync += [j.eq(jobs.o.payload), n.eq(0), held.eq(0), half.eq(0), got_last.eq(0),
                             overflow.eq(0), in_beats.eq(0),
                             state.eq(Mux(jobs.o.payload.fmt == Fmt.EMD, State.EMD, State.RAW))]
        with m.Elif(state == State.RAW):
            m.d.comb += i.ready.eq(~held & ~got_last & ~array_finished)
            with m.If(i.valid & i.ready):
                m.d.sync += [beat.eq(i.payload.data), held.eq(1), got_last.eq(i.payload.last)]
            bf16 = Cat(*[x[16:32] for x in held32])
            lo = Cat(*held32[:k // 2])
            hi = Cat(*held32[k // 2:])
            m.d.comb += [wr.valid.eq(held), wr.payload.addr.eq(j.addr + n),
                         wr.payload.data.eq(Mux(j.round, bf16, Mux(half, hi, lo)))]
            with m.If(wr.valid & wr.ready):
                m.d.sync += n.eq(n + 1)
                with m.If(j.round | half):
                    m.d.sync += [held.eq(0), half.eq(0)]
                with m.Else():
                    m.d.sync += half.eq(1)
            with m.If(~held & array_finished):
                m.d.sync += state.eq(State.FINISH)
        with m.Elif(state == State.EMD):
            open_job = ~got_last & ~array_finished  # beats may still come for this job
            m.d.comb += [enc.i.valid.eq(i.valid & open_job), i.ready.eq(enc.i.ready & open_job),
                         enc.i.payload.last.eq(i.payload.last)]
            m.d.comb += [enc.i.payload.data[c].eq(lanes32[c][16:32]) for c in range(k)]
            with m.If(i.valid & i.ready):
                m.d.sync += [got_last.eq(i.payload.last), in_beats.eq(in_beats + 1)]
                per_group = cfg.emd.group // k
                m.d.comb += group.eq((in_beats & (per_group - 1)) == 0 if per_group > 1 else 1)
            fits = n + 1 < j.extent
            m.d.comb += [wr.valid.eq(enc.o.valid & fits), enc.o.ready.eq(Mux(fits, wr.ready, 1)),
                         wr.payload.addr.eq(j.addr + 1 + n), wr.payload.data.eq(enc.o.payload.data)]
            with m.If(enc.o.valid & enc.o.ready):
                m.d.sync += n.eq(n + 1)
                with m.If(~fits):
                    m.d.sync += overflow.eq(1)
                with m.If(enc.o.payload.last):
                    m.d.sync += state.eq(State.LENGTH)
            with m.If(~got_last & array_finished):  # no beats: the empty stream is one zero word
                m.d.comb += [wr.valid.eq(1), wr.payload.addr.eq(j.addr + 1), wr.payload.data.eq(0)]
                with m.If(wr.ready):
                    m.d.sync += [n.eq(1), state.eq(State.LENGTH)]
        with m.Elif(state == State.LENGTH):
            m.d.comb += [wr.valid.eq(~overflow & array_finished), wr.payload.addr.eq(j.addr), wr.payload.data.eq(n)]
            with m.If(array_finished & (overflow | wr.ready)):
                m.d.sync += state.eq(State.FINISH)
        with m.Elif(finish):
            m.d.comb += [self.done.eq(1), self.flag.valid.eq(overflow), self.flag.code.eq(TopError.LENGTH),
                         self.flag.index.eq(j.index)]
            m.d.sync += state.eq(State.IDLE)
        with m.Else():
            m.d.sync += state.eq(State.IDLE)  # unreachable encodings
        return m
