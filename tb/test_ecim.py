"""cocotb tests of the ECIM/MFEC unit (``hdl.ecim.Ecim``) against ``golden.mfec``.

Settings from the environment: ``OMNIDRL_CONFIG`` (the config JSON, set by the runner),
``ECIM_DOTS`` (random dot products per test, default 150) and ``ECIM_SEED``.

The stimulus helpers (:func:`make_weights`, :func:`edge_dots`, :func:`make_dots`,
:func:`td3_dots`, :func:`expected`) are plain NumPy and are shared with the Amaranth-simulator tests in
``tests/test_ecim_amaranth.py``.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np

from golden.bf16 import bf16_edge_values, f32_to_bf16
from golden.mfec import mfec_dot_detail
from hdl.ecim import EcimConfig, group_layout, output_layout, write_layout

CFG = EcimConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else EcimConfig.preset("tiny")


# -- stimulus (NumPy only) ------------------------------------------------------------------
def _wide_exponents(rng, shape, lo=1, hi=254):
    """bf16 patterns with random signs, mantissas and exponents in [lo, hi] (shift stress)."""
    e = rng.integers(lo, hi + 1, shape)
    return ((rng.integers(0, 2, shape) << 15) | (e << 7) | rng.integers(0, 128, shape)).astype(np.uint16)


def make_weights(cfg: EcimConfig, seed: int) -> np.ndarray:
    """A weight memory image (rows, n): realistic rows, wide-exponent rows, edge-value rows and
    an all-zero row, so every dot product mixes several kinds."""
    rng = np.random.default_rng(seed)
    rows, n = cfg.rows, cfg.n
    w = f32_to_bf16(rng.normal(0, 0.08, (rows, n)).astype(np.float32))
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
    ]
    return [(r[:cfg.max_groups], x[:len(r[:cfg.max_groups]) * n]) for r, x in cases]


def _inputs(rng, n: int) -> np.ndarray:
    kind = rng.random()
    if kind < 0.45:  # ReLU activations: many exact zeros
        return f32_to_bf16(np.maximum(rng.normal(0, 1, n), 0).astype(np.float32))
    if kind < 0.6:
        return _wide_exponents(rng, n)
    if kind < 0.7:
        return _wide_exponents(rng, n, 110, 144)
    if kind < 0.75:
        edges = bf16_edge_values()
        return edges[rng.integers(0, len(edges), n)]
    if kind < 0.8:
        return np.where(rng.random(n) < 0.5, np.uint16(0x8000), np.uint16(0)).astype(np.uint16)  # +-0 only
    return f32_to_bf16(rng.normal(0, 1, n).astype(np.float32))


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
    """Real TD3 dot products from the committed trace, when it is installed.

    Weight-side vectors come from the three training passes of every layer (rows of W for the
    forward pass, columns of W for the backward pass, columns of dy for the weight gradient);
    each is cut to at most ``min(max_groups, rows / 4)`` groups, stored in consecutive memory rows,
    and multiplied with several input-side vectors (rows of x, rows of dy, columns of x).
    Returns ``(weights, dots, description)``, or ``None`` when there is no trace.
    """
    try:
        from golden.traces import iter_tensors, load_trace
        trace = load_trace()
    except (ImportError, FileNotFoundError):
        return None
    from golden.mfec import pad_to_groups
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
        return None
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
    """Golden output payloads (``value | err << width``) of ``dots``."""
    out = []
    width = cfg.out_width
    for rows, x in dots:
        a = np.concatenate([weights[r] for r in rows])
        res = mfec_dot_detail(a, np.asarray(x, dtype=np.uint16), cfg.mfec)
        out.append(int(res.bits[0]) | (int(res.err[0]) << width))
    return out


def expected_skipped(cfg: EcimConfig, weights: np.ndarray, dots) -> int:
    """Multiplies skipped (zero or Inf/NaN products) over all groups of ``dots``."""
    total = 0
    for rows, x in dots:
        a = np.concatenate([weights[r] for r in rows])
        total += int(mfec_dot_detail(a, np.asarray(x, dtype=np.uint16), cfg.mfec).skipped[0])
    return total


def group_beats(cfg: EcimConfig, dots) -> list[dict]:
    beats = []
    for rows, x in dots:
        for g, r in enumerate(rows):
            beats.append({"b": [int(v) for v in x[g * cfg.n:(g + 1) * cfg.n]], "row": r,
                          "last": int(g == len(rows) - 1)})
    return beats


def write_beats(weights: np.ndarray) -> list[dict]:
    return [{"row": r, "data": [int(v) for v in weights[r]]} for r in range(weights.shape[0])]


# -- cocotb ------------------------------------------------------------------------------------
try:
    import cocotb
    from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - the helpers above stay importable without cocotb
    cocotb = None

if cocotb is not None:
    from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, reset, start_clock

    def _pack_array_fields(beat: dict, cfg: EcimConfig, key: str) -> dict:
        """PayloadCodec packs flat fields: fold an array field into one integer."""
        beat = dict(beat)
        beat[key] = sum(int(v) << (16 * i) for i, v in enumerate(beat[key]))
        return beat

    W_CODEC = PayloadCodec(write_layout(CFG))
    I_CODEC = PayloadCodec(group_layout(CFG))
    O_CODEC = PayloadCodec(output_layout(CFG).size)

    def _cmp(exp: int, got: int):
        return None if exp == got else f"expected 0x{exp:x}, got 0x{got:x}"

    async def _load(dut, weights, gap_prob: float, seed: int):
        src = StreamSource(dut, "w", W_CODEC, gap_prob=gap_prob, rng=random.Random(seed))
        for beat in write_beats(weights):
            src.send(_pack_array_fields(beat, CFG, "data"))
        await src.wait_idle(timeout_cycles=50 * weights.shape[0] + 100)
        await FallingEdge(dut.clk)
        _stop(src)
        dut.w__valid.value = 0

    def _stop(driver) -> None:
        # A later phase of the same test starts fresh drivers on the same port.
        driver.stop()

    async def _run(dut, weights, dots, *, gap_prob, stall_prob, seed, load=True):
        """Load ``weights``, stream ``dots`` with gaps and back-pressure, check every result.
        Returns the cycles from the first group to the last result."""
        if load:
            for port in (dut.w__valid, dut.i__valid, dut.o__ready):
                port.value = 0  # undriven valids would make the DUT's state X under Icarus
            start_clock(dut)
            await reset(dut)
            await _load(dut, weights, gap_prob, seed + 7)
        board = Scoreboard("ecim.o", _cmp)
        for e in expected(CFG, weights, dots):
            board.expect(e)
        sink = StreamSink(dut, "o", O_CODEC, stall_prob=stall_prob, rng=random.Random(seed + 1),
                          callback=board.receive)
        src = StreamSource(dut, "i", I_CODEC, gap_prob=gap_prob, rng=random.Random(seed))
        for beat in group_beats(CFG, dots):
            src.send(_pack_array_fields(beat, CFG, "b"))
        n_groups = sum(len(r) for r, _ in dots)
        cycles = 0
        limit = 4 * n_groups * (CFG.group_cycles + 2) * (1 + int(10 * max(gap_prob, stall_prob))) + 500
        while len(sink.received) < len(dots):
            await RisingEdge(dut.clk)
            cycles += 1
            assert cycles < limit, f"ECIM stopped making progress: {len(sink.received)} of {len(dots)} results"
        board.check_done(sink)
        await FallingEdge(dut.clk)
        _stop(src)
        _stop(sink)
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        return cycles

    @cocotb.test()
    async def random_dots_with_stalls(dut):
        """Random and edge-case dot products (zeros, all-zero groups, Inf/NaN, extreme
        exponents, maximal shifts) with random input gaps and output back-pressure."""
        seed = int(os.environ.get("ECIM_SEED", "2026"))
        weights = make_weights(CFG, seed)
        dots = edge_dots(CFG) + make_dots(CFG, int(os.environ.get("ECIM_DOTS", "150")), seed)
        cycles = await _run(dut, weights, dots, gap_prob=0.3, stall_prob=0.3, seed=seed)
        skipped = int(dut.skipped.value)
        assert skipped == expected_skipped(CFG, weights, dots), "skipped-multiply counter"
        assert int(dut.groups.value) == sum(len(r) for r, _ in dots), "group counter"
        dut._log.info("checked %d dot products in %d cycles (%d multiplies skipped)", len(dots), cycles, skipped)

    @cocotb.test()
    async def td3_dot_products(dut):
        """Real TD3 dot products (forward, backward, weight gradient) from the committed trace;
        ``ECIM_TD3_LOADS`` memory loads of different layers (default 1). Synthetic
        Gaussian/ReLU data when no trace is installed."""
        seed = int(os.environ.get("ECIM_SEED", "2026")) + 1
        count = int(os.environ.get("ECIM_DOTS", "150"))
        total = 0
        for load in range(int(os.environ.get("ECIM_TD3_LOADS", "1"))):
            real = td3_dots(CFG, seed + load, count)
            if real is None:
                dut._log.warning("no TD3 trace installed (golden.traces / tests/data): using synthetic data")
                rng = np.random.default_rng(seed)
                weights = f32_to_bf16(rng.normal(0, 0.06, (CFG.rows, CFG.n)).astype(np.float32))
                g = min(4, CFG.max_groups)
                dots = [(list(range(g0, g0 + g)), f32_to_bf16(np.maximum(rng.normal(0, 1, g * CFG.n), 0)
                                                              .astype(np.float32)))
                        for g0 in rng.integers(0, CFG.rows - g + 1, count)]
            else:
                weights, dots, source = real
                dut._log.info("TD3 trace, load %d: %s, %d dot products", load, source, len(dots))
            if load:
                await _load(dut, weights, 0.2, seed + load)  # the unit is idle: rewrite the memories
            await _run(dut, weights, dots, gap_prob=0.2, stall_prob=0.2, seed=seed + load, load=load == 0)
            total += len(dots)
        dut._log.info("checked %d TD3 dot products", total)

    @cocotb.test()
    async def overlap_cycle_count(dut):
        """At full rate the unit takes ``cfg.group_cycles`` per group (the MFEC overlap when
        ``overlap`` is on, exponent + mantissa cycles when it is off)."""
        rng = np.random.default_rng(5)
        weights = f32_to_bf16(rng.normal(0, 1, (CFG.rows, CFG.n)).astype(np.float32))
        n_groups = 40
        dots = [([int(r) for r in rng.integers(0, CFG.rows, 4)],
                 f32_to_bf16(rng.normal(0, 1, 4 * CFG.n).astype(np.float32))) for _ in range(n_groups // 4)]
        dots = [(r[:CFG.max_groups], x[:CFG.max_groups * CFG.n]) for r, x in dots]
        total = sum(len(r) for r, _ in dots)
        cycles = await _run(dut, weights, dots, gap_prob=0.0, stall_prob=0.0, seed=3)
        fill = CFG.exp_cycles + CFG.mant_cycles + 6
        assert cycles <= total * CFG.group_cycles + fill, f"{cycles} cycles for {total} groups"
        assert cycles >= total * CFG.group_cycles, f"{cycles} cycles for {total} groups: faster than the model?"
        dut._log.info("%d groups in %d cycles: %.2f cycles/group (model %d)", total, cycles, cycles / total,
                      CFG.group_cycles)

    @cocotb.test()
    async def too_long_flags_error_and_recovers(dut):
        """A dot product longer than max_groups gives err=1 and NaN; the next one is correct.
        Writes between dot products update the memories."""
        rng = np.random.default_rng(9)
        weights = f32_to_bf16(rng.normal(0, 1, (CFG.rows, CFG.n)).astype(np.float32))
        long_rows = [int(r) for r in rng.integers(0, CFG.rows, CFG.max_groups + 1)]
        dots = [(long_rows, f32_to_bf16(rng.normal(0, 1, len(long_rows) * CFG.n).astype(np.float32))),
                ([0, 1][:CFG.max_groups], f32_to_bf16(rng.normal(0, 1, min(2, CFG.max_groups) * CFG.n)
                                                      .astype(np.float32)))]
        await _run(dut, weights, dots, gap_prob=0.1, stall_prob=0.5, seed=4)
        assert expected(CFG, weights, dots[:1])[0] >> CFG.out_width == 1
        # Rewrite row 0 and check that the next dot product uses the new values.
        weights = weights.copy()
        weights[0] = f32_to_bf16(rng.normal(0, 4, CFG.n).astype(np.float32))
        await _load(dut, weights[:1], 0.0, 11)
        await _run(dut, weights, [([0], f32_to_bf16(rng.normal(0, 1, CFG.n).astype(np.float32)))],
                   gap_prob=0.0, stall_prob=0.0, seed=12, load=False)
