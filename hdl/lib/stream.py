"""Stream plumbing shared by the blocks: a pipeline register, a skid buffer and a queue.

All three have an ``i`` and an ``o`` port of ``stream.Signature(shape)`` and obey the stream
rules (``../shared/DESIGN.md`` section 3). They differ in what the ``ready`` path costs:

* :class:`StreamRegister` (one entry): ``i.ready = ~o.valid | o.ready``. Full throughput and
  one cycle of latency, but ``i.ready`` depends combinationally on ``o.ready``.
* :class:`SkidBuffer` (two entries): ``i.ready`` is a register, which cuts the combinational
  ready path between two stages; full throughput, one cycle of latency.
* :class:`Queue` (``depth`` entries, over :class:`amaranth.lib.fifo.SyncFIFOBuffered`, or
  :class:`~amaranth.lib.fifo.SyncFIFO` for ``fwft``-free use): decouples two stages by more
  than one beat; ``level`` tells how full it is. (Its memory's combinational read port
  needs the flow's time-zero wake-up on Icarus: ``docs/flows.md``, "FSMs, enums and FIFOs".)
"""

from amaranth import Module, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister", "SkidBuffer", "Queue"]


class _StreamStage(wiring.Component):
    """A component with one input and one output stream of the same payload ``shape``."""

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})


class StreamRegister(_StreamStage):
    """A one-entry pipeline register on a stream (ports ``i`` and ``o``, payload ``shape``)."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class SkidBuffer(_StreamStage):
    """A two-entry buffer with a registered ``i.ready`` (no combinational ready path).

    Ports ``i`` and ``o``, payload ``shape``. The output register holds the beat being offered;
    when the consumer stalls while a beat arrives, that beat waits in the skid register and
    ``i.ready`` drops the next cycle.
    """

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.i.payload, name="skid")
        skid_full = Signal()
        m.d.comb += self.i.ready.eq(~skid_full)
        take_in = self.i.valid & self.i.ready
        out_free = ~self.o.valid | self.o.ready
        with m.If(out_free):
            with m.If(skid_full):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_full.eq(0)]
            with m.Elif(take_in):
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        with m.Elif(take_in):
            m.d.sync += [skid.eq(self.i.payload), skid_full.eq(1)]
        return m


class Queue(wiring.Component):
    """A synchronous FIFO queue with stream ports.

    Parameters
    ----------
    shape : shape-castable
        Payload shape (a layout is packed to bits and back).
    depth : int
        Entries (>= 1).
    buffered : bool
        True: :class:`~amaranth.lib.fifo.SyncFIFOBuffered` (registered output, one cycle more
        latency, block-RAM friendly). False: :class:`~amaranth.lib.fifo.SyncFIFO` (first word
        falls through the cycle after it is written).

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    level : Out(range(depth + 1))
    """

    def __init__(self, shape, depth: int, *, buffered: bool = False):
        if depth < 1:
            raise ValueError(f"Queue: depth={depth} must be >= 1")
        self.shape, self.depth, self.buffered = shape, depth, buffered
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width  # a plain shape's payload is a Signal (no as_value)
        kind = fifo.SyncFIFOBuffered if self.buffered else fifo.SyncFIFO
        m.submodules.fifo = q = kind(width=width, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid), self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready),
            self.level.eq(q.level),
        ]
        return m
