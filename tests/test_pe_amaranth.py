"""Tier 1: the PE and its arithmetic units in Amaranth's simulator, against golden."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.bf16 import bf16_edge_values, bf16_mul, dot, fp32_add
from hdl.lib.fp import Bf16Multiplier, Fp32Adder
from hdl.config import ConfigError
from hdl.pe import PE, PEConfig
from tb.amsim import run_stream_test


def _comb_check(dut, ins, out_port, vectors, expected):
    """Set ``ins`` to each row of ``vectors`` and compare ``out_port`` with ``expected`` (no clock)."""
    mismatches = []

    async def tb(ctx):
        for k in range(len(expected)):
            for port, vec in zip(ins, vectors):
                ctx.set(port, int(vec[k]))
            got = ctx.get(out_port)
            if got != int(expected[k]):
                mismatches.append((k, [hex(int(v[k])) for v in vectors], hex(got), hex(int(expected[k]))))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"


def test_multiplier_edges_and_random():
    rng = np.random.default_rng(10)
    e = bf16_edge_values()
    a = np.concatenate([np.repeat(e, len(e)), rng.integers(0, 1 << 16, 3000)]).astype(np.uint16)
    b = np.concatenate([np.tile(e, len(e)), rng.integers(0, 1 << 16, 3000)]).astype(np.uint16)
    dut = Bf16Multiplier()
    _comb_check(dut, [dut.a, dut.b], dut.product, [a, b], bf16_mul(a, b))


def test_adder_random_and_cancellation():
    rng = np.random.default_rng(11)
    n = 5000
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    e = ((a >> 23) & 0xFF).astype(np.int64) + rng.integers(-2, 3, n)
    b[: n // 2] = ((b & 0x807FFFFF) | (np.clip(e, 0, 255).astype(np.uint32) << 23))[: n // 2]
    b[n // 2: 3 * n // 4] = (a ^ 0x80000000)[n // 2: 3 * n // 4] + 1
    dut = Fp32Adder()
    _comb_check(dut, [dut.a, dut.b], dut.sum, [a, b], fp32_add(a, b))


@pytest.mark.parametrize("preset", ["tiny", "default", "paper"])
def test_pe_dots_under_back_pressure(preset):
    rng = np.random.default_rng(12)
    dots = []
    for _ in range(60):
        n = int(rng.integers(1, 12))
        a = ((127 + rng.integers(-8, 9, n)) << 7 | rng.integers(0, 256, n) << 0).astype(np.uint16) ^ \
            (rng.integers(0, 2, n) << 15).astype(np.uint16)
        b = rng.integers(0x3C00, 0x4400, n).astype(np.uint16)
        dots.append((a, b))
    beats = []
    for a, b in dots:
        for k in range(len(a)):
            beats.append({"a": int(a[k]), "b": int(b[k]), "clear": k == 0, "last": k == len(a) - 1})
    got, _ = run_stream_test(PE(PEConfig.preset(preset)), beats, len(dots), gap_prob=0.3,
                             stall_prob=0.4, seed=5)
    assert got == [int(dot(a, b)) for a, b in dots]


@pytest.mark.parametrize("mul_stages", [0, 1, 2])
def test_pe_throughput_one_beat_per_cycle(mul_stages):
    """Beat k is taken in cycle k; the last result is valid ``latency`` cycles after the last
    beat (cycle 399), so the run takes 400 + latency cycles."""
    beats = [{"a": 0x3F80, "b": 0x3F80, "clear": k % 4 == 0, "last": k % 4 == 3} for k in range(400)]
    cfg = PEConfig(mul_stages=mul_stages)
    got, cycles = run_stream_test(PE(cfg), beats, 100)
    assert got == [0x40800000] * 100  # 4 x (1.0 * 1.0)
    assert cycles == 400 + cfg.latency


def test_config_validation_names_parameter():
    with pytest.raises(ConfigError, match=r"mul_stages=5 .* an integer from 0 to 2"):
        PEConfig(mul_stages=5)
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        PEConfig.preset("nope")


def test_config_hash_is_stable_and_distinct():
    assert PEConfig().config_hash() == PEConfig.preset("default").config_hash()
    assert PEConfig(mul_stages=0).config_hash() != PEConfig(mul_stages=1).config_hash()
    assert PEConfig.from_json(PEConfig(mul_stages=2).to_json()) == PEConfig(mul_stages=2)


def test_config_field_named_block_is_refused():
    import dataclasses

    from hdl.config import BlockConfig

    @dataclasses.dataclass(frozen=True)
    class Clash(BlockConfig):
        BLOCK = "clash"
        block: int = 8

    with pytest.raises(TypeError, match="may not be called 'block'"):
        Clash()
