"""Energy per operation from our own gate-level netlists: toggles counted per cell.

The route, for one block configuration and one stimulus:

1. **Netlist.** ``omnidrl synth`` (:func:`flows.synth.synthesize`, generic target) maps the block
   onto the GE cell library of :mod:`flows.liberty` and writes ``netlist.v`` (Yosys
   ``write_verilog`` of the mapped design) into its work folder; the same run gives the GE area.
2. **Simulation model.** That netlist, Verilog models of the library's cells written from the
   same table (:data:`flows.liberty.CELLS`), and the RTL of the black-boxed memories (they are
   no part of the netlist, but the logic around them needs their data) go into one file, whose
   top module dumps its own nets to ``toggles.vcd``.
3. **Replay.** cocotb on Icarus Verilog drives the netlist with the block's stimulus through the
   project's stream drivers (``tb/gate_replay.py``) and compares every output beat with the
   golden model's; a mismatch fails the run, so a calibration always runs the real function.
4. **Toggles.** The VCD (read with pyvcd) gives every net's settled value per simulation time
   step; a toggle is a change between 0 and 1 of a cell's output net inside the measured window.
   Only cells of the netlist count: the black-boxed SRAMs' RTL is simulated but never counted.
5. **Energy.** ``E = sum over cells of toggles x area_GE(cell) x E_GE`` with the energy of one
   gate-equivalent toggle :data:`E_GE_TOGGLE_J` (derivation in :data:`E_GE_TOGGLE_SOURCE`). The
   flip-flops' clock pins switch every cycle whatever the data; their energy is reported apart
   (:data:`CLOCK_GE_PER_FLOP_EDGE`).

Why Icarus and a VCD: the netlist is plain structural Verilog that Icarus compiles in a second
without a C++ build, the stream drivers and scoreboards of the cocotb tests work unchanged, and
a VCD holds settled values per time step, which is exactly the zero-delay toggle count (no
glitches; see ``docs/gate_toggles.md``). Verilator's ``--coverage-toggle``
would need a C++ build per netlist and counts every internal signal of every cell instance;
Yosys ``sim`` cannot answer a handshake, and the ECIM input waits for the unit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from hdl.config import BlockConfig

from .blackbox import _INSTANCE, _MODULE_BLOCK, check_in_verilog
from .generate import BUILD, artefact_dir, generate_verilog
from .liberty import CELLS

__all__ = ["E_GE_TOGGLE_J", "E_GE_TOGGLE_SOURCE", "CLOCK_GE_PER_FLOP_EDGE", "VCD_NAME", "NetlistCell",
           "Stimulus", "Phase", "ToggleResult", "cell_models", "netlist_cells", "gate_netlist",
           "write_gate_model", "count_toggles", "replay", "measure"]

# -- the energy of one gate-equivalent toggle -------------------------------------------------
# A NAND2_X1 output driving two NAND2 inputs and the wire between them, in NanGate45 (the library
# our GE areas come from), scaled to 28 nm. Every input is named in E_GE_TOGGLE_SOURCE.
_NAND2_PIN_FF = (1.599032 + 1.664199) / 2   # NanGate45 typical: NAND2_X1 A1 / A2 capacitance
_SELF_OVER_INPUT = 2 / (4 / 3)              # logical effort: NAND2 parasitic p = 2, input g = 4/3 (C_inv units)
_FANOUT = 2
_WIRE_FF = 0.1774 * 3.9394                  # NanGate45 default wire load 5K_hvratio_1_1, fanout 2
_C45_FF = _NAND2_PIN_FF * (_SELF_OVER_INPUT + _FANOUT) + _WIRE_FF
_NODE_SCALE = 28 / 45                       # capacitance scales with the feature size
_VDD_28 = 0.9                               # V, nominal core supply of 28 nm (also Horowitz's table)
#: energy of one toggle (one 0->1 or 1->0 transition) of a 1-GE cell's output, in joules
E_GE_TOGGLE_J = 0.5 * _C45_FF * _NODE_SCALE * 1e-15 * _VDD_28 ** 2
E_GE_TOGGLE_SOURCE = (
    f"1/2 C V^2 per transition of a NAND2 (1 GE) output with fan-out {_FANOUT}: C = self "
    f"{_SELF_OVER_INPUT:.2f} x C_in (logical effort, Sutherland/Sproull/Harris 1999: NAND2 parasitic "
    f"delay 2, logical effort 4/3) + {_FANOUT} x C_in + wire; C_in = {_NAND2_PIN_FF:.3f} fF (NanGate45 "
    f"Open Cell Library typical, NAND2_X1 A1 1.599 / A2 1.664 fF), wire = 0.1774 fF x 3.9394 (the "
    f"library's default wire load 5K_hvratio_1_1 at fan-out 2) = {_WIRE_FF:.3f} fF; C(45 nm) = "
    f"{_C45_FF:.2f} fF, scaled by 28/45 to {_C45_FF * _NODE_SCALE:.2f} fF at 28 nm, V = {_VDD_28} V "
    f"(nominal 28 nm core supply, the voltage of Horowitz's ISSCC 2014 table): "
    f"{E_GE_TOGGLE_J * 1e15:.3f} fJ. A cell of A GE costs A times this per output toggle.")
#: GE toggles charged per flip-flop per clock edge (two edges a cycle): its clock pin plus the
#: clock inverters inside the flop, taken as one 1-GE load (an assumption, reported apart)
CLOCK_GE_PER_FLOP_EDGE = 1.0

VCD_NAME = "toggles.vcd"
_FLOP = "DFF"


# -- the netlist and its cells ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetlistCell:
    """One library cell instance of a mapped netlist and the net its output drives."""

    name: str
    kind: str
    net: str          # the net's name as the netlist writes it (without the backslash)
    bit: int | None   # the bit of a vector net, None for a scalar
    fanout: int = 0   # cell data inputs the net drives (clock pins and black boxes not counted)


_CELL = re.compile(r"^[ \t]+(?P<kind>[A-Z][A-Z0-9]*)[ \t]+(?P<name>\S+)[ \t]*\((?P<pins>.*?)\);", re.M | re.S)
_PIN = re.compile(r"\.(?P<pin>\w+)\((?P<expr>[^()]*)\)")
_NET = re.compile(r"^\\?(?P<net>\S+?)\s*(?:\[(?P<bit>\d+)\])?$")


def netlist_cells(text: str) -> list[NetlistCell]:
    """Every library cell of the Verilog netlist ``text`` with its output net (``Y``, or ``Q`` of
    the flip-flop) and that net's fan-out. A cell of a type the library does not have is an
    error."""
    outputs = {kind: "Q" if function is None else "Y" for kind, (_, function, _, _) in CELLS.items()}
    cells, loads = [], {}
    for m in _CELL.finditer(text):
        kind = m["kind"]
        if kind not in outputs:
            raise ValueError(f"netlist cell {m['name']} has type {kind}, which is not in the GE library "
                             f"({', '.join(outputs)})")
        pins = {p["pin"]: p["expr"].strip() for p in _PIN.finditer(m["pins"])}
        net = _NET.match(pins[outputs[kind]])
        if net is None:
            raise ValueError(f"cannot read the output net {pins[outputs[kind]]!r} of cell {m['name']}")
        cells.append(NetlistCell(m["name"], kind, net["net"], None if net["bit"] is None else int(net["bit"])))
        for pin, expr in pins.items():
            load = _NET.match(expr) if pin not in (outputs[kind], "CK") else None
            if load is not None:
                key = (load["net"], None if load["bit"] is None else int(load["bit"]))
                loads[key] = loads.get(key, 0) + 1
    return [dataclasses.replace(c, fanout=loads.get((c.net, c.bit), 0)) for c in cells]


def cell_models() -> str:
    """Verilog models of the GE library's cells, written from :data:`flows.liberty.CELLS` (the
    Liberty functions with ``!`` read as ``~``). The flip-flop starts at 0, not x: the netlist
    has lost the registers' ``init`` values, and the replay resets the design before it measures."""
    out = ["// Simulation models of the GE library (flows/liberty.py), written by flows/toggles.py."]
    for kind, (_, function, pins, _) in CELLS.items():
        if function is None:
            out.append(f"module {kind}(input D, input CK, output reg Q);\n  initial Q = 1'b0;\n"
                       f"  always @(posedge CK) Q <= D;\nendmodule")
        else:
            inputs = ", ".join(f"input {p}" for p in pins)
            out.append(f"module {kind}({inputs}, output Y);\n  assign Y = {function.replace('!', '~')};\nendmodule")
    return "\n".join(out) + "\n"


def _log(msg: str) -> None:
    print(f"[toggles] {msg}", file=sys.stderr, flush=True)


def gate_netlist(cfg: BlockConfig) -> tuple[Path, dict]:
    """The mapped netlist of ``cfg`` and its synthesis report, synthesized when missing.

    The netlist is the one ``omnidrl synth`` writes (generic target), so its cells are the ones
    its GE area counts.
    """
    from .synth import load_report, report_path, synthesize

    work = artefact_dir(cfg) / f"synth-generic-{cfg.full_hash()}"
    path = report_path(cfg)
    fresh = (path.exists() and (work / "netlist.v").exists()
             and any(r["target"] == "generic" for r in load_report(path)["records"]))
    if not fresh:
        _log(f"{cfg.BLOCK} ({cfg.full_hash()}): synthesizing the gate-level netlist")
        path = synthesize(cfg, "generic")
    report = load_report(path)
    if any(r["metric"] == "hierarchy_kept" and r["value"] for r in report["records"] if r["target"] == "generic"):
        raise ValueError(f"{cfg.BLOCK}: the netlist keeps its hierarchy; the toggle flow reads flat netlists only")
    return work / "netlist.v", report


def _module_texts(text: str) -> dict[str, str]:
    return {m["name"].lstrip("\\"): m[0] for m in _MODULE_BLOCK.finditer(text)}


def _blackbox_rtl(rtl: str, names: list[str]) -> str:
    """The RTL of the black boxes ``names`` and of every module they instantiate."""
    modules = _module_texts(rtl)
    check_in_verilog(tuple(names), rtl, "the generated Verilog")
    wanted, out = list(names), []
    while wanted:
        name = wanted.pop()
        if name in out:
            continue
        out.append(name)
        wanted += [m["module"] for m in _INSTANCE.finditer(modules[name]) if m["module"] in modules]
    return "\n".join(modules[n] for n in sorted(out)) + "\n"


def write_gate_model(cfg: BlockConfig) -> tuple[Path, list[NetlistCell], dict]:
    """Write the simulation model of ``cfg``'s netlist; returns its path, the netlist's cells and
    the synthesis report.

    The file holds the netlist (its top module dumps its own nets, one level, to
    :data:`VCD_NAME` in the simulator's working folder), the cell models and the RTL of the
    black boxes. It is named by the full hash, so each netlist gets its own simulator build.
    """
    netlist, report = gate_netlist(cfg)
    text = netlist.read_text()
    top = cfg.BLOCK
    head = re.search(rf"^module {re.escape(top)}\(.*?\);\n", text, re.M | re.S)
    end = text.find("endmodule", head.end()) if head else -1
    if end < 0:
        raise ValueError(f"{netlist}: no top module {top}")
    dump = f'  initial begin\n    $dumpfile("{VCD_NAME}");\n    $dumpvars(1, {top});\n  end\n'
    text = text[:end] + dump + text[end:]
    blackboxes = report.get("blackboxes", {}).get("generic", [])
    parts = [text, cell_models()]
    if blackboxes:
        parts.append("// RTL of the black boxes (simulated, never counted)\n"
                     + _blackbox_rtl(generate_verilog(cfg).read_text(), blackboxes))
    out_dir = artefact_dir(cfg) / f"gates-{cfg.full_hash()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{top}-{cfg.full_hash()}-gates.v"
    combined = "\n".join(parts)
    if not path.exists() or path.read_text() != combined:
        path.write_text(combined)
    return path, netlist_cells(netlist.read_text()), report


# -- counting --------------------------------------------------------------------------------
def _vcd_declarations(vcd: Path, want: dict) -> tuple[dict, dict]:
    """Read the declarations of ``vcd`` with pyvcd: for the variables of the first scope that
    declares any, ``id code -> [(bit position from the LSB, cell indices)]`` for the nets in
    ``want`` (``(net, bit) -> cell indices``; what is found is removed) and ``id code -> width``."""
    from vcd.reader import TokenKind, tokenize

    watch: dict[str, list[tuple[int, list[int]]]] = {}
    width: dict[str, int] = {}
    scopes: list[str] = []
    target: list[str] | None = None
    with open(vcd, "rb") as f:
        for tok in tokenize(f):
            kind = tok.kind
            if kind is TokenKind.SCOPE:
                scopes.append(tok.data.ident)
            elif kind is TokenKind.UPSCOPE:
                scopes.pop()
            elif kind is TokenKind.VAR and (target is None or scopes == target):
                target = list(scopes)
                var = tok.data
                name, lo = var.reference.lstrip("\\"), 0
                if var.bit_index is not None:  # a vector: (msb, lsb) or one bit
                    bits = var.bit_index if isinstance(var.bit_index, tuple) else (var.bit_index, var.bit_index)
                    lo = min(bits)
                width[var.id_code] = var.size
                for pos in range(var.size):
                    key = (name, None if var.bit_index is None else lo + pos)
                    if key not in want and var.size == 1:
                        key = (name, None)
                    if key in want:
                        watch.setdefault(var.id_code, []).append((pos, want.pop(key)))
            elif kind is TokenKind.ENDDEFINITIONS:
                break
    return watch, width


def count_toggles(vcd: Path, cells: list[NetlistCell], windows: list[tuple[int, int]]) -> list[int]:
    """Toggles of each cell's output net in the VCD ``vcd``, counted at times ``t`` with
    ``t0 <= t <= t1`` for one of ``windows`` (VCD time units).

    A toggle is a change of the net's settled value between 0 and 1 from one dumped time step
    to a later one; changes from or to x/z are not toggles. Only the variables of the first
    scope that declares any are read (the netlist's top module: it dumps one level).

    The declarations are read with pyvcd; the value changes (the simple grammar of IEEE 1364
    section 18.2: ``#time``, ``<0|1|x|z><id>``, ``b<bits> <id>``, ``r<real> <id>`` and
    ``$keyword ... $end``) are split here, about ten times faster than pyvcd's tokenizer on the
    tens of megabytes a netlist replay dumps.
    """
    want: dict[tuple[str, int | None], list[int]] = {}
    for k, c in enumerate(cells):
        want.setdefault((c.net, c.bit), []).append(k)
    watch, width = _vcd_declarations(vcd, want)
    if want:
        missing = ", ".join(f"{n}[{b}]" if b is not None else n for n, b in list(want)[:5])
        raise ValueError(f"{vcd}: {len(want)} cell output nets were not dumped (first: {missing})")
    counts = [0] * len(cells)
    text = Path(vcd).read_text()
    body = text[text.index("$end", text.index("$enddefinitions")) + 4:]
    last: dict[str, str] = {}
    inside, tokens = False, iter(body.split())
    for tok in tokens:
        first = tok[0]
        if first == "#":
            now = int(tok[1:])
            inside = any(t0 <= now <= t1 for t0, t1 in windows)
            continue
        if first == "$":
            if tok == "$comment":
                for tok in tokens:
                    if tok == "$end":
                        break
            continue  # $dumpvars, $dumpall, $dumpon, $dumpoff, $end
        if first in "bBrR":
            value, code = tok[1:], next(tokens)
            if first in "rR" or code not in watch:
                continue
            value = value.rjust(width[code], "0" if value[0] == "1" else value[0])
        else:
            value, code = first, tok[1:]
            if code not in watch:
                continue
        old = last.get(code)
        last[code] = value
        if not inside or old is None or old == value:
            continue
        for pos, ks in watch[code]:
            a, b = old[-1 - pos], value[-1 - pos]
            if a != b and a in "01" and b in "01":
                for k in ks:
                    counts[k] += 1
    return counts


# -- stimulus and replay -----------------------------------------------------------------------
@dataclasses.dataclass
class Phase:
    """Beats sent into input stream ``port``; with ``out``, the beats expected on that output
    stream (in order, compared exactly). ``measure``: count this phase's toggles."""

    port: str
    beats: list[int]
    out: str | None = None
    expect: list[int] = dataclasses.field(default_factory=list)
    measure: bool = True


@dataclasses.dataclass
class Stimulus:
    """A named stimulus: its phases and the number of operations its measured phases perform."""

    name: str
    phases: list[Phase]
    ops: int
    note: str = ""

    def __post_init__(self):
        if self.ops <= 0:
            raise ValueError(f"stimulus {self.name!r} performs no operation")

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "phases": [dataclasses.asdict(p) for p in self.phases]})


@dataclasses.dataclass
class ToggleResult:
    """Toggles of one netlist on one stimulus."""

    block: str
    config_hash: str
    full_hash: str
    area_ge: float
    stimulus: str
    ops: int
    cycles: int
    cells: list[NetlistCell]
    toggles: list[int]
    note: str = ""

    @property
    def flops(self) -> int:
        return sum(c.kind == _FLOP for c in self.cells)

    def by_cell_type(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for c, t in zip(self.cells, self.toggles):
            row = out.setdefault(c.kind, {"cells": 0, "toggles": 0})
            row["cells"] += 1
            row["toggles"] += t
        for kind, row in out.items():
            row["area_ge_per_cell"] = round(CELLS[kind][0], 4)
            row["ge_toggles"] = row["toggles"] * CELLS[kind][0]
            row["energy_per_op_j"] = row["ge_toggles"] * E_GE_TOGGLE_J / self.ops
        return dict(sorted(out.items()))

    @property
    def mean_fanout(self) -> float:
        """Cell data inputs per cell output net (the energy per GE toggle assumes 2)."""
        return sum(c.fanout for c in self.cells) / len(self.cells)

    @property
    def total_toggles(self) -> int:
        return sum(self.toggles)

    @property
    def ge_toggles(self) -> float:
        return sum(t * CELLS[c.kind][0] for c, t in zip(self.cells, self.toggles))

    @property
    def energy_per_op_j(self) -> float:
        """Switching energy of the logic per operation (clock pins apart)."""
        return self.ge_toggles * E_GE_TOGGLE_J / self.ops

    @property
    def clock_energy_per_op_j(self) -> float:
        """The flip-flops' clock pins over the measured cycles, per operation."""
        return 2 * CLOCK_GE_PER_FLOP_EDGE * self.flops * self.cycles * E_GE_TOGGLE_J / self.ops

    def summary(self, op: str) -> dict:
        """The figures of the results file (``bench/results/gate_toggles.json``, one block)."""
        by_type = self.by_cell_type()
        return {"config_hash": self.config_hash, "full_hash": self.full_hash, "area_ge": self.area_ge,
                "ops": self.ops, "op": op, "stimulus": self.stimulus, "cycles": self.cycles,
                "cells": len(self.cells), "flip_flops": self.flops, "mean_fanout": round(self.mean_fanout, 3),
                "toggles": self.total_toggles, "toggles_per_op": self.total_toggles / self.ops,
                "ge_toggles_per_op": self.ge_toggles / self.ops,
                "energy_per_op_j": self.energy_per_op_j,
                "clock_energy_per_op_j": self.clock_energy_per_op_j,
                "energy_per_op_with_clock_j": self.energy_per_op_j + self.clock_energy_per_op_j,
                "activity_per_cell_cycle": self.total_toggles / (len(self.cells) * max(1, self.cycles)),
                "note": self.note,
                "by_cell_type": by_type}


def replay(cfg: BlockConfig, stimulus: Stimulus, *, tag: str | None = None) -> ToggleResult:
    """Run ``stimulus`` through ``cfg``'s gate-level netlist on Icarus and count its toggles.

    Raises :class:`tb.runner.SimulationFailed` when an output beat differs from the expected one
    (or one is missing): the figures then do not describe the block's function.
    """
    from tb.runner import run_cocotb_verilog

    model, cells, report = write_gate_model(cfg)
    area = next(r["value"] for r in report["records"] if r["target"] == "generic" and r["metric"] == "area")
    tag = tag or stimulus.name
    run_dir = BUILD / "sim" / "icarus" / model.stem / "runs" / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    spec, result = run_dir / "stimulus.json", run_dir / "replay.json"
    spec.write_text(stimulus.to_json())
    result.unlink(missing_ok=True)
    (run_dir / VCD_NAME).unlink(missing_ok=True)
    _log(f"{cfg.BLOCK}: replaying {stimulus.name} ({stimulus.ops} ops) on the netlist of {len(cells)} cells")
    # cocotb's runner passes vvp `-none` (no dumping) without waves; SIM_CMD_SUFFIX (a cocotb
    # setting, read by the runner) puts `-vcd` after it, and the last one wins.
    suffix = os.environ.get("SIM_CMD_SUFFIX")
    os.environ["SIM_CMD_SUFFIX"] = f"{suffix or ''} -vcd".strip()
    try:
        run_cocotb_verilog(model, cfg.BLOCK, "icarus", test_module="tb.gate_replay", tag=tag, waves=False,
                           extra_env={"REPLAY_STIMULUS": str(spec), "REPLAY_RESULT": str(result)})
    finally:
        if suffix is None:
            del os.environ["SIM_CMD_SUFFIX"]
        else:
            os.environ["SIM_CMD_SUFFIX"] = suffix
    done = json.loads(result.read_text())
    windows = [(w["t0"], w["t1"]) for w in done["windows"]]
    _log(f"{cfg.BLOCK}: outputs equal golden; counting toggles in {VCD_NAME}")
    toggles = count_toggles(run_dir / VCD_NAME, cells, windows)
    return ToggleResult(cfg.BLOCK, cfg.config_hash(), cfg.full_hash(), float(area), stimulus.name, stimulus.ops,
                        sum(w["cycles"] for w in done["windows"]), cells, toggles, stimulus.note)


def measure(cfg: BlockConfig, stimulus: Stimulus, op: str, *, tag: str | None = None) -> dict:
    """:func:`replay` and return the result's :meth:`ToggleResult.summary`."""
    return replay(cfg, stimulus, tag=tag).summary(op)
