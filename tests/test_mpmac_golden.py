"""Tier 0: the mixed-precision MAC's golden model (golden/mpmac.py) against hand-worked cases
and plain integer dot products, its rejection rules, cycle model and area-table loader."""

import json
import random
import re

import numpy as np
import pytest

from golden.codes import MpMacError
from golden.config import ConfigError
from golden.mpmac import (AREA_TABLE, AreaTableError, Beat, MpMacParams, acc_bits_for, beat_sum, dot_beats,
                          dot_cycles, from_pattern, length_cycles, load_area_table, product_bound, stream_model,
                          to_pattern, value_range)
from tb.stimulus.mpmac import longest_dots, malformed_stream, pair_dots

TINY = MpMacParams(lanes=4, acc_bits=20)


def test_patterns_and_ranges_by_hand():
    assert value_range(1, True) == (-1, 0) and value_range(1, False) == (0, 1)
    assert value_range(8, True) == (-128, 127) and value_range(8, False) == (0, 255)
    assert to_pattern(-1, 3) == 0b111 and to_pattern(-4, 3) == 0b100 and to_pattern(3, 3) == 0b011
    assert to_pattern(5, 3, signed=False) == 0b101
    assert from_pattern(0b100, 3) == -4 and from_pattern(0b100, 3, signed=False) == 4
    assert from_pattern(0b1, 1) == -1
    with pytest.raises(ValueError, match=r"value 4 does not fit 3 signed bits \(-4..3\)"):
        to_pattern(4, 3)
    with pytest.raises(ValueError, match="does not fit 2 unsigned bits"):
        to_pattern(-1, 2, signed=False)


def test_beat_sums_by_hand():
    # w = [3, -2] (3 bits), a = [5, 6] unsigned 3 bits: 15 - 12 = 3.
    # Planes MSB first: k=2: lanes 0,1 -> P=1; k=1: lane 1 -> P=-2; k=0: lane 0 -> P=3;
    # Horner: 1, 2*1-2 = 0, 2*0+3 = 3.
    params = MpMacParams(lanes=2, max_w_bits=3, max_a_bits=3, acc_bits=8)
    assert beat_sum(Beat.make([3, -2], [5, 6], 3, 3, False)) == 3
    # the same patterns as signed activations: a = [-3, -2]: -9 + 4 = -5 (Horner with the sign plane negated: -1, -4, -5)
    assert beat_sum(Beat.make([3, -2], [-3, -2], 3, 3, True)) == -5
    # 1-bit weights are {-1, 0}; 1-bit signed activations are {-1, 0}: (-1)(-1) = 1
    assert beat_sum(Beat.make([-1, 0], [-1, -1], 1, 1, True)) == 1
    assert beat_sum(Beat.make([-1, -1], [1, 1], 1, 1, False)) == -2
    assert stream_model(params, [Beat.make([3, -2], [5, 6], 3, 3, False, last=False),
                                 Beat.make([1, 1], [7, 1], 3, 3, False)]).results == [3 + 8]


def test_every_pair_matches_a_plain_integer_dot_product():
    rng = random.Random(3)
    params = MpMacParams(lanes=5, acc_bits=32)
    beats = pair_dots(params, rng, per_pair=2, max_beats=3)
    # the reference: numpy's integer dot product of the decoded values, dot by dot
    want, w_acc, a_acc = [], [], []
    for b in beats:
        w, a = b.values()
        w_acc += w
        a_acc += a
        if b.last:
            want.append(int(np.dot(np.array(w_acc, np.int64), np.array(a_acc, np.int64))))
            w_acc, a_acc = [], []
    got = stream_model(params, beats)
    assert got.rejected == [] and got.results == want
    assert len(want) == 64 * 2 * 3


def test_longest_dot_products_fill_the_accumulator_exactly():
    got = stream_model(TINY, longest_dots(TINY))
    assert TINY.max_beats == 4  # (2**19 - 1) // (4 * 128 * 255)
    assert got.results == [-128 * 255 * 16, 128 * 128 * 16]
    lo, hi = -(1 << (TINY.acc_bits - 1)), (1 << (TINY.acc_bits - 1)) - 1
    assert all(lo <= v <= hi for v in got.results)
    # one more beat's worth would not fit: max_beats is the largest that does
    assert 128 * 255 * 4 * (TINY.max_beats + 1) > -lo


def test_accumulator_sizing_and_config_messages():
    assert product_bound(8, 8) == 128 * 255 and product_bound(1, 1) == 1
    assert acc_bits_for(8, 8, 8, 128) == 26 and acc_bits_for(8, 1, 1, 128) == 12
    assert MpMacParams().max_beats == (2**31 - 1) // (8 * 128 * 255)
    with pytest.raises(ConfigError, match=r"^mpmac: acc_bits=10 is not allowed; acc_bits must be an integer from 19 to 48 "
                                          r"\(one beat of lanes=8 products of 8 x 8 bits needs 19\)$"):
        MpMacParams(acc_bits=10)
    with pytest.raises(ConfigError, match=r"max_w_bits=9 is not allowed; max_w_bits must be an integer from 1 to 8"):
        MpMacParams(max_w_bits=9)


def test_rejections_by_hand():
    p = MpMacParams(lanes=2, max_w_bits=4, max_a_bits=4, acc_bits=11)
    assert p.max_beats == 1023 // (2 * 8 * 15) == 4
    good = Beat.make([1, 2], [3, 2], 3, 2, False)
    cases = [
        (Beat((1, 2), (3, 2), 0, 2, False, True), MpMacError.BITS),
        (Beat((1, 2), (3, 2), 5, 2, False, True), MpMacError.BITS),
        (Beat((1, 2), (3, 2), 3, 5, False, True), MpMacError.BITS),
        (Beat((1, 0b1000), (3, 2), 3, 2, False, True), MpMacError.OPERAND),   # bit 3 above w_bits=3
        (Beat((1, 2), (3, 0b100), 3, 2, False, True), MpMacError.OPERAND),   # bit 2 above a_bits=2
    ]
    for beat, code in cases:
        got = stream_model(p, [beat, good])
        assert got.rejected == [(0, code)] and got.results == [beat_sum(good)], code
        assert got.error_after == [True, False] and got.code_after == [code, MpMacError.NONE]
    # BITS comes before OPERAND: w_bits = 0 with any weight pattern
    assert stream_model(p, [Beat((15, 15), (3, 4), 0, 2, False, True)]).rejected == [(0, MpMacError.BITS)]
    # MIXED on the second beat; its dot is dropped up to last, the error holds while discarding
    open_ = Beat.make([1, 2], [3, 1], 3, 2, False, last=False)
    stream = [open_, Beat.make([1, 2], [1, -2], 3, 2, True, last=False), Beat((9, 9), (9, 9), 0, 0, False, False),
              Beat.make([1, 1], [1, 1], 3, 2, False, last=True), good]
    got = stream_model(p, stream)
    assert got.rejected == [(0, MpMacError.MIXED)] and got.results == [beat_sum(good)]
    assert got.error_after == [False, True, True, True, False]
    # LENGTH: the fifth beat of a dot product on a 4-beat accumulator
    long = [Beat.make([-1, -1], [1, 1], 1, 1, False, last=False) for _ in range(4)] + [Beat.make([0, 0], [0, 0], 1, 1, False)]
    got = stream_model(p, long + [good])
    assert got.rejected == [(0, MpMacError.LENGTH)] and got.results == [beat_sum(good)]
    assert stream_model(p, long[:3] + long[4:]).results == [-2 * 3]  # four beats are fine
    # without runtime precision only the maxima are taken
    fixed = p.replace(runtime_precision=False)
    assert stream_model(fixed, [good]).rejected == [(0, MpMacError.BITS)]
    assert stream_model(fixed, [Beat.make([-8, 7], [15, 15], 4, 4, False)]).results == [-15]


def test_malformed_stream_has_every_code_and_recovers():
    got = stream_model(TINY, malformed_stream(TINY, random.Random(5)))
    assert {code for _, code in got.rejected} == set(MpMacError) - {MpMacError.NONE}
    assert not got.error_after[-1]  # the final good dot product cleared the flag
    fixed = MpMacParams(lanes=3, max_w_bits=3, max_a_bits=2, acc_bits=10, runtime_precision=False)
    got = stream_model(fixed, malformed_stream(fixed, random.Random(6)))
    assert {code for _, code in got.rejected} >= {MpMacError.BITS, MpMacError.MIXED, MpMacError.LENGTH}


def test_cycle_model():
    assert [dot_cycles(a) for a in range(1, 9)] == list(range(1, 9))
    assert dot_cycles(3, 4) == 12
    assert length_cycles(256, 8, 4) == 32 * 4 and length_cycles(9, 8, 2) == 4 and length_cycles(0, 8, 2) == 2


def test_dot_beats_pads_and_checks():
    beats = dot_beats([1, 2, 3], [1, 1, 1], 3, 1, False, lanes=2)
    assert [b.last for b in beats] == [False, True] and beats[1].w == (3, 0)
    with pytest.raises(ValueError, match="as many weights as activations"):
        dot_beats([1, 2], [1], 3, 1, False, lanes=2)


def test_committed_area_table_loads():
    table = load_area_table()
    assert len(table) == 64
    doc = json.loads(AREA_TABLE.read_text())
    assert set(doc) == {"block", "lanes", "versions", "date", "entries"}
    for (w, a), e in table.items():
        assert e["cycles_per_dot"] == dot_cycles(a) and e["area_ge"] > 0 and e["flip_flops"] > 0
        assert e["critical_path_ns"] > 0 and e["energy_per_mac_j"] is None
    # a MAC for more bits is larger: weight bits widen the adder tree, activation bits the registers
    assert table[(8, 8)]["area_ge"] > table[(4, 4)]["area_ge"] > table[(1, 1)]["area_ge"]


def test_area_table_errors_are_one_line(tmp_path):
    with pytest.raises(AreaTableError, match=r"nope.json: no MAC area table; run `python bench/mpmac_area.py`"):
        load_area_table(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AreaTableError, match="not a readable JSON area table"):
        load_area_table(bad)
    doc = json.loads(AREA_TABLE.read_text())
    for change, message in [
        (lambda d: d.update(block="pe"), "not an mpmac area table"),
        (lambda d: d["entries"].pop(), "missing 1 pairs, first w_bits=8, a_bits=8"),
        (lambda d: d["entries"][0].pop("area_ge"), "entry 0 must have exactly the keys"),
        (lambda d: d["entries"][1].update(area_ge="big"), r"entry 1: area_ge='big' has the wrong type"),
        (lambda d: d["entries"].append(dict(d["entries"][0])), "appears twice"),
    ]:
        d = json.loads(json.dumps(doc))
        change(d)
        bad.write_text(json.dumps(d))
        with pytest.raises(AreaTableError) as err:
            load_area_table(bad)
        assert re.search(message, str(err.value)), str(err.value)
        assert "\n" not in str(err.value)
