"""docs/quant.md against the code: the ReRAM data table, the MAC table schema, the observation,
the reward constants, the quantizer kinds."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from golden import mpmac
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
    assert set(mpmac._ENTRY_KEYS) | {"block", "lanes", "versions", "date"} <= documented


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


def test_results_section_quotes_the_benchmark():
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "results.md").read_text()
    section = text[text.index("## Mixed-precision quantization search"):]
    results = json.loads((root / "bench" / "results" / "quant_search.json").read_text())["results"]
    rows = [l for l in section.splitlines() if l.startswith("| cnn |") or l.startswith("| td3-actor |")]
    assert len(rows) == len(results) == 4
    pct = lambda x: f"{100 * x:+.1f} %".replace("+-", "-")  # noqa: E731
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        r = results[f"{cells[0]}/{cells[1]}"]
        assert cells[2:5] == [pct(r["ppo_cost_vs_uniform_at_matched_acc"]), pct(r["ddpg_cost_vs_uniform_at_matched_acc"]),
                              pct(r["ppo_cost_vs_ddpg_same_budget"])]
        assert cells[5] == f"{r['ppo_accuracy']:.3f} / {r['ppo_cost']:.3f}"
        assert cells[6] == f"{r['ddpg_accuracy']:.3f} / {r['ddpg_cost']:.3f}"
        assert cells[7] == f"{r['ppo_episodes_to_best']:.0f} / {r['ddpg_episodes_to_best']:.0f}"
