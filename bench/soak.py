"""Soak bench: every stream block for at least a million output beats on Verilator, under random
input gaps and output back-pressure, plus the malformed-input sets of the EMD decoder and the
transposer.

Usage: ``python bench/soak.py [--beats N] [--blocks pe,emd_dec,...] [--malformed N] [--gap P] [--stall P]``

Each block's own cocotb testbench does the checking (bit-exact against the golden model, nothing
lost, duplicated or reordered, stream protocol): the bench only sets its environment knobs
(``docs/testing.md``, "Settings from the environment"), runs it in chunks with a new seed each
until the block has produced ``--beats`` checked output beats, and adds up the figures the
testbench reports through ``tb.knobs.record`` (``$TB_STATS``). A chunk that fails counts as an
error, with the first line of its failure. One process, one simulator at a time.

Writes bench/results/soak.json and soak.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bench_parser, read_results, stamp, write_results  # noqa: E402


def _jobs(gap: float, stall: float, malformed: int, scale: float):
    """(name, config, cocotb test, environment of chunk k, stream block or malformed set).

    A chunk of a stream block is sized for about a tenth of a million output beats; ``scale``
    shrinks it for a shorter soak."""
    from hdl.ecim import EcimConfig  # noqa: PLC0415
    from hdl.emd import EmdDecoderConfig, EmdEncoderConfig  # noqa: PLC0415
    from hdl.mpmac import MpMacConfig  # noqa: PLC0415
    from hdl.pe import PEConfig  # noqa: PLC0415
    from hdl.pe_array import PEArrayConfig  # noqa: PLC0415
    from hdl.transposer import TransposerConfig  # noqa: PLC0415

    g, s = str(gap), str(stall)

    def n(base: int) -> str:
        return str(max(1, int(base * scale)))

    # Cheapest first, so that an interrupted soak has the most blocks done (results are written
    # after every block).
    return [
        # name, config, test, env for chunk k, stream (True) or malformed set (False)
        ("emd_dec", EmdDecoderConfig.preset("default"), "streams_with_gaps_and_backpressure",
         lambda k: {"EMD_VALUES": n(800_000), "EMD_TRACE": "0", "EMD_SEED": str(1000 + k), "EMD_GAP": g,
                    "EMD_STALL": s}, True),
        ("emd_enc", EmdEncoderConfig.preset("default"), "streams_with_gaps_and_backpressure",
         lambda k: {"EMD_VALUES": n(800_000), "EMD_TRACE": "0", "EMD_SEED": str(1000 + k), "EMD_GAP": g,
                    "EMD_STALL": s}, True),
        ("emd_dec malformed", EmdDecoderConfig.preset("default"), "decoder_fuzz_damaged_streams",
         lambda k: {"EMD_DAMAGED": str(malformed), "EMD_SEED": str(1000 + k)}, False),
        ("transposer malformed", TransposerConfig.preset("small"), "malformed_tiles_flagged_and_recovered",
         lambda k: {"TP_MALFORMED": str(malformed), "TP_SEED": str(1000 + k)}, False),
        ("transposer", TransposerConfig.preset("small"), "random_tiles_heavy_backpressure",
         lambda k: {"TP_TILES": n(25_000), "TP_SEED": str(1000 + k), "TP_GAP": g, "TP_STALL": s}, True),
        ("pe", PEConfig.preset("default"), "random_and_edge_dots_with_stalls",
         lambda k: {"PE_PAIRS": n(1_500_000), "PE_SEED": str(1000 + k), "PE_GAP": g, "PE_STALL": s}, True),
        # The gapped pass only (PEA_EXACT=0): the cycle-exact pass without gaps is no soak.
        ("pe_array", PEArrayConfig.preset("tiny"), "random_every_mode_bit_and_cycle_exact",
         lambda k: {"PEA_ROUNDS": n(330), "PEA_SCALE": "2", "PEA_EXACT": "0", "PEA_SEED": str(1000 + k),
                    "PEA_GAP": g, "PEA_STALL": s}, True),
        # Dot products of one group (12 cycles each at full rate), so that a million results take
        # the fewest cycles.
        ("ecim", EcimConfig.preset("default"), "random_dots_with_stalls",
         lambda k: {"ECIM_DOTS": n(100_000), "ECIM_MAX_GROUPS": "1", "ECIM_SEED": str(1000 + k), "ECIM_GAP": g,
                    "ECIM_STALL": s}, True),
        # Every precision pair of the tiny runtime-precision MAC: 128 x (MPMAC_DOTS + 1) results a chunk.
        ("mpmac", MpMacConfig.preset("tiny"), "every_pair_with_gaps_and_backpressure",
         lambda k: {"MPMAC_DOTS": n(800), "MPMAC_SEED": str(1000 + k), "MPMAC_GAP": g, "MPMAC_STALL": s}, True),
    ]


def run_block(name, cfg, test, env_of, stream: bool, target: int, max_chunks: int, progress=None) -> dict:
    """Chunks of ``test`` until ``target`` output beats (a stream block) or one chunk (a set).
    ``progress(result so far)`` is called after every chunk."""
    from tb.runner import SimulationFailed, run_cocotb  # noqa: PLC0415

    totals = {"beats": 0, "cycles": 0, "sim_seconds": 0.0}
    extra: dict[str, int] = {}
    errors, failures, chunks = 0, [], []
    t0 = time.perf_counter()
    k = 0
    while k < max_chunks and (totals["beats"] < target if stream else k < 1):
        with tempfile.TemporaryDirectory() as tmp:
            stats = Path(tmp) / "stats.jsonl"
            env = {**env_of(k), "TB_STATS": str(stats)}
            c0 = time.perf_counter()
            try:
                run_cocotb(cfg, "verilator", testcase=f"{test}$", extra_env=env, tag="soak")
            except SimulationFailed as exc:
                errors += 1
                failures.append(f"chunk {k}: {str(exc).splitlines()[0]}")
            records = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else []
        for r in records:
            if r["test"] != test:
                continue
            totals["beats"] += r.get("beats", 0)
            totals["cycles"] += r["cycles"]
            totals["sim_seconds"] += r["seconds"]
            for key, v in r.items():
                if key not in ("block", "test", "beats", "cycles", "seconds") and isinstance(v, int):
                    extra[key] = extra.get(key, 0) + v
        chunks.append({"env": env_of(k), "records": records, "wall_s": round(time.perf_counter() - c0, 1)})
        print(f"soak: {name} chunk {k}: {totals['beats']:,} beats, {totals['cycles']:,} cycles so far, "
              f"{errors} error(s), {chunks[-1]['wall_s']} s", flush=True)
        if progress is not None:
            progress(_result(cfg, test, totals, extra, errors, failures, chunks, t0))
        if not records:  # the test reported nothing: it failed before the end; do not loop on it
            break
        k += 1
    return _result(cfg, test, totals, extra, errors, failures, chunks, t0)


def _result(cfg, test, totals, extra, errors, failures, chunks, t0) -> dict:
    return {"block": cfg.BLOCK, "config": cfg.to_dict(), "test": test, **totals, **extra,
            "cycles_per_s": totals["cycles"] / totals["sim_seconds"] if totals["sim_seconds"] else 0.0,
            "errors": errors, "failures": failures, "chunks": len(chunks),
            "wall_s": round(time.perf_counter() - t0, 1), "chunk_detail": list(chunks)}


def _markdown(res: dict) -> str:
    lines = ["## Soak", "",
             f"`bench/soak.py`, {res['date']}, Verilator, one process on a {res['machine']['cpus']}-core machine "
             f"shared with other work. Stream blocks: random input gaps {res['gap']} and output stalls {res['stall']}, "
             f"chunks with a new seed until at least {res['target_beats']:,} checked output beats; every beat "
             "compared bit for bit with the golden model by the block's own testbench. Cycles/s counts the "
             "streaming phase only (stimulus and golden model excluded)."
             + "".join(f" Blocks kept from the run of {r['date']}." for r in res.get("runs", []) if r.get("date")), "",
             "| block | preset | test | output beats | cycles | cycles/s | chunks | errors |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, r in res["blocks"].items():
        preset = r["preset"]
        unfinished = " (stopped before the target)" if r.get("unfinished") else ""
        lines.append(f"| {name} | {preset} | `{r['test']}` | {r['beats']:,}{unfinished} | {r['cycles']:,} | "
                     f"{r['cycles_per_s']:,.0f} | {r['chunks']} | {r['errors']} |")
    sets = [(n, r) for n, r in res["sets"].items()]
    if sets:
        lines += ["", "Malformed-input sets (one run each, every input followed by the next without a reset; the "
                  "verdict and cause must match the golden model, accepted input must come out exactly, the unit "
                  "must take every beat; the tests' own gaps and stalls: 0.2 for the EMD decoder, 0.25 for the "
                  "transposer):", "",
                  "| set | test | inputs | flagged | passed exactly | cycles | errors |", "|---|---|---:|---:|---:|---:|---:|"]
        for name, r in sets:
            if "streams" in r:
                inputs, flagged, ok = r["streams"], r.get("flagged", 0), r.get("decoded", 0)
            else:
                inputs, flagged, ok = r.get("malformed", 0) + r.get("good", 0), r.get("malformed", 0), r.get("good", 0)
            lines.append(f"| {name} | `{r['test']}` | {inputs:,} | {flagged:,} | {ok:,} | {r['cycles']:,} | {r['errors']} |")
    failures = [f"- {n}: {f}" for n, r in {**res["blocks"], **res["sets"]}.items() for f in r["failures"]]
    if failures:
        lines += ["", "Failures:", ""] + failures
    return "\n".join(lines) + "\n"


def _preset_of(cfg) -> str:
    for preset in cfg.PRESETS:
        if type(cfg).preset(preset) == cfg:
            return preset
    return "custom"


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--beats", type=int, default=1_000_000, help="output beats per stream block (default 1,000,000)")
    ap.add_argument("--blocks", default="", help="comma-separated names to run (default: all)")
    ap.add_argument("--malformed", type=int, default=5000, help="inputs of each malformed set (default 5000)")
    ap.add_argument("--gap", type=float, default=0.3, help="input gap probability (default 0.3)")
    ap.add_argument("--stall", type=float, default=0.3, help="output stall probability (default 0.3)")
    ap.add_argument("--max-chunks", type=int, default=100, help="stop a block after this many chunks")
    ap.add_argument("--out", default="soak", help="result name under bench/results (default soak)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    ap.add_argument("--keep", action="store_true",
                    help="keep the other blocks of the existing results file (run only --blocks, replace theirs)")
    args = ap.parse_args(argv)
    if args.render:
        res = read_results(args.out)
        if res is None:
            ap.error(f"--render: there is no bench/results/{args.out}.json to render (--out {args.out!r})")
        write_results(args.out, res, _markdown(res))
        return 0
    for opt, v in (("--gap", args.gap), ("--stall", args.stall)):
        if not 0 <= v < 1:
            ap.error(f"{opt} {v} is not allowed; it must be a probability from 0 to below 1")
    if args.beats < 1 or args.malformed < 1:
        ap.error("--beats and --malformed must be at least 1")
    jobs = _jobs(args.gap, args.stall, args.malformed, min(1.0, args.beats / 1_000_000))
    names = [n for n, *_ in jobs]
    wanted = [b.strip() for b in args.blocks.split(",") if b.strip()] or names
    unknown = [b for b in wanted if b not in names]
    if unknown:
        ap.error(f"--blocks {','.join(unknown)} is not allowed; choose from {', '.join(names)}")
    res = {**stamp("soak", ("numpy", "amaranth", "cocotb")), "simulator": "verilator",
           "target_beats": args.beats, "gap": args.gap, "stall": args.stall, "blocks": {}, "sets": {}}
    old = read_results(args.out) if args.keep else None
    if old is not None:
        res["blocks"], res["sets"] = old.get("blocks", {}), old.get("sets", {})
        res["runs"] = old.get("runs", []) + [{"date": old.get("date"), "seconds": old.get("seconds")}]
    t0 = time.perf_counter()
    for name, cfg, test, env_of, stream in jobs:
        if name not in wanted:
            continue
        def progress(partial, name=name, cfg=cfg, stream=stream):
            partial["preset"], partial["unfinished"] = _preset_of(cfg), True
            (res["blocks"] if stream else res["sets"])[name] = partial
            write_results(args.out, res, _markdown(res))

        r = run_block(name, cfg, test, env_of, stream, args.beats, args.max_chunks, progress)
        r["preset"] = _preset_of(cfg)
        (res["blocks"] if stream else res["sets"])[name] = r
        print(f"soak: {name}: {r['beats']:,} beats, {r['cycles']:,} cycles, {r['cycles_per_s']:,.0f} cycles/s, "
              f"{r['errors']} error(s)", flush=True)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        write_results(args.out, res, _markdown(res))  # after every block: a cut-short soak keeps what it did
    return 1 if any(r["errors"] for r in {**res["blocks"], **res["sets"]}.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
