"""docs/quant.md against the code: the ReRAM data table, the MAC table schema, the observation,
the reward constants, the quantizer kinds."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from golden import quant_cost
from golden.quant import KMEANS_ITERS
from golden.quant_env import OBS_DIM, QuantEnv
from golden.quant_nets import QUANT_KINDS
from golden.reram import RERAM_DATA

DOC = (Path(__file__).resolve().parents[1] / "docs" / "quant.md").read_text()


def _table_after(marker: str) -> list[list[str]]:
    """Rows (cells stripped) of the first Markdown table after ``marker``."""
    lines = DOC[DOC.index(marker):].splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_reram_table_is_the_data_file():
    entries = json.loads(RERAM_DATA.read_text())["entries"]
    rows = _table_after("The ReRAM data file, entry by entry")
    assert [r[0].strip("`") for r in rows] == list(entries)
    for name, value, unit, source in rows:
        e = entries[name.strip("`")]
        assert float(value) == e["value"] and unit == e["unit"] and source == e["source"]


def test_mac_schema_lists_every_field_the_reader_needs():
    rows = _table_after("The MAC table (")
    documented = set()
    for r in rows:
        documented |= {f.split(".")[-1] for f in re.findall(r"`([^`]+)`", r[0])}
    assert set(quant_cost._FIELDS) | {"block", "lanes", "versions", "date"} <= documented


def test_observation_reward_and_kinds():
    obs = _table_after("Observation (10 floats)")
    assert [int(r[0]) for r in obs] == list(range(OBS_DIM))
    sig = inspect.signature(QuantEnv).parameters
    lam, beta = sig["lam"].default, sig["beta"].default
    assert f"r = acc - {lam:g} * max(0, c / B - 1) - {beta:g} * c / B" in DOC
    kinds = _table_after("A layer's quantizer kind is one of")
    names = {"uniform": "uniform", "log": "log", "equal-distance": "equal-distance", "k-means": "kmeans"}
    assert {r[0].strip("`"): (names[r[1].split(" (")[0]], names[r[2]]) for r in kinds} == QUANT_KINDS
    assert f"{KMEANS_ITERS} iterations" in DOC
