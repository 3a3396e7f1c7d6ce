"""One SRAM wrapper for every block: a memory macro that synthesis keeps as a black box.

:class:`Sram` is a single-read-port, single-write-port synchronous memory in a module of its
own. It declares itself a black box (``synth_blackbox = True``): the synthesis flow finds every
such module wherever it sits in the hierarchy (``flows.blackbox``) and keeps it out of the
gate count, its area coming from the documented SRAM model instead. Without the mark Yosys
would turn the array into flip-flops. The memory also carries the Verilog attribute
``(* omnidrl_sram *)`` so a reader of the netlist sees what it is.

Any component can be a black box the same way: set ``synth_blackbox`` to True (an attribute
of the instance, so it may depend on the configuration, as the ECIM macro's does).
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Sram"]


class Sram(wiring.Component):
    """``depth`` words of ``width`` bits, one synchronous read and one write per cycle.

    Parameters
    ----------
    width, depth : int
        Word width in bits and number of words.

    Members
    -------
    w_en, w_addr, w_data : In
        Write ``w_data`` at ``w_addr`` at the clock edge when ``w_en``.
    r_en, r_addr : In
        Read ``r_addr`` at the clock edge when ``r_en``.
    r_data : Out(width)
        The word read, from the cycle after ``r_en``; it holds until the next ``r_en``.
        A read and a write of the same address in one cycle return the old word.
    """

    synth_blackbox = True

    def __init__(self, width: int, depth: int):
        if depth < 1 or width < 1:
            raise ValueError(f"Sram: width={width} and depth={depth} must both be >= 1")
        self.width, self.depth = width, depth
        super().__init__({
            "w_en": In(1), "w_addr": In(range(depth)), "w_data": In(width),
            "r_en": In(1), "r_addr": In(range(depth)), "r_data": Out(width),
        })

    @property
    def bits(self) -> int:
        """Storage in bits (for the SRAM area model)."""
        return self.width * self.depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[],
                                        attrs={"omnidrl_sram": "1"})
        w = mem.write_port()
        r = mem.read_port()
        m.d.comb += [w.en.eq(self.w_en), w.addr.eq(self.w_addr), w.data.eq(self.w_data),
                     r.en.eq(self.r_en), r.addr.eq(self.r_addr), self.r_data.eq(r.data)]
        return m
