"""The PE grid of the GST core (pipeline S2 -> S3) and its drain.

PE (r, c) multiplies its operands (S2, :class:`hdl.lib.fp.Bf16Multiplier`, product registered)
and adds the product to its fp32 accumulator (S3, :class:`hdl.lib.fp.Fp32Adder`), from -0 at a
tile's first step. A tile's last step also writes the sum into a shadow bank, which drains as R
output beats of C lanes while the next tile computes. The grid computes ``advance``: the whole
pipeline holds only when a tile finishes while the shadow bank still holds the previous one.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .lib.fp import FP32_NEG_ZERO, Bf16Multiplier, Fp32Adder, round_bf16
from .pe_array_operands import OperandsSignature

__all__ = ["out_layout", "Grid"]


def out_layout(cfg) -> data.StructLayout:
    """One output beat: one tile row of C fp32 lanes; ``last`` marks the command's final beat."""
    return data.StructLayout({"data": 32 * cfg.cols, "last": 1})


class Grid(wiring.Component):
    """R x C multiply-accumulate PEs, the shadow bank and the output drain.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    operands : In(OperandsSignature(cfg))
    round : In(1)
        Drain lanes rounded to bf16 (as fp32 patterns).
    o : Out(stream.Signature(out_layout(cfg)))
        R beats per tile, tiles in the order they finish.
    advance : Out(1)
        The pipeline moves this cycle.
    drained : Out(1)
        No step is in S3 and, after this cycle, no beat waits in the shadow bank.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "operands": In(OperandsSignature(cfg)),
            "round": In(1),
            "o": Out(stream.Signature(out_layout(cfg))),
            "advance": Out(1),
            "drained": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        R, C = cfg.rows, cfg.cols
        ops, advance = self.operands, self.advance
        t3 = Signal.like(ops.token, name="t3")
        full = Signal()  # the shadow bank holds a tile not yet drained
        m.d.comb += advance.eq(~(t3.compute & t3.last & full))
        with m.If(advance):
            m.d.sync += t3.eq(ops.token)
        shadow = [[Signal(32, name=f"res{r}_{c}") for c in range(C)] for r in range(R)]
        for r in range(R):
            for c in range(C):
                mul = m.submodules[f"mul{r}_{c}"] = Bf16Multiplier()
                add = m.submodules[f"add{r}_{c}"] = Fp32Adder()
                prod = Signal(32, name=f"prod{r}_{c}")
                acc = Signal(32, name=f"acc{r}_{c}", init=FP32_NEG_ZERO)
                m.d.comb += [mul.a.eq(ops.a[r]), mul.b.eq(ops.b[r][c])]
                with m.If(advance & ops.token.compute):
                    m.d.sync += prod.eq(mul.product)
                m.d.comb += [add.a.eq(Mux(t3.first, FP32_NEG_ZERO, acc)),
                             add.b.eq(Mux(t3.zero, FP32_NEG_ZERO, prod))]
                with m.If(advance & t3.compute):
                    m.d.sync += acc.eq(add.sum)
                    with m.If(t3.last):
                        m.d.sync += shadow[r][c].eq(add.sum)
        self._drain(m, t3, full, shadow)
        return m

    def _drain(self, m: Module, t3, full, shadow):
        """Shadow bank -> output beats, one tile row per beat, optionally rounded to bf16."""
        R, C = self.cfg.rows, self.cfg.cols
        o = self.o
        drow = Signal(range(max(2, R)))
        final_tile = Signal()
        with m.If(self.advance & t3.compute & t3.last):
            m.d.sync += [full.eq(1), drow.eq(0), final_tile.eq(t3.final)]
        with m.If(o.valid & o.ready):
            m.d.sync += drow.eq(drow + 1)
            with m.If(drow == R - 1):
                m.d.sync += full.eq(0)
        row = Array(Cat(*shadow[r]) for r in range(R))[drow]
        lanes = []
        for c in range(C):
            x = row[32 * c:32 * c + 32]
            lanes.append(Mux(self.round, round_bf16(m, x, f"rnd{c}"), x))
        last_beat = o.valid & o.ready & o.payload.last
        m.d.comb += [o.valid.eq(full), o.payload.data.eq(Cat(*lanes)),
                     o.payload.last.eq(final_tile & (drow == R - 1)),
                     self.drained.eq(~t3.compute & (~full | last_beat))]
