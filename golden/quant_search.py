"""One mixed-precision search: a network, a cost model, a budget, an agent (``omnidrl quantize``).

:func:`run_search` runs ``episodes`` episodes of :class:`golden.quant_env.QuantEnv` with a PPO or
DDPG agent and writes into its folder:

* ``checkpoint.npz``: the agent, the episode log and the best plan so far (:mod:`golden.checkpoint`);
  written every ``ckpt_every`` episodes when the agent holds no half-collected batch; a run
  started again with ``resume=True`` continues from it exactly (same plans, same rewards);
* ``result.json``: the configuration, the best plan (the plan within the budget with the
  highest reward: for PPO accuracy minus the small cost term of the reward, for DDPG (HAQ)
  accuracy; a tie goes to the cheaper), its per-layer table (bits, quantizer, share of the cost), the
  episode and wall time at which it was first found, and the whole episode log;
* ``quantized.npz``: the network at the best plan: per layer the dequantized weights
  ``<layer>/W`` (float32), its float bias ``<layer>/b``, the activation levels ``<layer>/a_levels``,
  for the actor ``obs_scale`` (the observation is divided by it first) and ``meta`` (JSON).

Like :mod:`golden.run_td3` it drives no hardware tool, so it lives beside the golden model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import checkpoint
from .quant_agents import CHECKPOINT_CLASSES, make_agent
from .quant_cost import make_cost, plan_cost
from .quant_env import QuantEnv
from .quant_nets import LayerPlan, make_net

__all__ = ["run_search", "layer_table", "plan_json", "CHECKPOINT", "search_config"]

CHECKPOINT = "checkpoint.npz"


def plan_json(plan) -> list:
    return [[p.w_bits, p.a_bits, p.kind] for p in plan]


def plan_from_json(items) -> list[LayerPlan]:
    return [LayerPlan(int(w), int(a), str(k)) for w, a, k in items]


def layer_table(net, model, plan) -> list[dict]:
    """Per layer: name, bits, quantizers and share of the plan's cost."""
    total, per = plan_cost(model, net.layers, plan)
    return [{"layer": l.name, "w_bits": p.w_bits, "a_bits": p.a_bits, "kind": p.kind, "w_quantizer": p.w_kind,
             "a_quantizer": p.a_kind, "cost_share": c / total if total else 0.0}
            for l, p, c in zip(net.layers, plan, per)]


def search_config(net: str, cost: str, budget: float, agent: str, episodes: int, seed: int) -> dict:
    return {"net": net, "cost": cost, "budget": float(budget), "agent": agent, "episodes": int(episodes),
            "seed": int(seed)}


def _progress(cfg, n, log, best, elapsed):
    last = log[-1]
    b = f"best {best['accuracy']:.4f} at cost {best['cost']:.3f} (episode {best['episode']})" if best else "best -"
    return (f"{cfg['agent']} {cfg['net']} {cfg['cost']} seed {cfg['seed']}: episode {n}/{cfg['episodes']}  "
            f"acc {last['accuracy']:.4f}  cost {last['cost']:.3f}  {b}  {elapsed:.0f} s")


def run_search(net: str, cost: str, budget: float, agent: str, episodes: int, seed: int, out,
               resume: bool = False, quiet: bool = False, mac_table=None, ckpt_every: int = 8,
               net_obj=None, progress_every: int = 10, stop_at: int | None = None) -> dict:
    """Run (or resume) one search; return the result dict also written to ``out/result.json``.

    ``net_obj`` reuses an already built network (its evaluation cache) across searches.
    ``stop_at`` ends the run after that many episodes, as an interruption would (tests).
    """
    cfg = search_config(net, cost, budget, agent, episodes, seed)
    out = Path(out)
    ck = out / CHECKPOINT
    state = None
    if resume and ck.is_file():  # checked first: a wrong folder costs no network set-up
        state = checkpoint.decode(ck.read_bytes(), CHECKPOINT_CLASSES, ck)
        if state["config"] != cfg:
            raise checkpoint.CheckpointError(f"{ck} belongs to another search ({state['config']}); "
                                             "give another --out or leave out --resume")
    qnet = net_obj if net_obj is not None else make_net(net)
    model = make_cost(cost, mac_table)
    env = QuantEnv(qnet, model, budget, enforce="reward" if agent == "ppo" else "wall")
    out.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = {"config": cfg, "agent": make_agent(agent, env.observation_space.shape[0], env.action_space.nvec, seed),
                 "episode": 0, "log": [], "best": None, "elapsed": 0.0}
    ag = state["agent"]
    t0 = time.monotonic() - state["elapsed"]
    obs, _ = env.reset(seed=seed)
    while state["episode"] < episodes:
        if stop_at is not None and state["episode"] >= stop_at:
            break
        obs, _ = env.reset()
        done = False
        while not done:
            action = ag.act(obs)
            nxt, reward, done, _, info = env.step(action)
            ag.observe(obs, action, reward, done)
            obs = nxt
        ag.end_episode()
        n = state["episode"] = state["episode"] + 1
        rec = {"episode": n, "plan": plan_json(info["plan"]), "accuracy": info["accuracy"], "cost": info["cost"],
               "reward": reward, "feasible": info["feasible"], "wall_s": time.monotonic() - t0}
        state["log"].append(rec)
        best = state["best"]
        if rec["feasible"] and (best is None or rec["reward"] > best["reward"]
                                or rec["reward"] == best["reward"] and rec["cost"] < best["cost"]):
            state["best"] = dict(rec)
        state["elapsed"] = time.monotonic() - t0
        if not quiet and (n % progress_every == 0 or n == episodes):
            print(_progress(cfg, n, state["log"], state["best"], state["elapsed"]), flush=True)
        if ag.idle and (n % ckpt_every == 0 or n == episodes):
            ck.write_bytes(checkpoint.encode(state, CHECKPOINT_CLASSES))
    result = {"config": cfg, "episodes_run": state["episode"], "wall_s": state["elapsed"],
              "reference_score": qnet.reference, "full_cost": env.full_cost, "cost_unit": model.primary,
              "best": state["best"], "log": state["log"]}
    if state["best"] is not None:
        plan = plan_from_json(state["best"]["plan"])
        result["table"] = layer_table(qnet, model, plan)
        _save_network(out / "quantized.npz", qnet, plan, cfg)
        if net == "cnn":
            from .quant_nets import DigitsCnn

            result["best"]["test_accuracy_rel"] = DigitsCnn(split="test").evaluate(plan)
    (out / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def _save_network(path: Path, qnet, plan, cfg) -> None:
    arrays = {}
    for l, p, w, b in zip(qnet.layers, plan, qnet.quantized_weights(plan), qnet.float_biases()):
        arrays[f"{l.name}/W"] = w.astype(np.float32)
        arrays[f"{l.name}/b"] = np.asarray(b, dtype=np.float32)
        arrays[f"{l.name}/a_levels"] = qnet.levels(qnet.layers.index(l), p).astype(np.float32)
    if hasattr(qnet, "obs_scale"):  # the actor divides each observation channel by this first
        arrays["obs_scale"] = qnet.obs_scale.astype(np.float32)
    meta = dict(cfg, plan=plan_json(plan), layers=[l.name for l in qnet.layers])
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
