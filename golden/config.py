"""One configuration base for hardware blocks and golden formats alike.

A configuration is a frozen dataclass that subclasses :class:`Config`. Each field declares its
type (the annotation) and its allowed values once, with :func:`param`; the base checks both in
``__post_init__`` and raises a one-line :class:`ConfigError` naming the parameter, the value and
what is allowed. Cross-field rules go in :meth:`Config.validate` (with :meth:`Config.check`).

Fields whose type is another :class:`Config` nest: ``AcceleratorConfig(pe_array=PEArrayConfig())``.
Dotted overrides reach into them (``--set pe_array.rows=16``), presets may set nested values, and
:meth:`Config.to_dict` / :meth:`Config.from_dict` round-trip the whole tree.

Features and implementation knobs are separated as in FPnew's ``features`` / ``implementation``
split: a field declared ``param(..., impl=True)`` changes how a flow treats the design (for
example what synthesis black-boxes) but not the generated Verilog, so it is left out of
:meth:`Config.config_hash` (which names the Verilog) and kept in :meth:`Config.full_hash`.

Example
-------
>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Lane(Config):
...     NAME = "lane"
...     width: int = param(8, lo=1, hi=64, doc="bits per lane")
...     mode: str = param("fast", choices=("fast", "small"))
>>> Lane(width=16).width
16
>>> Lane(width=0)
Traceback (most recent call last):
...
golden.config.ConfigError: lane: width=0 is not allowed; width must be an integer from 1 to 64
>>> Lane.preset("default", **Lane.parse_overrides(["width=32"])).to_dict()
{'name': 'lane', 'width': 32, 'mode': 'fast'}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, ClassVar

__all__ = ["ConfigError", "Config", "param", "is_power_of_two", "deep_merge"]


class ConfigError(ValueError):
    """A configuration value is out of range. The message names parameter, value and range.

    ``name``, ``value`` and ``allowed`` carry the same facts for code that rewords them (a
    nested config's error is raised again with the field's dotted path in its parent).
    """

    def __init__(self, message: str, *, name: str | None = None, value=None, allowed: str | None = None):
        super().__init__(message)
        self.name, self.value, self.allowed = name, value, allowed


def is_power_of_two(x) -> bool:
    """True for the ints 1, 2, 4, 8, ..."""
    return isinstance(x, int) and not isinstance(x, bool) and x > 0 and x & (x - 1) == 0


def param(default=dataclasses.MISSING, *, lo=None, hi=None, pow2: bool = False, choices=None,
          impl: bool = False, omit_default: bool = False, doc: str = "", default_factory=dataclasses.MISSING):
    """A config field with its allowed values declared once.

    Parameters
    ----------
    default :
        Default value. A nested :class:`Config` default is turned into a factory (dataclass
        defaults must be immutable to be shared, and configs are frozen, so sharing is safe).
    lo, hi : int or float, optional
        Inclusive range.
    pow2 : bool
        The value must be a power of two.
    choices : sequence, optional
        The value must be one of these.
    impl : bool
        An implementation knob: excluded from :meth:`Config.config_hash`.
    omit_default : bool
        A feature added after configurations were published: left out of :meth:`Config.to_json`
        (and so of both hashes) while it has its default, so every existing configuration keeps
        its hash, its build folder and its recorded results.
    doc : str
        One line for generated parameter tables.
    """
    meta = {"lo": lo, "hi": hi, "pow2": pow2, "choices": tuple(choices) if choices is not None else None,
            "impl": impl, "omit_default": omit_default, "doc": doc}
    if isinstance(default, Config):
        value = default
        return dataclasses.field(default_factory=lambda: value, metadata=meta)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def deep_merge(base: dict, changes: dict) -> dict:
    """``base`` updated by ``changes``, merging nested dicts instead of replacing them."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _allowed(typ, meta: dict) -> str:
    """The 'what is allowed' text of a field, generated from its type and metadata."""
    if meta.get("choices") is not None:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    if typ is bool:
        return "true or false"
    noun = {int: "an integer", float: "a number", str: "a string"}.get(typ, getattr(typ, "__name__", str(typ)))
    if meta.get("pow2"):
        noun = "a power of two"
    lo, hi = meta.get("lo"), meta.get("hi")
    if typ is int and lo == 1 and hi is None and not meta.get("pow2"):
        return "a positive integer"
    if lo is not None and hi is not None:
        return f"{noun} from {lo} to {hi}"
    if lo is not None:
        return f"{noun} >= {lo}"
    if hi is not None:
        return f"{noun} <= {hi}"
    return noun


def _is_config_type(typ) -> bool:
    return isinstance(typ, type) and issubclass(typ, Config)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every configuration dataclass (hardware blocks and golden formats).

    Subclasses are ``@dataclasses.dataclass(frozen=True)``, set ``NAME`` (used in messages and in
    the JSON) and optionally ``PRESETS`` (name -> dict of field overrides, nested dicts for nested
    configs; ``default`` is the field defaults), declare fields with :func:`param` and put
    cross-field rules in :meth:`validate`.
    """

    NAME: ClassVar[str] = ""
    #: the JSON key that carries ``NAME`` (hardware blocks say ``block``)
    NAME_KEY: ClassVar[str] = "name"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self):
        # NAME_KEY names the config in the JSON and the hash: no field may shadow it.
        if any(f.name == self.NAME_KEY for f in dataclasses.fields(self)):
            raise TypeError(f"{type(self).__name__}: a config field may not be called {self.NAME_KEY!r}")
        hints = self.field_types()
        for f in dataclasses.fields(self):
            self._check_field(f, hints[f.name])
        self.validate()

    # -- checks -----------------------------------------------------------------------------
    def _check_field(self, f: dataclasses.Field, typ) -> None:
        value = getattr(self, f.name)
        meta = f.metadata
        if _is_config_type(typ):
            if isinstance(value, dict):
                try:
                    object.__setattr__(self, f.name, typ.from_dict(value))
                except ConfigError as exc:
                    if exc.name is None:
                        raise
                    self.reject(f"{f.name}.{exc.name}", exc.value, exc.allowed)
            elif not isinstance(value, typ):
                self.reject(f.name, value, f"a {typ.__name__}")
            return
        origin = typing.get_origin(typ)
        if origin is tuple:
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            args = typing.get_args(typ)
            elem = args[0] if args else object
            if not isinstance(value, tuple) or not all(self._type_ok(v, elem) for v in value):
                self.reject(f.name, value, f"a tuple of {getattr(elem, '__name__', elem)}")
            return
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(self, f.name, value)
        ok = self._type_ok(value, typ)
        if ok and meta:
            if meta.get("choices") is not None:
                ok = value in meta["choices"]
            if meta.get("pow2"):
                ok = ok and is_power_of_two(value)
            if meta.get("lo") is not None:
                ok = ok and value >= meta["lo"]
            if meta.get("hi") is not None:
                ok = ok and value <= meta["hi"]
        if not ok:
            self.reject(f.name, value, _allowed(typ, meta))

    @staticmethod
    def _type_ok(value, typ) -> bool:
        if typ is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if typ is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if typ in (bool, str):
            return isinstance(value, typ)
        if isinstance(typ, type):
            return isinstance(value, typ)
        return True

    def validate(self) -> None:
        """Cross-field rules: raise :class:`ConfigError` (through :meth:`check`). Override."""

    def check(self, ok: bool, name: str, allowed: str) -> None:
        """Raise a one-line :class:`ConfigError` for parameter ``name`` unless ``ok``.

        A dotted ``name`` (``emd.group``) names a field of a nested config; its value is looked
        up along the path.
        """
        if not ok:
            value = self
            for part in name.split("."):
                value = getattr(value, part, None)
            self.reject(name, value, allowed)

    @classmethod
    def reject(cls, name: str, value, allowed: str) -> typing.NoReturn:
        """Raise the one-line :class:`ConfigError` for parameter ``name``.

        Every field check and :meth:`check` ends here, so a subclass may override it to word the
        message for its own users (``golden.td3.TD3Config`` speaks in command-line options).
        """
        raise ConfigError(f"{cls.NAME}: {name}={value!r} is not allowed; {name} must be {allowed}",
                          name=name, value=value, allowed=allowed)

    # -- introspection ---------------------------------------------------------------------
    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def parameter_table(cls) -> list[dict[str, Any]]:
        """One row per field (nested configs flattened with dotted names): name, type, default,
        allowed values, whether it is an implementation knob, and its doc line."""
        return cls._table(cls())

    @classmethod
    def _table(cls, default: Config) -> list[dict[str, Any]]:
        # ``default`` is this config as its parent sets it up: a nested field's defaults are the
        # parent's (``right: Lane = param(Lane(mode="small"))``), not the nested class's own.
        rows = []
        types = cls.field_types()
        for f in dataclasses.fields(cls):
            typ = types[f.name]
            value = getattr(default, f.name)
            if _is_config_type(typ):
                for row in typ._table(value):
                    rows.append({**row, "name": f"{f.name}.{row['name']}"})
                continue
            rows.append({"name": f.name, "type": getattr(typ, "__name__", str(typ)), "default": value,
                         "allowed": _allowed(typ, f.metadata), "impl": bool(f.metadata.get("impl")),
                         "doc": f.metadata.get("doc", "")})
        return rows

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(set(cls.PRESETS) | {"default"})

    @classmethod
    def preset(cls, name: str = "default", **overrides):
        """The named preset with ``overrides`` applied on top (nested dicts merge)."""
        if name not in cls.preset_names():
            raise ConfigError(f"{cls.NAME}: unknown preset {name!r}; choose one of {', '.join(cls.preset_names())}")
        return cls.from_dict(deep_merge(dict(cls.PRESETS.get(name, {})), overrides))

    def replace(self, **changes):
        """A copy with ``changes`` applied (nested dicts merge into nested configs; validated)."""
        return type(self).from_dict(deep_merge(self._fields_dict(), changes))

    def override(self, items: list[str]):
        """A copy with ``key=value`` strings (dotted keys for nested configs) applied."""
        return self.replace(**self.parse_overrides(items))

    @classmethod
    def parse_overrides(cls, items: list[str]) -> dict[str, Any]:
        """Parse ``key=value`` / ``part.key=value`` strings into a nested dict of typed values."""
        out: dict[str, Any] = {}
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                names = ", ".join(r["name"] for r in cls.parameter_table())
                raise ConfigError(f"--set {item!r}: expected key=value with key one of {names}")
            target, path = cls, key.split(".")
            node = out
            for depth, part in enumerate(path):
                types = target.field_types()
                if part not in types:
                    where = ".".join(path[:depth]) or cls.NAME
                    raise ConfigError(f"{target.NAME}: unknown parameter {'.'.join(path[:depth + 1])!r} in {where}; "
                                      f"parameters are {', '.join(types)}")
                typ = types[part]
                if depth == len(path) - 1:
                    if _is_config_type(typ):
                        raise ConfigError(f"{cls.NAME}: {key!r} is a group of parameters; set one of "
                                          f"{', '.join(key + '.' + n for n in typ.field_types())}")
                    node[part] = _parse_value(cls.NAME, key, text.strip(), typ)
                else:
                    if not _is_config_type(typ):
                        raise ConfigError(f"{cls.NAME}: {'.'.join(path[:depth + 1])!r} has no parameters of its own; "
                                          f"use {'.'.join(path[:depth + 1])}=VALUE")
                    node = node.setdefault(part, {})
                    target = typ
        return out

    # -- serialization ---------------------------------------------------------------------
    def _fields_dict(self, *, features_only: bool = False, canonical: bool = False) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if features_only and f.metadata.get("impl"):
                continue
            value = getattr(self, f.name)
            if canonical and f.metadata.get("omit_default") and value == f.default:
                continue
            if isinstance(value, Config):
                value = value._as_dict(features_only=features_only, canonical=canonical)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def _as_dict(self, *, features_only: bool, canonical: bool) -> dict[str, Any]:
        return {self.NAME_KEY: self.NAME, **self._fields_dict(features_only=features_only, canonical=canonical)}

    def to_dict(self, *, features_only: bool = False) -> dict[str, Any]:
        """Plain dict (nested configs as dicts), with the config's name under ``NAME_KEY``."""
        return self._as_dict(features_only=features_only, canonical=False)

    def to_json(self, *, features_only: bool = False) -> str:
        """Canonical JSON (sorted keys, no spaces): the bytes that are hashed. Fields declared
        ``omit_default`` are left out while they have their default."""
        return json.dumps(self._as_dict(features_only=features_only, canonical=True), sort_keys=True,
                          separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        data = dict(data)
        name = data.pop(cls.NAME_KEY, cls.NAME)
        if name != cls.NAME:
            raise ConfigError(f"config is for {name!r}, not {cls.NAME!r}")
        known = cls.field_types()
        for key in data:
            if key not in known:
                raise ConfigError(f"{cls.NAME}: unknown parameter {key!r}; parameters are {', '.join(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def config_hash(self) -> str:
        """First 10 hex digits of the SHA-256 of the features (implementation knobs left out)."""
        return hashlib.sha256(self.to_json(features_only=True).encode()).hexdigest()[:10]

    def full_hash(self) -> str:
        """Like :meth:`config_hash` but over every field, implementation knobs included."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:10]


def _parse_value(owner: str, key: str, text: str, typ):
    try:
        if typ is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(text, 0)
        if typ is float:
            return float(text)
        if typing.get_origin(typ) is tuple:
            args = typing.get_args(typ)
            elem = args[0] if args else str
            parts = [p.strip() for p in text.strip("()[]").split(",") if p.strip()]
            return tuple(_parse_value(owner, key, p, elem) for p in parts)
        return text
    except ValueError:
        name = getattr(typ, "__name__", str(typ))
        raise ConfigError(f"{owner}: {key}={text!r} is not a valid {name}") from None
