"""Small Amaranth fixtures the tests build designs from."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

__all__ = ["SideBySide"]


class SideBySide(wiring.Component):
    """Components side by side under one top; every port of every part is a top-level port.

    ``SideBySide({"a": Sram(8, 16), "pe": PE(cfg)})`` exposes ``a`` and ``pe`` as ports
    carrying each part's signature (for flows that need one top: synthesis, black-box search).
    """

    def __init__(self, parts: dict):
        self.parts = parts
        super().__init__({name: Out(part.signature) for name, part in parts.items()})

    def elaborate(self, platform):
        m = Module()
        for name, part in self.parts.items():
            m.submodules[name] = part
            wiring.connect(m, wiring.flipped(getattr(self, name)), part)
        return m
