"""The synthesis flow around Yosys: black-box stubs, progress lines, elapsed time, --timeout,
the kept hierarchy with identical modules synthesized once, and a netlist OpenSTA reads whole
(docs/flows.md, "Synthesis")."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from flows.blackbox import merge_identical_modules, stub_blackboxes, verilog_modules
from flows.generate import ROOT, convert
from flows import synth
from flows.synth import SynthError, synth_generic
from hdl.lib.sram import Sram
from hdl.pe import PE, PEConfig
from tb.fixtures import SideBySide


def omnidrl(*args, build=None):
    """The CLI in a subprocess; ``build`` gives it a build folder of its own (OMNIDRL_BUILD), so
    no other test's synthesis of the same configuration can write into its work folder."""
    env = dict(os.environ, AMARANTH_USE_YOSYS="builtin", **({"OMNIDRL_BUILD": str(build)} if build else {}))
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)


def _pes(count: int) -> SideBySide:
    """Default PEs (their submodules' ports are numbered per instance)."""
    return SideBySide({f"pe{k}": PE(PEConfig()) for k in range(count)})


def _macs(count: int) -> SideBySide:
    return SideBySide({f"mac{k}": _Mac() for k in range(count)})


class _Mac(wiring.Component):
    """``acc += a * b``, with the product in a submodule of its own."""

    a: In(8)
    b: In(8)
    acc: Out(24)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = _Mul()
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        m.d.sync += self.acc.eq(self.acc + mul.p)
        return m


class _Mul(wiring.Component):
    a: In(8)
    b: In(8)
    p: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class _Memory(wiring.Component):
    addr: In(12)
    data: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Sram(8, 4096)
        m.d.comb += [mem.r_en.eq(1), mem.r_addr.eq(self.addr), self.data.eq(mem.r_data)]
        return m


def test_a_black_box_is_read_as_a_stub():
    text = convert(_Memory(), "top")
    assert text.count("mem[") > 4096  # one initial assignment per word
    stubbed = stub_blackboxes(text, ("top.mem",))
    assert "mem[" not in stubbed and "(* blackbox *)\nmodule \\top.mem " in stubbed
    assert verilog_modules(stubbed) == verilog_modules(text)
    body = stubbed.split("module \\top.mem ")[1].split("endmodule")[0]
    assert all(line.strip().startswith(("input", "output")) for line in body.splitlines()[1:] if line.strip())


def test_identical_modules_are_merged_and_their_instances_renamed():
    text = convert(_macs(3), "top")
    merged, names = merge_identical_modules(text)
    assert verilog_modules(merged) == {"top", "top.mac0", "top.mac0.mul"}
    assert names == {f"top.mac{k}{sub}": f"top.mac0{sub}" for k in (1, 2) for sub in ("", ".mul")}
    assert [f"mac{k}" for k in range(3)] == [ln.split()[1] for ln in merged.splitlines()
                                             if ln.startswith("  \\top.mac0  ")]  # every instance kept
    # Modules that differ in any way (here the ports the backend numbered) stay apart.
    _, names = merge_identical_modules(convert(_pes(2), "top"))
    assert names == {"top.pe1.add": "top.pe0.add", "top.pe1.out": "top.pe0.out"}


def test_kept_hierarchy_counts_every_instance(tmp_path):
    # Three identical MACs with the hierarchy kept cost exactly three times one: the module is
    # mapped once and counted per instance.
    records = {}
    for count in (1, 3):
        path = tmp_path / f"macs{count}.v"
        path.write_text(convert(_macs(count), "top"))
        records[count] = {r["metric"]: r["value"] for r in synth_generic(path, "top", tmp_path / f"w{count}",
                                                                          hierarchy="keep")}
    assert records[3]["hierarchy_kept"] == 1
    assert abs(records[3]["area"] - 3 * records[1]["area"]) < 0.05  # the report rounds to 0.01 GE
    assert records[3]["flip_flops"] == 3 * records[1]["flip_flops"] > 0
    assert records[3]["transistors"] == 3 * records[1]["transistors"]


def test_synth_prints_progress_and_records_its_time(tmp_path):
    result = omnidrl("synth", "pe", build=tmp_path / "build")
    assert result.returncode == 0, result.stderr
    assert "[synth] yosys generic 3.24 Executing ABC pass" in result.stderr
    path = ROOT / result.stdout.strip().splitlines()[-1].split()[1]
    report = json.loads(path.read_text())
    values = {r["metric"]: r for r in report["records"] if r["target"] == "generic"}
    assert values["elapsed"]["unit"] == "s" and values["elapsed"]["value"] >= values["synth_time"]["value"] > 0
    assert values["hierarchy_kept"]["value"] == 0
    steps = report["timings"]["generic"]["yosys_steps"]
    assert [s["step"] for s in steps][:3] == ["1", "2", "2.1"] and all(s["seconds"] >= 0 for s in steps)
    assert any("ABC" in s["what"] for s in steps)
    # the Verilog it was made from, by hash: bench/_common.synth_records tells a stale report by it
    verilog = Path(report["verilog"])
    assert report["verilog_sha256"]["generic"] == hashlib.sha256(verilog.read_bytes()).hexdigest()


def test_timeout_stops_yosys_with_one_line(tmp_path):
    before = omnidrl("synth", "pe", build=tmp_path / "build")
    assert before.returncode == 0
    path = ROOT / before.stdout.strip().splitlines()[-1].split()[1]
    report = path.read_text()
    result = omnidrl("synth", "pe", "--timeout", "0.5", build=tmp_path / "build")
    assert result.returncode == 124, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("[synth]")]
    assert len(lines) == 1 and lines[0].startswith("omnidrl synth: timeout: yosys generic stopped after"), lines
    assert "Traceback" not in result.stderr and path.read_text() == report  # the report is left alone
    bad = omnidrl("synth", "pe", "--timeout", "-3")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "omnidrl synth: error: argument --timeout: '-3' is not a number of seconds > 0"


def test_fast_abc_scripts_are_used_and_reported(tmp_path):
    path = tmp_path / "macs.v"
    path.write_text(convert(_macs(2), "top"))
    records = {r["metric"]: r["value"] for r in synth_generic(path, "top", tmp_path / "w", abc="fast")}
    assert records["abc_fast"] == 1 and records["hierarchy_kept"] == 0 and records["area"] > 0
    script = (tmp_path / "w" / "generic.ys").read_text()
    assert "abc -script +strash;dretime;map -g cmos2" in script and "abc -script +strash;dretime;map -liberty" in script


# Two output ports of `product` carry the same bits. Yosys keeps `ev` as the net its cells drive
# (of two output ports, the name that sorts first) and makes p[15] and p[3] copies of it: one connection whose left side is two slices of p, which
# a plain write_verilog writes as `assign { p[15], p[3] } = ...`. The top registers p[15], the
# multiplier's slowest bit, so the critical path runs through that connection.
_ALIASED_PORTS = """
module product(input [7:0] a, input [7:0] b, output [15:0] p, output [2:0] ev);
  wire [15:0] prod = a * b;
  assign p = prod;
  assign ev = {prod[15], ^a, prod[3]};
endmodule
module top(input clk, input [7:0] a, input [7:0] b, output reg [2:0] r);
  reg [7:0] ra, rb;
  wire [2:0] ev;
  wire [15:0] p;
  product u(.a(ra), .b(rb), .p(p), .ev(ev));
  always @(posedge clk) begin ra <= a; rb <= b; r <= {p[15], ev[1], p[3]}; end
endmodule
"""


def _synth_aliased(tmp_path):
    path = tmp_path / "aliased.v"
    path.write_text(_ALIASED_PORTS)
    work = tmp_path / "work"
    return synth_generic(path, "top", work, hierarchy="keep"), work


def test_sta_times_the_path_through_a_concatenated_assign(tmp_path):
    records, work = _synth_aliased(tmp_path)
    netlist = (work / "netlist.v").read_text()
    assert "assign {" not in netlist and "assign p[15] = ev[2];" in netlist
    log = (work / "sta.log").read_text()
    assert "Error" not in log, log
    endpoint = re.search(r"^Endpoint: (\S+) ", log, re.MULTILINE)[1]
    top = netlist.split("\nmodule top(")[1]
    assert re.search(rf"DFF {re.escape(endpoint)} \(\n\s*\.CK\(clk\),\n\s*\.D\(p\[15\]\),", top), \
        f"the worst path ends at {endpoint}, not at the flip-flop of p[15]"
    values = {r["metric"]: r["value"] for r in records}
    assert values["hierarchy_kept"] == 1 and values["min_period"] > 0.5  # the multiplier, not the parity


def test_a_netlist_sta_reads_in_part_gives_no_figure(tmp_path, monkeypatch):
    """With Yosys's plain netlist writer OpenSTA rejects the concatenation: the flow stops."""
    monkeypatch.setattr(synth, "NETLIST_WRITER", "write_verilog -noattr -noexpr")
    with pytest.raises(SynthError, match="OpenSTA reported .* syntax error"):
        _synth_aliased(tmp_path)
    assert "assign { p[15], p[3] } = { ev[2], ev[0] };" in (tmp_path / "work" / "netlist.v").read_text()
