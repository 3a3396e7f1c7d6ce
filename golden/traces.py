"""Tensor traces of one real TD3 update: the stimulus the hardware tests replay.

A trace is an ``.npz`` (no pickles) whose keys are ``METHOD/NET/LAYER/KIND``, for example
``gst/actor/l2/v`` or ``dense/critic1/l1/x``, plus ``meta`` (UTF-8 JSON as uint8). The full
schema is in ``docs/traces.md``; in short, per layer (y = x @ W.T + b, W of shape (M, N)):

=========  ==========  ===========  ===============================================================
kind       dtype       shape        content
=========  ==========  ===========  ===============================================================
W          uint16      (M, N)       weight as the PE array reads it (bf16; masks applied, circulant
                                    layers expanded)
x          uint16      (B, N)       input activations (bf16)
dy         uint16      (B, M)       output gradients (bf16)
dW         uint16      (M, N)       weight gradient, bf16 (dense and group-sparse layers only)
v          uint16      (P, Q, k)    circulant parameters (circulant layers only), P = M/k,
                                    Q = ceil(N/k)
dv         uint16      (P, Q, k)    circulant weight gradient (circulant layers only)
bitmap     uint8       (P, Q)       kept k x k blocks (circulant and group-sparse layers)
=========  ==========  ===========  ===============================================================

NumPy only. ``load_trace()`` with no argument opens the committed trace
``tests/data/td3_halfcheetah_trace.npz``; ``GSTCP_TRACE`` is the circ-prune stage trace and
``GSTCF_TRACE`` the circ-fine one (element-masked dense layers after its switch, see
:func:`masked_layers`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["DEFAULT_TRACE", "GSTCP_TRACE", "GSTCF_TRACE", "KINDS", "load_trace", "trace_meta", "iter_tensors",
           "layer_names", "masked_layers", "save_trace", "tensors_from_update"]

DEFAULT_TRACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "td3_halfcheetah_trace.npz"
#: the stage trace of a circ-prune GST run (docs/traces.md): circulant layers with pruned blocks
GSTCP_TRACE = DEFAULT_TRACE.with_name("td3_halfcheetah_gstcp_stages.npz")
#: the stage trace of a circ-fine GST run: before its switch circulant, after it element-masked
GSTCF_TRACE = DEFAULT_TRACE.with_name("td3_halfcheetah_gstcf_stages.npz")
#: every tensor kind a trace may hold, in a stable order
KINDS = ("W", "x", "dy", "dW", "v", "dv", "bitmap")


def load_trace(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Load a trace into a plain dict ``{key: array}`` (``meta`` included as uint8 JSON)."""
    p = Path(path) if path is not None else DEFAULT_TRACE
    if not p.is_file():
        raise FileNotFoundError(f"trace {p} does not exist (record one with `omnidrl trace`)")
    with np.load(p, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def trace_meta(trace: dict[str, np.ndarray]) -> dict:
    """The trace's metadata: env, config, step and update number, per-layer modes."""
    return json.loads(bytes(trace["meta"]).decode("utf-8"))


def layer_names(trace: dict[str, np.ndarray]) -> list[str]:
    """``METHOD/NET/LAYER`` names in the trace, sorted."""
    return sorted({k.rsplit("/", 1)[0] for k in trace if k.count("/") == 3})


def iter_tensors(trace: dict[str, np.ndarray], kinds=("W", "x", "dy", "dW")) -> Iterator[tuple[str, str, np.ndarray]]:
    """Yield ``(layer_name, kind, array)`` for every tensor of the given kinds.

    bf16 kinds come as uint16 patterns; ``bitmap`` (if asked for) as uint8. A layer that has
    no tensor of a kind (``dW`` of a circulant layer, say) is skipped for that kind.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"iter_tensors: kind {unknown[0]!r} is unknown; kinds are {', '.join(KINDS)}")
    for name in layer_names(trace):
        for kind in kinds:
            key = f"{name}/{kind}"
            if key in trace:
                yield name, kind, trace[key]


def save_trace(path: str | Path, tensors: dict[str, np.ndarray], meta: dict) -> Path:
    """Write a compressed trace; ``meta`` is stored as UTF-8 JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = dict(tensors)
    data["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(p, **data)
    return p


def _bits(x: np.ndarray) -> np.ndarray:
    """bf16 values held in float32 -> uint16 patterns (the low half is zero by construction)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    if np.any(u & 0xFFFF):
        raise ValueError("trace tensor is not bf16-valued (low 16 bits set)")
    return (u >> 16).astype(np.uint16)


def tensors_from_update(method: str, update_trace: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Turn the per-layer records of ``TD3Agent.update(trace=...)`` into trace tensors.

    Returns ``(tensors, layer_info)``; layer_info maps ``METHOD/NET/LAYER`` to its mode, block
    size and shape.
    """
    out: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    for net in ("actor", "critic1", "critic2"):
        for lname, rec in sorted(update_trace.get(net, {}).items()):
            name = f"{method}/{net}/{lname}"
            out[f"{name}/W"] = _bits(rec["W"])
            out[f"{name}/x"] = _bits(rec["x"])
            out[f"{name}/dy"] = _bits(rec["dy"])
            g = rec["grads"]
            if "v" in g:
                out[f"{name}/dv"] = _bits(g["v"])
                out[f"{name}/v"] = _bits(rec["v"])
            else:
                w = g["W"][:, :rec["W"].shape[1]]  # group-sparse gradients carry input padding
                out[f"{name}/dW"] = _bits(w)
            if "bitmap" in rec:
                out[f"{name}/bitmap"] = rec["bitmap"].astype(np.uint8)
            info[name] = {"mode": rec["mode"], "k": rec["k"], "M": int(rec["W"].shape[0]),
                          "N": int(rec["W"].shape[1]), "B": int(rec["x"].shape[0])}
    return out, info


def masked_layers(trace: dict) -> list[str]:
    """``STAGE/NET/LAYER`` of every element-masked layer of a stage trace: a compressed layer
    held dense by a run that compresses (GMP, or GST rule circ-fine after its switch). Its ``W``
    holds the pruned values as zeros and its ``dW`` is masked the same way."""
    meta = trace_meta(trace)
    out = []
    for name in layer_names(trace):
        cfg = meta.get("runs", {}).get(name.split("/")[0], {}).get("config", {})
        if (meta["layers"][name]["mode"] == "dense" and cfg.get("method", "dense") != "dense"
                and name.split("/")[2] in cfg.get("compress", ())):
            out.append(name)
    return out
