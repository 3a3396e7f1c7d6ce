"""cocotb drivers for Amaranth ``stream.Signature`` ports, and a scoreboard.

Amaranth flattens a stream port ``i`` into ``i__payload``, ``i__valid`` and ``i__ready``; a
struct payload is one vector with fields packed LSB-first in declaration order.
:class:`PayloadCodec` (from :mod:`tb.streamlib`, shared with the Amaranth-simulator harness
:mod:`tb.amsim`) packs and unpacks it through the very layout the hardware uses.

Timing model (the same on Icarus and Verilator): inputs change only on the falling clock edge;
in the ReadOnly phase after that, every signal has settled and stays put until the rising edge,
so ``valid & ready`` sampled there is exactly the transfer the rising edge performs. This also
covers ready signals that depend combinationally on valid or on a downstream ready. All streams
on one clock share a single loop, so a cycle costs two simulator callbacks in all.

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
from cocotb.triggers import Event, FallingEdge, First, ReadOnly, RisingEdge, Timer

from tb.streamlib import PayloadCodec, Scoreboard, SourceQueue

__all__ = ["PayloadCodec", "StreamSource", "StreamSink", "Scoreboard", "FlagMonitor", "start_clock", "reset", "run_cycles"]


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


def _fast_reader(handle) -> Callable[[], int]:
    """Return a function reading ``handle`` as an unsigned int.

    ``handle.value`` builds a ``LogicArray`` from a bit string on every read, which costs more
    than the simulator's whole cycle for small designs; the GPI call under it is read directly
    (a private but stable part of cocotb 2.x), with the public path as the fallback.
    """
    raw = getattr(handle, "_handle", None)
    width = len(handle)
    if raw is not None and width <= 32 and hasattr(raw, "get_signal_val_long"):
        mask = (1 << width) - 1
        return lambda: raw.get_signal_val_long() & mask
    if raw is not None and hasattr(raw, "get_signal_val_binstr"):
        return lambda: int(raw.get_signal_val_binstr(), 2)
    return lambda: int(handle.value)


def _fast_writer(handle) -> Callable[[int], None]:
    """Return a function writing an unsigned int to ``handle`` (<= 32 bits) through cocotb's
    own write scheduling, without building a ``Logic``/``LogicArray`` first."""
    try:
        from cocotb.handle import _GPISetAction, _schedule_write

        raw = handle._handle
        if len(handle) <= 32 and hasattr(raw, "set_signal_val_int"):
            setter, deposit = raw.set_signal_val_int, _GPISetAction.DEPOSIT
            return lambda value: _schedule_write(handle, setter, deposit, value)
    except (ImportError, AttributeError):
        pass

    def write(value: int) -> None:
        handle.value = value
    return write


class _ClockLoop:
    """One coroutine per clock that drives and samples every stream on it.

    Each cycle costs exactly two simulator callbacks (falling edge, then ReadOnly) however many
    streams there are; with one coroutine per stream the Python overhead, not the simulator,
    would set the speed.
    """

    _loops: dict[int, "_ClockLoop"] = {}

    def __init__(self, clk):
        self.clk = clk
        self.members: list = []
        self.cycle = 0
        self.task = cocotb.start_soon(self._run())

    @classmethod
    def of(cls, clk) -> "_ClockLoop":
        loop = cls._loops.get(id(clk))
        if loop is None or loop.task.done():  # a new cocotb test cancels the old loop
            loop = cls._loops[id(clk)] = cls(clk)
        return loop

    async def _run(self) -> None:
        falling, read_only = FallingEdge(self.clk), ReadOnly()
        while True:
            await falling
            self.cycle += 1
            for member in self.members:
                member._drive()
            await read_only
            for member in self.members:
                member._sample()


async def _wait_until(event: Event, done: Callable[[], bool], timeout_cycles: int,
                      period_ns: int, what: Callable[[], str]) -> None:
    if done():
        return
    event.clear()
    await First(event.wait(), Timer(timeout_cycles * period_ns, unit="ns"))
    if not done():
        raise AssertionError(what())


def _bind_port(driver, dut, name: str, codec: PayloadCodec, rng: random.Random, period_ns: int) -> None:
    """Give a source or sink driver the flat signals of stream port ``name`` and its settings."""
    driver.clk, driver.name, driver.codec, driver.rng, driver.period_ns = dut.clk, name, codec, rng, period_ns
    driver.payload = getattr(dut, f"{name}__payload")
    driver.valid = getattr(dut, f"{name}__valid")
    driver.ready = getattr(dut, f"{name}__ready")


class StreamSource(SourceQueue):
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
    period_ns : int
        Clock period, for timeouts.
    """

    def __init__(self, dut, name: str, codec: PayloadCodec, *, gap_prob: float = 0.0,
                 rng: random.Random | None = None, period_ns: int = 10):
        _bind_port(self, dut, name, codec, rng or random.Random(0), period_ns)
        self.gap_prob = gap_prob
        self.queue: deque[int] = deque()
        self.sent = 0
        self._holding = False
        self._valid = 0
        self._idle_event = Event()
        self._read_ready = _fast_reader(self.ready)
        self._write_valid = _fast_writer(self.valid)
        self.valid.value = 0
        self.payload.value = 0
        self.loop = _ClockLoop.of(self.clk)
        self.loop.members.append(self)

    def stop(self) -> None:
        """Detach from the clock loop (``valid`` keeps its last value); a later phase of a test
        may then attach a fresh source to the same port."""
        if self in self.loop.members:
            self.loop.members.remove(self)

    async def wait_idle(self, timeout_cycles: int = 1_000_000) -> None:
        await _wait_until(self._idle_event, lambda: self.idle, timeout_cycles, self.period_ns,
                          lambda: f"source {self.name}: {len(self.queue)} beats still queued after "
                                  f"{timeout_cycles} cycles (DUT never ready?)")

    def _drive(self) -> None:
        if not self._holding:
            if self.queue and (self.gap_prob == 0.0 or self.rng.random() >= self.gap_prob):
                self.payload.value = self.queue[0]
                if not self._valid:
                    self._write_valid(1)
                    self._valid = 1
                self._holding = True
            elif self._valid:  # writes cost more than the comparison: only on change
                self._write_valid(0)
                self._valid = 0

    def _sample(self) -> None:
        if self._holding and self._read_ready():
            self.queue.popleft()
            self.sent += 1
            self._holding = False
            if not self.queue:
                self._idle_event.set()


class StreamSink:
    """Receive an Amaranth output stream with random back-pressure, checking the stream rules.

    Every transferred payload is unpacked and handed to ``callback`` (if given) and appended to
    ``received``. While ``valid`` is high and the beat has not transferred, the payload and
    ``valid`` must hold: a violation fails the test.
    """

    def __init__(self, dut, name: str, codec: PayloadCodec, *, stall_prob: float = 0.0,
                 rng: random.Random | None = None, callback: Callable[[Any], None] | None = None,
                 period_ns: int = 10):
        _bind_port(self, dut, name, codec, rng or random.Random(1), period_ns)
        self.stall_prob = stall_prob
        self.callback = callback
        self.received: list[Any] = []
        self.protocol_errors: list[str] = []
        self._pending: int | None = None  # payload seen valid but not yet transferred
        self._ready = 0
        self._target = 0
        self._event = Event()
        self._read_valid = _fast_reader(self.valid)
        self._read_payload = _fast_reader(self.payload)
        self._write_ready = _fast_writer(self.ready)
        self.ready.value = 0
        self.loop = _ClockLoop.of(self.clk)
        self.loop.members.append(self)

    def stop(self) -> None:
        """Detach from the clock loop (``ready`` keeps its last value)."""
        if self in self.loop.members:
            self.loop.members.remove(self)

    async def wait_for(self, count: int, timeout_cycles: int = 1_000_000) -> None:
        self._target = count
        await _wait_until(self._event, lambda: len(self.received) >= count, timeout_cycles,
                          self.period_ns, lambda: f"sink {self.name}: got {len(self.received)} of {count} "
                                                  f"beats after {timeout_cycles} cycles")

    def _drive(self) -> None:
        ready = 0 if (self.stall_prob and self.rng.random() < self.stall_prob) else 1
        if ready != self._ready:
            self._write_ready(ready)
            self._ready = ready

    def _sample(self) -> None:
        valid = self._read_valid()
        word = self._read_payload() if valid else 0
        if self._pending is not None:
            if not valid:
                self.protocol_errors.append(f"{self.name}: valid dropped before transfer")
            elif word != self._pending:
                self.protocol_errors.append(f"{self.name}: payload changed while valid and not ready")
        if valid:
            if self._ready:
                beat = self.codec.unpack(word)
                self.received.append(beat)
                if self.callback is not None:
                    self.callback(beat)
                self._pending = None
                if len(self.received) >= self._target:
                    self._event.set()
            else:
                self._pending = word
        else:
            self._pending = None


class FlagMonitor:
    """Checks a block's sticky ``error`` / ``err_code`` pair every cycle against the golden flags.

    ``flags(sent)`` gives the ``(error, err_code)`` the golden model has after the first ``sent``
    input beats (``(0, 0)`` before any); it is compared in each cycle's ReadOnly phase with the
    beats ``source`` has sent by then. ``mismatches`` keeps the first five differences,
    ``up_cycles`` counts the cycles with ``error`` up and ``cycle`` the clock cycles seen.
    """

    def __init__(self, dut, source: StreamSource, flags: Callable[[int], tuple[int, int]]):
        self.cycle = 0
        self.up_cycles = 0
        self.mismatches: list[str] = []
        self._task = cocotb.start_soon(self._run(dut, source, flags))

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self, dut, source, flags):
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            await ReadOnly()
            sent = source.sent
            want = tuple(int(v) for v in flags(sent)) if sent else (0, 0)
            got = (int(dut.error.value), int(dut.err_code.value))
            if got != want and len(self.mismatches) < 5:
                self.mismatches.append(f"after {sent} input beats: error={got[0]} err_code={got[1]}, "
                                       f"golden {want[0]}/{want[1]}")
            self.up_cycles += got[0]
