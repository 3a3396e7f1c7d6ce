"""ECIM / MFEC benchmark: error, memory and multiplier activity, overlap speed-up, area.

Usage: ``python bench/ecim.py [--quick] [--no-synth] [--no-hw]``

Dot products: every layer of the committed TD3 trace (``golden.traces``) when it is present,
in its three training passes (forward ``x W^T``, backward ``dy W``, weight gradient
``dy^T x``); otherwise TD3-shaped synthetic layers, labelled as such in the results.

Figures (one summary line each, all recorded in bench/results/ecim.json and ecim.md):

* relative error against float64 of MFEC (the ``EcimConfig()`` numerics, bf16 output) and of
  the conventional fp32-sequential dot product rounded to bf16 (median, 99.9th percentile,
  max), plus a sweep over the guard bits;
* memory and multiplier activity against a conventional unit that reads full bf16 words;
* cycles per group with and without the exponent/mantissa overlap, measured in Amaranth's
  simulator on the default configuration (a ratio measured in this run);
* a replay of TD3 dot products through the generated Verilog on Verilator (bit-exact);
* area: ``omnidrl synth`` GE of the unit (macros black-boxed), of the macro's compute periphery
  and of the bf16 PE, plus the SRAM model of docs/ecim.md for the memories.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, area_ge, bench_parser, stamp, td3_layer_sizes, write_results  # noqa: E402
from golden.bf16 import f32_to_bf16  # noqa: E402
from golden.mfec import (MfecParams, f64_dot, fp32_seq_dot, mfec_dot_detail, rel_error,  # noqa: E402
                         training_dot_operands)

# SRAM area model (docs/ecim.md): GE per stored bit, in the project's GE unit (NanGate45 NAND2_X1
# = 0.798 um^2). OpenRAM's FreePDK45 arrays reach 0.826 Mb/mm^2 including periphery.
NAND2_UM2 = 0.798
SRAM_MB_PER_MM2 = 0.826
SRAM_GE_PER_BIT = 1.0 / SRAM_MB_PER_MM2 / NAND2_UM2  # 1 mm^2 / 1e6 bits = 1/0.826 um^2 per bit
BITCELL_UM2 = 0.37  # 45 nm 6T bit cell alone (Renesas, ISQED 2013): the lower bound
BITCELL_GE = BITCELL_UM2 / NAND2_UM2


def synthetic_layers(seed: int = 0) -> dict:
    """TD3-shaped layers (actor 17-256-256-6, critic 23-256-256-1, batch 256) in bf16."""
    rng = np.random.default_rng(seed)
    layers = {}
    batch = 256
    for net, sizes in td3_layer_sizes().items():
        x = rng.normal(0, 1, (batch, sizes[0]))
        for li, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1 / np.sqrt(n_in)
            w = rng.uniform(-bound, bound, (n_out, n_in)) + 0.6 * rng.normal(0, bound, (n_out, n_in))
            y = x @ w.T
            act = np.maximum(y, 0) if li < len(sizes) - 2 else np.tanh(y)
            dy = rng.normal(0, 3e-3, y.shape) * ((y > 0) if li < len(sizes) - 2 else 1)
            layers[f"synthetic/{net}/l{li}"] = {"W": f32_to_bf16(w), "x": f32_to_bf16(x), "dy": f32_to_bf16(dy)}
            x = act
    return layers


def load_layers():
    try:
        from golden.traces import iter_tensors, load_trace, trace_meta
        trace = load_trace()
    except (ImportError, FileNotFoundError) as exc:
        return synthetic_layers(), f"synthetic TD3-shaped layers (no trace: {exc})"
    layers: dict = {}
    for name, kind, t in iter_tensors(trace, kinds=("W", "x", "dy")):
        layers.setdefault(name, {})[kind] = t
    layers = {k: v for k, v in layers.items() if "W" in v and "x" in v}
    try:
        meta = trace_meta(trace)
        steps = {m: run.get("step") for m, run in meta.get("runs", {}).items()}
        what = (f"TD3 trace {meta.get('env', '')} recorded {meta.get('date', '?')} "
                f"(training steps per method: {steps})")
    except Exception:  # metadata is a convenience only
        what = "TD3 trace"
    return layers, what


def stats(e: np.ndarray) -> dict:
    e = e[np.isfinite(e)]
    return {"median": float(np.median(e)), "p999": float(np.percentile(e, 99.9)), "max": float(np.max(e)),
            "count": int(e.size)}


def error_figures(ops, params: MfecParams, guards) -> dict:
    """Errors and activity over batches ``ops`` of (a, b, length) (one length per batch; the
    operands are zero-padded to whole groups, and the padding is left out of the counts)."""
    cols = {k: [] for k in ("mfec", "seq16", "seq32", "ref", "same", "exp", "mant", "mul", "skip")}
    sweep_err = {str(g): [] for g in guards}
    products = 0
    for a, b, length in ops:
        pad = a.shape[0] * (a.shape[1] - length)
        ref = f64_dot(a, b)
        res = mfec_dot_detail(a, b, params)
        seq16 = fp32_seq_dot(a, b, "bf16")
        cols["mfec"].append(rel_error(res.bits, ref))
        cols["seq16"].append(rel_error(seq16, ref))
        cols["seq32"].append(rel_error(fp32_seq_dot(a, b, "fp32"), ref, "fp32"))
        cols["ref"].append(ref)
        cols["same"].append(res.bits == seq16)
        for key, arr in (("exp", res.exp_reads), ("mant", res.mant_reads), ("mul", res.multiplies),
                         ("skip", res.skipped)):
            cols[key].append(arr)
        # Padding entries are zero products: read in the macro and skipped, but not real work.
        cols["exp"].append(np.array([-pad]))
        cols["skip"].append(np.array([-pad]))
        products += a.shape[0] * length
        for g in guards:
            p = params.replace(guard=g)
            sweep_err[str(g)].append(rel_error(mfec_dot_detail(a, b, p).bits, ref))
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    ref = cat["ref"]
    out = {"mfec_vs_f64": stats(cat["mfec"]), "fp32seq_bf16_vs_f64": stats(cat["seq16"]),
           "fp32seq_fp32_vs_f64": stats(cat["seq32"]),
           "ref_zero_or_nonfinite": int((~np.isfinite(ref) | (ref == 0)).sum()),
           "identical_to_fp32seq_bf16": float(np.mean(cat["same"])),
           "p999_vs_guard": {g: stats(np.concatenate(v))["p999"] for g, v in sweep_err.items()}}
    act = {"dot_products": int(ref.size), "products": int(products),
           "exp_reads_8b": int(cat["exp"].sum()), "mant_reads_8b": int(cat["mant"].sum()),
           "multiplies": int(cat["mul"].sum()), "multiplies_skipped": int(cat["skip"].sum()),
           "conventional_reads_16b": int(products), "conventional_multiplies": int(products)}
    act["weight_bits_read_ratio"] = (8 * act["exp_reads_8b"] + 8 * act["mant_reads_8b"]) / (16 * products)
    act["multiply_ratio"] = act["multiplies"] / products
    out["activity"] = act
    return out


def measure_cycles(groups: int = 48) -> dict:
    """Cycles per group at full rate, overlap on and off, in Amaranth's simulator."""
    from hdl.ecim import EcimConfig
    from tb.stimulus.ecim import bf16_normal, normal_dots, run_unit
    rng = np.random.default_rng(1)
    out = {}
    for overlap in (True, False):
        cfg = EcimConfig(overlap=overlap)
        w = bf16_normal(rng, (cfg.rows, cfg.n))
        per = 16  # a 256-long dot product: 16 groups of 16
        dots = normal_dots(cfg, rng, groups // per, per)
        cycles, _ = run_unit(cfg, w, dots)
        out["overlap" if overlap else "sequential"] = {
            "cycles": cycles, "groups": groups, "cycles_per_group": cycles / groups,
            "cycles_per_dot_256": cycles / (groups // per), "model_cycles_per_group": cfg.group_cycles}
    out["overlap_speedup"] = out["sequential"]["cycles"] / out["overlap"]["cycles"]
    # The cycle model (checked against simulation by the tests) for other engine widths.
    out["model_sweep_n16"] = {
        str(lanes): {"overlap": EcimConfig(lanes=lanes).group_cycles,
                     "sequential": EcimConfig(lanes=lanes, overlap=False).group_cycles,
                     "speedup": EcimConfig(lanes=lanes, overlap=False).group_cycles / EcimConfig(lanes=lanes).group_cycles}
        for lanes in (1, 2, 4, 8, 16)}
    return out


def synth_area(enabled: bool) -> dict:
    """GE from `omnidrl synth` (generic target) for the unit, its macro periphery and the PE."""
    if not enabled:
        return {}
    from flows.synth import report_path
    from hdl.ecim import EcimConfig
    from hdl.pe import PEConfig
    configs = {"ecim_unit": EcimConfig(), "ecim_with_periphery": EcimConfig(synth_periphery=True),
               "pe": PEConfig()}
    return {key: {"ge": area_ge(cfg), "source": f"omnidrl synth report {report_path(cfg).relative_to(ROOT)}"}
            for key, cfg in configs.items()}


def area_figures(synth: dict, cycles: dict) -> dict:
    from hdl.ecim import EcimConfig
    cfg = EcimConfig()
    if not synth:
        return {}
    bits_exp = cfg.rows * cfg.n * 8
    bits_mant = cfg.rows * cfg.n * 8
    periphery = synth["ecim_with_periphery"]["ge"] - synth["ecim_unit"]["ge"]
    macs_per_cycle = cfg.n / cycles["overlap"]["cycles_per_group"]
    ecim = {"engine_and_control_ge": synth["ecim_unit"]["ge"], "macro_periphery_ge": periphery,
            "macro_array_ge": bits_exp * SRAM_GE_PER_BIT, "mant_sram_ge": bits_mant * SRAM_GE_PER_BIT}
    ecim["total_ge"] = sum(ecim.values())
    conv = {"pe_lanes": macs_per_cycle, "pe_ge_each": synth["pe"]["ge"],
            "pe_total_ge": macs_per_cycle * synth["pe"]["ge"],
            "weight_sram_ge": cfg.rows * cfg.n * 16 * SRAM_GE_PER_BIT}
    conv["total_ge"] = conv["pe_total_ge"] + conv["weight_sram_ge"]
    return {"config": {"n": cfg.n, "rows": cfg.rows, "lanes": cfg.lanes},
            "sram_ge_per_bit": SRAM_GE_PER_BIT, "bitcell_only_ge_per_bit": BITCELL_GE,
            "macs_per_cycle": macs_per_cycle, "ecim": ecim, "conventional": conv,
            "ratio_total": ecim["total_ge"] / conv["total_ge"],
            "ratio_logic": (ecim["engine_and_control_ge"] + periphery) / conv["pe_total_ge"]}


def hw_check(loads: int, dots: int) -> dict:
    """Replay TD3 dot products through the generated Verilog on Verilator (bit-exact check)."""
    import re

    from hdl.ecim import EcimConfig
    from tb.runner import run_cocotb
    t0 = time.time()
    xml = run_cocotb(EcimConfig(), "verilator", testcase="td3_dot_products", tag="bench",
                     extra_env={"ECIM_DOTS": str(dots), "ECIM_TD3_LOADS": str(loads)})
    log = (Path(xml).parent / "sim.log").read_text(errors="replace")
    m = re.search(r"checked (\d+) TD3 dot products", log)
    return {"simulator": "verilator", "config": "default", "memory_loads": loads,
            "td3_dot_products_bit_exact": int(m.group(1)) if m else None,
            "with_gaps_and_back_pressure": True, "seconds": round(time.time() - t0, 1)}


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer dot products, no guard sweep beyond 3 values")
    ap.add_argument("--no-synth", action="store_true", help="skip synthesis (area figures left out)")
    ap.add_argument("--no-hw", action="store_true", help="skip the Verilator replay of TD3 dot products")
    args = ap.parse_args(argv)
    t0 = time.time()
    from hdl.ecim import EcimConfig
    params = EcimConfig().mfec
    layers, source = load_layers()
    ops_by_pass: dict = {}
    for name, pname, a, b, length in training_dot_operands(layers, params.n, max_dots=300 if args.quick else 3000):
        if a.shape[1] // params.n > params.max_groups:
            continue  # longer than the accumulator is sized for (not in TD3's 256-wide layers)
        ops_by_pass.setdefault(pname, []).append((a, b, length))
    guards = [3, params.guard] if args.quick else list(range(0, 13))
    errors = {"all": error_figures([x for v in ops_by_pass.values() for x in v], params, guards)}
    for pname, ops in ops_by_pass.items():
        errors[pname] = error_figures(ops, params, [params.guard])
    cycles = measure_cycles()
    hw = {} if args.no_hw else hw_check(loads=2 if args.quick else 8, dots=200 if args.quick else 1000)
    synth = synth_area(not args.no_synth)
    area = area_figures(synth, cycles)

    e = errors["all"]
    result = {
        **stamp("ecim", ("numpy", "amaranth", "pyosys")), "data": source,
        "config": EcimConfig().to_dict(),
        "p999_rel_err_vs_f64": e["mfec_vs_f64"]["p999"],
        "p999_rel_err_fp32seq_bf16_vs_f64": e["fp32seq_bf16_vs_f64"]["p999"],
        "overlap_speedup": cycles["overlap_speedup"],
        "min_guard_meeting_target": next((int(g) for g, v in e["p999_vs_guard"].items()
                                          if v <= e["fp32seq_bf16_vs_f64"]["p999"]), None),
        "errors": errors, "cycles": cycles, "hw_check": hw, "synth": synth, "area": area,
        "runtime_s": round(time.time() - t0, 1),
    }
    write_results("ecim", result, render_markdown(result))

    act = e["activity"]
    print(f"data: {source}; {act['dot_products']} dot products, {act['products']} products")
    print(f"rel err vs f64, MFEC (guard {params.guard}, bf16 out): median {e['mfec_vs_f64']['median']:.3e} "
          f"p99.9 {e['mfec_vs_f64']['p999']:.5e} max {e['mfec_vs_f64']['max']:.3e}")
    print(f"rel err vs f64, fp32-sequential -> bf16: median {e['fp32seq_bf16_vs_f64']['median']:.3e} "
          f"p99.9 {e['fp32seq_bf16_vs_f64']['p999']:.5e} max {e['fp32seq_bf16_vs_f64']['max']:.3e}")
    print(f"target p99.9 MFEC <= fp32seq->bf16: {'met' if result['p999_rel_err_vs_f64'] <= result['p999_rel_err_fp32seq_bf16_vs_f64'] else 'MISSED'}"
          f"; smallest guard meeting it: {result['min_guard_meeting_target']}")
    print("p99.9 vs guard bits: " + ", ".join(f"{g}:{v:.5e}" for g, v in e["p999_vs_guard"].items()))
    print(f"weight bits read vs bf16-word unit: {act['weight_bits_read_ratio']:.3f}; multiplies "
          f"{act['multiplies']} of {act['conventional_multiplies']} ({act['multiplies_skipped']} skipped for zeros)")
    print(f"cycles/group: overlap {cycles['overlap']['cycles_per_group']:.2f}, sequential "
          f"{cycles['sequential']['cycles_per_group']:.2f}; overlap speed-up {cycles['overlap_speedup']:.2f}x")
    print("cycle model, n=16, speed-up by lanes: " + ", ".join(
        f"{k}: {v['sequential']}/{v['overlap']} = {v['speedup']:.2f}x" for k, v in cycles["model_sweep_n16"].items()))
    if hw:
        print(f"hardware: {hw['td3_dot_products_bit_exact']} TD3 dot products bit-exact on Verilator "
              f"({hw['memory_loads']} memory loads, random gaps and back-pressure) in {hw['seconds']} s")
    if area:
        print(f"area: ECIM {area['ecim']['total_ge']:.0f} GE (engine {area['ecim']['engine_and_control_ge']:.0f}, "
              f"periphery {area['ecim']['macro_periphery_ge']:.0f}, SRAM {area['ecim']['macro_array_ge'] + area['ecim']['mant_sram_ge']:.0f})"
              f" vs conventional {area['conventional']['total_ge']:.0f} GE: ratio {area['ratio_total']:.2f}")
    print(f"ecim benchmark: {result['runtime_s']} s")
    return 0


def render_markdown(r: dict) -> str:
    e = r["errors"]
    lines = ["| figure | MFEC (ECIM) | conventional | note |", "|---|---:|---:|---|"]
    for label, key in (("median", "median"), ("99.9th percentile", "p999"), ("max", "max")):
        lines.append(f"| rel. error vs float64, {label} | {e['all']['mfec_vs_f64'][key]:.4e} | "
                     f"{e['all']['fp32seq_bf16_vs_f64'][key]:.4e} | conventional = fp32 sequential, rounded to bf16 |")
    for pname in ("fwd", "bwd", "wgrad"):
        if pname in e:
            lines.append(f"| p99.9 rel. error, {pname} pass | {e[pname]['mfec_vs_f64']['p999']:.4e} | "
                         f"{e[pname]['fp32seq_bf16_vs_f64']['p999']:.4e} | {e[pname]['activity']['dot_products']} dot products |")
    lines.append(f"| results bit-identical to the conventional bf16 result | {100 * e['all']['identical_to_fp32seq_bf16']:.3f}% "
                 f"| 100% | {e['all']['activity']['dot_products']} dot products, {r['data'].split(' (')[0]} |")
    act = e["all"]["activity"]
    lines.append(f"| weight bits read per product | {16 * act['weight_bits_read_ratio']:.2f} | 16 | "
                 "8-bit exponent always, 8-bit sign+mantissa only for non-zero products |")
    lines.append(f"| multiplies per product | {act['multiply_ratio']:.3f} | 1 | zero products skipped |")
    if r.get("hw_check"):
        h = r["hw_check"]
        lines.append(f"| TD3 dot products replayed bit-exact on Verilator | {h['td3_dot_products_bit_exact']} | | "
                     f"{h['memory_loads']} memory loads, random gaps and back-pressure |")
    c = r["cycles"]
    lines.append(f"| cycles per group of 16 | {c['overlap']['cycles_per_group']:.2f} | "
                 f"{c['sequential']['cycles_per_group']:.2f} | with vs without exponent/mantissa overlap: "
                 f"{r['overlap_speedup']:.2f}x |")
    if r["area"]:
        a = r["area"]
        lines.append(f"| logic area (GE) | {a['ecim']['engine_and_control_ge'] + a['ecim']['macro_periphery_ge']:.0f} | "
                     f"{a['conventional']['pe_total_ge']:.0f} | engine+control+macro periphery vs "
                     f"{a['macs_per_cycle']:.2f} bf16 PE lanes (same MACs/cycle) |")
        lines.append(f"| memory area (GE, model) | {a['ecim']['macro_array_ge'] + a['ecim']['mant_sram_ge']:.0f} | "
                     f"{a['conventional']['weight_sram_ge']:.0f} | {a['sram_ge_per_bit']:.2f} GE/bit, "
                     f"{a['config']['rows']}x{a['config']['n']} weights |")
        lines.append(f"| total area (GE) | {a['ecim']['total_ge']:.0f} | {a['conventional']['total_ge']:.0f} | "
                     f"ratio {a['ratio_total']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
