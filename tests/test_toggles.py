"""The gate-level toggle flow (``flows/toggles.py``) and its committed calibration.

* toggle counting on a hand-written VCD and on a hand-made netlist (a 2-bit counter and an
  inverter chain) simulated on Icarus, against counts worked out by hand;
* the PE's gate-level netlist replays TD3 operands with golden's results, and a wrong expected
  result fails the replay;
* the schema and the arithmetic of ``bench/results/gate_toggles.json``, which the energy model
  reads, and the figures docs/gate_toggles.md quotes from it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.toggles import E_GE_TOGGLE_J, NetlistCell, ToggleResult, cell_models, count_toggles, netlist_cells

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gate_toggles.json"

HAND_VCD = """$timescale 1ps $end
$scope module top $end
$var wire 1 ! a $end
$var wire 4 " v [3:0] $end
$scope module inner $end
$var wire 1 # a $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
x!
bxxxx "
0#
#10
0!
b0 "
1#
#20
1!
b101 "
0#
#30
1!
b111 "
#40
0!
b10 "
"""
HAND_CELLS = [NetlistCell("u_a", "INV", "a", None), NetlistCell("u_v0", "NAND2", "v", 0),
              NetlistCell("u_v1", "NAND2", "v", 1), NetlistCell("u_v2", "NAND2", "v", 2)]


def test_toggles_of_a_hand_written_vcd(tmp_path):
    vcd = tmp_path / "hand.vcd"
    vcd.write_text(HAND_VCD)
    # a: x 0 1 1(re-dumped) 0 -> 2; v: xxxx 0000 0101 0111 0010 -> bit0 2, bit1 1, bit2 2.
    # The x -> 0 steps are no toggles, and the inner scope's `a` is not the top's.
    assert count_toggles(vcd, HAND_CELLS, [(0, 40)]) == [2, 2, 1, 2]
    # Only the changes at 20 and 30 fall in the window.
    assert count_toggles(vcd, HAND_CELLS, [(15, 30)]) == [1, 1, 1, 1]
    assert count_toggles(vcd, HAND_CELLS, [(0, 5), (35, 45)]) == [1, 1, 0, 1]
    with pytest.raises(ValueError, match="not dumped"):
        count_toggles(vcd, [NetlistCell("u_b", "INV", "b", None)], [(0, 40)])


COUNTER = """module cnt(clk, q0, q1, y);
  input clk;
  output q0, q1, y;
  wire clk, q0, q1, y, n0, x1, c1, c2;
  INV u0 (
    .A(q0),
    .Y(n0)
  );
  DFF f0 (
    .CK(clk),
    .D(n0),
    .Q(q0)
  );
  XOR2 u1 (
    .A(q0),
    .B(q1),
    .Y(x1)
  );
  DFF f1 (
    .CK(clk),
    .D(x1),
    .Q(q1)
  );
  INV i0 (
    .A(q1),
    .Y(c1)
  );
  INV i1 (
    .A(c1),
    .Y(c2)
  );
  INV i2 (
    .A(c2),
    .Y(y)
  );
  initial begin
    $dumpfile("cnt.vcd");
    $dumpvars(1, cnt);
  end
endmodule
"""
BENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0;
  wire q0, q1, y;
  cnt dut(.clk(clk), .q0(q0), .q1(q1), .y(y));
  always #5 clk = ~clk;
  initial #160 $finish;
endmodule
"""


def test_counter_netlist_toggles_and_energy(tmp_path):
    """A 2-bit counter (q0 flips every edge, q1 every second) and three inverters on q1, 16
    rising edges, with the library's cell models on Icarus."""
    (tmp_path / "cnt.v").write_text(COUNTER)
    (tmp_path / "cells.v").write_text(cell_models())
    (tmp_path / "tb.v").write_text(BENCH)
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", "cnt.v", "cells.v"], cwd=tmp_path,
                   check=True)
    subprocess.run(["vvp", "-n", "sim.vvp", "-vcd"], cwd=tmp_path, check=True, capture_output=True)
    cells = netlist_cells(COUNTER)
    assert [(c.name, c.kind, c.net) for c in cells] == [
        ("u0", "INV", "n0"), ("f0", "DFF", "q0"), ("u1", "XOR2", "x1"), ("f1", "DFF", "q1"),
        ("i0", "INV", "c1"), ("i1", "INV", "c2"), ("i2", "INV", "y")]
    # data inputs driven: n0 -> f0.D; q0 -> u0, u1; x1 -> f1.D; q1 -> u1, i0; c1 -> i1; c2 -> i2; y: none
    assert [c.fanout for c in cells] == [1, 2, 1, 2, 1, 1, 0]
    counts = count_toggles(tmp_path / "cnt.vcd", cells, [(0, 160_000)])
    # q0 and its inverse every edge; q1, q0 ^ q1 (which changes on odd edges) and the chain on
    # q1 every second edge.
    assert dict(zip([c.name for c in cells], counts)) == {"u0": 16, "f0": 16, "u1": 8, "f1": 8,
                                                          "i0": 8, "i1": 8, "i2": 8}
    result = ToggleResult("cnt", "-", "-", 0.0, "hand", 16, 16, cells, counts)
    # GE areas from NanGate45 X1 cells over NAND2_X1 (0.798 um^2): INV 0.532, XOR2 1.596, DFF 4.522.
    ge = (16 + 8 + 8 + 8) * 0.532 / 0.798 + 8 * 1.596 / 0.798 + (16 + 8) * 4.522 / 0.798
    assert result.ge_toggles == pytest.approx(ge)
    assert result.energy_per_op_j == pytest.approx(ge * E_GE_TOGGLE_J / 16)
    assert result.flops == 2
    assert result.mean_fanout == pytest.approx(8 / 7)
    assert result.by_cell_type()["INV"] == pytest.approx(
        {"cells": 4, "toggles": 40, "area_ge_per_cell": 0.6667, "ge_toggles": 40 * 0.532 / 0.798,
         "energy_per_op_j": 40 * 0.532 / 0.798 * E_GE_TOGGLE_J / 16}, rel=1e-4)


def test_a_cell_outside_the_library_is_refused():
    with pytest.raises(ValueError, match="NAND3.*not in the GE library"):
        netlist_cells("  NAND3 u7 (\n    .A(a),\n    .B(b),\n    .C(c),\n    .Y(y)\n  );\n")


REPLAY = """
import json, sys
import numpy as np
from golden.bf16 import dot
from golden.traces import load_trace
from flows import toggles
from hdl.pe import PEConfig
from tb.runner import SimulationFailed
from tb.stimulus.toggles import pe_stimulus

t = load_trace()
w, x = t["dense/critic1/l2/W"], t["dense/critic1/l2/x"]
pairs = [(w[r, :12], x[c, :12]) for r, c in ((0, 0), (5, 3), (17, 200))] + [(w[3, :1], x[9, :1])]
stim = pe_stimulus("few", pairs)
assert stim.phases[0].expect == [int(dot(a, b)) for a, b in pairs]
r = toggles.replay(PEConfig.preset("tiny"), stim)
out = {"ops": r.ops, "cycles": r.cycles, "toggles": r.total_toggles, "flops": r.flops, "area": r.area_ge}
stim.phases[0].expect[1] ^= 1
try:
    toggles.replay(PEConfig.preset("tiny"), stim, tag="wrong")
    out["wrong"] = "accepted"
except SimulationFailed as exc:
    out["wrong"] = "rejected" if "differ from golden" in str(exc) else str(exc)
print("RESULT " + json.dumps(out))
"""


def test_pe_netlist_replays_td3_operands_with_golden_results(tmp_path):
    """Synthesis, netlist replay and toggle count of the tiny PE in a build folder of its own;
    the replay fails once one expected result is wrong."""
    env = dict(os.environ, AMARANTH_USE_YOSYS="builtin", OMNIDRL_BUILD=str(tmp_path),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([sys.executable, "-c", REPLAY], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    assert out["ops"] == 37 and out["wrong"] == "rejected"
    assert 37 <= out["cycles"] <= 37 + 4  # one pair per cycle at full rate, plus the latency
    assert out["toggles"] > 10 * out["ops"]  # a multiply-add switches far more than ten nets
    assert out["area"] > 1000


BLOCK_KEYS = {"config_hash": str, "area_ge": float, "ops": int, "toggles": int, "toggles_per_op": float,
              "energy_per_op_j": float, "op": str, "stimulus": str, "by_cell_type": dict}


def _results() -> dict:
    return json.loads(RESULTS.read_text())


def test_results_schema_and_arithmetic():
    doc = _results()
    assert doc["benchmark"] == "gate_toggles"
    assert isinstance(doc["date"], str) and isinstance(doc["versions"], dict)
    assert doc["energy_per_ge_toggle_j"] == pytest.approx(E_GE_TOGGLE_J)
    assert "NanGate45" in doc["energy_per_ge_toggle_source"]
    assert set(doc["blocks"]) == {"pe", "emd_enc", "ecim"}
    for block, op in (("pe", "mac"), ("emd_enc", "value"), ("ecim", "mac")):
        b = doc["blocks"][block]
        for key, kind in BLOCK_KEYS.items():
            assert isinstance(b[key], kind), f"{block}.{key} is {type(b[key]).__name__}, not {kind.__name__}"
        assert b["op"] == op and b["stimulus"] == "td3-trace"
        assert b["toggles_per_op"] == pytest.approx(b["toggles"] / b["ops"])
        assert sum(t["toggles"] for t in b["by_cell_type"].values()) == b["toggles"]
        assert sum(t["energy_per_op_j"] for t in b["by_cell_type"].values()) == pytest.approx(b["energy_per_op_j"])
        assert b["energy_per_op_j"] == pytest.approx(b["ge_toggles_per_op"] * doc["energy_per_ge_toggle_j"])
    ratio = doc["blocks"]["ecim"]["energy_per_op_j"] / doc["blocks"]["pe"]["energy_per_op_j"]
    assert doc["mfec_mac_power_ratio_gate"] == pytest.approx(ratio)
    assert doc["blocks"]["pe"]["ops"] == doc["blocks"]["ecim"]["ops"]  # the same products
    bare = doc["blocks"]["ecim"]["variants"]["td3-trace-macro-blackboxed"]
    assert bare["ops"] == doc["blocks"]["ecim"]["ops"] and bare["area_ge"] < doc["blocks"]["ecim"]["area_ge"]
    assert doc["mfec_mac_power_ratio_gate_macro_blackboxed"] == pytest.approx(
        bare["energy_per_op_j"] / doc["blocks"]["pe"]["energy_per_op_j"])


def test_energy_doc_quotes_the_recorded_figures():
    """docs/gate_toggles.md quotes the JSON's figures (pJ, three decimals)."""
    doc = _results()
    section = (ROOT / "docs" / "gate_toggles.md").read_text()
    quoted = {m[0]: float(m[1]) for m in re.findall(r"\| `(\w+)` \| [^|]*\| ([\d.]+) pJ", section)}
    assert set(quoted) == {"pe", "emd_enc", "ecim"}, quoted
    for block, value in quoted.items():
        assert value == pytest.approx(doc["blocks"][block]["energy_per_op_j"] * 1e12, abs=5e-4)
    assert f"{doc['energy_per_ge_toggle_j'] * 1e15:.3f} fJ" in section
    for block in ("pe", "emd_enc", "ecim"):
        assert f"{doc['blocks'][block]['mean_fanout']:.2f} (`{block}`)" in section, block
    for key in ("mfec_mac_power_ratio_gate", "mfec_mac_power_ratio_gate_with_clock",
                "mfec_mac_power_ratio_gate_macro_blackboxed"):
        assert f"{doc[key]:.3f}" in section, key
