"""Stream harness for Amaranth's own simulator (tier-1 tests: no Verilog, no toolchain).

The same kit as the cocotb drivers in :mod:`tb.stream`, on :class:`amaranth.sim.Simulator`:
:class:`StreamSource` (random gaps, never drops ``valid`` before a transfer),
:class:`StreamSink` (random back-pressure; fails the test the cycle ``valid`` drops or the
payload changes before a transfer) and :class:`~tb.streamlib.Scoreboard` (fails on anything
lost, duplicated, reordered or wrong), payloads packed by :class:`~tb.streamlib.PayloadCodec`.

:class:`StreamBench` runs **one testbench process for the clock**. Each cycle it first sets
every input (source payload and ``valid``, sink ``ready``, the plain signals given to
:meth:`StreamBench.drive`), then reads every output, then ticks. A testbench read after a
write sees the settled combinational logic, so a ``ready`` that follows a downstream ``ready``
combinationally is read correctly: separate producer and consumer testbenches would race
(whichever runs first sees the other's stale value).

Example::

    bench = StreamBench(StreamRegister(8), seed=1)
    source = StreamSource(bench, "i", gap_prob=0.3)
    board = Scoreboard("reg")
    sink = StreamSink(bench, "o", stall_prob=0.3, callback=board.receive, count=100)
    source.send_all(range(100)); board.expect_all(range(100))
    bench.run()
    board.check_done(sink)

Waves: pass ``vcd="file.vcd"`` or set ``WAVES=1`` (written to ``build/waves/amsim/``).
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np
from amaranth.hdl import Const, Value
from amaranth.lib import data
from amaranth.sim import Simulator

from tb.streamlib import PayloadCodec, Scoreboard, SourceQueue

__all__ = ["StreamBench", "StreamSource", "StreamSink", "Scoreboard", "PayloadCodec",
           "StreamProtocolError", "run_stream_test", "evaluate", "assert_same"]


class StreamProtocolError(AssertionError):
    """The DUT broke a stream rule (``valid`` dropped or payload changed before a transfer)."""


class StreamBench:
    """A component in Amaranth's simulator, stepped by one testbench process per clock.

    Parameters
    ----------
    dut : amaranth.lib.wiring.Component
        Component with a ``sync`` domain; its stream ports are reached by attribute name.
    seed : int
        Seeds every source's and sink's random generator (each from its own name, so adding a
        stream leaves the others' gap and stall patterns alone).
    max_cycles : int
        :meth:`run` fails after this many cycles with a message saying what was still pending.
    vcd : str or Path, optional
        Write waves here; with ``WAVES=1`` in the environment they go to
        ``build/waves/amsim/<component class>.vcd`` when no path is given.
    period : float
        Clock period in seconds (only matters for the waves).
    """

    def __init__(self, dut, *, seed: int = 0, max_cycles: int = 100_000, vcd: str | Path | None = None,
                 period: float = 1e-8):
        self.dut = dut
        self.seed = seed
        self.max_cycles = max_cycles
        self.vcd = vcd
        self.period = period
        self.cycles = 0
        self.sources: list[StreamSource] = []
        self.sinks: list[StreamSink] = []
        self._drives: list[tuple[Value, Callable[[int], int]]] = []
        self._watches: list[tuple[Value, list[int]]] = []
        self._hooks: list[Callable[[Any, int], None]] = []

    def rng(self, name: str) -> random.Random:
        """The random generator of the stream called ``name`` (deterministic per seed)."""
        return random.Random(f"{self.seed}:{name}")

    def drive(self, signal, value) -> None:
        """Set an input each cycle, before any output is read.

        ``value`` is an int (held), a sequence (one value per cycle, the last one then held)
        or a function ``cycle -> int``.
        """
        if callable(value):
            pick = value
        elif isinstance(value, int):
            pick = lambda cycle, v=int(value): v
        else:
            values = [int(v) for v in value]
            pick = lambda cycle: values[min(cycle, len(values) - 1)]
        self._drives.append((Value.cast(signal), pick))

    def watch(self, signal) -> list[int]:
        """Sample an output every cycle (after the inputs are set); returns the growing list."""
        samples: list[int] = []
        self._watches.append((Value.cast(signal), samples))
        return samples

    def on_cycle(self, check: Callable[[Any, int], None]) -> None:
        """Call ``check(ctx, cycle)`` every cycle after the streams are sampled (for checks
        with ``ctx.get``; inputs belong in :meth:`drive`, set before anything is read)."""
        self._hooks.append(check)

    def run(self, until: Callable[[], bool] | None = None, *, settle: int = 0) -> int:
        """Simulate until ``until()`` is true after a clock edge, then ``settle`` more cycles.

        The default ``until``: every source has sent everything it was given and every sink
        with a ``count`` received that many beats. Returns the cycles simulated up to the
        finish (without ``settle``); fails with what is still pending after ``max_cycles``.
        """
        done = until or self._all_done
        finished = [None]

        async def bench(ctx):
            cycle = 0
            while True:
                for stream in self.sources + self.sinks:
                    stream._drive(ctx, cycle)
                for signal, pick in self._drives:
                    ctx.set(signal, pick(cycle))
                for stream in self.sources + self.sinks:
                    stream._sample(ctx, cycle)
                for signal, samples in self._watches:
                    samples.append(ctx.get(signal))
                for hook in self._hooks:
                    hook(ctx, cycle)
                await ctx.tick()
                cycle += 1
                self.cycles = cycle
                if finished[0] is None and done():
                    finished[0] = cycle
                if finished[0] is not None and cycle >= finished[0] + settle:
                    return
                if cycle >= self.max_cycles:
                    raise AssertionError(self._timeout_message())

        sim = Simulator(self.dut)
        sim.add_clock(self.period)
        sim.add_testbench(bench)
        vcd = self._vcd_path()
        if vcd is not None:
            vcd.parent.mkdir(parents=True, exist_ok=True)
            with sim.write_vcd(str(vcd)):
                sim.run()
        else:
            sim.run()
        return finished[0]

    def _all_done(self) -> bool:
        return (all(source.idle for source in self.sources)
                and all(sink.count is None or len(sink.received) >= sink.count for sink in self.sinks))

    def _timeout_message(self) -> str:
        pending = [source.status() for source in self.sources] + [sink.status() for sink in self.sinks]
        return f"timeout after {self.max_cycles} cycles: " + "; ".join(pending or ["no streams"])

    def _vcd_path(self) -> Path | None:
        if self.vcd is not None:
            return Path(self.vcd)
        from tb.runner import waves_enabled

        if not waves_enabled():
            return None
        from flows.generate import BUILD

        return BUILD / "waves" / "amsim" / f"{type(self.dut).__name__}.vcd"


def _port(bench: StreamBench, port):
    """(interface, name) from a port name or a stream interface of ``bench.dut``."""
    if isinstance(port, str):
        return getattr(bench.dut, port), port
    name = next((key for key, value in vars(bench.dut).items() if value is port), "stream")
    return port, name


def _default_codec(port) -> PayloadCodec:
    shape = port.payload.shape()
    return PayloadCodec(shape) if isinstance(shape, data.Layout) else PayloadCodec(len(Value.cast(port.payload)))


class StreamSource(SourceQueue):
    """Feed an input stream of the DUT from a queue, with random gaps.

    Parameters
    ----------
    bench : StreamBench
    port : str or stream interface
        ``"i"`` or ``dut.i``.
    codec : PayloadCodec, optional
        Defaults to the port's own layout (or its width).
    gap_prob : float
        Probability of an idle cycle before presenting each beat (never once ``valid`` is up).
    rng : random.Random, optional
        Defaults to ``bench.rng(name)``.
    name : str, optional
        For messages; defaults to the port's attribute name.
    """

    def __init__(self, bench: StreamBench, port, codec: PayloadCodec | None = None, *,
                 gap_prob: float = 0.0, rng: random.Random | None = None, name: str | None = None):
        self.port, port_name = _port(bench, port)
        self.name = name or port_name
        if isinstance(self.port.valid, Const):
            raise ValueError(f"source {self.name}: the port is always_valid; drive its payload with bench.drive")
        self.codec = codec or _default_codec(self.port)
        self.gap_prob = gap_prob
        self.rng = rng or bench.rng(self.name)
        self.queue: deque[int] = deque()
        self.sent = 0
        self._payload = Value.cast(self.port.payload)
        self._holding = False
        self._valid = None
        self._offered_at = 0
        bench.sources.append(self)

    def status(self) -> str:
        if self._holding:
            return (f"source {self.name}: {self.sent} beats sent, beat {self.sent} offered since cycle "
                    f"{self._offered_at} and never taken (ready stayed low), {len(self.queue) - 1} more queued")
        return f"source {self.name}: {self.sent} beats sent, {len(self.queue)} queued"

    def _drive(self, ctx, cycle: int) -> None:
        if not self._holding and self.queue and (self.gap_prob == 0.0 or self.rng.random() >= self.gap_prob):
            ctx.set(self._payload, self.queue[0])
            self._holding = True
            self._offered_at = cycle
        if self._valid != self._holding:  # a write costs more than the comparison
            ctx.set(self.port.valid, int(self._holding))
            self._valid = self._holding

    def _sample(self, ctx, cycle: int) -> None:
        if self._holding and ctx.get(self.port.ready):
            self.queue.popleft()
            self.sent += 1
            self._holding = False


class StreamSink:
    """Receive an output stream of the DUT with random back-pressure, checking the stream rules.

    Every transferred payload is unpacked, handed to ``callback`` (if given) and appended to
    ``received``. Once ``valid`` is high, ``valid`` and the payload must hold until the
    transfer: a violation raises :class:`StreamProtocolError` in that cycle (and is kept in
    ``protocol_errors``, which :meth:`Scoreboard.check_done` reports too).

    Parameters
    ----------
    bench : StreamBench
    port : str or stream interface
    codec : PayloadCodec, optional
        Defaults to the port's own layout (or its width).
    stall_prob : float
        Probability that ``ready`` is low in a cycle.
    rng : random.Random, optional
    callback : callable, optional
    count : int, optional
        Beats to wait for in :meth:`StreamBench.run` (by default).
    name : str, optional
    """

    def __init__(self, bench: StreamBench, port, codec: PayloadCodec | None = None, *,
                 stall_prob: float = 0.0, rng: random.Random | None = None,
                 callback: Callable[[Any], None] | None = None, count: int | None = None,
                 name: str | None = None):
        self.port, port_name = _port(bench, port)
        self.name = name or port_name
        self.always_ready = isinstance(self.port.ready, Const)
        if self.always_ready and stall_prob:
            raise ValueError(f"sink {self.name}: stall_prob={stall_prob} is not allowed on an always_ready port")
        self.codec = codec or _default_codec(self.port)
        self.stall_prob = stall_prob
        self.rng = rng or bench.rng(self.name)
        self.callback = callback
        self.count = count
        self.received: list[Any] = []
        self.protocol_errors: list[str] = []
        self._payload = Value.cast(self.port.payload)
        self._ready = 1 if self.always_ready else None
        self._pending: int | None = None  # payload offered but not yet transferred
        self._pending_since = 0
        bench.sinks.append(self)

    def status(self) -> str:
        wanted = f" of {self.count}" if self.count is not None else ""
        return f"sink {self.name}: {len(self.received)}{wanted} beats received"

    def _drive(self, ctx, cycle: int) -> None:
        if self.always_ready:
            return
        ready = 0 if (self.stall_prob and self.rng.random() < self.stall_prob) else 1
        if ready != self._ready:
            ctx.set(self.port.ready, ready)
            self._ready = ready

    def _sample(self, ctx, cycle: int) -> None:
        valid = ctx.get(self.port.valid)
        word = ctx.get(self._payload) if valid else None
        if self._pending is not None:
            if not valid:
                self._fail(f"sink {self.name}: valid dropped in cycle {cycle} before the beat offered since "
                           f"cycle {self._pending_since} (payload 0x{self._pending:x}) was taken")
            elif word != self._pending:
                self._fail(f"sink {self.name}: payload changed in cycle {cycle} from 0x{self._pending:x} to "
                           f"0x{word:x} while valid and not ready (offered since cycle {self._pending_since})")
        if not valid:
            self._pending = None
        elif self._ready:
            beat = self.codec.unpack(word)
            self.received.append(beat)
            if self.callback is not None:
                self.callback(beat)
            self._pending = None
        else:
            if self._pending is None:
                self._pending_since = cycle
            self._pending = word

    def _fail(self, message: str) -> None:
        self.protocol_errors.append(message)
        raise StreamProtocolError(message)


def run_stream_test(dut, beats, n_expected, *, in_name="i", out_name="o", gap_prob=0.0,
                    stall_prob=0.0, seed=0, max_cycles=None, vcd=None):
    """Send ``beats`` (ints or dicts for struct payloads) into ``dut.<in_name>`` and collect
    ``n_expected`` payloads from ``dut.<out_name>``, on a :class:`StreamBench`.

    Returns
    -------
    (list[int], int)
        Received payload bit patterns in order, and the cycles simulated up to the last one.
    """
    bench = StreamBench(dut, seed=seed, max_cycles=max_cycles or (20 * len(beats) + 200), vcd=vcd)
    source = StreamSource(bench, in_name, gap_prob=gap_prob)
    out = getattr(dut, out_name)
    sink = StreamSink(bench, out, PayloadCodec(len(Value.cast(out.payload))), stall_prob=stall_prob,
                      count=n_expected, name=out_name)
    source.send_all(beats)
    cycles = bench.run(until=lambda: len(sink.received) >= n_expected)
    return sink.received, cycles


def evaluate(dut, inputs, output) -> np.ndarray:
    """Evaluate a combinational unit case by case, without a clock: set ``inputs`` ((port, array
    of patterns) pairs) and read ``output`` for each case; the outputs as a uint64 array."""
    columns = [(port, [int(v) for v in values]) for port, values in inputs]
    n = len(columns[0][1])
    got = []

    async def bench(ctx):
        for k in range(n):
            for port, values in columns:
                ctx.set(port, values[k])
            got.append(ctx.get(output))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.uint64)


def assert_same(what: str, operands, got, want) -> None:
    """Fail with the first differing cases (operands, hardware, golden) when ``got != want``."""
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"{what}: {bad.size} of {len(want)} differ, first: " + ", ".join(
        " ".join(f"0x{int(v[k]):x}" for v in operands) + f" -> 0x{int(got[k]):x}, golden 0x{int(want[k]):x}"
        for k in bad[:4])
