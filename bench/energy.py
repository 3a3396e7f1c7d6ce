"""Energy per TD3 update and its ablations on the OmniDRL top (``golden.energy``).

Usage: ``python bench/energy.py`` (the machine-model runs come from bench/results/machine_runs/
when present, else they run, 1-2 min each, and are added to it; ``flows.run_cache``).

HalfCheetah-v5 networks, batch 256, one complete TD3 update (``golden.workloads``), on the
``default`` and ``paper`` presets (and ``tiny`` for the PE-array-size plot). Every figure is
events counted by the machine model (the top's counters, equal to the RTL's) times the energies
of ``golden/energy_table.toml``. Ablations, each a row:

* dense / GST circulant / GST group-sparse: three runs;
* EMD off: the same run with the EMD-coded external words replaced by their raw bf16 bits (EMD
  groups x G x 16, the length words gone) and no codec energy; cycles kept (two banks: the loads
  overlap compute);
* host transpose (group-sparse): no transposer; the host reads the kept blocks and writes them
  transposed through external memory (2 x tiles x k words), the chip then LOADs what the
  TRANSPOSE read;
* MFEC vs a conventional bf16 MAC: ``golden.mfec`` activity on the TD3 trace's dot products, as
  MAC-power and weight-memory-power ratios (ECIM: -14.4 % and -46.4 %).

Writes bench/results/energy.json and .md, energy_ablations.png and energy_vs_array.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, bench_parser, stamp, write_results  # noqa: E402
from flows.energy import (GATE_TOGGLES, PUBLISHED, RUN_CACHES, gate_note, mfec_figures, recorded_synthesis,  # noqa: E402
                          side_by_side)
from flows.run_cache import cached_run  # noqa: E402
from golden.energy import EnergyTableError, load_table, update_energy  # noqa: E402
from hdl.omnidrl import OmniDRLConfig  # noqa: E402

WORKLOADS = ("halfcheetah-dense", "halfcheetah-circ", "halfcheetah-sparse")
PRESETS = ("default", "paper")
HEADLINE = ("paper", "halfcheetah-sparse")  # the paper's chip trains with GST
TINY_B = OmniDRLConfig.parse_overrides(["pe_array.b_depth=16384"])


def _progress(msg):
    print(f"[energy] {msg}", flush=True)


def _row(name, preset, workload, e) -> dict:
    return {"ablation": name, "preset": preset, "workload": workload, "chip_uj": e["chip_j"] * 1e6,
            "total_uj": e["total_j"] * 1e6, "tflops_per_w_executed": e["tflops_per_w_executed"],
            "tflops_per_w_dense_equiv": e["tflops_per_w_dense_equiv"],
            "tflops_per_w_dense_equiv_system": e["tflops_per_w_dense_equiv_system"],
            "iterations_per_j": e["iterations_per_j"], "iterations_per_j_chip": e["iterations_per_j_chip"],
            "cycles": e["events"]["cycles"], "flops_per_s": e["flops_per_s"],
            "by_component_uj": {k: v * 1e6 for k, v in e["by_component"].items()}}


def ablations(cfg, preset, runs, table, area) -> tuple[list[dict], dict]:
    """The ablation rows of one preset, and the EMD memory-energy ratios per workload."""
    rows, emd_ratio = [], {}
    k = cfg.pe_array.block_size
    for workload in WORKLOADS:
        run = runs[workload]
        base = update_energy(cfg, run, table, area_ge=area)
        kind = workload.split("-")[1]
        label = {"dense": "dense", "circ": "GST circulant", "sparse": "GST group-sparse"}[kind]
        rows.append(_row(label, preset, workload, base))
        ev = base["events"]
        off = update_energy(cfg, run, table, area_ge=area, overrides={
            "external_bits_emd": ev["external_bits_emd_raw_equiv"], "emd_values": 0})
        rows.append(_row(f"{label}, EMD off", preset, workload, off))
        emd_ratio[workload] = base["by_component"]["external_memory"] / off["by_component"]["external_memory"]
        if ev["transposer_beats"]:
            tiles = ev["transposer_beats"] // k
            host = update_energy(cfg, run, table, area_ge=area, overrides={
                "transposer_beats": 0, "transposer_register_bits": 0,
                "extra_host_bits": 2 * tiles * k * 16 * k})
            rows.append(_row(f"{label}, host transpose", preset, workload, host))
    return rows, emd_ratio


def plot_ablations(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["by_component_uj"])
    fig, axes = plt.subplots(1, len(PRESETS), figsize=(14, 6), sharey=True)
    for ax, preset in zip(axes, PRESETS):
        sel = [r for r in rows if r["preset"] == preset]
        bottom = [0.0] * len(sel)
        cmap = plt.get_cmap("tab20")
        for i, n in enumerate(names):
            vals = [r["by_component_uj"][n] / 1e3 for r in sel]
            if not any(vals):
                continue
            ax.bar(range(len(sel)), vals, bottom=bottom, label=n, color=cmap(i))
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(sel)))
        ax.set_xticklabels([r["ablation"] for r in sel], rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{preset} preset ({OmniDRLConfig.preset(preset).pe_array.rows}^2 PEs)")
        ax.set_ylabel("mJ per TD3 update")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], fontsize=8, loc="center right")
    fig.suptitle("Energy per HalfCheetah TD3 update by component (golden.energy, counted events)")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_vs_array(points, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    pes = [p["pes"] for p in points]
    for key, label in [("tflops_per_w_dense_equiv", "TD3 update, dense-eq., on-chip"),
                       ("tflops_per_w_dense_equiv_system", "TD3 update, dense-eq., with external memory"),
                       ("peak_tflops_per_w", "peak (dense GEMM)"),
                       ("peak_tflops_per_w_dynamic_only", "peak, dynamic energy only")]:
        ax.plot(pes, [p[key] for p in points], "o-", label=label)
    for p in points:
        ax.annotate(p["preset"], (p["pes"], p["peak_tflops_per_w_dynamic_only"]), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("PEs (R x C)")
    ax.set_ylabel("TFLOPS/W")
    ax.set_title("Energy efficiency vs PE-array size (halfcheetah-dense)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--table", help="energy table (default golden/energy_table.toml)")
    ap.add_argument("--max-dots", type=int, default=1000, help="MFEC dot products per layer and pass (default 1000)")
    args = ap.parse_args(argv)
    if args.max_dots < 1:
        ap.error(f"--max-dots {args.max_dots} is not allowed: give a positive number of dot products")
    try:
        table = load_table(args.table)
    except EnergyTableError as exc:
        ap.error(f"--table: {exc}")
    rows, emd, by_preset, points = [], {}, {}, []
    for preset in ("tiny",) + PRESETS:
        # tiny's B buffer (1,024 words) is too small for HalfCheetah (16,384 words in layer 2 at k = 4)
        cfg = OmniDRLConfig.preset(preset, **TINY_B) if preset == "tiny" else OmniDRLConfig.preset(preset)
        synth = recorded_synthesis(cfg, preset)
        area = synth.get("logic_ge")
        names = ("halfcheetah-dense",) if preset == "tiny" else WORKLOADS
        runs = {w: cached_run(cfg, w, RUN_CACHES[:1], progress=_progress)[0] for w in names}
        dense = update_energy(cfg, runs["halfcheetah-dense"], table, area_ge=area)
        pk = dense["peak"]
        points.append({"preset": preset if preset != "tiny" else "tiny (b_depth 16384)", "pes": cfg.pe_array.rows * cfg.pe_array.cols,
                       "tflops_per_w_dense_equiv": dense["tflops_per_w_dense_equiv"],
                       "tflops_per_w_dense_equiv_system": dense["tflops_per_w_dense_equiv_system"],
                       "peak_tflops_per_w": pk["tflops_per_w"],
                       "peak_tflops_per_w_dynamic_only": pk["tflops_per_w_dynamic_only"], "peak_tflops": pk["tflops"],
                       "logic_area_source": synth.get("source", "linear model (golden.energy.logic_area_ge)")})
        if preset == "tiny":
            continue
        r, ratio = ablations(cfg, preset, runs, table, area)
        rows += r
        emd[preset] = ratio
        by_preset[preset] = {"cfg": cfg, "synth": synth, "runs": runs, "area": area,
                             "energy": {w: update_energy(cfg, runs[w], table, area_ge=area) for w in WORKLOADS}}
    _progress(f"MFEC activity on the TD3 trace (golden.mfec, {args.max_dots} dot products per layer and pass)")
    hp, hw = HEADLINE
    head = by_preset[hp]["energy"][hw]
    hcfg = by_preset[hp]["cfg"]
    mfec = mfec_figures(hcfg, table, args.max_dots, head["area_ge"]["logic"])
    gate, note = gate_note()
    gate_file = json.loads(GATE_TOGGLES.read_text()) if gate else None
    side = side_by_side(hcfg, head, by_preset[hp]["synth"], mfec, table)
    doc = {
        **stamp("energy", ("numpy", "matplotlib")),
        "setup": "HalfCheetah-v5 networks 17-256-256-6 / 23-256-256-1, batch 256, one complete TD3 update "
                 "(golden.workloads); events from the machine model's counters (equal to the RTL's); energies "
                 f"from {Path(table.path).name}; clock {table['clock']:.0f} MHz; headline = {hp} preset, {hw}",
        "headline": {"preset": hp, "workload": hw},
        "tflops_per_w_dense_equiv_halfcheetah": head["tflops_per_w_dense_equiv"],
        "tflops_per_w_executed_halfcheetah": head["tflops_per_w_executed"],
        "tflops_per_w_dense_equiv_halfcheetah_system": head["tflops_per_w_dense_equiv_system"],
        "peak_tflops_per_w": head["peak"]["tflops_per_w"],
        "peak_tflops": head["peak"]["tflops"],
        "iterations_per_j": head["iterations_per_j"],
        "iterations_per_j_chip": head["iterations_per_j_chip"],
        "mfec_mac_power_ratio": mfec["mac_power_ratio"],
        "mfec_memory_power_ratio": mfec["memory_power_ratio"],
        # The same MAC-power comparison measured on our own netlists (bench/gate_toggles.py): the
        # whole ECIM lane, and its mantissa engine alone (exponent macro black-boxed).
        **({k: gate_file[k] for k in ("mfec_mac_power_ratio_gate", "mfec_mac_power_ratio_gate_macro_blackboxed")}
           if gate_file else {}),
        "emd_memory_energy_ratio": emd["paper"]["halfcheetah-dense"],
        "emd_memory_energy_ratio_by_preset": emd,
        "mfec": mfec,
        "mac_energy_table_j": head["mac_energy_j"],
        "mac_energy_gate_j": gate["pe_mac_j"] if gate else None,
        "mac_energy_used": "table",
        "gate_calibration": gate, "gate_note": note,
        "published": PUBLISHED,
        "side_by_side": [dict(zip(("figure", "ours", "published", "note"), r)) for r in side],
        "ablations": rows,
        "vs_array_size": points,
        "presets": {p: {"clock_hz": v["energy"][WORKLOADS[0]]["clock_hz"],
                        "area_ge": v["energy"][WORKLOADS[0]]["area_ge"], "synthesis": v["synth"],
                        "runs": {w: {"cycles": r["cycles"], "counters": r["counters"], "host_flops": r["host_flops"]}
                                 for w, r in v["runs"].items()}}
                    for p, v in by_preset.items()},
    }
    plot_ablations(rows, RESULTS / "energy_ablations.png")
    plot_vs_array(points, RESULTS / "energy_vs_array.png")
    write_results("energy", doc, render_markdown(doc))
    print(render_markdown(doc))
    return 0


def render_markdown(d: dict) -> str:
    out = [f"Energy per HalfCheetah TD3 update ({d['date']}); {d['setup']}.", "",
           "| figure | ours | published | note |", "|---|---|---|---|"]
    out += [f"| {r['figure']} | {r['ours']} | {r['published']} | {r['note']} |" for r in d["side_by_side"]]
    out += ["", f"EMD external-memory energy ratio (on / off, halfcheetah-dense): "
            + ", ".join(f"{p} {v['halfcheetah-dense']:.3f}" for p, v in d["emd_memory_energy_ratio_by_preset"].items()),
            f"MFEC vs bf16 MAC: MAC power x{d['mfec_mac_power_ratio']:.3f}, weight-memory power "
            f"x{d['mfec_memory_power_ratio']:.3f} ({d['mfec']['activity']['dot_products']:,} dot products)",
            f"energy per MAC: table {d['mac_energy_table_j'] * 1e12:.3f} pJ (the model uses this); gate-level: "
            + (f"{d['mac_energy_gate_j'] * 1e12:.3f} pJ" if d["mac_energy_gate_j"] else "no calibration file"),
            d["gate_note"], "", "Ablations (energy per update):", "",
            "| preset | ablation | on-chip uJ | total uJ | TFLOPS/W dense-eq. (chip) | TFLOPS/W executed (chip) | "
            "TFLOPS/W dense-eq. (system) | iteration/J (system) | cycles |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {r['preset']} | {r['ablation']} | {r['chip_uj']:,.1f} | {r['total_uj']:,.1f} | "
            f"{r['tflops_per_w_dense_equiv']:.3f} | {r['tflops_per_w_executed']:.3f} | "
            f"{r['tflops_per_w_dense_equiv_system']:.4f} | {r['iterations_per_j']:.1f} | {r['cycles']:,} |"
            for r in d["ablations"]]
    out += ["", "By component (uJ per update):", ""]
    names = list(d["ablations"][0]["by_component_uj"])
    out += ["| preset | ablation | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    out += [f"| {r['preset']} | {r['ablation']} | " + " | ".join(f"{r['by_component_uj'][n]:,.1f}" for n in names) + " |"
            for r in d["ablations"]]
    out += ["", "Against PE-array size (halfcheetah-dense):", "",
            "| preset | PEs | TFLOPS/W dense-eq. (chip) | (system) | peak TFLOPS/W | peak, dynamic only | peak TFLOPS |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {p['preset']} | {p['pes']} | {p['tflops_per_w_dense_equiv']:.3f} | {p['tflops_per_w_dense_equiv_system']:.4f} | "
            f"{p['peak_tflops_per_w']:.3f} | {p['peak_tflops_per_w_dynamic_only']:.3f} | {p['peak_tflops']:.4f} |"
            for p in d["vs_array_size"]]
    out += ["", "![energy by component per ablation](energy_ablations.png)",
            "![energy efficiency vs PE-array size](energy_vs_array.png)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
