"""ReRAM crossbar cost of a quantized layer (the setting of the PPO quantization paper).

The parameters (crossbar size, bits per cell, area and energy of crossbars, DACs, sample-and-holds
and ADCs, with their sources) are in one data file, ``golden/data/reram_isaac.json``. A layer
with weight matrix K x M (K = fan-in), ``w`` weight bits and ``a`` activation bits, producing
``P`` output positions per inference, is mapped ISAAC-style:

* each weight is split into ``slices = ceil(w / bits_per_cell)`` cells in adjacent columns;
* ``crossbars = ceil(K / rows) * ceil(M * slices / cols)``, each with its row DACs (1 bit),
  sample-and-holds and one ADC;
* activations enter bit-serially through the 1-bit DACs, ``a`` read cycles per output position;
* the ADC resolution is the activation precision ``a`` (the column sums are digitized straight to
  the layer's precision), with area and energy per conversion ``ref * scale^(a - ref_bits)``;
* a k-means activation codebook adds its 2^a x 8-bit table (area only).

``area_mm2`` (crossbars + periphery + codebook) is the resource the search budgets; ``energy_j``
(per inference: P * a cycles of every crossbar, its DACs and ``cols`` ADC conversions) is
reported beside it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["ReramModel", "RERAM_DATA"]

RERAM_DATA = Path(__file__).resolve().parent / "data" / "reram_isaac.json"
_KEYS = ("bits_per_cell", "xbar_rows", "xbar_cols", "xbar_area_mm2", "xbar_energy_j", "dac_area_mm2",
         "dac_energy_j", "sh_area_mm2", "adc_bits_ref", "adc_area_mm2_ref", "adc_energy_j_ref",
         "adc_scale_per_bit", "lut_area_mm2_per_bit")


class ReramModel:
    """ReRAM crossbar cost (module docstring). ``primary`` is the budgeted figure."""

    name = "reram"
    primary = "area_mm2"

    def __init__(self, path: str | Path | None = None):
        p = Path(path) if path is not None else RERAM_DATA
        data = json.loads(p.read_text())
        entries = data.get("entries", {})
        missing = [k for k in _KEYS if k not in entries or "source" not in entries[k]]
        if missing:
            raise ValueError(f"{p}: entry {missing[0]!r} (with its value and source) is missing")
        self.p = {k: entries[k]["value"] for k in _KEYS}

    def crossbars(self, fan_in: int, fan_out: int, w_width: int) -> int:
        slices = math.ceil(w_width / self.p["bits_per_cell"])
        return math.ceil(fan_in / self.p["xbar_rows"]) * math.ceil(fan_out * slices / self.p["xbar_cols"])

    def adc_scale(self, bits: int) -> float:
        return self.p["adc_scale_per_bit"] ** (bits - self.p["adc_bits_ref"])

    def layer_cost(self, layer, plan) -> dict:
        """``{"area_mm2", "energy_j", "crossbars"}`` of ``layer`` (LayerInfo) at ``plan`` (LayerPlan)."""
        p = self.p
        n = self.crossbars(layer.fan_in, layer.fan_out, plan.w_width)
        adc = self.adc_scale(plan.a_bits)
        per_xbar = p["xbar_area_mm2"] + p["dac_area_mm2"] + p["sh_area_mm2"] + p["adc_area_mm2_ref"] * adc
        area = n * per_xbar
        if plan.a_kind == "kmeans":
            area += (2 ** plan.a_bits) * 8 * p["lut_area_mm2_per_bit"]
        cycles = layer.positions * plan.a_bits
        energy = cycles * n * (p["xbar_energy_j"] + p["dac_energy_j"] + p["xbar_cols"] * p["adc_energy_j_ref"] * adc)
        return {"area_mm2": area, "energy_j": energy, "crossbars": n}
