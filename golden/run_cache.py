"""Machine-model runs of a TD3 update, cached as JSON by config hash and workload.

One HalfCheetah update on ``golden.machine`` takes minutes, and ``omnidrl energy``,
``bench/energy.py`` and the tests all want the same few runs. A cache file holds
``{"<config_hash>/<workload>": run_result}`` (``golden.run_top.run_machine``'s dict with the
config it ran on). Several files can be searched (the committed ``bench/results/energy_runs.json``
first, then a writable one under ``build/``); new runs go to the last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["cache_key", "lookup", "cached_run"]


def cache_key(cfg, workload: str) -> str:
    """``<config_hash>/<workload>``: the config's feature hash names what the run depends on."""
    return f"{cfg.config_hash()}/{workload}"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def lookup(cfg, workload: str, paths: Sequence[Path]) -> dict | None:
    """The cached run of ``workload`` on ``cfg`` from the first file of ``paths`` holding it."""
    key = cache_key(cfg, workload)
    for path in paths:
        hit = _read(Path(path)).get(key)
        if hit is not None:
            return hit
    return None


def cached_run(cfg, workload: str, paths: Sequence[Path],
               progress: Callable[[str], None] = lambda m: None) -> tuple[dict, bool]:
    """``(run_result, from_cache)``: a cached run, or a fresh one written to ``paths[-1]``."""
    hit = lookup(cfg, workload, paths)
    if hit is not None:
        return hit, True
    from .run_top import run_machine

    progress(f"machine model: {workload} on {cfg.config_hash()} (minutes for HalfCheetah; cached afterwards)")
    result = run_machine(cfg, workload, progress)
    result = dict(result, config=cfg.to_dict())
    out = Path(paths[-1])
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = _read(out)  # re-read: another process may have added runs meanwhile
    cache[cache_key(cfg, workload)] = result
    out.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return result, False
