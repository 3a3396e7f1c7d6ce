"""Stimulus for the gate-level toggle flow (``flows/toggles.py``): the PE, the EMD encoder and
the ECIM/MFEC unit on real TD3 operands from the committed trace, and on random operands.

Inputs come from the blocks' own stimulus modules (``tb/stimulus/pe.py``, ``ecim.py``,
``emd.py``) and the expected outputs from their golden models, packed through the blocks'
layouts, so a replay checks the real function. The PE and ECIM get the *same* products: the
PE's dot products are ECIM's rows times inputs, in the same order, so energy per MAC compares
like with like.
"""

from __future__ import annotations

import numpy as np

from golden import emd
from golden.bf16 import bf16_edge_values
from golden.bf16 import dots as golden_dots
from golden.mfec import pad_to_groups
from flows.toggles import Phase, Stimulus
from hdl.ecim import EcimConfig, group_layout, write_layout
from hdl.emd import EmdEncoderConfig, lanes_layout, words_layout
from hdl.pe import pe_input_layout

from .ecim import expected, group_beats, td3_dots, write_beats
from .ecim import make_dots as ecim_make_dots
from .ecim import make_weights
from .pe import make_dots as pe_make_dots

__all__ = ["ecim_td3_sets", "pe_stimulus", "pe_td3", "pe_td3_zero_skipped", "pe_random", "ecim_td3", "ecim_random",
           "emd_enc_td3", "emd_enc_random", "is_zero"]


def is_zero(bits: np.ndarray) -> np.ndarray:
    """bf16 patterns that are zero as the datapath reads them (exponent field 0: +-0 and the
    subnormals, flushed)."""
    return (np.asarray(bits, dtype=np.uint16) & 0x7F80) == 0


# -- the PE ------------------------------------------------------------------------------------
def pe_stimulus(name: str, pairs: list[tuple[np.ndarray, np.ndarray]], note: str = "") -> Stimulus:
    """The PE fed dot products ``pairs`` (a, b) back to back; expected results from
    ``golden.bf16.dots``."""
    layout = pe_input_layout()
    beats = []
    for a, b in pairs:
        n = len(a)
        beats += [layout.const({"a": int(a[k]), "b": int(b[k]), "clear": int(k == 0), "last": int(k == n - 1)}).as_bits()
                  for k in range(n)]
    expect = [int(v) for v in golden_dots(pairs)]
    return Stimulus(name, [Phase("i", beats, "o", expect)], ops=len(beats), note=note)


def ecim_td3_sets(cfg: EcimConfig, loads: int, dots_per_load: int, seed: int = 0):
    """``loads`` weight images with their TD3 dot products (``tb.stimulus.ecim.td3_dots``, a seed
    each), the stimulus of the ECIM cocotb test ``td3_dot_products``."""
    return [td3_dots(cfg, seed + k, dots_per_load) for k in range(loads)]


def _pairs_of(sets) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for weights, dots, _ in sets:
        for rows, x in dots:
            a = np.concatenate([weights[r] for r in rows])
            pairs.append((a, np.asarray(x, dtype=np.uint16)[:len(a)]))
    return pairs


def pe_td3(sets) -> Stimulus:
    """The products of the ECIM TD3 sets ``sets``, as PE dot products (zero padding included,
    as ECIM sees it)."""
    names = "; ".join(s[2] for s in sets)
    return pe_stimulus("td3-trace", _pairs_of(sets), f"TD3 trace dot products ({names})")


def pe_td3_zero_skipped(sets) -> Stimulus:
    """The same products with every zero product left out (what a zero-skipping array issues)."""
    pairs = []
    for a, b in _pairs_of(sets):
        keep = ~(is_zero(a) | is_zero(b))
        if keep.any():
            pairs.append((a[keep], b[keep]))
    return pe_stimulus("td3-trace-zero-skipped", pairs, "TD3 trace dot products without their zero products")


def pe_random(seed: int, pairs: int) -> Stimulus:
    """The cocotb test's random dot products (``tb.stimulus.pe.make_dots``: mostly values near 1,
    some arbitrary patterns and edge values), without its one-element edge grid."""
    edges = len(bf16_edge_values()) ** 2  # make_dots starts with the edge grid, one pair per dot
    dots, _ = pe_make_dots(seed, pairs + edges)
    dots = dots[edges:]
    return pe_stimulus("random", dots, "tb.stimulus.pe.make_dots random dot products (near-1, wild, edges)")


# -- ECIM / MFEC ----------------------------------------------------------------------------
def _ecim_stimulus(cfg: EcimConfig, name: str, sets, note: str) -> Stimulus:
    phases = []
    ops = 0
    w_layout, g_layout = write_layout(cfg), group_layout(cfg)
    for weights, dots, _ in sets:
        phases.append(Phase("w", [w_layout.const(b).as_bits() for b in write_beats(weights)], measure=False))
        phases.append(Phase("i", [g_layout.const(b).as_bits() for b in group_beats(cfg, dots)], "o",
                            expected(cfg, weights, dots)))
        ops += sum(len(rows) * cfg.n for rows, _ in dots)
    return Stimulus(name, phases, ops=ops, note=note)


def ecim_td3(cfg: EcimConfig, sets) -> Stimulus:
    """The unit on the TD3 sets: each weight load (not measured), then its dot products."""
    names = "; ".join(s[2] for s in sets)
    return _ecim_stimulus(cfg, "td3-trace", sets, f"TD3 trace dot products ({names})")


def ecim_random(cfg: EcimConfig, seed: int, count: int) -> Stimulus:
    """The cocotb test's random weights and dot products (``make_weights``, ``make_dots``)."""
    weights = make_weights(cfg, seed)
    dots = ecim_make_dots(cfg, count, seed + 1)
    dots = [(rows, pad_to_groups(x, cfg.n)) for rows, x in dots]
    return _ecim_stimulus(cfg, "random", [(weights, dots, "random")],
                          "tb.stimulus.ecim make_weights / make_dots (realistic, wide-exponent, edge rows)")


# -- EMD encoder -----------------------------------------------------------------------------
def _emd_stimulus(cfg: EmdEncoderConfig, name: str, streams: list[np.ndarray], note: str) -> Stimulus:
    lanes, words = lanes_layout(cfg.lanes), words_layout(cfg.word_bits)
    beats, expect, values, groups = [], [], 0, 0
    for v in streams:
        v = np.asarray(v, dtype=np.uint16).reshape(-1, cfg.lanes)
        beats += [lanes.const({"data": [int(x) for x in row], "last": int(i == len(v) - 1)}).as_bits()
                  for i, row in enumerate(v)]
        code = emd.encode(v.reshape(-1), cfg.fmt, cfg.word_bits)
        expect += [words.const({"data": w, "last": int(i == len(code) - 1)}).as_bits() for i, w in enumerate(code)]
        values += v.size
        groups += -(-v.size // cfg.fmt.group)
    return Stimulus(name, [Phase("i", beats, "o", expect)], ops=values, note=f"{note}; {groups} groups")


def emd_enc_td3(cfg: EmdEncoderConfig, per_tensor: int, seed: int = 0, kinds=("W", "x", "dy", "dW")) -> Stimulus:
    """Streams of ``per_tensor`` consecutive values cut at random from each tensor of the
    committed TD3 trace (one stream per tensor of the given kinds)."""
    from golden.traces import iter_tensors, load_trace

    rng = np.random.default_rng(seed)
    streams, names = [], []
    per_tensor -= per_tensor % cfg.fmt.group
    for name, kind, t in iter_tensors(load_trace(), kinds=kinds):
        v = np.asarray(t, dtype=np.uint16).reshape(-1)
        if v.size < per_tensor:
            continue
        start = int(rng.integers(0, v.size - per_tensor + 1))
        streams.append(v[start:start + per_tensor])
        names.append(f"{name}:{kind}")
    return _emd_stimulus(cfg, "td3-trace", streams, f"{len(streams)} TD3 trace tensors, {per_tensor} values each")


def emd_enc_random(cfg: EmdEncoderConfig, values: int, seed: int = 0) -> Stimulus:
    """The cocotb test's random runs (``tb.stimulus.emd.random_runs``) in one stream."""
    from .emd import random_runs

    rng = np.random.default_rng(seed)
    v = random_runs(rng, values - values % cfg.fmt.group, cfg.fmt.group)
    return _emd_stimulus(cfg, "random", [v], "tb.stimulus.emd.random_runs")
