"""Benchmark of the sparse weight transposer: cycles per tile, whole TD3 layers, area.

Runs the generated Verilog on Verilator (cocotb test ``back_to_back_throughput`` with the tile
streams written here), back to back with no input gaps and no output back-pressure, and reads
the cycle of every tile's last output beat. Figures:

* cycles per tile against nnz, next to the bound ``ceil(nnz/lanes)`` and the dense tile x tile tile
  (a full tile through the same unit, measured in the same run: the baseline);
* ``avg_cycles_over_bound``: average over all TD3-layer tiles of (output interval of the tile
  minus ``ceil(nnz/lanes)``), i.e. the extra cycles per tile in steady state (the first tile's
  pipeline fill is left out; it is reported as latency);
* whole-layer transpose time for the TD3 (HalfCheetah, 256-256) actor and critic layers at 50,
  70 and 90% sparsity, unstructured magnitude pruning and GST k x k block pruning, as cycles
  and as speed-up over sending the same layer's tiles dense. W's tiles go in column by column,
  so that W^T comes out row-major over its tiles;
* a random-density stream (every tile a different density: the worst case for two banks);
* area in NAND2 gate equivalents from ``omnidrl synth`` (generic target).

Weights: the trained weights of the dense run in the committed TD3 trace
(``tests/data/td3_halfcheetah_trace.npz``: actor, critic1, critic2), pruned here to each
sparsity (the trace's GST layers are circulant and need no transposer); synthetic He-normal
weights if there is no trace. The JSON says which.

With ``--trace PATH`` (a stage trace, ``tests/data/td3_halfcheetah_gstcp_stages.npz``), the
layer streams come from that trace instead: every circulant layer with pruned blocks (rule
circ-prune) as it is, a block-sparse W (pruned k x k blocks not stored; pruning method
``circ-prune`` at the layer's own block sparsity), every element-masked layer (rule circ-fine
after its switch, ``tests/data/td3_halfcheetah_gstcf_stages.npz``) as it is (method
``circ-fine`` at its own sparsity), and its other dense layers pruned as above.
The chip itself reads a circulant layer's W^T from v (the CIRC command's transpose flag); the
figures say what moving such a W through the transposer, like a group-sparse one, costs.

Usage: ``python bench/transposer.py [--preset default] [--buffers 2 3] [--no-synth] [--quick]
[--trace PATH --results NAME]``. Writes ``bench/results/transposer.{json,md}`` (or NAME).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bench_parser, run_info, synth_records, td3_layer_sizes, write_results  # noqa: E402
from golden.bf16 import f32_to_bf16  # noqa: E402
from golden.gst import block_bitmap, block_expand, magnitude_mask  # noqa: E402
from golden.transpose import tile_matrix, transpose_matrix_tiles, value_beats  # noqa: E402
from hdl.transposer import TransposerConfig  # noqa: E402
from tb.stimulus.transposer import masked_weights, pruned_circulant_weights, random_dense_tile  # noqa: E402

SPARSITIES = (0.5, 0.7, 0.9)
GST_BLOCK = 8  # the block size of the project's TD3/GST config (trace meta "block": 8)


def td3_layers() -> dict[str, tuple[int, int]]:
    """Weight shapes (out, in) of the TD3 actor and one critic (HalfCheetah: obs 17, act 6)."""
    return {f"{net}.l{i}": (n_out, n_in) for net, sizes in td3_layer_sizes().items()
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))}


def layer_weights(seed: int = 0, trace: Path | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """float32 weights per layer: the trained dense-run weights of the committed trace (actor,
    critic1, critic2), else He-normal at the TD3 shapes; with ``trace``, the dense layers of
    every stage of that trace (``STAGE.NET.LAYER``)."""
    if trace is not None:
        from golden.bf16 import bf16_to_f32
        from golden.traces import iter_tensors, load_trace, masked_layers
        t = load_trace(trace)
        skip = set(masked_layers(t))  # pruned by the run already: streamed as they are
        ws = {name.replace("/", "."): np.asarray(bf16_to_f32(w), np.float32)
              for name, _, w in iter_tensors(t, kinds=("W",)) if f"{name}/v" not in t and name not in skip}
        return (f"trace {Path(trace).name} (dense layers pruned here; circulant layers with pruned blocks and "
                f"element-masked layers as they are)"), ws
    try:
        from golden.bf16 import bf16_to_f32
        from golden.traces import DEFAULT_TRACE, iter_tensors, load_trace
        ws = {name.split("/", 1)[1].replace("/", "."): np.asarray(bf16_to_f32(w), np.float32)
              for name, _, w in iter_tensors(load_trace(), kinds=("W",)) if name.startswith("dense/")}
        if ws:
            return f"trace {DEFAULT_TRACE.name} (dense run, trained weights, pruned here)", ws
    except FileNotFoundError:
        pass
    rng = np.random.default_rng(seed)
    return "synthetic (He-normal init, bf16)", {
        name: (rng.standard_normal(shape) * np.sqrt(2.0 / shape[1])).astype(np.float32)
        for name, shape in td3_layers().items()}


def pruned(w: np.ndarray, sparsity: float, method: str) -> np.ndarray:
    """bf16 patterns of ``w`` pruned to ``sparsity``: 'magnitude' (elements) or 'gst' (k x k blocks)."""
    if method == "magnitude":
        mask = magnitude_mask(w, sparsity)
    else:
        m, n = w.shape
        pm, pn = -(-m // GST_BLOCK) * GST_BLOCK, -(-n // GST_BLOCK) * GST_BLOCK
        pad = np.zeros((pm, pn), np.float32)
        pad[:m, :n] = w
        mask = block_expand(block_bitmap(pad, GST_BLOCK, sparsity), GST_BLOCK)[:m, :n]
    bits = np.asarray(f32_to_bf16(np.where(mask, w, 0).astype(np.float32)), np.uint16)
    return bits


def _layers_or_none(read, trace: Path) -> dict:
    """``read(trace)`` (masked_weights, pruned_circulant_weights), or {} for a trace that holds no
    such layer (they raise ValueError then)."""
    try:
        return read(trace)
    except ValueError:
        return {}


def build_streams(cfg: TransposerConfig, quick: bool, trace: Path | None = None) -> tuple[dict[str, np.ndarray], dict, str]:
    rng = np.random.default_rng(1)
    tile, N = cfg.tile, cfg.cells
    streams: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    reps = 6 if quick else 12
    step = max(1, N // (8 if quick else 32))
    for nnz in sorted(set(list(range(0, N + 1, step)) + [1, N])):
        streams[f"nnz_{nnz}"] = np.stack([random_dense_tile(rng, tile, nnz) for _ in range(reps)])
    # the dense baseline: full tiles (no zero in them) through the same unit
    streams["dense"] = rng.integers(1, 1 << 16, (reps, tile, tile)).astype(np.uint16)
    streams["random_density"] = np.stack([random_dense_tile(rng, tile, int(n))
                                          for n in rng.integers(0, N + 1, 60 if quick else 200)])
    source, weights = layer_weights(trace=trace)

    def add(method: str, sparsity: float, layer: str, w: np.ndarray, **extra) -> None:
        """One whole layer's stream: W's tiles column by column, so W^T comes out row-major."""
        tiles, grid = tile_matrix(w, tile)
        key = f"layer:{method}:{sparsity}:{layer}"
        streams[key] = np.stack(transpose_matrix_tiles(tiles, grid))
        meta[key] = {"method": method, "sparsity": sparsity, "layer": layer, "shape": list(w.shape),
                     "grid": list(grid), **extra}

    if trace is not None:
        for name, w in sorted(_layers_or_none(masked_weights, trace).items()):
            add("circ-fine", round(float(np.mean(w == 0)), 4), name.replace("/", "."), w)
        for name, (w, bm) in sorted(_layers_or_none(pruned_circulant_weights, trace).items()):
            add("circ-prune", round(1.0 - float(bm.mean()), 4), name.replace("/", "."), w,
                block=int(w.shape[0] // bm.shape[0]))
    for method in ("magnitude", "gst"):
        for s in SPARSITIES:
            for name, w in sorted(weights.items()):
                add(method, s, name, pruned(w, s, method))
    return streams, meta, source


def run_streams(cfg: TransposerConfig, streams: dict[str, np.ndarray]) -> dict:
    from tb.runner import run_cocotb
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "streams.npz"
        out = Path(tmp) / "out.json"
        np.savez(npz, **streams)
        run_cocotb(cfg, "verilator", testcase="back_to_back_throughput", tag="bench",
                   extra_env={"TP_THROUGHPUT_STREAMS": str(npz), "TP_THROUGHPUT_JSON": str(out)})
        return json.loads(out.read_text())["streams"]


AREA_METRICS = ("area", "flip_flops", "cells", "min_period", "fmax_estimate", "synth_time")


def synth_area(cfg: TransposerConfig) -> dict:
    """The generic-target figures of ``cfg``'s ``omnidrl synth`` report (synthesized when missing)."""
    return {metric: {"value": r["value"], "unit": r["unit"], "tool": f"{r['tool']} {r['tool_version']}"}
            for metric, r in synth_records(cfg, "generic").items() if metric in AREA_METRICS}


def _groups(layers: list[dict]) -> list[tuple[str, float]]:
    """The (pruning method, sparsity) pairs present, methods in a fixed order."""
    order = ("magnitude", "gst", "circ-prune", "circ-fine")
    return sorted({(e["method"], e["sparsity"]) for e in layers}, key=lambda g: (order.index(g[0]), g[1]))


def by_method(layers: list[dict]) -> dict:
    """Steady-state cycles over the bound per tile, by pruning method and sparsity."""
    out = {}
    for method in dict.fromkeys(m for m, _ in _groups(layers)):
        for s in (*sorted({e["sparsity"] for e in layers if e["method"] == method}), None):
            sel = [e for e in layers if e["method"] == method and (s is None or e["sparsity"] == s)]
            n = sum(e["tiles"] - 1 for e in sel)
            key = f"{method}" + ("" if s is None else f"@{s}")
            out[key] = sum(e["steady_cycles_over_bound_per_tile"] * (e["tiles"] - 1) for e in sel) / n
    return out


def summarize(cfg: TransposerConfig, res: dict, meta: dict) -> dict:
    lanes = cfg.lanes
    dense = res["dense"]
    dense_cycles = float(np.median(dense["intervals"]))
    sweep = []
    for key, r in res.items():
        if key.startswith("nnz_"):
            nnz = int(key[4:])
            sweep.append({"nnz": nnz, "bound": value_beats(nnz, lanes),
                          "median_cycles_per_tile": float(np.median(r["intervals"])),
                          "speedup_vs_dense": dense_cycles / float(np.median(r["intervals"]))})
    sweep.sort(key=lambda e: e["nnz"])
    layers = []
    over_all: list[float] = []
    for key, r in res.items():
        if not key.startswith("layer:"):
            continue
        nnz = r["nnz"]
        over_all += [iv - value_beats(n, lanes) for iv, n in zip(r["intervals"], nnz[1:])]
        total = r["first_last_cycle"] + r["span_cycles"]
        layers.append({**meta[key], "tiles": r["tiles"], "nnz": int(sum(nnz)),
                       "bound_cycles": int(sum(value_beats(n, lanes) for n in nnz)),
                       "cycles": int(total), "steady_cycles_over_bound_per_tile": r["avg_cycles_over_bound"],
                       "dense_cycles": dense_cycles * r["tiles"],
                       "speedup_vs_dense": dense_cycles * r["tiles"] / total})
    groups = []
    for method, s in _groups(layers):
        sel = [e for e in layers if e["method"] == method and e["sparsity"] == s]
        cyc = sum(e["cycles"] for e in sel)
        groups.append({"method": method, "sparsity": s, "tiles": sum(e["tiles"] for e in sel),
                       "nnz": sum(e["nnz"] for e in sel), "bound_cycles": sum(e["bound_cycles"] for e in sel),
                       "cycles": cyc, "dense_cycles": sum(e["dense_cycles"] for e in sel),
                       "speedup_vs_dense": sum(e["dense_cycles"] for e in sel) / cyc})
    rd = res["random_density"]
    return {
        "avg_cycles_over_bound": float(np.mean(over_all)),
        "median_cycles_over_bound": float(np.median(over_all)),
        "max_cycles_over_bound": float(np.max(over_all)),
        "random_density_avg_cycles_over_bound": rd["avg_cycles_over_bound"],
        "avg_cycles_over_bound_by_method": by_method(layers),
        "dense_tile_cycles": dense_cycles,
        "dense_tile_bound": cfg.max_value_beats,
        "latency_first_tile_cycles": {"dense": dense["first_last_cycle"]},
        "nnz_sweep": sweep, "td3_totals": groups, "td3_layers": layers,
    }


def markdown(cfgs: list[dict]) -> str:
    lines = []
    for c in cfgs:
        cfg, s = c["config"], c["summary"]
        lines += [f"### tile={cfg['tile']}, lanes={cfg['lanes']}, buffers={cfg['buffers']}", "",
                  f"- avg cycles per tile over ceil(nnz/lanes), TD3 layers back to back: "
                  f"**{s['avg_cycles_over_bound']:.3f}** (median {s['median_cycles_over_bound']:.0f}, "
                  f"max {s['max_cycles_over_bound']:.0f}); random-density stream: "
                  f"{s['random_density_avg_cycles_over_bound']:.3f}",
                  "- by pruning: " + ", ".join(f"{k} {v:.3f}" for k, v in s["avg_cycles_over_bound_by_method"].items()),
                  f"- dense {cfg['tile']}x{cfg['tile']} tile: {s['dense_tile_cycles']:.0f} cycles "
                  f"(bound {s['dense_tile_bound']})", ""]
        if c.get("area"):
            a = c["area"]
            lines += [f"- area: {a['area']['value']:,.0f} GE, {a['flip_flops']['value']:,} flip-flops, "
                      f"min period {a.get('min_period', {}).get('value', float('nan'))} ns ({a['area']['tool']})", ""]
        lines += ["| pruning | sparsity | tiles | nnz | bound (cycles) | measured (cycles) | dense tiles (cycles) | speed-up vs dense |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for g in s["td3_totals"]:
            lines.append(f"| {g['method']} | {g['sparsity']:.1%} | {g['tiles']} | {g['nnz']:,} | {g['bound_cycles']:,} | "
                         f"{g['cycles']:,} | {g['dense_cycles']:,.0f} | {g['speedup_vs_dense']:.2f}x |")
        lines += ["", "| nnz | ceil(nnz/lanes) | cycles/tile (median) | speed-up vs dense tile |",
                  "|---:|---:|---:|---:|"]
        for e in s["nnz_sweep"]:
            lines.append(f"| {e['nnz']} | {e['bound']} | {e['median_cycles_per_tile']:.0f} | {e['speedup_vs_dense']:.2f}x |")
        lines.append("")
    return "\n".join(lines)


MD_HEAD = "## Sparse weight transposer (bench/transposer.py)\n\n"


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--buffers", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--no-synth", action="store_true", help="skip the area figures")
    ap.add_argument("--quick", action="store_true", help="fewer tiles per nnz point")
    ap.add_argument("--trace", type=Path, help="layer streams from this (stage) trace: its circulant layers with "
                    "pruned blocks as they are, its dense layers pruned here")
    ap.add_argument("--results", default="transposer", help="name of the results in bench/results/ (default transposer)")
    args = ap.parse_args(argv)
    if not args.results.replace("_", "").isalnum():
        print(f"--results {args.results!r} is not allowed: give a name of letters, digits and '_'", file=sys.stderr)
        return 2
    if args.trace is not None and not args.trace.is_file():
        print(f"--trace {str(args.trace)!r} is not allowed: it is not an existing file", file=sys.stderr)
        return 2
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    base = TransposerConfig.preset(args.preset)
    runs = []
    for buffers in args.buffers:
        cfg = base.replace(buffers=buffers)
        streams, meta, source = build_streams(cfg, args.quick, args.trace)
        t0 = time.monotonic()
        res = run_streams(cfg, streams)
        summary = summarize(cfg, res, meta)
        area = None if args.no_synth else synth_area(cfg)
        runs.append({"config": cfg.to_dict(), "config_hash": cfg.config_hash(),
                     "weights": source, "summary": summary, "area": area,
                     "wall_s": round(time.monotonic() - t0, 1)})
        tag = f"transposer tile={cfg.tile} lanes={cfg.lanes} buffers={buffers}"
        print(f"{tag}: avg_cycles_over_bound {summary['avg_cycles_over_bound']:.3f} cycles/tile "
              f"(TD3 layers, {source}; target <= 2)")
        for k, v in summary["avg_cycles_over_bound_by_method"].items():
            print(f"{tag}: cycles over bound, {k}: {v:.3f}")
        print(f"{tag}: random-density stream {summary['random_density_avg_cycles_over_bound']:.3f} cycles/tile over bound")
        print(f"{tag}: dense tile {summary['dense_tile_cycles']:.0f} cycles (bound {summary['dense_tile_bound']})")
        for g in summary["td3_totals"]:
            print(f"{tag}: TD3 actor+critic {g['method']} {g['sparsity']:.0%}: {g['cycles']} cycles "
                  f"(bound {g['bound_cycles']}), {g['speedup_vs_dense']:.2f}x faster than dense tiles")
        if area:
            print(f"{tag}: area {area['area']['value']:,.0f} GE, {area['flip_flops']['value']} flip-flops")
    head = runs[0]
    result = {
        "benchmark": "transposer",
        "avg_cycles_over_bound": head["summary"]["avg_cycles_over_bound"],
        "avg_cycles_over_bound_definition": ("mean over the tiles of the TD3 layer streams (both pruning methods, "
                                             "50/70/90% sparsity) of (cycles between this tile's last output beat and "
                                             "the previous tile's) - ceil(nnz/lanes); back to back, no gaps, no "
                                             f"back-pressure; config tile={head['config']['tile']} "
                                             f"lanes={head['config']['lanes']} "
                                             f"buffers={head['config']['buffers']}"),
        "target_cycles_over_bound": 2,
        "runs": runs,
        **run_info(("amaranth", "cocotb", "verilator", "pyosys", "numpy"), tools={"icarus": ["iverilog", "-V"]}),
    }
    write_results(args.results, result, MD_HEAD + markdown(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
