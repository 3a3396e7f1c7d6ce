"""bench/_common.py's command-line skeleton (bench_parser, stamp, read_results) and the scripts on it.

A bad option value of a benchmark script is one line naming the option, the value and what is
allowed, with exit status 2, before any work starts.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

import bench._common as common  # noqa: E402

DOC = """A benchmark of something, said over
two lines.

Details that are not the description.
"""


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_line_exit_2(capsys, call) -> str:
    with pytest.raises(SystemExit) as exc:
        call()
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_bench_parser_describes_with_the_first_paragraph_and_errs_on_one_line(capsys):
    ap = common.bench_parser(DOC, prog="demo")
    ap.add_argument("--beats", type=int, default=3)
    assert ap.description == "A benchmark of something, said over two lines."
    assert ap.parse_args([]).beats == 3 and ap.parse_args(["--beats", "7"]).beats == 7
    line = _one_line_exit_2(capsys, lambda: ap.parse_args(["--beats", "many"]))
    assert line == "demo: error: argument --beats: invalid int value: 'many'"
    line = _one_line_exit_2(capsys, lambda: ap.error("--beats 0 is not allowed; give 1 or more"))
    assert line == "demo: error: --beats 0 is not allowed; give 1 or more"
    _one_line_exit_2(capsys, lambda: ap.parse_args(["--colour", "red"]))


def test_stamp_and_read_results(tmp_path, monkeypatch):
    doc = common.stamp("demo", ("numpy",), {"shell": ["echo", "sh 1.0"]})
    assert list(doc)[:4] == ["benchmark", "machine", "versions", "date"] and doc["benchmark"] == "demo"
    assert doc["versions"]["shell"] == "sh 1.0" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["date"])
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert common.read_results("demo") is None
    (tmp_path / "demo.json").write_text(json.dumps({"benchmark": "demo", "x": 1}))
    assert common.read_results("demo") == {"benchmark": "demo", "x": 1}


def test_every_bench_script_parses_with_bench_parser():
    """No script builds its own ArgumentParser (gst_vs_pruning.py is another owner's, for now)."""
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name in ("_common.py", "gst_vs_pruning.py"):
            continue
        calls = [n.func for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]
        names = [getattr(f, "attr", getattr(f, "id", None)) for f in calls]
        assert "ArgumentParser" not in names and "bench_parser" in names, path.name


@pytest.mark.parametrize("argv, words", [
    (["--gap", "1.5"], "--gap 1.5 is not allowed; it must be a probability from 0 to below 1"),
    (["--stall", "-0.1"], "--stall -0.1 is not allowed"),
    (["--beats", "0"], "--beats and --malformed must be at least 1"),
    (["--beats", "lots"], "argument --beats: invalid int value: 'lots'"),
    (["--blocks", "pe,nope"], "--blocks nope is not allowed; choose from emd_dec, emd_enc"),
])
def test_soak_bad_values(capsys, argv, words):
    soak = _script("soak")
    assert words in _one_line_exit_2(capsys, lambda: soak.main(argv))


def test_soak_render_without_results(capsys, tmp_path, monkeypatch):
    soak = _script("soak")
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    line = _one_line_exit_2(capsys, lambda: soak.main(["--render", "--out", "none_here"]))
    assert "--render: there is no bench/results/none_here.json" in line


def test_gst_probes_unknown_probe(capsys):
    probes = _script("gst_probes")
    line = _one_line_exit_2(capsys, lambda: probes.main(["dense80", "no_such_probe"]))
    assert "probe 'no_such_probe' is not defined; probes are dense80" in line


@pytest.mark.parametrize("argv, words", [
    (["--max-dots", "0"], "--max-dots 0 is not allowed: give a positive number of dot products"),
    (["--table", "no/such/table.toml"], "--table: "),
])
def test_energy_bad_values(capsys, argv, words):
    energy = _script("energy")
    assert words in _one_line_exit_2(capsys, lambda: energy.main(argv))


def test_soak_help_keeps_its_options_and_whole_summary(capsys):
    soak = _script("soak")
    with pytest.raises(SystemExit) as exc:
        soak.main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("Soak bench: every stream block for at least a million output beats on Verilator, under random input "
            "gaps and output back-pressure, plus the malformed-input sets of the EMD decoder and the transposer.") in text
    for option in ("--beats", "--blocks", "--malformed", "--gap", "--stall", "--max-chunks", "--out", "--render",
                   "--keep"):
        assert option in text


def test_synth_records_notices_a_report_older_than_its_verilog(tmp_path, monkeypatch, capsys):
    """A report is keyed by the configuration: when the generator changes the Verilog of the
    same configuration, the recorded hash tells, and the bench synthesizes again (or warns)."""
    import hashlib
    import json

    from bench._common import synth_records
    from flows import synth
    from hdl.pe import PEConfig

    cfg = PEConfig()
    verilog = tmp_path / "pe.v"
    verilog.write_text("module pe; endmodule\n")
    report = tmp_path / "report.json"

    def write(area):
        report.write_text(json.dumps({"records": [{"target": "generic", "metric": "area", "value": area}],
                                      "verilog": str(verilog),
                                      "verilog_sha256": {"generic": hashlib.sha256(verilog.read_bytes()).hexdigest()}}))

    runs = []

    def fake_synthesize(c, target):
        runs.append(target)
        write(200.0)
        return report

    monkeypatch.setattr(synth, "report_path", lambda c: report)
    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    write(100.0)
    assert synth_records(cfg)["area"]["value"] == 100.0 and runs == []  # current: read, not run
    verilog.write_text("module pe; wire w; endmodule\n")  # the generator changed, the config did not
    assert synth_records(cfg, synthesize_missing=False)["area"]["value"] == 100.0 and runs == []
    assert "older than its Verilog" in capsys.readouterr().err
    assert synth_records(cfg)["area"]["value"] == 200.0 and runs == ["generic"]
    assert synth_records(cfg)["area"]["value"] == 200.0 and runs == ["generic"]  # current again
    old = json.loads(report.read_text())
    del old["verilog_sha256"]  # a report from before the check: cannot tell, counts as current
    report.write_text(json.dumps(old))
    verilog.write_text("module pe; wire x; endmodule\n")
    assert synth_records(cfg)["area"]["value"] == 200.0 and runs == ["generic"]
