"""Testbench settings from the environment (``tb/knobs.py``): parsing, the one-line messages,
and the table of ``docs/testing.md`` that must list every variable the testbenches read."""

import json
import re
from pathlib import Path

import pytest

from tb import knobs

ROOT = Path(__file__).resolve().parents[1]
SET_BY_THE_FLOW = {"OMNIDRL_CONFIG", "WAVES", "PATH"}


def test_values_defaults_and_messages(monkeypatch):
    monkeypatch.delenv("X_GAP", raising=False)
    assert knobs.probability("X_GAP", 0.3) == 0.3
    monkeypatch.setenv("X_GAP", "0.75")
    assert knobs.probability("X_GAP", 0.3) == 0.75
    monkeypatch.setenv("X_GAP", " ")
    assert knobs.probability("X_GAP", 0.3) == 0.3
    for bad in ("1", "1.5", "-0.1", "often"):
        monkeypatch.setenv("X_GAP", bad)
        with pytest.raises(ValueError, match=rf"^X_GAP='{re.escape(bad)}' is not allowed; X_GAP must be a probability "
                                             "from 0 to below 1$"):
            knobs.probability("X_GAP", 0.3)
    monkeypatch.setenv("X_N", "1_000_000")
    assert knobs.count("X_N", 5) == 1_000_000
    for bad in ("0", "2.5", "many"):
        monkeypatch.setenv("X_N", bad)
        with pytest.raises(ValueError, match=rf"^X_N='{re.escape(bad)}' is not allowed; X_N must be an integer of at least 1$"):
            knobs.count("X_N", 5)
    monkeypatch.setenv("X_N", "0")
    assert knobs.count("X_N", 5, lo=0) == 0


def test_record_appends_json_lines(monkeypatch, tmp_path):
    monkeypatch.delenv("TB_STATS", raising=False)
    knobs.record("pe", "t", beats=1)  # no file named: nothing happens
    path = tmp_path / "stats.jsonl"
    monkeypatch.setenv("TB_STATS", str(path))
    knobs.record("pe", "a", beats=3, cycles=10, seconds=0.5)
    knobs.record("ecim", "b", beats=4, cycles=20, seconds=1.0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"block": "pe", "test": "a", "beats": 3, "cycles": 10, "seconds": 0.5},
                     {"block": "ecim", "test": "b", "beats": 4, "cycles": 20, "seconds": 1.0}]


def test_every_variable_the_testbenches_read_is_documented():
    used = set()
    for path in (ROOT / "tb").glob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'knobs\.(?:count|probability)\("([A-Z0-9_]+)"', text))
        used |= set(re.findall(r'os\.environ(?:\.get\(|\[)"([A-Z0-9_]+)"', text))
    used -= SET_BY_THE_FLOW
    assert {"PE_GAP", "EMD_STALL", "TP_TILES", "ECIM_DOTS", "PEA_ROUNDS"} <= used, "the scan lost its way"
    doc = (ROOT / "docs" / "testing.md").read_text()
    table = doc[doc.index("## Settings from the environment"):]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted(used - documented - {"TB_STATS"} | ({"TB_STATS"} - documented))
    assert not missing, f"docs/testing.md, Settings from the environment: add {missing}"


def test_the_soak_covers_every_block_with_documented_knobs():
    """bench/soak.py soaks every registered block and sets only variables of the table."""
    import importlib.util  # noqa: PLC0415

    from hdl.registry import BLOCKS  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    jobs = soak._jobs(0.3, 0.3, 10, 0.01)
    # the OmniDRL top runs programs, not one stream: its long runs are whole TD3 updates
    # (bench/top_td3.py) and its random-gap program tests; every stream block is soaked
    assert {cfg.BLOCK for _, cfg, _, _, stream in jobs if stream} == set(BLOCKS) - {"omnidrl"}
    assert {cfg.BLOCK for _, cfg, _, _, stream in jobs if not stream} == {"emd_dec", "transposer"}
    doc = (ROOT / "docs" / "testing.md").read_text()
    table = doc[doc.index("## Settings from the environment"):]
    for name, _, test, env_of, _ in jobs:
        for key in env_of(0):
            assert f"`{key}`" in table, f"soak {name} sets {key}, which docs/testing.md does not list"
        assert f"async def {test}(" in "".join(p.read_text() for p in (ROOT / "tb").glob("test_*.py")), test


def test_the_documented_top_workload_default_is_the_testbenchs():
    """docs/testing.md's TOP_WORKLOAD default is golden.workloads.SMALL_WORKLOADS, every small
    workload (the tb and its pytest runner take theirs from there)."""
    from golden.workloads import SMALL_WORKLOADS, WORKLOADS  # noqa: PLC0415

    assert SMALL_WORKLOADS == ("small-dense", "small-circ", "small-sparse", "small-fine")
    assert set(SMALL_WORKLOADS) == {n for n in WORKLOADS if n.startswith("small-")}
    doc = (ROOT / "docs" / "testing.md").read_text()
    row = next(line for line in doc.splitlines() if "| `TOP_WORKLOAD` |" in line)
    assert row.split("|")[3].strip() == ",".join(SMALL_WORKLOADS), row
