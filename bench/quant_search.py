"""Mixed-precision search: PPO vs HAQ-style DDPG vs uniform quantization (issue 16, docs/quant.md).

For each network (the TD3 actor, the digits CNN) and cost model (ReRAM crossbars, the measured
MAC table), the uniform plans (every layer at 2..8 bits; the baselines are 8, 6 and 4) and
3 seeds of each agent at the same budget. Figures (medians over the seeds):

* ``ppo_cost_vs_uniform_at_matched_acc`` (and ``ddpg_...``): cost of the run's best plan /
  cost of the cheapest uniform plan at least as accurate (within ``MATCH_TOL`` of relative
  accuracy) - 1; negative = cheaper than uniform quantization (paper: -20..-30 %);
* ``ppo_cost_vs_ddpg_same_budget``: cost of PPO's best plan / DDPG's - 1, paired by seed
  (paper: about -4.2 %), with both accuracies beside it;
* ``ppo_episodes_to_best`` / ``ddpg_episodes_to_best`` (and wall seconds): the episode at which
  the run's final best plan was first found.

Each search is a resumable run folder (``build/bench/quant_search/<net>-<cost>-<agent>-s<seed>``,
:func:`golden.quant_search.run_search`): killing this script and starting it again continues
where it was; finished runs are read back. The results are rewritten after every run:
``bench/results/quant_search.json`` and ``.md``, ``quant_search_pareto.png``,
``quant_search_curves.png``. ``--report-only`` rewrites them from the run folders. ``--tag T``
keeps a separate set (folders ``...-T``, files ``quant_search_T.*``), e.g. the longer search
``--tag e400 --episodes 400 --nets td3-actor --costs mac``.

The episode count (``--episodes``, default 160) is sized so the whole set, 24 searches, runs in
about 30-40 minutes niced on one shared core of the 2-core machine; the paper's searches are
longer. ``--costs reram`` runs without the MAC table; ``--mac-table`` names it.

    nice -n 10 .venv/bin/python bench/quant_search.py --mac-table build/mpmac_area.json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, WORK, bench_parser, run_info, write_results  # noqa: E402
from golden.quant_cost import make_cost, plan_cost  # noqa: E402
from golden.quant_nets import make_net, uniform_plan  # noqa: E402
from golden.quant_search import run_search  # noqa: E402

NETS = ("cnn", "td3-actor")
COSTS = ("reram", "mac")
AGENTS = ("ppo", "ddpg")
SEEDS = (0, 1, 2)
UNIFORM_BITS = tuple(range(2, 9))
BASELINE_BITS = (8, 6, 4)
#: a uniform plan "matches" a run's accuracy if it is at most this much (relative accuracy) below
MATCH_TOL = 0.01
RUN_DIR = WORK / "quant_search"


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def uniform_points(net, model) -> list[dict]:
    full = plan_cost(model, net.layers, uniform_plan(len(net.layers), 8))[0]
    return [{"bits": b, "accuracy": net.evaluate(uniform_plan(len(net.layers), b)),
             "cost": plan_cost(model, net.layers, uniform_plan(len(net.layers), b))[0] / full}
            for b in UNIFORM_BITS]


def matched_uniform(uniform, acc) -> tuple[dict, bool]:
    """The cheapest uniform point at least as accurate as ``acc`` (within MATCH_TOL); flag if none."""
    ok = [u for u in uniform if u["accuracy"] >= acc - MATCH_TOL]
    if ok:
        return min(ok, key=lambda u: u["cost"]), True
    return max(uniform, key=lambda u: u["accuracy"]), False


def front_vs_uniform(uniform, runs) -> dict:
    """Per baseline b: the cheapest plan any search met that is as accurate as uniform b, relative."""
    pts = [p for r in runs for p in r["points"]]
    out = {}
    for b in BASELINE_BITS:
        u = next(x for x in uniform if x["bits"] == b)
        ok = [c for c, a in pts if a >= u["accuracy"] - MATCH_TOL]
        out[f"uniform{b}"] = min(ok) / u["cost"] - 1.0 if ok else None
    return out


def summarize(uniform, runs) -> dict:
    out = {"uniform": uniform, "baselines": {f"uniform{b}": next(u for u in uniform if u["bits"] == b)
                                             for b in BASELINE_BITS},
           "explored_cost_vs_uniform": front_vs_uniform(uniform, runs)}
    for agent in AGENTS:
        rs = [r for r in runs if r["agent"] == agent and r["best"] is not None]
        ratios, matched = [], []
        for r in rs:
            u, ok = matched_uniform(uniform, r["best"]["accuracy"])
            r["matched_uniform_bits"], r["matched"] = u["bits"], ok
            ratios.append(r["best"]["cost"] / u["cost"] - 1.0)
            matched.append(ok)
        out[f"{agent}_cost_vs_uniform_at_matched_acc"] = _median(ratios)
        out[f"{agent}_cost_vs_uniform_per_seed"] = ratios
        out[f"{agent}_all_matched"] = all(matched) if matched else None
        out[f"{agent}_episodes_to_best"] = _median([r["best"]["episode"] for r in rs])
        out[f"{agent}_wall_s_to_best"] = _median([r["best"]["wall_s"] for r in rs])
        out[f"{agent}_wall_s_total"] = _median([r["wall_s"] for r in rs])
        out[f"{agent}_accuracy"] = _median([r["best"]["accuracy"] for r in rs])
        out[f"{agent}_cost"] = _median([r["best"]["cost"] for r in rs])
        out[f"{agent}_seeds"] = len(rs)
    pairs = []
    for s in SEEDS:
        p = next((r for r in runs if r["agent"] == "ppo" and r["seed"] == s and r["best"]), None)
        d = next((r for r in runs if r["agent"] == "ddpg" and r["seed"] == s and r["best"]), None)
        if p and d:
            pairs.append(p["best"]["cost"] / d["best"]["cost"] - 1.0)
    out["ppo_cost_vs_ddpg_same_budget"] = _median(pairs)
    out["ppo_cost_vs_ddpg_per_seed"] = pairs
    out["runs"] = [{k: r[k] for k in ("agent", "seed", "wall_s", "episodes_run", "matched_uniform_bits", "matched")
                    if k in r} | {"best": r["best"]} for r in runs]
    return out


def _folder(net, cost, agent, seed, tag=""):
    return f"{net}-{cost}-{agent}-s{seed}" + (f"-{tag}" if tag else "")


def _load_run(folder: Path):
    p = folder / "result.json"
    if not p.is_file():
        return None
    r = json.loads(p.read_text())
    c = r["config"]
    curve, best = [], -1e9
    for rec in r["log"]:
        if rec["feasible"]:
            best = max(best, rec["accuracy"])
        curve.append(best if best > -1e9 else None)
    points = [(rec["cost"], rec["accuracy"]) for rec in r["log"] if rec["feasible"]]
    return {"agent": c["agent"], "seed": c["seed"], "net": c["net"], "cost": c["cost"], "budget": c["budget"],
            "episodes": c["episodes"], "episodes_run": r["episodes_run"], "wall_s": r["wall_s"],
            "best": r["best"], "curve": curve, "points": points}


def pareto(points):
    """Points not dominated (lower cost and higher accuracy), sorted by cost."""
    front, best = [], -1e9
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if a > best:
            front.append((c, a))
            best = a
    return front


def plots(results, runs_by_key, name="quant_search"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(n, c) for n in NETS for c in COSTS if f"{n}/{c}" in results]
    if not keys:
        return
    colors = {"ppo": "tab:blue", "ddpg": "tab:orange"}
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, (n, c) in zip(axes[0], keys):
        res, runs = results[f"{n}/{c}"], runs_by_key[(n, c)]
        allpts = [p for r in runs for p in r["points"]] + [(u["cost"], u["accuracy"]) for u in res["uniform"]]
        ax.scatter([p[0] for p in allpts], [p[1] for p in allpts], s=4, c="0.8", label="explored (feasible)")
        fr = pareto(allpts)
        ax.step([p[0] for p in fr], [p[1] for p in fr], where="post", c="tab:red", lw=1, label="Pareto front")
        u = res["uniform"]
        ax.plot([x["cost"] for x in u], [x["accuracy"] for x in u], "k.-", label="uniform 2..8 bits")
        for x in u:
            ax.annotate(str(x["bits"]), (x["cost"], x["accuracy"]), fontsize=7)
        for agent in AGENTS:
            bs = [r["best"] for r in runs if r["agent"] == agent and r["best"]]
            ax.scatter([b["cost"] for b in bs], [b["accuracy"] for b in bs], c=colors[agent], marker="*", s=80,
                       label=f"{agent} best (3 seeds)", zorder=5)
        ax.axvline(runs[0]["budget"] if runs else 0.5, ls=":", c="0.5", lw=1)
        ax.set_title(f"{n}, cost {c} (budget {runs[0]['budget'] if runs else '-'})")
        ax.set_xlabel("cost / all-8-bit cost")
        ax.set_ylabel("accuracy / float")
        ax.set_ylim(0.5, 1.05)  # plans below half the float accuracy are off the plot
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_pareto.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, (n, c) in zip(axes[0], keys):
        for r in runs_by_key[(n, c)]:
            ys = [y if y is not None else float("nan") for y in r["curve"]]
            ax.plot(range(1, len(ys) + 1), ys, c=colors[r["agent"]], lw=1,
                    label=f"{r['agent']} (3 seeds)" if r["seed"] == 0 else None)
        ax.set_title(f"{n}, cost {c}: best feasible accuracy so far")
        ax.set_xlabel("episode")
        ax.set_ylabel("accuracy / float")
        ax.set_ylim(0.5, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_curves.png", dpi=110)
    plt.close(fig)


def _pct(x):
    return "-" if x is None else f"{100 * x:+.1f} %"


def markdown(doc) -> str:
    lines = ["# Mixed-precision search: PPO vs DDPG (HAQ) vs uniform", "",
             f"{doc['date']}; budget {doc['budget']} of the all-8-bit cost; {doc['episodes']} episodes per search; "
             f"seeds {', '.join(map(str, SEEDS))}; medians over seeds. Generated by `bench/quant_search.py` "
             "(docs/quant.md, docs/results.md).", "",
             "| network | cost | PPO vs uniform at matched acc. | DDPG vs uniform | PPO vs DDPG (same budget) | "
             "PPO acc. / cost | DDPG acc. / cost | PPO episodes to best (s) | DDPG episodes to best (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, r in doc["results"].items():
        n, c = key.split("/")
        f = lambda x, d=3: "-" if x is None else f"{x:.{d}f}"  # noqa: E731
        lines.append(f"| {n} | {c} | {_pct(r['ppo_cost_vs_uniform_at_matched_acc'])} | "
                     f"{_pct(r['ddpg_cost_vs_uniform_at_matched_acc'])} | {_pct(r['ppo_cost_vs_ddpg_same_budget'])} | "
                     f"{f(r['ppo_accuracy'])} / {f(r['ppo_cost'])} | {f(r['ddpg_accuracy'])} / {f(r['ddpg_cost'])} | "
                     f"{f(r['ppo_episodes_to_best'], 0)} ({f(r['ppo_wall_s_to_best'], 0)}) | "
                     f"{f(r['ddpg_episodes_to_best'], 0)} ({f(r['ddpg_wall_s_to_best'], 0)}) |")
    lines += ["", "Uniform plans (relative accuracy / relative cost):", "",
              "| network | cost | " + " | ".join(f"{b} bits" for b in UNIFORM_BITS) + " |",
              "|---|---|" + "---|" * len(UNIFORM_BITS)]
    for key, r in doc["results"].items():
        n, c = key.split("/")
        lines.append(f"| {n} | {c} | " + " | ".join(f"{u['accuracy']:.3f} / {u['cost']:.3f}" for u in r["uniform"]) + " |")
    lines += ["", "Cheapest plan met by any search (all agents, seeds, episodes) as accurate as uniform b bits, "
              "cost relative to uniform b (what the search space allows):", "",
              "| network | cost | " + " | ".join(f"vs uniform {b}" for b in BASELINE_BITS) + " |",
              "|---|---|" + "---|" * len(BASELINE_BITS)]
    for key, r in doc["results"].items():
        n, c = key.split("/")
        lines.append(f"| {n} | {c} | " + " | ".join(_pct(r["explored_cost_vs_uniform"][f"uniform{b}"])
                                                  for b in BASELINE_BITS) + " |")
    lines += ["", "Plots: `quant_search_pareto.png` (accuracy against cost, every method, Pareto front), "
              "`quant_search_curves.png` (best feasible accuracy against episodes)."]
    return "\n".join(lines) + "\n"


def report(args, nets_cache=None):
    results, runs_by_key = {}, {}
    for n in args.nets:
        for c in args.costs:
            runs = [r for r in (_load_run(RUN_DIR / _folder(n, c, a, s, args.tag)) for a in AGENTS for s in SEEDS) if r]
            if not runs:
                continue
            net = (nets_cache or {}).get(n) or make_net(n)
            if nets_cache is not None:
                nets_cache[n] = net
            model = make_cost(c, args.mac_table)
            results[f"{n}/{c}"] = summarize(uniform_points(net, model), runs)
            runs_by_key[(n, c)] = runs
    doc = {"bench": "quant_search", **run_info(("numpy", "gymnasium", "mujoco", "scikit-learn")),
           "budget": args.budget, "episodes": args.episodes, "seeds": list(SEEDS), "match_tol": MATCH_TOL,
           "mac_table": str(args.mac_table) if args.mac_table else None, "results": results}
    if results:
        name = "quant_search" + (f"_{args.tag}" if args.tag else "")
        write_results(name, doc, markdown(doc))
        plots(results, runs_by_key, name)
    return doc


def main(argv=None):
    ap = bench_parser(__doc__)
    ap.add_argument("--episodes", type=int, default=160)
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--costs", type=lambda s: tuple(s.split(",")), default=COSTS)
    ap.add_argument("--nets", type=lambda s: tuple(s.split(",")), default=NETS)
    ap.add_argument("--mac-table", default=None, help="MAC table JSON (default golden/data/mpmac_area.json)")
    ap.add_argument("--tag", default="", help="a separate set (run folders and result files named with it), "
                    "e.g. a longer search of one network")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    nets = {}
    if not args.report_only:
        for c in args.costs:
            for n in args.nets:
                for s in SEEDS:
                    for a in AGENTS:
                        folder = RUN_DIR / _folder(n, c, a, s, args.tag)
                        if (folder / "result.json").is_file():
                            continue
                        net = nets.setdefault(n, make_net(n))
                        net.clear_cache()  # each search pays for its own evaluations (wall time)
                        t = time.monotonic()
                        r = run_search(n, c, args.budget, a, args.episodes, s, folder, resume=True, quiet=True,
                                       mac_table=args.mac_table, net_obj=net)
                        b = r["best"]
                        print(f"{n} {c} {a} seed {s}: best acc {b['accuracy']:.4f} cost {b['cost']:.3f} "
                              f"(episode {b['episode']}) in {time.monotonic() - t:.0f} s", flush=True)
                        report(args, nets)
    report(args, nets)


if __name__ == "__main__":
    main()
