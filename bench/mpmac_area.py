"""Area of the mixed-precision MAC for every precision pair, measured by ``omnidrl synth``.

For each ``(w_bits, a_bits)`` in 1..8 x 1..8 the block is configured for exactly that pair
(``runtime_precision=false``, ``max_w_bits=w``, ``max_a_bits=a``, ``lanes`` of the default
preset) with an accumulator sized for dot products of :data:`DOT_LENGTH` elements
(``golden.mpmac.acc_bits_for``), and synthesized on the generic target (GE area, flip-flops,
OpenSTA's worst path). The runtime-precision instance (8 x 8 maxima, every pair at run time) is
synthesized too, for the cost of flexibility, and so are the block's presets. Reports are cached by config hash
(``build/reports``), so a rerun only reads them; each synthesis takes a few seconds.

Usage: ``python bench/mpmac_area.py [--no-synth]``. Writes ``golden/data/mpmac_area.json``
(the table the quantization search reads: ``golden.mpmac.load_area_table``),
``bench/results/mpmac_area.json`` (the same with the configurations, hashes and the
runtime instance) and ``bench/results/mpmac_area.md``.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, bench_parser, run_info, synth_records, write_results  # noqa: E402
from golden.mpmac import AREA_TABLE, MAX_BITS, acc_bits_for, dot_cycles, load_area_table  # noqa: E402
from hdl.mpmac import MpMacConfig  # noqa: E402

#: elements of the longest dot product each dedicated instance's accumulator holds
DOT_LENGTH = 1024
LANES = MpMacConfig().lanes
PAIRS = [(w, a) for w in range(1, MAX_BITS + 1) for a in range(1, MAX_BITS + 1)]


def pair_config(w_bits: int, a_bits: int, lanes: int = LANES) -> MpMacConfig:
    """The MAC built for exactly ``(w_bits, a_bits)``, its accumulator sized for DOT_LENGTH elements."""
    beats = -(-DOT_LENGTH // lanes)
    return MpMacConfig(lanes=lanes, max_w_bits=w_bits, max_a_bits=a_bits, runtime_precision=False,
                       acc_bits=acc_bits_for(lanes, w_bits, a_bits, beats))


def runtime_config(lanes: int = LANES) -> MpMacConfig:
    """One instance for every pair: 8 x 8 maxima, precision per dot product."""
    beats = -(-DOT_LENGTH // lanes)
    return MpMacConfig(lanes=lanes, max_w_bits=MAX_BITS, max_a_bits=MAX_BITS, runtime_precision=True,
                       acc_bits=acc_bits_for(lanes, MAX_BITS, MAX_BITS, beats))


def measure(cfg: MpMacConfig, synthesize: bool) -> dict | None:
    records = synth_records(cfg, "generic", synthesize_missing=synthesize)
    if not records:
        return None
    return {"area_ge": float(records["area"]["value"]), "flip_flops": int(records["flip_flops"]["value"]),
            "critical_path_ns": float(records["min_period"]["value"]),
            "synth_s": float(records["elapsed"]["value"]), "yosys": records["area"]["tool_version"],
            "opensta": records["min_period"]["tool_version"]}


def render_markdown(table: dict, runtime: dict) -> str:
    lines = [f"# Mixed-precision MAC area per precision pair", "",
             f"`bench/mpmac_area.py`, {table['date']}: `omnidrl synth mpmac` (generic target, GE of the "
             f"project's gate-equivalent library, OpenSTA worst path) of the MAC built for exactly each pair "
             f"(`runtime_precision=false`), lanes = {table['lanes']}, accumulator sized for dot products of "
             f"{DOT_LENGTH} elements. Yosys {table['versions'].get('yosys', '?')}.", "",
             "Area (GE); rows: weight bits, columns: activation bits (cycles per beat = activation bits).", "",
             "| w \\ a | " + " | ".join(str(a) for a in range(1, MAX_BITS + 1)) + " |",
             "|---|" + "---:|" * MAX_BITS]
    entries = {(e["w_bits"], e["a_bits"]): e for e in table["entries"]}
    for w in range(1, MAX_BITS + 1):
        lines.append(f"| {w} | " + " | ".join(f"{entries[(w, a)]['area_ge']:,.0f}" for a in range(1, MAX_BITS + 1)) + " |")
    lines += ["", "Every pair:", "",
              "| w_bits | a_bits | area (GE) | flip-flops | critical path (ns) | cycles per dot | area x cycles (GE x cycles) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for e in table["entries"]:
        lines.append(f"| {e['w_bits']} | {e['a_bits']} | {e['area_ge']:,.1f} | {e['flip_flops']} | "
                     f"{e['critical_path_ns']:.2f} | {e['cycles_per_dot']} | {e['area_ge'] * e['cycles_per_dot']:,.0f} |")
    dedicated = entries[(MAX_BITS, MAX_BITS)]["area_ge"]
    lines += ["", f"Runtime-precision instance (8 x 8 maxima, any pair per dot product, accumulator "
                  f"{runtime['acc_bits']} bits): {runtime['area_ge']:,.1f} GE, {runtime['flip_flops']} flip-flops, "
                  f"{runtime['critical_path_ns']:.2f} ns; {runtime['area_ge'] / dedicated:.2f}x the dedicated 8 x 8 MAC "
                  f"({dedicated:,.1f} GE).",
              "", "`cycles_per_dot` is for one beat (a dot product of `lanes` elements) at full rate; "
                  "`energy_per_mac_j` is null: no energy is measured for this block yet."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--no-synth", action="store_true", help="only read the reports there are")
    args = parser.parse_args()
    info = run_info(("numpy", "amaranth", "pyosys"), tools={"opensta": ["sta", "-version"]})
    entries, details = [], []
    for n, (w, a) in enumerate(PAIRS):
        cfg = pair_config(w, a)
        got = measure(cfg, not args.no_synth)
        if got is None:
            print(f"w={w} a={a}: no report (run without --no-synth)")
            return 1
        entries.append({"w_bits": w, "a_bits": a, "area_ge": got["area_ge"], "flip_flops": got["flip_flops"],
                        "critical_path_ns": got["critical_path_ns"], "cycles_per_dot": dot_cycles(a, 1),
                        "energy_per_mac_j": None})
        details.append({"config": cfg.to_dict(), "full_hash": cfg.full_hash(), **entries[-1], "synth_s": got["synth_s"]})
        tools = {"yosys": got["yosys"], "opensta": got["opensta"]}
        print(f"[{n + 1}/{len(PAIRS)}] w={w} a={a}: {got['area_ge']:,.1f} GE, {got['flip_flops']} FF, "
              f"{got['critical_path_ns']:.2f} ns", flush=True)
    cfg = runtime_config()
    runtime = measure(cfg, not args.no_synth)
    if runtime is None:
        print("runtime instance: no report (run without --no-synth)")
        return 1
    runtime = {"config": cfg.to_dict(), "full_hash": cfg.full_hash(), "acc_bits": cfg.acc_bits, **runtime}
    print(f"runtime-precision instance: {runtime['area_ge']:,.1f} GE", flush=True)
    presets = {}
    for name in MpMacConfig.preset_names():
        cfg = MpMacConfig.preset(name)
        got = measure(cfg, not args.no_synth)
        if got is not None:
            presets[name] = {"config": cfg.to_dict(), "full_hash": cfg.full_hash(), **got}
            print(f"preset {name}: {got['area_ge']:,.1f} GE, {got['critical_path_ns']:.2f} ns", flush=True)

    versions = {**info["versions"], **tools}
    table = {"block": "mpmac", "lanes": LANES, "versions": versions, "date": info["date"], "entries": entries}
    AREA_TABLE.parent.mkdir(parents=True, exist_ok=True)
    AREA_TABLE.write_text(json.dumps(table, indent=1) + "\n")
    load_area_table(AREA_TABLE)  # what the search reads must load
    print(f"written: {AREA_TABLE.relative_to(ROOT)}")
    write_results("mpmac_area", {"benchmark": "mpmac_area", **info, "lanes": LANES, "dot_length": DOT_LENGTH,
                                 "pairs": details, "runtime_instance": runtime, "presets": presets}, render_markdown(table, runtime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
