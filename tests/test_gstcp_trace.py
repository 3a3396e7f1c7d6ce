"""The circ-prune stage trace (``tests/data/td3_halfcheetah_gstcp_stages.npz``) and the stimulus
the hardware tests build from it: its circulant layers with pruned blocks in golden bits, the PE
array's CIRC / DV jobs and the probe that tells added pruned products from skipped ones, and the
block-sparse W the transposer gets. (The simulators run these in tests/test_pe_array_cocotb.py,
tests/test_transposer_cocotb.py and tests/test_emd_cocotb.py.)"""

import numpy as np
import pytest

from golden import bf16 as B
from golden import pe_array as PA
from golden.gst import block_expand, circ_expand
from golden.transpose import pack, tile_matrix, transpose_matrix_tiles, transpose_packed, unpack, untile_matrix
from golden.traces import GSTCP_TRACE, layer_names, load_trace, trace_meta
from tb.stimulus.pe_array import pruned_circ_probe, pruned_window, sub_circulant, trace_jobs
from tb.stimulus.transposer import block_sparse_circulant, pruned_circulant_tiles, pruned_circulant_weights


@pytest.fixture(scope="module")
def trace():
    return load_trace(GSTCP_TRACE)


def test_stages_schema_and_pruned_blocks(trace):
    """Three stages of one circ-prune run in training order; l2 circulant with k = 16 and, at
    the last stage, pruned blocks: zero v words, zero blocks of W, dv of kept blocks in the
    hardware order (golden.pe_array DV), dW of dense layers bf16(gemm)."""
    meta = trace_meta(trace)
    stages = meta["stages"]
    runs = [meta["runs"][s] for s in stages]
    assert len(stages) == 3 and meta["trace_numerics"] == "bf16-exact"
    assert len({(r["method"], r["seed"], r["env"]) for r in runs}) == 1
    assert runs[0]["config"]["gst_rule"] == "circ-prune"
    assert [r["step"] for r in runs] == sorted(r["step"] for r in runs) and runs[0]["step"] < runs[-1]["step"]
    for stage in stages:
        for net in ("actor", "critic1", "critic2"):
            for layer in ("l1", "l2", "l3"):
                assert f"{stage}/{net}/{layer}" in layer_names(trace)
            assert meta["layers"][f"{stage}/{net}/l2"]["mode"] == "circ"
        name = f"{stage}/critic1/l3"
        assert np.array_equal(B.f32_round_to_bf16_bits(B.gemm(trace[f"{name}/dy"].T, trace[f"{name}/x"])),
                              trace[f"{name}/dW"])
    late = stages[-1]
    for net in ("actor", "critic1", "critic2"):
        name = f"{late}/{net}/l2"
        v, w, bm = trace[f"{name}/v"], trace[f"{name}/W"], trace[f"{name}/bitmap"].astype(bool)
        k = v.shape[2]
        assert k == 16 and not bm.all()
        assert not np.any(v[~bm] & 0x7FFF) and np.array_equal(circ_expand(v)[:, :w.shape[1]], w)
        x, dy, dv = trace[f"{name}/x"][:64], trace[f"{name}/dy"][:64], trace[f"{name}/dv"]
        # dv over the whole batch is slow in golden bits; check one pruned-row block row exactly
        p = int(np.flatnonzero(~bm.all(axis=1))[0])
        sub = PA.run("dv", np.ascontiguousarray(trace[f"{name}/dy"][:, p * k:(p + 1) * k].T),
                     trace[f"{name}/x"], k=k)
        want = B.f32_round_to_bf16_bits(sub).reshape(1, k, v.shape[1]).transpose(0, 2, 1)[0]
        assert np.array_equal(dv[p][bm[p]], want[bm[p]]) and not np.any(dv[p][~bm[p]] & 0x7FFF)
        assert x.shape[1] == w.shape[1] and dy.shape[1] == w.shape[0]


def _late_l2(trace, net="actor"):
    stage = trace_meta(trace)["stages"][-1]
    name = f"{stage}/{net}/l2"
    return name, trace[f"{name}/v"], trace[f"{name}/bitmap"], trace[f"{name}/x"][:4], trace[f"{name}/dy"][:4]


def test_probe_tells_added_pruned_products_from_skipped_ones(trace):
    """On the probe operands, CIRC (pruned blocks added as zero products) and the sparse mode
    (pruned blocks skipped) differ in the zeroed batch row exactly in the block rows (forward)
    or block columns (input gradient) that hold a pruned block: +0 against -0."""
    _, v, bm, x, dy = _late_l2(trace)
    k = v.shape[2]
    pv, px, pdy = pruned_circ_probe(v, bm, x, dy)
    keep = bm.astype(bool)
    assert not np.any(pv[~keep]) and np.all(pv[keep] & 0x8000)
    added = PA.run("circ", pv, np.ascontiguousarray(px.T), k=k)  # (M, B)
    skipped = PA.run("sparse", circ_expand(pv), np.ascontiguousarray(px.T), bitmap=keep.astype(np.uint8), k=k)
    differ = added.view(np.uint32) != skipped.view(np.uint32)
    rows_with_pruned = np.repeat(~keep.all(axis=1), k)
    assert np.array_equal(differ[:, 0], rows_with_pruned)
    # elsewhere only exact-zero sums can differ (all kept products zero there too)
    assert np.all(skipped.view(np.uint32)[:, 1:][differ[:, 1:]] == 0x80000000)
    assert np.all(added.view(np.uint32)[rows_with_pruned, 0] == 0)  # +0
    assert np.all(skipped.view(np.uint32)[rows_with_pruned, 0] == 0x80000000)  # -0
    added_t = PA.run("circ", pv, np.ascontiguousarray(pdy.T), k=k, transpose=True)
    skipped_t = PA.run("sparse", np.ascontiguousarray(circ_expand(pv).T), np.ascontiguousarray(pdy.T),
                       bitmap=np.ascontiguousarray(keep.T).astype(np.uint8), k=k)
    cols_with_pruned = np.repeat(~keep.all(axis=0), k)
    assert np.array_equal(added_t.view(np.uint32)[:, 0] != skipped_t.view(np.uint32)[:, 0], cols_with_pruned)
    with pytest.raises(ValueError, match="keeps every block"):
        pruned_circ_probe(v, np.ones_like(bm), x, dy)


def test_pe_array_trace_jobs_of_pruned_circulant_layers(trace):
    """At k = 16 the late stage's l2 runs as CIRC / CIRC^T / DV with the pruned blocks' v words
    loaded as the trace holds them (zeros), plus the probe; the DV job's kept blocks are the
    trace's dv. On the tiny array (k = 4) a window of the layer runs as dense GEMMs on the
    expanded W, probe included, and the dense result equals CIRC's (the contract)."""
    stage = trace_meta(trace)["stages"][-1]
    name, v, bm, x, dy = _late_l2(trace)
    jobs = dict(trace_jobs(trace, PA.ArrayShape(16, 16, 16), batch=4, methods=(stage,), layers=("l2",)))
    assert {f"{name}/{j}" for j in ("fwd-circ", "dx-circ", "dv", "fwd-circ-probe", "dx-circ-probe")} <= set(jobs)
    fwd = jobs[f"{name}/fwd-circ"]
    assert fwd.mode == "circ"
    assert np.array_equal(fwd.result.view(np.uint32), PA.run("circ", v, np.ascontiguousarray(x.T), k=16).view(np.uint32))
    # the A words are v's blocks, one word each: the pruned blocks' words are zeros (+-0 lanes)
    a_loads = [w for sel, _, w in fwd.loads if sel == PA.LoadSel.A]
    assert a_loads == PA.a_words_circ(v)
    zero_words = [all((w >> (16 * lane)) & 0x7FFF == 0 for lane in range(16)) for w in a_loads]
    assert sum(zero_words) == int((~bm.astype(bool)).sum())
    dv = jobs[f"{name}/dv"].result  # (P*k, Q): DV[p*k+d, q] = dv[p, q, d]
    got = B.f32_round_to_bf16_bits(dv).reshape(v.shape[0], 16, v.shape[1]).transpose(0, 2, 1)
    keep = bm.astype(bool)
    want = B.f32_round_to_bf16_bits(PA.run("dv", np.ascontiguousarray(dy.T), np.ascontiguousarray(x), k=16))
    assert np.array_equal(got, want.reshape(got.shape[0], 16, -1).transpose(0, 2, 1)) and keep.any()

    tiny = PA.ArrayShape(4, 4, 4)
    small = dict(trace_jobs(trace, tiny, batch=4, methods=(stage,), layers=("l2",), circ_blocks=4))
    assert {f"{name}/{j}" for j in ("fwd-circW", "dx-circW", "fwd-circW-probe", "dx-circW-probe")} <= set(small)
    wv, wbm, wx, wdy = pruned_window(v, bm, x, dy, 4)
    assert wv.shape == (4, 4, 16) and not wbm.all()
    assert small[f"{name}/fwd-circW"].mode == "dense"
    assert np.array_equal(small[f"{name}/fwd-circW"].result.view(np.uint32),
                          PA.run("circ", wv, np.ascontiguousarray(wx.T), k=16).view(np.uint32))
    pv, _, pdy = pruned_circ_probe(wv, wbm, wx, wdy)
    assert np.array_equal(small[f"{name}/dx-circW-probe"].result.view(np.uint32),
                          PA.run("circ", pv, np.ascontiguousarray(pdy.T), k=16, transpose=True).view(np.uint32))
    # the sub-circulant at the array's k: CIRC with the same pruned blocks, zero words loaded
    sv, sx, _ = sub_circulant(wv, wx, wdy, 4)
    assert np.array_equal(sv, wv[:, :, :4]) and np.array_equal(sx[:, :4], wx[:, :4])
    sub = small[f"{name}/k4/fwd-circ"]
    assert sub.mode == "circ" and [w for sel, _, w in sub.loads if sel == PA.LoadSel.A] == PA.a_words_circ(sv)
    assert {f"{name}/k4/{j}" for j in ("dx-circ", "dv", "fwd-circ-probe", "dx-circ-probe")} <= set(small)


def test_transposer_gets_a_block_sparse_w(trace):
    """The expanded W of a pruned circulant layer goes to the transposer as a group-sparse W:
    pruned blocks not stored (+0, though the trace's W holds signed zeros there), kept blocks
    as they are; transposing its tiles gives the expansion of the transposed layer (what the
    CIRC command's transpose flag reads from v), with the transposed bitmap."""
    name, v, bm, _, _ = _late_l2(trace)
    k = v.shape[2]
    w = block_sparse_circulant(v, bm)
    keep = block_expand(bm.astype(bool), k).astype(bool)
    assert np.any(trace[f"{name}/W"][~keep] == 0x8000), "the trace's W has -0 in pruned blocks"
    assert not np.any(w[~keep]) and np.array_equal(w[keep], trace[f"{name}/W"][keep])
    tiles, grid = tile_matrix(w, 16)
    out = [unpack(transpose_packed(pack(t))) for t in transpose_matrix_tiles(tiles, grid)]
    wt = untile_matrix(out, grid[::-1], w.shape[::-1])
    assert np.array_equal(wt, np.where(keep.T, PA.circ_operand(v, transpose=True), 0))
    assert set(pruned_circulant_weights()) >= {name}
    picked = pruned_circulant_tiles(4, 48, 1)
    assert len(picked) == 48 and any(not t.any() for t in picked) and any(t.all() for t in picked)


def test_docs_table_matches_the_trace(trace):
    """docs/traces.md's table of the circ-prune stage trace says what the file holds."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "traces.md").read_text()
    section = text.split("## Circulant layers with pruned blocks", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| stage")]
    meta = trace_meta(trace)
    assert [r[0] for r in rows] == meta["stages"]
    for stage, checkpoint, step, update, last_eval, cr, kept in rows:
        run = meta["runs"][stage]
        assert checkpoint == f"`{run['snapshot']}`"
        assert int(step.replace(",", "")) == run["step"] and int(update.replace(",", "")) == run["update"]
        assert round(run["last_eval"]) == int(last_eval.replace(",", ""))
        assert cr == f"{run['cr']:.4f}"
        assert kept == " / ".join(str(int(trace[f"{stage}/{net}/l2/bitmap"].sum()))
                                  for net in ("actor", "critic1", "critic2"))


def test_results_doc_quotes_the_recorded_emd_figures(trace):
    """docs/results.md's EMD table of the circ-prune stage trace is bench/results/emd_stages_gstcp.json
    measured on this file."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    res = json.loads((root / "bench" / "results" / "emd_stages_gstcp.json").read_text())
    assert res["trace"] == "tests/data/td3_halfcheetah_gstcp_stages.npz"
    text = (root / "docs" / "results.md").read_text()
    section = text.split("## Post-prune circulant layers: the circ-prune stage trace", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in res["stages"]]
    meta = trace_meta(trace)
    assert [r[0] for r in rows] == meta["stages"]
    for stage, step, cr, kept, emd_all, top3, entropy, v_kept, v_zeros in rows:
        kinds = res["stages"][stage]["kinds"]
        assert int(step.replace(",", "")) == meta["runs"][stage]["step"] == res["source"][stage]["step"]
        assert cr == f"{meta['runs'][stage]['cr']:.4f}" and int(kept) == int(trace[f"{stage}/actor/l2/bitmap"].sum())
        assert [emd_all, top3, entropy] == [f"{kinds['all'][key]:.3f}" for key in ("emd", "top3", "entropy")]
        assert v_kept == f"{kinds['v']['emd']:.3f} / {kinds['v']['top3']:.3f}"
        assert v_zeros == f"{kinds['v+zeros']['emd']:.3f} / {kinds['v+zeros']['top3']:.3f}"
