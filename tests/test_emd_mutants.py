"""golden/emd.py: the checks that mutation testing (bench/mutation.py) showed were missing.

The round trips of test_emd_golden.py pass for any change that the encoder and the decoder make
alike (a short escape reaching one exponent less, a zero mode constant), so here the fields of
small streams are written out by hand from docs/formats.md, and the parameter table, the error
messages' positions and the cost split are pinned.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from golden import emd
from golden.codes import EmdDecoderError
from tb.stimulus.emd import mixed_values

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
FIELDS = {"group": "G", "delta_bits": "D", "hi": "hi", "escape_bits": "E", "sparse": "S"}

# The worked example's format (G4, D2, window -1..+1, E2: short escapes x = 0..2 reach mu-2..mu-4).
G4 = emd.EmdFormat(group=4, delta_bits=2, hi=1, escape_bits=2)
NEG_ZEROS = [0x8000, 0x8000, 0x8000, 0x3F80]   # -0 only: sparse, zero mode 1, mu 127
ESCAPES = [0x4000, 0xBE81, 0x3D80, 0x4200]     # exponents 128, 125, 123, 132: mean 127, dense
SIGNED = [0x8000, 0x0000, 0x3F80, 0x8000]      # +0 and -0: sparse, zero mode 2 (flag and sign)


def kept_fields(values, fmt):
    vals, widths = emd.encode_fields(np.array(values, np.uint16), fmt)
    keep = widths > 0
    return list(zip(vals[keep].tolist(), widths[keep].tolist()))


def test_parameter_table_of_the_format_doc():
    """docs/formats.md's table (defaults, ranges) and its "simple" scheme are the config's (kills the
    default and range mutants of EmdFormat's fields and of SIMPLE)."""
    text = DOC.read_text()
    row = r"^\| `(\w+)`(?: \(`(\w+)`\))? \| [^|]+ \| ([^|]+) \| ([^|]+) \|$"  # | `G` (`group`) | meaning | range | default |
    found = [(m[2] or m[1], (m[3], m[4])) for m in re.finditer(row, text, re.M) if (m[2] or m[1]) in FIELDS]
    rows = dict(found)
    assert sorted(rows) == sorted(FIELDS) and len(found) == len(FIELDS)
    default = {name: (cell.strip() == "true") if name == "sparse" else int(cell.split()[0])
               for name, (_, cell) in rows.items()}
    assert emd.DEFAULT == emd.EmdFormat(**default) and default == {name: getattr(emd.DEFAULT, name) for name in FIELDS}
    assert emd.DEFAULT.label() == "G32-D2-hi2-E2-S"
    for name in ("delta_bits", "escape_bits"):
        lo, hi = map(int, re.fullmatch(r"(\d+)\.\.(\d+).*", rows[name][0].strip()).groups())
        emd.EmdFormat(**{name: lo, "hi": 0})
        emd.EmdFormat(**{name: hi, "hi": 0})
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ValueError, match=f"{name}={bad} is not allowed"):
                emd.EmdFormat(**{name: bad, "hi": 0})
    simple = re.search(r"The \"simple\" scheme of DESIGN.md is\s+`([^`]+)`", text)[1]
    want = {key: int(v) if v.isdigit() else v == "true" for key, v in (kv.split("=") for kv in simple.split(", "))}
    assert {short: getattr(emd.SIMPLE, name) for name, short in FIELDS.items()} == want
    assert emd.SIMPLE.label() == "G32-D3-hi3-E0-d"


def test_derived_widths():
    """From docs/formats.md: the short escape reaches 2**E - 2 exponents, a dense zero costs
    D + E + 8 + 8 bits, the longest record adds the sparse flag, the count field is clog2(G)."""
    fmt = emd.EmdFormat(delta_bits=3, hi=0, escape_bits=3)
    assert (fmt.short_max, fmt.zero_dense_bits, fmt.max_record_bits) == (6, 3 + 3 + 16, 1 + 3 + 3 + 16)
    assert emd.EmdFormat(escape_bits=1).short_max == 0
    assert emd.EmdFormat(sparse=False, delta_bits=4, hi=0, escape_bits=1).max_record_bits == 4 + 1 + 16
    assert [emd.EmdFormat(group=g).count_bits for g in (2, 4, 32, 256)] == [1, 2, 5, 8]


def test_escape_and_zero_mode_fields_by_hand():
    """Every kind of record, field by field (value, width) in stream order: a -0-only sparse group, a
    dense group with a window code, both short escapes' ends (x = 0 and x = short_max = 2) and a raw
    escape, the terminator with a partial group of one +0 (kills the short-escape bounds, the raw
    marker, ZMODE_NEG and the zero mask's -0 term)."""
    values = NEG_ZEROS + ESCAPES + [0x0000]
    assert kept_fields(values, G4) == [
        (1, 1), (127, 8), (1, 2),            # sparse, mu 127, zero mode 1 (-0 only)
        (0, 1), (0, 1), (0, 1),              # three -0: the flag alone
        (1, 1), (1, 2), (0, 8),              # 1.0: flag, d = 0 (code 1), sign/mantissa
        (0, 1), (127, 8),                    # dense, mu 127
        (2, 2), (0, 8),                      # 2.0: d = +1 (code 2)
        (3, 2), (0, 2), (0x81, 8),           # -0.2510: escape, x = 0 (exponent mu - 2), sign/mantissa 0x81
        (3, 2), (2, 2), (0, 8),              # 2**-4: escape, x = 2 (mu - 4)
        (3, 2), (3, 2), (132, 8), (0, 8),    # 32: escape, raw marker 3, raw exponent 132
        (0, 1), (0, 8), (1, 2),              # terminator, partial group of 1
        (1, 1), (1, 8), (0, 2), (0, 1),      # sparse, mu 1 (no non-zero exponent), zero mode 0, +0
    ]
    # the partial group of one value also decodes with decode_bits' default (one lane)
    assert emd.decode_bits(emd.encode_bits(values, G4), G4).tolist() == values


def test_one_bit_short_escape():
    """E = 1: the short escape reaches only x = 0 (kills `escape_bits > 0` -> `> 1`)."""
    fmt = emd.EmdFormat(group=2, delta_bits=2, hi=2, escape_bits=1)  # window 0..+2
    assert kept_fields([0x4000, 0x3F00], fmt) == [
        (0, 1), (127, 8),                    # dense, mu = (128 + 126 + 1) // 2
        (1, 2), (0, 8),                      # d = +1
        (3, 2), (0, 1), (0, 8),              # d = -1: escape, x = 0
        (0, 1), (0, 8), (0, 1),              # terminator, no partial group
    ]


def test_group_mode_choices_at_their_margins():
    """Zero modes and sparse mode by their savings (z = zero_dense_bits): 10 x +0 and one -0 in G32
    save 10 z = 200 with the flag alone but 11 (z - 1) = 209 with flag and sign, so mode 2; in G16
    with D2, E1 one zero saves z = 19 > G + 2 = 18, so sparse (kills `z - 1` -> `z - 2`,
    `G + 2` -> `G + 3` and zero_dense_bits' D - E)."""
    group = np.array([0x0000] * 10 + [0x8000] + [0x3F80] * 21, np.uint16)
    _, sparse, zmode = emd.group_stats(group[None, :], emd.DEFAULT)
    assert (sparse.tolist(), zmode.tolist()) == ([True], [2])
    one = np.array([[0x0000] + [0x3F80] * 15], np.uint16)
    _, sparse, zmode = emd.group_stats(one, emd.EmdFormat(group=16, delta_bits=2, hi=2, escape_bits=1))
    assert (sparse.tolist(), zmode.tolist()) == ([True], [0])


def test_words_defaults_and_wide_words():
    """encode/decode default to 64-bit words; a 128-bit word needs 16 bytes; one whole word after the
    terminator is trailing data (kills the word_bits defaults, nbytes and the `>= word_bits` test)."""
    rng = np.random.default_rng(41)
    values = mixed_values(rng, 300)
    assert emd.encode(values) == emd.encode(values, emd.DEFAULT, 64)
    assert emd.decode(emd.encode(values)).tolist() == values.tolist()
    assert emd.decode(emd.encode(values, emd.DEFAULT, 128), emd.DEFAULT, 128).tolist() == values.tolist()
    n = emd.encoded_bits(values)  # a word exactly as long as the stream: the terminator ends a word
    words = emd.encode(values, emd.DEFAULT, n)
    assert len(words) == 1
    with pytest.raises(emd.EmdFormatError, match=re.escape(f"emd: 1 whole word(s) of data after the terminator "
                                                           f"(bit {n})")) as info:
        emd.decode(words + [0], emd.DEFAULT, n)
    assert info.value.code == EmdDecoderError.TRAILING_DATA


def expect(bits, fmt, code, message):
    with pytest.raises(emd.EmdFormatError, match=re.escape(message)) as info:
        emd.decode_bits(np.array(bits, np.uint8), fmt)
    assert info.value.code == code


def test_error_messages_name_the_place():
    """The bit positions, group and value indices and counts in the decoder's messages (kills their
    offset mutants, the group index start and step, and the exponent bound 255)."""
    C = emd.EmdDecoderError
    bits = emd.encode_bits(np.array(NEG_ZEROS + ESCAPES, np.uint16), G4).tolist()
    expect(bits[:5], G4, C.TRUNCATED, "truncated at bit 1 while reading group 0 base (8 bits needed, 4 left)")
    # group 0 is 25 bits; group 1's header 9 and its first two records 10 + 12: value 6's code at bit 56
    expect(bits[:57], G4, C.TRUNCATED, "truncated at bit 56 while reading value 6 code (2 bits needed, 1 left)")
    # DEFAULT: terminator (9 bits) with a partial group of 1 (5 bits), whose header has base 0
    expect([0] * 9 + [1, 0, 0, 0, 0] + [0] * 9, emd.DEFAULT, C.BAD_HEADER, "group 0 at bit 14 has base exponent 0")
    expect([1] + [1, 0, 0, 0, 0, 0, 0, 1] + [1, 1] + [0] * 40, emd.DEFAULT, C.BAD_HEADER,
           "group 0 at bit 0 has the reserved zero mode 3")
    # base 255 and delta +1 (code 1 of DEFAULT's window 0..+2): exponent 256
    expect([0] + [1] * 8 + [1, 0], emd.DEFAULT, C.BAD_CODE, "value 0 decodes to exponent 256 from base 255")


def test_cost_splits_sign_mantissa_from_exponent_bits():
    """8 sign/mantissa bits per coded value plus the sign bit of each zero in a zero-mode-2 group;
    the rest is exponent (kills the cost accounting mutants). Total counted by hand: 25 + 63 + 28 bits
    of groups, 11 of terminator, 12 of the partial group."""
    values = np.array(NEG_ZEROS + ESCAPES + SIGNED + [0x0000], np.uint16)
    sm = 8 + 4 * 8 + (8 + 3) + 0
    assert emd.cost(values, G4) == {"values": 13, "total": 139, "exponent": 139 - sm, "sign_mantissa": sm}


def test_top3_with_two_misses():
    """Exponents 127 x3, 128 x2, 129 x2, 130, 131: the table holds 127, 128, 129 (ties: the smaller
    exponent first); two misses of 8 bits (kills `8 * miss` -> `8 / miss` and the sign/mantissa count)."""
    v = np.array([0x3F80] * 3 + [0x4000] * 2 + [0x4080] * 2 + [0x4100, 0x4180], np.uint16)
    assert emd.top3_bits(v) == {"values": 9, "total": 24 + 2 * 9 + 8 * 2 + 8 * 9, "exponent": 24 + 2 * 9 + 8 * 2,
                                "sign_mantissa": 8 * 9}
