"""``omnidrl energy``: energy per TD3 update of a top, by component, beside the published figures.

The model is :mod:`golden.energy`; this module finds its inputs (a cached or fresh machine-model
run, the recorded synthesis area and critical path, the gate-level calibration file when the
toggles benchmark has written it) and prints. ``bench/energy.py`` uses the same helpers.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import run_cache

__all__ = ["RUN_CACHES", "GATE_TOGGLES", "PUBLISHED", "recorded_synthesis", "machine_run", "side_by_side",
           "format_report", "mfec_figures", "cmd_energy", "add_parser"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: Machine-model run folders (flows.run_cache): the committed runs first, new ones written to
#: the writable folder the sweep shares.
RUN_CACHES = (run_cache.COMMITTED, run_cache.LOCAL)
GATE_TOGGLES = RESULTS / "gate_toggles.json"

#: Published figures (research/perf_anchors.md, sections 4 and "Anchor figures").
PUBLISHED = {
    "omnidrl_tflops_per_w_td3": 7.16,      # VLSI 2021, HalfCheetah TD3, 28 nm (JSSC 2022: 7.42)
    "omnidrl_tflops_per_w_td3_jssc": 7.42,
    "omnidrl_peak_tflops_per_w": 29.3,
    "omnidrl_peak_tflops": 4.18,
    "omnidrl_area_mm2": 3.6 * 3.6,
    "adaptation_iterations_per_j": 10.3,
    "tx2_iterations_per_j": 10.3 / 3.9,    # the adaptation system is 3.9x a Jetson TX2
    "ecim_tflops_per_w": 13.7,
    "ecim_mac_power_change": -0.144,
    "ecim_memory_power_change": -0.464,
}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def recorded_synthesis(cfg, preset: str | None) -> dict:
    """Logic GE and critical path (ns) of a top from the recorded synthesis, or {} if none.

    tiny and default: the synthesized tops (``bench/results/top_td3.json``, ``area``); paper:
    the sum of the paper blocks (``bench/results/paper_synth.json``: pe_array with one bank,
    EMD decoder and encoder, transposer with 3 tile banks), its longest block path as the
    critical path (the issue, load and store units and counters are not in the sum).
    """
    from hdl.omnidrl import OmniDRLConfig

    if preset is None or preset not in OmniDRLConfig.PRESETS:
        return {}
    if cfg.config_hash() != OmniDRLConfig.preset(preset).config_hash():
        return {}
    top = _read(RESULTS / "top_td3.json").get("area", {}).get(preset)
    if top:
        return {"logic_ge": top["logic_ge"], "min_period_ns": top["min_period_ns"],
                "source": f"bench/results/top_td3.json area.{preset} ({top.get('source', '')})"}
    if preset == "paper":
        blocks = _read(RESULTS / "paper_synth.json").get("blocks", {})
        parts = [b for b in ("pe_array", "emd_dec", "emd_enc", "transposer") if b in blocks]
        if len(parts) == 4:
            return {"logic_ge": sum(blocks[b]["area"] for b in parts),
                    "min_period_ns": max(blocks[b]["min_period"] for b in parts),
                    "source": "bench/results/paper_synth.json: pe_array + emd_dec + emd_enc + transposer "
                              "(issue/load/store units and counters not included)"}
    return {}


def machine_run(cfg, workload: str, progress=print) -> tuple[dict, bool]:
    """``(run, from_cache)``: the machine-model run of ``workload`` on ``cfg``
    (:func:`flows.run_cache.cached_run` over :data:`RUN_CACHES`)."""
    return run_cache.cached_run(cfg, workload, RUN_CACHES, progress=progress)


def side_by_side(cfg, energy: dict, synth: dict, mfec: dict | None, table) -> list[tuple[str, str, str, str]]:
    """Rows ``(figure, ours, published, note)`` of the comparison with OmniDRL, the adaptation
    system and ECIM."""
    from golden.energy import achievable_clock_hz

    p = PUBLISHED
    pk = energy["peak"]
    ge_um2 = table["ge_area"]
    area_mm2 = energy["area_ge"]["total"] * ge_um2 / 1e6
    rows = [
        ("TFLOPS/W, TD3 update (dense-equivalent FLOPs, on-chip energy)", f"{energy['tflops_per_w_dense_equiv']:.3f}",
         f"{p['omnidrl_tflops_per_w_td3']} (JSSC {p['omnidrl_tflops_per_w_td3_jssc']})", "OmniDRL, HalfCheetah TD3, 28 nm"),
        ("TFLOPS/W, TD3 update (executed FLOPs, on-chip energy)", f"{energy['tflops_per_w_executed']:.3f}", "-", ""),
        ("TFLOPS/W, TD3 update, with external memory and host traffic", f"{energy['tflops_per_w_dense_equiv_system']:.4f}",
         "-", "dense-equivalent"),
        ("peak TFLOPS/W (dense GEMM, full utilization)", f"{pk['tflops_per_w']:.3f}", f"{p['omnidrl_peak_tflops_per_w']}",
         f"dynamic only {pk['tflops_per_w_dynamic_only']:.3f}"),
        ("peak TFLOPS", f"{pk['tflops']:.4f}", f"{p['omnidrl_peak_tflops']}",
         f"{cfg.pe_array.rows}x{cfg.pe_array.cols} MACs at {energy['clock_hz'] / 1e6:.0f} MHz"),
        ("area (mm^2, 28 nm)", f"{area_mm2:.2f}", f"{p['omnidrl_area_mm2']:.2f}",
         f"{energy['area_ge']['logic'] / 1e6:.2f} M GE logic + {energy['area_ge']['sram'] / 1e6:.2f} M GE SRAM"),
        ("iteration/J (one TD3 update, with external memory)", f"{energy['iterations_per_j']:.1f}",
         f"{p['adaptation_iterations_per_j']} (TX2 {p['tx2_iterations_per_j']:.2f})", "adaptation system vs Jetson TX2"),
        ("iteration/J (one TD3 update, on-chip energy)", f"{energy['iterations_per_j_chip']:.1f}", "-", ""),
    ]
    if synth.get("min_period_ns"):
        f = achievable_clock_hz(synth["min_period_ns"], table)
        rows.append(("clock (MHz): stated / achievable from synthesis", f"{energy['clock_hz'] / 1e6:.0f} / {f / 1e6:.0f}",
                     "not published", f"{synth['min_period_ns']} ns x delay_scale {table['delay_scale']}"))
    if mfec:
        rows += [("MFEC MAC power vs bf16 MAC", f"{mfec['mac_power_ratio'] - 1:+.1%}",
                  f"{p['ecim_mac_power_change']:+.1%}", "ECIM, VLSI 2021"),
                 ("MFEC weight-memory power vs bf16", f"{mfec['memory_power_ratio'] - 1:+.1%}",
                  f"{p['ecim_memory_power_change']:+.1%}", "ECIM (bitline charge reuse not modelled)"),
                 ("ECIM-lane peak TFLOPS/W (MAC energy x MFEC ratio)", f"{mfec.get('peak_tflops_per_w', float('nan')):.3f}",
                  f"{p['ecim_tflops_per_w']}", "ECIM processor")]
    return rows


def _table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def format_report(energy: dict, rows, gate: dict | None, gate_note: str) -> str:
    """The breakdown, the headline figures and the side-by-side table, as Markdown text."""
    from golden.energy import SYSTEM_COMPONENTS

    comp = energy["by_component"]
    chip, total = energy["chip_j"], energy["total_j"]
    lines = ["Energy per TD3 update by component:", ""]
    lines.append(_table(["component", "uJ", "share of chip", "share of total"],
                        [(n, f"{v * 1e6:.2f}", "-" if n in SYSTEM_COMPONENTS else f"{v / chip:.1%}", f"{v / total:.1%}")
                         for n, v in comp.items()]
                        + [("on-chip total", f"{chip * 1e6:.2f}", "100%", f"{chip / total:.1%}"),
                           ("total (with external memory)", f"{total * 1e6:.2f}", "", "100%")]))
    lines += ["", f"cycles {energy['events']['cycles']:,} at {energy['clock_hz'] / 1e6:.0f} MHz = "
              f"{energy['seconds'] * 1e3:.3f} ms; FLOPs executed {energy['flops_executed']:,.0f}, dense-equivalent "
              f"{energy['flops_dense_equiv']:,.0f}; throughput {energy['flops_per_s'] / 1e12:.4f} TFLOPS", ""]
    mac = f"energy per MAC: table {energy['mac_energy_j'] * 1e12:.3f} pJ (the model uses this)"
    if gate:
        mac += f"; gate-level ({gate['pe_op']}) {gate['pe_mac_j'] * 1e12:.3f} pJ"
    lines += [mac, gate_note, "", "Side by side with the published figures:", "",
              _table(["figure", "ours", "published", "note"], rows)]
    return "\n".join(lines)


def gate_note(path: Path | None = None) -> tuple[dict | None, str]:
    """``(calibration or None, one line saying which)``; ``path`` defaults to :data:`GATE_TOGGLES`."""
    from golden.energy import gate_calibration

    path = Path(path) if path is not None else GATE_TOGGLES
    try:
        gate = gate_calibration(path)
    except ValueError as exc:
        return None, f"gate-level calibration: {exc}; using the table"
    if gate is None:
        return None, (f"gate-level calibration: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
                      "absent (written by the gate-level toggle benchmark); the table-based figures are used")
    return gate, (f"gate-level calibration: {gate['energy_per_ge_toggle_j'] * 1e15:.3f} fJ per GE toggle, "
                  f"PE {gate['pe_mac_j'] * 1e12:.3f} pJ/{gate['pe_op']}, MFEC MAC power ratio (gates) "
                  f"{gate['mfec_mac_power_ratio_gate']:.3f}; the model uses the table")


def mfec_figures(cfg, table, max_dots: int, area_ge: float) -> dict:
    """The MFEC ablation (``golden.energy.mfec_ratios`` on ``mfec_activity(max_dots)``), with its
    ``activity`` and ``peak_tflops_per_w``: the peak of ``cfg`` with the MAC's multiply and add
    energy scaled by the MFEC ratio (an ECIM lane in place of each bf16 MAC)."""
    from golden.energy import EnergyTable, mfec_activity, mfec_ratios, peak

    activity = mfec_activity(max_dots=max_dots)
    mfec = mfec_ratios(activity, table)
    entries = dict(table.entries)
    for name in ("bf16_mul", "fp32_add"):
        entries[name] = dict(entries[name], value=table[name] * mfec["mac_power_ratio"])
    mfec["peak_tflops_per_w"] = peak(cfg, EnergyTable(table.path, entries), area_ge=area_ge)["tflops_per_w"]
    return dict(mfec, activity=activity)


def cmd_energy(args) -> int:
    """``omnidrl energy``: see the module docstring."""
    from golden.energy import EnergyTableError, load_table, update_energy
    from golden.workloads import WORKLOADS
    from hdl.omnidrl import OmniDRLConfig

    from .cli import UserError

    presets = list(OmniDRLConfig.PRESETS)
    if args.preset not in presets:
        raise UserError(f"--preset {args.preset!r} is not allowed: choose one of {', '.join(presets)}")
    workload = args.workload or ("small-dense" if args.preset == "tiny" else "halfcheetah-dense")
    if workload not in WORKLOADS:
        raise UserError(f"--workload {workload!r} is not allowed: choose one of {', '.join(WORKLOADS)}")
    if args.mfec_dots < 1:
        raise UserError(f"--mfec-dots {args.mfec_dots} is not allowed: a positive number of dot products")
    try:
        table = load_table(args.table)
    except EnergyTableError as exc:
        raise UserError(f"--table: {exc}") from None
    cfg = OmniDRLConfig.preset(args.preset)
    print(f"[energy] {workload} on omnidrl {args.preset} ({cfg.config_hash()}), table {table.path}", flush=True)
    run, cached = machine_run(cfg, workload, progress=lambda m: print(f"[energy] {m}", flush=True))
    print(f"[energy] machine-model run {'from the cache' if cached else 'done'}: {run['cycles']:,} cycles", flush=True)
    synth = recorded_synthesis(cfg, args.preset)
    energy = update_energy(cfg, run, table, area_ge=synth.get("logic_ge"))
    print("[energy] MFEC activity on the TD3 trace's dot products (golden.mfec)", flush=True)
    mfec = mfec_figures(cfg, table, args.mfec_dots, energy["area_ge"]["logic"])
    gate, note = gate_note()
    rows = side_by_side(cfg, energy, synth, mfec, table)
    area_note = synth.get("source", "logic area from the linear model of golden.energy.logic_area_ge (no synthesis figure)")
    if args.json:
        print(json.dumps({"preset": args.preset, "workload": workload, "config_hash": cfg.config_hash(),
                          "energy": energy, "mfec": mfec, "gate_calibration": gate, "gate_note": note,
                          "area_source": area_note,
                          "side_by_side": [dict(zip(("figure", "ours", "published", "note"), r)) for r in rows]},
                         indent=1))
    else:
        print(format_report(energy, rows, gate, note))
        print(f"\narea: {area_note}")
    return 0


def add_parser(sub) -> None:
    """Register ``omnidrl energy`` on the CLI's subparsers."""
    p = sub.add_parser("energy", help="energy per TD3 update by component, TFLOPS/W and iteration/J beside "
                       "OmniDRL's and ECIM's published figures")
    p.add_argument("--preset", default="default", help="omnidrl preset: tiny, default or paper (default default)")
    p.add_argument("--workload", help="golden.workloads name (default small-dense on tiny, else halfcheetah-dense)")
    p.add_argument("--table", help="energy table (TOML or .json; default golden/energy_table.toml)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    p.add_argument("--mfec-dots", type=int, default=1000, metavar="N",
                   help="MFEC ablation: dot products per layer and pass of the TD3 trace (default 1000, as "
                        "bench/energy.py)")
    p.set_defaults(func=cmd_energy)
