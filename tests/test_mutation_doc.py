"""docs/mutation.md's tables are the recorded mutation results (bench/results/mutation.json)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package
from bench.mutation import DOC, EQUIVALENT, SCOPE, doc_tables  # noqa: E402


def test_doc_tables_are_the_recorded_results():
    files = json.loads((ROOT / "bench" / "results" / "mutation.json").read_text())["files"]
    assert list(files) == list(SCOPE)
    text = DOC.read_text()
    for name, table in doc_tables(files).items():
        assert f"<!-- {name} -->\n{table}\n<!-- /{name} -->" in text, f"docs/mutation.md: the {name} table is stale"
    for path, entry in files.items():
        if entry != "not run" and entry["score"] is not None:
            assert entry["score"] == round(entry["killed"] / (entry["killed"] + entry["survived"]), 4), path
            assert entry["mutants"] == entry["killed"] + entry["survived"] + entry["equivalent"], path


def test_every_equivalent_names_a_file_in_scope_and_a_reason():
    for (path, operator, line), reason in EQUIVALENT.items():
        assert path in SCOPE and operator.startswith("core/") and line and len(reason) > 20, (path, operator)
