"""Training checkpoints: deterministic bytes, exact resume (also from inside an evaluation), a
code-free format, and SIGTERM / Ctrl-C acting within a second with the exact state saved."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from golden import checkpoint
from golden.checkpoint import CheckpointError
from golden.td3 import TD3Config, Trainer

ROOT = Path(__file__).resolve().parent.parent
# tiny networks, frequent short evaluations: each run below takes well under a second of training
TINY = dict(hidden=(16, 16), batch=16, start_steps=100, steps=500, eval_every=200, eval_episodes=1,
            numerics="bf16", method="gst", block=4)


def test_save_load_save_gives_the_same_bytes_and_keeps_shared_objects():
    cfg = TD3Config(**TINY)
    tr = Trainer(cfg)
    tr.policy.s = 0.9
    tr._apply_gst(1.0)  # -> 0.95: the circulant layers turn group-sparse, targets share the bitmaps
    tr.run(until=450)
    data = tr.state_bytes()
    again = Trainer.from_state(data, cfg)
    assert again.state_bytes() == data
    assert tr.state_bytes() == data  # saving changes nothing either
    # the trainer and the agent draw from one generator; targets share their online layer's bitmap
    assert again.agent.rng is again.rng
    for net, tgt in again.agent.nets():
        for lo, lt in zip(net.layers, tgt.layers):
            assert lt.bitmap is lo.bitmap
    assert [l.mode for l in again.compressible_layers()] == ["sparse"] * 3
    # and it continues exactly as the original does
    tr.run()
    again.run()
    assert again.state_bytes() == tr.state_bytes()


def test_stop_inside_an_evaluation_resumes_to_the_same_bytes():
    cfg = TD3Config(**TINY)
    ref = Trainer(cfg)
    ref.run()
    tr = Trainer(cfg)
    tr.run(should_stop=lambda: tr.eval_due and tr.step == 400)  # read per step and per evaluation step
    assert tr.step == 400 and tr.eval_due and len(tr.evals) == 1  # cut short inside the evaluation
    resumed = Trainer.from_state(tr.state_bytes(), cfg)
    resumed.run()
    assert resumed.evals == ref.evals
    assert resumed.state_bytes() == ref.state_bytes()


def test_format_is_npz_with_json_and_loads_without_pickle():
    tree = {"b": (1, 2.5, None), "a": [np.arange(3, dtype=np.int16), np.float32(0.1)], "nan": float("nan"),
            "inf": -float("inf"), "big": 2 ** 100, "rng": np.random.default_rng(3)}
    tree["same"] = tree["a"][0]
    data = checkpoint.encode(tree, {})
    assert data == checkpoint.encode(tree, {})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["state.npy", "a0.npy", "a1.npy"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        body = json.loads(npz["state"].tobytes())
    assert body["meta"] == checkpoint.FORMAT and body["tree"]["b"] == {"__tuple__": [1, 2.5, None]}
    back = checkpoint.decode(data, {})
    assert back["b"] == (1, 2.5, None) and back["big"] == 2 ** 100 and np.isnan(back["nan"])
    assert back["same"] is back["a"][0] and back["a"][0].dtype == np.int16
    assert type(back["a"][1]) is np.float32 and back["a"][1] == np.float32(0.1)
    assert back["rng"].integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)


@pytest.mark.parametrize("data,needle", [
    (b"", "not an npz"),
    (b"PK\x03\x04 cut short", "is not a readable checkpoint"),
    (checkpoint.encode({"x": 1}, {})[:-30], "is not a readable checkpoint"),
])
def test_damaged_bytes_are_one_line_errors(data, needle):
    with pytest.raises(CheckpointError, match=needle) as info:
        checkpoint.decode(data, {}, source="run/checkpoint.npz")
    assert str(info.value).startswith("run/checkpoint.npz ") and "\n" not in str(info.value)


def test_a_checkpoint_rebuilds_only_the_classes_it_is_given():
    class Box:
        pass

    box = Box()
    box.x = 1
    data = checkpoint.encode({"box": box}, {"Box": Box})
    assert checkpoint.decode(data, {"Box": Box})["box"].x == 1
    with pytest.raises(CheckpointError, match="class 'Box', which a checkpoint may not hold"):
        checkpoint.decode(data, {})
    with pytest.raises(TypeError, match="not one of the classes"):
        checkpoint.encode({"box": box}, {})
    with pytest.raises(TypeError, match="object array"):
        checkpoint.encode({"o": np.array([None])}, {})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_training_within_a_second_with_the_exact_state(tmp_path, signum):
    out = tmp_path / "run"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    args = ["--steps", "1000000", "--start-steps", "100", "--hidden", "16,16", "--batch", "16",
            "--eval-every", "200", "--eval-episodes", "1", "--method", "gst", "--block", "4"]
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "train", "--out", str(out), "--quiet", *args],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        metrics = out / "metrics.jsonl"
        while not (metrics.is_file() and '"eval"' in metrics.read_text()):  # training is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.02)
        t0 = time.monotonic()
        proc.send_signal(signum)
        lines = []
        while not lines or "stopped by a signal" not in lines[-1]:  # printed once the checkpoint is written
            lines.append(proc.stderr.readline())
            assert lines[-1], lines  # end of stream without the line
        took = time.monotonic() - t0
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = [line for line in lines + proc.stderr.read().splitlines() if line.strip() and "settotalmass" not in line]
    assert rc == 130 and took < 1.0, (rc, took, err)  # measured 0.16 s to the exit on the shared machine
    assert len(err) == 1 and "stopped by a signal at step" in err[0] and "(checkpointed)" in err[0]
    step = int(err[0].split("at step ")[1].split()[0])
    data = (out / "checkpoint.npz").read_bytes()
    cfg = TD3Config.from_dict(Trainer.checkpoint_config(data))
    stopped = Trainer.from_state(data, cfg)
    assert stopped.step == step
    # the checkpoint is the state an uninterrupted run has at that step (evaluation pending or not)
    ref = Trainer(cfg)
    ref.run(until=step, should_stop=lambda: ref.step == step and stopped.eval_due)
    assert ref.state_bytes() == data
