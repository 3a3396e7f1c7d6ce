"""Search agents in NumPy: PPO (categorical), DDPG as HAQ uses it, and the uniform baselines.

Both learning agents act on an environment with a ``Box`` observation and a ``MultiDiscrete``
action (:class:`golden.quant_env.QuantEnv`, or the toy bandit of the tests), and share one
interface: ``act(obs) -> action``, ``observe(obs, action, reward, done)``, ``end_episode()``
(learns when it is time) and ``idle`` (no half-collected data: a checkpoint may be written).
Every random draw comes from the agent's own ``rng`` (seeded), and the whole agent is a plain
object tree that :mod:`golden.checkpoint` stores, so a search resumes exactly.

* :class:`PPOAgent`: a factored categorical policy (one softmax head per action dimension; the
  log-probability of an action is the sum over heads), a separate value network, GAE(gamma,
  lambda) advantages, normalized, and the clipped surrogate objective with an entropy bonus;
  ``batch`` episodes per update, ``epochs`` full-batch Adam steps on each.
* :class:`DDPGAgent` (HAQ): a deterministic actor with sigmoid outputs in [0, 1] per action
  dimension, rounded to the discrete choice (``bits = round(a * n + lo - 0.5)``, HAQ's rule,
  here as an index ``floor(a * n)`` clipped to n - 1), a critic Q(s, a), target networks (tau),
  a replay memory; ``warmup`` episodes of uniform random actions, then truncated-normal
  exploration whose width decays per episode; every step of an episode is stored with the
  episode's final reward minus a moving-average baseline (HAQ's reward shaping; here a slow one,
  ``avg_alpha`` = 0.05: a fast one made the toy bandit unlearnable), and the agent makes
  ``updates_per_step`` (8) updates per step after each episode (1 in HAQ, whose searches are
  longer; with 1 the toy bandit was not learned in 200 episodes).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MLP", "PPOAgent", "DDPGAgent", "AGENTS", "make_agent", "CHECKPOINT_CLASSES"]


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float):
        self.lr, self.t = lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / (1 - b1 ** self.t)) / (np.sqrt(v / (1 - b2 ** self.t)) + eps)


class MLP:
    """tanh hidden layers, linear output; ``forward`` keeps what ``backward`` needs."""

    def __init__(self, sizes, rng, lr, out_scale=1.0):
        self.W, self.b = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            scale = np.sqrt(1.0 / n_in) * (out_scale if i == len(sizes) - 2 else 1.0)
            self.W.append(rng.uniform(-scale, scale, (n_in, n_out)))
            self.b.append(np.zeros(n_out))
        self.opt = Adam(self.params(), lr)

    def params(self):
        return self.W + self.b

    def forward(self, x):
        hs = [x]
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            x = x @ w + b
            if i < len(self.W) - 1:
                x = np.tanh(x)
            hs.append(x)
        return x, hs

    def backward(self, hs, g):
        """Parameter gradients for the output gradient ``g``, and the input gradient."""
        gw, gb = [None] * len(self.W), [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            if i < len(self.W) - 1:
                g = g * (1.0 - hs[i + 1] ** 2)
            gw[i] = hs[i].T @ g
            gb[i] = g.sum(axis=0)
            g = g @ self.W[i].T
        return gw + gb, g

    def step(self, grads):
        self.opt.step(self.params(), grads)

    def copy_from(self, other, tau=1.0):
        for a, b in zip(self.params(), other.params()):
            a *= 1.0 - tau
            a += tau * b


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class PPOAgent:
    """PPO with a factored categorical policy (module docstring)."""

    def __init__(self, obs_dim, nvec, seed=0, hidden=64, lr=3e-3, batch=8, epochs=8, clip=0.2,
                 gamma=1.0, lam=0.95, ent_coef=0.01):
        self.rng = np.random.default_rng(seed)
        self.nvec = [int(n) for n in nvec]
        self.pi = MLP([obs_dim, hidden, hidden, sum(self.nvec)], self.rng, lr, out_scale=0.01)
        self.vf = MLP([obs_dim, hidden, hidden, 1], self.rng, lr)
        self.batch, self.epochs, self.clip = batch, epochs, clip
        self.gamma, self.lam, self.ent_coef = gamma, lam, ent_coef
        self.buf = {"obs": [], "act": [], "logp": [], "rew": [], "done": []}
        self.episodes_in_buf = 0
        self.updates = 0

    def _heads(self, logits):
        out, s = [], 0
        for n in self.nvec:
            out.append(logits[..., s:s + n])
            s += n
        return out

    def act(self, obs, greedy=False):
        logits, _ = self.pi.forward(np.asarray(obs, dtype=np.float64)[None])
        action, logp = [], 0.0
        for h in self._heads(logits[0]):
            lp = _log_softmax(h)
            k = int(np.argmax(lp)) if greedy else int(self.rng.choice(len(lp), p=np.exp(lp)))
            action.append(k)
            logp += lp[k]
        self._last_logp = float(logp)
        return np.array(action, dtype=np.int64)

    def observe(self, obs, action, reward, done):
        self.buf["obs"].append(np.asarray(obs, dtype=np.float64))
        self.buf["act"].append(np.asarray(action, dtype=np.int64))
        self.buf["logp"].append(self._last_logp)
        self.buf["rew"].append(float(reward))
        self.buf["done"].append(bool(done))

    @property
    def idle(self) -> bool:
        return not self.buf["obs"]

    def end_episode(self):
        self.episodes_in_buf += 1
        if self.episodes_in_buf >= self.batch:
            self._update()

    def _update(self):
        obs = np.stack(self.buf["obs"])
        act = np.stack(self.buf["act"])
        old = np.array(self.buf["logp"])
        rew, done = np.array(self.buf["rew"]), np.array(self.buf["done"])
        v = self.vf.forward(obs)[0][:, 0]
        adv = np.zeros_like(rew)
        last = 0.0
        for t in range(len(rew) - 1, -1, -1):  # GAE; an episode's last step has no successor
            nxt = 0.0 if done[t] else v[t + 1]
            delta = rew[t] + self.gamma * nxt - v[t]
            last = delta + (0.0 if done[t] else self.gamma * self.lam * last)
            adv[t] = last
        ret = adv + v
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        n = len(rew)
        for _ in range(self.epochs):
            logits, hs = self.pi.forward(obs)
            g_logits = np.zeros_like(logits)
            logp = np.zeros(n)
            lps, probs = [], []
            for h in self._heads(logits):
                lp = _log_softmax(h)
                lps.append(lp)
                probs.append(np.exp(lp))
            for j, lp in enumerate(lps):
                logp += lp[np.arange(n), act[:, j]]
            ratio = np.exp(logp - old)
            clipped = (ratio < 1 - self.clip) & (adv < 0) | (ratio > 1 + self.clip) & (adv > 0)
            # d(-surrogate)/d logp: zero where the clipped branch is the minimum
            g_logp = np.where(clipped, 0.0, -adv * ratio) / n
            s = 0
            for j, (lp, p) in enumerate(zip(lps, probs)):
                k = p.shape[1]
                onehot = np.zeros_like(p)
                onehot[np.arange(n), act[:, j]] = 1.0
                g = g_logp[:, None] * (onehot - p)
                ent = -(p * lp).sum(axis=1, keepdims=True)
                g += self.ent_coef * p * (lp + ent) / n  # d(-ent_coef * entropy)/d logits
                g_logits[:, s:s + k] = g
                s += k
            grads, _ = self.pi.backward(hs, g_logits)
            self.pi.step(grads)
            vp, hv = self.vf.forward(obs)
            gv, _ = self.vf.backward(hv, (vp - ret[:, None]) / n)
            self.vf.step(gv)
        self.updates += 1
        for k in self.buf:
            self.buf[k] = []
        self.episodes_in_buf = 0


class DDPGAgent:
    """DDPG as HAQ uses it (module docstring)."""

    def __init__(self, obs_dim, nvec, seed=0, hidden=64, lr_actor=1e-3, lr_critic=3e-3, warmup=50,
                 sigma0=0.5, sigma_decay=0.97, tau=0.01, gamma=1.0, batch=64, memory=2000, avg_alpha=0.05,
                 updates_per_step=8):
        self.rng = np.random.default_rng(seed)
        self.nvec = [int(n) for n in nvec]
        d = len(self.nvec)
        self.actor = MLP([obs_dim, hidden, hidden, d], self.rng, lr_actor)
        self.critic = MLP([obs_dim + d, hidden, hidden, 1], self.rng, lr_critic)
        self.actor_t = MLP([obs_dim, hidden, hidden, d], self.rng, lr_actor)
        self.critic_t = MLP([obs_dim + d, hidden, hidden, 1], self.rng, lr_critic)
        self.actor_t.copy_from(self.actor)
        self.critic_t.copy_from(self.critic)
        self.warmup, self.sigma, self.sigma_decay = warmup, sigma0, sigma_decay
        self.tau, self.gamma, self.batch, self.memory = tau, gamma, batch, memory
        self.avg_alpha, self.baseline = avg_alpha, None
        self.updates_per_step = updates_per_step
        self.mem = {"obs": np.zeros((memory, obs_dim)), "act": np.zeros((memory, d)), "rew": np.zeros(memory),
                    "obs2": np.zeros((memory, obs_dim)), "done": np.zeros(memory)}
        self.mem_n, self.mem_i = 0, 0
        self.episode: list = []
        self.episodes = 0

    def _mu(self, net, obs):
        z, hs = net.forward(obs)
        return 1.0 / (1.0 + np.exp(-z)), hs

    def to_discrete(self, a) -> np.ndarray:
        return np.array([min(n - 1, int(np.floor(x * n))) for x, n in zip(a, self.nvec)], dtype=np.int64)

    def act(self, obs, greedy=False):
        if greedy:
            a = self._mu(self.actor, np.asarray(obs, dtype=np.float64)[None])[0][0]
        elif self.episodes < self.warmup:
            a = self.rng.uniform(0.0, 1.0, len(self.nvec))
        else:
            mu = self._mu(self.actor, np.asarray(obs, dtype=np.float64)[None])[0][0]
            a = np.empty_like(mu)
            for j, m in enumerate(mu):  # truncated normal on [0, 1] by rejection (HAQ's exploration)
                x = self.rng.normal(m, self.sigma)
                while not 0.0 <= x <= 1.0:
                    x = self.rng.normal(m, self.sigma)
                a[j] = x
        self._last = a
        return self.to_discrete(a)

    def observe(self, obs, action, reward, done):
        self.episode.append((np.asarray(obs, dtype=np.float64), self._last.copy(), float(reward), bool(done)))

    @property
    def idle(self) -> bool:
        return not self.episode

    def end_episode(self):
        final = self.episode[-1][2]
        self.baseline = final if self.baseline is None else self.baseline + self.avg_alpha * (final - self.baseline)
        r = final - self.baseline
        for t, (o, a, _, done) in enumerate(self.episode):
            o2 = self.episode[t + 1][0] if t + 1 < len(self.episode) else o
            i = self.mem_i
            self.mem["obs"][i], self.mem["act"][i], self.mem["rew"][i] = o, a, r
            self.mem["obs2"][i], self.mem["done"][i] = o2, float(done)
            self.mem_i = (i + 1) % self.memory
            self.mem_n = min(self.memory, self.mem_n + 1)
        steps = len(self.episode)
        self.episode = []
        self.episodes += 1
        if self.episodes > self.warmup:
            self.sigma *= self.sigma_decay
        if self.episodes >= self.warmup:
            for _ in range(steps * self.updates_per_step):
                self._update()

    def _update(self):
        idx = self.rng.integers(0, self.mem_n, min(self.batch, self.mem_n))
        o, a, r = self.mem["obs"][idx], self.mem["act"][idx], self.mem["rew"][idx]
        o2, done = self.mem["obs2"][idx], self.mem["done"][idx]
        n = len(idx)
        a2 = self._mu(self.actor_t, o2)[0]
        q2 = self.critic_t.forward(np.concatenate([o2, a2], axis=1))[0][:, 0]
        y = r + self.gamma * (1.0 - done) * q2
        q, hq = self.critic.forward(np.concatenate([o, a], axis=1))
        gq, _ = self.critic.backward(hq, (q - y[:, None]) / n)
        self.critic.step(gq)
        mu, ha = self._mu(self.actor, o)
        q, hq = self.critic.forward(np.concatenate([o, mu], axis=1))
        _, g_in = self.critic.backward(hq, -np.ones((n, 1)) / n)
        g_mu = g_in[:, o.shape[1]:] * mu * (1.0 - mu)
        ga, _ = self.actor.backward(ha, g_mu)
        self.actor.step(ga)
        self.actor_t.copy_from(self.actor, self.tau)
        self.critic_t.copy_from(self.critic, self.tau)


AGENTS = {"ppo": PPOAgent, "ddpg": DDPGAgent}
#: the classes a search checkpoint may hold
CHECKPOINT_CLASSES = {"PPOAgent": PPOAgent, "DDPGAgent": DDPGAgent, "MLP": MLP, "Adam": Adam}


def make_agent(name: str, obs_dim: int, nvec, seed: int = 0, **kw):
    if name not in AGENTS:
        raise ValueError(f"--agent {name!r} is not allowed; choose one of {', '.join(AGENTS)}")
    return AGENTS[name](obs_dim, nvec, seed=seed, **kw)
