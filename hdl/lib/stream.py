"""Stream plumbing shared by the blocks: a pipeline register, a skid buffer and a queue.

All three have an ``i`` and an ``o`` port of ``stream.Signature(shape)`` and obey the stream
rules (``../shared/DESIGN.md`` section 3). They differ in what the ``ready`` path costs:

* :class:`StreamRegister` (one entry): ``i.ready = ~o.valid | o.ready``. Full throughput and
  one cycle of latency, but ``i.ready`` depends combinationally on ``o.ready``.
* :class:`SkidBuffer` (two entries): ``i.ready`` is a register, which cuts the combinational
  ready path between two stages; full throughput, one cycle of latency.
* :class:`Queue` (``depth`` entries, over :class:`amaranth.lib.fifo.SyncFIFOBuffered`, or
  :class:`~amaranth.lib.fifo.SyncFIFO` for ``fwft``-free use): decouples two stages by more
  than one beat; ``level`` tells how full it is. ``flops=True`` keeps the entries in
  flip-flops instead of a memory (same ports and timing as ``SyncFIFO``).
"""

from amaranth import Array, Module, Mux, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister", "SkidBuffer", "Queue"]


class StreamRegister(wiring.Component):
    """A one-entry pipeline register on a stream.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class SkidBuffer(wiring.Component):
    """A two-entry buffer with a registered ``i.ready`` (no combinational ready path).

    The output register holds the beat being offered; when the consumer stalls while a beat
    arrives, that beat waits in the skid register and ``i.ready`` drops the next cycle.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

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
    flops : bool
        Keep the entries in flip-flops (first-word-fall-through, the timing of ``SyncFIFO``).
        Icarus 11 mis-reads a memory's combinational read port (``assign r = mem[addr]``: a
        queue of the EMD encoder lost words there while Verilator and Amaranth's simulator
        were right), and synthesis turns small queues into flops anyway.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    level : Out(range(depth + 1))
    """

    def __init__(self, shape, depth: int, *, buffered: bool = False, flops: bool = False):
        if depth < 1:
            raise ValueError(f"Queue: depth={depth} must be >= 1")
        if buffered and flops:
            raise ValueError("Queue: buffered=True and flops=True exclude each other; flops is first-word-fall-through")
        self.shape, self.depth, self.buffered, self.flops = shape, depth, buffered, flops
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width  # a plain shape's payload is a Signal (no as_value)
        kind = _FlopFIFO if self.flops else fifo.SyncFIFOBuffered if self.buffered else fifo.SyncFIFO
        m.submodules.fifo = q = kind(width=width, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid), self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready),
            self.level.eq(q.level),
        ]
        return m


class _FlopFIFO(wiring.Component):
    """First-word-fall-through FIFO in flip-flops with the port names of ``SyncFIFO``."""

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        slots = Array(Signal(self.width, name=f"slot{k}") for k in range(self.depth))
        w_ptr = Signal(range(self.depth))
        r_ptr = Signal(range(self.depth))
        write = self.w_en & self.w_rdy
        read = self.r_en & self.r_rdy
        m.d.comb += [self.w_rdy.eq(self.level != self.depth), self.r_rdy.eq(self.level != 0),
                     self.r_data.eq(slots[r_ptr])]
        with m.If(write):
            m.d.sync += w_ptr.eq(Mux(w_ptr == self.depth - 1, 0, w_ptr + 1))
        for k in range(self.depth):  # one enable per slot (an indexed write lints as an incomplete case)
            with m.If(write & (w_ptr == k)):
                m.d.sync += slots[k].eq(self.w_data)
        with m.If(read):
            m.d.sync += r_ptr.eq(Mux(r_ptr == self.depth - 1, 0, r_ptr + 1))
        m.d.sync += self.level.eq(self.level + write - read)
        return m
