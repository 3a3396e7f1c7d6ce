"""Every parameter of every registered block reaches the right hash.

``config_hash()`` names the generated Verilog (``build/<block>/<hash>/``), so a feature it
ignores makes two configurations share one build folder and serve stale Verilog. For each
block, each preset and each field of ``parameter_table()`` (nested fields by dotted name), the
field is moved to another valid value: a feature must change ``config_hash()``; an
implementation knob (``param(..., impl=True)``) must leave it alone, change ``full_hash()`` and
leave the Verilog byte for byte the same (else it is no implementation knob).
"""

import pytest

from flows.generate import convert
from golden.config import ConfigError, deep_merge
from hdl.registry import BLOCKS, get_block

CASES = [(name, preset) for name, spec in sorted(BLOCKS.items()) for preset in spec.config_type().preset_names()]


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _nested(dotted: str, value) -> dict:
    head, _, rest = dotted.partition(".")
    return {head: _nested(rest, value) if rest else value}


def _candidates(value, row: dict) -> list:
    """Other values of the field's type, nearest first; the config decides which are valid."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int) and row["allowed"].startswith("one of "):
        return [int(v) for v in row["allowed"].removeprefix("one of ").split(", ")]
    if isinstance(value, int):
        return [value * 2, value // 2, value + 1, value - 1, value * 4, value + 8, 1, 2, 0]
    if isinstance(value, float):
        return [value * 2, value / 2, value + 1.0, 0.0]
    if isinstance(value, str):
        allowed = row["allowed"].removeprefix("one of ").split(", ")
        return [v for v in allowed if v != value]
    raise AssertionError(f"{row['name']}: no rule for values of type {type(value).__name__}; add one here")


def _moves(cfg, row: dict):
    """Every valid config with field ``row['name']`` moved to one of its candidate values."""
    value = _get(cfg, row["name"])
    for candidate in dict.fromkeys(_candidates(value, row)):
        if candidate == value:
            continue
        try:
            yield cfg.replace(**_nested(row["name"], candidate))
        except ConfigError:
            continue


def other_valid(cfg, row: dict, rows: list[dict]):
    """``(base, changed)``: two valid configs that differ in field ``row['name']`` only.

    ``base`` is ``cfg`` when the field can move on its own; when cross-field rules tie it to
    others (the PE array's ``rows == block_size`` while block modes are on), ``base`` is
    ``cfg`` with one or two other fields moved first (the hash must see the field in any
    context). Fields that no valid config changes alone (a config's ``TIED_FIELDS``, e.g. the
    top's ``rows == cols == block_size``) move together.
    """
    others = [r for r in rows if r["name"] != row["name"]]
    for group in getattr(cfg, "TIED_FIELDS", ()):  # fields a rule keeps equal move together
        if row["name"] in group:
            for candidate in _candidates(_get(cfg, row["name"]), row):
                changes: dict = {}
                for name in group:
                    changes = deep_merge(changes, _nested(name, candidate))
                try:
                    return cfg, cfg.replace(**changes)
                except ConfigError:
                    continue
    contexts = [cfg]
    for depth in range(3):
        for base in contexts:
            for changed in _moves(base, row):
                return base, changed
        if depth < 2:
            moved = (next(_moves(base, other), None) for base in contexts for other in others)
            contexts = [m for m in moved if m is not None]
    raise AssertionError(f"{cfg.BLOCK}.{row['name']}={_get(cfg, row['name'])!r}: no other valid value found, "
                         f"even with two other fields moved; give the test one ({row['allowed']})")


@pytest.mark.parametrize("block,preset", CASES, ids=[f"{b}-{p}" for b, p in CASES])
def test_every_field_changes_the_right_hash(block, preset):
    cls = get_block(block).config_type()
    cfg = cls.preset(preset)
    rows = cls.parameter_table()
    assert rows, f"{block}: parameter_table() is empty"
    knobs = []
    for row in rows:
        name = row["name"]
        base, changed = other_valid(cfg, row, rows)
        assert _get(changed, name) != _get(base, name)
        assert changed.full_hash() != base.full_hash(), f"{block}: full_hash() ignores {name}"
        if row["impl"]:
            assert changed.config_hash() == base.config_hash(), \
                f"{block}: {name} is an implementation knob but changes config_hash()"
            knobs.append((name, base, changed))
        else:
            assert changed.config_hash() != base.config_hash(), \
                f"{block}: config_hash() ignores {name} ({_get(base, name)!r} -> {_get(changed, name)!r})"
    if preset == min(cls.preset_names(), key=lambda p: p != "tiny"):  # the Verilog check once per block
        spec = get_block(block)
        for name, base, changed in knobs:
            assert convert(spec.build(changed), block) == convert(spec.build(base), block), \
                f"{block}: {name} is declared impl=True but changes the Verilog; it is a feature"
