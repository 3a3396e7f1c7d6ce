"""The OmniDRL top on one complete TD3 update at HalfCheetah scale: cycles, utilization, traffic.

Workloads (``golden/workloads.py``): the HalfCheetah-v5 networks (17-256-256-6 and
23-256-256-1, batch 256) with the committed trace's weights, dense, GST circulant ``l2`` and GST
group-sparse ``l2`` at 75 %; one complete update (critics, actor, soft targets).

For each workload and preset:

* **golden** (``golden.machine``): the program compiled by ``golden.compile_td3`` run on the
  machine model; the agent state after it compared bit for bit with ``TD3Agent.update``; the
  cycle estimate, the event counts, memory bits per tensor kind (raw bf16 vs EMD), host-step
  FLOPs and bytes;
* **rtl** (``--rtl``, ``default`` preset): the same program on the generated top in Verilator
  (``tb/test_omnidrl.py::test_td3_workload``, host steps in Python on the testbench's memory),
  every chip segment's memory image compared with the machine model's and the final agent state
  with ``TD3Agent.update``; the performance counters read from the chip; simulated cycles/s.

Usage: ``python bench/top_td3.py [--rtl] [--presets default paper] [--workloads halfcheetah-dense ...]``.
Writes ``bench/results/top_td3.json`` and ``.md``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import WORK, bench_parser, read_results, stamp, write_results  # noqa: E402
from golden.isa import Fmt, Op, out_beats  # noqa: E402
from golden.run_top import run_machine_image  # noqa: E402

WORKLOADS = ("halfcheetah-dense", "halfcheetah-circ", "halfcheetah-sparse")

#: tensor kind of a memory region, from the compiler's region names
KIND_RULES = [(".dw", "weight gradients"), (".dv", "weight gradients"), (".dy", "output gradients"),
              ("acc", "fp32 accumulators"), (".xt", "activations"), (".x", "activations")]


def tensor_kind(region_name: str) -> str:
    name = region_name.lower()
    if name.startswith("w."):
        return "weights"
    for key, kind in KIND_RULES:
        if key in name:
            return kind
    return "other"


def region_at(layout, addr: int):
    for r in layout.regions.values():
        if r.addr <= addr < r.end:
            return r
    raise KeyError(addr)


def traffic(program, memory) -> dict:
    """Memory words moved by the chip per tensor kind: as stored (raw or EMD) and the raw bf16
    equivalent of the EMD-coded ones. ``memory`` is the image after the update (every region is
    written once per update, so an EMD block's length word is still there)."""
    k = program.shape.k
    per: dict[str, dict[str, int]] = {}

    def add(kind, key, words):
        d = per.setdefault(kind, {"raw_words": 0, "emd_words": 0, "emd_raw_equiv_words": 0,
                                  "fp32_words": 0})
        d[key] += int(words)

    for cmd in program.commands():
        if cmd.op == Op.LOAD:
            kind = tensor_kind(region_at(program.layout, cmd.addr).name)
            if cmd.fmt == Fmt.EMD:
                add(kind, "emd_words", 1 + memory.word(cmd.addr))
                add(kind, "emd_raw_equiv_words", cmd.count)
            else:
                add(kind, "raw_words", cmd.count)
        elif cmd.op == Op.TRANSPOSE:
            kept = sum(bin(memory.word(cmd.addr2 + p) & ((1 << cmd.n) - 1)).count("1") for p in range(cmd.m))
            add("weights", "raw_words", cmd.m + kept * k)
        elif cmd.op == Op.GEMM:
            kind = tensor_kind(region_at(program.layout, cmd.addr).name)
            if cmd.fmt == Fmt.EMD:
                values = memory.read_emd(cmd.addr, program.emd_fmt)
                add(kind, "emd_words", 1 + memory.word(cmd.addr))
                add(kind, "emd_raw_equiv_words", values.size // k)
            elif cmd.round:
                add(kind, "raw_words", out_beats(cmd, k))
            else:
                add(kind, "fp32_words", 2 * out_beats(cmd, k))
    return per


def golden_run(name: str, preset: str) -> dict:
    from hdl.omnidrl import OmniDRLConfig

    cfg = OmniDRLConfig.preset(preset)
    shape = cfg.isa_shape
    result, program, mem = run_machine_image(cfg, name)
    counts = result["counters"]
    per = traffic(program, mem)
    mem_bits = shape.mem_bits
    emd = sum(d["emd_words"] for d in per.values())
    emd_raw = sum(d["emd_raw_equiv_words"] for d in per.values())
    raw16 = sum(d["raw_words"] for d in per.values())
    cycles = result["cycles"]
    return {
        "workload": name, "preset": preset, "k": shape.k,
        "bit_exact_vs_td3_update": result["state_equal"],
        "segments": result["segments"], "gemms": sum(c.op == Op.GEMM for c in program.commands()),
        "host_steps": len(program.host_steps),
        "cycles_estimate": cycles,
        "array_utilization_estimate": counts["EX_STEPS"] / max(1, cycles),
        "macs": counts["MACS"], "macs_dense_equiv": counts["MACS_DENSE"],
        "useful_mac_utilization_estimate": counts["MACS_DENSE"] / max(1, cycles * shape.k * shape.k),
        "counters": counts,
        "traffic_words": per,
        "bf16_bits_raw_equivalent": (emd_raw + raw16) * mem_bits,
        "bf16_bits_moved": (emd + raw16) * mem_bits,
        "emd_bits_over_raw": emd / max(1, emd_raw),
        "bf16_bits_over_raw_all": (emd + raw16) / max(1, emd_raw + raw16),
        "fp32_bits": sum(d["fp32_words"] for d in per.values()) * mem_bits,
        "host_flops": result["host_flops"],
        "host_bytes_read": result["host_bytes_read"],
        "host_bytes_written": result["host_bytes_written"],
        "machine_model_wall_s": round(result["wall_s"], 1),
    }


def rtl_run(name: str, preset: str, reuse: bool = False) -> dict:
    """The workload on Verilator through the cocotb testbench (``test_td3_workload``).

    With ``reuse``, a result the testbench already wrote to ``build/bench/top_td3/`` is taken
    as it is (the runs take tens of minutes each; the result names its Verilog).
    """
    from hdl.omnidrl import OmniDRLConfig
    from tb.runner import SimulationFailed, run_cocotb

    out = WORK / "top_td3" / f"{name}-{preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if reuse and out.exists():
        res = json.loads(out.read_text())
        res.update({"ok": not res.get("errors"), "reused": str(out.relative_to(WORK.parent.parent))})
        res.pop("preset_config", None)
        return res
    if out.exists():
        out.unlink()
    env = {"TOP_WORKLOAD": name, "TOP_RESULT": str(out), "TOP_GAP": "0", "TOP_STALL": "0"}
    t0 = time.perf_counter()
    failure = None
    try:
        run_cocotb(OmniDRLConfig.preset(preset), "verilator", testcase="test_td3_workload", extra_env=env,
                   tag=f"td3-{name}")
    except SimulationFailed as exc:
        failure = str(exc).splitlines()[0]
    wall = time.perf_counter() - t0
    if not out.exists():
        return {"workload": name, "preset": preset, "ok": False, "wall_s_with_build": round(wall, 1),
                "failure": failure}
    res = json.loads(out.read_text())
    res.update({"ok": failure is None, "failure": failure, "wall_s_with_build": round(wall, 1)})
    res.pop("preset_config", None)
    return res


def markdown(doc: dict) -> str:
    lines = ["# OmniDRL top: one complete TD3 update (HalfCheetah-v5 networks, batch 256)", "",
             doc["setup"], "", "## Machine model (golden)", "",
             "| workload | preset | bit-exact | cycles (est.) | array util. | MACs issued | MACs dense-eq. | "
             "EMD / raw bits | bf16 moved / raw (all) | host MFLOP | host MB r/w |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["golden"]:
        lines.append(f"| {r['workload']} | {r['preset']} | {r['bit_exact_vs_td3_update']} | {r['cycles_estimate']:,} | "
                     f"{r['array_utilization_estimate']:.3f} | {r['macs']:,} | {r['macs_dense_equiv']:,} | "
                     f"{r['emd_bits_over_raw']:.3f} | {r['bf16_bits_over_raw_all']:.3f} | {r['host_flops'] / 1e6:.2f} | "
                     f"{r['host_bytes_read'] / 1e6:.1f} / {r['host_bytes_written'] / 1e6:.1f} |")
    lines += ["", "### Memory words per tensor kind (default preset)", "",
              "| workload | kind | raw bf16 words | EMD words | raw-equivalent of the EMD words | EMD / raw | fp32 words |",
              "|---|---|---|---|---|---|---|"]
    for r in doc["golden"]:
        if r["preset"] != "default":
            continue
        for kind, d in sorted(r["traffic_words"].items()):
            ratio = d["emd_words"] / d["emd_raw_equiv_words"] if d["emd_raw_equiv_words"] else float("nan")
            lines.append(f"| {r['workload']} | {kind} | {d['raw_words']:,} | {d['emd_words']:,} | "
                         f"{d['emd_raw_equiv_words']:,} | {ratio:.3f} | {d['fp32_words']:,} |")
    if doc.get("rtl"):
        lines += ["", "## RTL (Verilator, default preset)", "", doc.get("rtl_note", ""), "",
                  "| workload | ok | bit-exact images | bit-exact state | cycles | array util. (EX_STEPS / cycles) | "
                  "sim cycles/s | wall s |", "|---|---|---|---|---|---|---|---|"]
        for r in doc["rtl"]:
            if not r.get("ok"):
                lines.append(f"| {r['workload']} | no | | | | | | {r.get('wall_s')} |")
                continue
            lines.append(f"| {r['workload']} | yes | {r['images_equal']} | {r['state_equal']} | {r['cycles']:,} | "
                         f"{r['array_utilization']:.3f} | {r['sim_cycles_per_s']:,.0f} | {r['wall_s']:.0f} |")
    if doc.get("area"):
        lines += ["", "## Area (generic GE library, Yosys 0.70; operand SRAMs black boxes)", "",
                  "| preset | logic (GE) | flip-flops | min period | SRAM bits | how |", "|---|---:|---:|---:|---:|---|"]
        for preset, a in doc["area"].items():
            lines.append(f"| {preset} | {a['logic_ge']:,.0f} | {a['flip_flops']:,} | {a['min_period_ns']:.2f} ns | "
                         f"{sum(a['sram_bits'].values()):,} ({', '.join(f'{k} {v:,}' for k, v in a['sram_bits'].items())}) "
                         f"| {a['source']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--presets", nargs="+", default=["default", "paper"])
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    ap.add_argument("--rtl", action="store_true", help="also run the default preset on Verilator")
    ap.add_argument("--rtl-note", default="", help="where the RTL results come from (stored with them)")
    ap.add_argument("--keep-golden", action="store_true",
                    help="take the machine-model records of the committed bench/results/top_td3.json")
    ap.add_argument("--reuse-rtl", action="store_true",
                    help="take RTL results already in build/bench/top_td3/ instead of running them again")
    args = ap.parse_args(argv)
    doc = {**stamp("top_td3", ("numpy", "amaranth", "cocotb")),
           "setup": ("HalfCheetah-v5 networks 17-256-256-6 / 23-256-256-1, batch 256, one complete TD3 update "
                     "(critics, actor, soft targets) from the committed trace's weights (golden/workloads.py); "
                     "GST: l2 circulant (trace v) or l2 group-sparse at 75 % of blocks (block norm of the "
                     "trace's dense weights); bf16 operands EMD-coded (golden.emd default format) except the "
                     "raw sparse kept blocks and bitmaps the transposer reads; fp32 accumulators raw."),
           "golden": [], "rtl": []}
    committed = read_results("top_td3") or {}
    if "area" in committed:  # synthesis figures (omnidrl synth omnidrl), recorded beside the runs
        doc["area"] = committed["area"]
    kept = committed.get("golden", []) if args.keep_golden else []
    doc["golden"] = [r for r in kept if r["preset"] in args.presets and r["workload"] in args.workloads]
    for preset in ([] if args.keep_golden else args.presets):
        for name in args.workloads:
            print(f"[top_td3] machine model: {name} on {preset} ...", flush=True)
            r = golden_run(name, preset)
            print(f"[top_td3]   bit-exact {r['bit_exact_vs_td3_update']}, {r['cycles_estimate']:,} cycles, "
                  f"util {r['array_utilization_estimate']:.3f}, EMD/raw {r['emd_bits_over_raw']:.3f} "
                  f"({r['machine_model_wall_s']} s)", flush=True)
            doc["golden"].append(r)
    if args.rtl:
        for name in args.workloads:
            print(f"[top_td3] Verilator: {name} on default ...", flush=True)
            r = rtl_run(name, "default", reuse=args.reuse_rtl)
            print(f"[top_td3]   {'ok' if r.get('ok') else 'FAILED'} ({r.get('wall_s_with_build', r.get('wall_s'))} s)",
                  flush=True)
            doc["rtl"].append(r)
    if args.rtl_note:
        doc["rtl_note"] = args.rtl_note
    g = {(r["workload"], r["preset"]): r for r in doc["golden"]}
    rtl = {r["workload"]: r for r in doc["rtl"] if r.get("ok")}
    summary = {}
    if ("halfcheetah-dense", "default") in g:
        d = g[("halfcheetah-dense", "default")]
        summary["cycles_per_update_dense_estimate"] = d["cycles_estimate"]
        summary["array_utilization_dense_estimate"] = d["array_utilization_estimate"]
        summary["emd_bits_over_raw"] = d["emd_bits_over_raw"]
    for key, wl in (("dense", "halfcheetah-dense"), ("gst_circ", "halfcheetah-circ"), ("gst_sparse", "halfcheetah-sparse")):
        if wl in rtl:
            summary[f"bit_exact_{key}"] = bool(rtl[wl]["images_equal"] and rtl[wl]["state_equal"])
    if "halfcheetah-dense" in rtl:
        summary["cycles_per_update_dense"] = rtl["halfcheetah-dense"]["cycles"]
        summary["array_utilization_dense"] = rtl["halfcheetah-dense"]["array_utilization"]
    for wl in ("halfcheetah-circ", "halfcheetah-sparse"):
        if wl in rtl:
            summary[f"cycles_per_update_{wl.split('-')[1]}"] = rtl[wl]["cycles"]
    if "cycles_per_update_sparse" in summary or "cycles_per_update_circ" in summary:
        summary["cycles_per_update_gst"] = min(v for k, v in summary.items() if k in ("cycles_per_update_sparse",
                                                                                     "cycles_per_update_circ"))
    doc.update(summary)
    path = write_results("top_td3", doc, markdown(doc))
    print(f"[top_td3] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
