"""Gate-level energy calibration: energy per MAC of the PE and of the ECIM/MFEC unit, and per
value of the EMD encoder, from toggles counted on their own Yosys-mapped netlists.

Usage: ``nice -n 10 python bench/gate_toggles.py [--quick] [--blocks pe,emd_enc,ecim]``

For each block (default presets; ECIM with ``synth_periphery`` so that the macro's exponent
compute is logic, not a black box) ``flows.toggles`` synthesizes the netlist, replays the
stimulus on Icarus (every output compared with golden), counts each cell's output toggles in the
measured window and turns them into energy with ``flows.toggles.E_GE_TOGGLE_J`` per GE toggle.

Stimulus (``tb/stimulus/toggles.py``):

* ``pe`` and ``ecim``: the same TD3 dot products from the committed trace (``td3_dots``, the ECIM
  cocotb test's stimulus; several weight loads), so their energy per MAC is a like-for-like ratio
  (``mfec_mac_power_ratio_gate``); for contrast the PE also on the same products with the zero
  products left out, and on the PE cocotb test's random operands; ECIM also on its random ones;
* ``emd_enc``: streams cut from every W, x, dy, dW tensor of the trace; also random runs.

Writes bench/results/gate_toggles.json (the schema the energy model reads; see
docs/gate_toggles.md) and gate_toggles.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, bench_parser, run_info, write_results  # noqa: E402
from flows import toggles  # noqa: E402
from hdl.ecim import EcimConfig  # noqa: E402
from hdl.emd import EmdEncoderConfig  # noqa: E402
from hdl.pe import PEConfig  # noqa: E402
from tb.stimulus import toggles as stim  # noqa: E402

BLOCKS = ("pe", "emd_enc", "ecim")
RESULT = RESULTS / "gate_toggles.json"
ECIM_PAPER_MAC_POWER_RATIO = 1 - 0.144  # ECIM (VLSI 2021): MFEC cuts FP MAC power by 14.4 %


def configs() -> dict:
    return {"pe": PEConfig.preset("default"), "emd_enc": EmdEncoderConfig.preset("default"),
            "ecim": EcimConfig.preset("default").replace(synth_periphery=True)}


def run(blocks, quick: bool) -> dict:
    cfgs = configs()
    loads, dots_per_load = (1, 8) if quick else (2, 24)
    sets = stim.ecim_td3_sets(cfgs["ecim"], loads, dots_per_load, seed=0)
    out: dict[str, dict] = {}
    timing = {}

    def one(block, stimulus, op):
        t0 = time.monotonic()
        summary = toggles.measure(cfgs[block], stimulus, op)
        timing[f"{block}/{stimulus.name}"] = round(time.monotonic() - t0, 1)
        print(f"{block:8s} {stimulus.name:24s} {summary['ops']:6d} {op}s: {summary['toggles_per_op']:8.1f} toggles/{op}, "
              f"{summary['energy_per_op_j'] * 1e12:.3f} pJ/{op} logic, "
              f"{summary['energy_per_op_with_clock_j'] * 1e12:.3f} pJ/{op} with clock "
              f"({timing[f'{block}/{stimulus.name}']:.0f} s)", flush=True)
        return summary

    if "pe" in blocks:
        main = one("pe", stim.pe_td3(sets), "mac")
        main["variants"] = {"td3-trace-zero-skipped": one("pe", stim.pe_td3_zero_skipped(sets), "mac"),
                            "random": one("pe", stim.pe_random(7, 512 if quick else 4000), "mac")}
        out["pe"] = main
    if "emd_enc" in blocks:
        cfg = cfgs["emd_enc"]
        main = one("emd_enc", stim.emd_enc_td3(cfg, 32 if quick else 128), "value")
        main["variants"] = {"random": one("emd_enc", stim.emd_enc_random(cfg, 1024 if quick else 4096), "value")}
        for s in (main, *main["variants"].values()):
            s["energy_per_group_j"] = s["energy_per_op_j"] * cfg.fmt.group
            s["values_per_group"] = cfg.fmt.group
        out["emd_enc"] = main
    if "ecim" in blocks:
        cfg = cfgs["ecim"]
        main = one("ecim", stim.ecim_td3(cfg, sets), "mac")
        main["variants"] = {"random": one("ecim", stim.ecim_random(cfg, 11, 8 if quick else 32), "mac")}
        # The whole exponent macro a black box (the default synthesis): its compute periphery is
        # simulated from RTL and not counted, as if computing beside the bit cells cost nothing.
        cfgs["ecim_macro_blackboxed"] = cfg.replace(synth_periphery=False)
        t0 = time.monotonic()
        bare = toggles.measure(cfgs["ecim_macro_blackboxed"], stim.ecim_td3(cfg, sets), "mac", tag="td3-macro-blackboxed")
        bare["stimulus"] = "td3-trace-macro-blackboxed"
        print(f"ecim     {bare['stimulus']:24s} {bare['ops']:6d} macs: {bare['toggles_per_op']:8.1f} toggles/mac, "
              f"{bare['energy_per_op_j'] * 1e12:.3f} pJ/mac logic ({time.monotonic() - t0:.0f} s)", flush=True)
        main["variants"]["td3-trace-macro-blackboxed"] = bare
        out["ecim"] = main
    return {"blocks": out, "seconds": timing,
            "configs": {b: c.to_dict() for b, c in cfgs.items() if b.split("_macro")[0] in blocks}}


def markdown(doc: dict) -> str:
    lines = ["# Gate-level energy calibration (`bench/gate_toggles.py`)", "",
             f"Energy per GE toggle: **{doc['energy_per_ge_toggle_j'] * 1e15:.3f} fJ** "
             f"({doc['energy_per_ge_toggle_source']})", "",
             f"Clock: {doc['clock_ge_per_flop_edge']} GE toggle per flip-flop per clock edge (two edges a cycle), "
             "reported apart. Leakage is not included. Glitches are not counted (zero-delay simulation).", "",
             "| block | stimulus | ops | op | area (GE) | cells | flops | mean fan-out | cycles | toggles/op | "
             "GE toggles/op | pJ/op logic | pJ/op with clock |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for block, main in doc["blocks"].items():
        for s in (main, *main.get("variants", {}).values()):
            lines.append(f"| {block} | {s['stimulus']} | {s['ops']:,} | {s['op']} | {s['area_ge']:,.0f} | "
                         f"{s['cells']:,} | {s['flip_flops']:,} | {s.get('mean_fanout', float('nan')):.2f} | "
                         f"{s['cycles']:,} | {s['toggles_per_op']:.1f} | "
                         f"{s['ge_toggles_per_op']:.1f} | {s['energy_per_op_j'] * 1e12:.3f} | "
                         f"{s['energy_per_op_with_clock_j'] * 1e12:.3f} |")
    if "emd_enc" in doc["blocks"]:
        e = doc["blocks"]["emd_enc"]
        lines += ["", f"EMD encoder per group of {e['values_per_group']} values (TD3 trace): "
                      f"{e['energy_per_group_j'] * 1e12:.2f} pJ logic."]
    if "mfec_mac_power_ratio_gate" in doc:
        lines += ["", f"**MFEC / conventional bf16 MAC energy per MAC, same TD3 products, from the netlists: "
                      f"{doc['mfec_mac_power_ratio_gate']:.3f}** (logic; with clock "
                      f"{doc['mfec_mac_power_ratio_gate_with_clock']:.3f}; random operands "
                      f"{doc['mfec_mac_power_ratio_gate_random']:.3f}; exponent macro black-boxed, its "
                      f"periphery not counted: {doc.get('mfec_mac_power_ratio_gate_macro_blackboxed', float('nan')):.3f}). "
                      f"ECIM reports "
                      f"{doc['ecim_paper_mac_power_ratio']:.3f} (-14.4 % MAC power)."]
    lines += ["", "Energy by cell type (TD3 trace, pJ per op):", "",
              "| block | " + " | ".join(sorted({k for m in doc["blocks"].values() for k in m["by_cell_type"]})) + " |"]
    kinds = sorted({k for m in doc["blocks"].values() for k in m["by_cell_type"]})
    lines.append("|---|" + "---:|" * len(kinds))
    for block, main in doc["blocks"].items():
        cells = [main["by_cell_type"].get(k, {}).get("energy_per_op_j", 0.0) * 1e12 for k in kinds]
        lines.append(f"| {block} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    lines += ["", "Limits: " + " ".join(doc["limits"])]
    return "\n".join(lines) + "\n"


LIMITS = [
    "Logic only: the black-boxed SRAMs (ECIM's exponent bit cells and mantissa memory) are simulated from "
    "their RTL but not counted; memory energy belongs to the SRAM model.",
    "Zero-delay simulation: a toggle is a change of a net's settled value between time steps, so glitches "
    "(real in multipliers and adders) are not counted.",
    "One energy per GE toggle for every cell, scaled by its GE area; no per-net load or wire length.",
    "Clock energy is an assumed 1 GE toggle per flop per edge and no clock tree; leakage is not included.",
    "Streams run at full rate without gaps or back-pressure (idle cycles inside the array are not modelled).",
]


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="a few hundred operations per block")
    ap.add_argument("--blocks", default=",".join(BLOCKS),
                    help=f"comma-separated subset of {', '.join(BLOCKS)} (the others keep their last figures)")
    ap.add_argument("--markdown-only", action="store_true", help="only write gate_toggles.md again from the JSON")
    args = ap.parse_args()
    if args.markdown_only:
        write_results("gate_toggles", json.loads(RESULT.read_text()), markdown(json.loads(RESULT.read_text())))
        return 0
    blocks = [b.strip() for b in args.blocks.split(",") if b.strip()]
    bad = [b for b in blocks if b not in BLOCKS]
    if bad:
        print(f"--blocks: {bad[0]!r} is not a block here; choose from {', '.join(BLOCKS)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    measured = run(blocks, args.quick)
    previous = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    if set(blocks) != set(BLOCKS) and previous.get("quick") == args.quick:
        # A subset of the blocks: keep the others' figures from the last run of the same size.
        for key in ("blocks", "seconds", "configs"):
            measured[key] = {**{k: v for k, v in previous.get(key, {}).items() if k not in measured[key]},
                             **measured[key]}
    info = run_info(("numpy", "amaranth", "cocotb", "pyosys", "pyvcd"), {"icarus": ["iverilog", "-V"]})
    doc = {"benchmark": "gate_toggles", "date": info["date"], "versions": info["versions"], "machine": info["machine"],
           "quick": args.quick,
           "energy_per_ge_toggle_j": toggles.E_GE_TOGGLE_J,
           "energy_per_ge_toggle_source": toggles.E_GE_TOGGLE_SOURCE,
           "clock_ge_per_flop_edge": toggles.CLOCK_GE_PER_FLOP_EDGE,
           "leakage_included": False, "glitches_counted": False,
           **measured}
    b = doc["blocks"]
    if "pe" in b and "ecim" in b:
        doc["mfec_mac_power_ratio_gate"] = b["ecim"]["energy_per_op_j"] / b["pe"]["energy_per_op_j"]
        doc["mfec_mac_power_ratio_gate_with_clock"] = (b["ecim"]["energy_per_op_with_clock_j"]
                                                      / b["pe"]["energy_per_op_with_clock_j"])
        doc["mfec_mac_power_ratio_gate_random"] = (b["ecim"]["variants"]["random"]["energy_per_op_j"]
                                                  / b["pe"]["variants"]["random"]["energy_per_op_j"])
        bare = b["ecim"]["variants"].get("td3-trace-macro-blackboxed")
        if bare:
            doc["mfec_mac_power_ratio_gate_macro_blackboxed"] = bare["energy_per_op_j"] / b["pe"]["energy_per_op_j"]
        doc["mfec_mac_power_ratio_note"] = (
            "ECIM energy per MAC / PE energy per MAC on the same TD3 products (logic toggles); the random "
            "figure compares each block's own random cocotb stimulus, not the same products. ECIM rounds "
            "once to bf16 per dot product, the PE keeps fp32.")
        doc["ecim_paper_mac_power_ratio"] = ECIM_PAPER_MAC_POWER_RATIO
    doc["limits"] = LIMITS
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    write_results("gate_toggles", doc, markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
