"""Design-space sweeps (``omnidrl sweep``): configurations -> area, clock, cycles, energy -> Pareto.

A sweep is a block, a base preset and axes over any config fields (dotted names reach into
nested configs). Every point is generated, synthesized (generic target: GE area, flip-flops,
SRAM bits, worst path; FPGA counts when asked), run on TD3 update workloads by the top's
machine model (:func:`golden.run_top.run_machine`) and, when ``golden.energy`` exists, costed
by the energy model. docs/sweep.md has the file schema, the caching rules and Ray.

The work is split into *jobs*, each cached on its own in ``<cache>/<kind>/<key>.json`` (written
whole or not at all) and run as a Ray task:

``synth``
    one registered block's synthesis (a sub-block of the top, or a point's whole design).
``glue``
    the top with its registered sub-blocks left as black boxes: the logic between them.
``cycles``
    one workload on the machine model, cached by :mod:`flows.run_cache` (the cache
    ``omnidrl energy`` uses too) in ``<cache>/cycles``. The model reads only the ISA shape and
    the EMD format of a config, so points that differ elsewhere (transposer banks) share one run.

With ``split`` (the default for the ``omnidrl`` top) a point's area is the glue's plus its
sub-blocks' (each distinct sub-block config synthesized once for the whole sweep), its worst
path the worst of the parts'. A job's key hashes its config, the options, the tool versions
and the source files the result depends on, so a re-run recomputes nothing and an edit of the
design recomputes what it touches. Points are assembled from their jobs in this process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from hdl.config import BlockConfig, ConfigError
from hdl.registry import BLOCKS, get_block

from . import run_cache
from .generate import BUILD, ROOT
from .locks import file_lock

__all__ = ["SweepError", "SweepSpec", "Point", "Job", "load_spec", "spec_from_args", "expand", "plan",
           "run_job", "run_sweep", "pareto_front", "split_parts", "SCHEMA"]

#: The sweep file's keys: key -> (type, default as written in TOML, meaning). docs/sweep.md shows
#: this table and tests/test_sweep.py compares the two.
SCHEMA: dict[str, tuple[str, str, str]] = {
    "block": ("string", "required", "registered block to sweep (`omnidrl` is the whole top)"),
    "preset": ("string", '"default"', "base preset the points start from"),
    "mode": ("string", '"grid"', "`grid`: every combination of the axes; `list`: the i-th value of every axis "
             "together (axes of equal length)"),
    "workloads": ("list of strings", '["halfcheetah-sparse"] for `omnidrl`, [] otherwise',
                  "`golden.workloads` TD3 updates run on the machine model (top only)"),
    "set": ("table", "{}", "fixed overrides of every point: dotted name = value"),
    "axes": ("table", "{}", "dotted name = list of values; a field tied to others (the top's "
             "`pe_array.rows`, `cols`, `block_size`) sets them all; `\"a,b\" = [[a1, b1], [a2, b2]]` "
             "links fields that move together"),
    "synth.enabled": ("bool", "true", "synthesize every point"),
    "synth.targets": ("list of strings", '["generic"]', "`generic` (GE area, worst path), `ice40`, `xilinx`"),
    "synth.hierarchy": ("string", '"auto"', "`auto`, `flatten` or `keep`, as `omnidrl synth --hierarchy`"),
    "synth.abc": ("string", '"auto"', "`auto`, `default` or `fast`, as `omnidrl synth --abc`"),
    "synth.split": ("bool", "true", "synthesize the top's registered sub-blocks one by one (each distinct "
                    "config once) plus the glue between them, instead of the whole top"),
    "energy": ("bool", "true", "cost each workload with `golden.energy` when that module exists"),
}

MODES = ("grid", "list")
JOB_KINDS = ("synth", "glue", "cycles")


class SweepError(ValueError):
    """A sweep description is wrong: one line naming the key, the value and what is allowed."""


# -- the description -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepSpec:
    block: str
    preset: str = "default"
    mode: str = "grid"
    workloads: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    axes: tuple[tuple[str, tuple], ...] = ()
    synth: bool = True
    targets: tuple[str, ...] = ("generic",)
    hierarchy: str = "auto"
    abc: str = "auto"
    split: bool = True
    energy: bool = True


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def _spec(data: dict, source: str = "") -> SweepSpec:
    """Check ``data`` (the parsed file or the command line) against :data:`SCHEMA`."""
    from golden.workloads import WORKLOADS

    from .synth import ABC_SCRIPTS, HIERARCHIES, TARGETS

    top_keys = {k.split(".")[0] for k in SCHEMA}
    for key in data:
        if key not in top_keys:
            raise SweepError(f"{_where(source)}unknown key {key!r}; keys are {', '.join(sorted(top_keys))}")
    synth = data.get("synth", {})
    if not isinstance(synth, dict):
        raise SweepError(f"{_where(source)}synth must be a table with keys enabled, targets, hierarchy, abc, split")
    for key in synth:
        if f"synth.{key}" not in SCHEMA:
            raise SweepError(f"{_where(source)}unknown key 'synth.{key}'; synth keys are enabled, targets, "
                             "hierarchy, abc, split")

    def typed(key, value, kind):
        ok = {"string": isinstance(value, str), "bool": isinstance(value, bool),
              "table": isinstance(value, dict),
              "list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value)}[kind]
        if not ok:
            raise SweepError(f"{_where(source)}{key}={value!r} is not allowed; {key} must be a {kind}")
        return value

    def choice(key, value, allowed):
        if value not in allowed:
            raise SweepError(f"{_where(source)}{key}={value!r} is not allowed; choose one of {', '.join(allowed)}")
        return value

    if "block" not in data:
        raise SweepError(f"{_where(source)}block is required: one of {', '.join(sorted(BLOCKS))}")
    block = typed("block", data["block"], "string")
    if block not in BLOCKS:
        raise SweepError(f"{_where(source)}block={block!r} is not allowed; choose one of {', '.join(sorted(BLOCKS))}")
    cls = get_block(block).config_type()
    preset = typed("preset", data.get("preset", "default"), "string")
    choice("preset", preset, cls.preset_names())
    mode = choice("mode", typed("mode", data.get("mode", "grid"), "string"), MODES)
    default_workloads = ["halfcheetah-sparse"] if block == "omnidrl" else []
    workloads = typed("workloads", data.get("workloads", default_workloads), "list of strings")
    for name in workloads:
        choice("workloads", name, tuple(WORKLOADS))
    if workloads and block != "omnidrl":
        raise SweepError(f"{_where(source)}workloads={workloads!r} is not allowed for block {block!r}: "
                         "the machine model runs the omnidrl top")
    fixed = typed("set", data.get("set", {}), "table")
    axes = typed("axes", data.get("axes", {}), "table")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{_where(source)}axes.{name}={values!r} is not allowed; give a non-empty list of values")
        width = len(name.split(","))
        if width > 1 and not all(isinstance(v, list) and len(v) == width for v in values):
            raise SweepError(f"{_where(source)}axes.{name}={values!r} is not allowed; linked fields take a list "
                             f"of {width}-value lists, e.g. [[4, 16384, 16384], [8, 8192, 8192]]")
    if mode == "list" and len({len(v) for v in axes.values()}) > 1:
        raise SweepError(f"{_where(source)}mode='list' needs axes of equal length; got "
                         + ", ".join(f"{n}: {len(v)}" for n, v in axes.items()))
    targets = typed("synth.targets", synth.get("targets", ["generic"]), "list of strings")
    for t in targets:
        choice("synth.targets", t, TARGETS)
    return SweepSpec(
        block=block, preset=preset, mode=mode, workloads=tuple(workloads),
        fixed=tuple(fixed.items()),
        axes=tuple((n.replace(" ", ""), tuple(tuple(x) if isinstance(x, list) else x for x in v)) for n, v in axes.items()),
        synth=typed("synth.enabled", synth.get("enabled", True), "bool"), targets=tuple(targets),
        hierarchy=choice("synth.hierarchy", typed("synth.hierarchy", synth.get("hierarchy", "auto"), "string"),
                         HIERARCHIES),
        abc=choice("synth.abc", typed("synth.abc", synth.get("abc", "auto"), "string"), ABC_SCRIPTS),
        split=typed("synth.split", synth.get("split", True), "bool"),
        energy=typed("energy", data.get("energy", True), "bool"))


def load_spec(path: Path) -> SweepSpec:
    """The sweep described by the TOML file ``path``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SweepError(f"--file {str(path)!r}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"--file {str(path)!r}: not valid TOML ({exc})") from None
    return _spec(data, str(path))


def _parse_axis(text: str, option: str) -> tuple[str, list[str]]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise SweepError(f"{option} {text!r} is not allowed; write NAME=V1,V2,... e.g. emd.group=16,32")
    return name.strip(), [v.strip() for v in values.split(",") if v.strip()]


def spec_from_args(block: str | None, preset: str, axes: list[str], fixed: list[str], workloads: list[str] | None,
                   mode: str, synth: bool, targets: list[str] | None, hierarchy: str, abc: str, split: bool,
                   energy: bool) -> SweepSpec:
    """The sweep of an ``omnidrl sweep BLOCK --axis ... --set ...`` command line. Values stay
    strings here: they are parsed against the field types as ``--set`` values are."""
    data: dict[str, Any] = {"preset": preset, "mode": mode, "energy": energy,
                            "synth": {"enabled": synth, "hierarchy": hierarchy, "abc": abc, "split": split}}
    if block is not None:
        data["block"] = block
    if workloads is not None:
        data["workloads"] = workloads
    if targets is not None:
        data["synth"]["targets"] = targets
    cls = get_block(block).config_type() if block in BLOCKS else None
    data["axes"] = {}
    for text in axes:
        name, values = _parse_axis(text, "--axis")
        data["axes"][name] = [_typed(cls, name, v) for v in values]
    data["set"] = {}
    for item in fixed:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SweepError(f"--set {item!r} is not allowed; write NAME=VALUE")
        data["set"][name.strip()] = _typed(cls, name.strip(), value.strip())
    return _spec(data)


def _typed(cls, name: str, text: str):
    """``text`` parsed as the type of field ``name`` (dotted) of ``cls``, as ``--set`` parses it;
    left as text without a class (the block is checked later)."""
    if cls is None:
        return text
    try:
        node = cls.parse_overrides([f"{name}={text}"])
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    for part in name.split("."):
        node = node[part]
    return node


# -- the points ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Point:
    index: int
    overrides: tuple[tuple[str, Any], ...]  # the axis values of this point (what names it)
    config: BlockConfig

    @property
    def name(self) -> str:
        return " ".join(f"{n}={_text(v)}" for n, v in self.overrides) or "base"


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _tied(cls, name: str) -> tuple[str, ...]:
    for group in getattr(cls, "TIED_FIELDS", ()):
        if name in group:
            return tuple(group)
    return (name,)


def _make_config(spec: SweepSpec, values: dict[str, Any]) -> BlockConfig:
    cls = get_block(spec.block).config_type()
    items = dict(spec.fixed)
    for name, value in values.items():
        for tied in _tied(cls, name):  # a tied field follows unless it is swept or set itself
            if tied == name or (tied not in values and tied not in dict(spec.fixed)):
                items[tied] = value
    return cls.preset(spec.preset, **cls.parse_overrides([f"{n}={_text(v)}" for n, v in items.items()]))


def _linked(name: str, value) -> list[tuple[str, Any]]:
    """``(field, value)`` pairs of one axis value: linked fields (``a,b``) take a value each."""
    names = name.split(",")
    return list(zip(names, value)) if len(names) > 1 else [(name, value)]


def expand(spec: SweepSpec) -> tuple[list[Point], list[tuple[str, str]]]:
    """The valid points of ``spec`` and the skipped ``(name, reason)`` combinations.

    A combination that breaks a cross-field rule (the top's ``k <= emd.group``) is skipped.
    A bad field name, and a value that no point can use, raise :class:`SweepError`.
    """
    if spec.mode == "grid":
        combos = list(itertools.product(*(v for _, v in spec.axes)))
    else:
        combos = list(zip(*(v for _, v in spec.axes)))
    cls = get_block(spec.block).config_type()
    try:  # names first: a bad name is one error, not one per point
        cls.parse_overrides([f"{n}={_text(v)}" for n, v in spec.fixed])
        for name, values in spec.axes:
            cls.parse_overrides([f"{n}={_text(v)}" for n, v in _linked(name, values[0])])
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    points, skipped, errors = [], [], {}
    for combo in combos:
        values = dict(item for (name, _), v in zip(spec.axes, combo) for item in _linked(name, v))
        label = " ".join(f"{n}={_text(v)}" for n, v in values.items()) or "base"
        try:
            cfg = _make_config(spec, values)
        except ConfigError as exc:
            skipped.append((label, str(exc)))
            for item in values.items():
                errors.setdefault(item, str(exc))
            continue
        points.append(Point(len(points), tuple(values.items()), cfg))
        for item in values.items():
            errors[item] = None
    bad = [(item, why) for item, why in errors.items() if why is not None]
    if bad or not points:
        (name, value), why = bad[0] if bad else ((None, None), skipped[0][1] if skipped else "no axes")
        where = f"{name}={_text(value)}: no point can use it: " if name else "no valid point: "
        raise SweepError(where + why)
    return points, skipped


# -- jobs, keys and the cache --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    kind: str
    key: str
    label: str
    payload: dict = dataclasses.field(compare=False, hash=False)


@lru_cache(maxsize=None)
def tool_versions() -> dict[str, str]:
    """Versions of the tools and packages a job's result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("amaranth", "pyosys", "numpy", "omnidrl-gen"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    sta = shutil.which("sta")
    out["opensta"] = (subprocess.run([sta, "-version"], capture_output=True, text=True).stdout.strip()
                      if sta else "not installed")
    return out


@lru_cache(maxsize=None)
def source_digest() -> str:
    """SHA-256 over the source files a synthesis job's result depends on: hdl/, the flows that
    generate and synthesize, and the golden modules hdl/ imports. (A ``cycles`` job's key is
    :func:`flows.run_cache.run_key`.)"""
    hdl = sorted((ROOT / "hdl").rglob("*.py"))
    files = hdl + [ROOT / "flows" / f for f in ("generate.py", "synth.py", "blackbox.py", "liberty.py", "yosys_run.py")]
    return run_cache.files_digest(sorted(set(files) | set(run_cache.golden_closure(hdl))))


def _key(kind: str, what: dict) -> str:
    text = json.dumps({"kind": kind, "what": what, "versions": tool_versions(), "source": source_digest()},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _cache_path(cache: Path, job: Job) -> Path:
    return Path(cache) / job.kind / f"{job.key}.json"


def _cycles_folder(cache: Path) -> Path:
    """Where the ``cycles`` jobs of a sweep with job cache ``cache`` live (:mod:`flows.run_cache`)."""
    return Path(cache) / "cycles"


def cached(cache: Path, job: Job) -> dict | None:
    """The cached result of ``job``, or None."""
    if job.kind == "cycles":
        return run_cache.lookup(_config_of(job.payload), job.payload["workload"], [_cycles_folder(cache)])
    path = _cache_path(cache, job)
    try:
        return json.loads(path.read_text())["result"] if path.is_file() else None
    except (json.JSONDecodeError, KeyError, OSError):
        return None  # a damaged entry is recomputed


def _store(cache: Path, job: Job, result: dict) -> None:
    path = _cache_path(cache, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"job": {"kind": job.kind, "label": job.label, "payload": job.payload},
                               "versions": tool_versions(), "result": result}, indent=1) + "\n")
    os.replace(tmp, path)  # whole or not at all: a kill never leaves half an entry


def split_parts(cfg: BlockConfig) -> dict[str, BlockConfig]:
    """The registered sub-blocks of the top ``cfg`` (instance name -> config), derived from its
    config. The ``glue`` job checks them against the elaborated design, so this cannot drift
    from the hardware unnoticed."""
    if cfg.BLOCK != "omnidrl":
        return {}
    return cfg.parts()


def plan(spec: SweepSpec, points: list[Point]) -> tuple[dict[str, Job], dict[int, dict[str, Any]]]:
    """The distinct jobs of the sweep (key -> job) and, per point, which jobs it is made of."""
    jobs: dict[str, Job] = {}
    uses: dict[int, dict[str, Any]] = {}
    opts = {"hierarchy": spec.hierarchy, "abc": spec.abc}

    def add(kind, what, label, payload):
        job = Job(kind, _key(kind, what), label, payload)
        jobs.setdefault(job.key, job)
        return job.key

    for p in points:
        cfg = p.config
        use: dict[str, Any] = {"parts": {}, "glue": None, "whole": {}, "cycles": {}}
        if spec.synth:
            parts = split_parts(cfg) if spec.split else {}
            for target in spec.targets:
                if target == "generic" and parts:
                    for inst, sub in parts.items():
                        use["parts"][inst] = add("synth", {"config": sub.to_json(), "target": target, **opts},
                                                 f"synth {sub.BLOCK} {sub.full_hash()}",
                                                 {"block": sub.BLOCK, "config": sub.to_dict(), "target": target, **opts})
                    use["glue"] = add("glue", {"config": cfg.to_json(), **opts}, f"glue {cfg.BLOCK} {cfg.full_hash()}",
                                      {"block": cfg.BLOCK, "config": cfg.to_dict(), **opts,
                                       "parts": {i: [s.BLOCK, s.to_json()] for i, s in parts.items()}})
                else:
                    use["whole"][target] = add("synth", {"config": cfg.to_json(), "target": target, **opts},
                                               f"synth {cfg.BLOCK} {cfg.full_hash()} {target}",
                                               {"block": cfg.BLOCK, "config": cfg.to_dict(), "target": target, **opts})
        for w in spec.workloads:
            job = Job("cycles", run_cache.run_key(cfg, w), f"cycles {w} k={cfg.pe_array.block_size} group={cfg.emd.group}",
                      {"block": cfg.BLOCK, "config": cfg.to_dict(), "workload": w})
            use["cycles"][w] = jobs.setdefault(job.key, job).key
        uses[p.index] = use
    return jobs, uses


# -- running one job (in a Ray worker) -----------------------------------------------------
def _config_of(payload: dict) -> BlockConfig:
    return get_block(payload["block"]).config_type().from_dict(payload["config"])


def _memory_bits(component, top: str) -> int:
    """Bits of the black-boxed memories (width x depth) of ``component``."""
    from .blackbox import find_instances, is_blackbox

    return sum(getattr(o, "width", 0) * getattr(o, "depth", 0) for _, o in find_instances(component, top, is_blackbox))


_KEPT = ("area", "flip_flops", "cells", "transistors", "min_period", "luts", "dsps", "brams", "carries",
         "lutrams", "carry4", "fmax", "fits_up5k", "logic_cells", "synth_time", "elapsed", "hierarchy_kept",
         "abc_fast", "blackbox_instances")


def _synth_job(payload: dict) -> dict:
    from .synth import load_report, synthesize

    cfg = _config_of(payload)
    t0 = time.monotonic()
    path = synthesize(cfg, payload["target"], hierarchy=payload["hierarchy"], abc=payload["abc"])
    values = {r["metric"]: r["value"] for r in load_report(path)["records"] if r["target"] == payload["target"]}
    out = {m: values[m] for m in _KEPT if m in values}
    out["sram_bits"] = _memory_bits(get_block(cfg.BLOCK).build(cfg), cfg.BLOCK)
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


_AUTO_PORT = re.compile(r"\\port\$(\d+)\$(\d+)")


def _canonical_ports(text: str) -> str:
    """``text`` with the ports Amaranth names by a global counter (``\\port$10311$0``) numbered
    in order of appearance instead: a change elsewhere in the design (inside a stubbed part)
    shifts that counter without changing this logic."""
    names: dict[str, str] = {}
    return _AUTO_PORT.sub(lambda m: names.setdefault(m[0], f"\\port${len(names)}${m[2]}"), text)


def _glue_job(payload: dict, cache: Path) -> dict:
    """The top's logic outside its registered sub-blocks (their modules read as black boxes).

    The synthesis reads the top's Verilog with those modules cut to stubs and their insides
    left out, and is cached a second time by that text: points whose glue is the same logic
    (the transposer's banks change only the transposer) synthesize it once.
    """
    from .blackbox import _MODULE_BLOCK, check_in_verilog, find_instances, is_blackbox, stub_blackboxes
    from .generate import artefact_dir, generate_verilog
    from .synth import SynthError, synth_generic

    cfg = _config_of(payload)
    spec = get_block(cfg.BLOCK)
    t0 = time.monotonic()

    def registered(origin) -> bool:
        sub_cfg = getattr(origin, "cfg", None)
        return (isinstance(sub_cfg, BlockConfig) and sub_cfg.BLOCK != cfg.BLOCK
                and type(origin) is get_block(sub_cfg.BLOCK).component_type())

    # one walk: the sub-blocks, and the black boxes outside them (the walk stops at either)
    found = find_instances(spec.build(cfg), cfg.BLOCK, lambda o: registered(o) or is_blackbox(o))
    subs = {name: o for name, o in found if registered(o)}
    memories = [o for name, o in found if name not in subs]
    have = {name.split(".", 1)[1]: (o.cfg.BLOCK, o.cfg.to_json()) for name, o in subs.items()}
    if have != {inst: tuple(v) for inst, v in payload["parts"].items()}:
        raise SynthError(f"the sub-blocks of {cfg.BLOCK} {cfg.full_hash()} are not the planned ones "
                         f"(flows.sweep.split_parts): design {sorted(have)}, plan {sorted(payload['parts'])}")
    verilog = generate_verilog(cfg)
    boxes = tuple(name for name, _ in found)
    try:
        text = stub_blackboxes(verilog.read_text(), boxes)
        check_in_verilog(boxes, text, verilog.name)
    except ValueError as exc:
        raise SynthError(str(exc)) from None
    inside = tuple(f"{b}." for b in boxes)
    text = _canonical_ports(_MODULE_BLOCK.sub(lambda m: "" if m["name"].lstrip("\\").startswith(inside) else m[0],
                                              text))
    sram_bits = sum(getattr(o, "width", 0) * getattr(o, "depth", 0) for o in memories)
    same = Job("gluetext", _key("synth", {"verilog": hashlib.sha256(text.encode()).hexdigest(),
                                          "hierarchy": payload["hierarchy"], "abc": payload["abc"]}), "", {})
    # a job with the same glue running in another worker: wait for its result (the lock goes
    # with its process, so a killed worker never leaves it held)
    with file_lock(_cache_path(cache, same).with_suffix(".lock"), "a synthesis of the same glue", lambda m: None):
        out = cached(cache, same)
        if out is None:
            work = artefact_dir(cfg) / f"synth-glue-{cfg.full_hash()}"
            work.mkdir(parents=True, exist_ok=True)
            glue_v = work / f"{verilog.stem}.glue.v"
            glue_v.write_text(text)
            records = synth_generic(glue_v, cfg.BLOCK, work, boxes, None, payload["hierarchy"], payload["abc"])
            values = {r["metric"]: r["value"] for r in records}
            out = {m: values[m] for m in _KEPT if m in values}
            out["seconds"] = round(time.monotonic() - t0, 1)
            _store(cache, same, out)
    return {**out, "sram_bits": sram_bits, "glue_verilog_sha256": same.key}


def run_job(job: Job, cache: str, crash_once: str | None = None) -> dict:
    """Compute ``job`` (or read it from the cache, if another run got there first), store it
    and return it. Runs in a Ray worker.

    ``crash_once`` (tests only): a folder; the first attempt of every job ends its worker
    process half-way, leaving a mark there, as a killed machine would.
    """
    done = cached(Path(cache), job)
    if done is not None:
        return done
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

    def crash() -> None:
        if crash_once is not None:
            mark = Path(crash_once) / f"{job.key}.crashed"
            if not mark.exists():
                mark.parent.mkdir(parents=True, exist_ok=True)
                mark.write_text(job.label)
                os._exit(1)  # the work above is lost, as in a real crash

    if job.kind == "cycles":  # computed, locked and stored by the machine-run cache
        return run_cache.cached_run(_config_of(job.payload), job.payload["workload"], [_cycles_folder(cache)],
                                    before_store=crash)[0]
    if job.kind == "glue":
        result = _glue_job(job.payload, Path(cache))
    else:
        result = _synth_job(job.payload)
    crash()
    _store(Path(cache), job, result)
    return result


# -- assembling points, Pareto fronts -------------------------------------------------------
def _energy_module():
    try:
        from golden import energy
    except ImportError:
        return None
    return energy if hasattr(energy, "update_energy") else None


def _parameters(func) -> set[str]:
    import inspect

    return set(inspect.signature(func).parameters)


def _assemble(spec: SweepSpec, point: Point, use: dict, results: dict[str, Any], energy) -> dict:
    cfg = point.config
    rec: dict[str, Any] = {"index": point.index, "name": point.name, "overrides": dict(point.overrides),
                           "block": cfg.BLOCK, "preset": spec.preset, "config_hash": cfg.config_hash(),
                           "full_hash": cfg.full_hash(), "config": cfg.to_dict(), "errors": []}

    def get(key):
        value = results.get(key)
        if value is None:  # not run yet (a report of a sweep still running, or stopped)
            rec.setdefault("pending", []).append(jobs_label.get(key, key))
        elif isinstance(value, BaseException):
            rec["errors"].append(f"{jobs_label.get(key, key)}: {(str(value).splitlines() or [repr(value)])[0]}")
            return None
        return value

    jobs_label = results.get("__labels__", {})
    if use["glue"] is not None:
        glue = get(use["glue"])
        parts = {inst: get(key) for inst, key in use["parts"].items()}
        if glue is not None and all(v is not None for v in parts.values()):
            units = {"glue": glue, **parts}
            rec["area_ge"] = round(sum(u["area"] for u in units.values()), 2)
            rec["flip_flops"] = sum(u["flip_flops"] for u in units.values())
            rec["transistors"] = sum(u["transistors"] for u in units.values())
            rec["sram_bits"] = sum(u["sram_bits"] for u in units.values())
            periods = {n: u["min_period"] for n, u in units.items() if "min_period" in u}
            if periods:
                worst = max(periods, key=periods.get)
                rec["min_period_ns"], rec["period_limited_by"] = periods[worst], worst
            rec["synth_split"] = {n: {m: u[m] for m in ("area", "flip_flops", "min_period", "sram_bits") if m in u}
                                  for n, u in units.items()}
    generic = use["whole"].get("generic")
    if generic is not None and (whole := get(generic)) is not None:
        rec.update(area_ge=whole["area"], flip_flops=whole["flip_flops"], transistors=whole["transistors"],
                   sram_bits=whole["sram_bits"])
        if "min_period" in whole:
            rec["min_period_ns"], rec["period_limited_by"] = whole["min_period"], cfg.BLOCK
    for target, key in use["whole"].items():
        if target != "generic" and (fpga := get(key)) is not None:
            rec.setdefault("fpga", {})[target] = fpga
    for w, key in use["cycles"].items():
        run = get(key)
        if run is None:
            continue
        c = run["counters"]
        row = {"cycles": run["cycles"], "array_utilization": round(run["array_utilization"], 4),
               "state_equal": run["state_equal"], "macs": c.get("MACS"), "macs_dense": c.get("MACS_DENSE"),
               "load_busy": round(c.get("LD_BUSY", 0) / run["cycles"], 4) if run["cycles"] else None,
               "array_busy": round(c.get("EX_BUSY", 0) / run["cycles"], 4) if run["cycles"] else None,
               "counters": c}
        if "min_period_ns" in rec:
            row["update_us"] = round(run["cycles"] * rec["min_period_ns"] / 1000, 2)
        if energy is not None and spec.energy:
            try:
                # the synthesized logic area, where the model takes one (its leakage scales with it)
                area = {"area_ge": rec["area_ge"]} if "area_ge" in rec and "area_ge" in _parameters(
                    energy.update_energy) else {}
                e = energy.update_energy(cfg, run, **area)
                row["energy_j"] = e["total_j"]
                row["energy"] = {k: v for k, v in e.items() if isinstance(v, (int, float, str))}
                if isinstance(e.get("by_component"), dict):
                    row["energy"]["by_component"] = e["by_component"]
            except Exception as exc:  # noqa: BLE001 - a model error is reported on the point
                rec["errors"].append(f"energy {w}: {exc}")
        rec.setdefault("workloads", {})[w] = row
    return rec


def pareto_front(rows: list[dict], keys: tuple[str, ...]) -> list[int]:
    """Indices of the rows no other row beats on every key (all minimized); rows lacking a key
    take no part."""
    have = [i for i, r in enumerate(rows) if all(r.get(k) is not None for k in keys)]
    front = []
    for i in have:
        a = [rows[i][k] for k in keys]
        dominated = any(all(rows[j][k] <= x for k, x in zip(keys, a)) and any(rows[j][k] < x for k, x in zip(keys, a))
                        for j in have if j != i)
        if not dominated:
            front.append(i)
    return front


def _metric_rows(records: list[dict], workload: str | None) -> list[dict]:
    rows = []
    for r in records:
        w = (r.get("workloads") or {}).get(workload, {}) if workload else {}
        rows.append({"area": r.get("area_ge"), "cycles": w.get("cycles"), "energy": w.get("energy_j"),
                     "period": r.get("min_period_ns")})
    return rows


def _limits(rec: dict, workload: str | None) -> str:
    """What bounds a configuration: its cycles (array or loads), its area, its clock."""
    out = []
    w = (rec.get("workloads") or {}).get(workload or "", {})
    if w:
        lb, ab = w.get("load_busy") or 0.0, w.get("array_busy") or 0.0
        what = "loads (operand traffic)" if lb > ab else "the PE array"
        out.append(f"cycles bound by {what}: array busy {ab:.0%}, load unit busy {lb:.0%}, "
                   f"utilization {w['array_utilization']:.0%}")
    split = rec.get("synth_split")
    if split:
        big = max(split, key=lambda n: split[n]["area"])
        out.append(f"area: {big} {split[big]['area'] / rec['area_ge']:.0%}")
    if rec.get("period_limited_by"):
        out.append(f"clock: {rec['period_limited_by']} {rec['min_period_ns']} ns")
    return "; ".join(out)


# -- the whole sweep -----------------------------------------------------------------------
def run_sweep(spec: SweepSpec, out: Path, name: str = "sweep", *, cache: Path | None = None,
              address: str | None = None, cpus: int | None = None, crash_once: Path | None = None,
              quiet: bool = False, run: bool = True, write_every_s: float = 120.0) -> dict:
    """Run ``spec``; write ``out/<name>.json`` (+ ``.md``, Pareto plots); return the document.

    The outputs are also written while the sweep runs (every ``write_every_s`` seconds, as jobs
    end), with the points still waiting for a job marked ``pending``. ``run=False`` runs
    nothing: the outputs of what the cache holds. ``stats`` in the result counts the jobs run
    now and those found in the cache.
    """
    from .raytasks import Progress, ray_session, run_tasks

    cache = Path(cache) if cache is not None else BUILD / "sweep" / "cache"
    points, skipped = expand(spec)
    jobs, uses = plan(spec, points)
    results: dict[str, Any] = {}
    todo = []
    for key, job in jobs.items():
        hit = cached(cache, job)
        if hit is not None:
            results[key] = hit
        else:
            todo.append(job)
    progress = None if quiet else Progress("sweep", len(jobs), len(jobs) - len(todo))
    if progress is not None:
        progress.update(note=f"{len(points)} points, {len(jobs)} jobs, {len(jobs) - len(todo)} cached")
    t0 = time.monotonic()
    energy = _energy_module() if spec.energy else None
    results["__labels__"] = {k: j.label for k, j in jobs.items()}

    def report(stats: dict) -> dict:
        records = [_assemble(spec, p, uses[p.index], results, energy) for p in points]
        doc = _document(spec, records, skipped, energy, name)
        doc["stats"] = {"points": len(points), "jobs": len(jobs), **stats, "seconds": round(time.monotonic() - t0, 1)}
        write_outputs(doc, Path(out), name)
        return doc

    last = {"written": time.monotonic()}

    def on_result(key, args, result):
        results[key] = result
        if time.monotonic() - last["written"] > write_every_s:
            last["written"] = time.monotonic()
            report({"ran": sum(k in results for k in (j.key for j in todo)), "cached": len(jobs) - len(todo),
                    "failed": sum(isinstance(results.get(j.key), BaseException) for j in todo), "running": True})
        return []

    missing = len(todo)
    if not run:
        todo = []
    if todo:
        # in point order, so the first points are complete (and in the outputs) early
        first = {}
        for index in sorted(uses):
            u = uses[index]
            for key in [*u["parts"].values(), u["glue"], *u["whole"].values(), *u["cycles"].values()]:
                first.setdefault(key, index)
        order = {"synth": 0, "glue": 1, "cycles": 2}
        todo.sort(key=lambda j: (first.get(j.key, 0), order[j.kind]))
        with ray_session(address, cpus):
            ran = run_tasks(run_job, [(job.key, (job, str(cache), None if crash_once is None else str(crash_once)))
                                      for job in todo], progress=progress, describe=lambda key: jobs[key].label,
                            on_result=on_result)
        results.update(ran)
    if progress is not None:
        progress.close()
    return report({"ran": len(todo), "cached": len(jobs) - missing, "pending": missing - len(todo),
                   "failed": sum(isinstance(results.get(j.key), BaseException) for j in todo)})


def _document(spec: SweepSpec, records: list[dict], skipped: list, energy, name: str) -> dict:
    workload = spec.workloads[0] if spec.workloads else None
    rows = _metric_rows(records, workload)
    if workload:
        fronts = {"area_cycles": pareto_front(rows, ("area", "cycles"))}
        if energy is not None:
            fronts["energy_area"] = pareto_front(rows, ("area", "energy"))
    else:  # a block alone: area against its clock
        fronts = {"area_period": pareto_front(rows, ("area", "period"))}
    for key, front in fronts.items():
        for i in front:
            records[i].setdefault("pareto", []).append(key)
    main = fronts["area_cycles"] if workload else fronts["area_period"]
    pareto = [{"index": i, "name": records[i]["name"], "config_hash": records[i]["config_hash"],
               "area_ge": records[i].get("area_ge"), "min_period_ns": records[i].get("min_period_ns"),
               "cycles": (records[i].get("workloads") or {}).get(workload, {}).get("cycles") if workload else None,
               "limits": _limits(records[i], workload)} for i in sorted(main, key=lambda i: rows[i]["area"])]
    return {"sweep": name, "block": spec.block, "preset": spec.preset, "mode": spec.mode,
            "axes": {n: list(v) for n, v in spec.axes}, "set": dict(spec.fixed), "workloads": list(spec.workloads),
            "synth": {"enabled": spec.synth, "targets": list(spec.targets), "hierarchy": spec.hierarchy,
                      "abc": spec.abc, "split": spec.split},
            "energy_model": "golden.energy" if energy is not None else None,
            "energy_note": None if energy is not None or not spec.workloads or not spec.energy
            else "golden.energy is not in this checkout: no energy columns",
            "versions": tool_versions(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "points": records, "skipped": [{"name": n, "reason": r} for n, r in skipped],
            "pareto": pareto}


def _fmt(value, digits=0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def render_markdown(doc: dict) -> str:
    workloads = doc["workloads"]
    fields = list(dict.fromkeys(f for r in doc["points"] for f in r["overrides"]))
    short = {f: f.rsplit(".", 1)[-1] for f in fields}
    if len(set(short.values())) < len(fields):
        short = {f: f for f in fields}
    head = ["#", *(short[f] for f in fields), "logic GE", "flip-flops", "SRAM bits", "min period (ns)", "period set by"]
    for w in workloads:
        head += [f"{w} cycles", "util.", "us / update"]
        if doc["energy_model"]:
            head += ["uJ / update"]
    head += ["Pareto"]
    lines = [f"# Sweep `{doc['sweep']}`: {doc['block']} from preset `{doc['preset']}`", "",
             f"{len(doc['points'])} points ({doc['mode']} over " + ", ".join(f"`{n}` {v}" for n, v in doc["axes"].items())
             + (f"; fixed {doc['set']}" if doc["set"] else "") + f"), recorded {doc['date']}."
             + (f" Skipped (a rule of the config): {len(doc['skipped'])}." if doc["skipped"] else ""), ""]
    if doc.get("energy_note"):
        lines += [f"Energy: {doc['energy_note']}.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["points"]:
        row = [str(r["index"]), *(_text(r["overrides"].get(f, "")) for f in fields), _fmt(r.get("area_ge")), _fmt(r.get("flip_flops")), _fmt(r.get("sram_bits")),
               _fmt(r.get("min_period_ns"), 2), r.get("period_limited_by", "-")]
        for w in workloads:
            x = (r.get("workloads") or {}).get(w, {})
            row += [_fmt(x.get("cycles")), _fmt(x.get("array_utilization"), 3), _fmt(x.get("update_us"), 1)]
            if doc["energy_model"]:
                row += [_fmt(None if x.get("energy_j") is None else x["energy_j"] * 1e6, 2)]
        row += [", ".join(r.get("pareto", [])) or ("error: " + "; ".join(r["errors"])[:80] if r["errors"] else "")
                or ("pending" if r.get("pending") else "")]
        lines.append("| " + " | ".join(row) + " |")
    if doc["pareto"]:
        lines += ["", "Pareto-optimal (logic area vs " + (f"cycles of {workloads[0]}" if workloads else "worst path")
                  + "):", ""]
        lines += [f"- #{p['index']} `{p['name']}`: {_fmt(p['area_ge'])} GE, "
                  + (f"{_fmt(p['cycles'])} cycles" if workloads else f"{_fmt(p['min_period_ns'], 2)} ns")
                  + f"; {p['limits']}" for p in doc["pareto"]]
    return "\n".join(lines) + "\n"


def plot_pareto(doc: dict, out: Path, name: str) -> list[Path]:
    """``<name>_area_cycles.png`` (and ``<name>_energy_area.png`` with energy), front marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = doc["workloads"][0] if doc["workloads"] else None
    rows = [(r, (r.get("workloads") or {}).get(w, {}) if w else r) for r in doc["points"]]
    written = []
    if w is None:
        plots = [("area_period", "period", "worst path (ns)", lambda x: x.get("min_period_ns"))]
    else:
        plots = [("area_cycles", "cycles", f"cycles per {w} update", lambda x: x.get("cycles"))]
    if w is not None and doc["energy_model"]:
        plots.append(("energy_area", "energy", f"energy per {w} update (uJ)",
                      lambda x: None if x.get("energy_j") is None else x["energy_j"] * 1e6))
    for key, _metric, ylabel, get in plots:
        pts = [(r["area_ge"], get(x), r) for r, x in rows if r.get("area_ge") is not None and get(x) is not None]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ks = sorted({r["config"].get("pe_array", {}).get("block_size") for _, _, r in pts}, key=lambda v: (v is None, v))
        for k in ks:
            sel = [(a, y) for a, y, r in pts if r["config"].get("pe_array", {}).get("block_size") == k]
            ax.scatter([a for a, _ in sel], [y for _, y in sel], s=22, alpha=0.7,
                       label=f"k = {k}" if k is not None else "points")
        front = sorted([(a, y, r) for a, y, r in pts if key in r.get("pareto", [])], key=lambda t: t[0])
        if front:
            ax.plot([a for a, _, _ in front], [y for _, y, _ in front], "k-", lw=1)
            ax.scatter([a for a, _, _ in front], [y for _, y, _ in front], s=80, facecolors="none",
                       edgecolors="k", label="Pareto front")
            for a, y, r in front:
                ax.annotate(str(r["index"]), (a, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("logic area (GE)")
        ax.set_ylabel(ylabel)
        for values, scale in (([a for a, _, _ in pts], ax.set_xscale), ([y for _, y, _ in pts], ax.set_yscale)):
            if min(values) > 0 and max(values) / min(values) > 8:  # log only where it spans decades
                scale("log")
        ax.set_title(f"{doc['sweep']}: {doc['block']} ({len(pts)} points)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(out) / f"{name}_{key}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(doc: dict, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / f"{name}.json"
    tmp = js.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    os.replace(tmp, js)
    md = out / f"{name}.md"
    md.write_text(render_markdown(doc))
    return [js, md, *plot_pareto(doc, out, name)]


# -- the command line (registered by flows/cli.py) ----------------------------------------
def add_arguments(p) -> None:
    """The options of ``omnidrl sweep``."""
    import argparse

    p.add_argument("block", nargs="?", metavar="BLOCK", help="block to sweep (omnidrl = the whole top); "
                   "or give --file")
    p.add_argument("--file", help="sweep description (TOML, docs/sweep.md); the options below are then not allowed")
    p.add_argument("--preset", default="default", help="base preset (default: default)")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="one axis of the sweep (repeatable), e.g. --axis emd.group=16,32")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="fixed override of every point (repeatable)")
    p.add_argument("--mode", default="grid", help="grid (every combination, default) or list (zip the axes)")
    p.add_argument("--workload", action="append", default=None, metavar="NAME",
                   help="TD3 update run on the machine model (repeatable; top only; default halfcheetah-sparse)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis (cycles and energy only)")
    p.add_argument("--target", action="append", default=None, metavar="TARGET",
                   help="synthesis target: generic (default), ice40, xilinx (repeatable)")
    p.add_argument("--hierarchy", default="auto", help="auto, flatten or keep (as omnidrl synth)")
    p.add_argument("--abc", default="auto", help="auto, default or fast (as omnidrl synth)")
    p.add_argument("--no-split", action="store_true", help="synthesize the whole top, not its sub-blocks one by one")
    p.add_argument("--no-energy", action="store_true", help="leave the energy model out")
    p.add_argument("--out", default="build/sweep", help="folder for NAME.json, NAME.md, the plots (default build/sweep)")
    p.add_argument("--name", default="sweep", help="file name stem of the outputs (default sweep)")
    p.add_argument("--cache", default=None, help="job cache folder (default build/sweep/cache)")
    p.add_argument("--address", default=None, help="join this Ray cluster (HOST:PORT or auto) instead of "
                   "starting Ray embedded")
    p.add_argument("--cpus", type=int, default=None, help="cores of an embedded Ray (default: all)")
    p.add_argument("--dry-run", action="store_true", help="list the points and the jobs to run, run nothing")
    p.add_argument("--report-only", action="store_true", help="write the outputs from the cache, run nothing "
                   "(points missing a job are marked pending)")
    p.add_argument("--crash-once", default=None, help=argparse.SUPPRESS)  # tests: kill each job's first worker


def command(args) -> int:
    """``omnidrl sweep``: check everything, then run (or list) the sweep."""
    from .cli import UserError, check_output_dir

    try:
        if args.file is not None:
            given = [o for o, v in (("BLOCK", args.block), ("--axis", args.axis), ("--set", args.set),
                                    ("--workload", args.workload), ("--target", args.target)) if v]
            if given:
                raise SweepError(f"--file {args.file!r} describes the whole sweep; {', '.join(given)} is not allowed with it")
            spec = load_spec(Path(args.file))
        else:
            if args.block is None:
                raise SweepError("give a BLOCK (and --axis NAME=V1,V2,...) or --file SWEEP.toml")
            spec = spec_from_args(args.block, args.preset, args.axis, args.set, args.workload, args.mode,
                                  not args.no_synth, args.target, args.hierarchy, args.abc, not args.no_split,
                                  not args.no_energy)
        points, skipped = expand(spec)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    if args.cpus is not None and args.cpus < 1:
        raise UserError(f"--cpus {args.cpus} is not allowed; give a number of cores >= 1")
    if not re.fullmatch(r"[\w.-]+", args.name):
        raise UserError(f"--name {args.name!r} is not allowed; use letters, digits, '.', '-', '_'")
    out = check_output_dir("--out", args.out)
    cache = check_output_dir("--cache", args.cache) if args.cache is not None else None
    if args.dry_run:
        jobs, _ = plan(spec, points)
        cache_dir = cache or BUILD / "sweep" / "cache"
        for p in points:
            print(f"point {p.index}: {p.name}  ({p.config.config_hash()})")
        for name, why in skipped:
            print(f"skipped: {name}: {why}")
        for job in jobs.values():
            print(f"job {job.kind:6s} {'cached' if cached(cache_dir, job) is not None else 'to run':6s} {job.label}")
        return 0
    doc = run_sweep(spec, out, args.name, cache=cache, address=args.address, cpus=args.cpus,
                    crash_once=None if args.crash_once is None else Path(args.crash_once), run=not args.report_only)
    s = doc["stats"]
    print(f"sweep: {s['points']} points, {s['jobs']} jobs ({s['ran']} run, {s['cached']} from the cache, "
          f"{s['failed']} failed) in {s['seconds']:.0f} s; written {out / (args.name + '.json')} (.md, plots)")
    for p in doc["pareto"]:
        print(f"pareto: {p['name']}: {_fmt(p['area_ge'])} GE, {_fmt(p['cycles'])} cycles; {p['limits']}")
    return 1 if s["failed"] else 0
