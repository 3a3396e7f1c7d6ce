"""Speed of the transposer in Amaranth's simulator: set-up time and simulated cycles per second.

The workload is that of ``tests/test_transposer_amaranth.py`` (``run_stream``: every output
beat against the golden model, the error flags every cycle) on random-density tiles with 20%
input gaps and 20% output back-pressure. Set-up is the simulator's construction (elaborating
the design and compiling it to Python); cycles/s counts the simulated cycles over the time
after it. docs/transposer.md, "Simulation speed", explains the figures.

Usage: ``python bench/transposer_amsim.py [--presets tiny small default] [--tiles 20]``;
writes ``bench/results/transposer_amsim.json``.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from amaranth.sim import Simulator  # noqa: E402

import tb.amsim  # noqa: E402
from bench._common import bench_parser, run_info, write_results  # noqa: E402
from golden.transpose import pack, tile_to_beats  # noqa: E402
from hdl.transposer import TransposerConfig  # noqa: E402
from tb.stimulus.transposer import random_density_tile  # noqa: E402
from test_transposer_amaranth import run_stream  # noqa: E402


class _TimedSimulator(Simulator):
    """Amaranth's simulator, noting how long its construction took."""

    setup_s = 0.0

    def __init__(self, *args, **kwargs):
        t0 = time.perf_counter()
        super().__init__(*args, **kwargs)
        _TimedSimulator.setup_s = time.perf_counter() - t0


def measure(preset: str, tiles: int, seed: int = 0) -> dict:
    cfg = TransposerConfig.preset(preset)
    rng = np.random.default_rng(seed)
    beats = [b for _ in range(tiles) for b in tile_to_beats(pack(random_density_tile(rng, cfg.tile, rng.random())),
                                                             cfg.lanes)]
    tb.amsim.Simulator = _TimedSimulator
    t0 = time.perf_counter()
    _, got, _, lasts = run_stream(cfg, beats, gap_prob=0.2, stall_prob=0.2, seed=1)
    total = time.perf_counter() - t0
    cycles = lasts[-1] + 2 * cfg.tile + 3  # run_stream's settling cycles after the last beat
    run_s = total - _TimedSimulator.setup_s
    return {"preset": preset, "tile": cfg.tile, "lanes": cfg.lanes, "buffers": cfg.buffers, "tiles": tiles,
            "input_beats": len(beats), "output_beats": len(got), "cycles": cycles,
            "setup_s": round(_TimedSimulator.setup_s, 2), "run_s": round(run_s, 2), "total_s": round(total, 2),
            "cycles_per_s": round(cycles / run_s, 1), "cycles_per_s_with_setup": round(cycles / total, 1)}


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "default"])
    parser.add_argument("--tiles", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        rows.append(measure(preset, args.tiles))
        print(rows[-1], flush=True)
    write_results("transposer_amsim", {**run_info(), "benchmark": "transposer_amsim", "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
