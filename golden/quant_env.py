"""The mixed-precision search environment (``gymnasium.Env``), docs/quant.md.

One episode walks the layers of a :class:`golden.quant_nets.QuantNet`. At layer ``i`` the agent
sees (all in [0, 1] except the last entry, in [0, 2]):

====  ==========================================================================
 0    layer index / (layers - 1)
 1    kind: 0 fully connected, 1 convolution
 2    fan-in, log-scaled: log(1 + K) / log(1 + max K)
 3    fan-out, log-scaled the same way
 4    kernel side / max kernel side
 5    parameters, log-scaled
 6-8  the previous layer's action: (w_bits - 2) / 6, (a_bits - 2) / 6, kind / 3 (0 at layer 0)
 9    budget used so far: cost of the layers chosen so far / budget, capped at 2
====  ==========================================================================

The action is ``MultiDiscrete([7, 7, 4])``: weight bits 2..8, activation bits 2..8 and the
quantizer kind (:data:`golden.quant_nets.QUANT_KINDS`: uniform, log-w, ed-a, km-a). Log-domain
weights carry at most 4 code bits; a larger weight action with log-w is clamped to 4.

Cost is relative: ``c = cost(plan) / cost(all layers 8-bit uniform)``; the budget ``B`` is such
a fraction. The reward is 0 until the last layer; then, with ``acc`` the accuracy relative to the
float network:

* ``enforce="reward"`` (PPO, the paper's idea: the constraint is met through the reward)::

      r = acc - lam * max(0, c / B - 1) - beta * c / B        (lam = 10, beta = 0.1)

  A plan over budget loses 10 per unit of excess, far more than any accuracy it could buy, so a
  policy that maximizes r stays within budget without any correction; inside the budget the small
  ``beta`` term makes a cheaper plan win a tie in accuracy (0.05 of reward for halving the cost
  is worth 5 % of accuracy).
* ``enforce="wall"`` (HAQ): the plan is first brought under the budget by lowering bit widths in a
  fixed order (from the last layer to the first, weight and activation bits one step each,
  layer by layer, until it fits or every width is 2), then ``r = acc - 1``.

``info`` of the last step has the executed ``plan``, ``accuracy``, ``cost`` (relative), ``feasible``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from .quant_cost import plan_cost
from .quant_nets import LOG_MAX_BITS, QUANT_KINDS, LayerPlan, uniform_plan

__all__ = ["QuantEnv", "BITS", "KIND_NAMES", "action_to_plan", "plan_to_action", "enforce_budget"]

BITS = tuple(range(2, 9))
KIND_NAMES = tuple(QUANT_KINDS)
OBS_DIM = 10


def action_to_plan(action) -> LayerPlan:
    """The layer plan of a ``MultiDiscrete([7, 7, 4])`` action (log-w weight bits clamped to 4)."""
    w, a, k = (int(v) for v in np.asarray(action).ravel()[:3])
    kind = KIND_NAMES[k]
    wb = BITS[w]
    if kind == "log-w":
        wb = min(wb, LOG_MAX_BITS)
    return LayerPlan(wb, BITS[a], kind)


def plan_to_action(plan: LayerPlan) -> np.ndarray:
    return np.array([plan.w_bits - 2, plan.a_bits - 2, KIND_NAMES.index(plan.kind)], dtype=np.int64)


def enforce_budget(model, layers, plan, budget_cost: float) -> list[LayerPlan]:
    """HAQ's correction: lower bits from the last layer backward until the plan fits (module doc)."""
    plan = list(plan)
    while plan_cost(model, layers, plan)[0] > budget_cost:
        changed = False
        for i in range(len(plan) - 1, -1, -1):
            p = plan[i]
            w, a = max(2, p.w_bits - 1), max(2, p.a_bits - 1)
            if (w, a) != (p.w_bits, p.a_bits):
                plan[i] = LayerPlan(w, a, p.kind)
                changed = True
                if plan_cost(model, layers, plan)[0] <= budget_cost:
                    return plan
        if not changed:
            break
    return plan


class QuantEnv(gym.Env):
    """Per-layer precision search over a network (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, net, cost_model, budget: float = 0.5, enforce: str = "reward",
                 lam: float = 10.0, beta: float = 0.1):
        if not 0.0 < budget <= 1.0:
            raise ValueError(f"budget={budget!r} is not allowed; give a fraction of the 8-bit cost in (0, 1]")
        if enforce not in ("reward", "wall"):
            raise ValueError(f"enforce={enforce!r} is not allowed; choose reward or wall")
        self.net, self.cost, self.budget, self.enforce = net, cost_model, float(budget), enforce
        self.lam, self.beta = lam, beta
        self.layers = net.layers
        self.full_cost = plan_cost(cost_model, self.layers, uniform_plan(len(self.layers), 8))[0]
        self.budget_cost = self.budget * self.full_cost
        self.observation_space = gym.spaces.Box(0.0, np.array([1.0] * 9 + [2.0], dtype=np.float32),
                                                shape=(OBS_DIM,), dtype=np.float32)
        self.action_space = gym.spaces.MultiDiscrete([len(BITS), len(BITS), len(KIND_NAMES)])
        ls = self.layers
        self._feat = []
        mk = max(l.kernel for l in ls)
        for i, l in enumerate(ls):
            self._feat.append([i / max(1, len(ls) - 1), 1.0 if l.kind == "conv" else 0.0,
                               math.log1p(l.fan_in) / math.log1p(max(x.fan_in for x in ls)),
                               math.log1p(l.fan_out) / math.log1p(max(x.fan_out for x in ls)),
                               l.kernel / mk, math.log1p(l.params) / math.log1p(max(x.params for x in ls))])
        self._plan: list[LayerPlan] = []

    def _obs(self) -> np.ndarray:
        i = len(self._plan)
        prev = [0.0, 0.0, 0.0]
        if self._plan:
            p = self._plan[-1]
            prev = [(p.w_bits - 2) / 6, (p.a_bits - 2) / 6, KIND_NAMES.index(p.kind) / 3]
        used = plan_cost(self.cost, self.layers[:i], self._plan)[0] / self.budget_cost if i else 0.0
        return np.array(self._feat[i] + prev + [min(used, 2.0)], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._plan = []
        return self._obs(), {}

    def step(self, action):
        if len(self._plan) >= len(self.layers):
            raise RuntimeError("step() after the episode ended; call reset()")
        self._plan.append(action_to_plan(action))
        if len(self._plan) < len(self.layers):
            return self._obs(), 0.0, False, False, {}
        plan = self._plan
        if self.enforce == "wall":
            plan = enforce_budget(self.cost, self.layers, plan, self.budget_cost)
        c = plan_cost(self.cost, self.layers, plan)[0] / self.full_cost
        acc = self.net.evaluate(plan)
        if self.enforce == "wall":
            reward = acc - 1.0
        else:
            reward = acc - self.lam * max(0.0, c / self.budget - 1.0) - self.beta * c / self.budget
        obs = np.array(self._feat[-1] + [0.0, 0.0, 0.0] + [min(c / self.budget, 2.0)], dtype=np.float32)
        info = {"plan": list(plan), "chosen": list(self._plan), "accuracy": acc, "cost": c,
                "feasible": c <= self.budget + 1e-12}
        return obs, float(reward), True, False, info
