"""Synthesis black boxes are found by their ``synth_blackbox`` mark, at any depth, under any wrapper."""

import dataclasses
import json

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring

from flows.blackbox import check_in_verilog, find_blackboxes, verilog_modules, yosys_name
from flows.synth import report_path, synth_generic
from hdl.config import BlockConfig, param
from hdl.ecim import Ecim, EcimConfig
from hdl.lib.sram import Sram
from hdl.pe_array import PEArray, PEArrayConfig
from tb.fixtures import SideBySide


class _Nest(wiring.Component):
    """A plain submodule holding an Sram, an anonymous Sram, and a marked component holding an Sram."""

    def __init__(self, marked_outer: bool):
        self.marked_outer = marked_outer
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        inner = Module()
        inner.submodules.deep = Sram(4, 8)
        m.submodules.inner = inner
        m.submodules += Sram(2, 4)
        off = Sram(2, 4)
        off.synth_blackbox = False  # a mark is per instance
        m.submodules.off = off
        box = SideBySide({"mem": Sram(8, 16)})
        box.synth_blackbox = self.marked_outer
        m.submodules.box = box
        return m


def _verilog(component, top):
    return verilog.convert(component, name=top, emit_src=False, strip_internal_attrs=True)


@pytest.mark.parametrize("marked_outer", [False, True])
def test_marks_are_found_at_any_depth_and_the_walk_stops_at_a_black_box(marked_outer):
    names = find_blackboxes(_Nest(marked_outer), "top")
    inside = "top.box" if marked_outer else "top.box.mem"
    assert sorted(names) == sorted(["top.inner.deep", "top.U$3", inside])  # Amaranth numbers anonymous ones
    text = _verilog(_Nest(marked_outer), "top")
    check_in_verilog(names, text)
    assert {"top.off", "top.box"} <= verilog_modules(text)


def test_a_name_missing_from_the_verilog_is_an_error():
    text = _verilog(SideBySide({"a": Sram(8, 16)}), "top")
    assert verilog_modules(text) == {"top", "top.a"}
    with pytest.raises(ValueError, match=r"black box 'top.b' is not a module of the Verilog; modules are top, top.a"):
        check_in_verilog(("top.a", "top.b"), text)


def test_yosys_names_are_escaped_when_needed():
    assert yosys_name("pe") == "pe"
    assert yosys_name("pe_array.store.a0") == "\\pe_array.store.a0"
    assert yosys_name("top.U$1") == "\\top.U$1"


def test_implementation_knobs_get_their_own_report():
    @dataclasses.dataclass(frozen=True)
    class KnobConfig(BlockConfig):
        BLOCK = "knob"
        width: int = param(8, lo=1, hi=64)
        keep_macro: bool = param(False, impl=True)

    plain, knob = KnobConfig(), KnobConfig(keep_macro=True)
    assert plain.config_hash() == knob.config_hash()  # one Verilog file
    assert report_path(plain) != report_path(knob)
    assert report_path(knob).name == f"knob-{knob.full_hash()}.json"


def test_every_sram_of_a_wrapped_design_is_a_black_box(tmp_path):
    # PE array and ECIM inside a wrapper, plus an Sram of the wrapper's own: every memory must
    # stay a black box (with hand-written names rooted at the block, all of them became flops).
    # A 2 x 2 array keeps the logic (and the synthesis time) small; the memories stay large, so
    # one turned into flip-flops would dwarf the logic.
    pe_cfg = PEArrayConfig(rows=2, cols=2, block_size=2, max_blocks=2, a_depth=1024, b_depth=1024)
    ecim_cfg = EcimConfig.preset("tiny")

    def design():
        return SideBySide({"pe_array": PEArray(pe_cfg), "ecim": Ecim(ecim_cfg), "sram": Sram(16, 1024)})

    names = find_blackboxes(design(), "top")
    assert set(names) == {"top.pe_array.store.a0", "top.pe_array.store.b0", "top.ecim.macro", "top.ecim.mant_mem",
                          "top.sram"}
    text = _verilog(design(), "top")
    check_in_verilog(names, text)
    path = tmp_path / "top.v"
    path.write_text(text)
    values = {r["metric"]: r["value"] for r in synth_generic(path, "top", tmp_path / "work", names)
              if r["tool"] == "yosys"}
    sram_bits = 16 * pe_cfg.rows * pe_cfg.a_depth + 16 * pe_cfg.cols * pe_cfg.b_depth + 16 * 1024 \
        + 2 * 8 * ecim_cfg.n * ecim_cfg.rows
    assert values["blackbox_instances"] == len(names)
    assert 0 < values["flip_flops"] < sram_bits / 10
    assert values["transistors"] > 0 and values["area"] > 0
    stat = json.loads((tmp_path / "work" / "stat_generic.json").read_text())["design"]["num_cells_by_type"]
    assert not any("MEM" in cell for cell in stat), stat  # no memory left to map
