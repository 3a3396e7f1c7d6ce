"""GST core: an R x C array of bf16 MAC PEs with operand buffers and a tile controller.

Output-stationary broadcast array (``docs/pe_array.md`` has the reasons). Every command is a
GEMM ``C = A . B``: each step broadcasts one A column slice (R lanes) down the rows and one B row
slice (C lanes) along the columns, and PE (r, c) adds ``A[ti*R+r, kk] * B[kk, tj*C+c]`` to its
fp32 accumulator, kk ascending, from -0: the order of ``golden.bf16.gemm``. A finished tile moves
to a shadow bank and drains as R beats of C fp32 lanes while the next tile computes.

Modes (command field ``mode``; layouts in ``golden/pe_array.py``):

* ``DENSE`` (0): A, B in full.
* ``SPARSE`` (1): A holds only the kept k x k blocks; the bitmap drives the k loop (pruned
  blocks cost no cycle and no read).
* ``WGRAD`` (2): dense operands, output tiles of pruned blocks skipped (group-sparse dW).
* ``CIRC`` (3): A is block-circulant, one v word per block, expanded by a rotating register ring
  (one A read per block); ``transpose`` gives W^T from the same words.
* ``DV`` (4): circulant weight gradient, dv accumulated directly (k values per block).

Pipeline: S0 issue (controller, buffer addresses) -> S1 operand registers and rings -> S2
product registers -> S3 accumulators. The whole pipeline freezes (``advance`` low) only when a
tile finishes while the shadow bank still holds the previous one.
"""

from __future__ import annotations

import dataclasses

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .lib.fp import Bf16Multiplier, Fp32Adder
from .lib.reduce import popcount
from .config import BlockConfig, is_power_of_two

__all__ = ["PEArrayConfig", "PEArray", "MODE", "ERR", "load_layout", "cmd_layout", "out_layout"]

MODE = {"dense": 0, "sparse": 1, "wgrad": 2, "circ": 3, "dv": 4}
#: error codes on ``status.err_code`` (sticky until the next command)
ERR = {"none": 0, "mode": 1, "shape": 2, "buffer": 3, "bitmap": 4, "blocks": 5}
LOAD_SEL = {"a": 0, "b": 1, "bitmap": 2}




@dataclasses.dataclass(frozen=True)
class PEArrayConfig(BlockConfig):
    """Parameters of :class:`PEArray`.

    Parameters
    ----------
    rows, cols : int
        Array size R x C (PEs). With circulant or sparse modes enabled both must equal
        ``block_size``.
    block_size : int
        Block size k of the circulant / group-sparse formats (power of two).
    a_depth, b_depth : int
        Words in the A buffer (R bf16 lanes each) and the B buffer (C lanes each), powers of two.
    max_blocks : int
        Largest bitmap (max_blocks x max_blocks block grid) the sparse modes accept.
    dim_bits : int
        Width of the M, N, K command fields.
    circulant, sparse : bool
        Build the circulant (CIRC, DV) and group-sparse (SPARSE, WGRAD) modes.
    """

    PRESETS = {
        "tiny": {"rows": 4, "cols": 4, "block_size": 4, "a_depth": 16384, "b_depth": 1024, "max_blocks": 8},
        "default": {},
        "paper": {"rows": 16, "cols": 16, "block_size": 16, "a_depth": 16384, "b_depth": 16384,
                  "max_blocks": 32},
    }

    rows: int = 8
    cols: int = 8
    block_size: int = 8
    a_depth: int = 8192
    b_depth: int = 8192
    max_blocks: int = 64
    dim_bits: int = 16
    circulant: bool = True
    sparse: bool = True

    def validate(self) -> None:
        self.check(isinstance(self.rows, int) and 1 <= self.rows <= 64, "rows", "an integer from 1 to 64")
        self.check(isinstance(self.cols, int) and 1 <= self.cols <= 64, "cols", "an integer from 1 to 64")
        self.check(is_power_of_two(self.block_size) and 2 <= self.block_size <= 32, "block_size", "a power of two from 2 to 32")
        self.check(is_power_of_two(self.a_depth) and 16 <= self.a_depth <= 1 << 20, "a_depth",
                   "a power of two from 16 to 1048576")
        self.check(is_power_of_two(self.b_depth) and 16 <= self.b_depth <= 1 << 20, "b_depth",
                   "a power of two from 16 to 1048576")
        self.check(isinstance(self.dim_bits, int) and 4 <= self.dim_bits <= 20, "dim_bits",
                   "an integer from 4 to 20")
        self.check(isinstance(self.circulant, bool), "circulant", "true or false")
        self.check(isinstance(self.sparse, bool), "sparse", "true or false")
        if self.circulant or self.sparse:
            self.check(self.rows == self.block_size, "rows", f"equal to block_size={self.block_size} when circulant or "
                       "sparse modes are enabled (a tile is one block)")
            self.check(self.cols == self.block_size, "cols", f"equal to block_size={self.block_size} when circulant or "
                       "sparse modes are enabled (a tile is one block)")
        limit = min(64, 16 * max(self.rows, self.cols))
        self.check(isinstance(self.max_blocks, int) and 1 <= self.max_blocks <= limit, "max_blocks",
                   f"an integer from 1 to {limit} (one bitmap row per load beat of 16*max(rows, cols) bits)")

    def synth_blackboxes(self) -> tuple[str, ...]:
        # The operand buffers are SRAMs: area from the SRAM model in docs/pe_array.md.
        return ("pe_array.abuf", "pe_array.bbuf")

    @property
    def addr_bits(self) -> int:
        return max(self.a_depth, self.b_depth, self.max_blocks).bit_length()

    @property
    def word_lanes(self) -> int:
        return max(self.rows, self.cols)

    @property
    def pipe_depth(self) -> int:
        return 3


def load_layout(cfg: PEArrayConfig) -> data.StructLayout:
    """One load beat: buffer select (0 A, 1 B, 2 bitmap row), word address, word."""
    return data.StructLayout({"sel": 2, "addr": cfg.addr_bits, "data": 16 * cfg.word_lanes})


def cmd_layout(cfg: PEArrayConfig) -> data.StructLayout:
    """One command: mode, W^T flag (CIRC), bf16 output rounding, and M, N, K."""
    d = cfg.dim_bits
    return data.StructLayout({"mode": 3, "transpose": 1, "round": 1, "m": d, "n": d, "k": d})


def out_layout(cfg: PEArrayConfig) -> data.StructLayout:
    """One output beat: one tile row of C fp32 lanes; ``last`` marks the command's final beat."""
    return data.StructLayout({"data": 32 * cfg.cols, "last": 1})


class _Buffer(wiring.Component):
    """A single-port-read, single-port-write buffer in its own module (a synthesis black box)."""

    synth_blackbox = True  # TEMPORARY (flows branch): until the buffers become hdl.lib.Sram

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        abits = (depth - 1).bit_length()
        super().__init__({
            "waddr": In(abits), "wdata": In(width), "we": In(1),
            "raddr": In(abits), "ren": In(1), "rdata": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[])
        w = mem.write_port()
        r = mem.read_port()
        m.d.comb += [w.addr.eq(self.waddr), w.data.eq(self.wdata), w.en.eq(self.we),
                     r.addr.eq(self.raddr), r.en.eq(self.ren), self.rdata.eq(r.data)]
        return m


def _ffs(m: Module, bits, name: str):
    """(any, index) of the lowest set bit of ``bits`` (priority encoder)."""
    idx = Signal(range(max(2, len(bits))), name=f"{name}_idx")
    for i in reversed(range(len(bits))):
        with m.If(bits[i]):
            m.d.comb += idx.eq(i)
    return bits.any(), idx




class PEArray(wiring.Component):
    """The GST core.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    load : In(stream.Signature(load_layout(cfg)))
        Buffer and bitmap writes; accepted only while idle.
    cmd : In(stream.Signature(cmd_layout(cfg)))
        One GEMM command; accepted only while idle.
    o : Out(stream.Signature(out_layout(cfg)))
        Result tiles, R beats per tile, tiles row-major.
    busy : Out(1)
        High from the cycle after a command is accepted until its last beat transfers.
    error : Out(1)
        The last command was rejected (``err_code`` says why); nothing was computed.
    err_code : Out(3)
    """

    def __init__(self, cfg: PEArrayConfig):
        self.cfg = cfg
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "o": Out(stream.Signature(out_layout(cfg))),
            "busy": Out(1),
            "error": Out(1),
            "err_code": Out(3),
        })

    def elaborate(self, platform):  # noqa: C901 - one controller, written out in order
        cfg = self.cfg
        m = Module()
        R, C, k = cfg.rows, cfg.cols, cfg.block_size
        lk = k.bit_length() - 1
        mb = cfg.max_blocks
        d = cfg.dim_bits
        NEG0 = 0x80000000

        m.submodules.abuf = abuf = _Buffer(16 * R, cfg.a_depth)
        m.submodules.bbuf = bbuf = _Buffer(16 * C, cfg.b_depth)

        # ---------------------------------------------------------------- load port
        bitmap = Array(Signal(mb, name=f"bitmap{i}") for i in range(mb))
        idle = Signal()
        m.d.comb += [self.load.ready.eq(idle), self.cmd.ready.eq(idle)]
        lp = self.load.payload
        m.d.comb += [abuf.waddr.eq(lp.addr), abuf.wdata.eq(lp.data),
                     bbuf.waddr.eq(lp.addr), bbuf.wdata.eq(lp.data)]
        with m.If(self.load.valid & idle):
            with m.If((lp.sel == LOAD_SEL["a"])):
                m.d.comb += abuf.we.eq(1)
            with m.Elif((lp.sel == LOAD_SEL["b"])):
                m.d.comb += bbuf.we.eq(1)
            with m.Elif((lp.sel == LOAD_SEL["bitmap"])):
                if cfg.sparse:
                    for i in range(mb):  # one comparator per row (an Array write lints as a partial case)
                        with m.If(lp.addr == i):
                            m.d.sync += bitmap[i].eq(lp.data[:mb])
            with m.Else():
                pass  # sel 3: ignored

        # ---------------------------------------------------------------- command registers
        mode = Signal(3)
        transpose = Signal()
        rnd = Signal()
        M = Signal(d)
        N = Signal(d)
        K = Signal(d)
        is_dense, is_sparse, is_wgrad, is_circ, is_dv = (mode == MODE[x] for x in MODE)
        MT = Signal(d + 1)  # output tile rows
        NT = Signal(d + 1)  # output tile columns
        QB = Signal(d + 1)  # dv: block columns of the output (N / k)
        KB = Signal(d + 1)  # K in blocks
        MB = Signal(d + 1)  # M in blocks
        m.d.comb += [
            MT.eq((M + R - 1) // R) if not is_power_of_two(R) else MT.eq((M + R - 1) >> (R.bit_length() - 1)),
            QB.eq(N >> lk), KB.eq(K >> lk), MB.eq(M >> lk),
        ]
        ncols = Mux(is_dv, QB, N)
        m.d.comb += NT.eq((ncols + C - 1) // C if not is_power_of_two(C) else (ncols + C - 1) >> (C.bit_length() - 1))

        # ---------------------------------------------------------------- controller state
        ti = Signal(d + 2)
        tj = Signal(d + 2)
        kk = Signal(d + lk + 2)  # step within the tile (dense, wgrad, circ)
        cc = Signal(lk + 1)  # column within a block (sparse), lane counter (dv)
        bf = Signal(d + 1)  # dv: batch index being fetched (compute runs one behind)
        rem = Signal(mb)  # sparse: kept blocks of this tile row still to visit
        started = Signal()  # sparse: a product has been issued in this tile
        a_ptr = Signal(cfg.addr_bits + 2)
        row_base = Signal(cfg.addr_bits + 2)
        a_rowbase = Signal(2 * d + 2)  # ti*K (dense, wgrad, dv) or the circulant row base
        circ_off = Signal(2 * d + 2)
        pre_p = Signal(range(mb + 1))
        pre_total = Signal(range(mb * mb + 1))
        error = Signal()
        err_code = Signal(3)
        m.d.comb += [self.error.eq(error), self.err_code.eq(err_code)]

        # pipeline tokens: what travels with a step from S0 to S3
        fields = ("valid", "first", "last", "zero", "final", "aload", "fetch")
        t1, t2, t3 = ({f: Signal(name=f"t{i}_{f}") for f in fields} for i in (1, 2, 3))
        fj1 = Signal(range(max(2, k)))
        full = Signal()
        advance = Signal()
        m.d.comb += advance.eq(~(t3["valid"] & t3["last"] & full))

        # Row masks: which tiles of a row run (WGRAD) / which blocks of an A row are kept (SPARSE).
        row_bits = Signal(mb)
        m.d.comb += row_bits.eq(bitmap[ti[:max(1, (mb - 1).bit_length())]] if cfg.sparse else 0)
        ti1 = ti + 1
        row1_bits = Signal(mb)
        m.d.comb += row1_bits.eq(bitmap[ti1[:max(1, (mb - 1).bit_length())]] if cfg.sparse else 0)
        row_ok = Mux(is_wgrad, row_bits.any(), 1)
        row1_ok = Mux(is_wgrad, row1_bits.any(), 1)
        _, first_tj = _ffs(m, row_bits, "first_tj")
        _, first1_tj = _ffs(m, row1_bits, "first1_tj")
        above = Signal(mb)
        m.d.comb += above.eq(row_bits & ~((Const(2, mb + 1) << tj[:max(1, mb.bit_length())]) - 1)[:mb])
        has_next_w, next_w = _ffs(m, above, "next_tj")
        same_row_next = Mux(is_wgrad, has_next_w & (tj < mb), tj + 1 < NT)
        same_row_tj = Mux(is_wgrad, next_w, tj + 1)
        # WGRAD: is any tile left in a later row? (marks the command's final beat)
        later_rows = Signal()
        m.d.comb += later_rows.eq(Cat(*[(ti < i) & (i < MT) & bitmap[i].any() for i in range(1, mb)]).any()
                                  if cfg.sparse else 0)

        # sparse block walk
        _, q_idx = _ffs(m, rem, "q")
        rem_next = Signal(mb)
        m.d.comb += rem_next.eq(rem & (rem - 1))

        state_names = ("IDLE", "CHECK", "PRE", "FIND", "RUN", "DRAIN")
        S = {n: i for i, n in enumerate(state_names)}
        state = Signal(range(len(state_names)), init=S["IDLE"])
        m.d.comb += [idle.eq(state == S["IDLE"]), self.busy.eq(state != S["IDLE"])]

        # S0 outputs (combinational, consumed by the buffers' read ports and the token register)
        a_addr = Signal(2 * d + 4)
        b_addr = Signal(2 * d + 4)
        a_ren = Signal()
        b_ren = Signal()
        m.d.comb += [abuf.raddr.eq(a_addr), bbuf.raddr.eq(b_addr),
                     abuf.ren.eq(a_ren & advance), bbuf.ren.eq(b_ren & advance)]
        s0 = {f: Signal(name=f"s0_{f}") for f in fields}
        s0_fj = Signal(range(max(2, k)))
        tile_end = Signal()  # this step is the tile's last issue

        # checks (CHECK state), on the registered command
        def fits(words, depth):
            return words <= depth
        mult_bits = 2 * d + 2
        dense_ok = fits((MT * K)[:mult_bits], cfg.a_depth) & fits((NT * K)[:mult_bits], cfg.b_depth)
        blocks_ok = (M[:lk] == 0) & (MB <= mb)
        outside = Signal()
        qmask = Signal(mb)  # bits of a bitmap row inside the shape
        pmax = Signal(d + 1)
        qmax = Signal(d + 1)
        m.d.comb += [pmax.eq(MB), qmax.eq(Mux(is_wgrad, N >> lk, KB))]
        m.d.comb += qmask.eq(((Const(1, mb + 1) << qmax[:max(1, (mb).bit_length())]) - 1)[:mb])
        bad_rows = []
        for i in range(mb):
            bad_rows.append(Mux(i < pmax, (bitmap[i] & ~qmask).any(), bitmap[i].any()))
        m.d.comb += outside.eq(Cat(*bad_rows).any() | (qmax > mb))
        shape_ok = Signal()
        buf_ok = Signal()
        m.d.comb += shape_ok.eq((M != 0) & (N != 0) & (K != 0))
        with m.If((mode == MODE["dense"])):
            m.d.comb += buf_ok.eq(dense_ok)
        with m.Elif((mode == MODE["sparse"])):
            m.d.comb += [shape_ok.eq((M != 0) & (N != 0) & (K != 0) & blocks_ok & (K[:lk] == 0)
                                     & (KB <= mb)),
                         buf_ok.eq(fits((NT * K)[:mult_bits], cfg.b_depth))]
        with m.Elif((mode == MODE["wgrad"])):
            m.d.comb += [shape_ok.eq((M != 0) & (N != 0) & (K != 0) & blocks_ok & (N[:lk] == 0)
                                     & ((N >> lk) <= mb)),
                         buf_ok.eq(dense_ok)]
        with m.Elif((mode == MODE["circ"])):
            m.d.comb += [shape_ok.eq((M != 0) & (N != 0) & (K != 0) & (M[:lk] == 0) & (K[:lk] == 0)),
                         buf_ok.eq(fits((MB * KB)[:mult_bits], cfg.a_depth)
                                   & fits((NT * K)[:mult_bits], cfg.b_depth))]
        with m.Elif((mode == MODE["dv"])):
            m.d.comb += [shape_ok.eq((M != 0) & (N != 0) & (K != 0) & (M[:lk] == 0) & (N[:lk] == 0)),
                         buf_ok.eq(fits((MT * K)[:mult_bits], cfg.a_depth)
                                   & fits((QB * K)[:mult_bits], cfg.b_depth))]
        with m.Else():
            pass  # rejected by mode_ok
        mode_ok = Signal()
        m.d.comb += mode_ok.eq(is_dense | (Const(int(cfg.sparse), 1) & (is_sparse | is_wgrad))
                               | (Const(int(cfg.circulant), 1) & (is_circ | is_dv)))

        def start_tile_row(first_tile_tj, bits):
            """Register updates entering tile (ti', first_tile_tj) of a new row."""
            m.d.sync += [tj.eq(first_tile_tj), kk.eq(0), cc.eq(0), bf.eq(0), started.eq(0),
                         rem.eq(bits), circ_off.eq(0)]

        with m.If((state == S["IDLE"])):
            with m.If(self.cmd.valid):
                cp = self.cmd.payload
                m.d.sync += [mode.eq(cp.mode), transpose.eq(cp.transpose), rnd.eq(cp.round),
                             M.eq(cp.m), N.eq(cp.n), K.eq(cp.k), state.eq(S["CHECK"]),
                             error.eq(0), err_code.eq(0)]
        with m.Elif((state == S["CHECK"])):
            m.d.sync += [ti.eq(0), a_rowbase.eq(0), a_ptr.eq(0), row_base.eq(0),
                         pre_p.eq(0), pre_total.eq(0)]
            with m.If(~mode_ok):
                m.d.sync += [error.eq(1), err_code.eq(ERR["mode"]), state.eq(S["IDLE"])]
            with m.Elif(~shape_ok):
                m.d.sync += [error.eq(1), err_code.eq(ERR["shape"]), state.eq(S["IDLE"])]
            with m.Elif(~buf_ok):
                m.d.sync += [error.eq(1), err_code.eq(ERR["buffer"]), state.eq(S["IDLE"])]
            with m.Elif((is_sparse | is_wgrad) & outside):
                m.d.sync += [error.eq(1), err_code.eq(ERR["bitmap"]), state.eq(S["IDLE"])]
            with m.Elif(is_sparse):
                m.d.sync += state.eq(S["PRE"])
            with m.Else():
                m.d.sync += state.eq(S["FIND"])
        with m.Elif((state == S["PRE"])):
            # Count kept blocks (one bitmap row per cycle): they must fit in the A buffer.
            total = pre_total + popcount(bitmap[pre_p[:max(1, (mb - 1).bit_length())]])
            m.d.sync += [pre_total.eq(total), pre_p.eq(pre_p + 1)]
            with m.If(pre_p + 1 >= pmax):
                with m.If((total << lk) > cfg.a_depth):
                    m.d.sync += [error.eq(1), err_code.eq(ERR["blocks"]), state.eq(S["IDLE"])]
                with m.Else():
                    m.d.sync += state.eq(S["FIND"])
        with m.Elif((state == S["FIND"])):
            # Gated by advance like RUN: a stall freezes the whole schedule, which keeps the
            # cycle model a simple sum.
            with m.If(~advance):
                pass
            with m.Elif(ti >= MT):
                m.d.sync += state.eq(S["DRAIN"])
            with m.Elif(row_ok):
                start_tile_row(Mux(is_wgrad, first_tj, 0), row_bits)
                m.d.sync += state.eq(S["RUN"])
            with m.Else():
                m.d.sync += [ti.eq(ti1), a_rowbase.eq(a_rowbase + K)]
        with m.Elif((state == S["RUN"])):
            self._issue(m, cfg, locals())
            with m.If(advance & tile_end):
                # Next tile: same row, next row, a search for a non-empty row, or done.
                with m.If(same_row_next):
                    start_tile_row(same_row_tj, row_bits)
                    if cfg.sparse:
                        m.d.sync += a_ptr.eq(row_base)
                with m.Else():
                    m.d.sync += [ti.eq(ti1)]
                    m.d.sync += a_rowbase.eq(a_rowbase + Mux(is_circ, Mux(transpose, 1, KB), K))
                    if cfg.sparse:
                        m.d.sync += row_base.eq(a_ptr + ~s0["zero"])
                    with m.If(ti1 >= MT):
                        m.d.sync += state.eq(S["DRAIN"])
                    with m.Elif(row1_ok):
                        start_tile_row(Mux(is_wgrad, first1_tj, 0), row1_bits)
                    with m.Else():
                        m.d.sync += [ti.eq(ti + 2), a_rowbase.eq(a_rowbase + K + K), state.eq(S["FIND"])]
        with m.Elif((state == S["DRAIN"])):
            pipe_empty = ~(t1["valid"] | t2["valid"] | t3["valid"])
            last_beat = self.o.valid & self.o.ready & self.o.payload.last
            with m.If(pipe_empty & (~full | last_beat)):
                m.d.sync += state.eq(S["IDLE"])
        with m.Else():
            m.d.sync += state.eq(S["IDLE"])  # unreachable encodings

        # ---------------------------------------------------------------- token pipeline
        in_run = state == S["RUN"]
        with m.If(advance):
            for f in fields:
                m.d.sync += t1[f].eq(s0[f] & in_run)
            m.d.sync += fj1.eq(s0_fj)
            for f in fields:
                m.d.sync += [t2[f].eq(t1[f]), t3[f].eq(t2[f])]

        # ---------------------------------------------------------------- S1: operands
        a_lane = [abuf.rdata[16 * r:16 * r + 16] for r in range(R)]
        b_lane = [bbuf.rdata[16 * c:16 * c + 16] for c in range(C)]
        a_op = [Signal(16, name=f"a_op{r}") for r in range(R)]
        b_op = [Signal(16, name=f"b_op{c}") for c in range(C)]
        go1 = advance & t1["valid"]
        with m.If(go1):
            m.d.sync += [b_op[c].eq(b_lane[c]) for c in range(C)]
        b_pe = [[b_op[c] for c in range(C)] for _ in range(R)]
        if cfg.circulant:
            # A ring (CIRC): load v at a block's first step (index-reversed for W^T), then move
            # every lane up by one per step: lane r at step c holds v[(r - c) mod k].
            loaded = [Mux(transpose, a_lane[(-r) % k], a_lane[r]) for r in range(R)]
            # DV: the A word's lanes are dY[p*k + r, b], broadcast one per step (r ascending).
            a_sr = [Signal(16, name=f"a_sr{r}") for r in range(R)]
            scalar = Mux(t1["aload"], a_lane[0], a_sr[0])
            with m.If(go1):
                with m.If(is_dv):
                    m.d.sync += [a_op[r].eq(scalar) for r in range(R)]
                    with m.If(t1["aload"]):
                        m.d.sync += [a_sr[r].eq(a_lane[r + 1] if r + 1 < R else 0) for r in range(R)]
                    with m.Else():
                        m.d.sync += [a_sr[r].eq(a_sr[r + 1] if r + 1 < R else 0) for r in range(R)]
                with m.Elif(is_circ):
                    with m.If(t1["aload"]):
                        m.d.sync += [a_op[r].eq(loaded[r]) for r in range(R)]
                    with m.Else():
                        m.d.sync += [a_op[r].eq(a_op[(r - 1) % R]) for r in range(R)]
                with m.Else():
                    m.d.sync += [a_op[r].eq(a_lane[r]) for r in range(R)]
            # DV: per column j a k-lane ring of X[(q0+j)*k + i, b], refilled from shadows that
            # the B reads of the previous batch filled; PE (d, j) reads ring j lane d.
            shadow = [[Signal(16, name=f"xs{j}_{i}") for i in range(k)] for j in range(C)]
            ring = [[Signal(16, name=f"xr{j}_{i}") for i in range(k)] for j in range(C)]
            with m.If(advance & t1["fetch"]):
                for j in range(C):
                    with m.If(fj1 == j):
                        m.d.sync += [shadow[j][i].eq(b_lane[i]) for i in range(k)]
            with m.If(go1 & is_dv):
                for j in range(C):
                    with m.If(t1["aload"]):
                        m.d.sync += [ring[j][i].eq(shadow[j][(-i) % k]) for i in range(k)]
                    with m.Else():
                        m.d.sync += [ring[j][i].eq(ring[j][(i - 1) % k]) for i in range(k)]
            b_pe = [[Mux(is_dv, ring[c][r], b_op[c]) for c in range(C)] for r in range(R)]
        else:
            with m.If(go1):
                m.d.sync += [a_op[r].eq(a_lane[r]) for r in range(R)]

        # ---------------------------------------------------------------- S2, S3: the PEs
        shadow_acc = [[Signal(32, name=f"res{r}_{c}") for c in range(C)] for r in range(R)]
        final_tile = Signal()
        for r in range(R):
            for c in range(C):
                mul = Bf16Multiplier()
                add = Fp32Adder()
                m.submodules[f"mul{r}_{c}"] = mul
                m.submodules[f"add{r}_{c}"] = add
                prod = Signal(32, name=f"prod{r}_{c}")
                acc = Signal(32, name=f"acc{r}_{c}", init=NEG0)
                m.d.comb += [mul.a.eq(a_op[r]), mul.b.eq(b_pe[r][c])]
                with m.If(advance & t2["valid"]):
                    m.d.sync += prod.eq(mul.product)
                m.d.comb += [add.a.eq(Mux(t3["first"], NEG0, acc)),
                             add.b.eq(Mux(t3["zero"], NEG0, prod))]
                with m.If(advance & t3["valid"]):
                    m.d.sync += acc.eq(add.sum)
                    with m.If(t3["last"]):
                        m.d.sync += shadow_acc[r][c].eq(add.sum)

        # ---------------------------------------------------------------- drain
        drow = Signal(range(max(2, R)))
        with m.If(advance & t3["valid"] & t3["last"]):
            m.d.sync += [full.eq(1), drow.eq(0), final_tile.eq(t3["final"])]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += drow.eq(drow + 1)
            with m.If(drow == R - 1):
                m.d.sync += full.eq(0)
        rows = Array(Cat(*shadow_acc[r]) for r in range(R))
        row = rows[drow]
        lanes = []
        for c in range(C):
            x = row[32 * c:32 * c + 32]
            lanes.append(Mux(rnd, _round_bf16(m, x, f"rnd{c}"), x))
        m.d.comb += [self.o.valid.eq(full), self.o.payload.data.eq(Cat(*lanes)),
                     self.o.payload.last.eq(final_tile & (drow == R - 1))]
        return m

    def _issue(self, m, cfg, env):
        """S0 of the RUN state: one step's buffer reads and token, per mode."""
        k = cfg.block_size
        lk = k.bit_length() - 1
        s0, a_addr, b_addr, a_ren, b_ren = env["s0"], env["a_addr"], env["b_addr"], env["a_ren"], env["b_ren"]
        tile_end, advance = env["tile_end"], env["advance"]
        kk, cc, bf, K, tj = env["kk"], env["cc"], env["bf"], env["K"], env["tj"]
        a_rowbase, circ_off = env["a_rowbase"], env["circ_off"]
        mode = env["mode"]
        is_last_tile = Signal()
        m.d.comb += is_last_tile.eq(~env["same_row_next"] & ((env["ti1"] >= env["MT"])
                                                             | ((mode == MODE["wgrad"]) & ~env["later_rows"])))
        b_base = tj * K
        with m.If((mode == MODE["dense"]) | (mode == MODE["wgrad"]) | (mode == MODE["circ"])):
            m.d.comb += [b_addr.eq(b_base + kk), b_ren.eq(1), tile_end.eq(kk == K - 1),
                         s0["valid"].eq(1), s0["first"].eq(kk == 0), s0["last"].eq(tile_end)]
            with m.If(mode == MODE["circ"]):
                m.d.comb += [a_addr.eq(a_rowbase + circ_off), a_ren.eq(kk[:lk] == 0),
                             s0["aload"].eq(kk[:lk] == 0)]
            with m.Else():
                m.d.comb += [a_addr.eq(a_rowbase + kk), a_ren.eq(1)]
            with m.If(advance):
                m.d.sync += kk.eq(kk + 1)
                with m.If((mode == MODE["circ"]) & (kk[:lk] == k - 1)):
                    m.d.sync += circ_off.eq(circ_off + Mux(env["transpose"], env["MB"], 1))
        if cfg.sparse:
            with m.Elif((mode == MODE["sparse"])):
                rem, q_idx, started = env["rem"], env["q_idx"], env["started"]
                a_ptr = env["a_ptr"]
                empty = rem == 0
                last_block = env["rem_next"] == 0
                m.d.comb += [a_addr.eq(a_ptr), b_addr.eq(b_base + (q_idx << lk) + cc),
                             a_ren.eq(~empty), b_ren.eq(~empty),
                             tile_end.eq(empty | (last_block & (cc == k - 1))),
                             s0["valid"].eq(1), s0["first"].eq(~started), s0["last"].eq(tile_end),
                             s0["zero"].eq(empty)]
                with m.If(advance):
                    m.d.sync += [started.eq(1), cc.eq(cc + 1)]
                    with m.If(~empty):
                        m.d.sync += a_ptr.eq(a_ptr + 1)
                    with m.If(cc == k - 1):
                        m.d.sync += [cc.eq(0), rem.eq(env["rem_next"])]
        if cfg.circulant:
            with m.Elif((mode == MODE["dv"])):
                # Fetch batch bf for columns j = cc while computing batch bf - 1, lane r = cc.
                fetching = bf < K
                computing = bf != 0
                m.d.comb += [b_addr.eq(((tj << lk) + cc) * K + bf), b_ren.eq(fetching),
                             a_addr.eq(a_rowbase + bf - 1), a_ren.eq(computing & (cc == 0)),
                             tile_end.eq((bf == K) & (cc == k - 1)),
                             s0["valid"].eq(computing), s0["first"].eq((bf == 1) & (cc == 0)),
                             s0["last"].eq(tile_end), s0["aload"].eq(cc == 0),
                             s0["fetch"].eq(fetching), env["s0_fj"].eq(cc)]
                with m.If(advance):
                    m.d.sync += cc.eq(cc + 1)
                    with m.If(cc == k - 1):
                        m.d.sync += [cc.eq(0), bf.eq(bf + 1)]
        with m.Else():
            pass  # never in RUN: CHECK rejects the mode
        m.d.comb += s0["final"].eq(tile_end & is_last_tile)


def _round_bf16(m: Module, x, name: str):
    """fp32 -> bf16 (RNE, FTZ, canonical NaN) as an fp32 pattern: ``golden.bf16.f32_round_to_bf16_bits``."""
    exp = x[23:31]
    nan = (exp == 0xFF) & (x[0:23] != 0)
    u = Signal(32, name=f"{name}_ftz")
    m.d.comb += u.eq(Mux(exp == 0, Cat(Const(0, 31), x[31]), x))
    rounded = Signal(17, name=f"{name}_r")
    m.d.comb += rounded.eq((u + 0x7FFF + u[16]) >> 16)
    r16 = Signal(16, name=f"{name}_b")
    m.d.comb += r16.eq(Mux(nan, 0x7FC0, Mux(rounded[7:15] == 0, Cat(Const(0, 15), rounded[15]), rounded[:16])))
    return Cat(Const(0, 16), r16)
