"""Simulation speed of the PE testbench on Amaranth's simulator, Icarus and Verilator.

All three run the same workload in one process run: random dot products (the PE testbench's
stimulus) with 30% input gaps and 30% output back-pressure. Speed is simulated clock cycles
per wall-clock second of the streaming phase (the testbench logs it; builds, stimulus
generation and the golden model are excluded), the median of ``--repeats`` runs, reported as
ratios against Icarus measured in the same run.

Usage: ``python bench/sim_speed.py [--pairs 20000] [--repeats 3]``; writes
``bench/results/sim_speed.json``.
"""

import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bench_parser, run_info, write_results  # noqa: E402
from golden.bf16 import dots  # noqa: E402
from hdl.pe import PE, PEConfig  # noqa: E402
from tb.amsim import run_stream_test  # noqa: E402
from tb.runner import run_cocotb  # noqa: E402
from tb.test_pe import beats_of, make_dots  # noqa: E402

TEST = "random_and_edge_dots_with_stalls"
PERIOD_NS = 10


def cocotb_speed(sim: str, cfg: PEConfig, pairs: int) -> float:
    results = run_cocotb(cfg, sim, testcase=TEST, extra_env={"PE_PAIRS": str(pairs)}, tag=f"speed-{pairs}")
    case = next(c for c in ET.parse(results).iter("testcase") if c.get("name") == TEST)
    assert case.find("failure") is None and case.find("error") is None, f"{sim}: {TEST} failed"
    log = (results.parent / "sim.log").read_text()
    m = re.findall(r"SIMSPEED cycles=(\d+) seconds=([\d.]+)", log)
    if not m:
        raise RuntimeError(f"{sim}: no SIMSPEED line in {results.parent / 'sim.log'}")
    cycles, seconds = m[-1]
    return int(cycles) / float(seconds)


def amaranth_speed(cfg: PEConfig, pairs: int) -> float:
    pairs, _ = make_dots(2026, pairs)
    beats = [b for a, bb in pairs for b in beats_of(a, bb)]
    t0 = time.perf_counter()
    got, cycles = run_stream_test(PE(cfg), beats, len(pairs), gap_prob=0.3, stall_prob=0.3, seed=2026)
    elapsed = time.perf_counter() - t0
    assert got == [int(v) for v in dots(pairs)], "Amaranth simulation disagrees with golden"
    return cycles / elapsed


def main(argv=None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--pairs", type=int, default=20000, help="operand pairs per run (cocotb simulators)")
    ap.add_argument("--amaranth-pairs", type=int, default=5000, help="operand pairs per Amaranth-simulator run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = PEConfig()
    runs = {"amaranth": [], "icarus": [], "verilator": []}
    for rep in range(args.repeats):
        runs["icarus"].append(cocotb_speed("icarus", cfg, args.pairs))
        runs["verilator"].append(cocotb_speed("verilator", cfg, args.pairs))
        runs["amaranth"].append(amaranth_speed(cfg, args.amaranth_pairs))
        print(f"repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} cyc/s" for k, v in runs.items()), flush=True)
    median = {k: statistics.median(v) for k, v in runs.items()}
    ratios = {f"{k}_over_icarus": median[k] / median["icarus"] for k in ("amaranth", "verilator")}
    for k, v in median.items():
        print(f"sim_speed {k}: {v:,.0f} cycles/s (median of {args.repeats})")
    for k, v in ratios.items():
        print(f"sim_speed {k}: {v:.2f}x")
    out = {
        "benchmark": "sim_speed", "block": "pe", "config": cfg.to_dict(), "workload": {
            "test": TEST, "pairs": args.pairs, "amaranth_pairs": args.amaranth_pairs, "gap_prob": 0.3,
            "stall_prob": 0.3},
        "cycles_per_s_median": median, "cycles_per_s_runs": runs, "ratios": ratios,
        "verilator_over_icarus": ratios["verilator_over_icarus"],
        **run_info(("amaranth", "cocotb", "verilator", "numpy"), tools={"icarus": ["iverilog", "-V"]}),
    }
    write_results("sim_speed", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
