"""Tier 1: the ECIM macro and the MFEC unit in Amaranth's simulator, against golden.mfec."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.mfec import EXP_SUM_BITS, SHIFT_BITS, MfecParams, exponent_stage
from hdl.config import ConfigError
from hdl.ecim import Ecim, EcimConfig, EcimMacro, output_layout
from hdl.lib.sram import Sram
from tb.stimulus.ecim import (bf16_normal, edge_dots, expected, expected_skipped, make_dots, make_weights,
                              normal_dots, run_unit)


@pytest.mark.parametrize("preset,overrides", [("tiny", {}), ("default", {}),
                                              ("tiny", {"out_format": "fp32", "overlap": False, "lanes": 1})])
def test_dots_match_golden_under_stalls(preset, overrides):
    cfg = EcimConfig.preset(preset, **overrides)
    weights = make_weights(cfg, 21)
    dots = edge_dots(cfg) + make_dots(cfg, 40, 22)
    _, skipped = run_unit(cfg, weights, dots, gap_prob=0.3, stall_prob=0.4, seed=3)
    assert skipped == expected_skipped(cfg, weights, dots)


def test_write_waits_for_groups_in_flight_and_wins_over_new_groups():
    cfg = EcimConfig.preset("tiny")
    weights = make_weights(cfg, 31)
    dots = make_dots(cfg, 12, 32)
    rng = np.random.default_rng(33)
    new_rows = {4: (dots[4][0][0], bf16_normal(rng, cfg.n, 3.0)),
                9: (dots[9][0][-1], bf16_normal(rng, cfg.n, 3.0))}
    want, current = [], weights.copy()
    for d, dot in enumerate(dots):
        if d in new_rows:
            current[new_rows[d][0]] = new_rows[d][1]
        want += expected(cfg, current, [dot])
    run_unit(cfg, weights, dots, want=want, stall_prob=0.3, seed=4, mid_writes=new_rows)


def test_too_long_dot_is_flagged_and_unit_recovers():
    cfg = EcimConfig.preset("tiny")
    rng = np.random.default_rng(5)
    weights = bf16_normal(rng, (cfg.rows, cfg.n))
    dots = [(list(range(cfg.rows)) + [0], bf16_normal(rng, (cfg.rows + 1) * cfg.n)),
            ([1, 2], bf16_normal(rng, 2 * cfg.n))]
    want = expected(cfg, weights, dots)
    assert want[0] == output_layout(cfg).const({"value": 0x7FC0, "err": 1}).as_bits()  # in-band err and NaN
    assert not output_layout(cfg).from_bits(want[1]).err
    run_unit(cfg, weights, dots, want=want, stall_prob=0.5, seed=2)


@pytest.mark.parametrize("overlap,lanes", [(True, 2), (False, 2), (True, 1), (False, 1), (True, 16)])
def test_cycles_per_group_match_model(overlap, lanes):
    """48 groups at full rate take ``group_cycles`` each, plus at most the fill of one group
    (counted from the cycle the first group is offered to the last result's cycle)."""
    cfg = EcimConfig(overlap=overlap, lanes=lanes)
    rng = np.random.default_rng(6)
    weights = bf16_normal(rng, (cfg.rows, cfg.n))
    dots = normal_dots(cfg, rng, 6, 8)
    cycles, _ = run_unit(cfg, weights, dots)
    groups = 48
    assert groups * cfg.group_cycles <= cycles <= groups * cfg.group_cycles + cfg.exp_cycles + cfg.mant_cycles + 6


def test_overlap_speedup_for_groups_of_16():
    on, off = EcimConfig(n=16, overlap=True), EcimConfig(n=16, overlap=False)
    assert off.group_cycles / on.group_cycles > 1.5


def test_macro_matches_exponent_stage():
    n, rows = 8, 4
    rng = np.random.default_rng(7)
    dut = EcimMacro(n, rows)
    exps = rng.integers(0, 256, (rows, n))
    exps[1, :4] = 0
    exps[2, :] = 255
    cases = []
    for _ in range(60):
        eb = rng.choice([0, 1, 100, 127, 200, 254, 255], n) if rng.random() < 0.3 else rng.integers(1, 255, n)
        floor = int(rng.integers(0, 511))
        has = bool(rng.random() < 0.6)
        cases.append((int(rng.integers(0, rows)), eb, floor, has))
    mismatches = []

    async def tb(ctx):
        for r in range(rows):
            ctx.set(dut.wr_en, 1)
            ctx.set(dut.wr_row, r)
            ctx.set(dut.wr_exp, sum(int(e) << (8 * i) for i, e in enumerate(exps[r])))
            await ctx.tick()
        ctx.set(dut.wr_en, 0)
        for row, eb, floor, has in cases:
            ctx.set(dut.start, 1)
            ctx.set(dut.row, row)
            ctx.set(dut.eb, sum(int(e) << (8 * i) for i, e in enumerate(eb)))
            ctx.set(dut.s_floor, floor)
            ctx.set(dut.has_floor, has)
            await ctx.tick().until(dut.ready)
            ctx.set(dut.start, 0)
            cycles = 0
            while not ctx.get(dut.done):
                await ctx.tick()
                cycles += 1
            want = exponent_stage(exps[row][None], eb[None], np.array([floor]), np.array([has]))
            shift = ctx.get(dut.shift)
            got = {"shift": [(shift >> (SHIFT_BITS * i)) & ((1 << SHIFT_BITS) - 1) for i in range(n)],
                   "zero": [bool((ctx.get(dut.zero_a) | ctx.get(dut.zero_b)) >> i & 1) for i in range(n)],
                   "special": [bool((ctx.get(dut.inf_a) | ctx.get(dut.inf_b)) >> i & 1) for i in range(n)],
                   "s_new": ctx.get(dut.s_new), "has_new": bool(ctx.get(dut.has_new)),
                   "acc_shift": ctx.get(dut.acc_shift),
                   "s": [(ctx.get(dut.s) >> (EXP_SUM_BITS * i)) & ((1 << EXP_SUM_BITS) - 1) for i in range(n)]}
            exp = {"shift": want["shift"][0].tolist(), "zero": want["zero"][0].tolist(),
                   "special": want["special"][0].tolist(), "s_new": int(want["s_new"][0]),
                   "has_new": bool(want["has_new"][0]), "acc_shift": int(want["acc_shift"][0]),
                   "s": want["s"][0].tolist()}
            if got != exp:
                mismatches.append((row, eb.tolist(), floor, has, got, exp))
            assert cycles == EcimConfig().exp_cycles - 1  # start edge + these = exp_cycles
            ctx.set(dut.take, 1)
            await ctx.tick()
            ctx.set(dut.take, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert not mismatches, f"{len(mismatches)} mismatches; first {mismatches[0]}"


def test_config_validation_names_parameter():
    with pytest.raises(ConfigError, match=r"ecim: n=12 is not allowed; n must be a power of two from 2 to 64"):
        EcimConfig(n=12)
    with pytest.raises(ConfigError, match=r"lanes=32 .* from 1 to n=16"):
        EcimConfig(lanes=32)
    with pytest.raises(ConfigError, match=r"guard=20"):
        EcimConfig(guard=20)
    with pytest.raises(ConfigError, match=r"out_format='fp8'"):
        EcimConfig(out_format="fp8")
    assert EcimConfig.preset("tiny").acc_width == 16 + 10 + 5 + 1


def test_config_shares_the_golden_numerics_fields():
    """The MFEC fields are declared once (golden.mfec.MfecParams): same ranges, same values."""
    golden_rows = {r["name"]: r for r in MfecParams.parameter_table()}
    hdl_rows = {r["name"]: r for r in EcimConfig.parameter_table()}
    assert all(hdl_rows[name] == row for name, row in golden_rows.items())
    cfg = EcimConfig.preset("paper", guard=6, out_format="fp32")
    assert cfg.mfec == MfecParams(n=16, guard=6, max_groups=256, out_format="fp32", zero_skip=True)
    with pytest.raises(ConfigError, match=r"mfec: n=12 is not allowed; n must be a power of two from 2 to 64"):
        MfecParams(n=12)


def test_synth_periphery_is_an_implementation_knob():
    """Same Verilog, so same features hash; the full hash and the black-box marks differ."""
    plain, periphery = EcimConfig(), EcimConfig(synth_periphery=True)
    assert plain.config_hash() == periphery.config_hash()
    assert plain.full_hash() != periphery.full_hash()
    for cfg in (plain, periphery):
        top = Fragment.get(Ecim(cfg.replace(n=4, rows=8, lanes=2, max_groups=8)), None)
        parts = {name: sub for sub, name, *_ in top.subfragments}
        macro = parts["macro"].origins[0]
        assert isinstance(macro, EcimMacro) and macro.synth_blackbox == (not cfg.synth_periphery)
        assert isinstance(parts["mant_mem"].origins[0], Sram)
        cells = {name: sub for sub, name, *_ in parts["macro"].subfragments}["array"].origins[0]
        assert isinstance(cells, Sram) and cells.synth_blackbox  # a black box either way
