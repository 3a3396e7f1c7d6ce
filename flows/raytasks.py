"""Ray for sweeps and long benchmark grids: one way to start it, one loop to run tasks.

:func:`ray_session` starts Ray embedded on this machine (its cores, no dashboard, quiet logs,
a small object store: the tasks return small dicts) or joins a running cluster with
``address``; a session that is already running (a test's session-scoped one) is reused and left
running. :func:`run_tasks` submits tasks, lets a task's result submit more (the TD3 grid
submits the next chunk of a run when one ends), and prints a progress bar with an ETA.

There is no scheduler here: Ray places the tasks, retries a task whose worker died
(``max_retries``), and the callers make every task resumable (a result cache, a training
checkpoint), so a killed sweep or grid started again continues where it was. docs/sweep.md has
the cluster set-up and the pitfalls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

__all__ = ["ray_session", "run_tasks", "Progress", "TASK_RETRIES"]

#: times Ray reruns a task whose worker process died (killed, out of memory) before giving up
TASK_RETRIES = 3
#: the environment a task needs, passed to the workers of a cluster (embedded workers inherit it)
_PASSED_ENV = ("AMARANTH_USE_YOSYS", "OPENBLAS_NUM_THREADS", "OMNIDRL_BUILD", "MALLOC_MMAP_THRESHOLD_",
               "MALLOC_TRIM_THRESHOLD_")


@contextlib.contextmanager
def ray_session(address: str | None = None, cpus: int | None = None, env: dict[str, str] | None = None):
    """Ray for the duration of the ``with`` block.

    Parameters
    ----------
    address : str, optional
        ``HOST:PORT`` of a running cluster's head (``ray start --head`` prints it), or ``auto``
        for the cluster started on this machine. None starts Ray embedded in this process.
    cpus : int, optional
        Cores an embedded Ray may use (default: all of this machine's).
    env : dict, optional
        More environment variables for the workers (a test's own build folder).
    """
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report, no prompt
    # Ray adds 15 to its workers' niceness by default; keep the command's own (run it under
    # `nice`), so a sweep shares the machine with other niced work on equal terms
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray

    if ray.is_initialized():  # a caller's session: use it, leave it running
        yield
        return
    env = {**{name: os.environ[name] for name in _PASSED_ENV if name in os.environ}, **(env or {})}
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, **quiet)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), object_store_memory=128 * 2**20,
                 runtime_env={"env_vars": env} if env else None, **quiet)
    # a kill (SIGTERM) stops like Ctrl-C: the session is shut down, the cache keeps what is done
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield
    finally:
        ray.shutdown()
        if main:
            signal.signal(signal.SIGTERM, old)


def _interrupt(signum, frame):
    raise KeyboardInterrupt("stopped by SIGTERM")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A progress bar with an ETA on stderr: redrawn in place on a terminal, one line per
    change in a log file.

    ``done``/``total`` count work units; the ETA is the elapsed time per unit done in this run
    times the units left (units found already done, e.g. in a cache, are not timed).
    """

    def __init__(self, label: str, total: int, done: int = 0, stream=None, width: int = 24):
        self.label, self.total, self.done, self.width = label, total, done, width
        self.stream = stream or sys.stderr
        self.t0, self.start_done = time.monotonic(), done
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, done: int | None = None, total: int | None = None, note: str = "") -> None:
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        elapsed = time.monotonic() - self.t0
        ran = self.done - self.start_done
        eta = "?" if ran <= 0 else _duration(elapsed / ran * max(self.total - self.done, 0))
        filled = self.width * self.done // self.total if self.total else self.width
        line = (f"[{self.label}] [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
                f"  elapsed {_duration(elapsed)}  ETA {eta}" + (f"  {note}" if note else ""))
        if self.tty:
            print("\r" + line, end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def run_tasks(func: Callable, tasks: Iterable[tuple[str, tuple]], *,
              on_result: Callable[[str, tuple, Any], Iterable[tuple[str, tuple]]] | None = None,
              progress: Progress | None = None, num_cpus: float = 1, max_in_flight: int | None = None,
              stop: Callable[[], bool] = lambda: False,
              describe: Callable[[str], str] = str) -> dict[str, Any]:
    """Run ``func(*args)`` as a Ray task for every ``(label, args)`` in ``tasks``.

    ``on_result(label, args, result)`` is called in this process as each task ends and may
    return more ``(label, args)`` tasks to run. A task that raises does not stop the others: its
    exception is its result. ``max_in_flight`` bounds the tasks handed to Ray at once (the rest
    wait here, so ``stop()`` can keep them from starting: a deadline). ``describe(label)`` is
    what the progress bar says of a finished task. Returns label -> result.
    """
    import ray

    remote = ray.remote(func).options(num_cpus=num_cpus, max_retries=TASK_RETRIES, retry_exceptions=False)
    waiting = list(tasks)
    running: dict[Any, tuple[str, tuple]] = {}
    results: dict[str, Any] = {}
    while waiting or running:
        while waiting and not stop() and (max_in_flight is None or len(running) < max_in_flight):
            label, args = waiting.pop(0)
            running[remote.remote(*args)] = (label, args)
        if not running:
            break  # stopped with tasks left waiting
        ready, _ = ray.wait(list(running), num_returns=1, timeout=30.0)
        for ref in ready:
            label, args = running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a failed task is reported, the others go on
                result = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            results[label] = result
            if on_result is not None:
                waiting.extend(on_result(label, args, result) or ())
            if progress is not None:
                progress.update(progress.done + 1, note=describe(label))
        if not ready and progress is not None:
            progress.update(note=f"{len(running)} running")
    return results
