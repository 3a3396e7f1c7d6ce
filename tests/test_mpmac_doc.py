"""docs/mpmac.md against the code and the data: the beat layout, the ports, the error codes, the
worked examples (run through the golden model) and the area table (against the committed
golden/data/mpmac_area.json and bench/results/mpmac_area.json), so the page cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from amaranth import Shape

from golden.codes import MpMacError
from golden.mpmac import AREA_TABLE, MAX_BITS, Beat, beat_steps, load_area_table
from hdl.mpmac import MpMac, MpMacConfig, beat_layout

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "mpmac.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end >= 0 else len(DOC)]


def _table(text: str, header: str) -> list[list[str]]:
    """Rows (cells stripped of spaces and backticks) of the Markdown table starting at ``header``."""
    lines = text[text.index(header):].split("\n\n", 1)[0].splitlines()[2:]
    return [[c.strip().strip("`") for c in line.strip().strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("cfg", [MpMacConfig(), MpMacConfig.preset("tiny"),
                                 MpMacConfig(lanes=3, max_w_bits=2, max_a_bits=5, acc_bits=12)])
def test_beat_fields_match_the_layout(cfg):
    rows = _table(_section("Ports"), "| field | bits | meaning |")
    layout = beat_layout(cfg)
    assert [r[0] for r in rows] == list(layout.members), "field names or order differ"
    for name, bits, _ in rows:
        width = eval(bits.replace(" x ", " * "), {}, {k: getattr(cfg, k) for k in ("lanes", "max_w_bits", "max_a_bits")})
        assert width == Shape.cast(layout.members[name]).width, f"{name}: doc says {bits}"


def test_ports_match_the_component():
    cfg = MpMacConfig.preset("tiny")
    dut = MpMac(cfg)
    dut._MustUse__silence = True
    rows = _table(_section("Ports"), "| port | direction | payload / width | meaning |")
    members = dut.signature.members
    assert [r[0] for r in rows] == list(members)
    assert re.search(rf"MpMacError`? \({Shape.cast(MpMacError).width} bits\)", dict((r[0], r[2]) for r in rows)["err_code"])
    assert dict((r[0], r[2]) for r in rows)["err_count"] == str(Shape.cast(members["err_count"].shape).width)


def test_error_codes_match_the_enum():
    rows = _table(_section("Errors"), "| code | value | the beat ... |")
    assert [(r[0], int(r[1])) for r in rows] == [(c.name, c.value) for c in MpMacError]


def _examples() -> list[dict]:
    out = []
    for block in re.findall(r"```mpmac-example\n(.*?)```", DOC, re.S):
        rows = {line.split()[0]: line.split()[1:] for line in block.strip().splitlines()}
        out.append(rows)
    return out


def test_worked_examples_follow_the_golden_model():
    examples = _examples()
    assert len(examples) >= 2
    for ex in examples:
        lanes = int(ex["lanes"][0])
        w = [int(v) for v in ex["w"][:lanes]]
        a = [int(v) for v in ex["a"][:lanes]]
        w_bits, a_bits, signed = int(ex["w"][lanes + 1]), int(ex["a"][lanes + 1]), ex["a"][lanes + 2] == "signed"
        steps = beat_steps(Beat.make(w, a, w_bits, a_bits, signed))
        planes = [(int(k), int(p)) for k, p in re.findall(r"k=(\d+): P=(-?\d+)", " ".join(ex["planes"]))]
        assert planes == [(k, p) for k, p, _ in steps]
        assert [int(v) for v in ex["horner"]] == [s for _, _, s in steps]
        assert int(ex["sum"][0]) == steps[-1][2] == sum(x * y for x, y in zip(w, a))


def test_area_table_matches_the_data():
    section = _section("Area per precision pair")
    table = load_area_table()
    doc = json.loads(AREA_TABLE.read_text())
    header = "| w \\ a | " + " | ".join(str(a) for a in range(1, MAX_BITS + 1)) + " |"
    rows = _table(section, header)
    assert [int(r[0]) for r in rows] == list(range(1, MAX_BITS + 1))
    for r in rows:
        w = int(r[0])
        assert r[1:] == [f"{table[(w, a)]['area_ge']:,.0f}" for a in range(1, MAX_BITS + 1)], f"row w={w}"
    assert f"lanes = {doc['lanes']}" in section
    bench = json.loads((ROOT / "bench" / "results" / "mpmac_area.json").read_text())
    runtime = bench["runtime_instance"]
    assert f"{runtime['area_ge']:,.1f} GE" in section and f"{runtime['flip_flops']} flip-flops" in section
    assert f"{bench['dot_length']} elements" in section
    assert all(p["area_ge"] == table[(p["w_bits"], p["a_bits"])]["area_ge"] for p in bench["pairs"])


def test_results_section_matches_the_data():
    text = (ROOT / "docs" / "results.md").read_text()
    start = text.index("\n## Mixed-precision integer MAC")
    section = text[start:text.index("\n## ", start + 1)]
    table = load_area_table()
    rows = _table(section, "| w x a bits |")
    assert len(rows) >= 4
    for pair, area, flops, path, cycles, per_cycle, ge_per in rows:
        w, a = (int(v) for v in pair.split(" x "))
        e = table[(w, a)]
        assert (area, flops, path, int(cycles)) == (f"{e['area_ge']:,.0f}", str(e["flip_flops"]),
                                                    f"{e['critical_path_ns']:.2f}", e["cycles_per_dot"]), pair
        assert float(per_cycle) == doc_lanes() / a and ge_per == f"{e['area_ge'] * a / doc_lanes():,.0f}", pair
    bench = json.loads((ROOT / "bench" / "results" / "mpmac_area.json").read_text())
    assert f"costs {bench['runtime_instance']['area_ge']:,.0f} GE" in section
    for name in ("default", "paper"):
        p = bench["presets"][name]
        assert f"{p['area_ge']:,.0f} GE at {p['critical_path_ns']:.2f} ns" in section, name


def doc_lanes() -> int:
    return json.loads(AREA_TABLE.read_text())["lanes"]
