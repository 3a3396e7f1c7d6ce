"""Tier 1: the Amaranth-simulator stream harness (tb/amsim.py) on the stream primitives of
hdl/lib/stream.py, and on deliberately broken components that it must catch."""

import pytest
from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.lib.stream import Queue, SkidBuffer, StreamRegister
from tb.amsim import (PayloadCodec, Scoreboard, StreamBench, StreamProtocolError, StreamSink, StreamSource,
                      run_stream_test)

PRIMITIVES = {
    "register": lambda: StreamRegister(8),
    "skid": lambda: SkidBuffer(8),
    "queue": lambda: Queue(8, 4),
    "queue_buffered": lambda: Queue(8, 4, buffered=True),
}
# Cycles for N beats with no gaps and no back-pressure: N plus the latency to the last beat.
LATENCY = {"register": 1, "skid": 1, "queue": 1, "queue_buffered": 2}


def _pass_through(dut, n, *, gap, stall, seed):
    bench = StreamBench(dut, seed=seed, max_cycles=50 * n + 100)
    board = Scoreboard("o")
    source = StreamSource(bench, "i", gap_prob=gap)
    sink = StreamSink(bench, "o", stall_prob=stall, callback=board.receive, count=n)
    beats = [(7 * k + 3) & 0xFF for k in range(n)]
    source.send_all(beats)
    board.expect_all(beats)
    cycles = bench.run(settle=10)
    board.check_done(sink)
    return cycles, bench


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("gap,stall", [(0.3, 0.3), (0.0, 0.6), (0.6, 0.0)])
def test_primitive_passes_beats_in_order(name, gap, stall):
    _pass_through(PRIMITIVES[name](), 200, gap=gap, stall=stall, seed=sorted(PRIMITIVES).index(name))


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_full_throughput(name):
    cycles, _ = _pass_through(PRIMITIVES[name](), 100, gap=0.0, stall=0.0, seed=0)
    assert cycles == 100 + LATENCY[name], f"{name}: {cycles} cycles for 100 beats"


def test_source_holds_valid_and_payload_until_taken():
    dut = StreamRegister(8)
    bench = StreamBench(dut, seed=5)
    source = StreamSource(bench, dut.i, gap_prob=0.5)
    StreamSink(bench, dut.o, stall_prob=0.7, count=60)
    valid, ready, payload = bench.watch(dut.i.valid), bench.watch(dut.i.ready), bench.watch(dut.i.payload)
    source.send_all(range(60))
    bench.run()
    held = [(v, r, p) for v, r, p in zip(valid, ready, payload)]
    stalls = 0
    for (v0, r0, p0), (v1, _, p1) in zip(held, held[1:]):
        if v0 and not r0:
            stalls += 1
            assert v1 and p1 == p0, "the source changed an offered beat before it was taken"
    assert stalls > 10, "back-pressure never reached the source: the test checked nothing"
    assert 0 in valid[1:-1], "no gaps were inserted"


def test_struct_payload_round_trips_through_the_port_layout():
    layout = data.StructLayout({"value": 12, "tag": data.ArrayLayout(2, 3), "last": 1})
    dut = SkidBuffer(layout)
    bench = StreamBench(dut, seed=2)
    beats = [{"value": 37 * k & 0xFFF, "tag": [k % 4, (k // 4) % 4, 3], "last": int(k % 5 == 4)} for k in range(40)]
    board = Scoreboard("o")
    source = StreamSource(bench, "i", gap_prob=0.2)
    sink = StreamSink(bench, "o", PayloadCodec(layout, nested=True), stall_prob=0.3, callback=board.receive,
                      count=len(beats))
    source.send_all(beats)
    board.expect_all(beats)
    bench.run()
    board.check_done(sink)


class _ValidPulse(wiring.Component):
    """Broken: offers each beat for one cycle only, whether or not it was taken."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        m.d.sync += self.o.valid.eq(self.i.valid & self.i.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.payload.eq(self.i.payload)
        return m


class _PayloadDrift(wiring.Component):
    """Broken: keeps loading the input into the output register while the output is stalled."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid):
            m.d.sync += self.o.payload.eq(self.i.payload)  # bug: not gated by i.ready
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class _Duplicator(wiring.Component):
    """Broken: sends every beat whose bit 2 is set twice."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        again = Signal()
        m.d.comb += self.i.ready.eq(~self.o.valid | (self.o.ready & ~again))
        with m.If(self.o.valid & self.o.ready & again):
            m.d.sync += again.eq(0)
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1), again.eq(self.i.payload[2])]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class _Overwriter(wiring.Component):
    """Broken: always ready, so a beat arriving while the output stalls overwrites the held one."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.i.valid & ~self.o.valid):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def test_catches_valid_dropped_before_ready():
    with pytest.raises(StreamProtocolError, match=r"sink o: valid dropped in cycle \d+ before"):
        _pass_through(_ValidPulse(), 50, gap=0.0, stall=0.5, seed=1)


def test_catches_payload_changed_while_stalled():
    with pytest.raises(StreamProtocolError, match=r"sink o: payload changed in cycle \d+ from 0x"):
        _pass_through(_PayloadDrift(), 50, gap=0.2, stall=0.5, seed=1)


def test_catches_duplicated_beat():
    # Without back-pressure the duplicator obeys the stream rules: only the scoreboard sees it.
    with pytest.raises(AssertionError, match=r"scoreboard errors; first: o: item 5: expected 38, got 31"):
        _pass_through(_Duplicator(), 20, gap=0.0, stall=0.0, seed=1)


def test_catches_lost_beat():
    # The overwriter never changes an offered beat, it loses the one behind it: a count of 40
    # never arrives, and the timeout says where the beats went.
    with pytest.raises(AssertionError, match=r"timeout after \d+ cycles: source i: 40 beats sent, 0 queued; "
                                             r"sink o: \d+ of 40 beats received"):
        _pass_through(_Overwriter(), 40, gap=0.0, stall=0.5, seed=1)


def test_lost_beat_reported_by_scoreboard_when_run_ends_on_sources():
    dut = _Overwriter()
    bench = StreamBench(dut, seed=3)
    board = Scoreboard("o")
    source = StreamSource(bench, "i")
    sink = StreamSink(bench, "o", stall_prob=0.5, callback=board.receive)
    source.send_all(range(30))
    board.expect_all(range(30))
    bench.run(settle=20)
    with pytest.raises(AssertionError, match=r"expected \d+, got \d+|never arrived \(lost\)"):
        board.check_done(sink)


class _Stuck(wiring.Component):
    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.payload.eq(self.o.payload + 1)  # busy, but i.ready and o.valid stay 0
        return m


def test_timeout_says_what_is_pending():
    bench = StreamBench(_Stuck(), max_cycles=30)
    StreamSource(bench, "i").send_all([1, 2, 3])
    StreamSink(bench, "o", count=3)
    with pytest.raises(AssertionError, match=r"timeout after 30 cycles: source i: 0 beats sent, beat 0 offered "
                                             r"since cycle 0 and never taken \(ready stayed low\), 2 more queued; "
                                             r"sink o: 0 of 3 beats received"):
        bench.run()


def test_drive_and_watch_plain_signals():
    dut = Queue(8, 4)
    bench = StreamBench(dut)
    level = bench.watch(dut.level)
    bench.drive(dut.i.valid, [1, 1, 1, 0])   # three writes, then none
    bench.drive(dut.i.payload, lambda cycle: 10 + cycle)
    bench.drive(dut.o.ready, 0)
    bench.run(until=lambda: bench.cycles >= 6)
    assert level == [0, 1, 2, 3, 3, 3], level


def test_run_stream_test_keeps_its_results():
    got, cycles = run_stream_test(StreamRegister(8), list(range(50)), 50)
    assert got == list(range(50)) and cycles == 51
    got, _ = run_stream_test(SkidBuffer(8), list(range(50)), 50, gap_prob=0.4, stall_prob=0.4, seed=9)
    assert got == list(range(50))


def test_waves(tmp_path, monkeypatch):
    vcd = tmp_path / "reg.vcd"
    run_stream_test(StreamRegister(8), [1, 2, 3], 3, vcd=vcd)
    assert "$var" in vcd.read_text()
    monkeypatch.setenv("WAVES", "1")
    import flows.generate
    monkeypatch.setattr(flows.generate, "BUILD", tmp_path)
    run_stream_test(SkidBuffer(8), [1, 2, 3], 3)
    assert (tmp_path / "waves" / "amsim" / "SkidBuffer.vcd").exists()


def test_docs_example_runs():
    """The harness example in docs/testing.md is run here, so the documentation cannot drift."""
    from flows.generate import ROOT

    text = (ROOT / "docs" / "testing.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "StreamBench" in example and "check_done" in example
    exec(compile(example, "docs/testing.md", "exec"), {})
