"""Hardware cost of a quantization plan: the ReRAM crossbar model or the digital mixed-precision MAC.

``--cost reram`` prices a layer with :class:`golden.reram.ReramModel` (area of crossbars, DACs
and ADCs; budgeted figure ``area_mm2``). ``--cost mac`` prices it with the measured table of this
generator's mixed-precision MAC block (``golden/data/mpmac_area.json``, measured by
``omnidrl synth`` on the ``mpmac`` block per precision pair; schema below). The block takes
``lanes`` products per beat and one cycle per activation bit of a beat (``cycles_per_dot``), so a
layer of K x M weights over P output positions needs ``M * P * ceil(K / lanes)`` beats; its
budgeted figure is the area-time product ``ge_ns = area_ge * beats * cycles_per_dot *
critical_path_ns`` at the layer's (weight width, activation bits): the gate equivalents a design
needs, times the time, to run the layer, which is the MAC area a design needs at a fixed inference
rate. (The table's ``energy_per_mac_j`` is reported beside it when it is a number; the first
measured table has it null.) A k-means codebook adds nothing here (its lookup is not measured,
see docs/quant.md).

MAC table schema (JSON)::

    {"block": "mpmac", "lanes": int, "versions": {...}, "date": str,
     "entries": [{"w_bits", "a_bits", "area_ge", "flip_flops", "critical_path_ns",
                  "cycles_per_dot", "energy_per_mac_j"}, ...]}   # all 64 pairs, bits 1..8

:func:`plan_cost` sums a model over the layers; costs are compared with the all-8-bit uniform
plan's (``relative``), which is what a budget of 0.5 refers to.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .mpmac import AREA_TABLE as MAC_TABLE
from .mpmac import AreaTableError, load_area_table
from .reram import ReramModel

__all__ = ["MacModel", "MAC_TABLE", "load_mac_table", "make_cost", "plan_cost", "COSTS"]

COSTS = ("reram", "mac")


def load_mac_table(path: str | Path | None = None) -> dict:
    """``{(w_bits, a_bits): entry}`` of a MAC table (:func:`golden.mpmac.load_area_table`), whose
    area, cycles and path must also be positive to price a plan; AreaTableError (a ValueError, one
    line) otherwise."""
    p = Path(path) if path is not None else MAC_TABLE
    table = load_area_table(p)
    for key, e in table.items():
        for f in ("area_ge", "cycles_per_dot", "critical_path_ns"):
            if not e[f] > 0:
                raise AreaTableError(f"{p}: {f} of precision pair {key} is {e[f]!r}, not a positive number")
    return table


class MacModel:
    """Digital mixed-precision MAC cost from its measured table (module docstring)."""

    name = "mac"
    primary = "ge_ns"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else MAC_TABLE
        self.table = load_mac_table(self.path)
        self.lanes = json.loads(self.path.read_text())["lanes"]  # checked by load_area_table

    def layer_cost(self, layer, plan) -> dict:
        e = self.table[(min(plan.w_width, 8), plan.a_bits)]
        beats = layer.fan_out * layer.positions * math.ceil(layer.fan_in / self.lanes)
        cycles = beats * e["cycles_per_dot"]
        out = {"ge_ns": float(e["area_ge"]) * cycles * float(e["critical_path_ns"]), "area_ge": float(e["area_ge"]),
               "cycles": cycles, "critical_path_ns": float(e["critical_path_ns"])}
        if isinstance(e["energy_per_mac_j"], (int, float)):
            out["energy_j"] = layer.macs * float(e["energy_per_mac_j"])
        return out


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
