"""PayloadCodec (tb/streamlib.py): packing through Amaranth layouts, checked against bit
patterns worked out by hand from the field order (LSB first), not by the code under test."""

import pytest
from amaranth import signed
from amaranth.lib import data
from amaranth.lib import enum as amaranth_enum

from golden.codes import Mode
from tb.streamlib import PayloadCodec


class Op(amaranth_enum.Enum, shape=3):
    ADD = 1
    SUB = 5


# a: bits 0-3, mode (Mode has 5 members: 3 bits): 4-6, arr: 7-9 and 10-12,
# sub.x: 13-14, sub.s: 15-17, op: 18-20.
NESTED = data.StructLayout({
    "a": 4,
    "mode": Mode,
    "arr": data.ArrayLayout(3, 2),
    "sub": data.StructLayout({"x": 2, "s": signed(3)}),
    "op": Op,
})
NESTED_VALUE = {"a": 5, "mode": Mode.SPARSE, "arr": [1, 6], "sub": {"x": 3, "s": -2}, "op": Op.SUB}
NESTED_BITS = 5 | (1 << 4) | (1 << 7) | (6 << 10) | (3 << 13) | (0b110 << 15) | (5 << 18)

# Three 4-bit elements {v: bits 0-2, ok: bit 3}.
ARRAY_OF_STRUCTS = data.ArrayLayout(data.StructLayout({"v": 3, "ok": 1}), 3)
ARRAY_VALUE = [{"v": 7, "ok": 0}, {"v": 2, "ok": 1}, {"v": 0, "ok": 1}]
ARRAY_BITS = 0b0111 | (0b1010 << 4) | (0b1000 << 8)


def test_nested_struct_packs_to_hand_computed_bits():
    codec = PayloadCodec(NESTED)
    assert codec.width == 21
    assert codec.pack(NESTED_VALUE) == NESTED_BITS


def test_nested_unpack_round_trips_with_enum_members_and_signed_fields():
    got = PayloadCodec(NESTED, nested=True).unpack(NESTED_BITS)
    assert got == NESTED_VALUE
    assert got["mode"] is Mode.SPARSE and got["op"] is Op.SUB
    assert got["sub"]["s"] == -2


def test_array_of_structs():
    codec = PayloadCodec(ARRAY_OF_STRUCTS, nested=True)
    assert codec.pack(ARRAY_VALUE) == ARRAY_BITS
    assert codec.unpack(ARRAY_BITS) == ARRAY_VALUE
    assert PayloadCodec(ARRAY_OF_STRUCTS).unpack(ARRAY_BITS) == ARRAY_BITS  # flat: the raw word


def test_flat_unpack_keeps_top_level_fields_as_unsigned_bits():
    # What the block testbenches compare against: sub-layouts and signed fields as raw bits.
    got = PayloadCodec(NESTED).unpack(NESTED_BITS)
    assert got == {"a": 5, "mode": 1, "arr": 1 | (6 << 3), "sub": 3 | (0b110 << 2), "op": 5}


def test_integer_stands_for_a_sub_layout_and_missing_fields_are_zero():
    codec = PayloadCodec(NESTED)
    assert codec.pack({"arr": 0b110_001}) == (1 << 7) | (6 << 10)
    assert codec.pack({"sub": 0b11111}) == 0b11111 << 13
    assert codec.pack({}) == 0


def test_plain_vector_and_raw_words_are_masked():
    assert PayloadCodec(8).pack(0x1FF) == 0xFF
    assert PayloadCodec(8).unpack(0x5A) == 0x5A
    assert PayloadCodec(NESTED).pack(-1) == (1 << 21) - 1


def test_union_layout():
    union = data.UnionLayout({"word": 6, "halves": data.ArrayLayout(3, 2)})
    assert PayloadCodec(union).pack({"halves": [5, 2]}) == 5 | (2 << 3)
    assert PayloadCodec(union, nested=True).unpack(0b010_101)["halves"] == [5, 2]


def test_bits_that_name_no_enum_member_stay_an_integer():
    got = PayloadCodec(NESTED, nested=True).unpack(7 << 4)  # mode field 7: not a Mode
    assert got["mode"] == 7 and not isinstance(got["mode"], Mode)
    assert got["op"] == 0  # no Op member has the value 0 either


def test_unknown_field_is_named():
    with pytest.raises(KeyError, match=r"payload has no fields \['mdoe'\]"):
        PayloadCodec(NESTED).pack({"mdoe": 1})
    with pytest.raises(KeyError, match=r"payload has no fields \['y'\]"):
        PayloadCodec(NESTED).pack({"sub": {"y": 1}})


def test_bad_layout_is_named():
    with pytest.raises(TypeError, match=r"PayloadCodec: layout='x' is not allowed"):
        PayloadCodec("x")
