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
