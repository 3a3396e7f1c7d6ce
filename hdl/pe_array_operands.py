"""Operand stage of the GST core (pipeline S0 -> S1 -> S2): reads, operand registers and rings.

It takes the sequencer's steps, issues their reads to the operand store (S0), receives the
words with the step's token (S1) and registers the operands each PE multiplies (S2): the A
column slice broadcast down the rows and the B row slice along the columns. Two modes rebuild
operands here instead of reading them (``docs/pe_array.md``):

* CIRC: one A word per k x k block goes into a ring of R lanes that moves every lane up by one
  per step (index-reversed on loading for W^T), which is the circulant block column by column.
* DV: the A word's lanes are broadcast one per step; each column has a k-lane ring of X values,
  double-buffered through a shadow ring that the B reads of the previous batch fill.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import Mode

from .pe_array_sequencer import cmd_layout, step_layout, token_layout
from .pe_array_store import ReadSignature

__all__ = ["OperandsSignature", "OperandStage"]


class OperandsSignature(wiring.Signature):
    """Registered operands of one step, from the producer's side: ``a[r]`` (row r's A lane),
    ``b[r][c]`` (PE (r, c)'s B lane) and the step's token."""

    def __init__(self, cfg):
        super().__init__({
            "a": Out(data.ArrayLayout(16, cfg.rows)),
            "b": Out(data.ArrayLayout(data.ArrayLayout(16, cfg.cols), cfg.rows)),
            "token": Out(token_layout(cfg)),
        })


class OperandStage(wiring.Component):
    """Pipeline stages S1 and S2 in front of the PE grid.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    step : In(stream.Signature(step_layout(cfg)))
        ``ready`` is ``advance``.
    read : Out(ReadSignature(cfg))
    command : In(cmd_layout(cfg))
        The running command (mode and transpose choose how operands are built).
    advance : In(1)
        The pipeline moves this cycle.
    operands : Out(OperandsSignature(cfg))
    busy : Out(1)
        A step with products is in S1 or S2.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "step": In(stream.Signature(step_layout(cfg))),
            "read": Out(ReadSignature(cfg)),
            "command": In(cmd_layout(cfg)),
            "advance": In(1),
            "operands": Out(OperandsSignature(cfg)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        R, C = cfg.rows, cfg.cols
        step, rd, advance, ops = self.step, self.read, self.advance, self.operands
        go0 = step.valid & advance
        m.d.comb += [step.ready.eq(advance),
                     rd.a_addr.eq(step.payload.a_addr), rd.a_en.eq(go0 & step.payload.a_read),
                     rd.b_addr.eq(step.payload.b_addr), rd.b_en.eq(go0 & step.payload.b_read)]
        # S1: the token arrives with the words it read; S2: the token of the registered operands.
        t1 = Signal(token_layout(cfg))
        with m.If(advance):
            m.d.sync += [t1.eq(Mux(step.valid, step.payload.token, 0)), ops.token.eq(t1)]
        m.d.comb += self.busy.eq(t1.compute | ops.token.compute)

        a_lane = [rd.a_data[16 * r:16 * r + 16] for r in range(R)]
        b_lane = [rd.b_data[16 * c:16 * c + 16] for c in range(C)]
        a_op = ops.a
        b_op = [Signal(16, name=f"b_op{c}") for c in range(C)]
        go1 = advance & t1.compute
        with m.If(go1):
            m.d.sync += [b_op[c].eq(b_lane[c]) for c in range(C)]
        b_pe = [[b_op[c] for c in range(C)] for _ in range(R)]
        if cfg.circulant:
            self._a_ring(m, go1, t1, a_lane)
            b_pe = self._dv_rings(m, go1, t1, b_lane, b_op)
        else:
            with m.If(go1):
                m.d.sync += [a_op[r].eq(a_lane[r]) for r in range(R)]
        m.d.comb += [ops.b[r][c].eq(b_pe[r][c]) for r in range(R) for c in range(C)]
        return m

    def _a_ring(self, m: Module, go1, t1, a_lane):
        """A operand per mode: the word itself, the CIRC ring, or DV's lane-by-lane broadcast."""
        R, k = self.cfg.rows, self.cfg.block_size
        cmd, a_op = self.command, self.operands.a
        # CIRC: lane r at step c holds v[(r - c) mod k]: load v (index-reversed for W^T), then
        # move every lane up by one per step.
        loaded = [Mux(cmd.transpose, a_lane[(-r) % k], a_lane[r]) for r in range(R)]
        # DV: the A word's lanes are dY[p*k + r, b], broadcast one per step (r ascending).
        a_sr = [Signal(16, name=f"a_sr{r}") for r in range(R)]
        scalar = Mux(t1.aload, a_lane[0], a_sr[0])
        with m.If(go1):
            with m.If(cmd.mode == Mode.DV):
                m.d.sync += [a_op[r].eq(scalar) for r in range(R)]
                with m.If(t1.aload):
                    m.d.sync += [a_sr[r].eq(a_lane[r + 1] if r + 1 < R else 0) for r in range(R)]
                with m.Else():
                    m.d.sync += [a_sr[r].eq(a_sr[r + 1] if r + 1 < R else 0) for r in range(R)]
            with m.Elif(cmd.mode == Mode.CIRC):
                with m.If(t1.aload):
                    m.d.sync += [a_op[r].eq(loaded[r]) for r in range(R)]
                with m.Else():
                    m.d.sync += [a_op[r].eq(a_op[(r - 1) % R]) for r in range(R)]
            with m.Else():
                m.d.sync += [a_op[r].eq(a_lane[r]) for r in range(R)]

    def _dv_rings(self, m: Module, go1, t1, b_lane, b_op):
        """DV: per column j a k-lane ring of X[(q0+j)*k + i, b], refilled from a shadow ring that
        the previous batch's B reads filled; PE (d, j) reads ring j lane d. Returns each PE's B."""
        R, C, k = self.cfg.rows, self.cfg.cols, self.cfg.block_size
        is_dv = self.command.mode == Mode.DV
        shadow = [[Signal(16, name=f"xs{j}_{i}") for i in range(k)] for j in range(C)]
        ring = [[Signal(16, name=f"xr{j}_{i}") for i in range(k)] for j in range(C)]
        with m.If(self.advance & t1.fetch):
            for j in range(C):
                with m.If(t1.column == j):
                    m.d.sync += [shadow[j][i].eq(b_lane[i]) for i in range(k)]
        with m.If(go1 & is_dv):
            for j in range(C):
                with m.If(t1.aload):
                    m.d.sync += [ring[j][i].eq(shadow[j][(-i) % k]) for i in range(k)]
                with m.Else():
                    m.d.sync += [ring[j][i].eq(ring[j][(i - 1) % k]) for i in range(k)]
        return [[Mux(is_dv, ring[c][r], b_op[c]) for c in range(C)] for r in range(R)]
