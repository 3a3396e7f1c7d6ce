"""One lock per work folder, shared by the flows that write into a folder named by a configuration.

Two processes given the same configuration (two shells, two pytest workers, two sweep workers)
pick the same folder: a synthesis work folder, a simulator build folder. Without a lock they
write the same files at once (a Verilator ``make`` of one links against the archive the other is
rewriting). :func:`folder_lock` makes them take turns. The lock is an ``flock`` on
``<folder>/.lock``, so it goes with its process: a killed run never leaves it held.
:func:`file_lock` is the same on a lock file of one's own, for a folder that holds many
entries each with its own lock (the machine-run cache, ``flows.run_cache``).
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["folder_lock", "file_lock"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def file_lock(path: Path, holder: str, log: Callable[[str], None] = _stderr) -> Iterator[None]:
    """Hold the lock file ``path`` exclusively for the ``with`` block.

    Parameters
    ----------
    path : Path
        The lock file; it and its folder are created when missing, and left in place (removing
        a lock file another process waits on would let a third one take a second lock).
    holder : str
        What a waiting process waits for, for its progress line ("another synthesis of this
        configuration").
    log : callable, optional
        Where the progress line goes (the calling flow's own logger); stderr by default.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {holder} to finish ({path.parent})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def folder_lock(folder: Path, holder: str, log: Callable[[str], None] = _stderr):
    """Hold ``folder/.lock`` exclusively for the ``with`` block (:func:`file_lock`).

    Parameters
    ----------
    folder : Path
        The work folder; created when missing.
    holder : str
        What a waiting process waits for, for its progress line.
    log : callable, optional
        Where the progress line goes; stderr by default.
    """
    return file_lock(Path(folder) / ".lock", holder, log)
