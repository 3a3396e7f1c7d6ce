"""docs/formats.md "Command stream" tables match golden.isa (fields, widths, users, ops, counters,
error codes), so the document cannot drift from the code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from golden.isa import USED_FIELDS, Counter, IsaShape, Op, TopError, command_fields

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def section_tables(title: str) -> list[list[list[str]]]:
    """The Markdown tables under the '### title' heading of the Command stream section."""
    text = DOC.read_text().split("## Command stream", 1)[1]
    part = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    tables, cur = [], []
    for line in part.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                cur.append(cells)
        elif cur:
            tables.append(cur[1:])
            cur = []
    if cur:
        tables.append(cur[1:])
    return tables


def width_of(expr: str, shape: IsaShape) -> int:
    return eval(expr, {}, {"buf_bits": shape.buf_bits, "dim_bits": shape.dim_bits,
                           "mem_addr_bits": shape.mem_addr_bits})


def test_field_table_matches_the_layout():
    rows = section_tables("Fields")[0]
    for shape in (IsaShape(k=4, buf_bits=15, dim_bits=16, mem_addr_bits=32),
                  IsaShape(k=8, buf_bits=13, dim_bits=12, mem_addr_bits=24)):
        fields = command_fields(shape)
        assert [r[0].strip("`") for r in rows] == [name for name, _ in fields]
        assert [width_of(r[1], shape) for r in rows] == [w for _, w in fields]
    for row in rows:
        users = {Op[x.strip()] for x in row[2].split(",")}
        assert users == {op for op, used in USED_FIELDS.items() if row[0].strip("`") in used}, row[0]


def test_op_counter_and_error_tables_match_the_enums():
    ops = section_tables("Ops")[0]
    assert [(r[0], int(r[1])) for r in ops] == [(o.name, o.value) for o in Op]
    counters = section_tables("COUNTERS block")[0]
    assert [(r[0], int(r[1])) for r in counters] == [(c.name, c.value) for c in Counter]
    errors = section_tables("Error codes")[0]
    assert [(r[0], int(r[1])) for r in errors] == [(e.name, e.value) for e in TopError]


def test_a_drifted_table_is_caught(monkeypatch, tmp_path):
    doc = tmp_path / "formats.md"
    doc.write_text(re.sub(r"\| `count` \| buf_bits \+ 1 \|", "| `count` | buf_bits |", DOC.read_text()))
    monkeypatch.setattr(sys.modules[__name__], "DOC", doc)
    try:
        test_field_table_matches_the_layout()
    except AssertionError:
        return
    raise AssertionError("a wrong width went unnoticed")
