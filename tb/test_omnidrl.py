"""cocotb tests of the OmniDRL top (``hdl.omnidrl.OmniDRL``) on its generated Verilog.

The memory model and the programs are those of the Amaranth-simulator tests
(``tb/stimulus/omnidrl.py``): a :class:`~tb.stimulus.omnidrl.TopHost` answers ``rd_req`` with
``rd_data``, applies ``wr`` and sends the program segment by segment; random gaps on ``cmd`` and
``rd_data`` and back-pressure on ``rd_req``, ``wr`` and ``status``. Each run is compared with
the expected memory image, status beats and counters (``case_mismatches``).

``test_td3_workload`` runs complete TD3 updates compiled by ``golden.compile_td3`` (workloads of
``golden.workloads``), host steps in Python on the testbench's memory image between the chip
segments: every segment's image must equal ``golden.machine``'s and the agent read back at the
end ``TD3Agent.update``'s, bit for bit; a last COUNTERS segment reads the chip's counters, and the
energy model's events from them equal those from the machine model's (``golden.energy``).

Environment: ``OMNIDRL_CONFIG`` (set by the runner), ``TOP_CASES`` (comma-separated case names
of ``tb.stimulus.omnidrl.CASES``; default all), ``TOP_SEED``, ``TOP_GAP`` / ``TOP_STALL``
(default 0.25), ``TOP_WORKLOAD`` (comma-separated workloads, default ``golden.workloads.SMALL_WORKLOADS``),
``TOP_RESULT`` (write the TD3 run's figures there as JSON: a dict for one workload, else a list).
"""

import json
import os
import random
import time

import cocotb
from cocotb.triggers import ClockCycles

from golden.energy import event_mismatches
from golden.workloads import SMALL_WORKLOADS
from hdl.omnidrl import OmniDRLConfig
from hdl.omnidrl_issue import command_layout, status_layout
from hdl.omnidrl_load import rd_data_layout, rd_req_layout
from hdl.omnidrl_store import wr_layout
from tb.stimulus.omnidrl import (CASES, GoldenMemoryPort, LazyWords, TopHost, case_mismatches, td3_case,
                                 td3_mismatches, td3_segment_check)
from tb.stream import PayloadCodec, StreamSink, StreamSource, reset, start_clock

CFG = OmniDRLConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else OmniDRLConfig.preset("tiny")
SHAPE = CFG.isa_shape
SEED = int(os.environ.get("TOP_SEED", "7"))
GAP = float(os.environ.get("TOP_GAP", "0.25"))
STALL = float(os.environ.get("TOP_STALL", "0.25"))


class LazySource(LazyWords, StreamSource):
    """rd_data: each word read from the memory image just before it is offered."""

    def _drive(self) -> None:
        if not self._holding:
            self._resolve_head()
        super()._drive()


async def run_program(dut, memory, segments, *, seed: int, max_cycles: int = 50_000_000, on_segment=None) -> TopHost:
    """Run ``segments`` on the top with ``memory`` until every FENCE has answered and the top
    is idle; returns the host (memory image, status beats, per-segment images)."""
    await reset(dut)
    rng = random.Random(seed)
    cmd = StreamSource(dut, "cmd", PayloadCodec(command_layout(SHAPE)), gap_prob=GAP, rng=random.Random(rng.random()))
    data = LazySource(dut, "rd_data", PayloadCodec(rd_data_layout(SHAPE)), gap_prob=GAP,
                        rng=random.Random(rng.random()))
    host = TopHost(SHAPE, memory, segments, cmd.send, data.send, on_segment)
    sinks = [StreamSink(dut, name, PayloadCodec(layout), stall_prob=STALL, rng=random.Random(rng.random()),
                        callback=callback)
             for name, layout, callback in [("rd_req", rd_req_layout(SHAPE), host.on_rd_req),
                                            ("wr", wr_layout(SHAPE), host.on_wr),
                                            ("status", status_layout(), host.on_status)]]
    host.start()
    waited = 0
    while not (host.finished and int(dut.idle.value)):
        await ClockCycles(dut.clk, 32)
        waited += 32
        assert waited < max_cycles, f"timeout: {len(host.statuses)} of {len(host.segments)} segments answered"
    for part in [cmd, data] + sinks:
        part.stop()
    errors = [e for sink in sinks for e in sink.protocol_errors]
    assert not errors, "; ".join(errors[:4])
    return host


@cocotb.test()
async def test_programs(dut):
    """Every program of ``TOP_CASES``: image, status beats and counters as expected."""
    names = [n for n in os.environ.get("TOP_CASES", ",".join(sorted(CASES))).split(",") if n]
    start_clock(dut)
    for i, name in enumerate(names):
        case = CASES[name](CFG)
        host = await run_program(dut, case.pb.initial(), case.segments, seed=SEED + i)
        errors = case_mismatches(case, host.memory, host.statuses)
        assert not errors, f"{name}: " + "; ".join(errors)
        dut._log.info(f"{name}: {len(case.pb.commands)} commands, {len(case.segments)} segments: ok")


@cocotb.test()
async def test_td3_workload(dut):
    """Complete TD3 updates (``TOP_WORKLOAD``): segment images, final agent state, counters."""
    names = [n for n in os.environ.get("TOP_WORKLOAD", ",".join(SMALL_WORKLOADS)).split(",") if n]
    start_clock(dut)
    results = []
    for i, name in enumerate(names):
        case = td3_case(CFG, name)
        memory = case.memory.copy()
        for fn in case.prelude:
            fn(memory)
        seen = {}
        t0 = time.perf_counter()
        host = await run_program(dut, GoldenMemoryPort(memory), case.run_segments(), seed=SEED + i,
                                 on_segment=td3_segment_check(case, memory, seen))
        wall = time.perf_counter() - t0
        errors = td3_mismatches(case, memory, host.statuses, seen)
        counters = case.counters(memory)
        errors += event_mismatches(CFG, counters, case.model_counters)  # the energy model's events
        cycles = counters["CYCLES"]
        results.append({
            "workload": name, "k": SHAPE.k, "preset_config": CFG.to_dict(), "segments": len(case.segments),
            "commands": sum(len(s.commands) for s in case.segments),
            "images_equal": not any(seen.values()) and len(seen) == len(case.segments),
            "state_equal": not any("TD3Agent.update" in e for e in errors),
            "errors": errors, "cycles": cycles,
            "array_utilization": counters["EX_STEPS"] / cycles if cycles else 0.0,
            "counters": counters, "wall_s": wall, "sim_cycles_per_s": cycles / wall if wall else 0.0,
            "host_flops": sum(step.flops for step in case.program.host_steps),
        })
        dut._log.info(f"{name}: {results[-1]['commands']} commands in {len(case.segments)} segments, "
                      f"{cycles} cycles, {wall:.1f} s: {'ok' if not errors else errors[:3]}")
    if os.environ.get("TOP_RESULT"):
        with open(os.environ["TOP_RESULT"], "w") as f:
            json.dump(results[0] if len(results) == 1 else results, f, indent=1)
    bad = [f"{r['workload']}: {r['errors']}" for r in results if r["errors"]]
    assert not bad, "; ".join(bad)
