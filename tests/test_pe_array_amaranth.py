"""Tier 1: the GST core in Amaranth's simulator, bit-exact and cycle-exact against golden."""

from __future__ import annotations

import random

import numpy as np
import pytest

from golden.codes import LoadSel, PEArrayError
from golden.pe_array import PEArrayCommandError, array_error, make_job
from hdl.config import ConfigError
from hdl.pe_array import PEArrayConfig
from tb.stimulus.pe_array import SequenceHost, edge_bf16, rand_bf16, run_host

TINY = PEArrayConfig.preset("tiny")
SHAPE = TINY  # golden reads rows, cols and block_size from the config itself
OK = (0, 0)  # (error, err_code) of an accepted command


def simulate(cfg, jobs, *, stall_prob=0.0, gap_prob=0.0, seed=0) -> SequenceHost:
    """Run ``jobs`` one after the other on a :class:`tb.amsim.StreamBench` (:func:`run_host`
    with one bank: job i's loads are taken from the cycle command i-1 is done, its command
    offered from the cycle after its last load). Returns the host: output beats per job in
    ``received``, (error, err_code) per command in ``status``."""
    host = SequenceHost(jobs, 1, gap_prob=gap_prob, stall_prob=stall_prob, rng=random.Random(seed))
    return run_host(cfg, host, max_cycles=200_000, allow_errors=True)


def busy_cycles(host: SequenceHost) -> list[int]:
    """Cycles each command held ``busy`` after the cycle it was accepted in (the cycle model's count)."""
    return [done - accepted - 1 for accepted, done in zip(host.accepted, host.done)]


def test_dense_small():
    rng = np.random.default_rng(1)
    a = rand_bf16(rng, (6, 7))
    b = rand_bf16(rng, (7, 9))
    job = make_job("dense", SHAPE, a, b)
    host = simulate(TINY, [job])
    assert host.status == [OK]
    assert host.mismatches(SHAPE.cols) == []
    assert busy_cycles(host) == [job.report.cycles]


def all_mode_jobs(rng, gen=rand_bf16):
    """One job per GEMM role and mode on tiny (4 x 4, k = 4), shapes not dividing the array."""
    k = 4
    jobs = [
        make_job("dense", SHAPE, gen(rng, (6, 7)), gen(rng, (7, 9))),  # W.x
        make_job("dense", SHAPE, gen(rng, (9, 3)), gen(rng, (3, 5))),  # short K: drain stalls
        make_job("dense", SHAPE, gen(rng, (5, 6)), gen(rng, (6, 3)), round_bf16=True),
    ]
    bm = (rng.random((3, 4)) < 0.5).astype(np.uint8)
    bm[1] = 0
    bm[0, 0] = 1
    jobs.append(make_job("sparse", SHAPE, gen(rng, (12, 16)), gen(rng, (16, 6)), bitmap=bm, max_blocks=8))
    # W^T.d in sparse mode: the transposed blocks and the transposed bitmap (as the transposer gives)
    w = gen(rng, (12, 16))
    jobs.append(make_job("sparse", SHAPE, np.ascontiguousarray(w.T), gen(rng, (12, 5)), bitmap=bm.T.copy(),
                         max_blocks=8))
    bw = (rng.random((4, 3)) < 0.5).astype(np.uint8)
    bw[0] = 0
    bw[3, 1] = 1
    jobs.append(make_job("wgrad", SHAPE, gen(rng, (16, 5)), gen(rng, (5, 12)), bitmap=bw, max_blocks=8))
    v = gen(rng, (2, 3, k))
    jobs.append(make_job("circ", SHAPE, v, gen(rng, (12, 5))))
    jobs.append(make_job("circ", SHAPE, v, gen(rng, (8, 6)), transpose=True))
    jobs.append(make_job("dv", SHAPE, gen(rng, (8, 3)), gen(rng, (3, 20))))
    return jobs


def test_every_mode_cycle_exact_without_stalls():
    rng = np.random.default_rng(11)
    jobs = all_mode_jobs(rng)
    host = simulate(TINY, jobs)
    assert host.status == [OK] * len(jobs)
    assert host.mismatches(SHAPE.cols) == []
    assert busy_cycles(host) == [job.report.cycles for job in jobs], [job.mode for job in jobs]


def test_every_mode_with_gaps_and_back_pressure_and_edge_values():
    rng = np.random.default_rng(12)
    jobs = all_mode_jobs(rng, gen=edge_bf16)
    host = simulate(TINY, jobs, stall_prob=0.5, gap_prob=0.3, seed=3)
    assert host.status == [OK] * len(jobs)
    assert host.mismatches(SHAPE.cols) == []
    assert all(busy >= job.report.cycles for busy, job in zip(busy_cycles(host), jobs))


def test_rejected_commands_flag_error_and_recover():
    rng = np.random.default_rng(13)
    good = make_job("dense", SHAPE, rand_bf16(rng, (4, 3)), rand_bf16(rng, (3, 4)))
    too_big = make_job("dense", SHAPE, rand_bf16(rng, (4, 3)), rand_bf16(rng, (3, 4)))
    too_big.cmd = dict(too_big.cmd, m=8, k=TINY.a_depth // 2 + 1)  # 2 tile rows x K words > a_depth
    bad_mode = make_job("dense", SHAPE, rand_bf16(rng, (4, 3)), rand_bf16(rng, (3, 4)))
    bad_mode.cmd = dict(bad_mode.cmd, mode=7)
    bm = np.ones((2, 2), np.uint8)
    mismatch = make_job("sparse", SHAPE, rand_bf16(rng, (8, 8)), rand_bf16(rng, (8, 4)), bitmap=bm, max_blocks=8)
    mismatch.loads.append((2, 0, 0b111))  # a kept block in column 2 of a 2-column bitmap
    ragged = make_job("circ", SHAPE, rand_bf16(rng, (1, 1, 4)), rand_bf16(rng, (4, 4)))
    ragged.cmd = dict(ragged.cmd, k=6)  # K not a multiple of the block
    host = simulate(TINY, [too_big, good, bad_mode, mismatch, ragged, good])
    assert host.status == [(1, PEArrayError.BUFFER), OK, (1, PEArrayError.MODE), (1, PEArrayError.BITMAP),
                           (1, PEArrayError.SHAPE), OK]
    assert [host.received[i] for i in (0, 2, 3, 4)] == [[]] * 4  # a rejected command sends nothing
    assert host.mismatches(SHAPE.cols, jobs=[1, 5]) == []
    # the golden check (golden.pe_array.array_error, used by the top's machine model) agrees
    assert [(int(array_error(TINY, **_check_args(job))) != 0, array_error(TINY, **_check_args(job)))
            for job in (too_big, good, bad_mode, mismatch, ragged, good)] == host.status


def _check_args(job):
    """array_error's arguments for a job run alone: its command and its bitmap loads."""
    rows = {}
    for sel, addr, word in job.loads:
        if sel == LoadSel.BITMAP:
            rows[addr] = word
    bitmap = [rows.get(p, 0) for p in range(TINY.max_blocks)]
    return {"mode": job.cmd["mode"], "m": job.cmd["m"], "n": job.cmd["n"], "kdim": job.cmd["k"],
            "bitmap_rows": bitmap}


def test_bitmap_grid_beyond_max_blocks_is_refused_by_golden_and_rtl_alike():
    # tiny: max_blocks 8, k 4. A sparse command of 9 block rows, a wgrad of 9 block columns: the
    # golden model refuses both with SHAPE (it used to keep the first 8 rows and predict a
    # result); the RTL, given every bitmap row it can hold, rejects both with SHAPE.
    rng = np.random.default_rng(15)
    mb = TINY.max_blocks
    jobs = []
    for mode, a_shape, b_shape, grid in [("sparse", (36, 8), (8, 4), (9, 2)), ("wgrad", (8, 5), (5, 36), (2, 9))]:
        a, b, bm = rand_bf16(rng, a_shape), rand_bf16(rng, b_shape), np.ones(grid, np.uint8)
        with pytest.raises(PEArrayCommandError, match=f"9 blocks is rejected|{mode} command of") as info:
            make_job(mode, SHAPE, a, b, bitmap=bm, max_blocks=mb)
        assert info.value.code == PEArrayError.SHAPE
        job = make_job(mode, SHAPE, a, b, bitmap=bm)  # no limit given: loads for every bitmap row
        job.loads = [ld for ld in job.loads if not (ld[0] == LoadSel.BITMAP and ld[1] >= mb)]
        jobs.append(job)
    good = make_job("dense", SHAPE, rand_bf16(rng, (4, 3)), rand_bf16(rng, (3, 4)))
    host = simulate(TINY, [*jobs, good])
    assert host.status == [(1, PEArrayError.SHAPE), (1, PEArrayError.SHAPE), OK]
    assert host.received[:2] == [[], []] and host.mismatches(SHAPE.cols, jobs=[2]) == []


def test_too_many_kept_blocks_for_the_a_buffer():
    cfg = TINY.replace(a_depth=16)  # room for 4 blocks of 4 words
    rng = np.random.default_rng(14)
    bm = np.ones((2, 3), np.uint8)
    job = make_job("sparse", SHAPE, rand_bf16(rng, (8, 12)), rand_bf16(rng, (12, 4)), bitmap=bm, max_blocks=8)
    job.loads = [ld for ld in job.loads if not (ld[0] == 0 and ld[1] >= 16)]
    host = simulate(cfg, [job])
    assert (host.status, host.received, busy_cycles(host)) == ([(1, PEArrayError.BLOCKS)], [[]], [1 + 2])
    assert array_error(cfg, **_check_args(job)) == PEArrayError.BLOCKS


def test_config_validation_names_parameter():
    with pytest.raises(ConfigError, match=r"rows=8 .*equal to block_size=4"):
        PEArrayConfig(rows=8, cols=4, block_size=4)
    with pytest.raises(ConfigError, match=r"block_size=6 .*power of two"):
        PEArrayConfig(rows=6, cols=6, block_size=6)
    with pytest.raises(ConfigError, match=r"a_depth=100 "):
        PEArrayConfig.preset("tiny", a_depth=100)
    assert PEArrayConfig(rows=3, cols=5, block_size=4, circulant=False, sparse=False).rows == 3


def test_dense_only_array_of_any_shape():
    cfg = PEArrayConfig(rows=3, cols=2, block_size=4, a_depth=64, b_depth=64, max_blocks=8, circulant=False, sparse=False)
    shape = cfg
    rng = np.random.default_rng(15)
    job = make_job("dense", shape, rand_bf16(rng, (7, 5)), rand_bf16(rng, (5, 3)))
    circ = make_job("circ", shape, rand_bf16(rng, (1, 1, 4)), rand_bf16(rng, (4, 2)))
    host = simulate(cfg, [job, circ])
    assert host.mismatches(2, jobs=[0]) == []
    assert busy_cycles(host)[0] == job.report.cycles
    assert host.status == [OK, (1, PEArrayError.MODE)]
