"""The circ-fine stage trace (``tests/data/td3_halfcheetah_gstcf_stages.npz``) and the stimulus the
hardware tests build from it: circulant layers before the switch, element-masked dense layers
after it (the trained W with the pruned values as zeros, dW masked the same way), the PE array's
dense jobs on them and the element-sparse tiles the transposer gets. (The simulators run these
in tests/test_pe_array_cocotb.py, tests/test_transposer_cocotb.py and tests/test_emd_cocotb.py.)"""

import numpy as np
import pytest

from golden import bf16 as B
from golden import pe_array as PA
from golden.transpose import pack, transpose_packed, unpack
from golden.traces import GSTCF_TRACE, layer_names, load_trace, masked_layers, trace_meta
from tb.stimulus.pe_array import trace_jobs
from tb.stimulus.transposer import masked_tiles, masked_weights


@pytest.fixture(scope="module")
def trace():
    return load_trace(GSTCF_TRACE)


def test_stages_schema_and_masked_layers(trace):
    """Three stages of one circ-fine run in training order: before the switch l2 is circulant
    (k = 16), after it dense with exactly ``gst_smax`` of its values zero, and its dW zero
    there too (the golden model masks the gradient, as the host does after the chip's DENSE)."""
    meta = trace_meta(trace)
    stages = meta["stages"]
    runs = [meta["runs"][s] for s in stages]
    assert len(stages) == 3 and meta["trace_numerics"] == "bf16-exact"
    assert len({(r["method"], r["seed"], r["env"]) for r in runs}) == 1
    cfg = runs[0]["config"]
    assert cfg["gst_rule"] == "circ-fine" and cfg["compress"] == ["l2"] and cfg["block"] == 16
    switch = cfg["gst_switch"] * cfg["steps"]
    steps = [r["step"] for r in runs]
    assert steps == sorted(steps) and steps[0] < switch < steps[1]
    for stage in stages:
        for net in ("actor", "critic1", "critic2"):
            assert all(f"{stage}/{net}/{layer}" in layer_names(trace) for layer in ("l1", "l2", "l3"))
    assert [meta["layers"][f"{s}/actor/l2"]["mode"] for s in stages] == ["circ", "dense", "dense"]
    nets = ("actor", "critic1", "critic2")
    assert sorted(masked_layers(trace)) == sorted(f"{s}/{net}/l2" for s in stages[1:] for net in nets)
    for name in masked_layers(trace):
        w, dw = trace[f"{name}/W"], trace[f"{name}/dW"]
        zero = (w & 0x7FFF) == 0
        assert int(zero.sum()) == round(cfg["gst_smax"] * w.size), name  # kept values are the largest: never 0
        assert not np.any(dw[zero] & 0x7FFF), name
        x, dy = trace[f"{name}/x"], trace[f"{name}/dy"]
        rows = B.f32_round_to_bf16_bits(B.gemm(np.ascontiguousarray(dy[:, :4].T), x))  # 4 rows of dY^T X
        assert np.array_equal(dw[:4][~zero[:4]], rows[~zero[:4]]), name


def test_pe_array_runs_a_masked_layer_as_dense_gemms(trace):
    """The chip runs an element-masked layer with the dense commands: forward, input gradient
    and weight gradient of the late stage's l2 on the W with zeros, each equal to the golden
    product (dW before the host's mask)."""
    stage = trace_meta(trace)["stages"][-1]
    name = f"{stage}/actor/l2"
    jobs = dict(trace_jobs(trace, PA.ArrayShape(16, 16, 16), batch=4, methods=(stage,), layers=("l2",)))
    assert {f"{name}/{j}" for j in ("fwd", "dx", "dW")} <= set(jobs)
    w, x = trace[f"{name}/W"], trace[f"{name}/x"][:4]
    fwd = jobs[f"{name}/fwd"]
    assert fwd.mode == "dense"
    assert np.array_equal(fwd.result.view(np.uint32), B.gemm(w, np.ascontiguousarray(x.T)).view(np.uint32))
    a_loads = [word for sel, _, word in fwd.loads if sel == PA.LoadSel.A]
    assert a_loads == PA.a_words_dense(w, 16)


def test_transposer_gets_element_sparse_tiles(trace):
    """The masked layers go to the transposer as they are stored: tiles with few values, every
    one's transpose the transposed layer's tile."""
    weights = masked_weights()
    assert set(weights) == set(masked_layers(trace))
    tiles = masked_tiles(8, 40, seed=3)
    assert len(tiles) == 40 and masked_tiles(8, 40, seed=3)[5].tobytes() == tiles[5].tobytes()
    nnz = [int(np.count_nonzero(t)) for t in tiles]  # the pruned values are +0: not stored
    assert 0 < np.mean(nnz) < 0.25 * 64
    for name, w in weights.items():
        assert int(np.count_nonzero(w)) == int(np.count_nonzero(trace[f"{name}/W"] & 0x7FFF))
    for t in tiles:
        assert np.array_equal(unpack(transpose_packed(pack(t))), t.T)
    with pytest.raises(ValueError, match="no element-masked layer"):
        masked_weights(GSTCF_TRACE.with_name("td3_halfcheetah_trace.npz"))


def test_transposer_benchmark_streams_masked_layers_as_they_are(trace):
    """bench/transposer.py --trace: a circ-fine trace's masked layers are timed as recorded
    (method circ-fine at their own sparsity), not pruned again; a circ-prune trace has none."""
    from bench.transposer import build_streams
    from golden.traces import GSTCP_TRACE
    from hdl.transposer import TransposerConfig

    cfg = TransposerConfig.preset("tiny")
    _, meta, source = build_streams(cfg, quick=True, trace=GSTCF_TRACE)
    fine = {m["layer"]: m["sparsity"] for m in meta.values() if m["method"] == "circ-fine"}
    assert set(fine) == {name.replace("/", ".") for name in masked_layers(trace)}
    assert all(s == pytest.approx(trace_meta(trace)["runs"]["late"]["config"]["gst_smax"], abs=1e-4)
               for s in fine.values())
    assert not any(m["method"] == "circ-prune" for m in meta.values())
    assert not any(m["method"] == "magnitude" and m["layer"] in fine for m in meta.values())
    assert "element-masked layers as they are" in source
    _, meta_cp, _ = build_streams(cfg, quick=True, trace=GSTCP_TRACE)
    assert any(m["method"] == "circ-prune" for m in meta_cp.values())
    assert not any(m["method"] == "circ-fine" for m in meta_cp.values())


def _doc_rows(doc: str, heading: str, first_cells) -> list[list[str]]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / doc).read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in first_cells]


def test_traces_doc_table_says_what_the_file_holds(trace):
    """docs/traces.md's table of the circ-fine stage trace says what the file holds."""
    meta = trace_meta(trace)
    rows = _doc_rows("traces.md", "## Element-masked layers", meta["stages"])
    assert [r[0] for r in rows] == meta["stages"]
    for stage, checkpoint, step, update, last_eval, cr, mode, kept in rows:
        run = meta["runs"][stage]
        assert checkpoint == f"`{run['snapshot']}`"
        assert int(step.replace(",", "")) == run["step"] and int(update.replace(",", "")) == run["update"]
        assert round(run["last_eval"]) == int(last_eval.replace(",", ""))
        assert cr == f"{run['cr']:.4f}"
        assert mode == meta["layers"][f"{stage}/actor/l2"]["mode"]
        counts = [int(np.count_nonzero(trace[f"{stage}/{net}/l2/W"] & 0x7FFF)) for net in ("actor", "critic1", "critic2")]
        assert kept == " / ".join(f"{c:,}" for c in counts)


def test_results_doc_quotes_the_recorded_emd_figures(trace):
    """docs/results.md's EMD table of the circ-fine stage trace is bench/results/emd_stages_gstcf.json
    measured on this file."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    res = json.loads((root / "bench" / "results" / "emd_stages_gstcf.json").read_text())
    assert res["trace"] == "tests/data/td3_halfcheetah_gstcf_stages.npz"
    rows = _doc_rows("results.md", "## Post-switch element-masked layers: the circ-fine stage trace", res["stages"])
    meta = trace_meta(trace)
    assert [r[0] for r in rows] == meta["stages"]
    for stage, step, mode, emd_all, top3, entropy, w_masked, dw_masked in rows:
        kinds = res["stages"][stage]["kinds"]
        assert int(step.replace(",", "")) == meta["runs"][stage]["step"] == res["source"][stage]["step"]
        assert mode == meta["layers"][f"{stage}/actor/l2"]["mode"]
        assert [emd_all, top3, entropy] == [f"{kinds['all'][key]:.3f}" for key in ("emd", "top3", "entropy")]
        for cell, kind in ((w_masked, "W masked"), (dw_masked, "dW masked")):
            assert cell == (f"{kinds[kind]['emd']:.3f} / {kinds[kind]['top3']:.3f}" if kind in kinds else "-")
