"""GST core benchmark: utilization, sparse speed-up, circulant weight reads, TD3 update cycles, area.

All cycle figures come from ``golden.pe_array.cycle_model``, which the test suite proves equal to
the RTL's ``busy`` cycles for every mode (Amaranth simulator, Icarus and Verilator; random shapes
and every layer of the recorded TD3 trace). Area comes from ``omnidrl synth`` (Yosys through
pyosys, GE with the project's gate-equivalent Liberty; operand buffers are black boxes).

Figures (``bench/results/pe_array.json``):

* dense cycles, MACs/cycle and utilization of every GEMM of the TD3 layers (actor 17-256-256-6,
  critics 23-256-256-1, batch 256; and the 400-300 variant);
* group-sparse speed-up over dense at block sparsity 0-90 % (bitmaps from the real trained
  weights of the trace where available, random otherwise) against the ideal 1/density;
* circulant weight-buffer reads against dense (forward and W^T);
* cycles of one whole TD3 update (critic step plus half an actor step, policy delay 2), dense
  and GST (circulant hidden layer);
* area of the array (GE, GE per MAC vs the single PE) and iCE40/Xilinx resource counts;
* how much of the operand-load time two (ping-pong) banks hide over command sequences (the
  three GEMMs of a 256 x 256 layer, one whole TD3 update), from ``golden.pe_array.sequence_cycles``,
  checked against the Amaranth simulation of a small sequence.

Usage: ``python bench/pe_array.py [--preset default] [--no-synth | --reuse-synth]
[--synth-presets tiny default] [--trace BATCH]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (area_ge, bench_parser, read_results, run_info, sram_ge, synth_records,  # noqa: E402
                           td3_layer_sizes, write_results)
from golden.pe_array import ceil_div, cycle_model, sequence_cycles  # noqa: E402
from hdl.pe_array import PEArrayConfig  # noqa: E402

BATCH = 256


def nets(hidden=(256, 256)):
    """{net: [(name, M=out, N=in)]} for the TD3 actor and critic (``td3_layer_sizes``)."""
    return {net: [(f"l{i + 1}", n_out, n_in) for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
            for net, sizes in td3_layer_sizes(hidden=hidden).items()}


def buffer_bits(cfg) -> int:
    """Operand-buffer bits of one bank: A and B words of 16 bits per row / column."""
    return 16 * (cfg.a_depth * cfg.rows + cfg.b_depth * cfg.cols)


def gemm_shapes(m_out, n_in, batch=BATCH):
    """(mode-free) GEMM shapes (M, N, K) of the three roles of a layer y = W x."""
    return {"fwd": (m_out, batch, n_in), "dx": (n_in, batch, m_out), "dW": (m_out, n_in, batch)}


def dense_figures(shape, variants):
    rows = []
    for variant, hidden in variants.items():
        for net, layers in nets(hidden=hidden).items():
            for name, m_out, n_in in layers:
                for role, (m, n, k) in gemm_shapes(m_out, n_in).items():
                    rep = cycle_model("dense", m, n, k, shape)
                    macs = m * n * k
                    rows.append({"variant": variant, "net": net, "layer": name, "gemm": role,
                                 "M": m, "N": n, "K": k, "cycles": rep.cycles,
                                 "macs_per_cycle": macs / rep.cycles,
                                 "utilization": macs / (rep.cycles * shape.rows * shape.cols)})
    return rows


def bitmaps(k, sparsities, seed=0):
    """Block bitmaps of the trace's dense actor l2 weights at each sparsity (largest-norm blocks
    kept), or random bitmaps with the exact kept count if the trace is missing."""
    try:
        from golden.bf16 import bf16_to_f32
        from golden.gst import block_bitmap
        from golden.traces import load_trace
        w = bf16_to_f32(load_trace()["dense/actor/l2/W"])
        return "trace dense/actor/l2/W block norms", {s: block_bitmap(w, k, s).astype(np.uint8) for s in sparsities}
    except Exception:  # noqa: BLE001 - the benchmark still runs without the trace
        rng = np.random.default_rng(seed)
        out = {}
        for s in sparsities:
            bm = np.zeros((256 // k) ** 2, np.uint8)
            bm[rng.choice(bm.size, int(round(bm.size * (1 - s))), replace=False)] = 1
            out[s] = bm.reshape(256 // k, 256 // k)
        return "random", out


def sparse_figures(shape, sparsities):
    k = shape.block_size
    source, bms = bitmaps(k, sparsities)
    dense = {role: cycle_model("dense", *gemm_shapes(256, 256)[role], shape).cycles for role in ("fwd", "dx", "dW")}
    rows = []
    for s, bm in bms.items():
        density = bm.mean()
        m, n, kd = gemm_shapes(256, 256)["fwd"]
        fwd = cycle_model("sparse", m, n, kd, shape, bm).cycles
        dx = cycle_model("sparse", m, n, kd, shape, np.ascontiguousarray(bm.T)).cycles
        m, n, kd = gemm_shapes(256, 256)["dW"]
        dw = cycle_model("wgrad", m, n, kd, shape, bm).cycles
        ideal = 1 / density if density else float("inf")
        row = {"sparsity": s, "density": float(density), "ideal_speedup": ideal}
        for role, cyc in (("fwd", fwd), ("dx", dx), ("dW", dw)):
            sp = dense[role] / cyc
            row[f"{role}_cycles"] = cyc
            row[f"{role}_speedup"] = sp
            row[f"{role}_speedup_vs_ideal"] = sp / ideal
        rows.append(row)
    return source, dense, rows


def circ_figures(shape):
    m, n, k = gemm_shapes(256, 256)["fwd"]
    out = {}
    for role, transpose in (("fwd", False), ("dx", True)):
        d = cycle_model("dense", m, n, k, shape)
        c = cycle_model("circ", m, n, k, shape)
        out[role] = {"dense_weight_reads": d.a_reads, "circ_weight_reads": c.a_reads,
                     "reduction": d.a_reads / c.a_reads, "dense_cycles": d.cycles, "circ_cycles": c.cycles}
    m, n, k = gemm_shapes(256, 256)["dW"]
    dv = cycle_model("dv", m, n // shape.block_size, k, shape)
    dw = cycle_model("dense", m, n, k, shape)
    out["dW"] = {"dense_cycles": dw.cycles, "dv_cycles": dv.cycles,
                 "dense_outputs": m * n, "dv_outputs": m * n // shape.block_size,
                 "dv_useful_macs": m * (n // shape.block_size) * k * shape.block_size}
    return out


def layer_cycles(shape, role, m_out, n_in, circ):
    if circ:  # circulant layers are padded to whole blocks (golden.gst; e.g. 300 -> 304)
        m_out, n_in = ceil_div(m_out, shape.block_size) * shape.block_size, ceil_div(n_in, shape.block_size) * shape.block_size
    m, n, k = gemm_shapes(m_out, n_in)[role]
    if circ and role == "fwd":
        return cycle_model("circ", m, n, k, shape).cycles
    if circ and role == "dx":
        return cycle_model("circ", m, n, k, shape).cycles  # W^T: same schedule
    if circ and role == "dW":
        return cycle_model("dv", m, n // shape.block_size, k, shape).cycles
    return cycle_model("dense", m, n, k, shape).cycles


def td3_update_cycles(shape, hidden=(256, 256), circ_layers=()):
    """One TD3 update, counted in GEMMs (policy delay 2: half an actor step per update).

    Critic step: target actor forward (3 layers), two target critics forward (3 each), two
    critics forward and backward (dW of every layer, dX of layers 2-3). Actor step: actor
    forward, critic 1 forward and dX through all three layers (for dQ/da), actor dW of every
    layer and dX of layers 2-3.
    """
    nn = nets(hidden=hidden)

    def run(net, roles_per_layer):
        total = 0
        for name, m_out, n_in in nn[net]:
            for role in roles_per_layer(name):
                total += layer_cycles(shape, role, m_out, n_in, name in circ_layers)
        return total

    fwd = lambda name: ["fwd"]  # noqa: E731
    back = lambda name: ["fwd", "dW"] + (["dx"] if name != "l1" else [])  # noqa: E731
    critic_step = run("actor", fwd) + 4 * run("critic", fwd) + 2 * (run("critic", back) - run("critic", fwd))
    actor_step = (run("actor", fwd) + run("critic", lambda n: ["fwd", "dx"])
                  + run("actor", back) - run("actor", fwd))
    return {"critic_step": critic_step, "actor_step": actor_step, "per_update": critic_step + actor_step / 2}


def dense_loads(shape, m, n, k):
    """Load beats of a dense GEMM: A words (one per tile row and k) plus B words."""
    return ceil_div(m, shape.rows) * k + ceil_div(n, shape.cols) * k


def td3_update_gemms(hidden=(256, 256)):
    """The dense GEMMs of one TD3 update in issue order, as (M, N, K) (the commands that
    :func:`td3_update_cycles` counts; the actor step at its full weight, every second update)."""
    nn = nets(hidden=hidden)

    def gemms(net, roles_per_layer, reverse=False):
        layers = list(reversed(nn[net])) if reverse else nn[net]
        return [gemm_shapes(m_out, n_in)[role] for name, m_out, n_in in layers for role in roles_per_layer(name)]

    fwd = gemms("actor", lambda n: ["fwd"])
    critic = [g for _ in range(4) for g in gemms("critic", lambda n: ["fwd"])]
    critic_back = [g for _ in range(2) for g in gemms("critic", lambda n: ["dW"] + (["dx"] if n != "l1" else []), True)]
    actor = (gemms("actor", lambda n: ["fwd"]) + gemms("critic", lambda n: ["fwd"])
             + gemms("critic", lambda n: ["dx"], True)
             + gemms("actor", lambda n: ["dW"] + (["dx"] if n != "l1" else []), True))
    return fwd + critic + critic_back + actor


def overlap(shape, gemms):
    """1-bank vs 2-bank cycles of a command sequence with its loads (every operand reloaded)."""
    items = [(dense_loads(shape, *g), cycle_model("dense", *g, shape).cycles) for g in gemms]
    one, two = sequence_cycles(items, 1), sequence_cycles(items, 2)
    compute = sum(c + 1 for _, c in items)
    return {"commands": len(items), "load_beats": one.load_beats, "compute_cycles": compute,
            "cycles_1_bank": one.total, "cycles_2_banks": two.total,
            "load_overhead_1_bank": (one.total - compute) / compute,
            "load_overhead_2_banks": (two.total - compute) / compute,
            "hidden_fraction": (one.total - two.total) / (one.total - compute)}


def overlap_sim_check(seed=0):
    """The model against the Amaranth simulation of a small sequence (tiny preset, the three
    GEMMs of a 16 x 16 layer at batch 16, every mode's loads), for 1 and 2 banks."""
    from tb.stimulus.pe_array import SequenceHost, rand_bf16, run_host
    from golden.pe_array import make_job
    rng = np.random.default_rng(seed)
    out = {}
    for banks in (1, 2):
        cfg = PEArrayConfig.preset("tiny", banks=banks)
        w, x, dy = rand_bf16(rng, (16, 16)), rand_bf16(rng, (16, 16)), rand_bf16(rng, (16, 16))
        jobs = [make_job("dense", cfg, w, x.T.copy()), make_job("dense", cfg, w.T.copy(), dy.T.copy()),
                make_job("dense", cfg, dy.T.copy(), x)]
        jobs = [job.in_bank(i % banks) if banks > 1 else job for i, job in enumerate(jobs)]
        host = run_host(cfg, SequenceHost(jobs, banks))
        model = sequence_cycles(jobs, banks)
        out[f"{banks}_bank"] = {"sim_cycles": host.done[-1], "model_cycles": model.total,
                                "equal": host.done == model.done and not host.mismatches(cfg.cols)}
    return out


def two_bank_cost(cfg, area, synthesize=False):
    """What the second bank costs: SRAM bits and bitmap flip-flops double; the generic-synthesis
    area of the tiny preset with ``banks=2`` against ``area["tiny"]`` (one bank), from its report
    (``omnidrl synth pe_array --preset tiny --set banks=2``; run first when ``synthesize``)."""
    sram_bits = buffer_bits(cfg)
    out = {"preset": "default", "sram_bits_1_bank": sram_bits, "sram_bits_2_banks": 2 * sram_bits,
           "sram_ge_model_extra": sram_ge(sram_bits),
           "bitmap_flops_extra": cfg.max_blocks ** 2 if cfg.sparse else 0}
    two = area_ge(PEArrayConfig.preset("tiny", banks=2), synthesize_missing=synthesize)
    one = area.get("tiny", {}).get("generic:area", {}).get("value")
    if two and one:
        out["tiny_logic_ge_1_bank"], out["tiny_logic_ge_2_banks"] = one, two
        out["tiny_logic_ge_increase"] = two / one - 1
    return out


def synth(preset, target, reuse_only=False):
    """``"target:metric" -> {value, unit, tool}`` of the preset's synthesis report (synthesized first
    unless ``reuse_only``); a failed synthesis gives ``{"target:error": [its message]}``."""
    from flows.synth import SynthError
    try:
        records = synth_records(PEArrayConfig.preset(preset), target, synthesize_missing=not reuse_only)
    except SynthError as exc:
        return {f"{target}:error": str(exc).splitlines()[-1:]}
    return {f"{target}:{metric}": {"value": r["value"], "unit": r["unit"], "tool": f"{r['tool']} {r['tool_version']}"}
            for metric, r in records.items()}


#: a k = 16 array for the circ-prune stage trace (its circulant layers have k = 16); buffers
#: just large enough for a whole 256 x 256 circulant layer's CIRC and DV commands
K16 = PEArrayConfig(rows=16, cols=16, block_size=16, a_depth=4096, b_depth=512, max_blocks=16)


def trace_verification(batch: int, gstcp: bool = False) -> dict:
    """Every layer of the recorded TD3 trace on Verilator, default array (8x8, k = 8): all three
    GEMMs, dense / group-sparse / circulant / dv, bit-exact, cycles == model (tb/test_pe_array.py).

    ``gstcp``: instead, the circulant layers (l2, k = 16, pruned blocks) of every stage and net
    of the circ-prune stage trace on :data:`K16`: CIRC, CIRC^T and DV of the whole layers and the
    probes that tell added pruned products from skipped ones."""
    import re
    import time
    from golden.traces import GSTCP_TRACE
    from tb.runner import SimulationFailed, run_cocotb
    cfg = K16 if gstcp else PEArrayConfig.preset("default", max_blocks=32)
    env = {"PEA_TRACE_BATCH": str(batch), "PEA_TRACE_METHODS": "dense,gst", "PEA_TRACE_NETS": "actor,critic1,critic2"}
    if gstcp:
        env.update(PEA_TRACE_FILE=GSTCP_TRACE.name, PEA_TRACE_METHODS="early,middle,late", PEA_TRACE_LAYERS="l2")
    t0 = time.monotonic()
    try:
        xml = run_cocotb(cfg, "verilator", testcase="trace_layers", tag=f"bench-trace{'-gstcp' * gstcp}-{batch}",
                         extra_env=env)
        ok, why = True, ""
    except SimulationFailed as exc:
        xml, ok, why = None, False, str(exc).splitlines()[0]
    log = (Path(xml).parent / "sim.log").read_text(errors="replace") if xml else ""
    m = re.search(r"trace: (\d+) commands \((\d+) with back-pressure; modes ([a-z,]+)\), (\d+) beats", log)
    return {"passed": ok, "error": why, "batch": batch, "config": cfg.to_dict(),
            "commands": int(m.group(1)) if m else None, "with_back_pressure": int(m.group(2)) if m else None,
            "modes": m.group(3).split(",") if m else None, "beats": int(m.group(4)) if m else None,
            "wall_s": round(time.monotonic() - t0, 1)}


def markdown(res: dict) -> str:
    cfg = res["config"]
    lines = ["# GST core (pe_array) benchmark", "",
             f"{res['date']}; array {cfg['rows']}x{cfg['cols']}, k = {cfg['block_size']}; cycles from "
             f"{res['cycle_source']}.", "",
             "| figure | value | target |", "|---|---:|---|",
             f"| dense utilization, 256x256 layers (min over fwd/dx/dW) | {res['dense_utilization_256x256']:.5f} | >= 0.90 |",
             f"| sparse speed-up / ideal at 75 % block sparsity (min over fwd/dx/dW) | "
             f"{res['sparse_speedup_vs_ideal_at_75pct']:.4f} | >= 0.80 |",
             f"| circulant weight-buffer read reduction | {res['circulant_weight_read_reduction']:.2f} | = k |", "",
             "## Dense GEMMs (batch 256)", "",
             "| variant | net | layer | GEMM | M | N | K | cycles | MAC/cycle | utilization |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["dense"]:
        lines.append(f"| {r['variant']} | {r['net']} | {r['layer']} | {r['gemm']} | {r['M']} | {r['N']} | {r['K']} | "
                     f"{r['cycles']} | {r['macs_per_cycle']:.1f} | {r['utilization']:.3f} |")
    lines += ["", f"## Group-sparse speed-up (256x256 layer; bitmaps: {res['sparse']['bitmaps']})", "",
              "| block sparsity | ideal | fwd | dx (W^T) | dW (kept tiles) |", "|---:|---:|---:|---:|---:|"]
    for r in res["sparse"]["rows"]:
        lines.append(f"| {r['sparsity']:.2f} | {r['ideal_speedup']:.2f}x | {r['fwd_speedup']:.2f}x | "
                     f"{r['dx_speedup']:.2f}x | {r['dW_speedup']:.2f}x |")
    c = res["circulant"]
    lines += ["", "## Circulant (256x256 layer, batch 256)", "",
              "| GEMM | dense weight reads | circulant weight reads | reduction | dense cycles | circulant cycles |",
              "|---|---:|---:|---:|---:|---:|"]
    for g in ("fwd", "dx"):
        lines.append(f"| {g} | {c[g]['dense_weight_reads']} | {c[g]['circ_weight_reads']} | {c[g]['reduction']:.2f} | "
                     f"{c[g]['dense_cycles']} | {c[g]['circ_cycles']} |")
    lines.append(f"| dW -> dv | | | outputs {c['dW']['dense_outputs']} -> {c['dW']['dv_outputs']} | "
                 f"{c['dW']['dense_cycles']} | {c['dW']['dv_cycles']} |")
    lines += ["", "## One TD3 update (critic step + half an actor step)", "",
              "| variant | dense cycles | GST (circulant l2) cycles |", "|---|---:|---:|"]
    for v, t in res["td3_update_cycles"].items():
        lines.append(f"| {v} | {t['dense']['per_update']:.0f} | {t['gst_circ_l2']['per_update']:.0f} |")
    if res.get("area"):
        lines += ["", "## Area (`omnidrl synth pe_array`; operand buffers are black boxes)", "",
                  "| preset | metric | value |", "|---|---|---:|"]
        for preset, a in res["area"].items():
            for key, val in a.items():
                if key.startswith(("generic:cells.",)):
                    continue
                v = val["value"] if isinstance(val, dict) else val
                lines.append(f"| {preset} | {key} | {v if not isinstance(v, float) else round(v, 3)} |")
    ov = res.get("load_overlap")
    if ov:
        lines += ["", "## Ping-pong operand banks: loads overlapping compute", "",
                  f"Cycle model `{ov['model']}`.", "",
                  "| sequence | commands | load beats | compute cycles | 1 bank | 2 banks | load overhead 1 -> 2 banks | "
                  "hidden fraction |", "|---|---:|---:|---:|---:|---:|---|---:|"]
        for name, key in (("three GEMMs of a 256x256 layer", "layer_256x256_three_gemms"),
                          ("one TD3 update (dense)", "td3_update_dense")):
            r = ov[key]
            lines.append(f"| {name} | {r['commands']} | {r['load_beats']} | {r['compute_cycles']} | {r['cycles_1_bank']} | "
                         f"{r['cycles_2_banks']} | {100 * r['load_overhead_1_bank']:.2f} % -> "
                         f"{100 * r['load_overhead_2_banks']:.2f} % | {r['hidden_fraction']:.4f} |")
        if ov.get("sim_check"):
            lines += ["", "Simulation check (Amaranth, tiny, three GEMMs of a 16x16 layer): " + "; ".join(
                f"{k}: sim {v['sim_cycles']} = model {v['model_cycles']}" if v["equal"] else f"{k}: MISMATCH"
                for k, v in ov["sim_check"].items()) + "."]
        c = ov["two_bank_cost"]
        lines += ["", f"Second bank cost ({c['preset']}): SRAM {c['sram_bits_1_bank']} -> {c['sram_bits_2_banks']} bits "
                  f"(+{c['sram_ge_model_extra']} GE in the SRAM model), +{c['bitmap_flops_extra']} bitmap flip-flops"
                  + (f"; tiny logic {c['tiny_logic_ge_1_bank']:.0f} -> {c['tiny_logic_ge_2_banks']:.0f} GE "
                     f"(+{100 * c['tiny_logic_ge_increase']:.1f} %)" if "tiny_logic_ge_2_banks" in c else
                     "; logic area of the two-bank build not synthesized") + "."]
    for key, title in (("trace_verification", "TD3 trace verification (Verilator)"),
                       ("trace_verification_gstcp", "Circ-prune stage trace, l2 on a k = 16 array (Verilator)")):
        t = res.get(key)
        if t:
            lines += ["", f"## {title}", "",
                      f"{'PASS' if t['passed'] else 'FAIL'}: {t['commands']} commands (modes {', '.join(t['modes'] or [])}), "
                      f"batch {t['batch']}, {t['beats']} beats bit-exact, {t['with_back_pressure']} with back-pressure, "
                      f"the others cycle-exact; {t['wall_s']} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--preset", default="default", help="array for the cycle figures")
    ap.add_argument("--no-synth", action="store_true", help="run no synthesis; keep the recorded area figures")
    ap.add_argument("--synth-presets", nargs="+", default=["tiny"],
                    help="presets to synthesize (tiny also gets its two-bank build, generic target)")
    ap.add_argument("--targets", nargs="+", default=["generic", "xilinx", "ice40"], help="synthesis targets")
    ap.add_argument("--reuse-synth", action="store_true",
                    help="only read existing synthesis reports (run nothing)")
    ap.add_argument("--no-sim-check", action="store_true",
                    help="skip the Amaranth simulation that checks the overlapped-load model")
    ap.add_argument("--trace", type=int, default=0, metavar="BATCH",
                    help="also verify every trace layer on Verilator with BATCH batch rows (slow)")
    ap.add_argument("--trace-gstcp", type=int, default=0, metavar="BATCH",
                    help="also run the circ-prune stage trace's circulant layers on a k = 16 array (Verilator; "
                    "its build took over 15 minutes on a shared 2-core machine)")
    args = ap.parse_args(argv)
    previous = read_results("pe_array") or {}
    cfg = PEArrayConfig.preset(args.preset)
    shape = cfg  # golden reads rows, cols and block_size from the config
    variants = {"256-256": (256, 256), "400-300": (400, 300)}

    dense = dense_figures(shape, variants)
    util_256 = min(r["utilization"] for r in dense if r["variant"] == "256-256" and r["layer"] == "l2")
    sparsities = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9]
    bm_source, dense_ref, sparse = sparse_figures(shape, sparsities)
    at75 = next(r for r in sparse if r["sparsity"] == 0.75)
    sp75 = min(at75[f"{g}_speedup_vs_ideal"] for g in ("fwd", "dx", "dW"))
    circ = circ_figures(shape)
    circ_red = min(circ["fwd"]["reduction"], circ["dx"]["reduction"])
    td3 = {v: {"dense": td3_update_cycles(shape, h), "gst_circ_l2": td3_update_cycles(shape, h, ("l2",))}
           for v, h in variants.items()}
    layer = overlap(shape, [gemm_shapes(256, 256)[r] for r in ("fwd", "dx", "dW")])
    update = overlap(shape, td3_update_gemms())
    sim_check = overlap_sim_check() if not args.no_sim_check else previous.get("load_overlap", {}).get("sim_check")

    print(f"dense_utilization_256x256 = {util_256:.5f} (min over fwd/dx/dW of the 256x256 layers, "
          f"{shape.rows}x{shape.cols} array)")
    for r in dense:
        if r["variant"] == "256-256" and r["net"] == "actor":
            print(f"  actor {r['layer']} {r['gemm']:3s} M={r['M']} N={r['N']} K={r['K']}: {r['cycles']} cycles, "
                  f"{r['macs_per_cycle']:.1f} MAC/cycle, utilization {r['utilization']:.3f}")
    print(f"sparse_speedup_vs_ideal_at_75pct = {sp75:.4f} (min over fwd/dx/dW; speed-ups "
          f"{at75['fwd_speedup']:.2f}/{at75['dx_speedup']:.2f}/{at75['dW_speedup']:.2f}x, ideal "
          f"{at75['ideal_speedup']:.2f}x; bitmaps: {bm_source})")
    for r in sparse:
        print(f"  sparsity {r['sparsity']:.2f}: fwd {r['fwd_speedup']:.2f}x dx {r['dx_speedup']:.2f}x "
              f"dW {r['dW_speedup']:.2f}x, ideal {r['ideal_speedup']:.2f}x")
    print(f"circulant_weight_read_reduction = {circ_red:.2f} (k = {shape.block_size}; dense "
          f"{circ['fwd']['dense_weight_reads']} vs circ {circ['fwd']['circ_weight_reads']} A reads)")
    for v, t in td3.items():
        print(f"td3_update_cycles[{v}] = dense {t['dense']['per_update']:.0f}, GST (circulant l2) "
              f"{t['gst_circ_l2']['per_update']:.0f}")

    print(f"load_overlap_hidden_fraction = {layer['hidden_fraction']:.4f} (three GEMMs of a 256x256 layer: "
          f"{layer['cycles_1_bank']} cycles with 1 bank, {layer['cycles_2_banks']} with 2; load overhead "
          f"{100 * layer['load_overhead_1_bank']:.2f} % -> {100 * layer['load_overhead_2_banks']:.2f} %)")
    print(f"  one TD3 update ({update['commands']} GEMMs): hidden {update['hidden_fraction']:.4f}, overhead "
          f"{100 * update['load_overhead_1_bank']:.2f} % -> {100 * update['load_overhead_2_banks']:.2f} %; "
          f"simulation check {sim_check}")

    synth_tiny = not (args.no_synth or args.reuse_synth) and "tiny" in args.synth_presets
    area = {}
    if not args.no_synth:
        from hdl.pe import PEConfig
        pe = area_ge(PEConfig.preset("default"), synthesize_missing=not args.reuse_synth)
        for preset in args.synth_presets:
            area[preset] = {}
            for target in args.targets:
                area[preset].update(synth(preset, target, args.reuse_synth))
            pcfg = PEArrayConfig.preset(preset)
            # Operand buffers are synthesis black boxes; their area comes from the SRAM model.
            area[preset]["buffer_bits"] = buffer_bits(pcfg)
            area[preset]["buffer_sram_ge_model"] = sram_ge(buffer_bits(pcfg))
            ge = area[preset].get("generic:area", {}).get("value")
            if ge:
                macs = pcfg.rows * pcfg.cols
                area[preset]["ge_per_mac"] = ge / macs
                if pe:
                    area[preset]["ge_per_mac_vs_single_pe"] = ge / macs / pe
                print(f"area[{preset}] = {ge:.0f} GE, {ge / macs:.0f} GE per MAC"
                      + (f" ({ge / macs / pe:.2f}x the single PE, {pe:.0f} GE)" if pe else ""))
            for key in ("xilinx:luts", "xilinx:flip_flops", "xilinx:dsps", "ice40:luts", "ice40:dsps",
                        "ice40:logic_cells", "ice40:fits_up5k", "ice40:fmax"):
                if key in area[preset]:
                    print(f"  {preset} {key} = {area[preset][key]['value']}")
            for key in [k for k in area[preset] if k.endswith(":error")]:
                print(f"  {preset}: synthesis {key} {area[preset][key]}")

    trace = previous.get("trace_verification")
    if args.trace:
        trace = trace_verification(args.trace)
        print(f"trace_verification = {'PASS' if trace['passed'] else 'FAIL'}: {trace['commands']} commands "
              f"(modes {trace['modes']}), batch {trace['batch']}, {trace['wall_s']} s {trace['error']}")
    trace_gstcp = previous.get("trace_verification_gstcp")
    if args.trace_gstcp:
        trace_gstcp = trace_verification(args.trace_gstcp, gstcp=True)
        print(f"trace_verification_gstcp = {'PASS' if trace_gstcp['passed'] else 'FAIL'}: {trace_gstcp['commands']} "
              f"commands (modes {trace_gstcp['modes']}), batch {trace_gstcp['batch']}, {trace_gstcp['wall_s']} s "
              f"{trace_gstcp['error']}")
    if args.no_synth and previous.get("area"):
        area = previous["area"]  # keep the last synthesis figures
        for preset, a in area.items():
            a["buffer_bits"] = buffer_bits(PEArrayConfig.preset(preset))
            a["buffer_sram_ge_model"] = sram_ge(a["buffer_bits"])

    two_bank = two_bank_cost(cfg, area, synthesize=synth_tiny)
    if args.no_synth:  # the recorded two-bank synthesis goes with the recorded areas
        recorded = previous.get("load_overlap", {}).get("two_bank_cost", {})
        two_bank.update({k: v for k, v in recorded.items() if k.startswith("tiny_logic_ge")})

    result = {
        **run_info(("amaranth", "numpy", "cocotb", "verilator", "pyosys")),
        "config": cfg.to_dict(),
        "cycle_source": "golden.pe_array.cycle_model (equal to RTL busy cycles in tests/test_pe_array_*)",
        "dense_utilization_256x256": util_256,
        "sparse_speedup_vs_ideal_at_75pct": sp75,
        "circulant_weight_read_reduction": circ_red,
        "dense": dense,
        "sparse": {"bitmaps": bm_source, "dense_cycles": dense_ref, "rows": sparse},
        "circulant": circ,
        "td3_update_cycles": td3,
        "load_overlap_hidden_fraction": layer["hidden_fraction"],
        "load_overlap": {"layer_256x256_three_gemms": layer, "td3_update_dense": update, "sim_check": sim_check,
                         "model": "golden.pe_array.sequence_cycles (loads one beat per cycle, every operand "
                                  "reloaded per command, job i in bank i % banks)",
                         "two_bank_cost": two_bank},
        "area": area,
        "trace_verification": trace,
        "trace_verification_gstcp": trace_gstcp,
    }
    write_results("pe_array", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
