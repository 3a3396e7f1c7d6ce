"""Performance counters of the OmniDRL top (:class:`golden.isa.Counter`) and their write-out.

Every counter is ``COUNTER_BITS`` wide and saturates. COUNTERS (issued once every earlier
command is complete) writes counter i, zero-extended, to memory word ``addr + i``, in
:class:`~golden.isa.Counter` order; each word holds the counter's value in the cycle it is
offered (the cycle after the previous word was taken; only ``CYCLES`` still moves then).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.isa import COUNTER_BITS, Counter

from .lib.reduce import mux_tree
from .omnidrl_store import wr_layout

__all__ = ["Counters"]


class Counters(wiring.Component):
    """The counters and the COUNTERS writer.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig

    Members
    -------
    inc : In(data.ArrayLayout(COUNTER_BITS, len(Counter)))
        What to add to each counter this cycle.
    start : In(1), addr : In(mem_addr_bits)
        Write the counters at ``addr`` (one cycle).
    wr : Out(stream.Signature(wr_layout(shape)))
    done : Out(1)
        One cycle: the last counter word has been written.
    values : Out(data.ArrayLayout(COUNTER_BITS, len(Counter)))
        The counters (for a testbench that peeks).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        shape = cfg.isa_shape
        n = len(Counter)
        super().__init__({
            "inc": In(data.ArrayLayout(COUNTER_BITS, n)),
            "start": In(1), "addr": In(shape.mem_addr_bits),
            "wr": Out(stream.Signature(wr_layout(shape))),
            "done": Out(1),
            "values": Out(data.ArrayLayout(COUNTER_BITS, n)),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(Counter)
        top = (1 << COUNTER_BITS) - 1
        for c in range(n):
            total = Signal(COUNTER_BITS + 1, name=f"sum_{Counter(c).name.lower()}")
            m.d.comb += total.eq(self.values[c] + self.inc[c])
            m.d.sync += self.values[c].eq(Mux(total > top, top, total))
        active = Signal()
        index = Signal(range(n))
        base = Signal.like(self.addr)
        word = Signal(COUNTER_BITS)  # registered: the offered word holds until it transfers
        values = [self.values[c] for c in range(n)]
        with m.If(self.start):
            m.d.sync += [active.eq(1), index.eq(0), base.eq(self.addr), word.eq(values[0])]
        m.d.comb += [self.wr.valid.eq(active), self.wr.payload.addr.eq(base + index),
                     self.wr.payload.data.eq(word)]
        with m.If(self.wr.valid & self.wr.ready):
            m.d.sync += [index.eq(index + 1), word.eq(mux_tree(values[1:] + values[-1:], index))]
            with m.If(index == n - 1):
                m.d.comb += self.done.eq(1)
                m.d.sync += active.eq(0)
        return m
