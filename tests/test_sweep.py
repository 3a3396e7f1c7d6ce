"""``omnidrl sweep`` and the TD3 grid on embedded Ray: caching, resuming after a killed worker,
the split synthesis plan, Pareto fronts, the documented schema.

One Ray session serves every test here (session-scoped, all in one xdist group); bad input on
the command line is covered with the other subcommands in tests/test_cli_fuzz.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from flows import sweep
from flows.raytasks import ray_session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """Ray for the whole session; its workers build and synthesize in a folder of their own."""
    build = tmp_path_factory.mktemp("ray_build")
    with ray_session(cpus=2, env={"OMNIDRL_BUILD": str(build)}):
        yield build


def _mtimes(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*.json")}


def test_three_point_top_sweep_survives_killed_workers_and_reruns_from_the_cache(ray_local, tmp_path):
    from golden.run_top import run_machine
    from hdl.omnidrl import OmniDRLConfig

    spec = sweep.spec_from_args("omnidrl", "tiny", ["emd.group=4,8,16"], [], ["small-sparse"], "grid",
                                False, None, "auto", "auto", True, False)
    crashes = tmp_path / "crashes"
    doc = sweep.run_sweep(spec, tmp_path / "out", "s", cache=tmp_path / "cache", crash_once=crashes, quiet=True)
    # every job's first worker died half-way (its mark is there); Ray ran each job again
    assert len(list(crashes.glob("*.crashed"))) == 3
    assert doc["stats"] == {**doc["stats"], "points": 3, "jobs": 3, "ran": 3, "cached": 0, "failed": 0}
    for point in doc["points"]:
        cfg = OmniDRLConfig.preset("tiny", emd={"group": point["overrides"]["emd.group"]})
        direct = run_machine(cfg, "small-sparse")
        got = point["workloads"]["small-sparse"]
        assert point["errors"] == []
        assert (got["cycles"], got["counters"], got["state_equal"]) == (direct["cycles"], direct["counters"], True)
    # EMD groups of 4, 8, 16 values: fewer, larger groups decode into fewer headers
    decoded = [p["workloads"]["small-sparse"]["counters"]["EMD_GROUPS_DECODED"] for p in doc["points"]]
    assert decoded[0] > decoded[1] > decoded[2] > 0
    before = _mtimes(tmp_path / "cache")
    again = sweep.run_sweep(spec, tmp_path / "out", "s", cache=tmp_path / "cache", quiet=True)
    assert (again["stats"]["ran"], again["stats"]["cached"]) == (0, 3)
    assert _mtimes(tmp_path / "cache") == before  # nothing recomputed, nothing rewritten
    assert [p["workloads"] for p in again["points"]] == [p["workloads"] for p in doc["points"]]
    written = json.loads((tmp_path / "out" / "s.json").read_text())
    assert len(written["points"]) == 3 and (tmp_path / "out" / "s.md").is_file()
    assert (tmp_path / "out" / "s_area_cycles.png").is_file() is False  # no synthesis: no area to plot


def test_the_sweep_and_the_energy_path_share_one_machine_run(ray_local, tmp_path, monkeypatch):
    """One cache (flows.run_cache) for the sweep's cycles jobs and ``omnidrl energy``: a run either
    one made is the other's hit, and the model does not run again."""
    import flows.energy
    import golden.run_top
    from hdl.omnidrl import OmniDRLConfig

    calls = []
    real = golden.run_top.run_machine

    def counting(cfg, name, *args, **kwargs):
        calls.append((cfg.emd.group, name))
        return real(cfg, name, *args, **kwargs)

    monkeypatch.setattr(golden.run_top, "run_machine", counting)
    cache = tmp_path / "cache"
    # the energy path's folders: nothing committed, then the sweep's cache, as by default
    monkeypatch.setattr(flows.energy, "RUN_CACHES", (tmp_path / "committed", cache / "cycles"))
    quiet = {"progress": lambda m: None}
    run8, hit = flows.energy.machine_run(OmniDRLConfig.preset("tiny", emd={"group": 8}), "small-dense", **quiet)
    assert not hit and calls == [(8, "small-dense")]
    spec = sweep.spec_from_args("omnidrl", "tiny", ["emd.group=8,16"], [], ["small-dense"], "grid",
                                False, None, "auto", "auto", True, False)
    doc = sweep.run_sweep(spec, tmp_path / "out", "s", cache=cache, quiet=True)
    # group 8 came from the energy path's entry; group 16 ran in a Ray worker (not counted here)
    assert doc["stats"] == {**doc["stats"], "jobs": 2, "ran": 1, "cached": 1, "failed": 0}
    got = {p["overrides"]["emd.group"]: p["workloads"]["small-dense"] for p in doc["points"]}
    assert (got[8]["cycles"], got[8]["counters"]) == (run8["cycles"], run8["counters"])
    run16, hit = flows.energy.machine_run(OmniDRLConfig.preset("tiny", emd={"group": 16}), "small-dense", **quiet)
    assert hit and calls == [(8, "small-dense")]  # the sweep worker's run, read back
    assert (got[16]["cycles"], got[16]["counters"]) == (run16["cycles"], run16["counters"])
    assert run16["counters"]["EMD_GROUPS_DECODED"] < run8["counters"]["EMD_GROUPS_DECODED"]


def test_synthesis_sweep_records_the_flow_report(ray_local, tmp_path):
    from hdl.pe import PEConfig

    spec = sweep.spec_from_args("pe", "default", ["mul_stages=0,1"], [], None, "grid", True, None, "auto", "auto",
                                True, False)
    doc = sweep.run_sweep(spec, tmp_path / "out", "pe", cache=tmp_path / "cache", quiet=True)
    for point in doc["points"]:
        cfg = PEConfig(mul_stages=point["overrides"]["mul_stages"])
        report = json.loads((ray_local / "reports" / f"pe-{cfg.full_hash()}.json").read_text())
        records = {r["metric"]: r["value"] for r in report["records"] if r["target"] == "generic"}
        assert point["errors"] == []
        assert (point["area_ge"], point["flip_flops"], point["min_period_ns"]) == \
            (records["area"], records["flip_flops"], records["min_period"])
        assert point["sram_bits"] == 0
    # two pipeline depths: the deeper PE has more flip-flops and a shorter worst path
    a, b = doc["points"]
    assert b["flip_flops"] > a["flip_flops"] and b["min_period_ns"] < a["min_period_ns"]
    md = (tmp_path / "out" / "pe.md").read_text()
    assert "| # | mul_stages | logic GE |" in md and f"| 0 | 0 | {a['area_ge']:,.0f} |" in md


def test_the_split_plan_is_the_elaborated_top():
    from flows.blackbox import find_instances
    from hdl.config import BlockConfig
    from hdl.omnidrl import OmniDRL, OmniDRLConfig
    from hdl.registry import get_block

    for cfg in (OmniDRLConfig.preset("tiny"), OmniDRLConfig.preset("tiny", transposer_buffers=3, emd={"group": 16})):
        found = find_instances(OmniDRL(cfg), "omnidrl", lambda o: isinstance(getattr(o, "cfg", None), BlockConfig)
                               and o.cfg.BLOCK != "omnidrl" and type(o) is get_block(o.cfg.BLOCK).component_type())
        assert {name.removeprefix("omnidrl."): o.cfg for name, o in found} == sweep.split_parts(cfg)


def test_tied_and_linked_axes_and_skipped_combinations():
    spec = sweep._spec({"block": "omnidrl", "preset": "tiny", "workloads": ["small-dense"],
                        "axes": {"pe_array.block_size,pe_array.a_depth": [[4, 1024], [8, 2048]],
                                 "emd.group": [4, 8]}})
    points, skipped = sweep.expand(spec)
    got = [(p.config.pe_array.rows, p.config.pe_array.cols, p.config.pe_array.block_size, p.config.pe_array.a_depth,
            p.config.emd.group) for p in points]
    assert got == [(4, 4, 4, 1024, 4), (4, 4, 4, 1024, 8), (8, 8, 8, 2048, 8)]
    assert len(skipped) == 1 and "emd.group must be at least pe_array.block_size=8" in skipped[0][1]
    jobs, uses = sweep.plan(spec, points)
    kinds = [j.kind for j in jobs.values()]
    # 3 cycle runs, 3 glues; synthesis: 2 arrays (k 4, 8), 2 transposers, 3 decoders, 3 encoders
    assert (kinds.count("cycles"), kinds.count("glue"), kinds.count("synth")) == (3, 3, 10)
    assert uses[0]["parts"]["array"] == uses[1]["parts"]["array"] != uses[2]["parts"]["array"]


def test_pareto_front_on_hand_worked_points():
    rows = [{"area": 10, "cycles": 100}, {"area": 20, "cycles": 50}, {"area": 20, "cycles": 60},
            {"area": 30, "cycles": 50}, {"area": 5, "cycles": None}, {"area": 40, "cycles": 10}]
    assert sweep.pareto_front(rows, ("area", "cycles")) == [0, 1, 5]


def test_the_documented_schema_is_the_code():
    text = (ROOT / "docs" / "sweep.md").read_text()
    block = text.split("<!-- schema -->")[1].split("<!-- /schema -->")[0]
    rows = [re.match(r"\| `([^`]+)` \| (.+?) \| (.+?) \| (.+?) \|$", line) for line in block.strip().splitlines()[2:]]
    assert all(rows), block
    assert {m[1]: (m[2], m[3], m[4]) for m in rows} == sweep.SCHEMA
    # and the documented example is a valid sweep
    example = text.split("```toml\n")[1].split("```")[0]
    spec = sweep._spec(__import__("tomllib").loads(example), "docs/sweep.md")
    assert len(sweep.expand(spec)[0]) >= 24


def test_td3_grid_resumes_a_killed_chunk_to_the_metrics_of_an_uninterrupted_run(ray_local, tmp_path):
    from bench import gst_vs_pruning as grid

    tiny = dict(hidden=(16, 16), batch=16, start_steps=100, eval_every=100, eval_episodes=1, ckpt_every=100)
    runs = [("HalfCheetah-v5", "gst", 0)]
    target = {"HalfCheetah-v5": 400}
    whole = grid.run_grid(runs, target, chunk=400, work=tmp_path / "whole", cpus=2, overrides=tiny)
    crashes = tmp_path / "crashes"
    killed = grid.run_grid(runs, target, chunk=200, work=tmp_path / "killed", cpus=2, overrides=tiny,
                           crash_once=crashes, snapshot_every=200)
    assert len(list(crashes.glob("*.crashed"))) == 2  # both chunks lost their first worker
    assert killed[0]["steps"] == whole[0]["steps"] == 400
    drop = ("updates_per_s_this_session",)
    assert {k: v for k, v in killed[0].items() if k not in drop} == {k: v for k, v in whole[0].items() if k not in drop}
    metrics = [(tmp_path / w / "HalfCheetah-v5-gst-s0" / "metrics.jsonl").read_text() for w in ("whole", "killed")]
    strip = lambda text: [{k: v for k, v in json.loads(x).items() if k not in ("wall_s", "time")}  # noqa: E731
                          for x in text.splitlines()]
    assert strip(metrics[0]) == strip(metrics[1]) and len(strip(metrics[0])) > 3
    # every chunk end on a snapshot step keeps its checkpoint (the stage traces start from them)
    run = tmp_path / "killed" / "HalfCheetah-v5-gst-s0"
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["checkpoint-200.npz", "checkpoint-400.npz"]
    assert (run / "snapshots" / "checkpoint-400.npz").read_bytes() == (run / "checkpoint.npz").read_bytes()
    assert not (tmp_path / "whole" / "HalfCheetah-v5-gst-s0" / "snapshots").exists()  # 400 is no multiple of 50k


def test_td3_grid_together_finishes_runs_in_the_given_order(ray_local, tmp_path, capsys):
    from bench import gst_vs_pruning as grid

    tiny = dict(hidden=(16, 16), batch=16, start_steps=100, eval_every=100, eval_episodes=1, ckpt_every=100)
    runs = [("HalfCheetah-v5", "gmp", 0), ("HalfCheetah-v5", "dense", 0)]
    rows = grid.run_grid(runs, {"HalfCheetah-v5": 300}, chunk=100, work=tmp_path, cpus=2, overrides=tiny, together=1)
    assert [(r["method"], r["steps"]) for r in rows] == [("gmp", 300), ("dense", 300)]
    done = re.findall(r"HalfCheetah-v5 (\w+) s0: step (\d+)", capsys.readouterr().out)
    assert done == [("gmp", "100"), ("gmp", "200"), ("gmp", "300"), ("dense", "100"), ("dense", "200"),
                    ("dense", "300")]
