"""Check: dense fp32 TD3 on HalfCheetah-v5 reaches a return of at least 4,000 by 100k steps.

Published TD3 does (Fujimoto et al. 2018, HalfCheetah about 4,000-5,000 at 100k), and this is the
sanity check that the golden TD3 learns like the reference before any bf16 or compression
result means anything. Resumable (``build/bench/td3_fp32_check/<run>/``); run in the background
on one core::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/td3_fp32_check.py --seeds 0

Writes ``bench/results/td3_fp32_check.json``: per seed, every evaluation, the best evaluation up
to 100k steps and whether it reached 4,000.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import WORK as BENCH_WORK, bench_parser, run_info, write_results  # noqa: E402
from golden.run_td3 import CHECKPOINT, run_training  # noqa: E402
from golden.td3 import TD3Config  # noqa: E402

WORK = BENCH_WORK / "td3_fp32_check"
TARGET_RETURN = 4000.0
STEPS = 100_000


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--seeds", default="0", help="comma list of seeds (default 0)")
    ap.add_argument("--run-dir", default=None,
                    help="use this run folder for a single seed (e.g. one made by `omnidrl train`)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        cfg = TD3Config(env="HalfCheetah-v5", method="dense", seed=seed, steps=STEPS, numerics="fp32")
        d = Path(args.run_dir) if args.run_dir and len(seeds) == 1 else WORK / f"dense-fp32-s{seed}"
        t0 = time.monotonic()
        s = run_training(cfg, d, resume=(d / CHECKPOINT).is_file(), quiet=True)
        by_100k = [e for e in s["evals"] if e["step"] <= STEPS]
        best = max(by_100k, key=lambda e: e["return"])
        rows.append({"seed": seed, "steps": s["steps"], "best_return_by_100k": round(best["return"], 2),
                     "best_at_step": best["step"], "final_return": round(s["final_return"], 2),
                     "reached_target": best["return"] >= TARGET_RETURN,
                     "first_step_at_target": next((e["step"] for e in by_100k if e["return"] >= TARGET_RETURN), None),
                     "evals": s["evals"], "seconds_this_call": round(time.monotonic() - t0, 1)})
        print(f"seed {seed}: best {best['return']:.0f} at step {best['step']}, "
              f"final (mean of last 3) {s['final_return']:.0f}; target {TARGET_RETURN:.0f}: "
              f"{'met' if rows[-1]['reached_target'] else 'NOT met'}", flush=True)
    doc = {"benchmark": "td3_fp32_check", "env": "HalfCheetah-v5", "method": "dense", "numerics": "fp32",
           "settings": "TD3 defaults (256-256, lr 3e-4, batch 256, 25k random steps, eval every 5k x 10 episodes)",
           "target": f"an evaluation return >= {TARGET_RETURN:.0f} by {STEPS} steps", "runs": rows,
           **run_info(("numpy", "gymnasium", "mujoco"))}
    write_results("td3_fp32_check", doc)
    return 0 if all(r["reached_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
