"""The machine-run cache (flows/run_cache.py): its key, its entries and its lock.

The sweep's side (a ``cycles`` job and ``omnidrl energy`` sharing one entry) is checked in
tests/test_sweep.py, where the sweep's Ray session is.
"""

from __future__ import annotations

import json
import threading

import pytest

import golden.run_top
from flows import run_cache
from hdl.omnidrl import OmniDRLConfig


@pytest.fixture
def counted_runs(monkeypatch):
    """The workloads ``golden.run_top.run_machine`` is called with, in order (the real model runs)."""
    calls = []
    real = golden.run_top.run_machine

    def counting(cfg, name, *args, **kwargs):
        calls.append(name)
        return real(cfg, name, *args, **kwargs)

    monkeypatch.setattr(golden.run_top, "run_machine", counting)
    return calls


def test_the_key_is_what_the_model_reads():
    tiny = OmniDRLConfig.preset("tiny")
    key = run_cache.run_key(tiny, "small-dense")
    assert len(key) == 20 and int(key, 16) >= 0
    # the transposer's banks are not read by the model: one run for both
    assert run_cache.run_key(OmniDRLConfig.preset("tiny", transposer_buffers=3), "small-dense") == key
    assert OmniDRLConfig.preset("tiny", transposer_buffers=3).config_hash() != tiny.config_hash()
    # the EMD format and the workload are
    assert run_cache.run_key(OmniDRLConfig.preset("tiny", emd={"group": 16}), "small-dense") != key
    assert run_cache.run_key(tiny, "small-sparse") != key
    fields = run_cache.key_fields(tiny, "small-dense")
    assert set(fields) == {"view", "workload", "numpy", "source"}
    assert fields["view"]["isa_shape"]["k"] == tiny.pe_array.block_size


def test_a_run_is_stored_once_and_read_back(tmp_path, counted_runs):
    cfg = OmniDRLConfig.preset("tiny")
    committed, local = tmp_path / "committed", tmp_path / "local"
    run, hit = run_cache.cached_run(cfg, "small-dense", [committed, local])
    assert not hit and counted_runs == ["small-dense"]
    entry = json.loads(run_cache.entry_path(local, run_cache.run_key(cfg, "small-dense")).read_text())
    assert entry["result"] == run and entry["key"] == run_cache.key_fields(cfg, "small-dense")
    assert entry["config_hash"] == cfg.config_hash() and not committed.exists()
    again, hit = run_cache.cached_run(cfg, "small-dense", [committed, local])
    assert hit and again == run and counted_runs == ["small-dense"]
    # the first folder holding the entry wins; a damaged entry is a miss
    run_cache.store(committed, cfg, "small-dense", dict(run, cycles=-1))
    assert run_cache.lookup(cfg, "small-dense", [committed, local])["cycles"] == -1
    run_cache.entry_path(committed, run_cache.run_key(cfg, "small-dense")).write_text("{")
    assert run_cache.lookup(cfg, "small-dense", [committed, local]) == run


def test_two_processes_wanting_one_run_compute_it_once(tmp_path, counted_runs):
    """Two callers at once (threads here: each opens the lock file itself, as two processes do):
    one runs the model, the other waits on the entry's lock and reads what the first stored."""
    cfg = OmniDRLConfig.preset("tiny")
    out: list[tuple[dict, bool]] = []
    start = threading.Barrier(2)

    def want():
        start.wait()
        out.append(run_cache.cached_run(cfg, "small-sparse", [tmp_path]))

    threads = [threading.Thread(target=want) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counted_runs == ["small-sparse"]
    assert sorted(hit for _, hit in out) == [False, True] and out[0][0] == out[1][0]
