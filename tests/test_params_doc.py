"""The parameter tables in docs/ are generated from the config declarations and must match them."""

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
