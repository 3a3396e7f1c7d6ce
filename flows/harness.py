"""IO-minimal wrapper for FPGA place and route.

A block has hundreds of port bits and would not fit any iCE40 package. The harness feeds every
input bit from one long shift register (1 serial input pin) and XOR-reduces every output bit into
one register (1 output pin), so nextpnr sees the block's real logic and timing with three pins.
"""

from amaranth import Cat, Module, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring

__all__ = ["IOHarness"]


class IOHarness(wiring.Component):
    """Wrap ``dut`` so that only ``serial_in`` and ``xor_out`` (plus clk/rst) are ports."""

    serial_in: wiring.In(1)
    xor_out: wiring.Out(1)

    def __init__(self, dut):
        self.dut = dut
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        inputs, outputs = [], []
        for _path, member, value in self.dut.signature.flatten(self.dut):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        width = max(1, sum(len(v) for v in inputs))
        shift = Signal(width)
        m.d.sync += shift.eq(Cat(self.serial_in, shift[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(shift[offset:offset + len(value)])
            offset += len(value)
        reduced = Signal()
        m.d.sync += reduced.eq(Cat(*outputs).xor() if outputs else 0)
        m.d.comb += self.xor_out.eq(reduced)
        return m
