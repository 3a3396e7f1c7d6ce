"""Tier 1: the EMD encoder at its sparse-mode tie, in Amaranth's simulator.

A group goes sparse only when that is strictly shorter (``golden.emd.group_stats``): the tie,
zeros saving exactly the ``G + 2`` bits of flags and zero mode, stays dense. No preset can
reach it (``zero_dense_bits`` does not divide ``G + 2`` there), so the formats here are made
for it: group 16 with ``delta_bits=2, escape_bits=0`` ties with one zero, group 32 with a
``+0`` and a ``-0``. The encoder's words must equal golden's, on both sides of the tie.
"""

import numpy as np
import pytest

from golden import emd
from hdl.emd import EmdEncoder, EmdEncoderConfig, words_layout
from tb.amsim import run_stream_test
from tb.stimulus.emd import sparse_tie_groups

FORMATS = [{"group": 16, "delta_bits": 2, "hi": 2, "escape_bits": 0},
           {"group": 32, "delta_bits": 2, "hi": 1, "escape_bits": 0}]


@pytest.mark.parametrize("fmt", FORMATS, ids=["g16-one-zero", "g32-both-signs"])
def test_encoder_keeps_a_tie_dense(fmt):
    cfg = EmdEncoderConfig(lanes=4, word_bits=32, fmt=fmt)
    rng = np.random.default_rng(13)
    ties = sparse_tie_groups(cfg.fmt, rng)
    assert ties, "the format has no tie"
    # Each tie, then the same group with one more zero (sparse), as separate streams.
    more = [np.where(np.arange(cfg.fmt.group) == int(np.nonzero(t & 0x7FFF)[0][0]), 0, t).astype(np.uint16)
            for t in ties]
    beats, expected = [], []
    layout = words_layout(cfg.word_bits)
    for values in ties + more:
        rows = values.reshape(-1, cfg.lanes)
        beats += [{"data": [int(v) for v in row], "last": int(k == len(rows) - 1)} for k, row in enumerate(rows)]
        words = emd.encode(values, cfg.fmt, cfg.word_bits)
        expected += [layout.const({"data": w, "last": int(k == len(words) - 1)}).as_bits() for k, w in enumerate(words)]
    got, _ = run_stream_test(EmdEncoder(cfg), beats, len(expected), gap_prob=0.2, stall_prob=0.2, seed=4)
    assert got == expected
