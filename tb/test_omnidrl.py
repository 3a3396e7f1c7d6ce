"""cocotb tests of the OmniDRL top (``hdl.omnidrl.OmniDRL``) on its generated Verilog.

The memory model and the programs are those of the Amaranth-simulator tests
(``tb/stimulus/omnidrl.py``): a :class:`~tb.stimulus.omnidrl.TopHost` answers ``rd_req`` with
``rd_data``, applies ``wr`` and sends the program segment by segment; random gaps on ``cmd`` and
``rd_data`` and back-pressure on ``rd_req``, ``wr`` and ``status``. Each run is compared with
the expected memory image, status beats and counters (``case_mismatches``).

Environment: ``OMNIDRL_CONFIG`` (set by the runner), ``TOP_CASES`` (comma-separated case names
of ``tb.stimulus.omnidrl.CASES``; default all), ``TOP_SEED``, ``TOP_GAP`` / ``TOP_STALL``
(default 0.25).
"""

import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from hdl.omnidrl import OmniDRLConfig
from hdl.omnidrl_issue import command_layout, status_layout
from hdl.omnidrl_load import rd_data_layout, rd_req_layout
from hdl.omnidrl_store import wr_layout
from tb.stimulus.omnidrl import CASES, TopHost, case_mismatches
from tb.stream import PayloadCodec, StreamSink, StreamSource, reset, start_clock

CFG = OmniDRLConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else OmniDRLConfig.preset("tiny")
SHAPE = CFG.isa_shape
SEED = int(os.environ.get("TOP_SEED", "7"))
GAP = float(os.environ.get("TOP_GAP", "0.25"))
STALL = float(os.environ.get("TOP_STALL", "0.25"))


async def run_program(dut, memory, segments, *, seed: int, max_cycles: int = 2_000_000) -> TopHost:
    """Run ``segments`` on the top with ``memory`` until every FENCE has answered and the top
    is idle; returns the host (memory image, status beats, per-segment images)."""
    await reset(dut)
    rng = random.Random(seed)
    cmd = StreamSource(dut, "cmd", PayloadCodec(command_layout(SHAPE)), gap_prob=GAP, rng=random.Random(rng.random()))
    data = StreamSource(dut, "rd_data", PayloadCodec(rd_data_layout(SHAPE)), gap_prob=GAP,
                        rng=random.Random(rng.random()))
    host = TopHost(SHAPE, memory, segments, cmd.send, data.send)
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
