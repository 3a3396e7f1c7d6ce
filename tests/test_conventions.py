"""docs/conventions.md, checked on every registered block: names, stream ports, the error convention."""

import enum
import re

import pytest
from amaranth import Shape
from amaranth.lib import stream, wiring

import golden.codes
import golden.isa
from flows.generate import ROOT
from hdl.registry import BLOCKS

DOC = (ROOT / "docs" / "conventions.md").read_text()


def _error_table() -> dict[str, tuple[str, list[str]]]:
    """block -> (enum name or in-band text, codes) from the doc's error table."""
    section = DOC.split("| block | `err_code` enum |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in section.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = (cells[1].strip("`"), [c.strip() for c in cells[2].split(",") if c.strip()])
    return rows


def _build(name):
    spec = BLOCKS[name]
    cls = spec.config_type()
    cfg = cls.preset("tiny") if "tiny" in cls.preset_names() else cls()
    component = spec.build(cfg)
    component._MustUse__silence = True  # inspected, never elaborated: no UnusedElaboratable warning
    return spec, cls, component


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_names_pair_up_and_the_registry_owns_them(name):
    spec, cls, _ = _build(name)
    assert cls.__name__ == spec.component_class + "Config"
    assert cls.BLOCK == cls.NAME == name
    assert "BLOCK" not in cls.__dict__ or cls.__dict__["BLOCK"] == name  # set from the registry, not written


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_handshake_port_is_a_stream_signature(name):
    _, _, comp = _build(name)
    for port, member in comp.signature.members.items():
        if member.is_signature:
            sig = member.signature
            assert isinstance(sig, stream.Signature), f"{name}.{port} is a {type(sig).__name__}, not a stream"


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_error_ports_follow_the_convention(name):
    _, _, comp = _build(name)
    members = comp.signature.members
    table = _error_table()
    assert name in table, f"docs/conventions.md has no error row for {name}"
    enum_name, codes = table[name]
    if "error" not in members:
        assert "err_code" not in members
        assert enum_name.startswith(("in-band", "none")), f"{name} has no error port but the doc names {enum_name}"
        return
    assert members["error"].flow == wiring.Out and Shape.cast(members["error"].shape).width == 1
    shape = members["err_code"].shape
    assert isinstance(shape, type) and issubclass(shape, enum.IntEnum), f"{name}.err_code is {shape}"
    home = golden.codes if hasattr(golden.codes, enum_name) else golden.isa  # TopError: the top's command set
    assert shape is getattr(home, enum_name), f"{name}.err_code is {shape.__name__}, doc says {enum_name}"
    assert shape(0).name == "NONE"
    assert [c.name for c in shape if c.value != 0] == codes, f"doc's codes for {name} differ from {enum_name}"


def test_every_error_enum_in_codes_is_documented():
    documented = {row[0] for row in _error_table().values()}
    enums = {n for n, obj in vars(golden.codes).items()
             if isinstance(obj, type) and issubclass(obj, enum.IntEnum) and n.endswith("Error")}
    assert enums <= documented, f"undocumented error enums: {sorted(enums - documented)}"
    assert re.search(r"`error` \| `Out\(1\)` \| sticky", DOC)
