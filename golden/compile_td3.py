"""Compile one ``golden.td3.TD3Agent.update`` into a program for the OmniDRL top.

Every product of the update is a chip GEMM; everything else is a host step that runs the same
NumPy operations, in the same order and on the same dtypes, as ``golden/td3.py``, so the agent's
state after the program is bit-identical to ``TD3Agent.update`` (numerics ``bf16-exact``).

Products and their GEMM roles (``docs/pe_array.md``), for a layer ``y = W x`` with batch Bt:

==============  =============================  =================================================
product         dense / circ / group-sparse    operands (memory format)
==============  =============================  =================================================
forward W.x     DENSE / CIRC / SPARSE          A = W (EMD; sparse: kept blocks raw + bitmap),
                                               B = X^T (EMD); out y^T raw fp32
input grad      DENSE / CIRC transpose=1 /     A = W^T (EMD, laid out by the host step; circ:
W^T.dY          TRANSPOSE + SPARSE             the same v; sparse: built on chip by TRANSPOSE
                                               from W's kept blocks), B = dY^T (EMD);
                                               out dx^T raw fp32
weight grad     DENSE / DV / WGRAD             A = dY^T (EMD), B = X (EMD), bitmap for WGRAD;
dY^T.X                                         out dW (dv) rounded to bf16, EMD
==============  =============================  =================================================

Host steps: converting the fp32 masters to bf16 operand layouts, the bias add, ReLU and its
mask, tanh, the smoothing noise and clip, the Q target, the losses and their gradients, the
bias gradient sums, Adam and the soft target updates. GEMMs of independent layers share a chip
segment (the two critics; the target actor with the online critics); operand banks alternate.

Padding: compressed layers pad ``n_in`` to a multiple of k. The padding lanes of an activation
are +0 (what ``golden/td3.py`` pads the circulant dv input with). In a group-sparse forward the
host writes -0 into the padding columns of W's kept blocks, so every padding product is
``-0 * +0 = -0``, which leaves any fp32 sum unchanged: exact. A circulant forward multiplies the
padding by v itself: its products are ``+-0`` and can only turn an exact ``-0`` sum into ``+0``;
``y = acc + b`` then differs only when ``b`` is ``-0``, which the host step refuses (as it refuses
non-finite v, whose padding products would be NaN). Input-gradient rows and weight-gradient
columns past ``n_in`` are dropped by the host, as the golden model never computes them.

A circulant layer with pruned blocks (GST rule ``circ-prune``) runs on the same CIRC / DV
commands: the host writes the pruned blocks' v words as the signed zeros ``v * 0`` (so CIRC adds
their products as +-0, as the golden model does), drops their dv after the DV command and masks
their Adam update; the bitmap itself never reaches the chip.

A dense layer with an element mask (GMP, and GST rule ``circ-fine`` after its switch) runs on
DENSE commands: the host writes ``W * mask`` (the pruned values as signed zeros, as the golden
model's effective weight), masks dW after the chip's product and masks the Adam update; the
mask, like a bitmap, never reaches the chip. Its zeros cost no cycles saved, only EMD bits.

Limits (refused with a message): numerics other than ``bf16-exact``, compressed layers whose
block is not the top's k, and products whose operands do not fit one bank of the
operand buffers (no splitting of a GEMM).
"""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np

from . import gst
from .bf16 import from_bits, round_bf16, to_bits
from .codes import LoadSel, Mode
from .emd import DEFAULT, EmdFormat
from .isa import Command, Fmt, IsaShape, Op, emd_extent_bound
from .pe_array import ceil_div, command_dims, tile_order
from .program import (ChipSegment, HostStep, Layout, Memory, Program, Region, a_circ_words, a_dense_words,
                      a_sparse_words, b_dense_words, beats_to_matrix, bitmap_words, words_fp32_beats)
from .td3 import TD3Agent, TD3Config

__all__ = ["compile_update", "write_agent", "write_batch", "read_agent", "read_info", "example_agent",
           "example_batch", "command_ranges", "F32"]

F32 = np.float32
NETS = ("actor", "critic1", "critic2", "actor_t", "critic1_t", "critic2_t")


# ----------------------------------------------------------------------------- small helpers

def _f64_word(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def _word_f64(w: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", int(w) & ((1 << 64) - 1)))[0]


def _nbytes(region: Region) -> int:
    """Logical bytes of a region's tensor: fp32 4, bf16 2, integers 8 per value, a bitmap one
    bit per block."""
    n = int(np.prod(region.shape)) if region.shape else 1
    if region.kind == "bitmap":
        return ceil_div(n, 8)
    return n * {"f32": 4, "beats32": 4, "int": 8, "bf16": 2, "emd": 2}[region.kind]


@dataclasses.dataclass(frozen=True)
class _LayerInfo:
    net: str
    index: int
    name: str
    mode: str
    n_in: int
    n_in_pad: int
    n_out: int
    bitmap: np.ndarray | None
    pname: str  # "W" or "v"
    pshape: tuple
    mask: np.ndarray | None = None  # a dense layer's element mask (float32 0/1, as golden's), or None

    @property
    def key(self) -> str:
        return f"{self.net}.{self.name}"


@dataclasses.dataclass
class _Gemm:
    """One product: its operands (regions), command fields and output region."""

    name: str
    mode: Mode
    m: int
    n: int
    kdim: int
    a: Region | None
    b: Region
    out: Region
    transpose: int = 0
    bitmap: Region | None = None
    bitmap_grid: np.ndarray | None = None
    via_transposer: tuple | None = None  # (blocks region, bitmap region, P, Q) for TRANSPOSE
    round: int = 0

    @property
    def fmt(self) -> Fmt:
        return Fmt.EMD if self.round else Fmt.RAW


# ----------------------------------------------------------------------------- the compiler

class _Compiler:
    def __init__(self, agent: TD3Agent, shape: IsaShape, fmt: EmdFormat, batch: int, policy: bool):
        self.agent, self.shape, self.fmt, self.n, self.policy = agent, shape, fmt, batch, policy
        self.k = shape.k
        self.cfg = agent.cfg
        self.layout = Layout()
        self.steps: list = []
        self.layers = {net: [self._info(net, i, layer) for i, layer in enumerate(getattr(agent, net).layers)]
                       for net in NETS}
        self._check()

    # -- structure -------------------------------------------------------------------------
    def _info(self, net: str, i: int, layer) -> _LayerInfo:
        pname = "v" if layer.mode == "circ" else "W"
        return _LayerInfo(net, i, layer.name, layer.mode, layer.n_in, layer.n_in_pad, layer.n_out,
                          None if layer.bitmap is None else np.asarray(layer.bitmap, dtype=bool).copy(),
                          pname, tuple(getattr(layer, pname).shape),
                          None if layer.mode != "dense" or layer.mask is None else layer.mask.copy())

    def _check(self) -> None:
        agent = self.agent
        if agent.num.mode != "bf16-exact":
            raise ValueError(f"numerics={agent.num.mode!r} is not allowed: the top computes bf16-exact "
                             f"(its products accumulate in the hardware order)")
        for net in NETS:
            for info, layer in zip(self.layers[net], getattr(agent, net).layers):
                where = f"{net} layer {info.name}"
                if layer.mode != "dense" and layer.k != self.k:
                    raise ValueError(f"{where}: block size {layer.k} is not the top's k={self.k}")
                if layer.mode == "sparse" and (layer.n_out // self.k > self.shape.max_blocks
                                               or layer.n_in_pad // self.k > self.shape.max_blocks):
                    raise ValueError(f"{where}: its bitmap of {layer.n_out // self.k} x {layer.n_in_pad // self.k} "
                                     f"blocks exceeds max_blocks={self.shape.max_blocks}")

    def region(self, name, kind, words, shape=(), note="") -> Region:
        return self.layout.add(name, kind, words, shape, note)

    def f32(self, name, shape, note="") -> Region:
        return self.region(name, "f32", ceil_div(int(np.prod(shape)), self.k // 2), shape, note)

    def emd_operand(self, name, words, shape, note="") -> Region:
        """An EMD region for ``words`` operand words (bound from golden.isa.emd_extent_bound)."""
        return self.region(name, "emd", emd_extent_bound(words * self.k, self.fmt, self.shape.mem_bits),
                           shape, note)

    # -- host steps --------------------------------------------------------------------------
    def host(self, name, fn, flops, reads=(), writes=()) -> None:
        self.steps.append(HostStep(name, fn, int(flops), sum(_nbytes(r) for r in reads),
                                   sum(_nbytes(r) for r in writes)))

    # -- operand words -------------------------------------------------------------------------
    def a_words_count(self, m, kdim) -> int:
        return ceil_div(m, self.k) * kdim

    def b_words_count(self, kdim, n) -> int:
        return ceil_div(n, self.k) * kdim

    def put(self, mem: Memory, region: Region, lanes) -> None:
        lanes = np.asarray(lanes, dtype=np.uint16)
        if region.kind == "emd":
            used = mem.write_emd(region.addr, lanes.reshape(-1), self.fmt)
            assert used <= region.words, f"{region.name}: EMD block of {used} words over its bound {region.words}"
        else:
            assert lanes.shape[0] <= region.words, region.name
            mem.write(region.addr, lanes)

    def get_output(self, mem: Memory, g: _Gemm) -> np.ndarray:
        """A GEMM's result matrix (rows x cols of the output, padding dropped): fp32 patterns
        (raw) or bf16 patterns (EMD, round = 1); wgrad's pruned blocks read -0."""
        k = self.k
        d = command_dims(g.mode, g.m, g.n, g.kdim, _Lim(k))
        out_cols = d["QB"] if g.mode == Mode.DV else g.n
        tiles = tile_order(g.mode.name.lower(), g.m, out_cols, _Lim(k), g.bitmap_grid)
        if g.round:
            beats = mem.read_emd(g.out.addr, self.fmt).reshape(-1, k)
            fill = 0x8000
        else:
            beats = words_fp32_beats(mem.read(g.out.addr, 2 * len(tiles) * k)).reshape(-1, k)
            fill = 0x80000000
        full = beats_to_matrix(beats, tiles, k, d["MT"], d["NT"], fill)
        return full[:g.m, :out_cols]

    # ------------------------------------------------------------------ state regions
    def state_regions(self) -> None:
        agent = self.agent
        for net in NETS:
            online = not net.endswith("_t")
            for info in self.layers[net]:
                self.f32(f"{info.key}.{info.pname}", info.pshape, f"fp32 master {info.pname}")
                self.f32(f"{info.key}.b", (info.n_out,), "fp32 master bias")
                if online:
                    for p, shp in ((info.pname, info.pshape), ("b", (info.n_out,))):
                        self.f32(f"{info.key}.{p}.m", shp, "Adam first moment")
                        self.f32(f"{info.key}.{p}.s", shp, "Adam second moment")
        for name in ("actor_opt.t", "critic_opt.t", "agent.it", "info.critic_loss", "info.actor_loss"):
            self.region(name, "int", 1, (), "integer (losses: float64 bits)")
        n = self.n
        od, ad = agent.obs_dim, agent.act_dim
        for name, shp in (("in.s", (n, od)), ("in.a", (n, ad)), ("in.r", (n, 1)), ("in.s2", (n, od)),
                          ("in.nd", (n, 1)), ("in.noise", (n, ad))):
            self.f32(name, shp, "batch input" if name != "in.noise" else "standard-normal draw")

    # ------------------------------------------------------------------ weights for the chip
    def weight_regions(self, net: str, need_dx: set[int]) -> None:
        k = self.k
        for info in self.layers[net]:
            if info.mode == "dense":
                self.emd_operand(f"w.{info.key}.fwd", self.a_words_count(info.n_out, info.n_in),
                                 (info.n_out, info.n_in), "bf16 W, dense A layout")
                if info.index in need_dx:
                    self.emd_operand(f"w.{info.key}.bwd", self.a_words_count(info.n_in, info.n_out),
                                     (info.n_in, info.n_out), "bf16 W^T, dense A layout (host-transposed)")
            elif info.mode == "circ":
                p, q, _ = info.pshape
                self.emd_operand(f"w.{info.key}.fwd", p * q, info.pshape, "bf16 v, circulant A layout")
            else:
                kept = int(info.bitmap.sum())
                self.region(f"w.{info.key}.blocks", "bf16", kept * k, (kept * k, k),
                            "bf16 kept blocks of W, sparse A layout (raw: the transposer reads it)")
                self.region(f"w.{info.key}.bitmap", "bitmap", self.shape.max_blocks, info.bitmap.shape,
                            "block bitmap of W")

    def convert_weights(self, net: str, need_dx: set[int], tag: str = "") -> None:
        """Host step: fp32 masters of ``net`` -> the bf16 operands its products load."""
        infos = self.layers[net]
        lay = self.layout
        k, mb = self.k, self.shape.max_blocks

        def fn(mem: Memory) -> None:
            for info in infos:
                w = mem.read_f32(lay[f"{info.key}.{info.pname}"].addr, info.pshape)
                if info.mode == "dense":
                    bits = to_bits(round_bf16(w if info.mask is None else w * info.mask))
                    self.put(mem, lay[f"w.{info.key}.fwd"], a_dense_words(bits, k))
                    if info.index in need_dx:
                        self.put(mem, lay[f"w.{info.key}.bwd"], a_dense_words(bits.T, k))
                elif info.mode == "circ":
                    if info.n_in_pad != info.n_in and not np.isfinite(w).all():
                        raise ValueError(f"{info.key}: a non-finite v times the input padding gives NaN "
                                         f"on the chip; the golden model never multiplies the padding")
                    if not info.bitmap.all():  # pruned blocks: zero words (signed, as v * 0)
                        w = w * info.bitmap[:, :, None]
                    self.put(mem, lay[f"w.{info.key}.fwd"], a_circ_words(to_bits(round_bf16(w))))
                else:
                    mask = gst.block_expand(info.bitmap, k)
                    bits = to_bits(round_bf16(w * mask))
                    bits[:, info.n_in:] = 0x8000  # padding columns: -0 * (+0 input) adds nothing
                    self.put(mem, lay[f"w.{info.key}.blocks"], a_sparse_words(bits, info.bitmap, k))
                    for row, word in enumerate(bitmap_words(info.bitmap, mb)):
                        mem.set_word(lay[f"w.{info.key}.bitmap"].addr + row, word)
        reads = [lay[f"{i.key}.{i.pname}"] for i in infos]
        writes = [r for r in lay.regions.values() if r.name.startswith(f"w.{net}.")]
        flops = sum(int(np.prod(i.pshape)) for i in infos)  # one rounding per value
        self.host(f"bf16 weights {net}{tag}", fn, flops, reads, writes)

    # ------------------------------------------------------------------ activations
    def act_regions(self, key: str, n_in: int, n_in_pad: int, want_x: bool) -> None:
        n = self.n
        self.emd_operand(f"{key}.xT", self.b_words_count(n_in_pad, n), (n_in_pad, n), "bf16 X^T, B layout")
        if want_x:
            self.emd_operand(f"{key}.x", self.b_words_count(n, n_in_pad), (n, n_in_pad), "bf16 X, B layout")

    def put_act(self, mem: Memory, key: str, xq: np.ndarray, n_in_pad: int) -> None:
        """Write the rounded input ``xq`` (batch x n_in, bf16 values) in its layouts (+0 padding)."""
        bits = to_bits(xq)
        if n_in_pad != bits.shape[1]:
            bits = np.pad(bits, ((0, 0), (0, n_in_pad - bits.shape[1])))
        self.put(mem, self.layout[f"{key}.xT"], b_dense_words(bits.T, self.k))
        if f"{key}.x" in self.layout:
            self.put(mem, self.layout[f"{key}.x"], b_dense_words(bits, self.k))

    # ------------------------------------------------------------------ products
    def fwd_gemm(self, pas: str, info: _LayerInfo, in_key: str) -> _Gemm:
        lay, n = self.layout, self.n
        kdim = info.n_in_pad
        d = command_dims(Mode.DENSE, info.n_out, n, kdim, _Lim(self.k))
        out = self.region(f"{pas}.{info.key}.acc", "beats32", 2 * d["MT"] * d["NT"] * self.k, (info.n_out, n),
                          "y^T accumulators, raw fp32 beats")
        b = lay[f"{in_key}.xT"]
        if info.mode == "dense":
            return _Gemm(f"{info.key} fwd", Mode.DENSE, info.n_out, n, kdim, lay[f"w.{info.key}.fwd"], b, out)
        if info.mode == "circ":
            return _Gemm(f"{info.key} fwd", Mode.CIRC, info.n_out, n, kdim, lay[f"w.{info.key}.fwd"], b, out)
        return _Gemm(f"{info.key} fwd", Mode.SPARSE, info.n_out, n, kdim, lay[f"w.{info.key}.blocks"], b, out,
                     bitmap=lay[f"w.{info.key}.bitmap"], bitmap_grid=info.bitmap)

    def dx_gemm(self, pas: str, info: _LayerInfo) -> _Gemm:
        lay, n = self.layout, self.n
        m = info.n_in_pad
        d = command_dims(Mode.DENSE, m, n, info.n_out, _Lim(self.k))
        out = self.region(f"{pas}.{info.key}.dxacc", "beats32", 2 * d["MT"] * d["NT"] * self.k, (m, n),
                          "dx^T accumulators, raw fp32 beats")
        b = lay[f"{pas}.{info.key}.dyT"]
        if info.mode == "dense":
            return _Gemm(f"{info.key} dx", Mode.DENSE, m, n, info.n_out, lay[f"w.{info.key}.bwd"], b, out)
        if info.mode == "circ":
            return _Gemm(f"{info.key} dx", Mode.CIRC, m, n, info.n_out, lay[f"w.{info.key}.fwd"], b, out,
                         transpose=1)
        p, q = info.bitmap.shape
        return _Gemm(f"{info.key} dx", Mode.SPARSE, m, n, info.n_out, None, b, out,
                     bitmap_grid=info.bitmap.T.copy(),
                     via_transposer=(lay[f"w.{info.key}.blocks"], lay[f"w.{info.key}.bitmap"], p, q))

    def dw_gemm(self, pas: str, info: _LayerInfo, in_key: str) -> _Gemm:
        lay, n, k = self.layout, self.n, self.k
        a, b = lay[f"{pas}.{info.key}.dyA"], lay[f"{in_key}.x"]
        mode = {"dense": Mode.DENSE, "circ": Mode.DV, "sparse": Mode.WGRAD}[info.mode]
        g = _Gemm(f"{info.key} dw", mode, info.n_out, info.n_in_pad, n, a, b, None, round=1,
                  bitmap=lay[f"w.{info.key}.bitmap"] if mode == Mode.WGRAD else None,
                  bitmap_grid=info.bitmap if mode == Mode.WGRAD else None)
        d = command_dims(mode, g.m, g.n, g.kdim, _Lim(k))
        beats = len(tile_order(mode.name.lower(), g.m, d["QB"] if mode == Mode.DV else g.n, _Lim(k),
                               g.bitmap_grid)) * k
        g.out = self.region(f"{pas}.{info.key}.dw", "emd",
                            emd_extent_bound(beats * k, self.fmt, self.shape.mem_bits),
                            (info.n_out, info.n_in_pad // k if mode == Mode.DV else info.n_in_pad),
                            "weight gradient (bf16, EMD)")
        return g

    # ------------------------------------------------------------------ chip segments
    def chip(self, name: str, gemms: list[_Gemm]) -> None:
        cmds: list[Command] = []
        sh = self.shape
        for j, g in enumerate(gemms):
            bank = j % 2
            for words, limit, what in ((self._a_count(g), sh.a_depth, "A"), (self._b_count(g), sh.b_depth, "B")):
                if words > limit:
                    raise ValueError(f"{g.name}: {words} {what} words do not fit one bank ({limit}); "
                                     f"a product is not split across commands")
            if g.via_transposer is not None:
                blocks, bm, p, q = g.via_transposer
                cmds.append(Command(op=Op.TRANSPOSE, bank=bank, buf=0, addr=blocks.addr, extent=blocks.words,
                                    addr2=bm.addr, m=p, n=q))
            else:
                fmt = Fmt.RAW if g.a.kind == "bf16" else Fmt.EMD
                cmds.append(Command(op=Op.LOAD, bank=bank, sel=LoadSel.A, fmt=fmt, buf=0, count=self._a_count(g),
                                    addr=g.a.addr, extent=g.a.words))
            if g.bitmap is not None:
                cmds.append(Command(op=Op.LOAD, bank=bank, sel=LoadSel.BITMAP, fmt=Fmt.RAW, buf=0,
                                    count=sh.max_blocks, addr=g.bitmap.addr, extent=g.bitmap.words))
            cmds.append(Command(op=Op.LOAD, bank=bank, sel=LoadSel.B, fmt=Fmt.EMD, buf=0, count=self._b_count(g),
                                addr=g.b.addr, extent=g.b.words))
            cmds.append(Command(op=Op.GEMM, bank=bank, fmt=g.fmt, mode=g.mode, transpose=g.transpose,
                                round=g.round, addr=g.out.addr, extent=g.out.words, m=g.m, n=g.n, k=g.kdim))
        cmds.append(Command(op=Op.FENCE))
        self.steps.append(ChipSegment(name, cmds))

    def _a_count(self, g: _Gemm) -> int:
        k = self.k
        if g.mode == Mode.SPARSE:
            return int(g.bitmap_grid.sum()) * k
        if g.mode == Mode.CIRC:
            return (g.m // k) * (g.kdim // k)
        return ceil_div(g.m, k) * g.kdim

    def _b_count(self, g: _Gemm) -> int:
        if g.mode == Mode.DV:
            return (g.n // self.k) * g.kdim
        return ceil_div(g.n, self.k) * g.kdim


@dataclasses.dataclass(frozen=True)
class _Lim:
    """Array shape for the golden tile functions (rows = cols = block_size = k)."""

    k: int

    @property
    def rows(self) -> int:
        return self.k

    cols = rows
    block_size = rows


# ----------------------------------------------------------------------------- the update

def compile_update(agent: TD3Agent, shape: IsaShape, emd_fmt: EmdFormat = DEFAULT, *,
                   batch: int | None = None) -> Program:
    """The program of the agent's next ``update`` (its ``it`` decides the policy branch).

    Parameters
    ----------
    agent : golden.td3.TD3Agent
        Numerics ``bf16-exact``; its structure (sizes, modes, bitmaps) and ``it`` are compiled
        in; its values are not (they live in the memory image: :func:`write_agent`).
    shape : golden.isa.IsaShape
        The top's command layout and buffer sizes.
    emd_fmt : golden.emd.EmdFormat
        The format of the top's EMD decoder and encoder.
    batch : int, optional
        Rows of the minibatch (default ``agent.cfg.batch``).
    """
    n = int(batch or agent.cfg.batch)
    policy = (agent.it + 1) % agent.cfg.policy_freq == 0
    c = _Compiler(agent, shape, emd_fmt, n, policy)
    _build(c)
    info = {"batch": n, "policy": policy, "it": agent.it, "obs_dim": agent.obs_dim, "act_dim": agent.act_dim,
            "layers": {net: [(i.name, i.mode, i.n_in, i.n_out) for i in infos] for net, infos in c.layers.items()},
            "pnames": {net: [i.pname for i in infos] for net, infos in c.layers.items()}}
    return Program(shape, emd_fmt, c.layout, c.steps, info)


def _build(c: _Compiler) -> None:  # noqa: C901 - one function reads as the update does
    agent, cfg, lay, n = c.agent, c.cfg, c.layout, c.n
    L = len(agent.actor.layers)
    od, ad = agent.obs_dim, agent.act_dim
    ma = agent.max_action.copy()
    c.state_regions()
    # -- what each pass needs ----------------------------------------------------------------
    dx_needed = {"critic1": set(range(1, L)) | ({0} if c.policy else set()), "critic2": set(range(1, L)),
                 "actor": set(range(1, L)) if c.policy else set()}
    for net in NETS:
        c.weight_regions(net, dx_needed.get(net, set()))

    # region naming: an input key per (pass, net, layer); the critics share their first input
    def in_key(pas: str, net: str, i: int, first: str) -> str:
        return f"{pas}.{first}" if i == 0 else f"{pas}.{net}.h{i}"

    passes = [("tgt", "actor_t", "s2", False), ("cur", "critic1", "sa", True), ("cur", "critic2", "sa", True),
              ("tgt", "critic1_t", "sa2", False), ("tgt", "critic2_t", "sa2", False)]
    if c.policy:
        passes += [("pol", "actor", "s", True), ("pol", "critic1", "sapi", False)]
    keys = {}
    for pas, net, first, wgrad in passes:
        for info in c.layers[net]:
            key = in_key(pas, net, info.index, first)
            keys[(pas, net, info.index)] = key
            if f"{key}.xT" not in lay:
                c.act_regions(key, info.n_in, info.n_in_pad, wgrad)
            if (pas, net) in (("cur", "critic1"), ("cur", "critic2"), ("pol", "actor"), ("pol", "critic1")):
                c.f32(f"{pas}.{info.key}.y", (n, info.n_out), "layer output y (for the ReLU mask)")
    grads_out = (("cur", "critic1"), ("cur", "critic2")) + ((("pol", "actor"), ("pol", "critic1")) if c.policy else ())
    for pas, net in grads_out:
        c.f32(f"{pas}.{net}.dout", (n, 1) if net != "actor" else (n, ad), "output gradient")
    c.f32("tmp.noise", (n, ad), "clipped smoothing noise")
    c.f32("tgt.q1", (n, 1), "target critic 1")
    c.f32("tgt.q2", (n, 1), "target critic 2")
    if c.policy:
        c.f32("pol.t", (n, ad), "tanh of the actor output")
    for pas, net, wgrad in (("cur", "critic1", True), ("cur", "critic2", True)) + \
            ((("pol", "critic1", False), ("pol", "actor", True)) if c.policy else ()):
        for info in c.layers[net]:
            need_dx = info.index > 0 or (pas, net) == ("pol", "critic1")
            if need_dx:
                c.emd_operand(f"{pas}.{info.key}.dyT", c.b_words_count(info.n_out, n), (info.n_out, n),
                              "bf16 dY^T, B layout")
            if wgrad:
                c.emd_operand(f"{pas}.{info.key}.dyA", c.a_words_count(info.n_out, n), (info.n_out, n),
                              "bf16 dY^T, dense A layout")
                c.f32(f"{pas}.{info.key}.g{info.pname}", info.pshape, "weight gradient (fp32 of bf16)")
                c.f32(f"{pas}.{info.key}.gb", (info.n_out,), "bias gradient")

    def y_of(pas, net, i):
        return lay[f"{pas}.{net}.{c.layers[net][i].name}.y"]

    # -- host: start ------------------------------------------------------------------------
    it0 = agent.it

    def begin(mem: Memory) -> None:
        it = mem.word(lay["agent.it"].addr)
        if it != it0:
            raise ValueError(f"this program was compiled for update {it0 + 1} (it={it0}); memory holds it={it}")
        mem.set_word(lay["agent.it"].addr, it + 1)
    c.host("begin update", begin, 1, [lay["agent.it"]], [lay["agent.it"]])

    def noise_fn(mem: Memory) -> None:
        draw = mem.read_f32(lay["in.noise"].addr, (n, ad))
        noise = np.clip(np.asarray(draw, F32) * (cfg.policy_noise * ma), -cfg.noise_clip * ma, cfg.noise_clip * ma)
        mem.write_f32(lay["tmp.noise"].addr, noise)
    c.host("smoothing noise", noise_fn, 3 * n * ad, [lay["in.noise"]], [lay["tmp.noise"]])

    for net in ("actor_t", "critic1_t", "critic2_t", "critic1", "critic2", "actor"):
        if net == "actor" and not c.policy:
            continue
        c.convert_weights(net, dx_needed.get(net, set()))

    def inputs(mem: Memory) -> None:
        s = mem.read_f32(lay["in.s"].addr, (n, od))
        a = mem.read_f32(lay["in.a"].addr, (n, ad))
        s2 = mem.read_f32(lay["in.s2"].addr, (n, od))
        c.put_act(mem, "tgt.s2", round_bf16(s2), c.layers["actor_t"][0].n_in_pad)
        sa = np.concatenate([s, a], axis=1)
        c.put_act(mem, "cur.sa", round_bf16(sa), c.layers["critic1"][0].n_in_pad)
    c.host("bf16 inputs s2, (s, a)", inputs, n * (2 * od + ad),
           [lay["in.s"], lay["in.a"], lay["in.s2"]],
           [r for r in lay.regions.values() if r.name.startswith(("tgt.s2.", "cur.sa."))])

    # -- forward helpers ----------------------------------------------------------------------
    def forward_host(pas: str, net: str, i: int, g: _Gemm, save_y: bool, out_fn=None) -> None:
        """Host step after layer i's forward GEMM: y = acc + b, then ReLU and the next input."""
        info = c.layers[net][i]
        last = i == L - 1
        nxt = None if last else c.layers[net][i + 1]
        nxt_key = None if last else keys[(pas, net, i + 1)]

        def fn(mem: Memory) -> None:
            acc = np.ascontiguousarray(c.get_output(mem, g).view(np.float32).T)
            b = mem.read_f32(lay[f"{info.key}.b"].addr, (info.n_out,))
            if info.mode == "circ" and info.n_in_pad != info.n_in and (b.view(np.uint32) == 0x80000000).any():
                raise ValueError(f"{info.key}: a bias of -0 with circulant input padding can differ in the "
                                 f"sign of a zero from the golden model (see golden/compile_td3.py)")
            y = (acc + b).astype(F32, copy=False)
            if save_y:
                mem.write_f32(lay[f"{pas}.{info.key}.y"].addr, y)
            if not last:
                h = np.maximum(y, 0)
                c.put_act(mem, nxt_key, round_bf16(h), nxt.n_in_pad)
            else:
                out_fn(mem, y)
        reads = [g.out, lay[f"{info.key}.b"]]
        writes = ([lay[f"{pas}.{info.key}.y"]] if save_y else []) + \
            ([] if last else [r for r in lay.regions.values() if r.name.startswith(nxt_key + ".")])
        flops = n * info.n_out * (1 if last else 3)
        c.host(f"{pas} {info.key} bias{'' if last else ', ReLU, bf16'}", fn, flops, reads, writes)

    def forward(pas_nets, label: str, outs: dict) -> None:
        """Forward of several nets level by level, one chip segment per level."""
        for i in range(L):
            gemms = []
            for pas, net, save in pas_nets:
                gemms.append(c.fwd_gemm(pas, c.layers[net][i], keys[(pas, net, i)]))
            c.chip(f"{label} layer {i + 1}", gemms)
            for (pas, net, save), g in zip(pas_nets, gemms):
                forward_host(pas, net, i, g, save, outs.get((pas, net)))

    # -- target actor and online critics --------------------------------------------------------
    def actor_t_out(mem: Memory, h: np.ndarray) -> None:
        t = np.tanh(h)
        a2 = (t * ma).astype(F32)
        noise = mem.read_f32(lay["tmp.noise"].addr, (n, ad))
        s2 = mem.read_f32(lay["in.s2"].addr, (n, od))
        a2 = np.clip(a2 + noise, -ma, ma).astype(F32)
        sa2 = np.concatenate([s2, a2], axis=1)
        c.put_act(mem, "tgt.sa2", round_bf16(sa2), c.layers["critic1_t"][0].n_in_pad)

    def save_f32(name):
        def fn(mem: Memory, y: np.ndarray) -> None:
            mem.write_f32(lay[name].addr, y)
        return fn

    forward([("tgt", "actor_t", False), ("cur", "critic1", True), ("cur", "critic2", True)],
            "forward actor_t, critic1, critic2",
            {("tgt", "actor_t"): actor_t_out, ("cur", "critic1"): lambda m, y: None,
             ("cur", "critic2"): lambda m, y: None})
    forward([("tgt", "critic1_t", False), ("tgt", "critic2_t", False)], "forward critic1_t, critic2_t",
            {("tgt", "critic1_t"): save_f32("tgt.q1"), ("tgt", "critic2_t"): save_f32("tgt.q2")})

    # -- critic loss -------------------------------------------------------------------------
    gamma = cfg.gamma

    def critic_loss(mem: Memory) -> None:
        r = mem.read_f32(lay["in.r"].addr, (n, 1))
        nd = mem.read_f32(lay["in.nd"].addr, (n, 1))
        q1t = mem.read_f32(lay["tgt.q1"].addr, (n, 1))
        q2t = mem.read_f32(lay["tgt.q2"].addr, (n, 1))
        target = (r + nd * F32(gamma) * np.minimum(q1t, q2t)).astype(F32)
        q1 = mem.read_f32(y_of("cur", "critic1", L - 1).addr, (n, 1))
        q2 = mem.read_f32(y_of("cur", "critic2", L - 1).addr, (n, 1))
        e1, e2 = q1 - target, q2 - target
        closs = float(np.mean(e1 * e1) + np.mean(e2 * e2))
        mem.set_word(lay["info.critic_loss"].addr, _f64_word(closs))
        mem.write_f32(lay["cur.critic1.dout"].addr, (2.0 / n * e1).astype(F32))
        mem.write_f32(lay["cur.critic2.dout"].addr, (2.0 / n * e2).astype(F32))
    c.host("Q target, critic loss and its gradient", critic_loss, 13 * n,
           [lay[x] for x in ("in.r", "in.nd", "tgt.q1", "tgt.q2")] + [y_of("cur", "critic1", L - 1),
                                                                     y_of("cur", "critic2", L - 1)],
           [lay["info.critic_loss"], lay["cur.critic1.dout"], lay["cur.critic2.dout"]])

    # -- backward -----------------------------------------------------------------------------
    def backward(pas_nets, label: str, after_dx0=None) -> None:
        """Backward of several nets, one chip segment per layer (their dx and dW products)."""
        dx_prev: dict = {}
        for i in range(L - 1, -1, -1):
            gemms, plan = [], []
            for pas, net, need_w, need_dx_in in pas_nets:
                info = c.layers[net][i]
                need_dx = i > 0 or need_dx_in
                _prep_host(pas, net, i, need_w, need_dx, dx_prev.get((pas, net)))
                gx = c.dx_gemm(pas, info) if need_dx else None
                gw = _dw(pas, net, i) if need_w else None
                gemms += [g for g in (gx, gw) if g is not None]
                plan.append((pas, net, need_w, gx, gw))
            c.chip(f"{label} layer {i + 1}", gemms)
            for pas, net, need_w, gx, gw in plan:
                if gw is not None:
                    _wgrad_host(pas, net, i, gw)
                dx_prev[(pas, net)] = gx
        if after_dx0 is not None:
            after_dx0(dx_prev)

    def _dw(pas, net, i):
        return c.dw_gemm(pas, c.layers[net][i], keys[(pas, net, i)])

    def _prep_host(pas, net, i, need_w, need_dx, gx_next) -> None:
        """d for layer i (from dout, or dx of layer i+1 and the ReLU mask), its bf16 layouts and
        the bias gradient."""
        info = c.layers[net][i]
        k = c.k

        def fn(mem: Memory) -> None:
            if gx_next is None:
                d = mem.read_f32(lay[f"{pas}.{net}.dout"].addr, (n, info.n_out))
            else:
                d = np.ascontiguousarray(c.get_output(mem, gx_next).view(np.float32).T)[:, :info.n_out]
                d = np.ascontiguousarray(d)
                y = mem.read_f32(y_of(pas, net, i).addr, (n, info.n_out))
                d = d * (y > 0)
            dy = d.astype(F32, copy=False)
            dyq = round_bf16(dy)
            bits = to_bits(dyq)
            if need_dx:
                c.put(mem, lay[f"{pas}.{info.key}.dyT"], b_dense_words(bits.T, k))
            if need_w:
                c.put(mem, lay[f"{pas}.{info.key}.dyA"], a_dense_words(bits.T, k))
                mem.write_f32(lay[f"{pas}.{info.key}.gb"].addr, dy.sum(axis=0, dtype=F32))
        size = n * info.n_out
        reads = ([lay[f"{pas}.{net}.dout"]] if gx_next is None else [gx_next.out, y_of(pas, net, i)])
        writes = [r for r in (lay.regions.get(f"{pas}.{info.key}.dyT"), lay.regions.get(f"{pas}.{info.key}.dyA"),
                              lay.regions.get(f"{pas}.{info.key}.gb")) if r is not None]
        flops = size * ((0 if gx_next is None else 2) + 1 + (1 if need_w else 0))
        c.host(f"{pas} {info.key} output gradient{' (mask)' if gx_next is not None else ''}, bf16"
               f"{', bias grad' if need_w else ''}", fn, flops, reads, writes)

    def _wgrad_host(pas, net, i, gw: _Gemm) -> None:
        """dW / dv from the chip (bf16) -> the fp32 gradient golden/td3.py hands to Adam."""
        info = c.layers[net][i]
        k = c.k

        def fn(mem: Memory) -> None:
            res = from_bits(c.get_output(mem, gw).astype(np.uint16))
            if info.mode == "circ":
                p, q, _ = info.pshape
                grad = np.ascontiguousarray(res.reshape(p, k, q).transpose(0, 2, 1))  # DV[p*k+d, q] = dv[p,q,d]
                if not info.bitmap.all():  # pruned circulant blocks get no gradient
                    grad = grad * info.bitmap[:, :, None]
            elif info.mode == "sparse":
                dw = res[:, :info.n_in]
                if info.n_in_pad != info.n_in:
                    dw = np.pad(dw, ((0, 0), (0, info.n_in_pad - info.n_in)))
                grad = np.where(gst.block_expand(info.bitmap, k).astype(bool), dw, F32(-0.0))
            else:
                grad = np.ascontiguousarray(res if info.mask is None else res * info.mask)
            mem.write_f32(lay[f"{pas}.{info.key}.g{info.pname}"].addr, grad)
        c.host(f"{pas} {info.key} weight gradient", fn, int(np.prod(info.pshape)),
               [gw.out], [lay[f"{pas}.{info.key}.g{info.pname}"]])

    backward([("cur", "critic1", True, False), ("cur", "critic2", True, False)], "backward critic1, critic2")

    # -- Adam -----------------------------------------------------------------------------------
    def adam(opt_name: str, items, tag: str) -> None:
        """``golden.td3.Adam.step`` over (net, pass) parameter lists, in the golden order."""
        opt = getattr(agent, opt_name)
        lr, b1, b2, eps = opt.lr, opt.b1, opt.b2, opt.eps
        params = []  # (param region, m, s, grad region, mask)
        for pas, net in items:
            for info in c.layers[net]:
                for p in (info.pname, "b"):
                    mask = None
                    if p != "b" and info.mode == "sparse":
                        mask = gst.block_expand(info.bitmap, c.k)
                    elif p != "b" and info.mode == "circ" and not info.bitmap.all():
                        mask = info.bitmap[:, :, None]
                    elif p != "b" and info.mask is not None:
                        mask = info.mask
                    shp = info.pshape if p != "b" else (info.n_out,)
                    params.append((lay[f"{info.key}.{p}"], lay[f"{info.key}.{p}.m"], lay[f"{info.key}.{p}.s"],
                                   lay[f"{pas}.{info.key}.g{p}"], mask, shp))

        def fn(mem: Memory) -> None:
            t = mem.word(lay[f"{opt_name}.t"].addr) + 1
            mem.set_word(lay[f"{opt_name}.t"].addr, t)
            bc1 = 1.0 - b1 ** t
            bc2 = 1.0 - b2 ** t
            step_size = F32(lr / bc1)
            sq2 = F32(math.sqrt(bc2))
            for pr, mr, sr, gr, mask, shp in params:
                p = mem.read_f32(pr.addr, shp)
                m = mem.read_f32(mr.addr, shp)
                s = mem.read_f32(sr.addr, shp)
                grad = mem.read_f32(gr.addr, shp)
                m *= F32(b1)
                m += F32(1.0 - b1) * grad
                s *= F32(b2)
                s += F32(1.0 - b2) * grad * grad
                upd = step_size * m / (np.sqrt(s) / sq2 + F32(eps))
                if mask is not None:
                    upd = upd * mask
                p -= upd.astype(F32, copy=False)
                for r, v in ((pr, p), (mr, m), (sr, s)):
                    mem.write_f32(r.addr, v)
        size = sum(int(np.prod(x[5])) for x in params)
        c.host(f"Adam {tag}", fn, 13 * size, [x for p in params for x in p[:4]] + [lay[f"{opt_name}.t"]],
               [x for p in params for x in p[:3]] + [lay[f"{opt_name}.t"]])

    adam("critic_opt", [("cur", "critic1"), ("cur", "critic2")], "critics")
    if not c.policy:
        return

    # -- policy branch --------------------------------------------------------------------------
    c.convert_weights("critic1", dx_needed["critic1"], " (after the critic step)")

    def pol_inputs(mem: Memory) -> None:
        s = mem.read_f32(lay["in.s"].addr, (n, od))
        c.put_act(mem, "pol.s", round_bf16(s), c.layers["actor"][0].n_in_pad)
    c.host("bf16 input s", pol_inputs, n * od, [lay["in.s"]],
           [r for r in lay.regions.values() if r.name.startswith("pol.s.")])

    def actor_out(mem: Memory, h: np.ndarray) -> None:
        t = np.tanh(h)
        pi = (t * ma).astype(F32)
        mem.write_f32(lay["pol.t"].addr, t)
        s = mem.read_f32(lay["in.s"].addr, (n, od))
        c.put_act(mem, "pol.sapi", round_bf16(np.concatenate([s, pi], axis=1)), c.layers["critic1"][0].n_in_pad)

    forward([("pol", "actor", True)], "policy forward actor", {("pol", "actor"): actor_out})

    def q_out(mem: Memory, q: np.ndarray) -> None:
        mem.set_word(lay["info.actor_loss"].addr, _f64_word(float(-q.mean())))
        mem.write_f32(lay["pol.critic1.dout"].addr, np.full((n, 1), -1.0 / n, F32))

    forward([("pol", "critic1", True)], "policy forward critic1", {("pol", "critic1"): q_out})

    def da_fn(dx_prev) -> None:
        gx = dx_prev[("pol", "critic1")]

        def fn(mem: Memory) -> None:
            dsa = np.ascontiguousarray(c.get_output(mem, gx).view(np.float32).T)
            da = dsa[:, od:od + ad]
            d = da.astype(F32)
            t = mem.read_f32(lay["pol.t"].addr, (n, ad))
            d = (d * ma * (1.0 - t * t)).astype(F32)
            mem.write_f32(lay["pol.actor.dout"].addr, d)
        c.host("policy gradient through tanh", fn, 4 * n * ad, [gx.out, lay["pol.t"]],
               [lay["pol.actor.dout"]])

    backward([("pol", "critic1", False, True)], "policy backward critic1", after_dx0=da_fn)
    backward([("pol", "actor", True, False)], "policy backward actor")
    adam("actor_opt", [("pol", "actor")], "actor")

    tau = F32(cfg.tau)
    pairs = []
    for net in ("actor", "critic1", "critic2"):
        for lo, lt in zip(c.layers[net], c.layers[net + "_t"]):
            for p, shp in ((lo.pname, lo.pshape), ("b", (lo.n_out,))):
                pairs.append((lay[f"{lo.key}.{p}"], lay[f"{lt.key}.{p}"], shp))

    def soft(mem: Memory) -> None:
        for src, dst, shp in pairs:
            pt = mem.read_f32(dst.addr, shp)
            pt *= F32(1.0) - tau
            pt += tau * mem.read_f32(src.addr, shp)
            mem.write_f32(dst.addr, pt)
    size = sum(int(np.prod(x[2])) for x in pairs)
    c.host("soft target update", soft, 3 * size, [x for p in pairs for x in p[:2]], [p[1] for p in pairs])


# ----------------------------------------------------------------------------- memory <-> agent

def _params(program: Program):
    for net, layers in program.info["layers"].items():
        for (lname, *_), pname in zip(layers, program.info["pnames"][net]):
            yield net, lname, pname


def write_agent(program: Program, memory: Memory, agent: TD3Agent) -> None:
    """Put the agent's state (masters, Adam moments, targets, Adam steps, ``it``) in the image."""
    lay = program.layout
    for net, lname, pname in _params(program):
        layer = next(x for x in getattr(agent, net).layers if x.name == lname)
        for p in (pname, "b"):
            arr = np.asarray(layer.param(p), dtype=F32)
            memory.write_f32(lay[f"{net}.{lname}.{p}"].addr, arr)
            if not net.endswith("_t"):
                m, s = layer.adam.get(p, [np.zeros_like(arr), np.zeros_like(arr)])
                memory.write_f32(lay[f"{net}.{lname}.{p}.m"].addr, m)
                memory.write_f32(lay[f"{net}.{lname}.{p}.s"].addr, s)
    memory.set_word(lay["actor_opt.t"].addr, agent.actor_opt.t)
    memory.set_word(lay["critic_opt.t"].addr, agent.critic_opt.t)
    memory.set_word(lay["agent.it"].addr, agent.it)


def write_batch(program: Program, memory: Memory, batch, noise_draw) -> None:
    """Put one minibatch ``(s, a, r, s2, not_done)`` and the smoothing-noise draw in the image."""
    lay = program.layout
    for name, arr in zip(("in.s", "in.a", "in.r", "in.s2", "in.nd"), batch):
        arr = np.asarray(arr)
        if arr.dtype != F32 or arr.shape != lay[name].shape:
            raise ValueError(f"batch tensor {name[3:]}: {arr.dtype} {arr.shape}, the program wants float32 "
                             f"{lay[name].shape}")
        memory.write_f32(lay[name].addr, arr)
    memory.write_f32(lay["in.noise"].addr, np.asarray(noise_draw, F32))


def read_agent(program: Program, memory: Memory, agent: TD3Agent) -> None:
    """Load the state in the image into ``agent`` (in place): masters, moments, targets, steps."""
    lay = program.layout
    for net, lname, pname in _params(program):
        layer = next(x for x in getattr(agent, net).layers if x.name == lname)
        for p in (pname, "b"):
            r = lay[f"{net}.{lname}.{p}"]
            getattr(layer, p)[...] = memory.read_f32(r.addr, r.shape)
            if not net.endswith("_t"):
                layer.adam[p] = [memory.read_f32(lay[f"{net}.{lname}.{p}.m"].addr, r.shape),
                                 memory.read_f32(lay[f"{net}.{lname}.{p}.s"].addr, r.shape)]
        layer.touch()
    agent.actor_opt.t = memory.word(lay["actor_opt.t"].addr)
    agent.critic_opt.t = memory.word(lay["critic_opt.t"].addr)
    agent.it = memory.word(lay["agent.it"].addr)


def read_info(program: Program, memory: Memory) -> dict:
    """The update's losses, as ``TD3Agent.update`` returns them."""
    lay = program.layout
    info = {"critic_loss": _word_f64(memory.word(lay["info.critic_loss"].addr))}
    if program.info["policy"]:
        info["actor_loss"] = _word_f64(memory.word(lay["info.actor_loss"].addr))
    return info


# ----------------------------------------------------------------------------- small examples

#: the layer kinds of :func:`example_agent`
KINDS = ("dense", "circ", "circ-pruned", "sparse", "fine")


def example_agent(kind: str = "dense", compress=("l2",), sparsity: float = 0.5, *, seed: int = 0,
                  obs_dim: int = 5, act_dim: int = 2, hidden=(16, 16), batch: int = 8, k: int = 4) -> TD3Agent:
    """The small agent of the tests (obs 5, act 2, hidden 16-16, batch 8, k = 4), bf16-exact.

    ``kind``: "dense", "circ" (the ``compress`` layers circulant), "circ-pruned" (circulant with
    the fraction ``sparsity`` of blocks pruned by |v|, as the circ-prune rule does), "sparse"
    (those layers made group-sparse with ``Layer.to_sparse`` at ``sparsity``, bitmap of the
    expanded v by block norm, the same in targets) or "fine" (those layers turned dense with
    ``Layer.to_fine`` and an element mask keeping ``1 - sparsity`` of |W|, as rule circ-fine
    does at its switch; the targets mirror the online mask).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed: {', '.join(KINDS)}")
    cfg = TD3Config(env="none", method="dense" if kind == "dense" else "gst", numerics="bf16-exact",
                    hidden=tuple(hidden), batch=batch, block=k, compress=tuple(compress), buffer=batch)
    max_action = np.linspace(1.0, 2.0, act_dim).astype(F32)
    agent = TD3Agent(obs_dim, act_dim, max_action, cfg, np.random.default_rng(seed))
    if kind == "circ-pruned":
        for name in compress:
            i = int(name[1:]) - 1
            for net, tgt in agent.nets():
                v = net.layers[i].v
                net.layers[i].bitmap = gst.prune_more(np.ones(v.shape[:2], bool), np.linalg.norm(v, axis=2), sparsity)
                tgt.layers[i].bitmap = net.layers[i].bitmap
    if kind == "fine":
        for name in compress:
            i = int(name[1:]) - 1
            for net, tgt in agent.nets():
                net.layers[i].to_fine()
                tgt.layers[i].to_fine()
                net.layers[i].mask = tgt.layers[i].mask = gst.magnitude_mask(net.layers[i].W, sparsity).astype(F32)
    if kind == "sparse":
        for name in compress:
            i = int(name[1:]) - 1
            for net, tgt in agent.nets():
                bitmap = gst.block_bitmap(gst.circ_expand(net.layers[i].v), k, sparsity)
                net.layers[i].to_sparse(bitmap.copy())
                tgt.layers[i].to_sparse(bitmap.copy())
    return agent


def example_batch(rng, agent: TD3Agent, n: int | None = None):
    """A minibatch and smoothing-noise draw for ``agent``: observations over a wide range of
    magnitudes (fp32 sums round, so the accumulation order shows in the bits)."""
    n = n or agent.cfg.batch
    od, ad = agent.obs_dim, agent.act_dim

    def obs():
        return (rng.standard_normal((n, od)) * 2.0 ** rng.uniform(-10, 10, (n, od))).astype(F32)
    batch = (obs(), rng.uniform(-1, 1, (n, ad)).astype(F32), rng.standard_normal((n, 1)).astype(F32), obs(),
             (rng.uniform(size=(n, 1)) > 0.2).astype(F32))
    return batch, rng.standard_normal((n, ad)).astype(F32)


def command_ranges(cmd: Command) -> list[tuple[int, int]]:
    """Memory ranges ``[start, end)`` a command declares (its dependency footprint, docs/top.md)."""
    if cmd.op in (Op.LOAD, Op.GEMM):
        return [(cmd.addr, cmd.addr + cmd.extent)]
    if cmd.op == Op.TRANSPOSE:
        return [(cmd.addr, cmd.addr + cmd.extent), (cmd.addr2, cmd.addr2 + cmd.m)]
    return []
