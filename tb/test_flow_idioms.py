"""cocotb tests for :class:`FlowIdioms`, a fixture built from the idioms the tools once tripped on.

``m.FSM`` with outputs decoded from the state, an ``amaranth.lib.enum`` port and a ``Switch``
over it, an ``amaranth.lib.fifo.SyncFIFO`` of a depth that is no power of two, and a struct
(``amaranth.lib.data``) port driven field by field. Without the flow's handling (docs/flows.md,
"FSMs, enums and FIFOs"), Icarus leaves ``busy``, ``phase`` and ``status`` X after reset and
``verilator --lint-only -Wall`` reports CASEINCOMPLETE. Run by
tests/test_flow_idioms.py through :func:`tb.runner.run_cocotb_component`.
"""

import random

from amaranth import Module
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Phase", "FlowIdioms", "BEAT", "FIFO_DEPTH", "STATUS"]

FIFO_DEPTH = 3
BEAT = data.StructLayout({"data": 8, "last": 1})
# ``level`` is a plain copy of a register and ``draining`` is set in one FSM state: Yosys writes
# the port as a ``reg`` driven by a process plus a one-statement ``always @*`` per plain field.
STATUS = data.StructLayout({"level": range(FIFO_DEPTH + 1), "draining": 1})


class Phase(enum.Enum, shape=2):
    IDLE = 0
    FILL = 1
    DRAIN = 2


class FlowIdioms(wiring.Component):
    """Collect a burst into a FIFO, then send it on: FILL until the FIFO is full or a beat with
    ``last`` arrives, DRAIN until the FIFO is empty.

    Members
    -------
    i : In(stream.Signature(BEAT))
    o : Out(stream.Signature(BEAT))
    phase : Out(Phase)
        The FSM state as an enum (combinational, decoded from the state).
    busy : Out(1)
        High outside IDLE (combinational, decoded from the state).
    status : Out(STATUS)
        The FIFO's fill level and whether the FSM is in DRAIN, assigned field by field.
    """

    i: In(stream.Signature(BEAT))
    o: Out(stream.Signature(BEAT))
    phase: Out(Phase)
    busy: Out(1)
    status: Out(STATUS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = fifo.SyncFIFO(width=BEAT.size, depth=FIFO_DEPTH)
        take = self.i.valid & self.i.ready
        give = self.o.valid & self.o.ready
        m.d.comb += [queue.w_data.eq(self.i.payload), queue.w_en.eq(take),
                     self.o.payload.eq(queue.r_data), queue.r_en.eq(give),
                     self.status.level.eq(queue.level)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.phase.eq(Phase.IDLE)
                with m.If(self.i.valid):
                    m.next = "FILL"
            with m.State("FILL"):
                m.d.comb += [self.phase.eq(Phase.FILL), self.busy.eq(1)]
                with m.If(take & (self.i.payload.last | (queue.level == FIFO_DEPTH - 1))):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.phase.eq(Phase.DRAIN), self.busy.eq(1), self.status.draining.eq(1)]
                with m.If(give & (queue.level == 1)):
                    m.next = "IDLE"
        with m.Switch(self.phase):
            with m.Case(Phase.FILL):
                m.d.comb += self.i.ready.eq(queue.w_rdy)
            with m.Case(Phase.DRAIN):
                m.d.comb += self.o.valid.eq(queue.r_rdy)
        return m


# -- cocotb ------------------------------------------------------------------------------------
try:
    import cocotb
    from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - the component stays importable without cocotb
    cocotb = None

if cocotb is not None:
    from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

    CODEC = PayloadCodec(BEAT)
    STATUS_CODEC = PayloadCodec(STATUS)

    def _defined(handle, name: str) -> int:
        value = handle.value
        assert value.is_resolvable, f"{name} is {value} (not 0/1) after reset: a combinational output never evaluated"
        return int(value)

    @cocotb.test()
    async def decoded_outputs_defined_after_reset(dut):
        """``busy``, ``phase`` and ``status`` come from registers that reset does not change."""
        start_clock(dut)
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        await reset(dut)
        for _ in range(3):
            await RisingEdge(dut.clk)
            await ReadOnly()
            assert _defined(dut.busy, "busy") == 0, "busy while idle"
            assert _defined(dut.phase, "phase") == Phase.IDLE.value, "not IDLE after reset"
            assert _defined(dut.i__ready, "i.ready") == 0, "ready while idle"
            assert _defined(dut.status, "status") == 0, "status not level 0, not draining, after reset"

    @cocotb.test()
    async def bursts_pass_in_order(dut):
        """Bursts of 1 to 7 beats (``last`` on the final one) with random gaps and stalls."""
        start_clock(dut)
        await reset(dut)
        rng = random.Random(7)
        board = Scoreboard("o")
        sink = StreamSink(dut, "o", CODEC, stall_prob=0.3, rng=random.Random(8), callback=board.receive)
        source = StreamSource(dut, "i", CODEC, gap_prob=0.3, rng=random.Random(9))
        beats = []
        for _ in range(40):
            size = rng.randint(1, 7)
            beats += [{"data": rng.getrandbits(8), "last": int(k == size - 1)} for k in range(size)]
        board.expect_all(beats)
        source.send_all(beats)
        phases, levels = set(), set()
        for _ in range(20 * len(beats)):
            await FallingEdge(dut.clk)
            phase = _defined(dut.phase, "phase")
            status = STATUS_CODEC.unpack(_defined(dut.status, "status"))
            assert status["draining"] == (phase == Phase.DRAIN.value), f"status {status} in phase {phase}"
            phases.add(phase)
            levels.add(status["level"])
            if len(sink.received) == len(beats):
                break
        await sink.wait_for(len(beats), timeout_cycles=10)
        board.check_done(sink)
        assert phases == {p.value for p in Phase}, f"phases seen: {sorted(phases)}"
        assert levels == set(range(FIFO_DEPTH + 1)), f"FIFO levels seen: {sorted(levels)}"
