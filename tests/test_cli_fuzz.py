"""Bad invocations of every omnidrl subcommand: exit 2, one line, no traceback, nothing written.

Each case runs the CLI's ``main`` in-process in a sandbox: the working directory, the build
folder (``flows.generate.BUILD`` and the modules that imported it) and the fixtures (an existing
file, damaged checkpoints, damaged synthesis reports) all live under ``tmp_path``. The test
snapshots the sandbox before and after: a refused invocation must leave it exactly as it was,
and must not create the output path it was given. stderr is captured at the file-descriptor
level, so a warning printed by a C library counts as a second line too. A case also names the
text its one line must contain (the option, the value, or what is allowed).

Two subprocess cases at the end check the real entry point (``python -m flows.cli``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flows import cli

ROOT = Path(__file__).resolve().parent.parent
LONG = "x" * 300  # a path component longer than NAME_MAX
RUN = ["--out", "{tmp}/run", "--quiet"]  # a good train output: the option under test is another

# (argv, text the one line must contain); {tmp}, {file}, {dir} are filled in per case
CASES: list[tuple[list[str], str]] = []


def case(needle: str, *argv: str) -> None:
    CASES.append((list(argv), needle))


# -- every block subcommand: block, preset, --set, unknown option --------------------------------
for sub in ("verilog", "sim", "synth", "lint", "demo"):
    case("unknown block 'pex' (did you mean 'pe'?)", sub, "pex")
    case("unknown preset 'nope'; choose one of default, paper, tiny", sub, "pe", "--preset", "nope")
    case("mul_stages=7 is not allowed; mul_stages must be an integer from 0 to 2",
         sub, "pe", "--set", "mul_stages=7")
    case("unknown parameter 'speed'", sub, "pe", "--set", "speed=fast")
    case("expected key=value", sub, "pe", "--set", "mul_stages")
    case("unknown parameter 'pipe' in pe", sub, "pe", "--set", "pipe.depth=1")
    case(f"omnidrl {sub}: error: unrecognized arguments: --bogus", sub, "pe", "--bogus")
    case(f"omnidrl {sub}: error: argument --preset: expected one argument", sub, "pe", "--preset")
case("'mul_stages' has no parameters of its own", "verilog", "pe", "--set", "mul_stages.depth=1")
case("omnidrl verilog: error: the following arguments are required: BLOCK", "verilog")

# -- verilog --out ----------------------------------------------------------------------------------
case("--out '/proc/nope' is not allowed: cannot create", "verilog", "pe", "--out", "/proc/nope")
case("--out '/sys/kernel/nope' is not allowed: cannot create", "verilog", "pe", "--out", "/sys/kernel/nope")
case("is an existing file, not a folder", "verilog", "pe", "--out", "{file}")
case("is a file, not a folder", "verilog", "pe", "--out", "{file}/x")
case("--out '' is not allowed: give a folder path", "verilog", "pe", "--out", "")
case("--out '  ' is not allowed: give a folder path", "verilog", "pe", "--out", "  ")
case("File name too long", "verilog", "pe", "--out", f"{{tmp}}/{LONG}/v")
case("(Not a directory)", "verilog", "pe", "--out", "{tmp}/new/../file.txt/v")

# -- sim, synth ---------------------------------------------------------------------------------------
case("--testcase '([' is not allowed: it must be a regular expression", "sim", "pe", "--testcase", "([")
case("--testcase '*' is not allowed", "sim", "pe", "--testcase", "*")
case("--testcase '(?P<' is not allowed", "sim", "pe", "--testcase", "(?P<")
case("--testcase 'a)' is not allowed", "sim", "pe", "--sim", "icarus", "--testcase", "a)")
case("invalid choice: 'modelsim'", "sim", "pe", "--sim", "modelsim")
case("omnidrl sim: error: argument --seed: invalid int value: 'abc'", "sim", "pe", "--seed", "abc")
case("argument --seed: invalid int value: '1.5'", "sim", "pe", "--seed", "1.5")
case("omnidrl synth: error: argument --target: invalid choice: 'asic7'", "synth", "pe", "--target", "asic7")

# -- params, report, the top level -----------------------------------------------------------------
case("unknown block 'nosuch'", "params", "nosuch")
case("give a BLOCK or --update-docs", "params")
case("give a BLOCK or --update-docs, not both", "params", "pe", "--update-docs")
case("omnidrl params: error: unrecognized arguments: --bogus", "params", "pe", "--bogus")
case("omnidrl report: error: unrecognized arguments: extra", "report", "extra")
case("omnidrl: error: the following arguments are required: command")
case("omnidrl: error: argument command: invalid choice: 'nosuch'", "nosuch")
case("omnidrl report: error: unrecognized arguments: --bogus", "--bogus", "report")
# the reports folder holds a damaged file: named, nothing rendered (see REPORT_FIXTURES)
for name in ("truncated", "binary", "list", "norecords", "badrecord"):
    case(f"pe-{name}.json", "report")

# -- train --------------------------------------------------------------------------------------------
case("omnidrl train: error: the following arguments are required: --out", "train", "--quiet")
case("--out '' is not allowed: give a folder path", "train", "--out", "")
case("is an existing file, not a folder", "train", "--out", "{file}")
case("is a file, not a folder", "train", "--out", "{file}/x")
case("--out '/proc/nope' is not allowed: cannot create", "train", "--out", "/proc/nope")
case("--out '/sys/kernel/nope' is not allowed: cannot create", "train", "--out", "/sys/kernel/nope")
case("File name too long", "train", "--out", f"{{tmp}}/{LONG}")
for opt, value, needle in [
    ("--ckpt-every", "0", "--ckpt-every 0 is not allowed: ckpt_every must be a positive integer"),
    ("--ckpt-every", "-1", "--ckpt-every -1 is not allowed: ckpt_every must be a positive integer"),
    ("--ckpt-every", "abc", "argument --ckpt-every: invalid int value: 'abc'"),
    ("--eval-every", "0", "--eval-every 0 is not allowed"),
    ("--eval-episodes", "0", "--eval-episodes 0 is not allowed"),
    ("--trace-at", "-1", "--trace-at -1 is not allowed: it must be an update number from 1 to"),
    ("--trace-at", "0", "--trace-at 0 is not allowed: it must be an update number from 1 to 975000"),
    ("--trace-at", "99999999", "--trace-at 99999999 is not allowed"),
    ("--trace-at", "abc", "'abc' is not a comma-separated list of integers"),
    ("--trace-at", "1,x", "'1,x' is not a comma-separated list of integers"),
    ("--steps", "0", "--steps 0 is not allowed: steps must be a positive integer"),
    ("--steps", "-5", "--steps -5 is not allowed"),
    ("--steps", "abc", "argument --steps: invalid int value: 'abc'"),
    ("--batch", "100000000", "--batch 100000000 is not allowed: batch must be at most the replay capacity"),
    ("--batch", "0", "--batch 0 is not allowed"),
    ("--hidden", "", "--hidden () is not allowed: hidden must be one or more positive layer widths"),
    ("--hidden", "0,5", "--hidden (0, 5) is not allowed"),
    ("--hidden", "a", "'a' is not a comma-separated list of integers"),
    ("--lr", "2", "--lr 2.0 is not allowed: lr must be in (0, 1)"),
    ("--lr", "nan", "--lr nan is not allowed"),
    ("--lr", "-1", "--lr -1.0 is not allowed"),
    ("--seed", "-1", "--seed -1 is not allowed"),
    ("--block", "1", "--block 1 is not allowed"),
    ("--start-steps", "-1", "--start-steps -1 is not allowed"),
    ("--method", "prune", "method must be one of dense, gmp, gst"),
    ("--numerics", "fp16", "numerics must be one of"),
    ("--preset", "paper", "--preset 'paper' is not allowed: choose one of default, paper2018"),
    ("--compress", "l3", "compress must be a subset of l1, l2 (the output layer is never compressed)"),
    ("--compress", "l9", "--compress ('l9',) is not allowed"),
    ("--env", "NoSuchEnv-v0", "--env 'NoSuchEnv-v0' is not a registered gymnasium environment"),
    ("--env", "HalfCheetah-v9", "did you mean HalfCheetah-v"),
    ("--env", "CartPole-v1", "TD3 needs a continuous Box space"),
    ("--set", "buffer=10", "--batch 256 is not allowed: batch must be at most the replay capacity, buffer=10"),
    ("--set", "gst_ds=2", "--set gst_ds=2.0 is not allowed: gst_ds must be a number from 0.0 to 1.0"),
    ("--set", "speed=2", "td3: unknown parameter 'speed'"),
    ("--set", "steps=abc", "steps"),
    ("--set", "=1", "expected key=value"),
    ("--set", "tau", "expected key=value"),
]:
    case(needle, "train", *RUN, opt, value)
case("--block 12 is not allowed: it does not divide the output width", "train", *RUN, "--method", "gst",
     "--block", "12")
case("--trace-at 3 is not allowed: this run makes no updates", "train", *RUN, "--steps", "10", "--trace-at", "3")
case("--set gst_smax=1.0 is not allowed: gst_smax must be below 1.0 with gst_rule=circ-fine", "train", *RUN,
     "--method", "gst", "--set", "gst_rule=circ-fine", "--set", "gst_smax=1")
case("--set gst_switch=1.5 is not allowed: gst_switch must be a number from 0.0 to 1.0", "train", *RUN,
     "--method", "gst", "--set", "gst_rule=circ-fine", "--set", "gst_switch=1.5")
case("--set gst_rule='fine' is not allowed: gst_rule must be one of switch, circ-prune, circ-fine", "train", *RUN,
     "--set", "gst_rule=fine")
case("omnidrl train: error: unrecognized arguments: --buffer 5", "train", *RUN, "--buffer", "5")
# --resume: no checkpoint, or one that is not a readable checkpoint (see CHECKPOINT_FIXTURES)
case("--resume is not allowed: ", "train", "--out", "{tmp}/run", "--quiet", "--resume")
for name, needle in [("garbage", "it is not an npz (zip) file"), ("foreign", "it has no state member"),
                     ("truncated", "is not a readable checkpoint"), ("tagged", "its format tag is"),
                     ("classes", "which a checkpoint may not hold")]:
    case(needle, "train", "--out", f"{{tmp}}/ckpt_{name}", "--quiet", "--resume")
case("is a pickle checkpoint, which is no longer loaded", "train", "--out", "{tmp}/ckpt_pickle", "--resume")

# -- trace ------------------------------------------------------------------------------------------------
TRACE = ["--out", "{tmp}/t/trace.npz", "--quiet"]
case("--env 'NoSuchEnv-v0' is not a registered gymnasium environment", "trace", *TRACE, "--env", "NoSuchEnv-v0")
case("--out '/proc/nope/x.npz' is not allowed: cannot create /proc/nope", "trace", "--out", "/proc/nope/x.npz")
case("file.txt is an existing file, not a folder", "trace", "--out", "{file}/x.npz")
case("--out '' is not allowed: give a file path ending in .npz", "trace", "--out", "")
case("the file name must end in .npz", "trace", "--out", "{tmp}/x.txt")
case("it is an existing folder", "trace", "--out", "{dir}")
case("--steps 10 is not allowed: a trace needs updates", "trace", *TRACE, "--steps", "10")
case("--steps 0 is not allowed", "trace", *TRACE, "--steps", "0")
case("--steps 12000 is not allowed: a trace needs updates, so steps must exceed --start-steps (20000)",
     "trace", *TRACE, "--start-steps", "20000")
case("--trace-numerics 'fp16' is not allowed", "trace", *TRACE, "--trace-numerics", "fp16")
case("--methods '' is not allowed: give one or more of dense, gmp, gst", "trace", *TRACE, "--methods", ",")
case("--methods '' is not allowed", "trace", *TRACE, "--methods", "")
case("--methods 'dense,prune' is not allowed: give one or more of dense, gmp, gst", "trace", *TRACE,
     "--methods", "dense,prune")
case("omnidrl trace: error: unrecognized arguments: --resume", "trace", *TRACE, "--resume")
# trace --snapshot: recorded from checkpoints; everything checked before any is loaded for recording
SNAP = "a={tmp}/ckpt_{name}/checkpoint.npz"
case("--snapshot 'early' is not allowed: give STAGE=PATH", "trace", *TRACE, "--snapshot", "early")
case("--snapshot '=x.npz' is not allowed: give STAGE=PATH", "trace", *TRACE, "--snapshot", "=x.npz")
case("--snapshot 'a=' is not allowed: give STAGE=PATH", "trace", *TRACE, "--snapshot", "a=")
case("STAGE made of letters, digits, '_', '-' or '.'", "trace", *TRACE, "--snapshot", "a/b={file}")
case("not 'meta' (it starts every key of the trace)", "trace", *TRACE, "--snapshot", "meta={file}")
case("/none.npz is not an existing file", "trace", *TRACE, "--snapshot", "a={tmp}/none.npz")
case("folder.npz is not an existing file", "trace", *TRACE, "--snapshot", "a={dir}")
for name, needle in [("garbage", "it is not an npz (zip) file"), ("foreign", "it has no state member"),
                     ("truncated", "is not a readable checkpoint"), ("tagged", "its format tag is"),
                     ("classes", "which a checkpoint may not hold")]:
    case(needle, "trace", *TRACE, "--snapshot", SNAP.replace("{name}", name))
case("/ckpt_garbage/checkpoint.npz' is not a readable checkpoint", "trace", *TRACE,
     "--snapshot", SNAP.replace("{name}", "garbage"))
case("stage 'a' is given twice", "trace", *TRACE, "--snapshot", "a={file}", "--snapshot", "a={file}")
case("--trace-numerics 'fp16' is not allowed", "trace", *TRACE, "--snapshot", "a={file}", "--trace-numerics", "fp16")
for opt, value in [("--methods", "gst"), ("--steps", "20000"), ("--env", "Hopper-v5"), ("--seed", "1"),
                   ("--numerics", "fp32"), ("--preset", "paper2018"), ("--hidden", "64,64"), ("--batch", "64"),
                   ("--lr", "0.001"), ("--start-steps", "10"), ("--block", "16"), ("--compress", "l1"),
                   ("--set", "tau=0.01"),
                   # given at exactly their defaults: still options of a training run, still refused
                   ("--seed", "0"), ("--env", "HalfCheetah-v5"), ("--numerics", "bf16"), ("--methods", "dense,gst")]:
    case(f"{opt} is not allowed with --snapshot: the run's configuration comes from the checkpoint", "trace",
         *TRACE, "--snapshot", "a={file}", opt, value)
case("--out '' is not allowed: give a file path ending in .npz", "trace", "--out", "", "--snapshot", "a={file}")


# -- run (the whole top on one TD3 update) ----------------------------------------------------------------
case("--workload 'nope' is not allowed: choose one of small-dense", "run", "--workload", "nope")
case("unknown preset 'nope'; choose one of default, paper, tiny", "run", "--preset", "nope")
case("pe_array.rows=3 is not allowed; pe_array.rows must be equal to block_size=4", "run", "--set", "pe_array.rows=3")
case("emd.group=2 is not allowed; emd.group must be at least pe_array.block_size=4", "run", "--set", "emd.group=2")
case("cmd_depth=0 is not allowed; cmd_depth must be an integer from 1 to 64", "run", "--set", "cmd_depth=0")
case("argument --sim: invalid choice: 'bad'", "run", "--sim", "bad")
case("--json '/proc/x/r.json' is not allowed: cannot create /proc/x", "run", "--json", "/proc/x/r.json")
case("the file name must end in .json", "run", "--json", "{tmp}/r.txt")
case("--json '' is not allowed: give a file path ending in .json", "run", "--json", "")
case("file.txt is an existing file, not a folder", "run", "--json", "{file}/r.json")
# sweep: every mistake is found before Ray starts or anything is written
SWEEP = ["--out", "{tmp}/sw"]
case("unknown parameter 'mul_stage' in pe; parameters are mul_stages", "sweep", "pe", "--axis", "mul_stage=0,1", *SWEEP)
case("mul_stages=7: no point can use it: pe: mul_stages=7 is not allowed; mul_stages must be an integer from 0 to 2",
     "sweep", "pe", "--axis", "mul_stages=0,7", *SWEEP)
case("pe: mul_stages='x' is not a valid int", "sweep", "pe", "--axis", "mul_stages=x", *SWEEP)
case("emd.group=2: no point can use it", "sweep", "omnidrl", "--preset", "tiny", "--axis", "emd.group=2,8",
     "--workload", "small-sparse", *SWEEP)
case("--axis 'emd.group' is not allowed; write NAME=V1,V2", "sweep", "omnidrl", "--axis", "emd.group", *SWEEP)
case("block='nope' is not allowed; choose one of ecim", "sweep", "nope", "--axis", "x=1", *SWEEP)
case("workloads='nope' is not allowed; choose one of small-dense", "sweep", "omnidrl", "--workload", "nope", *SWEEP)
case("workloads=['small-dense'] is not allowed for block 'pe'", "sweep", "pe", "--workload", "small-dense", *SWEEP)
case("mode='zip' is not allowed; choose one of grid, list", "sweep", "pe", "--mode", "zip", *SWEEP)
case("synth.targets='asic' is not allowed; choose one of generic, ice40, xilinx", "sweep", "pe", "--target", "asic", *SWEEP)
case("preset='nope' is not allowed; choose one of default, paper, tiny", "sweep", "pe", "--preset", "nope", *SWEEP)
case("give a BLOCK (and --axis NAME=V1,V2,...) or --file SWEEP.toml", "sweep", *SWEEP)
case("none.toml': cannot read it", "sweep", "--file", "{tmp}/none.toml", *SWEEP)
case("file.txt': not valid TOML", "sweep", "--file", "{file}", *SWEEP)
case("BLOCK is not allowed with it", "sweep", "pe", "--file", "{file}", *SWEEP)
case("file.txt is an existing file, not a folder", "sweep", "pe", "--axis", "mul_stages=0,1", "--out", "{file}")
case("--cpus 0 is not allowed", "sweep", "pe", "--axis", "mul_stages=0,1", "--cpus", "0", *SWEEP)
case("omnidrl run: error: unrecognized arguments: --bogus", "run", "--bogus")
case("--preset 'huge' is not allowed: choose one of tiny, default, paper", "energy", "--preset", "huge")
case("--workload 'nope' is not allowed: choose one of small-dense", "energy", "--workload", "nope")
case("none.toml: cannot be read", "energy", "--table", "{tmp}/none.toml")
case("file.txt: is not valid TOML", "energy", "--table", "{file}")
case("folder.npz: cannot be read", "energy", "--table", "{dir}")
case("omnidrl energy: error: unrecognized arguments: --bogus", "energy", "--bogus")


# -- quantize (mixed-precision search) ------------------------------------------------------------------
Q = ["quantize", "--net", "cnn", "--out", "{tmp}/q"]
case("the following arguments are required: --net", "quantize")
case("argument --net: invalid choice: 'foo'", "quantize", "--net", "foo")
case("argument --cost: invalid choice: 'gpu'", *Q, "--cost", "gpu")
case("argument --agent: invalid choice: 'sac'", *Q, "--agent", "sac")
case("--budget 0.0 is not allowed: give a fraction of the all-8-bit cost in (0, 1]", *Q, "--budget", "0")
case("--budget 1.5 is not allowed", *Q, "--budget", "1.5")
case("--budget nan is not allowed", *Q, "--budget", "nan")
case("argument --budget: invalid float value: 'half'", *Q, "--budget", "half")
case("--episodes 0 is not allowed: give 1 or more", *Q, "--episodes", "0")
case("no MAC area table; run `python bench/mpmac_area.py`", *Q, "--cost", "mac", "--mac-table", "{tmp}/none.json")
case("not a readable JSON area table", *Q, "--cost", "mac", "--mac-table", "{file}")
case("is an existing file, not a folder", "quantize", "--net", "cnn", "--out", "{file}")
case("--out '/proc/nope' is not allowed: cannot create", "quantize", "--net", "cnn", "--out", "/proc/nope")

# -- fixtures -------------------------------------------------------------------------------------------------
REPORT_FIXTURES = {
    "truncated": b'{"block": "pe", "config": {"block": "pe"}, "records": [{"target": "gen',
    "binary": b"\x00\xff\x13 not json",
    "list": b"[]",
    "norecords": b'{"block": "pe", "config": {}, "config_hash": "0"}',
    "badrecord": b'{"block": "pe", "config": {}, "config_hash": "0", "records": [{"metric": "area"}]}',
}


def _checkpoint_fixtures(root: Path) -> None:
    import io
    import pickle
    import zipfile

    from golden import checkpoint

    good = checkpoint.encode({"step": 1, "w": np.arange(4.0)}, {})
    npz = io.BytesIO()
    np.savez(npz, weights=np.zeros(3))
    tagged = io.BytesIO()
    with zipfile.ZipFile(tagged, "w") as zf:
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(b'{"meta": {"format": "other"}, "tree": {}}', np.uint8))
        zf.writestr("state.npy", buf.getvalue())
    fixtures = {
        "garbage": b"\x80\x04garbage, not a checkpoint",
        "foreign": npz.getvalue(),
        "truncated": good[: len(good) // 2],
        "tagged": tagged.getvalue(),
        "classes": _with_object(good),
    }
    for name, data in fixtures.items():
        (root / f"ckpt_{name}").mkdir()
        (root / f"ckpt_{name}" / "checkpoint.npz").write_bytes(data)
    (root / "ckpt_pickle").mkdir()
    (root / "ckpt_pickle" / "checkpoint.pkl").write_bytes(pickle.dumps({"step": 1}))


def _with_object(good: bytes) -> bytes:
    """A well-formed checkpoint whose tree names a class the trainer never stores (os.system)."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state.npy":
                text = np.load(io.BytesIO(data)).tobytes().replace(b'"step":1', b'"step":{"__object__":["system",[]]}')
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(text, np.uint8))
                data = buf.getvalue()
            zf.writestr(info, data)
    return out.getvalue()


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    import flows.generate
    import flows.report
    import flows.synth
    import tb.runner

    build = tmp_path / "build"
    for module in (flows.generate, flows.report, flows.synth, tb.runner):
        monkeypatch.setattr(module, "BUILD", build)
    (tmp_path / "file.txt").write_text("an existing file\n")
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def test_fuzz_set_is_large_and_covers_every_subcommand():
    assert len(CASES) >= 100
    used = {argv[0] for argv, _ in CASES if argv}
    assert used == {"verilog", "sim", "synth", "lint", "params", "report", "demo", "train", "trace", "run", "energy",
                    "sweep", "quantize", "--bogus", "nosuch"}


@pytest.mark.parametrize("argv,needle", CASES, ids=[" ".join(a)[:60] or "(none)" for a, _ in CASES])
def test_bad_invocation_is_one_line_exit_2_and_writes_nothing(sandbox, capfd, argv, needle):
    fill = {"tmp": str(sandbox), "file": str(sandbox / "file.txt"), "dir": str(sandbox / "folder.npz")}
    argv = [a.format(**fill) for a in argv]
    if argv[:1] == ["report"] and needle.startswith("pe-"):
        name = needle[3:-5]
        (sandbox / "build" / "reports").mkdir(parents=True)
        (sandbox / "build" / "reports" / needle).write_bytes(REPORT_FIXTURES[name])
    if any("ckpt_" in a for a in argv):
        _checkpoint_fixtures(sandbox)
    outs = [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a == "--out" and argv[i + 1].strip()]
    existed = {p: os.path.lexists(p) if len(str(p)) < 4000 else False for p in outs}
    before = _snapshot(sandbox)
    rc = cli.main(argv)
    out, err = capfd.readouterr()
    assert rc == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    assert needle in lines[0], lines[0]
    assert lines[0].startswith("omnidrl"), lines[0]
    assert _snapshot(sandbox) == before  # nothing written, not even an empty folder
    for path, was in existed.items():
        try:
            assert os.path.lexists(path) == was, path
        except OSError:  # a name too long to exist
            pass


@pytest.mark.parametrize("args,needle", [
    (("verilog", "pe", "--out", "/proc/nope"), "omnidrl verilog: error: --out '/proc/nope' is not allowed"),
    (("verilog", "pe", "--nope"), "omnidrl verilog: error: unrecognized arguments: --nope"),
])
def test_entry_point_exit_status_and_one_line(args, needle):
    env = dict(os.environ, AMARANTH_USE_YOSYS="builtin")
    result = subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and needle in result.stderr
    assert result.stdout == ""
