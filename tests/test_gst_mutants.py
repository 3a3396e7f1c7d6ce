"""golden/gst.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived tests/test_gst_layers.py and
tests/test_pe_array_golden.py.
"""

import numpy as np
import pytest

from golden.gst import (
    RewardAwareSparsity, circ_project, circ_weight_grad_direct_exact, compression_ratio, cubic_sparsity,
    magnitude_mask,
)


def test_exact_weight_grad_of_negative_zeros_is_negative_zero():
    # the accumulator starts at -0.0, the identity of IEEE addition: a sum of -0.0 products stays -0.0
    k = 2
    dy = np.full((3, 2 * k), -1.0, dtype=np.float32)
    x = np.zeros((3, 2 * k), dtype=np.float32)
    dv = circ_weight_grad_direct_exact(dy, x, k, np.add)
    assert dv.shape == (2, 2, k) and np.all(dv == 0) and np.all(np.signbit(dv))


def test_circ_project_rejects_a_shape_off_the_block_grid():
    for shape in ((4, 6), (6, 4)):
        with pytest.raises(ValueError, match="is not a multiple of block size k=4"):
            circ_project(np.zeros(shape, dtype=np.float32), 4)


def test_full_sparsity_keeps_nothing():
    w = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    assert not magnitude_mask(w, 1.0).any()
    assert magnitude_mask(w, 0.5).tolist() == [[False, False, False], [True, True, True]]


def test_cubic_schedule_returns_the_end_points_exactly():
    # at t_start the formula would give 0.9 + (0.1 - 0.9) = 0.09999999999999998, not 0.1
    assert cubic_sparsity(10, 0.9, 10, 20, s_init=0.1) == 0.1
    assert cubic_sparsity(20, 0.9, 10, 20, s_init=0.1) == 0.9
    assert cubic_sparsity(15, 0.9, 10, 20, s_init=0.1) == pytest.approx(0.9 - 0.8 / 8)


def test_reward_aware_sparsity_defaults():
    rule = RewardAwareSparsity()
    for _ in range(30):  # a return that always holds: the target climbs by 0.05 and stops at 0.95
        rule.update(100.0)
    assert rule.s == 0.95
    assert rule.update(95.0) == 0.95        # exactly best - 5 %: still holds
    assert rule.update(94.0) == 0.9         # more than 5 % below the best: back off


def test_compression_ratio_of_nothing_is_zero():
    assert compression_ratio(0, 0) == 0.0 and compression_ratio(1, 4) == 0.75
