"""The precision search: target networks, the gymnasium environment, PPO and DDPG, resume, CLI."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from flows import cli
from golden.bf16 import from_bits
from golden.quant_agents import make_agent
from golden.quant_cost import MacModel, plan_cost
from golden.quant_env import QuantEnv, action_to_plan, enforce_budget, plan_to_action
from golden.quant_nets import STAGES_TRACE, DigitsCnn, LayerPlan, Td3Actor, train_digits_cnn, uniform_plan
from golden.quant_search import run_search
from golden.reram import ReramModel

FIXTURE = "tests/data/mpmac_area_fixture.json"


@pytest.fixture(scope="module")
def cnn():
    return DigitsCnn()


# ----------------------------------------------------------------------------- networks

def test_cnn_weights_and_layers(cnn):
    assert len(cnn.layers) >= 5 and [l.kind for l in cnn.layers].count("conv") == 4
    assert cnn.reference >= 0.95                        # float accuracy on the validation split
    assert DigitsCnn(split="test").reference >= 0.95    # and on the held-out test split
    assert cnn.evaluate(uniform_plan(6, 8)) >= 0.98
    assert cnn.evaluate(uniform_plan(6, 2)) < 0.5        # 2 bits everywhere breaks it
    assert cnn.layers[1].macs == 72 * 16 * 64


def test_cnn_training_learns(tmp_path):
    params = train_digits_cnn(epochs=1, seed=3, out=tmp_path / "w.npz")
    net = DigitsCnn(weights=tmp_path / "w.npz")
    assert net.reference > 0.5 and set(params) == {k for k in np.load(tmp_path / "w.npz").files if k != "meta"}


def test_actor_biases_reproduce_the_recorded_activations():
    actor = Td3Actor(episodes=1, steps=30)
    with np.load(STAGES_TRACE) as z:
        x1 = from_bits(z["middle/actor/l1/x"]).astype(np.float64)
        x2 = from_bits(z["middle/actor/l2/x"]).astype(np.float64)
    h = np.maximum((x1 / actor.obs_scale) @ actor.W[0].T + actor.b[0], 0)
    assert np.max(np.abs(h - x2)) < 0.05 * np.max(np.abs(x2))  # bf16-rounded recordings
    assert actor.reference > 0                                 # it runs forward
    assert actor.evaluate(uniform_plan(3, 8)) > 0.5


# ----------------------------------------------------------------------------- environment

def test_env_passes_gymnasium_checker(cnn):
    env = QuantEnv(cnn, ReramModel(), 0.5)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (10,) and env.action_space.nvec.tolist() == [7, 7, 4]


def test_env_episode_reward_is_the_documented_formula(cnn):
    model = MacModel(FIXTURE)
    env = QuantEnv(cnn, model, 0.5)
    plan = [LayerPlan(6, 5, "uniform"), LayerPlan(4, 4, "km-a"), LayerPlan(5, 6, "ed-a"),
            LayerPlan(3, 4, "log-w"), LayerPlan(8, 8), LayerPlan(2, 3)]
    obs, _ = env.reset(seed=0)
    for i, p in enumerate(plan):
        assert obs[0] == pytest.approx(i / 5)
        obs, r, done, trunc, info = env.step(plan_to_action(p))
        assert done == (i == 5) and not trunc
    full = plan_cost(model, cnn.layers, uniform_plan(6, 8))[0]
    c = plan_cost(model, cnn.layers, plan)[0] / full
    acc = cnn.evaluate(plan)
    assert info["cost"] == pytest.approx(c) and info["accuracy"] == acc
    assert r == pytest.approx(acc - 10 * max(0.0, c / 0.5 - 1) - 0.1 * c / 0.5)
    # all 8 bits is twice the budget: the penalty dominates
    env.reset()
    for _ in range(6):
        _, r8, *_ = env.step(plan_to_action(LayerPlan(8, 8)))
    assert r8 < -9


def test_env_observation_tracks_budget_and_previous_action(cnn):
    env = QuantEnv(cnn, ReramModel(), 0.25)
    env.reset()
    obs, *_ = env.step(np.array([6, 2, 3]))
    assert obs[6:9].tolist() == pytest.approx([1.0, 2 / 6, 1.0])
    used = ReramModel().layer_cost(cnn.layers[0], LayerPlan(8, 4, "km-a"))["area_mm2"] / env.budget_cost
    assert obs[9] == pytest.approx(used)


def test_log_action_clamps_and_wall_lowers_from_the_last_layer(cnn):
    assert action_to_plan([6, 0, 1]) == LayerPlan(4, 2, "log-w")
    model = ReramModel()
    layers = cnn.layers
    full = plan_cost(model, layers, uniform_plan(6, 8))[0]
    fixed = enforce_budget(model, layers, uniform_plan(6, 8), 0.9 * full)
    assert plan_cost(model, layers, fixed)[0] <= 0.9 * full
    assert fixed[0] == LayerPlan(8, 8) and fixed[-1] == LayerPlan(7, 7)   # the last layer went first
    tiny = enforce_budget(model, layers, uniform_plan(6, 8), 1e-9)        # cannot fit: all at 2 bits
    assert tiny == uniform_plan(6, 2)


# ----------------------------------------------------------------------------- agents

TARGET = np.array([5, 1, 2])


class Bandit(gym.Env):
    """One-step toy problem: reward 1 - L1 distance to TARGET / 13 (a random policy averages 0.57)."""
    observation_space = gym.spaces.Box(0, 1, (4,), np.float32)
    action_space = gym.spaces.MultiDiscrete([7, 7, 4])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(4, 0.5, np.float32), {}

    def step(self, a):
        return np.full(4, 0.5, np.float32), float(1 - np.abs(np.asarray(a) - TARGET).sum() / 13), True, False, {}


def _train(agent, episodes):
    env, rewards = Bandit(), []
    for _ in range(episodes):
        o, _ = env.reset()
        a = agent.act(o)
        _, r, d, _, _ = env.step(a)
        agent.observe(o, a, r, d)
        agent.end_episode()
        rewards.append(r)
    return float(np.mean(rewards[-30:]))


@pytest.mark.parametrize("name,episodes,threshold", [("ppo", 200, 0.95), ("ddpg", 200, 0.8)])
def test_agent_learns_the_toy_bandit(name, episodes, threshold):
    agent = make_agent(name, 4, [7, 7, 4], seed=0)
    assert _train(agent, episodes) >= threshold
    random_policy = np.mean([1 - np.abs(np.array([i, j, k]) - TARGET).sum() / 13
                             for i in range(7) for j in range(7) for k in range(4)])
    assert random_policy < threshold - 0.2  # the threshold fails for a random policy
    greedy = agent.act(np.full(4, 0.5), greedy=True)
    assert np.abs(greedy - TARGET).sum() <= 2


# ----------------------------------------------------------------------------- search, resume, CLI

@pytest.mark.parametrize("agent", ["ppo", "ddpg"])
def test_search_resumes_exactly(tmp_path, cnn, agent):
    straight = run_search("cnn", "reram", 0.5, agent, 16, 1, tmp_path / "a", quiet=True, net_obj=cnn, ckpt_every=4)
    run_search("cnn", "reram", 0.5, agent, 16, 1, tmp_path / "b", quiet=True, net_obj=cnn, ckpt_every=4, stop_at=8)
    resumed = run_search("cnn", "reram", 0.5, agent, 16, 1, tmp_path / "b", resume=True, quiet=True, net_obj=cnn,
                         ckpt_every=4)
    key = lambda log: [(r["plan"], r["reward"]) for r in log]  # noqa: E731
    assert key(resumed["log"]) == key(straight["log"]) and len(straight["log"]) == 16
    assert resumed["best"]["plan"] == straight["best"]["plan"]


def test_cli_quantize_writes_table_and_network(tmp_path, capsys):
    out = tmp_path / "q"
    rc = cli.main(["quantize", "--net", "cnn", "--cost", "mac", "--mac-table", FIXTURE, "--budget", "0.4",
                   "--agent", "ddpg", "--episodes", "6", "--seed", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "best plan: accuracy" in text and "cost share" in text
    res = json.loads((out / "result.json").read_text())
    assert res["best"]["cost"] <= 0.4 + 1e-12                 # HAQ's wall keeps it in budget
    assert sum(r["cost_share"] for r in res["table"]) == pytest.approx(1.0)
    with np.load(out / "quantized.npz") as z:
        plan = json.loads(bytes(z["meta"]).decode())["plan"]
        assert plan == res["best"]["plan"] and len(z["c1/a_levels"]) <= 2 ** plan[0][1]
        assert len(np.unique(z["f6/W"])) <= 2 ** plan[5][0]


def test_resume_into_another_search_is_one_line(tmp_path, capfd, cnn):
    run_search("cnn", "reram", 0.5, "ppo", 8, 0, tmp_path / "r", quiet=True, net_obj=cnn)
    before = sorted(p.name for p in (tmp_path / "r").iterdir())
    rc = cli.main(["quantize", "--net", "cnn", "--budget", "0.3", "--episodes", "8", "--out", str(tmp_path / "r"),
                   "--resume"])
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "belongs to another search" in err[0] and "--resume" in err[0]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == before
