"""Stimulus for the EMD encoder and decoder tests: value mixes, hard groups, damaged streams.

Shared by ``tb/test_emd.py`` (cocotb), ``tests/test_emd_amaranth.py`` and
``tests/test_emd_golden.py``. Only inputs live here; the expected outputs come from
``golden.emd``.
"""

from __future__ import annotations

import numpy as np

from golden import emd
from golden.bf16 import f32_to_bf16

__all__ = ["mixed_values", "random_runs", "adversarial_groups", "sparse_tie_groups", "damaged_streams",
           "bad_streams"]


def mixed_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` bf16 patterns drawn value by value from four kinds: weights (40%), ReLU outputs
    (20%), masked gradients with +0 and -0 (25%) and arbitrary bit patterns (15%)."""
    kind = rng.random(n)
    weights = f32_to_bf16(rng.normal(0, 0.05, n))
    relu = f32_to_bf16(np.maximum(rng.normal(0, 1, n), 0))
    wild = rng.integers(0, 1 << 16, n).astype(np.uint16)
    masked = f32_to_bf16(rng.normal(0, 1e-3, n) * (rng.random(n) < 0.5))
    return np.where(kind < 0.4, weights, np.where(kind < 0.6, relu, np.where(kind < 0.85, masked, wild))).astype(np.uint16)


def random_runs(rng: np.random.Generator, n: int, group: int) -> np.ndarray:
    """Weights, ReLU activations, small gradients and arbitrary bit patterns, mixed in runs of
    up to ``4 * group`` values (so whole groups of one kind occur)."""
    out = []
    while sum(len(x) for x in out) < n:
        run = int(rng.integers(1, 4 * group))
        kind = rng.integers(0, 4)
        if kind == 0:
            x = f32_to_bf16(rng.normal(0, 0.05, run))
        elif kind == 1:
            x = f32_to_bf16(np.maximum(rng.normal(0, 1, run), 0))
        elif kind == 2:
            # Gradients, masked by a ReLU: the masked negatives become -0.
            x = f32_to_bf16(rng.normal(0, 1e-3, run) * rng.lognormal(0, 2, run) * (rng.random(run) < 0.6))
        else:
            x = rng.integers(0, 1 << 16, run).astype(np.uint16)
        out.append(x)
    return np.concatenate(out)[:n].astype(np.uint16)


def adversarial_groups(group: int) -> list[np.ndarray]:
    """One group of each hard case: zeros, escapes, range ends, NaN/Inf, lone values, extremes."""
    idx = np.arange(group)
    cases = [
        np.zeros(group),                                     # all +0: a sparse group
        np.full(group, 0x8000),                              # all -0: exponent 0, sign kept
        np.full(group, 0x0001),                              # subnormal patterns (exponent 0)
        np.where(idx % 2, 0x0080, 0x7F7F),                   # alternating min/max normal: all escapes
        np.where(idx % 2, 0x8080, 0xFF7F),
        np.full(group, 0x0080),                              # min exponent only
        np.full(group, 0x7F7F),                              # max finite exponent only
        np.where(idx % 3 == 0, 0x7FC0, np.where(idx % 3 == 1, 0xFF80, 0x7F81)),  # NaN, -Inf, sNaN
        np.where(idx == group // 2, 0x3F80, 0),              # a single non-zero among zeros
        np.where(idx == 0, 0x0080, 0x7F00),                  # one far-low escape
        np.where(idx % 2, 0, 0x7F80),                        # zeros and Inf
        np.where(idx % 2, 0x8000, 0x0000),                   # as many -0 as +0 (the tie picks +0)
        np.where(idx % 4 == 0, 0x0000, 0x8000),              # mostly -0: a sparse group of -0
        np.where(idx % 3 == 0, 0x8000, 0x3F80),              # -0 among equal values
        ((idx * 37) % 256) << 7 | (idx & 0x7F),              # every exponent step
    ]
    return [np.asarray(c, dtype=np.uint16) for c in cases]


def sparse_tie_groups(fmt: emd.EmdFormat, rng: np.random.Generator) -> list[np.ndarray]:
    """Full groups whose best sparse saving is exactly the sparse flags' cost (``G + 2`` bits):
    a tie, which must stay dense. One group per count of ``+0`` and ``-0`` that makes the tie,
    the zeros at random places among non-zero values. Formats where no count does (every
    preset: ``zero_dense_bits`` does not divide ``G + 2``) give an empty list; group 16 with
    ``delta_bits=2, escape_bits=0`` ties with a single zero."""
    z, target = fmt.zero_dense_bits, fmt.group + 2
    out = []
    for pos in range(fmt.group + 1):
        for neg in range(fmt.group + 1 - pos):
            if max(pos * z, neg * z, (pos + neg) * (z - 1)) != target:
                continue
            values = f32_to_bf16(rng.normal(0, 1, fmt.group))
            values[(values & 0x7FFF) == 0] = 0x3F80
            values[:pos] = 0x0000
            values[pos:pos + neg] = 0x8000
            out.append(rng.permutation(values).astype(np.uint16))
    return out


def damaged_streams(rng: np.random.Generator, fmt: emd.EmdFormat, word_bits: int, lanes: int,
                    count: int) -> list[list[int]]:
    """``count`` word streams, one in five of each kind: intact, a few bit flips, cut short, one
    extra word, random words. Values are whole beats of ``lanes``."""
    beats_per_group = fmt.group // lanes
    out = []
    for k in range(count):
        values = mixed_values(rng, lanes * int(rng.integers(1, 3 * beats_per_group)))
        words = emd.encode(values, fmt, word_bits)
        kind = k % 5
        if kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, len(words)))
                words[i] ^= 1 << int(rng.integers(0, word_bits))
        elif kind == 2 and len(words) > 1:
            words = words[: int(rng.integers(1, len(words)))]
        elif kind == 3:
            words = words + [int(rng.integers(0, 1 << 16))]
        elif kind == 4:
            words = [int(x) & ((1 << word_bits) - 1)
                     for x in rng.integers(0, 1 << 63, int(rng.integers(1, 6)), dtype=np.uint64)]
        out.append(words)
    return out


def bad_streams(rng: np.random.Generator, fmt: emd.EmdFormat, word_bits: int, lanes: int
                ) -> list[tuple[str, list[int]]]:
    """Named word streams with one fault each (truncated twice, exponent out of range, reserved
    zero mode, bad terminator, data after the end, dirty padding)."""
    good = random_runs(rng, 4 * fmt.group, fmt.group)
    bits = emd.encode_bits(good, fmt)
    words = emd.encode(good, fmt, word_bits)
    pack = lambda b: emd.bits_to_words(np.asarray(b, dtype=np.uint8), word_bits)  # noqa: E731
    out = []
    if len(words) > 1:
        out.append(("truncated", words[:-1]))                        # one word short
    # Cut inside the first group, from 9 + 3 * lanes bits on: the first cut that does not parse.
    # (The zero padding of the last word can still read as zero records and a terminator: with
    # 16 lanes and 256-bit words, the first 57 bits padded decode as a valid stream.)
    for cut in range(9 + 3 * lanes, len(bits)):
        early = pack(bits[:cut])
        try:
            emd.decode(early, fmt, word_bits, lanes=lanes)
        except emd.EmdFormatError:
            out.append(("truncated-early", early))
            break
    # A relative code that leaves the exponent range: base 255 and the top delta (> 0), or
    # base 1 and the bottom delta (< 0) when the window has no positive delta.
    mu, code = (255, fmt.window - 1) if fmt.hi > 0 else (1, 0)
    hdr = [0] + [(mu >> i) & 1 for i in range(8)]
    rec = [(code >> i) & 1 for i in range(fmt.delta_bits)] + [0] * 8
    out.append(("exponent-out-of-range", pack(hdr + rec * fmt.group + [0] * 20)))
    out.append(("reserved-zero-mode", pack([1] + [1, 0, 0, 0, 0, 0, 0, 1] + [1, 1] + [0] * (fmt.group + 40))))
    out.append(("bad-terminator", pack([1] + [0] * (8 + fmt.count_bits))))
    out.append(("data-after-end", words + [0x5A]))
    tail_bits = len(words) * word_bits - len(bits)
    if tail_bits:
        out.append(("dirty-padding", words[:-1] + [words[-1] | 1 << (word_bits - 1)]))
    return out
