"""golden/mfec.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived tests/test_mfec.py. The rounding references are
computed here from the exact float64 sum (one RNE rounding, np.rint rounds half to even).
"""

import numpy as np
import pytest

from golden.config import ConfigError
from golden.mfec import (
    MfecParams, exponent_stage, mfec_dot, pad_to_groups, rel_error, split_groups, training_dot_operands,
)


def bf16(values) -> np.ndarray:
    """bf16 patterns of float values that are exactly representable."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0)
    return (bits >> 16).astype(np.uint16)


def rne_bf16_bits(v: np.ndarray) -> np.ndarray:
    """One round-to-nearest-even of float64 values (normal in bf16) to bf16 patterns."""
    m, e = np.frexp(v)
    y = np.ldexp(np.rint(np.ldexp(m, 8)), e - 8)  # 8 significant bits
    return (y.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def exact_sum(a, b) -> np.ndarray:
    f = lambda x: (np.asarray(x, np.uint32) << 16).view(np.float32).astype(np.float64)  # noqa: E731
    return (f(a) * f(b)).sum(axis=1)


def test_rounding_is_one_rne_of_the_exact_sum():
    # product exponents within 8 bits of each other: the 10 guard bits keep every product exactly
    rng = np.random.default_rng(5)
    d, k = 3000, 32
    sign = rng.integers(0, 2, (2, d, k)) << 15
    exp = rng.integers(123, 127, (2, d, k)) << 7
    man = rng.integers(0, 128, (2, d, k))
    a, b = (sign | exp | man).astype(np.uint16)
    ref = exact_sum(a, b)
    keep = ref != 0
    assert np.array_equal(mfec_dot(a, b)[keep], rne_bf16_bits(ref)[keep])
    fp32 = mfec_dot(a, b, MfecParams(out_format="fp32"))
    assert np.array_equal(fp32[keep], ref.astype(np.float32).view(np.uint32)[keep])


@pytest.mark.parametrize("a,want", [
    ([1.0, 2.0 ** -8], 0x3F80),                   # a tie: stays on the even 1.0
    ([1.0 + 2.0 ** -7, 2.0 ** -8], 0x3F82),       # a tie: up to the even neighbour
    ([1.0 + 2.0 ** -7, 2.0 ** -8 + 2.0 ** -15], 0x3F82),  # above the tie
    ([1.9921875, 2.0 ** -8], 0x4000),             # a tie that rounds up and carries into the exponent
    ([-1.0, -(2.0 ** -8)], 0xBF80),               # negative: the sign is kept
    # after cancellation the sum is a few bits wide (one unit = 2**-24 here): 9 bits, a tie to even
    ([1.0, -1.0, 2.0 ** -16, 2.0 ** -24], 0x3780),
    ([1.0, -1.0, 2.0 ** -16, 2.0 ** -23, 2.0 ** -24], 0x3782),  # 9 bits, a tie up to the even neighbour
    ([1.0, -1.0, 2.0 ** -17, 2.0 ** -24], 0x3701),  # exactly 8 bits: nothing to round
])
def test_rounding_ties_and_carries(a, want):
    got = mfec_dot(bf16([a + [0.0] * (16 - len(a))]), bf16([[1.0] * len(a) + [0.0] * (16 - len(a))]))
    assert int(got[0]) == want


def test_results_below_the_normal_range_flush_to_signed_zero():
    tiny = [2.0 ** -70] + [0.0] * 15
    assert int(mfec_dot(bf16([tiny]), bf16([tiny]))[0]) == 0x0000
    assert int(mfec_dot(bf16([tiny]), bf16([[-(2.0 ** -70)] + [0.0] * 15]))[0]) == 0x8000
    # the boundary: 2**-127 flushes, 2**-126 is the smallest normal
    assert int(mfec_dot(bf16([tiny]), bf16([[2.0 ** -57] + [0.0] * 15]))[0]) == 0x0000
    assert int(mfec_dot(bf16([[2.0 ** -70 * (1 + 2.0 ** -7)] + [0.0] * 15]),
                        bf16([[2.0 ** -57] + [0.0] * 15]))[0]) == 0x0000
    assert int(mfec_dot(bf16([tiny]), bf16([[2.0 ** -56] + [0.0] * 15]))[0]) == 0x0080


def test_only_zero_products_report_no_running_exponent():
    from golden.mfec import mfec_dot_detail
    r = mfec_dot_detail(np.zeros((1, 16), np.uint16), bf16([[1.0] * 16]))
    assert int(r.s_run[0]) == -1 and int(r.bits[0]) == 0


def test_split_groups_rejects_bad_lengths():
    for shape, length in (((1, 0), 0), ((2, 24), 24), ((2, 3, 16), 16)):
        with pytest.raises(ValueError, match=f"dot-product length {length} is not allowed"):
            split_groups(np.zeros(shape, np.uint16), np.zeros(shape, np.uint16), 16)


def test_exponent_stage_of_one_group_without_history():
    # a 1-D group (axis -1 is its only axis); the second operand's 255 marks it special
    ex = exponent_stage(np.array([127, 127, 0]), np.array([127, 255, 127]), np.array(0), np.array(False))
    assert ex["special"].tolist() == [False, True, False] and bool(ex["has_g"]) and int(ex["gmax"]) == 254
    empty = exponent_stage(np.array([[0, 255]]), np.array([[127, 127]]), np.array([0]), np.array([False]))
    assert (int(empty["gmax"][0]), int(empty["s_new"][0]), int(empty["acc_shift"][0])) == (0, 0, 0)
    assert not empty["has_g"][0] and not empty["has_new"][0]


def test_params_ranges_and_accumulator_width():
    assert MfecParams().acc_width == 16 + 10 + 10 + 1
    assert MfecParams(n=2, guard=0, max_groups=1).acc_width == 16 + 0 + 1 + 1
    assert MfecParams(n=64, guard=16, max_groups=65536).acc_width == 55
    for changes in ({"n": 1}, {"n": 3}, {"n": 128}, {"guard": 17}, {"max_groups": 0}, {"max_groups": 65537}):
        with pytest.raises(ConfigError):
            MfecParams(**changes)


def test_rel_error_values():
    one = bf16([1.0, 1.0, 1.0])
    got = rel_error(one, np.array([0.5, 0.0, np.inf]))
    assert got[0] == 1.0 and np.isnan(got[1]) and np.isnan(got[2])
    assert rel_error(one[:1], np.array([1.0])).tolist() == [0.0]
    assert rel_error(np.array([0x3F800000], np.uint32), np.array([2.0]), "fp32").tolist() == [0.5]


def test_pad_to_groups():
    x = np.arange(1, 11, dtype=np.uint16).reshape(2, 5)
    padded = pad_to_groups(x, 4)
    assert padded.shape == (2, 8) and np.array_equal(padded[:, :5], x) and not padded[:, 5:].any()
    assert pad_to_groups(padded, 4) is padded or np.array_equal(pad_to_groups(padded, 4), padded)
    assert pad_to_groups(np.ones(5, np.uint16), 4).tolist() == [1] * 5 + [0] * 3  # one vector


def test_training_dot_operands_pair_the_right_rows():
    w = np.arange(6, dtype=np.uint16).reshape(3, 2) + 1      # (M=3, N=2)
    x = np.arange(4, dtype=np.uint16).reshape(2, 2) + 10     # (B=2, N=2)
    dy = np.arange(6, dtype=np.uint16).reshape(2, 3) + 20    # (B=2, M=3)
    got = list(training_dot_operands({"l": {"W": w, "x": x, "dy": dy}}, 4, max_dots=100))
    assert [(g[0], g[1], g[4]) for g in got] == [("l", "fwd", 2), ("l", "bwd", 3), ("l", "wgrad", 2)]
    for (_, _, left, right, length), (lhs, rhs) in zip(got, [(w, x), (w.T, dy), (dy.T, x.T)]):
        assert left.shape == (lhs.shape[0] * rhs.shape[0], 4) and not left[:, length:].any()
        pairs = {(tuple(a[:length]), tuple(b[:length])) for a, b in zip(left, right)}
        assert pairs == {(tuple(p), tuple(q)) for p in lhs for q in rhs}
    limited = list(training_dot_operands({"l": {"W": w, "x": x}}, 4, max_dots=5))
    assert len(limited) == 1 and limited[0][2].shape == (5, 4)
    big = {"l": {"W": np.ones((50, 2), np.uint16), "x": np.arange(100, dtype=np.uint16).reshape(50, 2)}}
    default = list(training_dot_operands(big, 4))          # at most 2000 of the 2500 pairs, seed 0
    assert default[0][2].shape == (2000, 4)
    assert np.array_equal(default[0][3], list(training_dot_operands(big, 4, seed=0))[0][3])


def test_hardware_widths_are_the_smallest_that_fit():
    # hdl/ecim.py sizes its exponent and shift signals from these constants
    from golden.mfec import EXP_SUM_BITS, SHIFT_BITS, SHIFT_SAT
    largest_sum = 2 * 254                       # two finite 8-bit exponent fields
    assert (1 << (EXP_SUM_BITS - 1)) <= largest_sum < (1 << EXP_SUM_BITS)
    widest = MfecParams(n=64, guard=16, max_groups=65536).acc_width  # the widest operand a shift must clear
    assert SHIFT_SAT == (1 << SHIFT_BITS) - 1 and (1 << (SHIFT_BITS - 1)) - 1 < widest <= SHIFT_SAT
