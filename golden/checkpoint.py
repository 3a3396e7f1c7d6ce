"""A deterministic, code-free file format for object trees (the TD3 training checkpoint).

A checkpoint is an uncompressed ``.npz`` (a zip of ``.npy`` members): ``state.npy`` holds the
tree as UTF-8 JSON (keys sorted), and every NumPy array of the tree is its own member
``a<N>.npy``, numbered in the order the tree is walked. The zip entries carry a fixed date, so
**the same state always gives the same bytes** and a hash can compare two checkpoints.

Loading runs no code from the file: the members are read with ``allow_pickle=False``, and the
only objects rebuilt are instances of the classes the caller names (by attribute ``__dict__``, or
the class's own ``__setstate__``), NumPy generators from their documented state dict, tuples and
numpy scalars. A file that is not such a checkpoint, or is damaged, raises
:class:`CheckpointError` with one line saying which file and what is wrong.

Encoding of the JSON tree: ``None``, bools, ints, floats (``repr`` round-trips them exactly,
``NaN``/``Infinity`` included), strings, lists and dicts with string keys are themselves; other
values are one-key dicts: ``{"__array__": N}``, ``{"__scalar__": N}`` (a 0-d member restored as a
numpy scalar of its dtype), ``{"__tuple__": [...]}``, ``{"__object__": [CLASS, STATE]}``,
``{"__generator__": STATE}``, and ``{"__ref__": N}`` for the N-th array, object or generator met
again (so shared objects stay shared, as the trainer's RNG and the target layers' bitmaps are).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from golden.config import ConfigError

__all__ = ["CheckpointError", "encode", "decode", "FORMAT"]

#: the format tag and version every checkpoint carries; a file without it is refused
FORMAT = {"format": "omnidrl-checkpoint", "version": 1}
_STATE = "state.npy"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the bytes must not depend on when they were written
_MARKS = ("__array__", "__scalar__", "__tuple__", "__object__", "__generator__", "__ref__")


class CheckpointError(ConfigError):
    """The file is not a checkpoint this code can load (one line: which file, what is wrong)."""


# ----------------------------------------------------------------------------- writing

class _Encoder:
    def __init__(self, classes: dict[str, type]):
        self.names = {cls: name for name, cls in classes.items()}
        self.arrays: list[np.ndarray] = []
        self.seen: dict[int, int] = {}  # id -> reference number (arrays, objects, generators)
        self.keep: list = []  # keeps referenced objects alive so ids stay unique

    def _ref(self, x, make):
        key = id(x)
        if key in self.seen:
            return {"__ref__": self.seen[key]}
        self.seen[key] = len(self.seen)
        self.keep.append(x)
        return make()

    def _array(self, a: np.ndarray):
        if a.dtype.hasobject:
            raise TypeError(f"checkpoint: an object array ({a.dtype}) cannot be stored")
        self.arrays.append(a)
        return len(self.arrays) - 1

    def __call__(self, x):
        if x is None or type(x) in (bool, int, float, str):
            return x
        if isinstance(x, np.ndarray):
            return self._ref(x, lambda: {"__array__": self._array(x)})
        if isinstance(x, np.generic):
            return {"__scalar__": self._array(np.asarray(x))}
        if isinstance(x, tuple):
            return {"__tuple__": [self(v) for v in x]}
        if isinstance(x, list):
            return [self(v) for v in x]
        if isinstance(x, dict):
            for k in x:
                if not isinstance(k, str) or k in _MARKS:
                    raise TypeError(f"checkpoint: dict key {k!r} cannot be stored (string keys only)")
            # sorted: the array numbering must not depend on the order keys were inserted in
            return {k: self(x[k]) for k in sorted(x)}
        if isinstance(x, np.random.Generator):
            return self._ref(x, lambda: {"__generator__": self(x.bit_generator.state)})
        name = self.names.get(type(x))
        if name is None:
            raise TypeError(f"checkpoint: {type(x).__name__} is not one of the classes it may store")
        return self._ref(x, lambda: {"__object__": [name, self(x.__getstate__())]})


def _member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=False)
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, buf.getvalue())


def encode(tree, classes: dict[str, type]) -> bytes:
    """The checkpoint bytes of ``tree``; objects must be instances of ``classes`` (name -> class)."""
    enc = _Encoder(classes)
    body = {"meta": FORMAT, "tree": enc(tree)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        _member(zf, _STATE, np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
        for i, a in enumerate(enc.arrays):
            _member(zf, f"a{i}.npy", a)
    return out.getvalue()


# ----------------------------------------------------------------------------- reading

class _Decoder:
    def __init__(self, arrays, classes: dict[str, type]):
        self.arrays, self.classes = arrays, classes
        self.refs: list = []

    def _array(self, n):
        if not isinstance(n, int) or not 0 <= n < len(self.arrays):
            raise ValueError(f"array member a{n} is missing")
        return self.arrays[n]

    def __call__(self, x):
        if isinstance(x, list):
            return [self(v) for v in x]
        if not isinstance(x, dict):
            return x
        if len(x) == 1:
            (mark, v), = x.items()
            if mark == "__array__":
                a = self._array(v)
                self.refs.append(a)
                return a
            if mark == "__scalar__":
                return self._array(v)[()]
            if mark == "__tuple__":
                return tuple(self(e) for e in v)
            if mark == "__ref__":
                if not isinstance(v, int) or not 0 <= v < len(self.refs):
                    raise ValueError(f"reference {v!r} points nowhere")
                return self.refs[v]
            if mark == "__generator__":
                slot = len(self.refs)
                self.refs.append(None)
                state = self(v)
                if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
                    raise ValueError("a random generator that is not PCG64")
                gen = np.random.Generator(np.random.PCG64())
                gen.bit_generator.state = state
                self.refs[slot] = gen
                return gen
            if mark == "__object__":
                name, state = v
                cls = self.classes.get(name)
                if cls is None:
                    raise ValueError(f"an object of class {name!r}, which a checkpoint may not hold")
                obj = cls.__new__(cls)
                self.refs.append(obj)
                state = self(state)
                if hasattr(cls, "__setstate__"):
                    obj.__setstate__(state)
                else:
                    obj.__dict__.update(state)
                return obj
        return {k: self(x[k]) for k in sorted(x)}  # the order the encoder walked


def decode(data: bytes, classes: dict[str, type], source: str | Path = "checkpoint"):
    """The tree stored by :func:`encode`; :class:`CheckpointError` names ``source`` on any fault."""
    try:
        if not data.startswith(b"PK\x03\x04"):
            raise ValueError("it is not an npz (zip) file")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names = set(npz.files)
            if "state" not in names:
                raise ValueError("it has no state member (not a checkpoint)")
            body = json.loads(npz["state"].tobytes().decode("utf-8"))
            if not isinstance(body, dict) or body.get("meta") != FORMAT:
                raise ValueError(f"its format tag is {body.get('meta') if isinstance(body, dict) else None!r}, "
                                 f"expected {FORMAT!r}")
            arrays = [npz[f"a{i}"] for i in range(sum(1 for n in names if n != "state"))]
        return _Decoder(arrays, classes)(body["tree"])
    except CheckpointError:
        raise
    except Exception as exc:  # zip, npy, JSON or structure faults all mean: not a usable checkpoint
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{source} is not a readable checkpoint: {reason}") from None
