"""``hdl.lib.reduce.prefix_sums`` (the transposer's rank bases) against running sums in Python.

The transposer tests simulate tiles up to 8 x 8; the default and paper presets (16 x 16) take
prefixes of 15 and 16 terms, so the lengths around the powers of two are checked here directly.
"""

import itertools

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hdl.lib.reduce import prefix_sums


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 32])
def test_prefix_sums_are_running_sums(n):
    m = Module()
    terms = [Signal(4, name=f"t{i}") for i in range(n)]
    width = (15 * n).bit_length()
    sums = prefix_sums(m, terms, "s", width)
    rng = np.random.default_rng(n)
    vectors = [[15] * n, [0] * n, *(list(rng.integers(0, 16, n)) for _ in range(6))]

    async def bench(ctx):
        for values in vectors:
            for sig, v in zip(terms, values):
                ctx.set(sig, int(v))
            got = [ctx.get(s) for s in sums]
            assert got == list(itertools.accumulate(int(v) for v in values)), f"terms {values}"

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
