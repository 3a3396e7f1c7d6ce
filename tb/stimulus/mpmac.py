"""Stimulus for the mixed-precision MAC: every precision pair, edge operands, malformed beats.

Plain Python (``random.Random``), shared by ``tests/test_mpmac_golden.py``,
``tests/test_mpmac_amaranth.py`` and the cocotb module ``tb/test_mpmac.py``. What the MAC must
make of it comes from ``golden.mpmac.stream_model``.
"""

from __future__ import annotations

import dataclasses
import random

from golden.mpmac import Beat, MpMacParams, dot_beats, value_range

__all__ = ["pairs", "edge_values", "pair_dots", "longest_dots", "malformed_stream"]


def pairs(params: MpMacParams) -> list[tuple[int, int]]:
    """Every ``(w_bits, a_bits)`` the instance takes: all up to the maxima, or just the maxima."""
    if not params.runtime_precision:
        return [(params.max_w_bits, params.max_a_bits)]
    return [(w, a) for w in range(1, params.max_w_bits + 1) for a in range(1, params.max_a_bits + 1)]


def edge_values(bits: int, signed: bool) -> list[int]:
    """Most negative (or zero), -1, 0, 1 and the largest value of ``bits`` bits, as they exist."""
    lo, hi = value_range(bits, signed)
    return sorted({v for v in (lo, -1, 0, 1, hi) if lo <= v <= hi})


def _random_dot(rng: random.Random, lanes: int, w: int, a: int, signed: bool, beats: int, edge: float):
    """Values of a dot product of ``beats * lanes`` elements; each operand is an edge value with
    probability ``edge``, otherwise uniform in its range."""
    w_lo, w_hi = value_range(w, True)
    a_lo, a_hi = value_range(a, signed)
    w_edges, a_edges = edge_values(w, True), edge_values(a, signed)
    n = beats * lanes
    ws = [rng.choice(w_edges) if rng.random() < edge else rng.randint(w_lo, w_hi) for _ in range(n)]
    xs = [rng.choice(a_edges) if rng.random() < edge else rng.randint(a_lo, a_hi) for _ in range(n)]
    return ws, xs


def pair_dots(params: MpMacParams, rng: random.Random, per_pair: int = 1, max_beats: int = 3) -> list[Beat]:
    """For every pair and both activation kinds: ``per_pair`` random dot products (1 to
    ``max_beats`` beats, a third of the operands edge values), and one beat of extremes (the
    largest products of both signs in the lanes, then zeros)."""
    lanes = params.lanes
    out: list[Beat] = []
    longest = max(1, min(max_beats, params.max_beats))
    for w, a in pairs(params):
        w_lo, w_hi = value_range(w, True)
        for signed in (False, True):
            a_lo, a_hi = value_range(a, signed)
            for _ in range(per_pair):
                ws, xs = _random_dot(rng, lanes, w, a, signed, rng.randint(1, longest), 0.35)
                out += dot_beats(ws, xs, w, a, signed, lanes)
            extremes = [(w_lo, a_lo), (w_lo, a_hi), (w_hi, a_hi), (w_hi, a_lo), (0, a_lo), (w_lo, 0)]
            ws = [extremes[lane % len(extremes)][0] for lane in range(lanes)]
            xs = [extremes[lane % len(extremes)][1] for lane in range(lanes)]
            out += dot_beats(ws, xs, w, a, signed, lanes)
    return out


#: longest dot product :func:`longest_dots` makes (an accumulator sized for more is tested with this many)
LONGEST_BEATS = 64


def longest_dots(params: MpMacParams) -> list[Beat]:
    """Dot products of ``max_beats`` beats (at most :data:`LONGEST_BEATS`) whose every product is
    the most negative (and then the most positive) one at the widest precision: where
    ``max_beats`` is within reach (the ``tiny`` preset: 4) the accumulator's width is exactly tested."""
    w, a = params.max_w_bits, params.max_a_bits
    w_lo, _ = value_range(w, True)
    n = min(params.max_beats, LONGEST_BEATS) * params.lanes
    out = dot_beats([w_lo] * n, [(1 << a) - 1] * n, w, a, False, params.lanes)          # most negative sum
    out += dot_beats([w_lo] * n, [-(1 << (a - 1))] * n, w, a, True, params.lanes)       # most positive
    return out


def _with(beat: Beat, **changes) -> Beat:
    return dataclasses.replace(beat, **changes)


def malformed_stream(params: MpMacParams, rng: random.Random, rounds: int = 1) -> list[Beat]:
    """Good dot products interleaved with every kind of bad one, for the error-recovery tests.

    Each round: for each kind below, a good dot product, then a bad one. Kinds: precision fields
    out of range (0, above the maximum, 15) on the first beat with and without ``last``; a later
    beat with another ``a_bits``, ``w_bits`` or ``a_signed`` (MIXED); a bit set above the
    precision in a weight or an activation (OPERAND), on the first and on a later beat; one beat
    more than ``max_beats`` (LENGTH); bad beats among the discarded ones (they count nothing).
    The stream ends with a good dot product, so the unit must have recovered.
    """
    lanes = params.lanes
    all_pairs = pairs(params)

    def good(beats_max: int = 3) -> list[Beat]:
        w, a = rng.choice(all_pairs)
        signed = rng.random() < 0.5
        ws, xs = _random_dot(rng, lanes, w, a, signed, rng.randint(1, max(1, min(beats_max, params.max_beats))), 0.3)
        return dot_beats(ws, xs, w, a, signed, lanes)

    def two_beat() -> list[Beat]:
        dot = good(1) if params.max_beats < 2 else []
        while len(dot) < 2 and params.max_beats >= 2:
            dot = good(3)
        return dot

    max_w, max_a = params.max_w_bits, params.max_a_bits
    out: list[Beat] = []
    for _ in range(rounds):
        kinds: list[list[Beat]] = []
        base = good(1)[0]
        # BITS on the first beat: alone (last) and opening beats that are then discarded
        kinds.append([_with(base, w_bits=0, last=True)])
        kinds.append([_with(base, a_bits=max_a + 1 if max_a < 8 else 15, last=False),
                      _with(base, w_bits=15, last=False), _with(base, last=True)])
        kinds.append([_with(base, w_bits=max_w + 1 if max_w < 8 else 9, last=True)])
        kinds.append([_with(base, a_bits=0, last=False), _with(base, last=True)])
        # OPERAND: a bit above the precision (only where the field has room above it)
        if base.w_bits < max_w:
            w = list(base.w)
            w[rng.randrange(lanes)] |= 1 << rng.randrange(base.w_bits, max_w)
            kinds.append([_with(base, w=tuple(w), last=True)])
        if base.a_bits < max_a:
            a = list(base.a)
            a[rng.randrange(lanes)] |= 1 << rng.randrange(base.a_bits, max_a)
            kinds.append([_with(base, a=tuple(a), last=False), _with(base, last=False), _with(base, last=True)])
        # MIXED and late OPERAND: on the second beat of a dot product of two or more
        dot = two_beat()
        if len(dot) >= 2:
            first, second = dot[0], dot[1]
            if params.runtime_precision:
                other_a = first.a_bits - 1 if first.a_bits > 1 else None
                if other_a is not None:  # a second beat of fewer activation bits: valid fields, wrong dot
                    kinds.append([first, _with(second, a=tuple(x & ((1 << other_a) - 1) for x in second.a),
                                               a_bits=other_a)] + dot[2:])
                other_w = first.w_bits - 1 if first.w_bits > 1 else None
                if other_w is not None:
                    kinds.append([first, _with(second, w=tuple(x & ((1 << other_w) - 1) for x in second.w),
                                               w_bits=other_w, last=True)])
            if not first.a_signed:  # unsigned patterns below 2**(a-1) are valid signed ones too
                half = (1 << (first.a_bits - 1)) - 1
                kinds.append([first, _with(second, a=tuple(x & half for x in second.a), a_signed=True)] + dot[2:])
            else:
                kinds.append([first, _with(second, a_signed=False)] + dot[2:])
            if first.w_bits < max_w:
                w = list(second.w)
                w[0] |= 1 << (max_w - 1)
                kinds.append([first, _with(second, w=tuple(w))] + dot[2:])
        # LENGTH: max_beats + 1 beats (bounded so that the tiny preset stays short)
        if params.max_beats <= 16:
            w, a = all_pairs[-1]
            ws, xs = _random_dot(rng, lanes, w, a, False, params.max_beats + 1, 0.3)
            kinds.append(dot_beats(ws, xs, w, a, False, lanes))
        for bad in kinds:
            out += good() + bad
    return out + good()
