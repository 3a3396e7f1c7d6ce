"""Updates per second of the golden NumPy TD3 (fp32, bf16, bf16-exact) against PyTorch CPU.

Same networks (HalfCheetah-v5 sizes: obs 17, act 6; 256-256 actor and twin critics), batch 256,
Adam, policy delay 2, target smoothing, one thread each (``OPENBLAS_NUM_THREADS=1``,
``torch.set_num_threads(1)``), measured in the same process. One "update" is one TD3 iteration
(critic step, plus actor step and soft updates every 2nd). Each figure is the median of
``--reps`` timings; speed is reported as a ratio to PyTorch measured in the same run.

Writes ``bench/results/td3_speed.json`` (machine, versions, date, raw timings).

    OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456 \\
        .venv/bin/python bench/td3_speed.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, WORK, bench_parser, stamp, utc_now, write_results  # noqa: E402
from golden.td3 import ReplayBuffer, TD3Agent, TD3Config  # noqa: E402

OBS, ACT = 17, 6


def _fill(buf: ReplayBuffer, rng, n=20_000):
    for _ in range(n):
        buf.add(rng.standard_normal(OBS), rng.uniform(-1, 1, ACT), rng.standard_normal(), rng.standard_normal(OBS),
                rng.random() < 0.01)


def golden_rate(numerics: str, method: str, n_updates: int, reps: int) -> list[float]:
    cfg = TD3Config(numerics=numerics, method=method)
    rng = np.random.default_rng(0)
    agent = TD3Agent(OBS, ACT, np.ones(ACT, np.float32), cfg, rng)
    buf = ReplayBuffer(OBS, ACT, 20_000)
    _fill(buf, rng)
    for _ in range(4):  # warm-up (allocator, caches)
        agent.update(buf.sample(rng, cfg.batch))
    rates = []
    for _ in range(reps):
        batches = [buf.sample(rng, cfg.batch) for _ in range(n_updates)]
        t0 = time.perf_counter()
        for b in batches:
            agent.update(b)
        rates.append(n_updates / (time.perf_counter() - t0))
    return rates


def torch_rate(n_updates: int, reps: int) -> tuple[list[float], str]:
    import copy

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.manual_seed(0)

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(OBS, 256), nn.Linear(256, 256), nn.Linear(256, ACT)

        def forward(self, s):
            return torch.tanh(self.l3(F.relu(self.l2(F.relu(self.l1(s))))))

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(OBS + ACT, 256), nn.Linear(256, 256), nn.Linear(256, 1)

        def forward(self, s, a):
            return self.l3(F.relu(self.l2(F.relu(self.l1(torch.cat([s, a], 1))))))

    actor, c1, c2 = Actor(), Critic(), Critic()
    actor_t, c1_t, c2_t = copy.deepcopy(actor), copy.deepcopy(c1), copy.deepcopy(c2)
    aopt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    copt = torch.optim.Adam(list(c1.parameters()) + list(c2.parameters()), lr=3e-4)
    rng = np.random.default_rng(0)
    data = [torch.as_tensor(rng.standard_normal((20_000, d)).astype(np.float32)) for d in (OBS, ACT, 1, OBS)]
    nd = torch.ones(20_000, 1)
    it = [0]

    def update(idx):
        s, a, r, s2 = (x[idx] for x in data)
        d = nd[idx]
        it[0] += 1
        with torch.no_grad():
            noise = (torch.randn_like(a) * 0.2).clamp(-0.5, 0.5)
            a2 = (actor_t(s2) + noise).clamp(-1, 1)
            tq = r + d * 0.99 * torch.min(c1_t(s2, a2), c2_t(s2, a2))
        loss = F.mse_loss(c1(s, a), tq) + F.mse_loss(c2(s, a), tq)
        copt.zero_grad()
        loss.backward()
        copt.step()
        if it[0] % 2 == 0:
            aloss = -c1(s, actor(s)).mean()
            aopt.zero_grad()
            aloss.backward()
            aopt.step()
            with torch.no_grad():
                for net, tgt in ((actor, actor_t), (c1, c1_t), (c2, c2_t)):
                    for p, pt in zip(net.parameters(), tgt.parameters()):
                        pt.mul_(0.995).add_(0.005 * p)

    for _ in range(4):
        update(torch.as_tensor(rng.integers(0, 20_000, 256)))
    rates = []
    for _ in range(reps):
        idxs = [torch.as_tensor(rng.integers(0, 20_000, 256)) for _ in range(n_updates)]
        t0 = time.perf_counter()
        for idx in idxs:
            update(idx)
        rates.append(n_updates / (time.perf_counter() - t0))
    return rates, torch.__version__


def agreement(steps: int, start: int, seeds: tuple, hidden: tuple, save=lambda doc: None) -> dict:
    """Train HalfCheetah-v5 ``steps`` steps in bf16-exact (seed seeds[0]) and in bf16 (every seed).

    The bf16-exact return should fall within the bf16 seed-to-seed spread. Runs one at a time.
    """
    from golden.run_td3 import CHECKPOINT, run_training

    out = {"steps": steps, "start_steps": start, "hidden": list(hidden), "runs": []}
    work = WORK / "td3_agreement"
    plan = [("bf16-exact", seeds[0])] + [("bf16", s) for s in seeds]  # the slow one first
    for numerics, seed in plan:
        cfg = TD3Config(numerics=numerics, seed=seed, steps=steps, start_steps=start, hidden=hidden,
                        eval_every=max(steps // 4, 1))
        d = work / f"{numerics}-s{seed}"
        t0 = time.perf_counter()
        s = run_training(cfg, d, resume=(d / CHECKPOINT).is_file(), quiet=True)
        out["runs"].append({"numerics": numerics, "seed": seed, "final_eval": s["evals"][-1]["return"],
                            "evals": s["evals"], "seconds": round(time.perf_counter() - t0, 1)})
        print(f"agreement {numerics} seed {seed}: final evaluation return {s['evals'][-1]['return']:.1f}", flush=True)
        save(out)  # partial results survive a stop
    bf = [r["final_eval"] for r in out["runs"] if r["numerics"] == "bf16"]
    ex = [r["final_eval"] for r in out["runs"] if r["numerics"] == "bf16-exact"][0]
    bf.sort()
    out["bf16_spread"] = [min(bf), max(bf)]
    out["exact_within_spread"] = bool(min(bf) <= ex <= max(bf))
    same = [r["final_eval"] for r in out["runs"] if r["numerics"] == "bf16" and r["seed"] == seeds[0]][0]
    out["exact_minus_same_seed_bf16"] = ex - same
    print(f"bf16-exact {ex:.1f} vs bf16 seeds {[round(x, 1) for x in bf]}: within spread "
          f"{out['exact_within_spread']}", flush=True)
    return out


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--updates", type=int, default=300, help="updates per timing (fp32, bf16, torch)")
    ap.add_argument("--exact-updates", type=int, default=10, help="updates per timing in bf16-exact")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--agreement", action="store_true",
                    help="instead: HalfCheetah-v5 run in bf16-exact vs bf16 seeds (adds 'agreement' to the JSON)")
    ap.add_argument("--agreement-steps", type=int, default=20_000)
    ap.add_argument("--agreement-start", type=int, default=5_000)
    ap.add_argument("--agreement-seeds", default="0,1,2")
    ap.add_argument("--agreement-hidden", default="256,256")
    args = ap.parse_args(argv)
    out = RESULTS / "td3_speed.json"
    if args.agreement:
        def save(part):
            doc = json.loads(out.read_text()) if out.is_file() else {"benchmark": "td3_speed"}
            doc["agreement"] = dict(part, date=utc_now())
            write_results("td3_speed", doc)

        save(agreement(args.agreement_steps, args.agreement_start,
                       tuple(int(s) for s in args.agreement_seeds.split(",")),
                       tuple(int(h) for h in args.agreement_hidden.split(",")), save))
        return 0

    results = {}
    t_rates, t_ver = torch_rate(args.updates, args.reps)
    results["torch"] = t_rates
    for numerics in ("fp32", "bf16", "bf16-exact"):
        for method in ("dense", "gst"):
            n = args.exact_updates if numerics == "bf16-exact" else args.updates
            results[f"{numerics}/{method}"] = golden_rate(numerics, method, n, args.reps)
    t_rates2, _ = torch_rate(args.updates, args.reps)  # torch again: drift check across the run
    results["torch_again"] = t_rates2
    torch_med = statistics.median(t_rates + t_rates2)
    med = {k: statistics.median(v) for k, v in results.items()}
    figures = {}
    print(f"PyTorch {t_ver} CPU (1 thread): median {torch_med:.1f} updates/s (baseline)")
    for k in results:
        if k.startswith("torch"):
            continue
        figures[k] = {"updates_per_s": round(med[k], 2), "ratio_to_torch": round(med[k] / torch_med, 4)}
        print(f"golden {k:18s}: {med[k]:8.2f} updates/s = {med[k] / torch_med:6.3f}x PyTorch")
    for method in ("dense", "gst"):
        r = med[f"fp32/{method}"] / med[f"bf16/{method}"]
        figures[f"bf16_slowdown_vs_fp32/{method}"] = round(r, 4)
        print(f"bf16 vs fp32 ({method}): {r:.3f}x slower (target <= 1.5)")
        r = med[f"fp32/{method}"] / med[f"bf16-exact/{method}"]
        figures[f"bf16-exact_slowdown_vs_fp32/{method}"] = round(r, 2)
        print(f"bf16-exact vs fp32 ({method}): {r:.1f}x slower")
    doc = {**stamp("td3_speed", ("numpy", "torch", "gymnasium")),
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_",
                                                   "MALLOC_TRIM_THRESHOLD_")},
           "setup": f"obs {OBS}, act {ACT}, 256-256, batch 256, Adam, policy delay 2; one thread; "
                    f"{args.updates} updates per timing ({args.exact_updates} in bf16-exact), median of "
                    f"{args.reps}; torch timed before and after the golden runs",
           "torch_median_updates_per_s": round(torch_med, 2), "figures": figures,
           "raw_updates_per_s": {k: [round(x, 2) for x in v] for k, v in results.items()}}
    if out.is_file() and "agreement" in json.loads(out.read_text()):
        doc["agreement"] = json.loads(out.read_text())["agreement"]
    write_results("td3_speed", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
