"""Testbench settings from the environment, and the figures a run reports back.

Every block's cocotb testbench reads its stream lengths and its random-stream gap and stall
probabilities through :func:`count` and :func:`probability`, so a long soak
(``bench/soak.py``) or a quick check sets them without editing code; the names and defaults
are listed in ``docs/testing.md`` ("Settings from the environment"). A bad value stops the test
with one line naming the variable, the value and what is allowed.

:func:`record` appends one JSON line of figures (output beats, cycles, seconds) to the file
named by ``$TB_STATS`` when it is set; the soak bench adds them up. Nothing here imports cocotb.
"""

from __future__ import annotations

import json
import os

__all__ = ["count", "probability", "record"]


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def probability(name: str, default: float) -> float:
    """``$name`` as a probability in [0, 1) (1 would stop the stream for good), else ``default``."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={raw!r} is not allowed; {name} must be a probability from 0 to below 1")
    return value


def count(name: str, default: int, lo: int = 1) -> int:
    """``$name`` as an integer of at least ``lo``, else ``default``."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = lo - 1
    if value < lo:
        raise ValueError(f"{name}={raw!r} is not allowed; {name} must be an integer of at least {lo}")
    return value


def record(block: str, test: str, **figures) -> None:
    """Append ``{"block", "test", **figures}`` as one JSON line to ``$TB_STATS`` (if set)."""
    path = _raw("TB_STATS")
    if path is None:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"block": block, "test": test, **figures}) + "\n")
