"""One lock per work folder, shared by the flows that write into a folder named by a configuration.

Two processes given the same configuration (two shells, two pytest workers, two sweep workers)
pick the same folder: a synthesis work folder, a simulator build folder. Without a lock they
write the same files at once (a Verilator ``make`` of one links against the archive the other is
rewriting). :func:`folder_lock` makes them take turns. The lock is an ``flock`` on
``<folder>/.lock``, so it goes with its process: a killed run never leaves it held.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["folder_lock"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def folder_lock(folder: Path, holder: str, log: Callable[[str], None] = _stderr) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively for the ``with`` block.

    Parameters
    ----------
    folder : Path
        The work folder; created when missing.
    holder : str
        What a waiting process waits for, for its progress line ("another synthesis of this
        configuration").
    log : callable, optional
        Where the progress line goes (the calling flow's own logger); stderr by default.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {holder} to finish ({folder})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
