"""Hardware cost of a quantization plan: the ReRAM crossbar model or the digital mixed-precision MAC.

``--cost reram`` prices a layer with :class:`golden.reram.ReramModel` (area of crossbars, DACs
and ADCs; budgeted figure ``area_mm2``). ``--cost mac`` prices it with the measured table of this
generator's mixed-precision MAC block (``golden/data/mpmac_area.json``, written by
``bench`` runs of ``omnidrl synth mpmac`` on its branch; schema below), budgeted figure
``energy_j``: the layer's multiply-accumulates times the table's energy per MAC at the layer's
(weight width, activation bits); ``area_ge`` and ``critical_path_ns`` of that precision pair's
block are reported beside it. A k-means codebook adds no MAC energy (its table lookup is not
measured and is left out, see docs/quant.md).

MAC table schema (JSON)::

    {"block": "mpmac", "lanes": int, "versions": {...}, "date": str,
     "entries": [{"w_bits", "a_bits", "area_ge", "flip_flops", "critical_path_ns",
                  "cycles_per_dot", "energy_per_mac_j"}, ...]}   # all 64 pairs, bits 1..8

:func:`plan_cost` sums a model over the layers; costs are compared with the all-8-bit uniform
plan's (``relative``), which is what a budget of 0.5 refers to.
"""

from __future__ import annotations

import json
from pathlib import Path

from .reram import ReramModel

__all__ = ["MacModel", "MAC_TABLE", "load_mac_table", "make_cost", "plan_cost", "COSTS"]

MAC_TABLE = Path(__file__).resolve().parent / "data" / "mpmac_area.json"
_FIELDS = ("w_bits", "a_bits", "area_ge", "flip_flops", "critical_path_ns", "cycles_per_dot", "energy_per_mac_j")
COSTS = ("reram", "mac")


def load_mac_table(path: str | Path | None = None) -> dict:
    """``{(w_bits, a_bits): entry}`` of a MAC table; ValueError (one line) if it is incomplete."""
    p = Path(path) if path is not None else MAC_TABLE
    if not p.is_file():
        raise FileNotFoundError(f"the MAC area table {p} does not exist (it is measured with `omnidrl synth mpmac`)")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("block") != "mpmac" or not isinstance(data.get("entries"), list):
        raise ValueError(f"{p} is not an mpmac table (block 'mpmac' and a list of entries expected)")
    table = {}
    for e in data["entries"]:
        missing = [f for f in _FIELDS if f not in e]
        if missing:
            raise ValueError(f"{p}: an entry has no {missing[0]!r}")
        table[(int(e["w_bits"]), int(e["a_bits"]))] = e
    absent = [(w, a) for w in range(1, 9) for a in range(1, 9) if (w, a) not in table]
    if absent:
        raise ValueError(f"{p}: precision pair (w_bits, a_bits) = {absent[0]} is missing; all 64 pairs 1..8 are needed")
    return table


class MacModel:
    """Digital mixed-precision MAC cost from its measured table (module docstring)."""

    name = "mac"
    primary = "energy_j"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else MAC_TABLE
        self.table = load_mac_table(self.path)

    def layer_cost(self, layer, plan) -> dict:
        e = self.table[(min(plan.w_width, 8), plan.a_bits)]
        return {"energy_j": layer.macs * float(e["energy_per_mac_j"]), "area_ge": float(e["area_ge"]),
                "critical_path_ns": float(e["critical_path_ns"])}


def make_cost(name: str, mac_table: str | Path | None = None):
    if name == "reram":
        return ReramModel()
    if name == "mac":
        return MacModel(mac_table)
    raise ValueError(f"--cost {name!r} is not allowed; choose one of {', '.join(COSTS)}")


def plan_cost(model, layers, plan) -> tuple[float, list[float]]:
    """``(total, per_layer)`` of the model's budgeted figure over the layers."""
    per = [model.layer_cost(l, p)[model.primary] for l, p in zip(layers, plan)]
    return float(sum(per)), per
