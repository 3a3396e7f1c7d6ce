"""EMD compression benchmark: bits per value and per exponent against top-3 and the entropy bound.

Usage: ``python bench/emd_ratio.py [--quick] [--no-synth] [--integrity-only]``

Tensors: every tensor of the committed TD3 trace (``golden.traces``) when it is present;
otherwise a synthetic TD3-shaped set (actor 17-256-256-6 and critic 23-256-256-1 at three
training stages: weights, ReLU activations, output and weight gradients), labelled as such in
the results. For each tensor it measures EMD (the defaults and the simple scheme), top-3 and
the order-0 exponent entropy H; a sweep over G, D, the window top and the escape width picks
the defaults (the lowest element-weighted exponent bits). Area comes from the ``omnidrl synth``
reports of the encoder and decoder presets (synthesized when missing; ``--no-synth`` only reads
the reports that exist).

Integrity (``--integrity-only`` runs just this): streams cut from the same tensors, coded with
the defaults without a CRC and with each ``crc_bits``, get one, two or three random bit flips
(the damage classes of ``tb.stimulus.emd.damaged_streams``); each damaged stream is decoded and
counted as rejected (by cause) or silently wrong. The CRC's bit cost is measured on the whole
tensors, one stream each.

Prints one summary line per figure and writes bench/results/emd.json (plus emd.md, emd.png) and
bench/results/emd_integrity.json (plus .md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, ROOT, bench_parser, stamp, synth_records, td3_layer_sizes, write_results  # noqa: E402
from golden import emd  # noqa: E402
from golden.bf16 import f32_to_bf16  # noqa: E402
from golden.codes import EmdDecoderError  # noqa: E402


def synthetic_tensors(seed: int = 0):
    """TD3-shaped tensors at three stages; the scale of weights and gradients changes with stage."""
    rng = np.random.default_rng(seed)
    out = []
    batch = 256
    for stage, (w_sigma_mult, g_scale) in {"early": (0.0, 1e-2), "middle": (0.6, 3e-3), "late": (1.0, 1e-3)}.items():
        for net, sizes in td3_layer_sizes().items():
            x = rng.normal(0, 1, (batch, sizes[0]))
            for li, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                bound = 1 / np.sqrt(n_in)
                w = rng.uniform(-bound, bound, (n_out, n_in))
                if w_sigma_mult:  # training widens the spread: heavier tails than the uniform init
                    w = w + w_sigma_mult * rng.normal(0, bound, w.shape) * rng.lognormal(0, 0.5, w.shape)
                y = x @ w.T
                act = np.maximum(y, 0) if li < len(sizes) - 2 else np.tanh(y)
                dy = rng.normal(0, g_scale, y.shape) * (y > 0 if li < len(sizes) - 2 else 1)
                dw = dy.T @ x / batch
                name = f"{stage}/{net}/l{li}"
                out += [(name, "weight", f32_to_bf16(w)), (name, "activation", f32_to_bf16(act)),
                        (name, "out_grad", f32_to_bf16(dy)), (name, "weight_grad", f32_to_bf16(dw))]
                x = act
    return out


def load_tensors():
    try:
        from golden.traces import iter_tensors, load_trace  # noqa: PLC0415
        trace = load_trace()
    except (ImportError, FileNotFoundError, OSError) as exc:
        return "synthetic (TD3 trace not available: %s)" % type(exc).__name__, synthetic_tensors()
    try:
        from golden.traces import trace_meta  # noqa: PLC0415
        meta = trace_meta(trace)
        runs = meta.get("runs", {})
        steps = sorted({str(r.get("step", "?")) for r in runs.values()})
        label = (f"td3-trace ({meta.get('env', '?')}, runs {'+'.join(sorted(runs))} at step {'/'.join(steps)}, "
                 f"one update each)")
    except Exception:  # noqa: BLE001 - the label is informative only
        label = "td3-trace"
    return label, [(n, k, np.asarray(v, dtype=np.uint16).reshape(-1)) for n, k, v in iter_tensors(trace)]


def sweep_formats(quick: bool):
    fmts = []
    for g in (8, 16, 32):
        for d in (2, 3, 4, 5):
            for e in ((0, 2) if quick else (0, 2, 3)):
                for hi in range(0, min((1 << d) - 1, 6)):
                    fmts.append(emd.EmdFormat(group=g, delta_bits=d, hi=hi, escape_bits=e, sparse=True))
    return fmts


def weighted(tensors, fn):
    n = sum(v.size for _, _, v in tensors)
    return sum(fn(v) for _, _, v in tensors) / n


def area_figures(synthesize: bool = True):
    """Generic-target area, flip-flops and min period of the encoder's and decoder's default and
    paper presets from their ``omnidrl synth`` reports (synthesized first when ``synthesize``;
    a preset without a report is left out)."""
    from flows.synth import report_path  # noqa: PLC0415
    from hdl.emd import EmdDecoderConfig, EmdEncoderConfig  # noqa: PLC0415

    out = {}
    for cls in (EmdEncoderConfig, EmdDecoderConfig):
        for preset in ("default", "paper"):
            cfg = cls.preset(preset)
            vals = {m: r["value"] for m, r in synth_records(cfg, "generic", synthesize_missing=synthesize).items()}
            if "area" in vals:
                out[f"{cfg.BLOCK}/{preset}"] = {"area_ge": vals["area"], "flip_flops": vals.get("flip_flops"),
                                                "min_period_ns": vals.get("min_period"),
                                                "report": str(report_path(cfg).relative_to(ROOT)),
                                                "config": cfg.to_dict()}
    return out


def integrity(source: str, tensors, trials: int = 625, stream_values: int = 512, word_bits: int = 64,
              seed: int = 17) -> dict:
    """Detection of random bit flips without and with the CRC field, and the field's cost.

    For each format (the defaults with ``crc_bits`` 0, 16 and 32) and each damage class (1, 2 or
    3 bit flips at random positions of the stream's words, padding included), ``trials`` streams
    of ``stream_values`` values cut at random from random tensors are damaged and decoded.
    Every format sees the same values and the same flip positions (drawn over the longest
    stream, then wrapped onto each), so the rows compare like with like.
    """
    rng = np.random.default_rng(seed)
    formats = {bits: emd.DEFAULT.replace(crc_bits=bits) for bits in (0, 16, 32)}
    big = [v for _, _, v in tensors if v.size >= stream_values]
    classes = {}
    trial_bits = []
    for flips in (1, 2, 3):
        counts = {bits: {"trials": trials, "silent": 0, "exact": 0, "rejected": 0, "causes": {}} for bits in formats}
        for _ in range(trials):
            v = big[int(rng.integers(len(big)))]
            start = int(rng.integers(0, v.size - stream_values + 1))
            values = v[start:start + stream_values]
            trial_bits.append(emd.encoded_bits(values, formats[0]))
            draws = rng.random(flips)
            for bits, fmt in formats.items():
                words = emd.encode(values, fmt, word_bits)
                n = len(words) * word_bits
                positions = sorted({int(d * n) for d in draws})
                for p in positions:
                    words[p // word_bits] ^= 1 << (p % word_bits)
                c = counts[bits]
                try:
                    ok = np.array_equal(emd.decode(words, fmt, word_bits), values)
                    c["exact" if ok else "silent"] += 1
                except emd.EmdFormatError as exc:
                    c["rejected"] += 1
                    c["causes"][exc.code.name] = c["causes"].get(exc.code.name, 0) + 1
        for c in counts.values():
            c["silent_rate"] = c["silent"] / trials
            c["detected_rate"] = c["rejected"] / trials
        classes[f"{flips}-bit"] = counts
    total = {bits: {k: sum(classes[cl][bits][k] for cl in classes) for k in ("trials", "silent", "exact", "rejected")}
             for bits in formats}
    for t in total.values():
        t["silent_rate"], t["detected_rate"] = t["silent"] / t["trials"], t["rejected"] / t["trials"]
    # Cost: every tensor one stream.
    n_values = sum(v.size for _, _, v in tensors)
    plain_bits = sum(emd.encoded_bits(v, emd.DEFAULT) for _, _, v in tensors)
    cost = {}
    for bits in (16, 32):
        extra = bits * len(tensors)
        cost[bits] = {"bits_per_stream": bits, "streams": len(tensors), "extra_bits": extra,
                      "extra_bits_per_value": extra / n_values, "relative": extra / plain_bits,
                      "relative_at_stream_values": bits / float(np.mean(trial_bits))}
    return {**stamp("emd_integrity", ("numpy",)), "tensor_source": source,
            "format": emd.DEFAULT.label(), "word_bits": word_bits, "stream_values": stream_values, "seed": seed,
            "classes": classes, "total": total, "cost": cost, "values": n_values,
            "plain_bits_per_value": plain_bits / n_values, "codes": [c.name for c in EmdDecoderError]}


def _integrity_markdown(res: dict) -> str:
    lines = ["## EMD integrity (optional CRC field)", "",
             f"`bench/emd_ratio.py --integrity-only`, {res['date']}. Streams of {res['stream_values']} values cut at "
             f"random from the tensors ({res['tensor_source']}), format `{res['format']}` without and with "
             f"`crc_bits`, {res['word_bits']}-bit words; 1, 2 or 3 bit flips at random positions of the words "
             "(padding included), the same values and positions for every format; decoded with "
             "`golden.emd.decode` (the hardware decoder's verdicts match it: tests/test_emd_amaranth.py).", "",
             "| flips | crc_bits | trials | silently wrong | rejected | decoded exactly | causes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for cl, counts in res["classes"].items():
        for bits, c in counts.items():
            causes = ", ".join(f"{k} {v}" for k, v in sorted(c["causes"].items(), key=lambda kv: -kv[1]))
            lines.append(f"| {cl} | {bits} | {c['trials']} | {c['silent']} ({100 * c['silent_rate']:.1f}%) | "
                         f"{c['rejected']} ({100 * c['detected_rate']:.1f}%) | {c['exact']} | {causes} |")
    for bits, t in res["total"].items():
        lines.append(f"| all | {bits} | {t['trials']} | {t['silent']} ({100 * t['silent_rate']:.1f}%) | "
                     f"{t['rejected']} ({100 * t['detected_rate']:.1f}%) | {t['exact']} | |")
    lines += ["", f"Cost: one field per stream. Over the {next(iter(res['cost'].values()))['streams']} "
              f"tensors coded one stream each ({res['values']:,} values, {res['plain_bits_per_value']:.3f} bits/value "
              "without CRC):", "", "| crc_bits | extra bits per stream | extra bits per value | relative | relative on a "
              f"{res['stream_values']}-value stream |", "|---:|---:|---:|---:|---:|"]
    for bits, c in res["cost"].items():
        lines.append(f"| {bits} | {c['bits_per_stream']} | {c['extra_bits_per_value']:.6f} | {100 * c['relative']:.4f}% | "
                     f"{100 * c['relative_at_stream_values']:.2f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = bench_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sweep")
    ap.add_argument("--no-synth", action="store_true", help="run no synthesis: area only from the reports that exist")
    ap.add_argument("--integrity-only", action="store_true", help="only the bit-flip detection and CRC cost figures")
    args = ap.parse_args(argv)
    t0 = time.time()
    source, tensors = load_tensors()
    res = integrity(source, tensors)
    res["seconds"] = round(time.time() - t0, 1)
    write_results("emd_integrity", res, _integrity_markdown(res))
    for bits, t in res["total"].items():
        print(f"emd_ratio: crc_bits={bits}: {t['silent']} of {t['trials']} flipped streams silently wrong "
              f"({100 * t['silent_rate']:.1f}%), {t['rejected']} rejected")
    if args.integrity_only:
        return 0
    n_total = sum(v.size for _, _, v in tensors)

    # Sweep: element-weighted exponent bits of every format over all tensors.
    sweep = []
    kinds = sorted({k for _, k, _ in tensors})
    kind_n = {k: sum(v.size for _, kk, v in tensors if kk == k) for k in kinds}
    kind_best = {}
    for fmt in sweep_formats(args.quick):
        per = [(k, emd.cost(v, fmt)["exponent"]) for _, k, v in tensors]
        bits = sum(b for _, b in per)
        sweep.append({"format": fmt.label(), "group": fmt.group, "delta_bits": fmt.delta_bits, "hi": fmt.hi,
                      "escape_bits": fmt.escape_bits, "bits_per_exponent": bits / n_total})
        for k in kinds:  # the best format per tensor kind: what a per-stream configuration would reach
            kb = sum(b for kk, b in per if kk == k) / kind_n[k]
            if k not in kind_best or kb < kind_best[k]["bits_per_exponent"]:
                kind_best[k] = {"format": fmt.label(), "bits_per_exponent": kb}
    sweep.sort(key=lambda r: r["bits_per_exponent"])
    best = sweep[0]
    best_fmt = emd.EmdFormat(group=best["group"], delta_bits=best["delta_bits"], hi=best["hi"],
                             escape_bits=best["escape_bits"])
    grid = {}
    for r in sweep:  # best window and escape for each (G, D): the table the issue asks for
        key = f"G{r['group']}-D{r['delta_bits']}"
        if key not in grid or r["bits_per_exponent"] < grid[key]["bits_per_exponent"]:
            grid[key] = r

    schemes = {"default": emd.DEFAULT, "simple": emd.SIMPLE, "sweep_best": best_fmt}
    rows = []
    for name, kind, v in tensors:
        top = emd.top3_bits(v)
        row = {"tensor": name, "kind": kind, "values": int(v.size), "entropy_bits_per_exponent": emd.entropy_bits(v),
               "top3_bits_per_exponent": top["exponent"] / v.size, "top3_bits_per_value": top["total"] / v.size,
               "zero_fraction": float(((v & 0x7FFF) == 0).mean())}
        for s, fmt in schemes.items():
            c = emd.cost(v, fmt)
            row[f"{s}_bits_per_exponent"] = c["exponent"] / v.size
            row[f"{s}_bits_per_value"] = c["total"] / v.size
        rows.append(row)

    def avg(key):
        return sum(r[key] * r["values"] for r in rows) / n_total

    summary = {
        "emd_bits_per_value": avg("default_bits_per_value"),
        "top3_bits_per_value": avg("top3_bits_per_value"),
        "raw_bits_per_value": 16.0,
        "emd_bits_per_exponent": avg("default_bits_per_exponent"),
        "top3_bits_per_exponent": avg("top3_bits_per_exponent"),
        "entropy_bits_per_exponent": avg("entropy_bits_per_exponent"),
        "simple_bits_per_value": avg("simple_bits_per_value"),
        "simple_bits_per_exponent": avg("simple_bits_per_exponent"),
        "sweep_best_bits_per_exponent": avg("sweep_best_bits_per_exponent"),
    }
    summary["emd_vs_top3_exponent_saving"] = 1 - summary["emd_bits_per_exponent"] / summary["top3_bits_per_exponent"]
    summary["emd_minus_entropy"] = summary["emd_bits_per_exponent"] - summary["entropy_bits_per_exponent"]
    by_kind = {}
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        n = sum(r["values"] for r in sel)
        by_kind[kind] = {k: sum(r[k] * r["values"] for r in sel) / n for k in
                         ("default_bits_per_exponent", "simple_bits_per_exponent", "top3_bits_per_exponent",
                          "entropy_bits_per_exponent", "default_bits_per_value", "top3_bits_per_value")}
        by_kind[kind]["values"] = n
        by_kind[kind]["best_format"] = kind_best[kind]["format"]
        by_kind[kind]["best_format_bits_per_exponent"] = kind_best[kind]["bits_per_exponent"]

    result = {
        **stamp("emd_ratio", ("numpy", "amaranth", "pyosys")),
        "tensor_source": source, "tensors": len(rows), "values": n_total,
        "default_format": emd.DEFAULT.label(), "simple_format": emd.SIMPLE.label(), "sweep_best_format": best_fmt.label(),
        **summary, "by_kind": by_kind, "sweep_grid": grid, "sweep_top10": sweep[:10], "per_tensor": rows,
        "area": area_figures(synthesize=not args.no_synth), "seconds": round(time.time() - t0, 1),
    }
    write_results("emd", result, _markdown(result))
    _plot(result)

    print(f"emd_ratio: tensors={len(rows)} values={n_total} source={source}")
    print(f"emd_ratio: EMD {emd.DEFAULT.label()} bits/exponent = {summary['emd_bits_per_exponent']:.3f}")
    print(f"emd_ratio: top-3 bits/exponent = {summary['top3_bits_per_exponent']:.3f} "
          f"(EMD saves {100 * summary['emd_vs_top3_exponent_saving']:.1f}%)")
    print(f"emd_ratio: entropy H bits/exponent = {summary['entropy_bits_per_exponent']:.3f} "
          f"(EMD - H = {summary['emd_minus_entropy']:.3f})")
    print(f"emd_ratio: simple EMD {emd.SIMPLE.label()} bits/exponent = {summary['simple_bits_per_exponent']:.3f}")
    print(f"emd_ratio: bits/value EMD {summary['emd_bits_per_value']:.3f}, top-3 {summary['top3_bits_per_value']:.3f}, "
          f"simple {summary['simple_bits_per_value']:.3f}, raw 16")
    print(f"emd_ratio: sweep best {best_fmt.label()} = {best['bits_per_exponent']:.3f} bits/exponent")
    for block, a in result["area"].items():
        print(f"emd_ratio: {block} area = {a['area_ge']} GE ({a['report']})")
    return 0


def _markdown(res):
    lines = ["## EMD compression", "",
             f"Source: {res['tensor_source']}; {res['tensors']} tensors, {res['values']} values; "
             f"`bench/emd_ratio.py`, {res['date']}. Defaults `{res['default_format']}`, simple scheme "
             f"`{res['simple_format']}`. Bits per exponent exclude the 8 sign/mantissa bits (the same in all "
             "codes, except that a sparse-group zero sends none, or only its sign bit, counted as a sign bit); "
             "averages are weighted by element count. Format labels: G group, D code width, hi window top, "
             "E short-escape width, S sparse groups allowed / d dense only.", "",
             "| figure | EMD (default) | EMD (simple) | top-3 | entropy H | raw bf16 |", "|---|---:|---:|---:|---:|---:|",
             f"| bits per exponent | {res['emd_bits_per_exponent']:.3f} | {res['simple_bits_per_exponent']:.3f} | "
             f"{res['top3_bits_per_exponent']:.3f} | {res['entropy_bits_per_exponent']:.3f} | 8 |",
             f"| bits per value | {res['emd_bits_per_value']:.3f} | {res['simple_bits_per_value']:.3f} | "
             f"{res['top3_bits_per_value']:.3f} | - | 16 |", "",
             f"EMD saves {100 * res['emd_vs_top3_exponent_saving']:.1f}% of top-3's exponent bits and is "
             f"{res['emd_minus_entropy']:.3f} bit/exponent above H.", "",
             "| kind | values | EMD bits/exp | simple bits/exp | top-3 bits/exp | H | EMD bits/value | top-3 bits/value | best format for this kind |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for kind, k in res["by_kind"].items():
        lines.append(f"| {kind} | {k['values']} | {k['default_bits_per_exponent']:.3f} | {k['simple_bits_per_exponent']:.3f} | "
                     f"{k['top3_bits_per_exponent']:.3f} | {k['entropy_bits_per_exponent']:.3f} | "
                     f"{k['default_bits_per_value']:.3f} | {k['top3_bits_per_value']:.3f} | "
                     f"`{k['best_format']}` {k['best_format_bits_per_exponent']:.3f} |")
    lines += ["", "Sweep (best window top and escape width per G and D; bits per exponent over all tensors):", "",
              "| G \\ D | 2 | 3 | 4 | 5 |", "|---|---:|---:|---:|---:|"]
    for g in (8, 16, 32):
        cells = []
        for d in (2, 3, 4, 5):
            r = res["sweep_grid"].get(f"G{g}-D{d}")
            cells.append(f"{r['bits_per_exponent']:.3f} (hi {r['hi']}, E {r['escape_bits']})" if r else "-")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    if res["area"]:
        lines += ["", f"Area (`omnidrl synth`, generic GE Liberty, Yosys {res['versions']['pyosys']}; min period from OpenSTA on that library):", "",
                  "| block/preset | area (GE) | flip-flops | min period (ns) | report |", "|---|---:|---:|---:|---|"]
        for block, a in res["area"].items():
            lines.append(f"| {block} | {a['area_ge']:,.0f} | {a['flip_flops']} | {a['min_period_ns']} | {a['report']} |")
    lines += ["", "![EMD bits per exponent by tensor kind](../bench/results/emd.png)", "",
              "Per-tensor table: `bench/results/emd.json` (`per_tensor`) and `bench/results/emd.md`.", ""]
    per = ["", "| tensor | kind | values | zeros | H | EMD | simple | top-3 | EMD bits/value |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["per_tensor"]:
        per.append(f"| {r['tensor']} | {r['kind']} | {r['values']} | {r['zero_fraction']:.2f} | {r['entropy_bits_per_exponent']:.3f} | "
                   f"{r['default_bits_per_exponent']:.3f} | {r['simple_bits_per_exponent']:.3f} | {r['top3_bits_per_exponent']:.3f} | "
                   f"{r['default_bits_per_value']:.3f} |")
    return "\n".join(lines + per) + "\n"


def _plot(res):
    try:
        import matplotlib  # noqa: PLC0415
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    kinds = list(res["by_kind"])
    keys = [("entropy_bits_per_exponent", "entropy H"), ("default_bits_per_exponent", "EMD default"),
            ("simple_bits_per_exponent", "EMD simple"), ("top3_bits_per_exponent", "top-3")]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.2
    for i, (k, label) in enumerate(keys):
        ax.bar(np.arange(len(kinds)) + (i - 1.5) * width, [res["by_kind"][c][k] for c in kinds], width, label=label)
    ax.set_xticks(np.arange(len(kinds)), kinds)
    ax.set_ylabel("bits per exponent")
    ax.set_title(f"EMD vs top-3 vs entropy ({res['tensor_source'].split(' ')[0]})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "emd.png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
