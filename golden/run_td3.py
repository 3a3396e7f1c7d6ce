"""Runs of the golden TD3: training runs with checkpoints, and tensor traces for the hardware.

This is the experiment driver around the golden model (:mod:`golden.td3`, :mod:`golden.traces`).
It lives beside them, not in ``flows/`` (the EDA flows), because it drives no hardware tool and
the benchmarks call it as much as the command line does. ``omnidrl train`` and ``omnidrl trace``
(argument parsing only, in ``flows/cli.py``) call :func:`run_training`, :func:`record_trace` and,
with ``--snapshot``, :func:`record_stage_trace` (also used by ``bench/td3_stage_traces.py``).
Like the rest of ``golden/`` it never imports Amaranth.

A training run writes into its folder:

* ``config.json``: the full :class:`golden.td3.TD3Config`;
* ``metrics.jsonl``: one record per training episode (``kind: episode``) and per evaluation
  (``kind: eval``) with the current and running-average compression ratio;
* ``checkpoint.npz``: the whole training state (resuming continues from it exactly; the format
  is :mod:`golden.checkpoint`: the same state gives the same bytes, loading runs no code);
* ``summary.json`` and ``plot.png`` (return and CR against steps).

Heavy imports (gymnasium, matplotlib) happen inside the functions so ``omnidrl --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

__all__ = ["run_training", "record_trace", "record_stage_trace", "parse_snapshots", "trainer_from_checkpoint",
           "record_stage", "write_plot", "versions", "utc_now", "CHECKPOINT", "check_trace_at"]

#: the checkpoint's file name in a run folder
CHECKPOINT = "checkpoint.npz"


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ`` (the date stamp of every result file)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def versions() -> dict:
    """Python, NumPy, gymnasium and MuJoCo versions and the machine a run was made on."""
    import numpy as np

    out = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
           "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        import gymnasium
        import mujoco

        out["gymnasium"], out["mujoco"] = gymnasium.__version__, mujoco.__version__
    except ImportError:
        pass
    return out


class _Progress:
    """A one-line live status on stderr: steps, updates/s, last returns, CR."""

    def __init__(self, quiet: bool, total: int, label: str = ""):
        self.quiet, self.total, self.label = quiet, total, label
        self.t0 = self.t_last = time.monotonic()
        self.u_last = None
        self.ups = 0.0

    def __call__(self, tr, force=False) -> None:
        now = time.monotonic()
        if not force and now - self.t_last < 1.0:
            return
        if self.u_last is not None and now > self.t_last:
            self.ups = (tr.n_updates - self.u_last) / (now - self.t_last)
        self.t_last, self.u_last = now, tr.n_updates
        if self.quiet:
            return
        ev = tr.evals[-1]["return"] if tr.evals else float("nan")
        ep = tr.last_train_return if tr.last_train_return is not None else float("nan")
        avg = tr.cr_sum / tr.n_updates if tr.n_updates else 0.0
        line = (f"{self.label}step {tr.step}/{self.total}  {self.ups:6.1f} upd/s  "
                f"eval {ev:9.1f}  episode {ep:9.1f}  CR {tr._cr_cache['cr']:.3f} (avg {avg:.3f})")
        print("\r" + line, end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.quiet:
            print(file=sys.stderr, flush=True)


def write_plot(records: list[dict], path: Path, title: str) -> None:
    """PNG of evaluation return and compression ratio against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [r for r in records if r["kind"] == "eval"]
    ep = [r for r in records if r["kind"] == "episode"]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    if ep:
        a1.plot([r["step"] for r in ep], [r["return"] for r in ep], ".", ms=3, alpha=0.4, label="training episode")
    if ev:
        a1.plot([r["step"] for r in ev], [r["return"] for r in ev], "-o", ms=3, label="evaluation (10 ep.)")
    a1.set_ylabel("return")
    if ep or ev:
        a1.legend(loc="best", fontsize=8)
    a1.set_title(title)
    pts = ep + ev
    pts.sort(key=lambda r: r["step"])
    a2.plot([r["step"] for r in pts], [r["cr"] for r in pts], label="CR")
    a2.plot([r["step"] for r in pts if r["avg_cr"] is not None],
            [r["avg_cr"] for r in pts if r["avg_cr"] is not None], label="average CR")
    a2.set_ylabel("compression ratio")
    a2.set_xlabel("environment steps")
    a2.set_ylim(-0.02, 1.0)
    a2.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- training

def check_trace_at(cfg, trace_at: tuple) -> None:
    """Refuse ``--trace-at`` update numbers the run never makes (one line, TD3ConfigError)."""
    from golden.td3 import TD3ConfigError

    last = cfg.steps - cfg.start_steps
    for n in trace_at:
        if last < 1:
            raise TD3ConfigError(f"--trace-at {n} is not allowed: this run makes no updates (steps "
                                 f"{cfg.steps} <= start_steps {cfg.start_steps}), so there is none to record")
        if not 1 <= n <= last:
            raise TD3ConfigError(f"--trace-at {n} is not allowed: it must be an update number from 1 to "
                                 f"{last} (this run makes steps - start_steps = {cfg.steps} - "
                                 f"{cfg.start_steps} updates)")


def run_training(cfg, out: Path, resume: bool = False, quiet: bool = True, stop_at: int | None = None,
                 trace_at: tuple = ()) -> dict:
    """Train (or continue) one run into ``out``; return the summary dict.

    Everything is checked before anything is written: bad input raises
    :class:`golden.td3.TD3ConfigError` (unknown env, resume mismatch, a ``trace_at`` the run
    never reaches) or :class:`golden.checkpoint.CheckpointError` (a damaged or foreign
    checkpoint). SIGTERM and SIGINT are read before every step: the run stops within one step
    (or one evaluation step), writes the exact state to the checkpoint and raises
    KeyboardInterrupt; a second signal stops at once.
    """
    from golden.td3 import TD3ConfigError, Trainer
    from golden import traces as tr_mod

    out = Path(out)
    ckpt = out / CHECKPOINT
    metrics = out / "metrics.jsonl"
    check_trace_at(cfg, trace_at)
    if resume:
        if not ckpt.is_file():
            old = out / "checkpoint.pkl"
            if old.is_file():
                raise TD3ConfigError(f"--resume is not allowed: {old} is a pickle checkpoint, which is no "
                                     f"longer loaded (loading a pickle can run code); start without --resume")
            raise TD3ConfigError(f"--resume is not allowed: {ckpt} does not exist (start without --resume)")
        trainer = Trainer.from_state(ckpt.read_bytes(), cfg, source=ckpt)
        # keep exactly the records the checkpoint had seen
        records = [r for r in _read_records(metrics) if r["step"] <= trainer.step]
    else:
        trainer = Trainer(cfg)
        records = []
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True) + "\n")
    with open(metrics, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")

    prog = _Progress(quiet, cfg.steps, f"{cfg.method}/{cfg.numerics} ")
    stop = {"flag": False}

    def on_signal(signum, frame):  # stop before the next step, checkpoint, exit cleanly
        if stop["flag"]:  # a second signal: do not wait any longer
            raise KeyboardInterrupt(f"stopped by a second signal at step {trainer.step}")
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
        if hasattr(signal, "SIGTERM") and _main_thread() else {}
    mf = open(metrics, "a")
    t_start, u_start = time.monotonic(), trainer.n_updates

    def on_record(rec):
        records.append(rec)
        mf.write(json.dumps(rec) + "\n")
        mf.flush()

    def save():
        _atomic_write(ckpt, trainer.state_bytes())

    def on_step(t):
        prog(t)
        if t.step % cfg.ckpt_every == 0:
            save()

    def on_trace(n, update_trace):
        tensors, info = tr_mod.tensors_from_update(cfg.method, update_trace)
        meta = {"env": cfg.env, "step": trainer.step, "update": n, "config": cfg.to_dict(), "layers": info}
        tr_mod.save_trace(out / f"trace_u{n}.npz", tensors, meta)

    target = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    try:
        trainer.run(until=target, on_record=on_record, on_step=on_step, trace_at=trace_at,
                    on_trace=on_trace, should_stop=lambda: stop["flag"])
        save()
    finally:
        mf.close()
        for s, h in old.items():
            signal.signal(s, h)
        prog(trainer, force=True)
        prog.done()
    if stop["flag"]:  # checkpointed above; let the caller stop too
        raise KeyboardInterrupt(f"stopped by a signal at step {trainer.step} (checkpointed)")
    elapsed = time.monotonic() - t_start
    summary = trainer.summary()
    summary["finished"] = trainer.step >= cfg.steps
    summary["updates_per_s_this_session"] = (trainer.n_updates - u_start) / elapsed if elapsed > 0 else None
    summary["versions"] = versions()
    summary["date"] = utc_now()
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_plot(records, out / "plot.png", f"{cfg.env} {cfg.method} seed {cfg.seed} ({cfg.numerics})")
    return summary


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ----------------------------------------------------------------------------- traces

def record_trace(configs: dict, trace_numerics: str, out: Path, quiet: bool = True) -> Path:
    """Train each method briefly and record its last actor-updating update as one trace.

    Parameters
    ----------
    configs : dict
        Method name -> :class:`golden.td3.TD3Config` of its short run (same env, seed, numerics).
    trace_numerics : str
        Numerics of the recorded update (``bf16-exact``: dW/dv are the hardware's bits).
    out : Path
        The ``.npz`` to write (schema in docs/traces.md).
    quiet : bool
        No progress line.

    Raises :class:`golden.td3.TD3ConfigError` for bad input.
    """
    from golden.td3 import METHODS, NUMERICS, Numerics, TD3ConfigError, Trainer, check_env_id, make_env
    from golden import traces as tr_mod

    if not configs:
        raise TD3ConfigError(f"--methods is not allowed to be empty: give one or more of {', '.join(METHODS)}")
    if trace_numerics not in NUMERICS:
        raise TD3ConfigError(f"--trace-numerics {trace_numerics!r} is not allowed: "
                             f"choose one of {', '.join(NUMERICS)}")
    # every check before any training, so that no work is lost to bad input
    for cfg in configs.values():
        check_env_id(cfg.env)
        if cfg.steps <= cfg.start_steps + 1:
            raise TD3ConfigError(f"--steps {cfg.steps} is not allowed: a trace needs updates, so steps "
                                 f"must exceed --start-steps ({cfg.start_steps}) by at least 2")
    for env_id in {cfg.env for cfg in configs.values()}:
        make_env(env_id).close()  # a Box action and observation space
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # fails now (OSError), not after the training
    tensors, layers, runs = {}, {}, {}
    for method, cfg in configs.items():
        n_upd = cfg.steps - cfg.start_steps
        target = n_upd if n_upd % cfg.policy_freq == 0 else n_upd - 1  # an update that trains the actor too
        trainer = Trainer(cfg)
        prog = _Progress(quiet, cfg.steps, f"trace {method} ")
        got = {}

        def on_step(t, target=target, prog=prog):
            prog(t)
            if t.n_updates == target - 1:
                t.agent.num = Numerics(trace_numerics)

        def on_trace(n, upd, got=got, trainer=trainer, cfg=cfg):
            got["trace"], got["step"], got["update"] = upd, trainer.step, n
            trainer.agent.num = Numerics(cfg.numerics)

        trainer.run(until=cfg.start_steps + target, on_step=on_step, trace_at=(target,), on_trace=on_trace)
        prog.done()
        t, info = tr_mod.tensors_from_update(method, got["trace"])
        tensors.update(t)
        layers.update(info)
        runs[method] = {"config": cfg.to_dict(), "step": got["step"], "update": got["update"],
                        "cr": trainer._cr_cache["cr"]}
    first = next(iter(configs.values()))
    meta = {"env": first.env, "seed": first.seed, "train_numerics": first.numerics,
            "trace_numerics": trace_numerics, "runs": runs, "layers": layers,
            "versions": versions(), "date": utc_now(), "schema": "docs/traces.md"}
    return tr_mod.save_trace(out, tensors, meta)


# ----------------------------------------------------------------------------- stage traces

#: a stage name becomes the first part of every key (``STAGE/NET/LAYER/KIND``)
_STAGE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def parse_snapshots(items) -> list[tuple[str, Path]]:
    """``STAGE=PATH`` strings (``--snapshot``) as ``(stage, path)`` pairs, checked.

    Raises :class:`golden.td3.TD3ConfigError` (one line naming the value) for a malformed item,
    a stage name that cannot be a key part, a stage given twice or a path that is not a file;
    whether the file is a checkpoint is checked by :func:`trainer_from_checkpoint`.
    """
    from golden.td3 import TD3ConfigError

    out: list[tuple[str, Path]] = []
    for item in items:
        stage, sep, path = item.partition("=")
        if not sep or not stage or not path or not set(stage) <= _STAGE_CHARS or stage == "meta":
            raise TD3ConfigError(f"--snapshot {item!r} is not allowed: give STAGE=PATH, STAGE made of letters, "
                                 f"digits, '_', '-' or '.', not 'meta' (it starts every key of the trace), PATH a "
                                 f"checkpoint.npz")
        if stage in dict(out):
            raise TD3ConfigError(f"--snapshot {item!r} is not allowed: stage {stage!r} is given twice")
        if not Path(path).is_file():
            raise TD3ConfigError(f"--snapshot {item!r} is not allowed: {path} is not an existing file")
        out.append((stage, Path(path)))
    return out


def trainer_from_checkpoint(path: Path, label: str | None = None):
    """The :class:`golden.td3.Trainer` stored in a ``checkpoint.npz``, with the configuration it
    was written with (its step budget raised by 10, room for the steps that reach the next update).

    Raises :class:`golden.checkpoint.CheckpointError` for a file that is not a readable TD3
    checkpoint and :class:`golden.td3.TD3ConfigError` for one that has made no update yet;
    both name ``label`` (default: the path).
    """
    from golden.td3 import TD3Config, TD3ConfigError, Trainer

    label = label or str(path)
    data = Path(path).read_bytes()
    cfg = TD3Config.from_dict(Trainer.checkpoint_config(data, label))
    # a finished run sits at cfg.steps; room for the few steps that reach the traced update
    cfg = cfg.replace(steps=cfg.steps + 10)
    trainer = Trainer.from_state(data, cfg, source=label)
    if trainer.step < cfg.start_steps:
        raise TD3ConfigError(f"{label} is not allowed: the run is at step {trainer.step}, still in its "
                             f"random warm-up (start_steps {cfg.start_steps}), so it has no update to record")
    return trainer


def record_stage(trainer, trace_numerics: str = "bf16-exact") -> tuple[dict, dict]:
    """Record the next update after the trainer's state that also trains the actor.

    The steps before it run in the run's own numerics; the recorded update in
    ``trace_numerics``. Returns ``(update_trace, run)``: the per-layer records of
    ``TD3Agent.update(trace=...)`` and what ``meta["runs"][STAGE]`` says about the update.
    """
    from golden.td3 import Numerics

    t = trainer
    target = t.n_updates + 1
    while target % t.cfg.policy_freq:
        target += 1
    got = {}

    def on_step(tr):
        if tr.n_updates == target - 1:  # the traced update comes next
            tr.agent.num = Numerics(trace_numerics)

    def on_trace(n, upd):
        got["trace"], got["update"], got["step"] = upd, n, t.step

    on_step(t)
    t.run(until=t.step + (target - t.n_updates), on_step=on_step, trace_at=(target,), on_trace=on_trace)
    if "trace" not in got:
        raise RuntimeError(f"update {target} was not recorded (trainer at step {t.step})")
    run = {"method": t.cfg.method, "env": t.cfg.env, "seed": t.cfg.seed, "step": got["step"],
           "update": got["update"], "cr": t._cr_cache["cr"], "train_numerics": t.cfg.numerics,
           "last_eval": t.evals[-1]["return"] if t.evals else None, "config": t.cfg.to_dict()}
    return got["trace"], run


def record_stage_trace(snapshots, out: Path, trace_numerics: str = "bf16-exact", quiet: bool = True) -> Path:
    """One trace of several stages of training runs, recorded from their checkpoints.

    Parameters
    ----------
    snapshots : list of str
        ``STAGE=PATH`` as ``--snapshot`` takes it, in training order: each stage is the next
        actor-training update after that checkpoint.
    out : Path
        The ``.npz`` to write: keys ``STAGE/NET/LAYER/KIND`` (docs/traces.md), ``meta["stages"]``
        the stages in the given order, ``meta["runs"][STAGE]`` method, step, update, CR, config.
    trace_numerics : str
        Numerics of the recorded updates (``bf16-exact``: dW/dv are the hardware's bits).
    quiet : bool
        No line per stage on stderr.

    Every snapshot is checked (name, file, checkpoint, past the warm-up, one env for all) before
    any is recorded: bad input raises :class:`golden.td3.TD3ConfigError` or
    :class:`golden.checkpoint.CheckpointError`, one line naming the ``--snapshot`` value.
    """
    from golden.td3 import NUMERICS, TD3ConfigError
    from golden import traces as tr_mod

    pairs = parse_snapshots(snapshots)
    if not pairs:
        raise TD3ConfigError("--snapshot is required: give STAGE=PATH (a checkpoint.npz), one or more")
    if trace_numerics not in NUMERICS:
        raise TD3ConfigError(f"--trace-numerics {trace_numerics!r} is not allowed: "
                             f"choose one of {', '.join(NUMERICS)}")
    envs = {}
    for stage, path in pairs:  # each loaded once to check it, then dropped (a trainer holds its replay)
        label = f"--snapshot '{stage}={path}'"
        envs[stage] = trainer_from_checkpoint(path, label).cfg.env
    if len(set(envs.values())) > 1:
        raise TD3ConfigError(f"--snapshot is not allowed to mix environments: {envs}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # fails now (OSError), not after the recording
    tensors, runs, layers = {}, {}, {}
    for stage, path in pairs:
        t0 = time.monotonic()
        update, run = record_stage(trainer_from_checkpoint(path), trace_numerics)
        run["snapshot"] = Path(path).name
        t, info = tr_mod.tensors_from_update(stage, update)
        tensors.update(t)
        layers.update(info)
        runs[stage] = run
        if not quiet:
            print(f"{stage}: {run['method']} step {run['step']} update {run['update']} CR {run['cr']:.4f} "
                  f"(last eval {run['last_eval']}, {time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    first = next(iter(runs.values()))
    meta = {"env": first["env"], "trace_numerics": trace_numerics, "runs": runs, "layers": layers,
            "versions": versions(), "schema": "docs/traces.md", "stages": list(runs), "date": utc_now()}
    return tr_mod.save_trace(out, tensors, meta)
