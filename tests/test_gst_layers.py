"""GST layer math: finite differences, direct forms, bit-exactness against golden.bf16, schedules."""

import numpy as np
import pytest

from golden import bf16 as B
from golden import gst
from golden.td3 import Layer, Numerics, from_bits, gemm_exact, round_bf16, to_bits


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- fast kernels == spec

def test_round_bf16_matches_golden_on_edges_and_random():
    rng = _rng(1)
    x = (rng.standard_normal(50_000) * 10.0 ** rng.uniform(-45, 38, 50_000)).astype(np.float32)
    specials = B.bits_f32(np.array([1, 0x7FFFFF, 0x80000001, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF,
                                    0x3F808000, 0x3F818000, 0x7F800000, 0xFF800000, 0x7FC00001,
                                    0xFFFFFFFF, 0x00800000], dtype=np.uint32))
    x = np.concatenate([x, specials, B.bf16_to_f32(B.bf16_edge_values())]).astype(np.float32)
    for chunk in (x, x[:1000][np.isfinite(x[:1000])]):  # both the general and the fast path
        got = round_bf16(chunk).view(np.uint32)
        want = B.bf16_to_f32_bits(B.f32_to_bf16(chunk))
        assert np.array_equal(got, want)


@pytest.mark.parametrize("scale", [1.0, 1e-18, 1e-25, 1e30])
def test_gemm_exact_equals_golden_gemm(scale):
    rng = _rng(2)
    a = round_bf16((rng.standard_normal((9, 41)) * scale).astype(np.float32))
    b = round_bf16(rng.standard_normal((41, 7)).astype(np.float32))
    assert np.array_equal(gemm_exact(a, b).view(np.uint32), B.gemm(to_bits(a), to_bits(b)))


def test_gemm_exact_equals_golden_gemm_edge_values():
    rng = _rng(3)
    edges = B.bf16_edge_values()
    a, b = rng.choice(edges, (8, 30)), rng.choice(edges, (30, 8))
    assert np.array_equal(gemm_exact(from_bits(a), from_bits(b)).view(np.uint32), B.gemm(a, b))


# ----------------------------------------------------------------------------- circulant algebra

def test_circulant_expand_definition_and_projection():
    rng = _rng(4)
    p, q, k = 3, 2, 4
    v = rng.standard_normal((p, q, k))
    w = gst.circ_expand(v)
    for pi in range(p):
        for qi in range(q):
            for r in range(k):
                for c in range(k):
                    assert w[pi * k + r, qi * k + c] == v[pi, qi, (r - c) % k]
    assert np.allclose(gst.circ_project(w, k), v)
    # least squares: the residual of a random matrix is orthogonal to the circulant set
    g = rng.standard_normal((p * k, q * k))
    res = g - gst.circ_expand(gst.circ_project(g, k))
    for d in range(k):
        e = np.zeros((p, q, k))
        e[:, :, d] = 1
        assert abs(np.sum(res * gst.circ_expand(e))) < 1e-9


def test_direct_forms_equal_expanded_float64():
    rng = _rng(5)
    p, q, k, b = 4, 3, 8, 5
    v = rng.standard_normal((p, q, k))
    x = rng.standard_normal((b, q * k))
    dy = rng.standard_normal((b, p * k))
    w = gst.circ_expand(v)
    assert np.allclose(gst.circ_forward_direct(v, x), x @ w.T)
    assert np.allclose(gst.circ_input_grad_direct(v, dy), dy @ w)
    g = dy.T @ x  # the dense gradient; dv is the sum along each wrapped diagonal
    want = gst.circ_project(g, k) * k
    assert np.allclose(gst.circ_weight_grad_direct(dy, x, k), want)


def test_finite_differences_circulant_direct_forms():
    """dL/dv and dL/dx of L = sum(G * y), y = circ_forward_direct(v, x), by central differences."""
    rng = _rng(6)
    p, q, k, b = 2, 2, 4, 3
    v = rng.standard_normal((p, q, k))
    x = rng.standard_normal((b, q * k))
    g = rng.standard_normal((b, p * k))

    def loss(vv, xx):
        return float(np.sum(g * np.tanh(gst.circ_forward_direct(vv, xx))))

    y = gst.circ_forward_direct(v, x)
    dy = g * (1 - np.tanh(y) ** 2)
    dv = gst.circ_weight_grad_direct(dy, x, k)
    dx = gst.circ_input_grad_direct(v, dy)
    eps = 1e-6
    for idx in np.ndindex(v.shape):
        e = np.zeros_like(v)
        e[idx] = eps
        assert abs((loss(v + e, x) - loss(v - e, x)) / (2 * eps) - dv[idx]) < 1e-6
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        assert abs((loss(v, x + e) - loss(v, x - e)) / (2 * eps) - dx[idx]) < 1e-6


def _sparse_layer(rng):
    layer = Layer("l2", 13, 16, "circ", 4, rng)  # 13 inputs: padded to 16
    bitmap = np.ones((4, 4), dtype=bool)
    bitmap[0, 1] = bitmap[2, 3] = bitmap[3, 0] = False
    layer.to_sparse(bitmap)
    return layer


@pytest.mark.parametrize("mode", ["dense", "circ", "sparse", "gmp"])
def test_finite_differences_layer(mode):
    """The Layer class's gradients (fp32 numerics) against central differences of L = sum(G*y)."""
    rng = _rng(7)
    if mode == "sparse":
        layer = _sparse_layer(rng)
    else:
        layer = Layer("l2", 13, 16, "dense" if mode in ("dense", "gmp") else "circ", 4, rng)
        if mode == "gmp":
            layer.mask = gst.magnitude_mask(layer.W, 0.5).astype(np.float32)
        if mode == "circ":
            layer.bitmap[1, 2] = False
    num = Numerics("fp32")
    x = rng.standard_normal((5, 13)).astype(np.float32)
    g = rng.standard_normal((5, 16)).astype(np.float32)

    def loss(xx=x):
        layer.touch()
        y, _ = layer.forward(xx, num)
        return float(np.sum(g.astype(np.float64) * y))

    y, cache = layer.forward(x, num)
    dx, grads, _ = layer.backward(g, cache, num)
    eps = 0.25  # L is linear in every parameter: central differences are exact up to fp32 rounding
    for name in layer.param_names():
        p = layer.param(name)
        mask = layer.update_mask(name)
        for idx in list(np.ndindex(p.shape))[::3]:
            old = p[idx]
            p[idx] = old + eps
            lp = loss()
            p[idx] = old - eps
            lm = loss()
            p[idx] = old
            fd = (lp - lm) / (2 * eps)
            if mask is not None and not np.broadcast_to(mask, p.shape)[idx]:
                fd = 0.0  # pruned: no gradient by construction
            assert abs(fd - grads[name][idx]) < 1e-3 * (1 + abs(fd)), (name, idx)
    for idx in list(np.ndindex(x.shape))[::2]:
        e = np.zeros_like(x)
        e[idx] = eps
        fd = (loss(x + e) - loss(x - e)) / (2 * eps)
        assert abs(fd - dx[idx]) < 1e-3 * (1 + abs(fd))


# ----------------------------------------------------------------------------- bit exactness

def _layers_circ_and_dense(rng, n_in=20, n_out=16, k=4):
    c = Layer("l2", n_in, n_out, "circ", k, rng)
    c.bitmap[1, 3] = False  # one pruned block too
    d = Layer("l2", n_in, n_out, "dense", k, rng)
    d.W = c.effective().copy()
    d.b = c.b.copy()
    return c, d


@pytest.mark.parametrize("mode", ["bf16", "bf16-exact"])
def test_circulant_equals_expanded_dense_bit_for_bit(mode):
    rng = _rng(8)
    c, d = _layers_circ_and_dense(rng)
    num = Numerics(mode)
    x = rng.standard_normal((6, 20)).astype(np.float32)
    dy = rng.standard_normal((6, 16)).astype(np.float32)
    yc, cc = c.forward(x, num)
    yd, cd = d.forward(x, num)
    assert np.array_equal(yc.view(np.uint32), yd.view(np.uint32))
    dxc, gc, _ = c.backward(dy, cc, num)
    dxd, gd, _ = d.backward(dy, cd, num)
    assert np.array_equal(dxc.view(np.uint32), dxd.view(np.uint32))
    # dv is the wrapped-diagonal sum of the dense gradient (equal up to accumulation order)
    dense_dw = np.pad(gd["W"], ((0, 0), (0, c.n_in_pad - c.n_in)))
    dv_from_dense = gst.circ_project(dense_dw.astype(np.float64), 4) * 4 * c.bitmap[:, :, None]
    assert np.allclose(gc["v"], dv_from_dense, rtol=2e-2, atol=1e-2)


def test_bf16_exact_layer_products_equal_golden_gemm():
    """Forward, input gradient and weight gradient of a layer in bf16-exact == golden.bf16.gemm."""
    rng = _rng(9)
    layer = Layer("l1", 24, 16, "dense", 8, rng)
    num = Numerics("bf16-exact")
    x = rng.standard_normal((10, 24)).astype(np.float32)
    dy = rng.standard_normal((10, 16)).astype(np.float32) * 1e-3
    y, cache = layer.forward(x, num)
    dx, grads, dyq = layer.backward(dy, cache, num)
    xb, wb, dyb = to_bits(cache[0]), to_bits(cache[1]), to_bits(dyq)
    acc = B.gemm(xb, wb.T)  # accumulation over the input index n, ascending
    want_y = B.fp32_add(acc, B.f32_bits(np.broadcast_to(layer.b, acc.shape)))
    assert np.array_equal(y.view(np.uint32), want_y)
    assert np.array_equal(dx.view(np.uint32), B.gemm(dyb, wb))  # over the output index m
    dw = B.f32_round_to_bf16_bits(B.gemm(dyb.T, xb))  # over the batch index b
    assert np.array_equal(to_bits(grads["W"]), dw)


def test_bf16_exact_sparse_layer_equals_pe_array_golden():
    """A group-sparse layer in bf16-exact skips pruned blocks exactly as the PE array does.

    The PE array's golden (``golden.pe_array``) sums an output row block over its kept blocks
    only, and leaves pruned weight-gradient blocks at -0. Adding pruned blocks as zero products
    would turn an exact -0 sum into +0, so the comparison includes a row block with no kept block
    and inputs that make products of exact zeros.
    """
    from golden import pe_array as PA

    rng = _rng(11)
    k = 4
    layer = Layer("l2", 16, 12, "circ", k, rng)
    bitmap = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool)
    layer.to_sparse(bitmap)
    # kept weights negative, pruned masters positive: a +0 input makes every kept product -0 and
    # every pruned one +0, so adding the pruned products would flip the exact-zero sums to +0
    kept = gst.block_expand(bitmap, k).astype(bool)
    layer.W = np.where(kept, -np.abs(layer.W), np.abs(layer.W)).astype(np.float32)
    layer.b = np.full(12, -0.0, np.float32)  # -0 + -0 keeps the sign visible after the bias
    layer.touch()
    num = Numerics("bf16-exact")
    x = np.maximum(rng.standard_normal((6, 16)), 0).astype(np.float32)  # ReLU zeros, like a hidden layer
    x[0] = 0.0
    dy = (rng.standard_normal((6, 12)) * 1e-2).astype(np.float32)
    dy[1] = 0.0
    y, cache = layer.forward(x, num)
    dx, grads, dyq = layer.backward(dy, cache, num)
    xb, wb, dyb = to_bits(cache[0]), to_bits(cache[1]), to_bits(dyq)
    acc = PA.gemm_sparse(wb, bitmap, xb.T, k).T
    assert np.any(acc == 0x80000000), "the stimulus must produce an exact -0 sum"
    assert np.any(y.view(np.uint32) == 0x80000000)
    want_y = B.fp32_add(acc, B.f32_bits(np.broadcast_to(layer.b, acc.shape)))
    assert np.array_equal(y.view(np.uint32), want_y)
    want_dx = PA.gemm_sparse(wb.T, bitmap.T, dyb.T, k).T
    assert np.any(want_dx == 0x80000000)
    assert np.array_equal(dx.view(np.uint32), want_dx)
    want_dw = B.f32_round_to_bf16_bits(PA.gemm_wgrad(dyb.T, xb, bitmap, k))
    assert np.array_equal(to_bits(grads["W"]), want_dw)


def test_gemm_exact_skips_products_it_is_told_to():
    """-0 + (+0) is +0: a skipped product must leave the -0 start value alone."""
    a = np.array([[0.0, 1.0]], np.float32)
    b = np.array([[5.0], [-0.0]], np.float32)  # products: +0 (skipped), -0
    kept = gemm_exact(a, b, keep=np.array([[False], [True]]))
    added = gemm_exact(a, b)
    assert kept.view(np.uint32)[0, 0] == 0x80000000
    assert added.view(np.uint32)[0, 0] == 0x00000000
    with pytest.raises(ValueError, match="keep has shape"):
        gemm_exact(a, b, keep=np.ones((1, 2), bool))


def test_bf16_exact_dv_equals_golden_dot_in_hardware_order():
    rng = _rng(10)
    k, b = 4, 3
    dy = round_bf16(rng.standard_normal((b, 2 * k)).astype(np.float32))
    x = round_bf16(rng.standard_normal((b, 3 * k)).astype(np.float32))
    dv = Numerics("bf16-exact").circ_dv(dy, x, k)
    for p in range(2):
        for q in range(3):
            for d in range(k):
                a = [dy[bb, p * k + r] for bb in range(b) for r in range(k)]
                c = [x[bb, q * k + (r - d) % k] for bb in range(b) for r in range(k)]
                want = B.dot(to_bits(np.array(a, np.float32)), to_bits(np.array(c, np.float32)))
                assert dv[p, q, d].view(np.uint32) == want


# ----------------------------------------------------------------------------- pruning and schedules

def test_cubic_schedule_formula():
    sf, t0, t1 = 0.9, 20_000, 80_000
    assert gst.cubic_sparsity(0, sf, t0, t1) == 0.0
    assert gst.cubic_sparsity(t0, sf, t0, t1) == 0.0
    assert gst.cubic_sparsity(t1, sf, t0, t1) == pytest.approx(sf)
    assert gst.cubic_sparsity(200_000, sf, t0, t1) == pytest.approx(sf)
    mid = gst.cubic_sparsity(50_000, sf, t0, t1)
    assert mid == pytest.approx(sf * (1 - 0.5 ** 3))  # s_f (1 - (1 - 1/2)^3)
    ts = np.linspace(t0, t1, 50)
    s = [gst.cubic_sparsity(t, sf, t0, t1) for t in ts]
    assert all(b >= a for a, b in zip(s, s[1:]))
    assert gst.cubic_sparsity(30_000, 0.8, t0, t1, s_init=0.2) == pytest.approx(0.8 + (0.2 - 0.8) * (1 - 1 / 6) ** 3)


def test_reward_aware_rule_on_scripted_returns():
    pol = gst.RewardAwareSparsity(ds=0.05, delta=0.05, s_min=0.0, s_max=0.2)
    rets = [100, 200, 195, 150, 210, 300, 300, 299, 100, 280]
    got = [pol.update(r) for r in rets]
    # holds if R >= best - 0.05 |best|: 100 h, 200 h, 195 h (>=190), 150 drop, 210 h, 300 h,
    # 300 h, 299 h (>= 285), 100 drop, 280 drop (< 285)
    assert got == [0.05, 0.1, 0.15, 0.1, 0.15, 0.2, 0.2, 0.2, 0.15, 0.1]
    assert [h for _, h, _ in pol.history] == [True, True, True, False, True, True, True, True, False, False]
    pol2 = gst.RewardAwareSparsity.from_state(pol.state())
    assert pol2.update(400) == pol.update(400) == 0.15
    low = gst.RewardAwareSparsity()
    assert [low.update(r) for r in (-10, -100)] == [0.05, 0.0]  # never below s_min


def test_masks_keep_the_requested_fraction():
    rng = _rng(11)
    w = rng.standard_normal((32, 48))
    m = gst.magnitude_mask(w, 0.75)
    assert m.sum() == 32 * 48 // 4
    assert np.abs(w[m]).min() >= np.abs(w[~m]).max()
    bm = gst.block_bitmap(w, 8, 0.5)
    assert bm.shape == (4, 6) and bm.sum() == 12
    norms = gst.block_norms(w, 8)
    assert norms[bm].min() >= norms[~bm].max()


def test_compression_accounting():
    rng = _rng(12)
    c = Layer("l2", 256, 256, "circ", 8, rng)
    assert c.stored_values() == 32 * 32 * 8 and c.dense_values() == 65536
    assert gst.compression_ratio(c.stored_values(), c.dense_values()) == pytest.approx(1 - 1 / 8)
    assert c.meta_bits() == 32 * 32
    s = _sparse_layer(rng)
    assert s.stored_values() == (16 - 3) * 16 - 3 * 0 - _padding_in_kept(s)


def _padding_in_kept(layer):
    emask = gst.block_expand(layer.bitmap, layer.k)
    return int(emask[:, layer.n_in:].sum())
