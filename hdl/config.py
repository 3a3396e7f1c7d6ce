"""The configuration pattern every block follows.

A block's parameters live in one frozen dataclass that subclasses :class:`BlockConfig`. It
validates itself in ``__post_init__`` (through :meth:`BlockConfig.check`), names its presets in
``PRESETS``, serializes to canonical JSON and hashes that JSON. The hash names every generated
artefact (``build/<block>/<hash>/<block>-<hash>.v``), so Make, pytest and the synthesis flow share
one file per configuration.

Example
-------
>>> from hdl.pe import PEConfig
>>> cfg = PEConfig.preset("default").replace(mul_stages=2)
>>> cfg.config_hash()  # doctest: +SKIP
'3f0c9a41d2'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, ClassVar

__all__ = ["ConfigError", "BlockConfig", "is_power_of_two"]


def is_power_of_two(x) -> bool:
    """True for the ints 1, 2, 4, 8, ... (for use in ``validate()``)."""
    return isinstance(x, int) and x > 0 and x & (x - 1) == 0


class ConfigError(ValueError):
    """A configuration value is out of range. The message names parameter, value and range."""


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """Base class of the per-block configuration dataclasses.

    Subclasses are ``@dataclasses.dataclass(frozen=True)``, set ``BLOCK`` (the CLI block name)
    and ``PRESETS`` (name -> dict of field overrides; ``default`` is the field defaults), and
    implement :meth:`validate` with :meth:`check` calls.
    """

    BLOCK: ClassVar[str] = ""
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self):
        # "block" is the key that names the block in the JSON and the hash.
        if any(f.name == "block" for f in dataclasses.fields(self)):
            raise TypeError(f"{type(self).__name__}: a config field may not be called 'block'")
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a field is out of range. Override per block."""

    def synth_blackboxes(self) -> tuple[str, ...]:
        """Verilog module names that synthesis keeps as black boxes (memories, macros).

        Their area comes from a separate model documented with the block. None by default.
        """
        return ()

    def check(self, ok: bool, name: str, allowed: str) -> None:
        """Raise a one-line :class:`ConfigError` for parameter ``name`` unless ``ok``."""
        if not ok:
            value = getattr(self, name, None)
            raise ConfigError(f"{self.BLOCK}: {name}={value!r} is not allowed; {name} must be {allowed}")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(set(cls.PRESETS) | {"default"})

    @classmethod
    def preset(cls, name: str = "default", **overrides):
        """Return the named preset, with ``overrides`` applied on top."""
        if name not in cls.preset_names():
            raise ConfigError(f"{cls.BLOCK}: unknown preset {name!r}; choose one of {', '.join(cls.preset_names())}")
        values = dict(cls.PRESETS.get(name, {}))
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def parse_overrides(cls, items: list[str]) -> dict[str, Any]:
        """Parse ``key=value`` strings from the command line into typed field values."""
        types = cls.field_types()
        out: dict[str, Any] = {}
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep:
                raise ConfigError(f"--set {item!r}: expected key=value with key one of {', '.join(types)}")
            if key not in types:
                raise ConfigError(f"{cls.BLOCK}: unknown parameter {key!r}; parameters are {', '.join(types)}")
            out[key] = _parse_value(cls.BLOCK, key, text.strip(), types[key])
        return out

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"block": self.BLOCK, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the bytes that are hashed."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        data = dict(data)
        block = data.pop("block", cls.BLOCK)
        if block != cls.BLOCK:
            raise ConfigError(f"config is for block {block!r}, not {cls.BLOCK!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def config_hash(self) -> str:
        """First 10 hex digits of the SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:10]

    @property
    def artefact_name(self) -> str:
        return f"{self.BLOCK}-{self.config_hash()}"


def _parse_value(block: str, key: str, text: str, typ: type):
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
        return text
    except ValueError:
        raise ConfigError(f"{block}: {key}={text!r} is not a valid {typ.__name__}") from None
