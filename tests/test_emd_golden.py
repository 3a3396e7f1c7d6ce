"""Tier 1: the golden EMD codec, the top-3 baseline and the entropy function."""

import numpy as np
import pytest

from golden import emd
from golden.bf16 import bf16_edge_values
from golden.codes import EmdDecoderError
from tb.stimulus.emd import mixed_values, sparse_tie_groups

FORMATS = [
    emd.DEFAULT,
    emd.SIMPLE,
    emd.EmdFormat(group=8, delta_bits=2, hi=1, escape_bits=2),
    emd.EmdFormat(group=16, delta_bits=5, hi=0, escape_bits=4),
    emd.EmdFormat(group=2, delta_bits=2, hi=2, escape_bits=1),
    emd.EmdFormat(group=256, delta_bits=4, hi=7, escape_bits=3, sparse=False),
]
ALL = np.arange(1 << 16, dtype=np.uint16)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.label())
def test_round_trip_every_pattern(fmt):
    """Every bf16 pattern (NaN, Inf, ±0, subnormals) in order and shuffled, plus trained-like data."""
    rng = np.random.default_rng(1)
    # All 65536 patterns once (shuffled: every group mixes exponents), the rest also as words.
    perm = rng.permutation(ALL)
    assert np.array_equal(emd.decode_bits(emd.encode_bits(perm, fmt), fmt), perm)
    for values in (mixed_values(rng, 3000), ALL[::97], bf16_edge_values(),
                   np.zeros(fmt.group * 3 + 1, np.uint16), np.full(fmt.group, 0x8000, np.uint16),
                   np.zeros(0, np.uint16)):
        bits = emd.encode_bits(values, fmt)
        assert bits.size == emd.encoded_bits(values, fmt) == emd.cost(values, fmt)["total"]
        words = emd.encode(values, fmt, 48)
        assert np.array_equal(emd.decode(words, fmt, 48), values)


# the worked examples of docs/formats.md are extracted and run by tests/test_formats_doc.py


def test_mean_mode_and_zero_mode():
    fmt = emd.EmdFormat(group=4, delta_bits=3, hi=2, escape_bits=2)
    groups = np.array([[0x3F80, 0x4000, 0x4000, 0x4080],   # exps 127,128,128,129 -> mean 128
                       [0x3F80, 0x3F00, 0, 0],             # round half up: (253+1)//2 = 127
                       [0x8000, 0x8000, 0x8000, 0x3F80],   # -0 only -> zero mode 1
                       [0x8000, 0x8000, 0, 0x3F80],        # both signs -> zero mode 2 (sign bits)
                       [0, 0, 0, 0]], np.uint16)           # no non-zero exponent -> mu 1
    mu, sparse, zmode = emd.group_stats(groups, fmt)
    assert mu.tolist() == [128, 127, 127, 127, 1]
    assert sparse.tolist() == [False, True, True, True, True]
    assert zmode.tolist() == [0, 0, 1, 2, 0]


@pytest.mark.parametrize("fmt", [emd.EmdFormat(group=16, delta_bits=2, hi=2, escape_bits=0),
                                 emd.EmdFormat(group=32, delta_bits=2, hi=1, escape_bits=0)], ids=lambda f: f.label())
def test_sparse_mode_tie_stays_dense(fmt):
    """Sparse mode only when strictly shorter: a group whose zeros save exactly the G + 2 bits
    of flags and zero mode stays dense; one more zero makes it sparse (G16: one zero saves 18
    bits; G32: a +0 and a -0 save 2 x 17 in the both-signs mode)."""
    rng = np.random.default_rng(12)
    ties = sparse_tie_groups(fmt, rng)
    assert ties, "the format has no tie"
    _, sparse, _ = emd.group_stats(np.array(ties), fmt)
    assert not sparse.any()
    more = [np.where(np.arange(fmt.group) == int(np.nonzero(t & 0x7FFF)[0][0]), 0, t).astype(np.uint16) for t in ties]
    _, sparse, _ = emd.group_stats(np.array(more), fmt)
    assert sparse.all()
    for values in ties + more:
        assert np.array_equal(emd.decode_bits(emd.encode_bits(values, fmt), fmt), values)


def test_top3_and_entropy():
    v = np.array([0x3F80] * 4 + [0x4000] * 2 + [0x4080] + [0x4100], np.uint16)  # exps 127x4,128x2,129,130
    t = emd.top3_bits(v)
    assert t["exponent"] == 24 + 2 * 8 + 8 * 1
    assert t["total"] == t["exponent"] + 8 * 8
    p = np.array([4, 2, 1, 1]) / 8
    assert emd.entropy_bits(v) == pytest.approx(float(-(p * np.log2(p)).sum()))


def _expect_error(bits_or_words, fmt, code, match="", word_bits=None, lanes=1):
    with pytest.raises(emd.EmdFormatError, match=match) as info:
        if word_bits is None:
            emd.decode_bits(np.asarray(bits_or_words, np.uint8), fmt)
        else:
            emd.decode(bits_or_words, fmt, word_bits, lanes=lanes)
    assert info.value.code == code


def test_corrupt_and_truncated_streams():
    """Each fault raises EmdFormatError with the cause the hardware puts on ``err_code``."""
    C = EmdDecoderError
    fmt = emd.DEFAULT
    rng = np.random.default_rng(3)
    bits = emd.encode_bits(mixed_values(rng, 200), fmt)
    for cut in (0, 5, 9, 40, bits.size - 1):
        _expect_error(bits[:cut], fmt, C.TRUNCATED, match="truncated")
    # Base 255 and the top delta of the window: exponent 255 + hi > 255.
    top = [(fmt.window - 1 >> i) & 1 for i in range(fmt.delta_bits)]
    _expect_error([0] + [1] * 8 + (top + [0] * 8) * fmt.group, fmt, C.BAD_CODE, match="corrupt")
    # Base 1 and the bottom delta of a window reaching below the base: exponent < 1.
    low = emd.EmdFormat(delta_bits=3, hi=2)
    _expect_error([0] + [1, 0, 0, 0, 0, 0, 0, 0] + [0] * 11 * low.group, low, C.BAD_CODE, match="corrupt")
    # A bad code is found before the end of a stream that is also cut short.
    _expect_error([0] + [1] * 8 + top, fmt, C.BAD_CODE, match="corrupt")
    _expect_error([1] + [0] * 8 + [0] * 10, fmt, C.BAD_HEADER, match="mode 1 and base 0")
    _expect_error([1] + [1, 0, 0, 0, 0, 0, 0, 1] + [1, 1] + [0] * 400, fmt, C.BAD_HEADER, match="reserved zero mode")
    words = emd.encode(mixed_values(rng, 64), fmt, 64)
    _expect_error(words + [0], fmt, C.TRAILING_DATA, match="after the terminator", word_bits=64)
    _expect_error(words[:-1] + [words[-1] | (1 << 63)], fmt, C.PADDING, match="padding", word_bits=64)
    # A partial group of 6 values: whole beats of 2 lanes, not of 4.
    ragged = emd.encode(mixed_values(rng, fmt.group + 6), fmt, 64)
    assert emd.decode(ragged, fmt, 64, lanes=2).size == fmt.group + 6
    _expect_error(ragged, fmt, C.RAGGED, match="whole number of 4-value beats", word_bits=64, lanes=4)


def test_format_validation_messages():
    with pytest.raises(ValueError, match=r"group=12 is not allowed; group must be a power of two"):
        emd.EmdFormat(group=12)
    with pytest.raises(ValueError, match=r"hi=7 is not allowed; hi must be an integer from 0 to 6"):
        emd.EmdFormat(delta_bits=3, hi=7)
