"""Sequencer of the GST core: takes one command, checks its shape, and walks its tiles.

It owns the controller states (IDLE -> CHECK -> [PRE] -> FIND -> RUN -> DRAIN) and emits one
*step* per RUN cycle on the ``step`` stream: the A/B word addresses to read and the token that
travels with the step down the pipeline (``docs/pe_array.md``). ``step.ready`` is the pipeline's
``advance``: when it is low the whole schedule, FIND included, holds, which keeps the cycle model
a plain sum. The shape check is a table (:data:`SHAPE_RULES`), one row per mode.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import Mode, PEArrayError

from .lib.reduce import first_set, popcount

__all__ = ["cmd_layout", "step_layout", "token_layout", "ShapeRule", "SHAPE_RULES", "Sequencer"]


def cmd_layout(cfg) -> data.StructLayout:
    """One command: mode, W^T flag (CIRC), bf16 output rounding, M, N, K; and the operand bank
    when the array has two."""
    d = cfg.dim_bits
    fields = {"mode": Mode, "transpose": 1, "round": 1, "m": d, "n": d, "k": d}
    if cfg.banks > 1:
        fields["bank"] = range(cfg.banks)
    return data.StructLayout(fields)


def token_layout(cfg) -> data.StructLayout:
    """What travels with a step from issue to the accumulators.

    ``compute``: the step has products (a dv step may only fetch); ``first``/``last``: first and
    last step of a tile; ``zero``: the product is forced to -0 (a sparse row with no kept block);
    ``final``: last step of the command; ``aload``: the A word starts a block (ring load);
    ``fetch``/``column``: dv, the B word fills column ``column``'s shadow ring.
    """
    return data.StructLayout({"compute": 1, "first": 1, "last": 1, "zero": 1, "final": 1,
                              "aload": 1, "fetch": 1, "column": range(max(2, cfg.block_size))})


def step_layout(cfg) -> data.StructLayout:
    """One issue step: the words to read (with read enables) and the token."""
    return data.StructLayout({"a_addr": range(cfg.a_depth), "a_read": 1,
                              "b_addr": range(cfg.b_depth), "b_read": 1, "token": token_layout(cfg)})


@dataclasses.dataclass(frozen=True)
class ShapeRule:
    """What a mode needs of a command's shape.

    feature : the config flag that builds the mode (None: always built)
    whole_blocks : dims (of "m", "n", "k") that must be multiples of the block size
    bitmap_grid : (row dim, column dim) of the bitmap in blocks, each at most max_blocks
    a_words, b_words : words the operands take, from the command's dims (None: checked in PRE)
    """

    feature: str | None
    whole_blocks: str
    bitmap_grid: tuple[str, ...]
    a_words: Callable | None
    b_words: Callable


SHAPE_RULES = {
    Mode.DENSE: ShapeRule(None, "", (), lambda d: d.MT * d.K, lambda d: d.NT * d.K),
    Mode.SPARSE: ShapeRule("sparse", "mk", ("m", "k"), None, lambda d: d.NT * d.K),
    Mode.WGRAD: ShapeRule("sparse", "mn", ("m", "n"), lambda d: d.MT * d.K, lambda d: d.NT * d.K),
    Mode.CIRC: ShapeRule("circulant", "mk", (), lambda d: d.MB * d.KB, lambda d: d.NT * d.K),
    Mode.DV: ShapeRule("circulant", "mn", (), lambda d: d.MT * d.K, lambda d: d.QB * d.K),
}


class State(enum.Enum, shape=3):
    IDLE = 0
    CHECK = 1  # every shape and buffer check, one cycle
    PRE = 2    # sparse: count kept blocks, one bitmap row per cycle
    FIND = 3   # look for the next tile row with work (wgrad skips empty rows here)
    RUN = 4    # one step per cycle
    DRAIN = 5  # wait for the pipeline and the last output beat


def _ceil_div(x, n: int):
    return (x + n - 1) >> (n.bit_length() - 1) if n & (n - 1) == 0 else (x + n - 1) // n


class _Dims:
    """The command's dimensions in tiles and blocks (combinational)."""

    def __init__(self, m: Module, cfg, cmd):
        d, lk = cfg.dim_bits, cfg.block_size.bit_length() - 1
        self.M, self.N, self.K = cmd.m, cmd.n, cmd.k
        self.MT, self.NT, self.QB, self.KB, self.MB = (Signal(d + 1, name=n) for n in ("MT", "NT", "QB", "KB", "MB"))
        m.d.comb += [self.MT.eq(_ceil_div(self.M, cfg.rows)), self.QB.eq(self.N >> lk), self.KB.eq(self.K >> lk),
                     self.MB.eq(self.M >> lk),
                     # dv's output columns are blocks (one dv value per block and lane)
                     self.NT.eq(_ceil_div(Mux(cmd.mode == Mode.DV, self.QB, self.N), cfg.cols))]
        self.blocks = {"m": self.MB, "n": self.QB, "k": self.KB}
        self.low = {"m": self.M[:lk], "n": self.N[:lk], "k": self.K[:lk]}


class _Walk:
    """The tile walk's registers."""

    def __init__(self, cfg):
        d, lk, mb = cfg.dim_bits, cfg.block_size.bit_length() - 1, cfg.max_blocks
        self.ti = Signal(d + 2)
        self.tj = Signal(d + 2)
        self.kk = Signal(d + lk + 2)  # step within the tile (dense, wgrad, circ)
        self.cc = Signal(lk + 1)  # column within a block (sparse), lane counter (dv)
        self.bf = Signal(d + 1)  # dv: batch index being fetched (compute runs one behind)
        self.rem = Signal(mb)  # sparse: kept blocks of this tile row still to visit
        self.started = Signal()  # sparse: a product has been issued in this tile
        self.a_ptr = Signal(cfg.addr_bits + 2)  # sparse: next kept-block word
        self.row_base = Signal(cfg.addr_bits + 2)  # sparse: first kept-block word of the row
        self.a_rowbase = Signal(2 * d + 2)  # ti*K (dense, wgrad, dv) or the circulant row base
        self.circ_off = Signal(2 * d + 2)
        self.pre_p = Signal(range(mb + 1))
        self.pre_total = Signal(range(mb * mb + 1))


class Sequencer(wiring.Component):
    """Command intake, shape check and tile walk of the GST core.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    cmd : In(stream.Signature(cmd_layout(cfg)))
        Accepted only while idle.
    bitmap : In(data.ArrayLayout(max_blocks, max_blocks))
        Bitmap of the command's bank.
    step : Out(stream.Signature(step_layout(cfg)))
        One step per RUN cycle; ``ready`` is the pipeline's advance.
    drained : In(1)
        Nothing of the command is left in the pipeline after this cycle.
    current : Out(cmd_layout(cfg))
        The command being run (registered when accepted).
    busy, error : Out(1)
    err_code : Out(PEArrayError)
    running : Out(1)
        The command passed its checks and walks its tiles (FIND, RUN or DRAIN).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        mb = cfg.max_blocks
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "bitmap": In(data.ArrayLayout(mb, mb)),
            "step": Out(stream.Signature(step_layout(cfg))),
            "drained": In(1),
            "current": Out(cmd_layout(cfg)),
            "busy": Out(1), "error": Out(1), "err_code": Out(PEArrayError),
            "running": Out(1),
        })

    def built(self, mode: Mode) -> bool:
        feature = SHAPE_RULES[mode].feature
        return feature is None or getattr(self.cfg, feature)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        cur = self.current
        dims = _Dims(m, cfg, cur)
        w = _Walk(cfg)
        state = Signal(State)
        m.d.comb += [self.cmd.ready.eq(state == State.IDLE), self.busy.eq(state != State.IDLE),
                     self.step.valid.eq(state == State.RUN),
                     self.running.eq((state == State.FIND) | (state == State.RUN) | (state == State.DRAIN))]
        mode_ok, shape_ok, buf_ok, outside = self._checks(m, dims)
        self._control(m, state, dims, w, (mode_ok, shape_ok, buf_ok, outside))
        return m

    # ------------------------------------------------------------------ CHECK: the shape table
    def _checks(self, m: Module, dims: _Dims):
        cfg = self.cfg
        mb, d = cfg.max_blocks, cfg.dim_bits
        cur = self.current
        mult_bits = 2 * d + 2
        nonzero = (dims.M != 0) & (dims.N != 0) & (dims.K != 0)
        mode_ok, shape_ok, buf_ok = [], [], []
        qmax = Signal(d + 1)  # bitmap columns of the command (sparse modes)
        for mode, rule in SHAPE_RULES.items():
            if not self.built(mode):
                continue
            this = cur.mode == mode
            whole = [dims.low[x] == 0 for x in rule.whole_blocks]
            fits_grid = [dims.blocks[x] <= mb for x in rule.bitmap_grid]
            words = [(rule.b_words(dims)[:mult_bits] <= cfg.b_depth)]
            if rule.a_words is not None:
                words.append(rule.a_words(dims)[:mult_bits] <= cfg.a_depth)
            mode_ok.append(this)
            shape_ok.append(this & nonzero & Cat(*whole, *fits_grid, Const(1, 1)).all())
            buf_ok.append(this & Cat(*words).all())
            if rule.bitmap_grid:
                with m.If(this):
                    m.d.comb += qmax.eq(dims.blocks[rule.bitmap_grid[1]])
        # A bitmap bit outside the P x Q grid (P = M/k rows) is a host error in the sparse modes.
        bm = self.bitmap
        qmask = Signal(mb)  # bits of a bitmap row inside the shape
        m.d.comb += qmask.eq(((Const(1, mb + 1) << qmax[:max(1, mb.bit_length())]) - 1)[:mb])
        bad_rows = [Mux(i < dims.MB, (bm[i] & ~qmask).any(), bm[i].any()) for i in range(mb)]
        outside = Signal()
        m.d.comb += outside.eq(Cat(*bad_rows).any() | (qmax > mb))
        return Cat(*mode_ok).any(), Cat(*shape_ok).any(), Cat(*buf_ok).any(), outside

    # ------------------------------------------------------------------ the states
    def _control(self, m: Module, state, dims: _Dims, w: _Walk, checks):
        cfg = self.cfg
        k, mb = cfg.block_size, cfg.max_blocks
        lk = k.bit_length() - 1
        cur, advance = self.current, self.step.ready
        mode_ok, shape_ok, buf_ok, outside = checks
        is_wgrad = cur.mode == Mode.WGRAD
        is_sparse = cur.mode == Mode.SPARSE
        rows = Array(self.bitmap[i] for i in range(mb))
        row_sel = max(1, (mb - 1).bit_length())
        ti1 = w.ti + 1
        row_bits, row1_bits = Signal(mb), Signal(mb)
        if cfg.sparse:
            m.d.comb += [row_bits.eq(rows[w.ti[:row_sel]]), row1_bits.eq(rows[ti1[:row_sel]])]
        # Row masks: which tiles of a row run (WGRAD) / which blocks of an A row are kept (SPARSE).
        row_ok = Mux(is_wgrad, row_bits.any(), 1)
        row1_ok = Mux(is_wgrad, row1_bits.any(), 1)
        _, first_tj = first_set(m, row_bits, "first_tj")
        _, first1_tj = first_set(m, row1_bits, "first1_tj")
        above = Signal(mb)
        m.d.comb += above.eq(row_bits & ~((Const(2, mb + 1) << w.tj[:max(1, mb.bit_length())]) - 1)[:mb])
        has_next_w, next_w = first_set(m, above, "next_tj")
        same_row_next = Mux(is_wgrad, has_next_w & (w.tj < mb), w.tj + 1 < dims.NT)
        same_row_tj = Mux(is_wgrad, next_w, w.tj + 1)
        # WGRAD: is any tile left in a later row? (marks the command's final beat)
        later_rows = Signal()
        if cfg.sparse:
            m.d.comb += later_rows.eq(Cat(*[(w.ti < i) & (i < dims.MT) & rows[i].any() for i in range(1, mb)]).any())
        is_last_tile = ~same_row_next & ((ti1 >= dims.MT) | (is_wgrad & ~later_rows))
        tile_end = Signal()  # this step is the tile's last issue

        def start_tile_row(first_tile_tj, bits):
            """Register updates entering tile (ti', first_tile_tj) of a new row."""
            m.d.sync += [w.tj.eq(first_tile_tj), w.kk.eq(0), w.cc.eq(0), w.bf.eq(0), w.started.eq(0),
                         w.rem.eq(bits), w.circ_off.eq(0)]

        def reject(code):
            m.d.sync += [self.error.eq(1), self.err_code.eq(code), state.eq(State.IDLE)]

        # An if/elif chain on the state, not m.Switch/m.FSM: Amaranth emits a Verilog case per
        # process, and the partial ones fail Verilator's CASEINCOMPLETE lint.
        with m.If(state == State.IDLE):
            with m.If(self.cmd.valid):
                m.d.sync += [cur.eq(self.cmd.payload), state.eq(State.CHECK),
                             self.error.eq(0), self.err_code.eq(PEArrayError.NONE)]
        with m.Elif(state == State.CHECK):
            m.d.sync += [w.ti.eq(0), w.a_rowbase.eq(0), w.a_ptr.eq(0), w.row_base.eq(0),
                         w.pre_p.eq(0), w.pre_total.eq(0)]
            with m.If(~mode_ok):
                reject(PEArrayError.MODE)
            with m.Elif(~shape_ok):
                reject(PEArrayError.SHAPE)
            with m.Elif(~buf_ok):
                reject(PEArrayError.BUFFER)
            with m.Elif((is_sparse | is_wgrad) & outside):
                reject(PEArrayError.BITMAP)
            with m.Elif(is_sparse):
                m.d.sync += state.eq(State.PRE)
            with m.Else():
                m.d.sync += state.eq(State.FIND)
        with m.Elif(state == State.PRE):
            # Count kept blocks (one bitmap row per cycle): they must fit in the A buffer.
            total = w.pre_total + popcount(rows[w.pre_p[:row_sel]])
            m.d.sync += [w.pre_total.eq(total), w.pre_p.eq(w.pre_p + 1)]
            with m.If(w.pre_p + 1 >= dims.MB):
                with m.If((total << lk) > cfg.a_depth):
                    reject(PEArrayError.BLOCKS)
                with m.Else():
                    m.d.sync += state.eq(State.FIND)
        with m.Elif(state == State.FIND):
            with m.If(~advance):
                pass
            with m.Elif(w.ti >= dims.MT):
                m.d.sync += state.eq(State.DRAIN)
            with m.Elif(row_ok):
                start_tile_row(Mux(is_wgrad, first_tj, 0), row_bits)
                m.d.sync += state.eq(State.RUN)
            with m.Else():
                m.d.sync += [w.ti.eq(ti1), w.a_rowbase.eq(w.a_rowbase + dims.K)]
        with m.Elif(state == State.RUN):
            self._issue(m, dims, w, tile_end)
            m.d.comb += self.step.payload.token.final.eq(tile_end & is_last_tile)
            with m.If(advance & tile_end):
                # Next tile: same row, next row, a search for a non-empty row, or done.
                with m.If(same_row_next):
                    start_tile_row(same_row_tj, row_bits)
                    if cfg.sparse:
                        m.d.sync += w.a_ptr.eq(w.row_base)
                with m.Else():
                    m.d.sync += w.ti.eq(ti1)
                    m.d.sync += w.a_rowbase.eq(w.a_rowbase + Mux(cur.mode == Mode.CIRC,
                                                                 Mux(cur.transpose, 1, dims.KB), dims.K))
                    if cfg.sparse:
                        m.d.sync += w.row_base.eq(w.a_ptr + ~self.step.payload.token.zero)
                    with m.If(ti1 >= dims.MT):
                        m.d.sync += state.eq(State.DRAIN)
                    with m.Elif(row1_ok):
                        start_tile_row(Mux(is_wgrad, first1_tj, 0), row1_bits)
                    with m.Else():
                        m.d.sync += [w.ti.eq(w.ti + 2), w.a_rowbase.eq(w.a_rowbase + dims.K + dims.K),
                                     state.eq(State.FIND)]
        with m.Elif(state == State.DRAIN):
            with m.If(self.drained):
                m.d.sync += state.eq(State.IDLE)
        with m.Else():
            m.d.sync += state.eq(State.IDLE)  # unreachable encodings

    # ------------------------------------------------------------------ RUN: one step per mode
    def _issue(self, m: Module, dims: _Dims, w: _Walk, tile_end):
        cfg = self.cfg
        cur, advance, s = self.current, self.step.ready, self.step.payload
        tok = s.token
        k = cfg.block_size
        lk = k.bit_length() - 1
        b_base = w.tj * dims.K
        _, q_idx = first_set(m, w.rem, "q")  # sparse: the next kept block of the row
        rem_next = Signal(cfg.max_blocks)
        m.d.comb += rem_next.eq(w.rem & (w.rem - 1))
        with m.If((cur.mode == Mode.DENSE) | (cur.mode == Mode.WGRAD) | (cur.mode == Mode.CIRC)):
            m.d.comb += [s.b_addr.eq(b_base + w.kk), s.b_read.eq(1), tile_end.eq(w.kk == dims.K - 1),
                         tok.compute.eq(1), tok.first.eq(w.kk == 0), tok.last.eq(tile_end)]
            with m.If(cur.mode == Mode.CIRC):
                # One A read per block: the ring expands it (a_rowbase + circ_off = block address).
                m.d.comb += [s.a_addr.eq(w.a_rowbase + w.circ_off), s.a_read.eq(w.kk[:lk] == 0),
                             tok.aload.eq(w.kk[:lk] == 0)]
            with m.Else():
                m.d.comb += [s.a_addr.eq(w.a_rowbase + w.kk), s.a_read.eq(1)]
            with m.If(advance):
                m.d.sync += w.kk.eq(w.kk + 1)
                with m.If((cur.mode == Mode.CIRC) & (w.kk[:lk] == k - 1)):
                    m.d.sync += w.circ_off.eq(w.circ_off + Mux(cur.transpose, dims.MB, 1))
        if cfg.sparse:
            with m.Elif(cur.mode == Mode.SPARSE):
                empty = w.rem == 0
                m.d.comb += [s.a_addr.eq(w.a_ptr), s.b_addr.eq(b_base + (q_idx << lk) + w.cc),
                             s.a_read.eq(~empty), s.b_read.eq(~empty),
                             tile_end.eq(empty | ((rem_next == 0) & (w.cc == k - 1))),
                             tok.compute.eq(1), tok.first.eq(~w.started), tok.last.eq(tile_end),
                             tok.zero.eq(empty)]
                with m.If(advance):
                    m.d.sync += [w.started.eq(1), w.cc.eq(w.cc + 1)]
                    with m.If(~empty):
                        m.d.sync += w.a_ptr.eq(w.a_ptr + 1)
                    with m.If(w.cc == k - 1):
                        m.d.sync += [w.cc.eq(0), w.rem.eq(rem_next)]
        if cfg.circulant:
            with m.Elif(cur.mode == Mode.DV):
                # Fetch batch bf for columns j = cc while computing batch bf - 1, lane r = cc.
                fetching = w.bf < dims.K
                computing = w.bf != 0
                m.d.comb += [s.b_addr.eq(((w.tj << lk) + w.cc) * dims.K + w.bf), s.b_read.eq(fetching),
                             s.a_addr.eq(w.a_rowbase + w.bf - 1), s.a_read.eq(computing & (w.cc == 0)),
                             tile_end.eq((w.bf == dims.K) & (w.cc == k - 1)),
                             tok.compute.eq(computing), tok.first.eq((w.bf == 1) & (w.cc == 0)),
                             tok.last.eq(tile_end), tok.aload.eq(w.cc == 0),
                             tok.fetch.eq(fetching), tok.column.eq(w.cc)]
                with m.If(advance):
                    m.d.sync += w.cc.eq(w.cc + 1)
                    with m.If(w.cc == k - 1):
                        m.d.sync += [w.cc.eq(0), w.bf.eq(w.bf + 1)]
        with m.Else():
            pass  # never in RUN: CHECK rejects the mode
