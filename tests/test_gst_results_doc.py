"""The 300k GST result tables of docs/results.md and docs/td3.md quote bench/results/gst_vs_pruning_300k.json.

The tables are written by hand (their labels explain each method); every number in them is
checked here against the recorded report, so a re-run or a new method cannot leave them stale.
"""

import json
import re
from pathlib import Path

import pytest

from bench.gst_vs_pruning import BASELINES, METHODS

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "results" / "gst_vs_pruning_300k.json"


@pytest.fixture(scope="module")
def report():
    doc = json.loads(REPORT.read_text())
    runs = {(r["env"], r["method"], r["seed"]): r for r in doc["runs"]}
    means = {(m["env"], m["method"]): m for m in doc["means"]}
    verdict = {(v["env"], v["method"]): v for v in doc["verdict"]}
    return runs, means, verdict


def _tables(text: str, header: re.Pattern) -> list[tuple[str, list[str], list[list[str]], str]]:
    """Every Markdown table whose header line matches ``header``: (its first header cell, its
    header cells, its body rows as cells with ``**`` removed, the text above it)."""
    def cells(row: str) -> list[str]:
        return [c.strip().replace("**", "") for c in row.strip().strip("|").split("|")]

    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("|") and header.search(line):
            body = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                body.append(cells(row))
            out.append((cells(line)[0], cells(line), body, "\n".join(lines[:i])))
    return out


def _ret(x: float) -> str:
    return f"{round(x):,}"


def _method_of(label: str) -> str:
    """The method a results.md row is about: its first backticked method name (a GST rule or the
    ``circ`` control of bench/gst_vs_pruning.METHODS), or dense / GMP."""
    for name in re.findall(r"`([a-z-]+)`", label):
        if name in METHODS and name not in BASELINES:
            return name
    return "dense" if label.startswith("dense") else "gmp" if label.startswith("GMP") else label


def test_results_doc_summary_tables(report):
    """docs/results.md, one table per env: average CR, final CR, mean final return, of dense and
    the per-seed ratios of every method."""
    runs, means, verdict = report
    tables = _tables((ROOT / "docs" / "results.md").read_text(), re.compile(r"seeds x 300k \| average CR"))
    assert tables, "docs/results.md lost its 300k tables"
    seen = set()
    for first, _, body, _ in tables:
        env = first.split(",")[0]
        for label, avg, final, ret, of_dense in body:
            method = _method_of(label)
            m = means[env, method]
            assert (avg, final, ret) == (f"{m['avg_cr']:.3f}", f"{m['final_cr']:.3f}", _ret(m["final_return"])), label
            assert of_dense.split(" ")[0] == f"{m['final_return_of_dense']:.2f}", label
            if method not in BASELINES:
                # from the runs, not the verdict's ratios, which are rounded to 3 digits already
                seeds = ", ".join(f"{runs[env, method, s]['final_return'] / runs[env, 'dense', s]['final_return']:.2f}"
                                  for s in verdict[env, method]["seeds"])
                assert of_dense.endswith(f"(seeds {seeds})"), label
            seen.add((env, method))
    assert {("HalfCheetah-v5", m) for m in ("dense", "gmp", "gst-cp", "circ", "gst-cf", "gst-cfr")} <= seen


def test_td3_doc_per_seed_tables(report):
    """docs/td3.md's per-seed tables: each column (``dense final``, ``<method> avg CR / final``,
    ``<method> avg CR (final CR) / final``, ``<method> / dense``) per seed and on the mean row."""
    runs, means, verdict = report
    text = (ROOT / "docs" / "td3.md").read_text()
    tables = _tables(text, re.compile(r"^\| seed \| dense final \|"))
    assert len(tables) >= 2, "docs/td3.md lost its per-seed 300k tables"
    checked = 0
    for _, header, body, above in tables:
        env = re.findall(r"(HalfCheetah-v5|Humanoid-v5)", above)[-1]  # the env named last above the table
        for row in body:
            seed = row[0]
            for col, cell in zip(header[1:], row[1:]):
                name = col.split(" ")[0]
                method = "gmp" if name == "GMP" else name
                if seed == "mean":
                    m = means[env, method]
                    avg, final_cr, ret = m["avg_cr"], m["final_cr"], m["final_return"]
                    ratio = m["final_return_of_dense"]
                else:
                    r = runs[env, method, int(seed)]
                    avg, final_cr, ret = r["avg_cr"], r["final_cr"], r["final_return"]
                    ratio = ret / runs[env, "dense", int(seed)]["final_return"]
                if col == "dense final":
                    want = _ret(ret)
                elif col.endswith("avg CR (final CR) / final"):
                    want = f"{avg:.3f} ({final_cr:.3f}) / {_ret(ret)}"
                elif col.endswith("avg CR / final"):
                    want = f"{avg:.3f} / {_ret(ret)}"
                elif col.endswith("/ dense"):
                    want = f"{ratio:.2f}"
                else:
                    raise AssertionError(f"docs/td3.md: unknown column {col!r}")
                assert cell == want, f"docs/td3.md {env} seed {seed}, {col}: {cell} (report: {want})"
                checked += 1
    assert checked >= 40
