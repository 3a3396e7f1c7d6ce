"""docs/formats.md against the code: its worked examples are extracted and run, its tables and
field lists compared with golden.emd and golden.transpose, so the document cannot drift.

An implementer writes a stream from the document, not from the code: a wrong field width there
(the 1-bit zero sign the codec had replaced by a 2-bit zero mode) makes incompatible streams.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from golden import emd
from golden import transpose as tp
from golden.codes import EmdDecoderError

DOC = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end >= 0 else len(DOC)]


EMD = _section("EMD bitstream")
TILE = _section("Sparse tile format")
FIELD = re.compile(r"(\w+):(\d+)=(0x[0-9A-Fa-f]+|\d+)")


def _blocks(text: str, tag: str) -> list[list[str]]:
    return [b.strip().splitlines() for b in re.findall(rf"```{tag}\n(.*?)```", text, re.S)]


def _emd_example(lines: list[str]):
    rows = {}
    fields = []
    for line in lines:
        key, _, rest = line.partition(" ")
        if key in ("format", "values", "bits"):
            rows[key] = rest.split()
            continue
        fields += [(name, int(width), int(value, 0)) for name, width, value in FIELD.findall(rest)]
    opts = dict(kv.split("=") for kv in rows["format"])
    fmt = emd.EmdFormat(**{k: (v == "true") if k == "sparse" else int(v) for k, v in opts.items()})
    values = np.array([int(v, 16) for v in rows["values"]], np.uint16)
    return fmt, values, fields, int(rows["bits"][0])


EMD_EXAMPLES = _blocks(EMD, "emd-example")


def test_emd_document_has_its_examples():
    assert len(EMD_EXAMPLES) >= 3


@pytest.mark.parametrize("lines", EMD_EXAMPLES, ids=lambda lines: lines[1].split(None, 1)[1])
def test_emd_worked_example_is_what_the_codec_writes(lines):
    fmt, values, fields, bits = _emd_example(lines)
    vals, widths = emd.encode_fields(values, fmt)
    keep = widths > 0
    assert [(w, v) for _, w, v in fields] == list(zip(widths[keep].tolist(), vals[keep].tolist()))
    assert sum(w for _, w, _ in fields) == bits == emd.encoded_bits(values, fmt)
    assert np.array_equal(emd.decode(emd.encode(values, fmt, 32), fmt, 32), values)


def _grammar(name: str) -> list[tuple[str, str, bool]]:
    """``name := a:1 b:8 [c:2]`` of the Stream block -> [(field, width, optional)]."""
    line = re.search(rf"^{name}\s+:=\s+(.*?)(?:\s{{2,}}|$)", EMD, re.M).group(1)
    return [(f, w, tok.startswith("[")) for tok in line.split() for f, w in [tok.strip("[]").split(":")]]


def test_emd_header_and_terminator_grammar_match_the_examples():
    examples = [_emd_example(lines) for lines in EMD_EXAMPLES]
    header = _grammar("header")
    sparse_header = [(n, str(w)) for n, w, _ in examples[0][2][:3]]  # example 1 is a sparse group
    assert [(n, w) for n, w, _ in header] == sparse_header
    dense = [(n, str(w)) for n, w, _ in examples[2][2][:2]]  # example 3 starts with a dense group
    assert [(n, w) for n, w, optional in header if not optional] == dense
    fmt = examples[0][0]
    term = _grammar("terminator")
    assert [w for _, w, _ in term][:2] == ["1", "8"] and term[2][:2] == ("count", "clog2(G)")
    end = [f for lines in EMD_EXAMPLES[:1] for line in lines if line.startswith("end")
           for f in FIELD.findall(line)]
    assert [int(w) for _, w, _ in end] == [1, 8, math.ceil(math.log2(fmt.group))] == [1, 8, fmt.count_bits]


def test_emd_parameter_table_matches_emd_format():
    rows = re.findall(r"^\| `(\w+)`(?: \(`(\w+)`\))? \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", EMD, re.M)
    table = {field or short: (rng.strip(), default.strip()) for short, field, rng, default in rows}
    params = {r["name"]: r for r in emd.EmdFormat.parameter_table()}
    assert set(table) == set(params)
    for name, (rng, default) in table.items():
        p = params[name]
        assert default.split()[0] == (str(p["default"]).lower()), name
        if p["type"] == "bool":
            assert rng == "bool"
            continue
        if rng.startswith("one of"):  # a parameter with choices, listed as the code lists them
            assert rng == p["allowed"], name
            continue
        lo = int(re.match(r"(?:power of two, )?(\d+)\.\.", rng).group(1))
        assert f"from {lo} to" in p["allowed"], name
        assert ("power of two" in rng) == ("power of two" in p["allowed"]), name
        hi_text = re.match(r"(?:power of two, )?\d+\.\.(\S+)", rng).group(1)
        if hi_text.isdigit():
            assert p["allowed"].endswith(f"to {hi_text}"), name
    for d in range(2, 6):  # hi's range 0..2^D-2 is a cross-field rule
        emd.EmdFormat(delta_bits=d, hi=2 ** d - 2)
        with pytest.raises(Exception, match="hi"):
            emd.EmdFormat(delta_bits=d, hi=2 ** d - 1)


def test_emd_error_names_are_the_decoder_codes():
    named = re.findall(r"`([A-Z_]+)`", EMD[EMD.index("### Decoding, errors"):])
    assert set(named) - {"ESC"} == {c.name for c in EmdDecoderError if c.name != "NONE"}


def test_emd_document_has_no_single_bit_zero_sign():
    assert "zsign" not in DOC and "55 bits" not in DOC


# ----------------------------------------------------------------------------- sparse tiles

def test_tile_parameters_and_payload_widths_match_golden():
    defaults = dict(re.findall(r"\*\*(\w+)\*\* \(default (\d+)\)", TILE))
    assert {k: int(v) for k, v in defaults.items()} == {r["name"]: r["default"] for r in tp.TileFormat.parameter_table()}
    widths = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", TILE, re.M))
    assert set(widths) == {"data", "first", "last"} and widths["first"] == widths["last"] == "1"
    for tile in (2, 4, 16, 32):
        for lanes in (1, 2, 8, 64):
            doc_width = eval(widths["data"], {"__builtins__": {}}, {"max": max, "tile": tile, "lanes": lanes})
            assert doc_width == tp.beat_width(tile, lanes)


def _beats(text: str) -> list[tp.Beat]:
    return [tp.Beat(**{k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9A-Fa-f]+|\d+)", beat)})
            for beat in text.split("|")]


@pytest.mark.parametrize("lines", _blocks(TILE, "tile-example"))
def test_tile_worked_example_is_what_golden_writes(lines):
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in lines}
    side, lanes = int(rows["tile"]), int(rows["lanes"])
    dense = np.zeros((side, side), np.uint16)
    for r, c, v in re.findall(r"\((\d+),(\d+)\)=(0x[0-9A-Fa-f]+)", rows["stored"]):
        dense[int(r), int(c)] = int(v, 16)
    tile = tp.pack(dense)
    assert tp.tile_to_beats(tile, lanes) == _beats(rows["beats"])
    assert tp.tile_to_beats(tp.transpose_packed(tile), lanes) == _beats(rows["transposed"])
    assert np.array_equal(tp.unpack(tp.beats_to_tiles(_beats(rows["transposed"]), side, lanes)[0]), dense.T)
