"""Tier 1: ping-pong operand banks in Amaranth's simulator. A command sequence whose loads
overlap compute, bit-exact against golden, every command's accept and finish cycle equal to
``golden.pe_array.sequence_cycles``; loads to the running command's bank are held, not lost."""

from __future__ import annotations

import random

import numpy as np
import pytest

from golden.pe_array import make_job, sequence_cycles
from hdl.config import ConfigError
from flows.blackbox import find_blackboxes
from hdl.pe_array import PEArray, PEArrayConfig, cmd_layout, load_layout
from tb.stimulus.pe_array import SequenceHost, bank_sequence, rand_bf16, run_host

TINY = PEArrayConfig.preset("tiny")


@pytest.mark.parametrize("banks", [1, 2])
def test_sequence_cycle_exact_against_model(banks):
    cfg = TINY.replace(banks=banks)
    jobs = bank_sequence(np.random.default_rng(21), cfg, cfg.max_blocks, banks)
    host = run_host(cfg, SequenceHost(jobs, banks))
    assert host.mismatches(cfg.cols) == []
    model = sequence_cycles(jobs, banks)
    assert (host.load_start, host.accepted, host.done) == (model.load_start, model.accepted, model.done)
    if banks == 2:
        assert host.held > 0, "no load ever waited for the running command's bank: the hold is untested"
        serial = sequence_cycles(jobs, 1)
        assert model.total < serial.total


def test_sequence_with_gaps_and_back_pressure_loses_nothing():
    cfg = TINY.replace(banks=2)
    jobs = bank_sequence(np.random.default_rng(22), cfg, cfg.max_blocks, 2, edge=True)
    host = run_host(cfg, SequenceHost(jobs, 2, gap_prob=0.3, stall_prob=0.4, rng=random.Random(5)))
    assert host.mismatches(cfg.cols) == []
    assert host.done[-1] >= sequence_cycles(jobs, 2).total


def test_load_to_running_bank_waits_and_lands_after():
    """A command on bank 0, then B words for bank 0 offered while it runs: they must wait (the
    running command's result is unchanged) and the next command on bank 0 must see them."""
    cfg = TINY.replace(banks=2)
    rng = np.random.default_rng(23)
    a, b1, b2 = rand_bf16(rng, (8, 6)), rand_bf16(rng, (6, 4)), rand_bf16(rng, (6, 4))
    first = make_job("dense", cfg, a, b1, bank=0)
    second = make_job("dense", cfg, a, b2, bank=0)
    second.loads = [ld for ld in second.loads if ld[0] == 1]  # only B changes
    idle_cmd = make_job("dense", cfg, rand_bf16(rng, (1, 1)), rand_bf16(rng, (1, 1)), bank=1)
    # bank order: job 0 on bank 0, a tiny job on bank 1, then the new B for bank 0
    host = run_host(cfg, SequenceHost([first, idle_cmd, second], 2))
    assert host.mismatches(cfg.cols) == []
    assert host.held > 0 and host.load_start[2] == host.done[0]


def test_bank_field_only_with_two_banks():
    assert "bank" not in cmd_layout(TINY).members and "bank" not in load_layout(TINY).members
    two = TINY.replace(banks=2)
    assert "bank" in cmd_layout(two).members and "bank" in load_layout(two).members
    # every bank's SRAMs are found as black boxes by their mark (flows/blackbox.py)
    assert find_blackboxes(PEArray(two), "pe_array") == ("pe_array.store.a0", "pe_array.store.b0",
                                                         "pe_array.store.a1", "pe_array.store.b1")
    with pytest.raises(ConfigError, match=r"banks=3 is not allowed; banks must be an integer from 1 to 2"):
        TINY.replace(banks=3)
