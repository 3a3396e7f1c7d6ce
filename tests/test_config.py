"""The configuration base (golden/config.py): types and ranges declared once, nested configs,
dotted overrides, presets, hashes, and the registry owning block names."""

import dataclasses
import doctest

import pytest

import golden.config
from golden.config import Config, ConfigError, deep_merge, param


@dataclasses.dataclass(frozen=True)
class Lane(Config):
    NAME = "lane"
    width: int = param(8, lo=1, hi=64, doc="bits per lane")
    depth: int = param(16, pow2=True, lo=2, hi=1024)
    gain: float = param(0.5, lo=0.0, hi=1.0)
    mode: str = param("fast", choices=("fast", "small"))
    gated: bool = param(True)
    taps: tuple[int, ...] = param((1, 2))
    pipelined: bool = param(False, impl=True, doc="synthesis only")


@dataclasses.dataclass(frozen=True)
class Pair(Config):
    NAME = "pair"
    PRESETS = {"wide": {"count": 4, "left": {"width": 32}}}
    count: int = param(2, lo=1, hi=8)
    spare: int = param(0, lo=0)
    repeat: int = param(1, lo=1)
    left: Lane = param(Lane())
    right: Lane = param(Lane(mode="small"))

    def validate(self):
        self.check(self.left.width >= self.right.width, "count", "anything: left.width must be >= right.width")


# -- types and ranges ------------------------------------------------------------------------
@pytest.mark.parametrize("changes,message", [
    ({"width": 0}, "lane: width=0 is not allowed; width must be an integer from 1 to 64"),
    ({"width": 65}, "width must be an integer from 1 to 64"),
    ({"width": 8.0}, "width=8.0 is not allowed; width must be an integer from 1 to 64"),
    ({"width": True}, "width=True is not allowed"),
    ({"depth": 24}, "depth=24 is not allowed; depth must be a power of two from 2 to 1024"),
    ({"depth": 1}, "depth must be a power of two from 2 to 1024"),
    ({"gain": 1.5}, "gain=1.5 is not allowed; gain must be a number from 0.0 to 1.0"),
    ({"gain": "0.5"}, "gain='0.5' is not allowed"),
    ({"mode": "slow"}, "mode='slow' is not allowed; mode must be one of fast, small"),
    ({"gated": 1}, "gated=1 is not allowed; gated must be true or false"),
    ({"taps": (1, "2")}, "taps=(1, '2') is not allowed; taps must be a tuple of int"),
])
def test_types_and_ranges_give_one_line_messages(changes, message):
    with pytest.raises(ConfigError) as info:
        Lane(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_open_ranges_read_naturally():
    with pytest.raises(ConfigError, match="pair: spare=-1 is not allowed; spare must be an integer >= 0"):
        Pair(spare=-1)
    with pytest.raises(ConfigError, match="pair: repeat=0 is not allowed; repeat must be a positive integer"):
        Pair(repeat=0)


def test_values_are_normalised():
    lane = Lane(gain=1, taps=[3, 4])
    assert lane.gain == 1.0 and isinstance(lane.gain, float)
    assert lane.taps == (3, 4)


def test_validate_runs_after_the_field_checks():
    with pytest.raises(ConfigError, match=r"pair: count=2 is not allowed; count must be anything: left.width"):
        Pair(left=Lane(width=4), right=Lane(width=8))


def test_a_field_may_not_shadow_the_name_key():
    @dataclasses.dataclass(frozen=True)
    class Bad(Config):
        NAME = "bad"
        name: str = param("x")

    with pytest.raises(TypeError, match="may not be called 'name'"):
        Bad()


# -- nesting, serialisation --------------------------------------------------------------------
def test_nested_configs_and_round_trip():
    pair = Pair(left={"width": 16})
    assert isinstance(pair.left, Lane) and pair.left.width == 16 and pair.right.mode == "small"
    data = pair.to_dict()
    assert data["name"] == "pair" and data["left"] == {"name": "lane", **Lane(width=16).to_dict()}
    assert data["left"]["taps"] == [1, 2]  # JSON has no tuples
    again = Pair.from_dict(data)
    assert again == pair and again.left.taps == (1, 2)
    assert Pair.from_json(pair.to_json()) == pair
    with pytest.raises(ConfigError, match="pair: left=3 is not allowed; left must be a Lane"):
        Pair(left=3)
    with pytest.raises(ConfigError, match="config is for 'lane', not 'pair'"):
        Pair.from_dict(Lane().to_dict())
    with pytest.raises(ConfigError, match="lane: unknown parameter 'speed'"):
        Pair.from_dict({"left": {"speed": 1}})


def test_replace_merges_nested_changes():
    pair = Pair().replace(left={"width": 32}, count=3)
    assert (pair.count, pair.left.width, pair.left.mode, pair.right.mode) == (3, 32, "fast", "small")
    with pytest.raises(ConfigError, match="pair: left.width=99 is not allowed; left.width must be an integer from 1 to 64"):
        Pair().replace(left={"width": 99})


def test_parameter_table_flattens_nested_fields():
    rows = {r["name"]: r for r in Pair.parameter_table()}
    assert rows["left.width"]["allowed"] == "an integer from 1 to 64" and rows["left.width"]["doc"] == "bits per lane"
    assert rows["left.mode"]["default"] == "fast" and rows["left.pipelined"]["impl"] is True
    assert rows["right.mode"]["default"] == "small"  # the parent's default, not Lane's own
    assert "left" not in rows and rows["count"]["type"] == "int" and rows["repeat"]["allowed"] == "a positive integer"


# -- overrides and presets ---------------------------------------------------------------------
def test_dotted_overrides_are_typed():
    over = Pair.parse_overrides(["left.width=0x20", "right.gated=off", "count=3", "left.taps=4,5",
                                 "left.gain=0.25", "right.mode=fast"])
    assert over == {"left": {"width": 32, "taps": (4, 5), "gain": 0.25}, "right": {"gated": False, "mode": "fast"},
                    "count": 3}
    pair = Pair().override(["left.width=48", "count=5"])
    assert (pair.left.width, pair.count, pair.right.width) == (48, 5, 8)


@pytest.mark.parametrize("item,message", [
    ("count", "--set 'count': expected key=value with key one of count, spare, repeat, left.width"),
    ("=3", "expected key=value"),
    ("speed=3", "pair: unknown parameter 'speed' in pair; parameters are count, spare, repeat, left, right"),
    ("left.speed=3", "lane: unknown parameter 'left.speed' in left; parameters are width, depth"),
    ("left=3", "pair: 'left' is a group of parameters; set one of left.width, left.depth"),
    ("count.x=3", "pair: 'count' has no parameters of its own; use count=VALUE"),
    ("left.width=wide", "pair: left.width='wide' is not a valid int"),
    ("left.gated=maybe", "pair: left.gated='maybe' is not a valid bool"),
])
def test_override_errors_are_one_line(item, message):
    with pytest.raises(ConfigError) as info:
        Pair.parse_overrides([item])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_override_out_of_range_names_the_dotted_parameter():
    with pytest.raises(ConfigError, match="pair: left.width=100 is not allowed; left.width must be an integer from 1 to 64"):
        Pair().override(["left.width=100"])


def test_presets_with_nested_values():
    assert Pair.preset_names() == ["default", "wide"]
    wide = Pair.preset("wide")
    assert (wide.count, wide.left.width, wide.left.mode, wide.right.mode) == (4, 32, "fast", "small")
    tuned = Pair.preset("wide", **Pair.parse_overrides(["left.mode=small"]))
    assert (tuned.left.width, tuned.left.mode) == (32, "small")  # the override merges into the preset
    assert Pair.preset("default") == Pair()
    with pytest.raises(ConfigError, match="pair: unknown preset 'huge'; choose one of default, wide"):
        Pair.preset("huge")


def test_deep_merge_keeps_untouched_keys():
    base = {"a": {"x": 1, "y": 2}, "b": 3}
    assert deep_merge(base, {"a": {"y": 5}}) == {"a": {"x": 1, "y": 5}, "b": 3}
    assert base == {"a": {"x": 1, "y": 2}, "b": 3}  # not modified


# -- hashes ---------------------------------------------------------------------------------------
def test_config_hash_ignores_implementation_knobs_and_full_hash_does_not():
    plain, knob = Pair(), Pair(left=Lane(pipelined=True))
    assert plain.config_hash() == knob.config_hash()
    assert plain.full_hash() != knob.full_hash()
    assert "pipelined" not in plain.to_json(features_only=True) and "pipelined" in plain.to_json()
    assert plain.config_hash() != Pair(left=Lane(width=9)).config_hash()
    assert len(plain.config_hash()) == 10 and plain.config_hash() == Pair().config_hash()


# -- registry and doctest --------------------------------------------------------------------------
def test_the_registry_owns_block_names():
    from hdl.config import BlockConfig
    from hdl.registry import BLOCKS

    for name, spec in BLOCKS.items():
        cls = spec.config_type()
        assert issubclass(cls, BlockConfig)
        assert cls.BLOCK == cls.NAME == name, spec
        assert "BLOCK" not in cls.__dict__ or cls.__dict__["BLOCK"] == name
        assert cls().to_dict()["block"] == name


def test_the_module_doctest_runs():
    result = doctest.testmod(golden.config)
    assert result.attempted >= 4 and result.failed == 0


def test_a_nested_error_names_the_dotted_path_in_the_parent():
    from hdl.emd import EmdEncoderConfig

    with pytest.raises(ConfigError, match=r"^emd_enc: fmt\.group=12 is not allowed; fmt\.group must be a power of two"):
        EmdEncoderConfig.preset("default", **EmdEncoderConfig.parse_overrides(["fmt.group=12"]))


def test_a_cross_field_rule_on_a_nested_field_shows_its_value():
    # OmniDRLConfig checks emd.group against the array's block size: the message must carry
    # the nested value (it once showed None), so a dotted name is looked up along its path
    from hdl.omnidrl import OmniDRLConfig

    with pytest.raises(ConfigError, match=r"emd\.group=2 is not allowed; emd\.group must be at least "
                                          r"pe_array\.block_size=4"):
        OmniDRLConfig.preset("tiny", **OmniDRLConfig.parse_overrides(["emd.group=2"]))
