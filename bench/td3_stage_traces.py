"""Traces of early, middle and late TD3 updates, and EMD's compression at each stage.

The committed trace (``tests/data/td3_halfcheetah_trace.npz``) holds one update at step 12,000.
EMD's benefit depends on how exponents spread, which changes as training goes on, so this
script records one real update at several points of a long run and measures EMD on each.

It reads checkpoints of a ``bench/gst_vs_pruning.py`` run (``--snapshot STAGE=PATH``, copied
while the run passed those steps), continues each for the one or two steps that reach the next
update that also trains the actor, and records that update in ``bf16-exact`` numerics (the
run itself was trained in ``bf16``): ``golden.run_td3.record_stage_trace``, the same recording
as ``omnidrl trace --snapshot``. Keys are ``STAGE/NET/LAYER/KIND`` with the schema of
``docs/traces.md`` (``STAGE`` takes the place of the method); ``meta["runs"][STAGE]`` gives the
method, step, update number and CR.

Then, per stage and tensor kind, it measures EMD (``golden.emd`` defaults), the 2019 top-3 code
and the order-0 exponent entropy, as exponent bits per value weighted by tensor size, and writes
``bench/results/emd_stages.{json,md}`` (``--results NAME``: ``bench/results/NAME.{json,md}``).

Usage::

    python bench/td3_stage_traces.py --snapshot early=build/bench/snapshots/dense-40000.npz \\
        --snapshot middle=build/bench/snapshots/dense-110000.npz \\
        --snapshot late=build/bench/snapshots/dense-200000.npz \\
        --out tests/data/td3_halfcheetah_stages.npz
    python bench/td3_stage_traces.py --measure-only --out tests/data/td3_halfcheetah_stages.npz
    python bench/td3_stage_traces.py --measure-only --out tests/data/td3_halfcheetah_gstcp_stages.npz \\
        --results emd_stages_gstcp
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, bench_parser, run_info, write_results  # noqa: E402
from golden import emd  # noqa: E402
from golden.checkpoint import CheckpointError  # noqa: E402
from golden.run_td3 import record_stage_trace  # noqa: E402
from golden import traces as tr_mod  # noqa: E402
from golden.td3 import TD3ConfigError  # noqa: E402

#: what the accelerator moves: a circulant layer's weight is its v (its expanded W is skipped);
#: an element-masked layer's (GMP, GST circ-fine after its switch) W and dW are kinds of their own
KINDS = ("W", "v", "x", "dy", "dW", "dv", "W masked", "dW masked")


def _stored(trace: dict, name: str, kind: str, bits: np.ndarray) -> np.ndarray:
    """What memory holds of a tensor: a circulant layer's v and dv without its pruned blocks
    (memory keeps k values per kept block and the bitmap), everything else as it is."""
    bm = trace.get(f"{name}/bitmap")
    if kind in ("v", "dv") and bm is not None and not bm.all():
        return np.asarray(bits, dtype=np.uint16)[bm.astype(bool)].reshape(-1)
    return np.asarray(bits, dtype=np.uint16).reshape(-1)


def measure(trace: dict) -> dict:
    """Exponent bits per value for EMD, top-3 and entropy, per stage and kind (size-weighted).

    A circulant layer's pruned blocks are left out of its v and dv (they are not stored); the
    kinds ``v+zeros`` and ``dv+zeros`` (not in ``all``) give the same tensors with them, as the
    words the CIRC command is loaded with. An element-masked layer's W and dW, zeros included
    (memory holds them in EMD's sparse groups), are ``W masked`` and ``dW masked``, not ``W``
    and ``dW``."""
    meta = tr_mod.trace_meta(trace)
    masked = set(tr_mod.masked_layers(trace))
    out = {}
    for stage in meta.get("stages", list(meta["runs"])):
        per_kind = {}
        for kind in (*KINDS, "v+zeros", "dv+zeros"):
            n = emd_bits = top3 = ent = 0.0
            base = kind.split("+")[0].split(" ")[0]
            for name, k, bits in tr_mod.iter_tensors(trace, kinds=(base,)):
                if not name.startswith(stage + "/") or (kind == "W" and f"{name}/v" in trace):
                    continue
                if (name in masked) != kind.endswith(" masked") and base in ("W", "dW"):
                    continue
                v = _stored(trace, name, kind, bits) if "+" not in kind else np.asarray(bits, np.uint16).reshape(-1)
                n += v.size
                emd_bits += emd.cost(v)["exponent"]
                top3 += emd.top3_bits(v)["exponent"]
                ent += emd.entropy_bits(v) * v.size
            if n:
                per_kind[kind] = {"values": int(n), "emd": emd_bits / n, "top3": top3 / n,
                                  "entropy": ent / n}
        for kind in ("v+zeros", "dv+zeros"):  # only where some block is pruned
            if kind in per_kind and per_kind[kind]["values"] == per_kind.get(kind.split("+")[0], {}).get("values"):
                del per_kind[kind]
        parts = [d for kind, d in per_kind.items() if "+" not in kind]
        tot = sum(d["values"] for d in parts)
        per_kind["all"] = {"values": tot, **{key: sum(d[key] * d["values"] for d in parts) / tot
                                              for key in ("emd", "top3", "entropy")}}
        out[stage] = {"step": meta["runs"][stage]["step"], "kinds": per_kind}
    return out


def write_report(figs: dict, trace_path: Path, meta: dict, name: str = "emd_stages") -> None:
    """``bench/results/NAME.{json,md}``: the figures of :func:`measure` and where they come from."""
    doc = {"benchmark": name, "trace": str(trace_path.relative_to(ROOT)) if trace_path.is_relative_to(ROOT)
           else str(trace_path), **run_info(("numpy", "gymnasium", "mujoco")),
           "format": "golden.emd defaults", "units": "exponent bits per value",
           "source": {s: {k: r[k] for k in ("method", "env", "seed", "step", "update", "cr", "last_eval")}
                      for s, r in meta["runs"].items()},
           "stages": figs}
    md = ["# EMD across training (exponent bits per value)", "",
          f"Trace `{doc['trace']}`: one bf16-exact update per stage of one `bf16` TD3 run "
          "(actor, critic1, critic2; weighted by tensor size). EMD with the `golden.emd` defaults; "
          "top-3 is the 2019 code; entropy is the order-0 bound of the exponent field. A circulant layer's "
          "v and dv leave its pruned blocks out (memory stores k values per kept block); `v+zeros` and "
          "`dv+zeros` (not in `all`) include them, as the words loaded into the CIRC command. An "
          "element-masked layer's W and dW (GMP, GST circ-fine after its switch), zeros included as memory "
          "holds them in EMD's sparse groups, are `W masked` and `dW masked`.", "",
          "| stage | step | last eval | kind | values | EMD | top-3 | entropy | EMD vs top-3 |",
          "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for stage, f in figs.items():
        src = doc["source"][stage]
        last = "-" if src["last_eval"] is None else f"{src['last_eval']:.0f}"
        for kind, d in f["kinds"].items():
            md.append(f"| {stage} | {f['step']} | {last} | {kind} | {d['values']:,} | {d['emd']:.3f} | "
                      f"{d['top3']:.3f} | {d['entropy']:.3f} | {100 * (d['emd'] / d['top3'] - 1):+.1f}% |")
    write_results(name, doc, "\n".join(md))


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--snapshot", action="append", default=[], metavar="STAGE=PATH",
                    help="a stage name and a checkpoint.npz of a bench run (repeat, in training order)")
    ap.add_argument("--out", default="build/traces/td3_stages.npz", help="trace to write (or read)")
    ap.add_argument("--measure-only", action="store_true", help="only measure an existing trace")
    ap.add_argument("--results", default="emd_stages",
                    help="name of the results in bench/results/ (default emd_stages)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if not args.results.replace("_", "").isalnum():
        print(f"--results {args.results!r} is not allowed: give a name of letters, digits and '_'", file=sys.stderr)
        return 2
    if not args.measure_only:
        try:  # the same recording as `omnidrl trace --snapshot` (golden/run_td3.py)
            record_stage_trace(args.snapshot, out, quiet=False)
        except (TD3ConfigError, CheckpointError) as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    trace = tr_mod.load_trace(out)
    figs = measure(trace)
    write_report(figs, out.resolve(), tr_mod.trace_meta(trace), args.results)
    for stage, f in figs.items():
        a = f["kinds"]["all"]
        print(f"{stage} (step {f['step']}): EMD {a['emd']:.3f} vs top-3 {a['top3']:.3f} "
              f"bits/exponent, entropy {a['entropy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
