"""The worked examples of docs/building.md run here, in order, so the guide cannot drift."""

from flows.generate import ROOT


def test_building_guide_examples_run():
    text = (ROOT / "docs" / "building.md").read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert len(blocks) == 3, "docs/building.md should hold the block, its test and the top"
    namespace: dict = {}
    for n, code in enumerate(blocks):
        exec(compile(code, f"docs/building.md (example {n + 1})", "exec"), namespace)
    # The examples' own assertions ran; check that the pieces they promise exist.
    assert namespace["find_blackboxes"](namespace["LoadPath"](namespace["cfg"]), "load_path") == ("load_path.buf",)
    assert namespace["RounderConfig"](lanes=8).lanes == 8
