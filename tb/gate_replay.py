"""cocotb replay of a stimulus file through a gate-level netlist, for the toggle flow.

``flows/toggles.py`` writes the stimulus (``$REPLAY_STIMULUS``: phases of input beats per
stream port and the output beats golden expects) and reads back ``$REPLAY_RESULT``: the
simulation-time windows of the measured phases and their cycle counts. Streams run at full rate
(no input gaps, no back-pressure), the way a block works inside the array. Every output beat is
compared with the expected one; a difference, a missing or an extra beat fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, RisingEdge

from tb.stream import PayloadCodec, StreamSink, StreamSource, reset, start_clock

DRAIN_CYCLES = 20  # after the last beat of a phase without outputs (a memory load), and after all


@cocotb.test()
async def replay(dut):
    """Send every phase's beats, wait for its expected outputs, compare them exactly."""
    spec = json.loads(Path(os.environ["REPLAY_STIMULUS"]).read_text())
    phases = spec["phases"]
    sources = {p["port"]: StreamSource(dut, p["port"], PayloadCodec(len(getattr(dut, f"{p['port']}__payload"))))
               for p in phases}
    sinks = {p["out"]: StreamSink(dut, p["out"], PayloadCodec(len(getattr(dut, f"{p['out']}__payload"))))
             for p in phases if p["out"]}
    start_clock(dut)
    await reset(dut)
    windows, edges = [], 0

    async def count_edges():
        nonlocal edges
        while True:
            await RisingEdge(dut.clk)
            edges += 1

    cocotb.start_soon(count_edges())
    for k, phase in enumerate(phases):
        source = sources[phase["port"]]
        sink = sinks.get(phase["out"])
        already = len(sink.received) if sink else 0
        await FallingEdge(dut.clk)
        t0, e0 = get_sim_time("step"), edges
        source.send_all(phase["beats"])  # presented from this falling edge or the next one
        budget = 200 * (len(phase["beats"]) + len(phase["expect"])) + 1000
        await source.wait_idle(timeout_cycles=budget)
        if sink:
            await sink.wait_for(already + len(phase["expect"]), timeout_cycles=budget)
        else:
            for _ in range(DRAIN_CYCLES):
                await RisingEdge(dut.clk)
        t1 = get_sim_time("step")
        if sink:
            got = sink.received[already:]
            bad = [i for i, (e, g) in enumerate(zip(phase["expect"], got)) if e != g]
            assert not bad, (f"phase {k}: {len(bad)} of {len(got)} output beats differ from golden; first, beat "
                             f"{bad[0]}: expected {phase['expect'][bad[0]]:#x}, got {got[bad[0]]:#x}")
            assert not sink.protocol_errors, sink.protocol_errors[:3]
        if phase["measure"]:
            windows.append({"t0": t0, "t1": t1, "cycles": edges - e0})
    for _ in range(DRAIN_CYCLES):  # nothing more may come out
        await RisingEdge(dut.clk)
    for name, sink in sinks.items():
        want = sum(len(p["expect"]) for p in phases if p["out"] == name)
        assert len(sink.received) == want, f"{name}: {len(sink.received)} output beats, {want} expected"
    Path(os.environ["REPLAY_RESULT"]).write_text(json.dumps({"windows": windows}))
