"""golden/config.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived tests/test_config.py (named in the test's comment).
"""

import dataclasses
import enum
import json

import pytest

from golden.config import Config, ConfigError, is_power_of_two, param


class Shade(enum.IntEnum):
    DARK = 0
    LIGHT = 1


@dataclasses.dataclass(frozen=True)
class Knob(Config):
    NAME = "knob"
    zeta: int = param(3, hi=9)                      # declared first so that sorted keys differ from field order
    fast: bool = param(False, impl=True)            # an impl field before a feature field
    alpha: int = param(1, choices=(1, 2))
    shade: Shade = param(Shade.DARK)
    limit: int | None = param(None)


@dataclasses.dataclass(frozen=True)
class Panel(Config):
    NAME = "panel"
    knob: Knob = param(Knob())
    size: int = param(4, lo=1)


@dataclasses.dataclass(frozen=True)
class Needy(Config):
    NAME = "needy"
    count: int = param(lo=1)


def test_is_power_of_two_exactly():
    # kills x > 0 -> x >= 0, x > 0 -> x > 1 and x - 1 -> x - 2
    assert [x for x in range(-2, 17) if is_power_of_two(x)] == [1, 2, 4, 8, 16]


def test_upper_bound_only_reads_naturally():
    # kills `if hi is not None` negated / turned into `is`
    with pytest.raises(ConfigError, match=r"knob: zeta=10 is not allowed; zeta must be an integer <= 9$"):
        Knob(zeta=10)


def test_a_bool_is_not_an_int_even_when_it_equals_a_choice():
    # kills `if ok and meta` -> `if ok or meta` (True == 1 is in choices)
    with pytest.raises(ConfigError, match="alpha=True is not allowed"):
        Knob(alpha=True)


def test_enum_fields_check_their_type():
    # kills `if isinstance(typ, type)` negated
    assert Knob(shade=Shade.LIGHT).shade is Shade.LIGHT
    with pytest.raises(ConfigError, match="shade='light' is not allowed"):
        Knob(shade="light")


def test_fields_without_a_plain_type_are_not_checked():
    # kills the final `return True` of _type_ok -> False (an `int | None` annotation is not a type)
    assert Knob(limit=None).limit is None and Knob(limit=5).limit == 5


def test_reject_is_a_classmethod():
    # kills the removal of @classmethod on Config.reject
    with pytest.raises(ConfigError, match="knob: zeta=0 is not allowed; zeta must be odd"):
        Knob.reject("zeta", 0, "odd")


def test_a_param_without_default_is_required():
    # kills `if isinstance(default, Config)` negated (every default would become a factory)
    assert Needy(count=2).count == 2
    with pytest.raises(TypeError):
        Needy()


def test_override_messages_name_the_path_up_to_the_fault():
    # kills depth + 1 -> depth + 2 and depth + 1 -> depth - 1 in parse_overrides' messages
    with pytest.raises(ConfigError, match=r"unknown parameter 'knob\.nope' in knob;"):
        Panel.parse_overrides(["knob.nope.x=1"])
    with pytest.raises(ConfigError, match=r"panel: 'size' has no parameters of its own; use size=VALUE$"):
        Panel.parse_overrides(["size.x=1"])
    with pytest.raises(ConfigError, match=r"'knob\.zeta' has no parameters of its own; use knob\.zeta=VALUE$"):
        Panel.parse_overrides(["knob.zeta.x=1"])


@pytest.mark.parametrize("text,value", [("yes", True), ("on", True), ("off", False)])
def test_bool_overrides_parse_words(text, value):
    # kills `return True` -> `return False` in _parse_value
    assert Knob.parse_overrides([f"fast={text}"]) == {"fast": value}


def test_to_dict_keeps_implementation_fields_by_default():
    # kills the default features_only=False -> True of to_dict
    assert Knob().to_dict()["fast"] is False


def test_features_hash_skips_only_implementation_fields():
    # kills `continue` -> `break` (the feature fields after an impl field would drop out of the hash)
    assert Knob(alpha=2).config_hash() != Knob().config_hash()
    assert Knob(fast=True).config_hash() == Knob().config_hash()


def test_json_is_canonical_and_hashes_are_ten_digits():
    # kills sort_keys=True -> False and [:10] -> [:11] in full_hash
    keys = list(json.loads(Knob().to_json()))
    assert keys == sorted(keys) and keys != ["name", *[f.name for f in dataclasses.fields(Knob)]]
    assert len(Knob().full_hash()) == 10 and len(Knob().config_hash()) == 10
