"""``omnidrl train`` and ``omnidrl trace``: golden TD3 training runs and hardware tensor traces.

``flows/cli.py`` registers the two subcommands with :func:`add_train_arguments` /
:func:`add_trace_arguments` and calls :func:`train_main` / :func:`trace_main` with the parsed
``argparse.Namespace``; both return the exit status (0 ok, 2 bad input: one line on stderr).

A training run writes into ``--out DIR``:

* ``config.json``: the full :class:`golden.td3.TD3Config`;
* ``metrics.jsonl``: one record per training episode (``kind: episode``) and per evaluation
  (``kind: eval``) with the current and running-average compression ratio;
* ``checkpoint.pkl``: the whole training state (``--resume`` continues from it exactly);
* ``summary.json`` and ``plot.png`` (return and CR against steps).

Heavy imports (gymnasium, matplotlib) happen inside the functions so ``omnidrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

__all__ = ["add_train_arguments", "train_main", "add_trace_arguments", "trace_main", "run_training",
           "record_trace", "write_plot"]

EXIT_USER = 2


def _int_list(text: str) -> tuple:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")


def _name_list(text: str) -> tuple:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _common_arguments(p: argparse.ArgumentParser, steps_default) -> None:
    p.add_argument("--env", default="HalfCheetah-v5", help="gymnasium id of a Box-action task (default HalfCheetah-v5)")
    p.add_argument("--steps", type=int, default=steps_default, help="environment steps in total")
    p.add_argument("--seed", type=int, default=0, help="seed of networks, exploration, replay and env")
    p.add_argument("--numerics", default="bf16", help="fp32 | bf16 | bf16-exact (default bf16)")
    p.add_argument("--preset", default="default", help="default | paper2018 (400-300, lr 1e-3, batch 100, block 4)")
    p.add_argument("--hidden", type=_int_list, default=None, help="hidden widths, e.g. 256,256")
    p.add_argument("--batch", type=int, default=None, help="minibatch size")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument("--start-steps", type=int, default=None, help="random-action warm-up steps (default 25000)")
    p.add_argument("--block", type=int, default=None, help="block size k of circulant / group-sparse layers (default 8)")
    p.add_argument("--compress", type=_name_list, default=None, help="layers to compress, e.g. l2 or l1,l2")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``train`` options on ``p``."""
    p.add_argument("--method", default="dense", help="dense | gmp | gst")
    _common_arguments(p, 1_000_000)
    p.add_argument("--out", required=True, help="run folder: metrics, checkpoint, summary, plot")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pkl exactly")
    p.add_argument("--eval-every", type=int, default=None, help="env steps between evaluations (default 5000)")
    p.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default 10)")
    p.add_argument("--ckpt-every", type=int, default=None, help="env steps between checkpoints (default 10000)")
    p.add_argument("--trace-at", type=_int_list, default=(), help="update numbers to record as OUT/trace_u<N>.npz")
    p.add_argument("--stop-at", type=int, default=None, help=argparse.SUPPRESS)  # tests: simulate an interruption
    p.add_argument("--quiet", action="store_true", help="no progress line")


def add_trace_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``trace`` options on ``p``."""
    p.add_argument("--methods", type=_name_list, default=("dense", "gst"), help="methods to trace (default dense,gst)")
    _common_arguments(p, 6000)
    p.add_argument("--trace-numerics", default="bf16-exact",
                   help="numerics of the recorded update (default bf16-exact: dW/dv are the hardware's bits)")
    p.add_argument("--out", default="build/traces/td3_trace.npz", help="output .npz")
    p.add_argument("--quiet", action="store_true", help="no progress line")


# ----------------------------------------------------------------------------- helpers

def _config(args, method: str, **extra):
    from golden.td3 import TD3Config

    over = {"env": args.env, "method": method, "steps": args.steps, "seed": args.seed,
            "numerics": args.numerics, "hidden": args.hidden, "batch": args.batch, "lr": args.lr,
            "start_steps": args.start_steps, "block": args.block, "compress": args.compress}
    for name in ("eval_every", "eval_episodes", "ckpt_every"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    over.update(extra)
    return TD3Config.preset(args.preset, **over)


def _versions() -> dict:
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

def run_training(cfg, out: Path, resume: bool = False, quiet: bool = True, stop_at: int | None = None,
                 trace_at: tuple = ()) -> dict:
    """Train (or continue) one run into ``out``; return the summary dict.

    Raises :class:`golden.td3.TD3ConfigError` for bad input (unknown env, resume mismatch...).
    """
    from golden.td3 import TD3ConfigError, Trainer
    from golden import traces as tr_mod

    out = Path(out)
    ckpt = out / "checkpoint.pkl"
    metrics = out / "metrics.jsonl"
    if resume:
        if not ckpt.is_file():
            raise TD3ConfigError(f"--resume is not allowed: {ckpt} does not exist (start without --resume)")
        trainer = Trainer.from_state(ckpt.read_bytes(), cfg)
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

    def on_signal(signum, frame):  # finish the current step, checkpoint, exit cleanly
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
        while trainer.step < target and not stop["flag"]:
            trainer.run(until=min(target, trainer.step + 1000), on_record=on_record, on_step=on_step,
                        trace_at=trace_at, on_trace=on_trace)
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
    summary["versions"] = _versions()
    summary["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_plot(records, out / "plot.png", f"{cfg.env} {cfg.method} seed {cfg.seed} ({cfg.numerics})")
    return summary


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _user_errors():
    from golden.td3 import TD3ConfigError

    return (TD3ConfigError,)


def train_main(args: argparse.Namespace) -> int:
    """``omnidrl train``: run (or resume) one training run; return the exit status."""
    try:
        cfg = _config(args, args.method)
        s = run_training(cfg, Path(args.out), resume=args.resume, quiet=args.quiet,
                         stop_at=args.stop_at, trace_at=tuple(args.trace_at or ()))
    except _user_errors() as exc:
        print(f"omnidrl train: error: {exc}", file=sys.stderr)
        return EXIT_USER
    fr = s["final_return"]
    print(f"{s['env']} {s['method']} seed {s['seed']} {s['numerics']}: steps {s['steps']}  "
          f"final return {fr if fr is None else round(fr, 1)}  average CR {s['avg_cr']:.4f}  "
          f"-> {Path(args.out) / 'summary.json'}")
    return 0


# ----------------------------------------------------------------------------- traces

def record_trace(args) -> Path:
    """Train each method briefly and record its last actor-updating update as a trace."""
    from golden.td3 import Numerics, TD3ConfigError, Trainer
    from golden import traces as tr_mod

    tensors, layers, runs = {}, {}, {}
    for method in args.methods:
        cfg = _config(args, method, eval_every=args.steps + 1, ckpt_every=args.steps + 1)
        if cfg.steps <= cfg.start_steps + 1:
            raise TD3ConfigError(f"--steps {cfg.steps} is not allowed: a trace needs updates, so steps "
                                 f"must exceed --start-steps ({cfg.start_steps}) by at least 2")
        n_upd = cfg.steps - cfg.start_steps
        target = n_upd if n_upd % cfg.policy_freq == 0 else n_upd - 1  # an update that trains the actor too
        trainer = Trainer(cfg)
        prog = _Progress(args.quiet, cfg.steps, f"trace {method} ")
        got = {}

        def on_step(t, target=target, prog=prog):
            prog(t)
            if t.n_updates == target - 1:
                t.agent.num = Numerics(args.trace_numerics)

        def on_trace(n, upd, got=got, trainer=trainer):
            got["trace"], got["step"], got["update"] = upd, trainer.step, n
            trainer.agent.num = Numerics(cfg.numerics)

        trainer.run(until=cfg.start_steps + target, on_step=on_step, trace_at=(target,), on_trace=on_trace)
        prog.done()
        t, info = tr_mod.tensors_from_update(method, got["trace"])
        tensors.update(t)
        layers.update(info)
        runs[method] = {"config": cfg.to_dict(), "step": got["step"], "update": got["update"],
                        "cr": trainer._cr_cache["cr"]}
    meta = {"env": args.env, "seed": args.seed, "train_numerics": args.numerics,
            "trace_numerics": args.trace_numerics, "runs": runs, "layers": layers,
            "versions": _versions(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "schema": "docs/traces.md"}
    return tr_mod.save_trace(args.out, tensors, meta)


def trace_main(args: argparse.Namespace) -> int:
    """``omnidrl trace``: record a tensor trace; return the exit status."""
    from golden.td3 import NUMERICS, TD3ConfigError

    try:
        if args.trace_numerics not in NUMERICS:
            raise TD3ConfigError(f"--trace-numerics {args.trace_numerics!r} is not allowed: "
                                 f"choose one of {', '.join(NUMERICS)}")
        path = record_trace(args)
    except _user_errors() as exc:
        print(f"omnidrl trace: error: {exc}", file=sys.stderr)
        return EXIT_USER
    size = Path(path).stat().st_size
    print(f"{path}  ({size / 1e6:.2f} MB)")
    return 0


def main(argv=None) -> int:
    """``python -m flows.train {train|trace} ...`` (the same as the omnidrl subcommands)."""
    parser = argparse.ArgumentParser(prog="python -m flows.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train"))
    add_trace_arguments(sub.add_parser("trace"))
    args = parser.parse_args(argv)
    return train_main(args) if args.command == "train" else trace_main(args)


if __name__ == "__main__":
    sys.exit(main())
