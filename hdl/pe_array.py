"""GST core: an R x C array of bf16 MAC PEs with operand banks and a tile sequencer.

Output-stationary broadcast array (``docs/pe_array.md`` has the reasons). Every command is a
GEMM ``C = A . B``: each step broadcasts one A column slice (R lanes) down the rows and one B row
slice (C lanes) along the columns, and PE (r, c) adds ``A[ti*R+r, kk] * B[kk, tj*C+c]`` to its
fp32 accumulator, kk ascending, from -0: the order of ``golden.bf16.gemm``. A finished tile moves
to a shadow bank and drains as R beats of C fp32 lanes while the next tile computes.

Modes (:class:`golden.codes.Mode`, command field ``mode``; layouts in ``golden/pe_array.py``):
DENSE, SPARSE (kept k x k blocks of A only, the bitmap drives the k loop), WGRAD (output tiles of
pruned blocks skipped), CIRC (block-circulant A, one word per block, expanded by a ring; W^T from
the same words), DV (circulant weight gradient accumulated directly).

The parts, each in its own module and joined by streams and signatures::

    load ──> OperandStore (A/B Srams + bitmap, per bank) ──read──┐        bitmap
    cmd ──> Sequencer ──step (S0)──> OperandStage (S1, S2) ──operands──> Grid (S3) + drain ──> o
              ^ current command, drained                                  │ advance
              └──────────────────────────────────────────────────────────┘

With ``banks = 2`` the host fills one bank while a command computes from the other.
"""

from __future__ import annotations

import dataclasses

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import PEArrayError

from .config import BlockConfig, param
from .pe_array_grid import Grid, out_layout
from .pe_array_operands import OperandStage
from .pe_array_sequencer import Sequencer, cmd_layout
from .pe_array_store import OperandStore, bank_of, load_layout

__all__ = ["PEArrayConfig", "PEArray", "load_layout", "cmd_layout", "out_layout", "events_layout"]


def events_layout() -> data.StructLayout:
    """Per-cycle events for performance counters: an A / B buffer word read, a step issued with
    products (R*C MACs; not a sparse row's forced -0 step), and ``running`` (the command passed its checks and walks its tiles)."""
    return data.StructLayout({"a_read": 1, "b_read": 1, "step": 1, "running": 1})


@dataclasses.dataclass(frozen=True)
class PEArrayConfig(BlockConfig):
    """Parameters of :class:`PEArray`.

    With circulant or sparse modes enabled ``rows == cols == block_size`` (a tile is one block),
    and ``max_blocks`` is at most 16 * max(rows, cols) (one bitmap row per load beat).
    """

    PRESETS = {
        "tiny": {"rows": 4, "cols": 4, "block_size": 4, "a_depth": 16384, "b_depth": 1024, "max_blocks": 8},
        "default": {},
        "paper": {"rows": 16, "cols": 16, "block_size": 16, "a_depth": 16384, "b_depth": 16384,
                  "max_blocks": 32},
    }

    rows: int = param(8, lo=1, hi=64, doc="PE rows R")
    cols: int = param(8, lo=1, hi=64, doc="PE columns C")
    block_size: int = param(8, lo=2, hi=32, pow2=True, doc="block size k of the circulant / group-sparse formats")
    a_depth: int = param(8192, lo=16, hi=1 << 20, pow2=True, doc="A buffer words (R bf16 lanes each), per bank")
    b_depth: int = param(8192, lo=16, hi=1 << 20, pow2=True, doc="B buffer words (C bf16 lanes each), per bank")
    max_blocks: int = param(64, lo=1, hi=64, doc="largest bitmap (max_blocks x max_blocks blocks) of the sparse modes")
    dim_bits: int = param(16, lo=4, hi=20, doc="width of the M, N, K command fields")
    circulant: bool = param(True, doc="build the circulant modes (CIRC, DV)")
    sparse: bool = param(True, doc="build the group-sparse modes (SPARSE, WGRAD)")
    banks: int = param(1, lo=1, hi=2, doc="operand banks: 2 = ping-pong, loads overlap compute")

    def validate(self) -> None:
        if self.circulant or self.sparse:
            self.check(self.rows == self.block_size, "rows", f"equal to block_size={self.block_size} when circulant or "
                       "sparse modes are enabled (a tile is one block)")
            self.check(self.cols == self.block_size, "cols", f"equal to block_size={self.block_size} when circulant or "
                       "sparse modes are enabled (a tile is one block)")
        limit = min(64, 16 * max(self.rows, self.cols))
        self.check(self.max_blocks <= limit, "max_blocks",
                   f"an integer from 1 to {limit} (one bitmap row per load beat of 16*max(rows, cols) bits)")

    @property
    def addr_bits(self) -> int:
        return max(self.a_depth, self.b_depth, self.max_blocks).bit_length()

    @property
    def word_lanes(self) -> int:
        return max(self.rows, self.cols)

    @property
    def pipe_depth(self) -> int:
        return 3


class PEArray(wiring.Component):
    """The GST core.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    load : In(stream.Signature(load_layout(cfg)))
        Buffer and bitmap writes. Held while they target the bank the running command reads
        (with one bank: while busy).
    cmd : In(stream.Signature(cmd_layout(cfg)))
        One GEMM command; accepted only while idle.
    o : Out(stream.Signature(out_layout(cfg)))
        Result tiles, R beats per tile, tiles row-major.
    busy : Out(1)
        High from the cycle after a command is accepted until its last beat transfers.
    error : Out(1)
        The last command was rejected (``err_code`` says why); nothing was computed.
    err_code : Out(PEArrayError)
    events : Out(events_layout())
        What happened this cycle (counters of a top; no effect on the array).
    """

    def __init__(self, cfg: PEArrayConfig):
        self.cfg = cfg
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "o": Out(stream.Signature(out_layout(cfg))),
            "busy": Out(1),
            "error": Out(1),
            "err_code": Out(PEArrayError),
            "events": Out(events_layout()),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.sequencer = seq = Sequencer(cfg)
        m.submodules.store = store = OperandStore(cfg)
        m.submodules.operands = ops = OperandStage(cfg)
        m.submodules.grid = grid = Grid(cfg)
        wiring.connect(m, wiring.flipped(self.load), store.load)
        wiring.connect(m, wiring.flipped(self.cmd), seq.cmd)
        wiring.connect(m, seq.step, ops.step)
        wiring.connect(m, ops.read, store.read)
        wiring.connect(m, ops.operands, grid.operands)
        wiring.connect(m, grid.o, wiring.flipped(self.o))
        m.d.comb += [
            store.read_bank.eq(bank_of(cfg, seq.current)), store.reading.eq(seq.busy),
            seq.bitmap.eq(store.bitmap),
            ops.command.eq(seq.current), ops.advance.eq(grid.advance),
            grid.round.eq(seq.current.round),
            seq.drained.eq(~ops.busy & grid.drained),
            self.busy.eq(seq.busy), self.error.eq(seq.error), self.err_code.eq(seq.err_code),
            self.events.a_read.eq(ops.read.a_en), self.events.b_read.eq(ops.read.b_en),
            self.events.step.eq(seq.step.valid & seq.step.ready & seq.step.payload.token.compute
                               & ~seq.step.payload.token.zero),
            self.events.running.eq(seq.running),
        ]
        return m
