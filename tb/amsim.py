"""Stream helpers for Amaranth's own simulator (tier-1 tests, no Verilog, no toolchain).

:func:`run_stream_test` drives one input stream and drains one output stream of a component
with random gaps and random back-pressure, in the same style as the cocotb drivers in
:mod:`tb.stream`, and returns the received payloads (as integers) plus the cycle count.
"""

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["run_stream_test"]


def run_stream_test(dut, beats, n_expected, *, in_name="i", out_name="o", gap_prob=0.0,
                    stall_prob=0.0, seed=0, max_cycles=None, vcd=None):
    """Send ``beats`` (ints or dicts for struct payloads) into ``dut.<in_name>`` and collect
    ``n_expected`` payloads from ``dut.<out_name>``.

    Returns
    -------
    (list[int], int)
        Received payload bit patterns in order, and the cycles simulated.
    """
    rng = random.Random(seed)
    src, snk = getattr(dut, in_name), getattr(dut, out_name)
    received = []
    cycles = [0]
    limit = max_cycles or (20 * len(beats) + 200)

    async def producer(ctx):
        for beat in beats:
            while rng.random() < gap_prob:
                ctx.set(src.valid, 0)
                await ctx.tick()
            ctx.set(src.payload, beat)
            ctx.set(src.valid, 1)
            await ctx.tick().until(src.ready)
        ctx.set(src.valid, 0)

    async def consumer(ctx):
        while len(received) < n_expected:
            ready = rng.random() >= stall_prob
            ctx.set(snk.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(snk.valid, Value.cast(snk.payload))
            cycles[0] += 1
            if valid and ready:
                received.append(int(payload))
            assert cycles[0] < limit, f"only {len(received)} of {n_expected} results after {limit} cycles"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return received, cycles[0]
