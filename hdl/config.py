"""Configuration of hardware blocks: :class:`golden.config.Config` plus what the flows need.

Every block's parameters live in one frozen dataclass that subclasses :class:`BlockConfig`,
declares its fields with :func:`param` (type and allowed values once per field) and puts
cross-field rules in ``validate()``. The block's name is owned by :mod:`hdl.registry`: a
config class looks its name up there when it is defined, so the name is written in one place.
The features hash (:meth:`~golden.config.Config.config_hash`) names every generated artefact
(``build/<block>/<hash>/<block>-<hash>.v``), so Make, pytest and the synthesis flow share one
file per configuration; implementation knobs (``param(..., impl=True)``) do not change it.

Example
-------
>>> from hdl.pe import PEConfig
>>> cfg = PEConfig.preset("default").replace(mul_stages=2)
>>> cfg.BLOCK, cfg.latency
('pe', 3)
"""

from __future__ import annotations

from typing import ClassVar

from golden.config import Config, ConfigError, is_power_of_two, param

__all__ = ["ConfigError", "BlockConfig", "is_power_of_two", "param"]


class BlockConfig(Config):
    """Base class of the hardware blocks' configuration dataclasses.

    ``BLOCK`` (= ``NAME``) is filled in from :data:`hdl.registry.BLOCKS` by module and class
    name; a config class that is not registered keeps the ``BLOCK`` it sets itself.
    """

    NAME_KEY: ClassVar[str] = "block"
    BLOCK: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        from .registry import name_of_config  # the registry imports this module
        name = name_of_config(cls.__module__, cls.__qualname__) or cls.__dict__.get("BLOCK", "")
        cls.BLOCK = cls.NAME = name

    @property
    def artefact_name(self) -> str:
        return f"{self.BLOCK}-{self.config_hash()}"
