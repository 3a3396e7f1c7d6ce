"""Machine-model runs of a TD3 update, cached: the one cache of ``omnidrl sweep`` and the energy path.

One HalfCheetah update on ``golden.machine`` (:func:`golden.run_top.run_machine`) takes minutes,
and the sweep's ``cycles`` jobs, ``omnidrl energy``, ``bench/energy.py`` and the tests all want
the same few runs. This module owns how they are cached:

the key
    :func:`run_key`, a SHA-256 (20 hex digits) over :func:`key_fields`: what the model reads of
    the config (:func:`model_view`: the ISA shape and the EMD format, so two configs that differ
    elsewhere, the transposer's banks, share a run), the workload, the NumPy version and
    :func:`model_digest` (the source of ``golden/run_top.py`` and every golden module it
    imports), so an edit of the model, the compiler or the workloads is a miss, never a stale hit.
the storage
    one JSON file per run, ``<folder>/<key>.json``: ``{"key": key_fields, "config_hash": ...,
    "config": ..., "result": run_machine's dict}`` (the config of the run that wrote it, for the
    reader). A file is written beside and renamed, so it is whole or absent.
the locking
    a run takes ``<folder>/<key>.lock`` (:func:`flows.locks.file_lock`) while it computes, so two
    processes wanting the same run (two Ray workers, a sweep and ``omnidrl energy``) run it once:
    the second waits and reads the first one's entry.

Several folders can be searched (:data:`COMMITTED` first, the runs ``bench/energy.py`` records,
then a writable one); new runs go to the last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .generate import BUILD, ROOT
from .locks import file_lock

__all__ = ["COMMITTED", "LOCAL", "model_view", "model_digest", "golden_closure", "files_digest", "key_fields",
           "run_key", "entry_path", "lookup", "store", "cached_run"]

#: The runs ``bench/energy.py`` records (committed): searched first by ``omnidrl energy``.
COMMITTED = ROOT / "bench" / "results" / "machine_runs"
#: The writable folder: the ``cycles`` folder of the sweep's default job cache, which
#: ``omnidrl energy`` writes and searches too.
LOCAL = BUILD / "sweep" / "cache" / "cycles"

_IMPORT = re.compile(r"^\s*from\s+(golden|\.)(?:\.?(\w+))?\s+import\s+([\w, ()]+)", re.M)


def golden_closure(files: Iterable[Path]) -> list[Path]:
    """``files`` plus every golden/ module they import, transitively (sorted)."""
    golden = ROOT / "golden"
    seen, todo = set(), list(files)
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        in_golden = path.parent == golden
        for m in _IMPORT.finditer(path.read_text()):
            if m[1] == "." and not in_golden:
                continue
            names = [m[2]] if m[2] else [n.strip(" ()") for n in m[3].split(",")]
            todo += [golden / f"{n}.py" for n in names if n]
    return sorted(seen)


def files_digest(files: Iterable[Path]) -> str:
    """SHA-256 over the repository-relative names and the bytes of ``files``."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=None)
def model_digest() -> str:
    """SHA-256 over ``golden/run_top.py`` and the golden modules it imports, transitively."""
    return files_digest(golden_closure([ROOT / "golden" / "run_top.py"]))


@lru_cache(maxsize=None)
def _numpy_version() -> str:
    from importlib.metadata import version

    return version("numpy")


def model_view(cfg) -> dict:
    """What the machine model reads of a top config (``golden.run_top.run_machine_image``)."""
    return {"isa_shape": dataclasses.asdict(cfg.isa_shape), "emd": json.loads(cfg.emd.to_json())}


def key_fields(cfg, workload: str) -> dict:
    """Everything a run's result depends on (see the module docstring)."""
    return {"view": model_view(cfg), "workload": workload, "numpy": _numpy_version(), "source": model_digest()}


def run_key(cfg, workload: str) -> str:
    """The cache key of ``workload`` on ``cfg``: 20 hex digits of SHA-256 over :func:`key_fields`."""
    text = json.dumps(key_fields(cfg, workload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def entry_path(folder: Path, key: str) -> Path:
    """The file of entry ``key`` in ``folder``."""
    return Path(folder) / f"{key}.json"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or damaged: recomputed


def lookup(cfg, workload: str, folders: Sequence[Path]) -> dict | None:
    """The cached run of ``workload`` on ``cfg`` from the first of ``folders`` holding it, or None."""
    key = run_key(cfg, workload)
    for folder in folders:
        hit = _read(entry_path(folder, key))
        if hit is not None:
            return hit
    return None


def store(folder: Path, cfg, workload: str, result: dict) -> Path:
    """Write ``result`` as the entry of ``workload`` on ``cfg`` in ``folder``; return its path."""
    path = entry_path(folder, run_key(cfg, workload))
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"key": key_fields(cfg, workload), "config_hash": cfg.config_hash(), "config": cfg.to_dict(),
             "result": result}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)  # whole or not at all: a kill never leaves half an entry
    return path


def cached_run(cfg, workload: str, folders: Sequence[Path], progress: Callable[[str], None] = lambda m: None,
               *, before_store: Callable[[], None] | None = None) -> tuple[dict, bool]:
    """``(run_result, from_cache)``: the cached run of ``workload`` on ``cfg``, or a fresh one
    written to ``folders[-1]``.

    Parameters
    ----------
    cfg : OmniDRLConfig
        The top.
    workload : str
        A ``golden.workloads`` name.
    folders : sequence of Path
        Searched in order; the last is written.
    progress : callable, optional
        Receives progress lines of a fresh run.
    before_store : callable, optional
        Called between a fresh run and its store (the sweep's tests end the worker there, as a
        crash would).
    """
    hit = lookup(cfg, workload, folders)
    if hit is not None:
        return hit, True
    out = Path(folders[-1])
    with file_lock(out / f"{run_key(cfg, workload)}.lock", f"another machine-model run of {workload}", progress):
        hit = lookup(cfg, workload, folders)  # the run we waited for, or one written meanwhile
        if hit is not None:
            return hit, True
        from golden.run_top import run_machine

        progress(f"machine model: {workload} on {cfg.config_hash()} (minutes for HalfCheetah; cached afterwards)")
        result = run_machine(cfg, workload, progress)
        if before_store is not None:
            before_store()
        store(out, cfg, workload, result)
    return result, False
