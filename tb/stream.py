"""cocotb drivers for Amaranth ``stream.Signature`` ports, and a scoreboard.

Amaranth flattens a stream port ``i`` into ``i__payload``, ``i__valid`` and ``i__ready``; a
struct payload is one vector with fields packed LSB-first in declaration order.
:class:`PayloadCodec` packs and unpacks it from the very ``data.StructLayout`` the hardware uses.

Timing model (the same on Icarus and Verilator): inputs change only on the falling clock edge;
in the ReadOnly phase after that, every signal has settled and stays put until the rising edge,
so ``valid & ready`` sampled there is exactly the transfer the rising edge performs. This also
covers ready signals that depend combinationally on valid or on a downstream ready.

:class:`StreamSource` inserts random gaps without ever dropping ``valid`` before a transfer;
:class:`StreamSink` applies random back-pressure and checks that the DUT keeps ``valid`` and the
payload stable until the transfer. :class:`Scoreboard` fails on anything lost, duplicated,
reordered or wrong.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["PayloadCodec", "StreamSource", "StreamSink", "Scoreboard", "start_clock", "reset", "run_cycles"]


class PayloadCodec:
    """Pack and unpack a stream payload from its Amaranth layout.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout or int
        The payload layout; an ``int`` is a plain vector of that width.
    """

    def __init__(self, layout):
        if isinstance(layout, int):
            self.fields = None
            self.width = layout
        else:
            self.fields = [(name, field.offset, field.width) for name, field in layout]
            self.width = layout.size

    def pack(self, value: dict[str, int] | int) -> int:
        if self.fields is None or isinstance(value, int):
            return int(value) & ((1 << self.width) - 1)
        unknown = set(value) - {name for name, _, _ in self.fields}
        if unknown:
            raise KeyError(f"payload has no fields {sorted(unknown)}")
        word = 0
        for name, offset, width in self.fields:
            word |= (int(value.get(name, 0)) & ((1 << width) - 1)) << offset
        return word

    def unpack(self, word: int) -> dict[str, int] | int:
        if self.fields is None:
            return word
        return {name: (word >> offset) & ((1 << width) - 1) for name, offset, width in self.fields}


def start_clock(dut, period_ns: int = 10):
    return Clock(dut.clk, period_ns, unit="ns").start()


async def reset(dut, cycles: int = 3) -> None:
    """Synchronous active-high reset (Amaranth's ``rst``), released on a falling edge."""
    await FallingEdge(dut.clk)
    dut.rst.value = 1
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_cycles(dut, n: int) -> None:
    for _ in range(n):
        await RisingEdge(dut.clk)


class StreamSource:
    """Drive an Amaranth input stream ``<name>__{payload,valid,ready}`` from a queue.

    Parameters
    ----------
    dut : cocotb handle
    name : str
        Port name (``i`` for ``i__payload``).
    codec : PayloadCodec
    gap_prob : float
        Probability of an idle cycle before presenting each beat (never once valid is up).
    rng : random.Random
    """

    def __init__(self, dut, name: str, codec: PayloadCodec, *, gap_prob: float = 0.0,
                 rng: random.Random | None = None):
        self.clk = dut.clk
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.codec = codec
        self.gap_prob = gap_prob
        self.rng = rng or random.Random(0)
        self.name = name
        self.queue: deque[int] = deque()
        self.sent = 0
        self._holding = False
        self.valid.value = 0
        self.payload.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beat: dict[str, int] | int) -> None:
        self.queue.append(self.codec.pack(beat))

    def send_all(self, beats) -> None:
        for beat in beats:
            self.send(beat)

    @property
    def idle(self) -> bool:
        return not self.queue and not self._holding

    async def wait_idle(self, timeout_cycles: int = 1_000_000) -> None:
        for _ in range(timeout_cycles):
            if self.idle:
                return
            await RisingEdge(self.clk)
        raise AssertionError(f"source {self.name}: {len(self.queue)} beats still queued after "
                             f"{timeout_cycles} cycles (DUT never ready?)")

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clk)
            if not self._holding and self.queue and self.rng.random() >= self.gap_prob:
                self.payload.value = self.queue[0]
                self.valid.value = 1
                self._holding = True
            elif not self._holding:
                self.valid.value = 0
            await ReadOnly()
            if self._holding and int(self.ready.value):
                self.queue.popleft()
                self.sent += 1
                self._holding = False


class StreamSink:
    """Receive an Amaranth output stream with random back-pressure, checking the stream rules.

    Every transferred payload is unpacked and handed to ``callback`` (if given) and appended to
    ``received``. While ``valid`` is high and the beat has not transferred, the payload and
    ``valid`` must hold: a violation fails the test.
    """

    def __init__(self, dut, name: str, codec: PayloadCodec, *, stall_prob: float = 0.0,
                 rng: random.Random | None = None, callback: Callable[[Any], None] | None = None):
        self.clk = dut.clk
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.codec = codec
        self.stall_prob = stall_prob
        self.rng = rng or random.Random(1)
        self.callback = callback
        self.received: list[Any] = []
        self.protocol_errors: list[str] = []
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def wait_for(self, count: int, timeout_cycles: int = 1_000_000) -> None:
        for _ in range(timeout_cycles):
            if len(self.received) >= count:
                return
            await RisingEdge(self.clk)
        raise AssertionError(f"sink {self.name}: got {len(self.received)} of {count} beats after "
                             f"{timeout_cycles} cycles")

    async def _run(self) -> None:
        pending: int | None = None  # payload seen valid but not yet transferred
        while True:
            await FallingEdge(self.clk)
            self.ready.value = 0 if self.rng.random() < self.stall_prob else 1
            await ReadOnly()
            valid = int(self.valid.value)
            if pending is not None:
                if not valid:
                    self.protocol_errors.append(f"{self.name}: valid dropped before transfer")
                elif int(self.payload.value) != pending:
                    self.protocol_errors.append(f"{self.name}: payload changed while valid and not ready")
            if valid:
                word = int(self.payload.value)
                if int(self.ready.value):
                    beat = self.codec.unpack(word)
                    self.received.append(beat)
                    if self.callback is not None:
                        self.callback(beat)
                    pending = None
                else:
                    pending = word
            else:
                pending = None


class Scoreboard:
    """In-order checker: expected items are queued, received items must match them one by one.

    ``compare(expected, got)`` returns ``None`` when they match or a message otherwise; the
    default compares with ``==``. :meth:`check_done` fails when anything is left over or any
    mismatch, loss, duplication or reordering was seen.
    """

    def __init__(self, name: str, compare: Callable[[Any, Any], str | None] | None = None):
        self.name = name
        self.expected: deque[Any] = deque()
        self.errors: list[str] = []
        self.matched = 0
        self.compare = compare or (lambda exp, got: None if exp == got else f"expected {exp!r}, got {got!r}")

    def expect(self, item: Any) -> None:
        self.expected.append(item)

    def receive(self, item: Any) -> None:
        if not self.expected:
            self.errors.append(f"{self.name}: unexpected extra item {item!r} (duplicate or spurious)")
            return
        exp = self.expected.popleft()
        msg = self.compare(exp, item)
        if msg:
            self.errors.append(f"{self.name}: item {self.matched}: {msg}")
        self.matched += 1

    def check_done(self, *sinks: StreamSink) -> None:
        errors = list(self.errors)
        for sink in sinks:
            errors += sink.protocol_errors
        if self.expected:
            errors.append(f"{self.name}: {len(self.expected)} expected items never arrived (lost)")
        assert not errors, f"{len(errors)} scoreboard errors; first: " + "; ".join(errors[:5])
        assert self.matched > 0, f"{self.name}: nothing was checked"
