"""Stimulus for the ECIM/MFEC unit: weight images and dot products, random, directed and real.

NumPy only (plus the unit's Amaranth layouts for the expected payloads), shared by the cocotb
module ``tb/test_ecim.py``, ``tests/test_ecim_amaranth.py`` and ``bench/ecim.py``. A dot
product is ``(rows, x)``: the weight rows of its groups and the inputs (``len(rows) * n``
bf16 patterns). What the unit must answer comes from ``golden.mfec`` (:func:`expected`).
"""

from __future__ import annotations

import numpy as np

from golden.bf16 import bf16_edge_values, f32_to_bf16
from golden.mfec import mfec_dot_detail, pad_to_groups
from hdl.ecim import EcimConfig, output_layout

__all__ = ["run_unit", "bf16_normal", "make_weights", "edge_dots", "make_dots", "normal_dots", "td3_dots",
           "expected", "expected_skipped", "group_beats", "write_beats"]


def bf16_normal(rng, shape, scale: float = 1.0, relu: bool = False) -> np.ndarray:
    """bf16 patterns of normal samples (mean 0, ``scale``), optionally through a ReLU."""
    x = rng.normal(0, scale, shape)
    return f32_to_bf16((np.maximum(x, 0) if relu else x).astype(np.float32))


def _wide_exponents(rng, shape, lo=1, hi=254):
    """bf16 patterns with random signs, mantissas and exponents in [lo, hi] (shift stress)."""
    e = rng.integers(lo, hi + 1, shape)
    return ((rng.integers(0, 2, shape) << 15) | (e << 7) | rng.integers(0, 128, shape)).astype(np.uint16)


def make_weights(cfg: EcimConfig, seed: int) -> np.ndarray:
    """A weight memory image (rows, n): realistic rows, wide-exponent rows, edge-value rows and
    an all-zero row, so every dot product mixes several kinds."""
    rng = np.random.default_rng(seed)
    rows, n = cfg.rows, cfg.n
    w = bf16_normal(rng, (rows, n), 0.08)
    kind = np.arange(rows) % 8
    w[kind == 1] = _wide_exponents(rng, (int((kind == 1).sum()), n))
    w[kind == 2] = _wide_exponents(rng, (int((kind == 2).sum()), n), 100, 154)
    edges = bf16_edge_values()
    w[kind == 3] = edges[rng.integers(0, len(edges), (int((kind == 3).sum()), n))]
    w[kind == 4] = np.where(rng.random((int((kind == 4).sum()), n)) < 0.5, 0, w[kind == 4])
    w[rows - 1] = 0  # an all-zero row: all-zero groups
    w[rows - 2] = 0x3F80  # all 1.0: the inputs themselves are the products (directed cases)
    w[rows - 3] = np.where(np.arange(n) % 2 == 0, 0x7F7F, 0x0080)  # max and min normal
    return w


def edge_dots(cfg: EcimConfig) -> list:
    """Directed dot products against the special rows of :func:`make_weights`: overflow,
    underflow, Inf/NaN rules, signed zeros, cancellation, all-zero groups and shifts around
    the width (16 + guard) of the aligner. Expected values come from golden, as always."""
    n, rows, g = cfg.n, cfg.rows, cfg.guard
    zero, ones, extremes = rows - 1, rows - 2, rows - 3

    def vec(*vals):
        v = np.zeros(n, dtype=np.uint16)
        v[:len(vals)] = vals[:n]
        return v

    def e(shift, frac=0x7F):  # 1.frac x 2^-shift
        return ((127 - shift) << 7) | frac

    cases = [
        ([ones], vec(*([0x7F7F] * n))),  # sum of maxima: overflow to +Inf
        ([ones], vec(*([0xFF7F] * n))),  # to -Inf
        ([extremes], vec(*([0x0080] * n))),  # max x min and min x min: the tiny ones drop out
        ([extremes], vec(0x0080, 0x0080)),  # 2^127 x 2^-126 = 2 and an underflowing product
        ([ones], vec(0x0080, 0x8080)),  # min normal - min normal: exact cancellation, +0
        ([ones], vec(0x0081, 0x8080)),  # a difference below the normal range: flushed to zero
        ([ones], vec(0x3F80, 0xBF80)),  # 1 - 1 = +0
        ([ones], vec(*([0x8000] * n))),  # only -0 products: -0
        ([zero], vec(0x3F80, 0xBF80)),  # zero weights: the product signs decide the zero's sign
        ([ones], vec(0x7F80, 0xFF80)),  # Inf - Inf: NaN
        ([ones], vec(0x7F80, 0x3F80)),  # +Inf
        ([zero], vec(0x7F80)),  # 0 x Inf: NaN
        ([ones], vec(0x7FC1, 0x3F80)),  # NaN with a payload: canonical NaN
        ([ones], vec(0x3F80, e(15 + g), e(16 + g), e(17 + g), e(14 + g, 0))),  # shifts around the width
        ([ones], vec(0x3F80, e(62), e(63), e(64), e(126))),  # saturated shifts
        ([ones, zero, ones], np.concatenate([vec(0x3F80), vec(0x4000), vec(0xBF80)])),  # all-zero group
        ([ones, ones], np.concatenate([vec(0x0100), vec(0x7E00)])),  # running max jumps up
        ([ones, ones], np.concatenate([vec(0x7E00, 0xFE00), vec(0x0100)])),  # big cancel, tiny rest
        # bf16 ties decided by the lowest guard bit (2^-(14+guard) of the largest product): 1 + 2^-8
        # is a tie, the bit rounds it up; (1 + 2^-7) + 2^-8 - the bit rounds down. Without the
        # bit both are ties to even and go the other way.
        ([ones], vec(0x3F80, 0x3B80, e(14 + g, 0))),
        ([ones], vec(0x3F81, 0x3B80, 0x8000 | e(14 + g, 0))),
        ([ones, ones], np.concatenate([vec(e(14 + g, 0)), vec(0x3F80, 0x3B80)])),  # via the accumulator shift
        ([ones, ones], np.concatenate([vec(0xBF80, 0xBB80), vec(0x8000 | e(14 + g, 0))])),  # negative, later group
    ]
    return [(r[:cfg.max_groups], x[:len(r[:cfg.max_groups]) * n]) for r, x in cases]


def _inputs(rng, n: int) -> np.ndarray:
    kind = rng.random()
    if kind < 0.45:  # ReLU activations: many exact zeros
        return bf16_normal(rng, n, relu=True)
    if kind < 0.6:
        return _wide_exponents(rng, n)
    if kind < 0.7:
        return _wide_exponents(rng, n, 110, 144)
    if kind < 0.75:
        edges = bf16_edge_values()
        return edges[rng.integers(0, len(edges), n)]
    if kind < 0.8:
        return np.where(rng.random(n) < 0.5, np.uint16(0x8000), np.uint16(0)).astype(np.uint16)  # +-0 only
    return bf16_normal(rng, n)


def make_dots(cfg: EcimConfig, count: int, seed: int, max_len: int | None = None):
    """``count`` dot products: (list of weight rows, inputs of length len(rows) * n)."""
    rng = np.random.default_rng(seed)
    max_len = max_len or min(cfg.max_groups, 6)
    dots = []
    for _ in range(count):
        g = int(rng.integers(1, max_len + 1))
        rows = [int(r) for r in rng.integers(0, cfg.rows, g)]
        x = np.concatenate([_inputs(rng, cfg.n) for _ in range(g)])
        dots.append((rows, x))
    return dots


def td3_dots(cfg: EcimConfig, seed: int, count: int):
    """Real TD3 dot products from the committed trace.

    Weight-side vectors come from the three training passes of every layer (rows of W for the
    forward pass, columns of W for the backward pass, columns of dy for the weight gradient);
    each is cut to at most ``min(max_groups, rows / 4)`` groups, stored in consecutive memory rows,
    and multiplied with several input-side vectors (rows of x, rows of dy, columns of x).
    Returns ``(weights, dots, description)``. A missing trace raises ``FileNotFoundError``
    (from ``golden.traces.load_trace``) and a trace without usable layers ``ValueError``: a test
    of real data must fail without it, not pass on stand-in data.
    """
    from golden.traces import iter_tensors, load_trace
    trace = load_trace()
    layers: dict = {}
    for name, kind, t in iter_tensors(trace, kinds=("W", "x", "dy")):
        layers.setdefault(name, {})[kind] = t
    sources = []
    for name, t in sorted(layers.items()):
        if "W" in t and "x" in t:
            sources.append((name, "fwd", t["W"], t["x"]))
            if "dy" in t:
                sources += [(name, "bwd", t["W"].T, t["dy"]), (name, "wgrad", t["dy"].T, t["x"].T)]
    if not sources:
        raise ValueError("the TD3 trace has no layer with both W and x")
    rng = np.random.default_rng(seed)
    n = cfg.n
    weights = np.zeros((cfg.rows, n), dtype=np.uint16)
    dots, used, names = [], 0, set()
    per_block = max(4, count // 4)
    # Interleave the passes (fwd, bwd, wgrad, fwd, ...) so that every load covers all three.
    by_pass = {p: [s for s in sources if s[1] == p] for p in ("fwd", "bwd", "wgrad")}
    order = []
    for rnd in range(max(len(v) for v in by_pass.values())):
        for p, items in by_pass.items():
            if items:
                order.append(items[int(rng.permutation(len(items))[rnd % len(items)])])
    for name, pname, left, right in order:
        a = pad_to_groups(left[int(rng.integers(0, left.shape[0]))], n)
        groups = a.size // n
        per = min(groups, cfg.max_groups, max(1, cfg.rows // 4))  # room for four sources
        if used + per > cfg.rows or len(dots) >= count:
            break
        g0 = int(rng.integers(0, groups - per + 1))
        weights[used:used + per] = a[g0 * n:(g0 + per) * n].reshape(per, n)
        for j in rng.choice(right.shape[0], size=min(right.shape[0], per_block), replace=False):
            b = pad_to_groups(right[int(j)], n)[g0 * n:(g0 + per) * n]
            dots.append((list(range(used, used + per)), b))
        used += per
        names.add(f"{name}:{pname}")
    return weights, dots[:count], ", ".join(sorted(names))


def expected(cfg: EcimConfig, weights: np.ndarray, dots) -> list[int]:
    """Golden output payloads of ``dots``, packed by :func:`hdl.ecim.output_layout`."""
    layout = output_layout(cfg)
    out = []
    for rows, x in dots:
        a = np.concatenate([weights[r] for r in rows])
        res = mfec_dot_detail(a, np.asarray(x, dtype=np.uint16), cfg.mfec)
        out.append(layout.const({"value": int(res.bits[0]), "err": int(res.err[0])}).as_bits())
    return out


def expected_skipped(cfg: EcimConfig, weights: np.ndarray, dots) -> int:
    """Multiplies skipped (zero or Inf/NaN products) over all groups of ``dots``."""
    total = 0
    for rows, x in dots:
        a = np.concatenate([weights[r] for r in rows])
        total += int(mfec_dot_detail(a, np.asarray(x, dtype=np.uint16), cfg.mfec).skipped[0])
    return total


def group_beats(cfg: EcimConfig, dots) -> list[dict]:
    """The ``i`` beats of ``dots``, as :func:`hdl.ecim.group_layout` values (dicts)."""
    beats = []
    for rows, x in dots:
        for g, r in enumerate(rows):
            beats.append({"b": [int(v) for v in x[g * cfg.n:(g + 1) * cfg.n]], "row": r,
                          "last": int(g == len(rows) - 1)})
    return beats


def write_beats(weights: np.ndarray) -> list[dict]:
    """The ``w`` beats that load ``weights``, as :func:`hdl.ecim.write_layout` values (dicts)."""
    return [{"row": r, "data": [int(v) for v in weights[r]]} for r in range(weights.shape[0])]


def normal_dots(cfg: EcimConfig, rng, count: int, groups: int) -> list:
    """``count`` dot products of ``groups`` random rows each (at most ``max_groups``) with
    normal bf16 inputs."""
    groups = min(groups, cfg.max_groups)
    return [([int(r) for r in rng.integers(0, cfg.rows, groups)], bf16_normal(rng, groups * cfg.n))
            for _ in range(count)]


def run_unit(cfg, weights, dots, *, want=None, gap_prob=0.0, stall_prob=0.0, seed=0, mid_writes=None):
    """Drive ``hdl.ecim.Ecim(cfg)`` in Amaranth's simulator. Load ``weights`` through ``w``, then stream ``dots`` through ``i`` with random gaps and
    drain ``o`` with random back-pressure, on a :class:`StreamBench`; every result is checked
    against ``want`` (output payloads; default: golden for ``weights``) by a scoreboard.

    ``mid_writes`` maps a dot index to ``(row, data)``: that write is offered from the cycle
    after the previous group is taken (with the dot's first group, when there are no input
    gaps), and must win: no group is taken in a cycle a write is offered.
    Returns the cycles from the first group offered to the last result, inclusive, and the
    ``skipped`` counter in the last result's cycle.
    """
    from hdl.ecim import Ecim  # the simulator and the component are needed here only
    from tb.amsim import Scoreboard, StreamBench, StreamSink, StreamSource

    dut = Ecim(cfg)
    beats = group_beats(cfg, dots)
    writes_before = {}  # group beat index -> the write offered before it
    first = 0
    for d, (rows, _) in enumerate(dots):
        if mid_writes and d in mid_writes:
            row, data = mid_writes[d]
            writes_before[first] = {"row": row, "data": [int(v) for v in data]}
        first += len(rows)
    bench = StreamBench(dut, seed=seed, max_cycles=40 * (len(beats) * cfg.group_cycles + weights.shape[0]) + 500)
    writes = StreamSource(bench, "w")
    groups = StreamSource(bench, "i", gap_prob=gap_prob)
    board = Scoreboard("ecim.o")
    sink = StreamSink(bench, "o", stall_prob=stall_prob, callback=board.receive, count=len(dots))
    writes.send_all(write_beats(weights))
    board.expect_all(sink.codec.unpack(w) for w in (expected(cfg, weights, dots) if want is None else want))
    skipped = bench.watch(dut.skipped)
    start = []

    def sequence(ctx, cycle: int) -> None:
        if not start:
            if not writes.idle:
                return
            start.append(cycle + 1)  # weights loaded: the groups follow from the next cycle
            groups.send_all(beats)
        if groups.sent in writes_before:
            writes.send(writes_before.pop(groups.sent))
        if ctx.get(dut.w.valid) and ctx.get(dut.i.valid):
            assert not ctx.get(dut.i.ready), f"a group overtook a waiting write in cycle {cycle}"

    bench.on_cycle(sequence)
    finish = bench.run(settle=10)  # 10 more cycles catch an extra result
    board.check_done(sink)
    return finish - start[0], skipped[finish - 1]
