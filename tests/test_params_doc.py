"""The parameter tables in docs/ are generated from the config declarations and must match them."""

import re

from flows.params import DOCS, doc_sections, params_markdown, stale_sections, update_docs
from hdl.registry import BLOCKS


def test_every_embedded_parameter_table_matches_the_code():
    stale = stale_sections()
    assert not stale, f"run `omnidrl params --update-docs`; stale tables: {stale}"


def test_every_block_has_its_parameters_documented():
    documented = {block for path in DOCS.glob("*.md") for block, _ in doc_sections(path)}
    tables = {block: params_markdown(block) for block in documented}
    for name in BLOCKS:
        mine = params_markdown(name)
        assert name in documented or mine in tables.values(), f"no parameter table in docs/ for {name}"


def test_a_drifted_table_is_found_and_rewritten(tmp_path):
    doc = tmp_path / "x.md"
    good = params_markdown("pe")
    doc.write_text(f"intro\n<!-- params:pe -->\n{good.replace('0 to 2', '0 to 3')}<!-- /params -->\ntail\n")
    assert stale_sections(tmp_path) == ["x.md: pe"]
    assert update_docs(tmp_path) == [doc]
    assert doc.read_text() == f"intro\n<!-- params:pe -->\n{good}<!-- /params -->\ntail\n"
    assert stale_sections(tmp_path) == []
    assert "| `mul_stages` | 1 | an integer from 0 to 2 | paper 2, tiny 0 |" in good


# Hand-written mentions of preset values in the block documents, "`tiny` (rows 4, cols 4, ...)":
# each named parameter must have that value in that preset of the document's block.
_MENTION = re.compile(r"`(\w+)` \(((?:[a-z_]+ [\w.]+,\s+)*[a-z_]+ [\w.]+)\)")


def preset_mentions(path):
    """``(preset, {parameter: text value})`` of every such mention in the document ``path``."""
    return [(m[1], dict(item.split() for item in re.split(r",\s+", m[2]))) for m in _MENTION.finditer(path.read_text())]


def _mismatches(path) -> list[str]:
    blocks = [block for block, _ in doc_sections(path)]
    found = []
    for preset, values in preset_mentions(path):
        for block in blocks:
            cls = BLOCKS[block].config_type()
            if preset in cls.preset_names() and set(values) <= set(cls.preset(preset).to_dict()):
                real = cls.preset(preset).to_dict()
                found += [f"{path.name}: `{preset}` ({name} {text}) but {block}.{name} = {real[name]}"
                          for name, text in values.items() if str(real[name]).lower() != text.lower()]
                break
        else:
            found.append(f"{path.name}: `{preset}` ({', '.join(values)}) names no preset of {blocks}")
    return found


def test_preset_values_written_in_the_block_docs_match_the_code():
    docs = [p for p in DOCS.glob("*.md") if doc_sections(p)]
    assert sum(len(preset_mentions(p)) for p in docs) >= 5  # pe_array: 3 presets + the bench; ecim: 2
    assert [m for p in docs for m in _mismatches(p)] == []


def test_a_drifted_preset_mention_is_found(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(f"<!-- params:pe_array -->\n{params_markdown('pe_array')}<!-- /params -->\n"
                   "`tiny` (rows 4, a_depth 256, b_depth 1024)\n")
    assert _mismatches(doc) == ["x.md: `tiny` (a_depth 256) but pe_array.a_depth = 16384"]


def test_pe_array_doc_figures_follow_from_the_default_config():
    from hdl.pe_array import PEArrayConfig

    text = (DOCS / "pe_array.md").read_text()
    cfg = PEArrayConfig()
    flops = re.search(r"\(([\d,]+) flops on\s+`default`\)", text)[1]
    assert int(flops.replace(",", "")) == cfg.max_blocks ** 2  # the max_blocks^2 bitmap registers
    a, b, r, c = re.search(r"\(([\d,]+) A \+ ([\d,]+) B\s+words on (\d+) x (\d+)", text).groups()
    layer = batch = 256  # "a 256 x 256 layer at batch 256"
    assert (int(r), int(c)) == (cfg.rows, cfg.cols)
    assert int(a.replace(",", "")) == layer // cfg.rows * batch and int(b.replace(",", "")) == batch // cfg.cols * layer
