"""Quantizers (hand-computed cases and invariants) and the cost models of the precision search."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from golden.quant import (KMEANS_ITERS, act_levels, log_weights, quantize_to_levels, uniform_weight_codes,
                          uniform_weights)
from golden.quant_cost import MacModel, load_mac_table, plan_cost
from golden.quant_nets import LayerInfo, LayerPlan
from golden.reram import RERAM_DATA, ReramModel

FIXTURE = "tests/data/mpmac_area_fixture.json"


# ----------------------------------------------------------------------------- hand-computed

def test_uniform_weights_hand_cases():
    # 3 bits: qmax 3, scale max|w| / 3 = 1/3; w / s = 1.5, -3, 0.78, 0.75, 0 -> 2 (half to even), -3, 1, 1, 0
    w = np.array([0.5, -1.0, 0.26, 0.25, 0.0])
    codes, scale = uniform_weight_codes(w, 3)
    assert scale == pytest.approx(1 / 3)
    assert codes.tolist() == [2, -3, 1, 1, 0]
    np.testing.assert_allclose(uniform_weights(w, 3), [2 / 3, -1.0, 1 / 3, 1 / 3, 0.0])
    # half to even on both sides: 2.5 -> 2, -0.5 -> 0, 1.5 -> 2 (scale 1 with max 3 at 3 bits)
    assert uniform_weight_codes(np.array([2.5, -0.5, 1.5, 3.0]), 3)[0].tolist() == [2, 0, 2, 3]
    assert uniform_weights(np.zeros(3), 4).tolist() == [0.0, 0.0, 0.0]


def test_log_weights_hand_cases():
    # 3 bits: levels 1, 1/2, 1/4 (m = 1); zero below 0.25 / sqrt(2) = 0.177
    w = np.array([1.0, -0.5, 0.3, 0.1, 0.0, 0.7, 0.72, -0.18, 0.17])
    # 0.3: -log2 = 1.74 -> 2 -> 0.25; 0.7: 0.515 -> 1 -> 0.5; 0.72: 0.474 -> 0 -> 1
    assert log_weights(w, 3).tolist() == [1.0, -0.5, 0.25, 0.0, 0.0, 0.5, 1.0, -0.25, 0.0]
    # 2 bits: {0, +-m}; threshold m / sqrt(2)
    assert log_weights(np.array([-2.0, 1.5, 1.4]), 2).tolist() == [-2.0, 2.0, 0.0]


def test_activation_levels_hand_cases():
    assert act_levels(np.array([0.0, 3.0, 1.2]), 2, "uniform").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert act_levels(np.array([-2.0, 1.0]), 2, "uniform").tolist() == [-2.0, 0.0, 2.0]
    assert act_levels(np.array([1.0, 4.0, 2.2]), 2, "equal-distance").tolist() == [1.0, 2.0, 3.0, 4.0]
    # k-means, 1 bit, from [0, 10]: {0, 0, 1, 1} and {10, 10} -> means 0.5 and 10, stable
    assert act_levels(np.array([0, 0, 1, 1, 10, 10.0]), 1, "kmeans").tolist() == [0.5, 10.0]
    # nearest level; exactly half-way goes up
    assert quantize_to_levels(np.array([1.5, 1.49, 3.6, -9, 9]), np.array([1.0, 2.0, 3.0, 4.0])).tolist() == \
        [2.0, 1.0, 4.0, 1.0, 4.0]


@pytest.mark.parametrize("call", [lambda: uniform_weights(np.ones(2), 1), lambda: log_weights(np.ones(2), 0),
                                  lambda: act_levels(np.ones(2), 3, "median"), lambda: act_levels(np.ones(0), 3, "uniform"),
                                  lambda: LayerPlan(9, 4), lambda: LayerPlan(5, 4, "log-w"), lambda: LayerPlan(4, 4, "x")])
def test_bad_quantizer_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------- invariants

@pytest.mark.parametrize("bits", range(2, 9))
def test_weight_quantizer_invariants(bits):
    rng = np.random.default_rng(bits)
    w = rng.standard_normal(500) * 0.3
    q = uniform_weights(w, bits)
    codes, scale = uniform_weight_codes(w, bits)
    assert len(np.unique(q)) <= 2 ** bits - 1
    np.testing.assert_array_equal(uniform_weights(q, bits), q)            # idempotent
    assert np.max(np.abs(q - w)) <= scale / 2 + 1e-12                    # at most half a step
    assert np.all(np.diff(q[np.argsort(w)]) >= 0)                        # monotone
    assert np.all(np.sign(q) * np.sign(w) >= 0)                          # no sign flips
    lq = log_weights(w, bits)
    m = np.max(np.abs(w))
    nz = lq[lq != 0]
    exps = -np.log2(np.abs(nz) / m)
    np.testing.assert_allclose(exps, np.round(exps), atol=1e-9)          # powers of two of max|w|
    assert len(np.unique(np.abs(lq))) <= 2 ** (bits - 1)                 # zero + 2^(b-1) - 1 magnitudes
    np.testing.assert_array_equal(log_weights(lq, bits), lq)
    assert np.all(np.diff(lq[np.argsort(w)]) >= 0)


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("kind", ["uniform", "equal-distance", "kmeans"])
def test_activation_quantizer_invariants(bits, kind):
    rng = np.random.default_rng(7)
    x = np.maximum(rng.standard_normal(2000), 0) ** 1.5                  # ReLU-like, skewed
    lv = act_levels(x, bits, kind)
    assert len(lv) <= 2 ** bits and np.all(np.diff(lv) >= 0)
    q = quantize_to_levels(x, lv)
    np.testing.assert_array_equal(quantize_to_levels(q, lv), q)
    assert np.all(np.diff(q[np.argsort(x)]) >= 0)
    assert set(np.unique(q)) <= set(lv)
    if kind == "kmeans":  # Lloyd never increases the error of its equal-distance start
        ed = quantize_to_levels(x, act_levels(x, bits, "equal-distance"))
        assert np.mean((q - x) ** 2) <= np.mean((ed - x) ** 2) + 1e-12
    assert KMEANS_ITERS > 0


# ----------------------------------------------------------------------------- cost models

FC = LayerInfo("l", "fc", 256, 256, 1, 65536, 1)


def test_reram_cost_hand_computed():
    m = ReramModel()
    data = json.loads(RERAM_DATA.read_text())["entries"]
    assert all("source" in e and e["source"] for e in data.values())
    # 8-bit weights over 2-bit cells: 4 slices; 256 rows -> 2 row tiles, 256 x 4 columns -> 8 column tiles
    assert m.crossbars(256, 256, 8) == 16
    assert m.crossbars(256, 256, 4) == 8 and m.crossbars(100, 10, 2) == 1 and m.crossbars(129, 128, 3) == 4
    per = 2.5e-5 + 2.125e-5 + 5e-6
    c8 = m.layer_cost(FC, LayerPlan(8, 8))
    assert c8["area_mm2"] == pytest.approx(16 * (per + 0.0012))
    assert c8["energy_j"] == pytest.approx(8 * 16 * (3e-11 + 5e-11 + 128 * 1.5625e-12))
    c6 = m.layer_cost(FC, LayerPlan(8, 6))  # ADC at 6 bits: a quarter of the 8-bit ADC
    assert c6["area_mm2"] == pytest.approx(16 * (per + 0.0003))
    # log weights of 3 code bits hold a 4-bit fixed-point value: 2 slices
    assert m.layer_cost(FC, LayerPlan(3, 8, "log-w"))["crossbars"] == 8
    km = m.layer_cost(FC, LayerPlan(8, 6, "km-a"))["area_mm2"] - c6["area_mm2"]
    assert km == pytest.approx(64 * 8 * 1.583e-7)


def test_mac_cost_from_table_and_bad_tables(tmp_path):
    m = MacModel(FIXTURE)
    # the fixture (lanes 4): area 100 + 40 w + 10 w a GE, a cycles per beat, path 1 + 0.1 w ns;
    # FC: 256 outputs x ceil(256 / 4) = 16,384 beats
    c = m.layer_cost(FC, LayerPlan(5, 3))
    assert c["ge_ns"] == pytest.approx(450 * 16384 * 3 * 1.5) and c["cycles"] == 16384 * 3
    assert c["energy_j"] == pytest.approx(65536 * 1e-13 * 16)
    # log weights of 3 code bits are 4-bit fixed-point values in the datapath
    assert m.layer_cost(FC, LayerPlan(3, 4, "log-w"))["ge_ns"] == pytest.approx(420 * 16384 * 4 * 1.4)
    odd = LayerInfo("o", "fc", 5, 3, 1, 15, 1)  # ceil(5 / 4) = 2 beats per output
    assert m.layer_cost(odd, LayerPlan(2, 2))["cycles"] == 3 * 2 * 2
    total, per = plan_cost(m, [FC, FC], [LayerPlan(8, 8), LayerPlan(2, 2)])
    assert total == pytest.approx(sum(per)) and per[0] > per[1]
    assert len(load_mac_table(FIXTURE)) == 64
    doc = json.loads(open(FIXTURE).read())
    doc["entries"] = [e for e in doc["entries"] if (e["w_bits"], e["a_bits"]) != (7, 2)]
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"missing 1 pairs, first w_bits=7, a_bits=2"):
        load_mac_table(bad)
    doc = json.loads(open(FIXTURE).read())
    doc["entries"][5]["area_ge"] = None
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="entry 5: area_ge=None has the wrong type"):
        load_mac_table(bad)
    doc["entries"][5]["area_ge"] = 0.0
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="area_ge of precision pair"):
        load_mac_table(bad)
    bad.write_text(json.dumps({"block": "pe", "entries": []}))
    with pytest.raises(ValueError, match="not an mpmac area table"):
        load_mac_table(bad)
    with pytest.raises(ValueError, match="no MAC area table"):
        load_mac_table(tmp_path / "none.json")


def test_layer_macs():
    conv = LayerInfo("c", "conv", 72, 16, 3, 1152, 64)
    assert conv.macs == 72 * 16 * 64 and math.isclose(FC.macs, 65536)
