"""On-chip sparse weight transposer: a packed tile x tile tile in, the packed tile of its transpose out.

Stream format (``docs/formats.md``, "Sparse tile format"; widths from
:class:`golden.transpose.TileFormat`): every beat has ``data`` (``max(tile*tile, 16*lanes)``
bits), ``first`` and ``last``. A tile is a header beat (``first = 1``, ``data[0:tile*tile]`` =
row-major occupancy bitmap) followed by ``ceil(nnz / lanes)`` value beats of ``lanes`` bf16
values (stored elements in row-major order, lane 0 in the low bits, padding lanes zero);
``last`` marks the tile's final beat. The output uses the same format for the transposed tile.

Micro-architecture (``docs/transposer.md``)::

          header: bitmap -> in_bm                 commit        header: transposed bitmap (wires)
    i -> value beat j: cell p loads lane     --> [bank 0] -->   value beat j: lane l = the cell
         src[p] mod lanes when                   [bank 1]       whose dst[p] == j*lanes + l   -> o
         src[p] div lanes == j                   (B banks)      (dst = column-major prefix count)
         (src = row-major prefix count)

* Each bank holds a bitmap and a dense tile x tile array of bf16 cells. The input side scatters
  each value beat into the cells of the bank being filled; the output side gathers each output
  beat from the bank being drained. Source and destination of every cell are prefix counts of
  the bitmap (rows before + earlier in the row, columns before + earlier in the column), so no
  cycle is spent searching for the next set bit: ``lanes`` values move per cycle on both sides.
* ``buffers`` banks (2 = double buffering, 3 by default) let the next tiles fill while earlier
  ones drain: back-to-back tiles stream at one beat per cycle on both sides; a tile costs
  ``ceil(nnz/lanes) + 1`` cycles (the header beat is the +1). A header is taken while its bank
  still drains, and a bank whose last beat leaves this cycle takes value beats in the same
  cycle, so ``i.ready`` depends combinationally on ``o.ready`` (never on either valid).
* Back-pressure on ``o`` holds the output beat (valid and payload stay put); when every bank is
  full, ``i.ready`` falls. Nothing is dropped except malformed tiles.
* Malformed tiles (value-beat count not ``ceil(nnz/lanes)``, ``last`` misplaced, a value beat
  outside a tile) are dropped and count in ``err_count`` (saturating). ``error`` (sticky) and
  ``err_code`` rise the cycle after the beat that made a tile malformed and hold until the
  next header is taken (a header that is itself a fault raises them again). A header always
  starts a new tile, so the unit recovers at the next tile.
"""

from __future__ import annotations

import dataclasses
import math

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import TransposerError
from golden.transpose import TileFormat

from .config import BlockConfig, param
from .lib.counter import WrapCounter
from .lib.reduce import mux_tree, or_tree, popcount, prefix_sums

__all__ = ["TransposerConfig", "Transposer", "tile_beat_layout"]


@dataclasses.dataclass(frozen=True)
class TransposerConfig(BlockConfig, TileFormat):
    """Parameters of :class:`Transposer`.

    ``tile`` and ``lanes`` (and their ranges) are those of :class:`golden.transpose.TileFormat`,
    inherited, together with the widths that follow from them (``cells``, ``data_width``,
    ``max_value_beats``).

    Parameters
    ----------
    tile : int
        Side of a square tile; a tile is tile x tile bf16 values and its bitmap tile*tile bits
        (2 to 32).
    lanes : int
        bf16 values per value beat (a power of two from 1 to min(64, tile*tile)).
    buffers : int
        Tile banks (2 = double buffering, up to 4). Two banks keep up with tiles of similar
        density; a third absorbs neighbouring tiles of very different density (block-pruned
        layers), at the cost of tile*tile*16 flip-flops per bank. Default 3 (see docs/transposer.md).
    rank_registers : bool
        Register the row and column bases of the prefix-count ranks: the input side's row bases
        as the header is taken, the output side's column bases in each bank as its tile commits
        (a running sum over tile counts, each a parallel prefix). Every beat then only adds a
        position's offset within its row or column to a registered base, instead of running the
        whole chain of tile adders: a much shorter critical path, for tile - 1 registers of
        ceil(log2(tile*tile)) bits per bank and one set more, and no extra cycle
        (docs/transposer.md, "Clock period").
        Default on; off gives the design before the common clock target (chains of adders).
    """

    PRESETS = {
        "tiny": {"tile": 4, "lanes": 2, "buffers": 2},
        "small": {"tile": 8, "lanes": 4, "buffers": 3},
        "default": {"tile": 16, "lanes": 8, "buffers": 3},
        "paper": {"tile": 16, "lanes": 16, "buffers": 3},
    }

    buffers: int = param(3, lo=2, hi=4, doc="tile banks (2 = double buffering)")
    rank_registers: bool = param(True, doc="register the row / column bases of the prefix-count ranks "
                                            "(shorter critical path, no extra cycle)")


def tile_beat_layout(cfg: TileFormat) -> data.StructLayout:
    """Layout of one beat, input and output alike: ``data``, then ``first``, then ``last``."""
    return data.StructLayout({"data": cfg.data_width, "first": 1, "last": 1})


def _row_major_ranks(m: Module, bm, tile: int, prefix: str) -> list[Signal]:
    """``rank[r*tile + c]`` = set bits of ``bm`` before position ``(r, c)`` in row-major order.

    Rows before (a running sum of row counts) plus earlier in the row (a running sum of bits):
    two chains of ``tile`` small adders, no search.
    """
    N = tile * tile
    ranks = []
    row_before = Signal(range(N + 1), name=f"{prefix}_rowbase0")
    m.d.comb += row_before.eq(0)
    for r in range(tile):
        row = bm[r * tile:(r + 1) * tile]
        in_row = Signal(range(tile + 1), name=f"{prefix}_r{r}c0")
        m.d.comb += in_row.eq(0)
        for c in range(tile):
            rank = Signal(range(N), name=f"{prefix}_{r}_{c}")
            m.d.comb += rank.eq(row_before + in_row)
            ranks.append(rank)
            if c + 1 < tile:
                nxt = Signal(range(tile + 1), name=f"{prefix}_r{r}c{c + 1}")
                m.d.comb += nxt.eq(in_row + row[c])
                in_row = nxt
        if r + 1 < tile:
            nxt = Signal(range(N + 1), name=f"{prefix}_rowbase{r + 1}")
            m.d.comb += nxt.eq(row_before + popcount(row))
            row_before = nxt
    return ranks


def _ranks_from_bases(m: Module, bm, bases, tile: int, prefix: str) -> list[Signal]:
    """``rank[r*tile + c]`` = ``bases[r]`` + set bits of row ``r`` of ``bm`` before column ``c``.

    The same ranks as :func:`_row_major_ranks` when ``bases[r]`` counts the bits of the rows
    before ``r``; here those come from registers, and the offsets within a row are a parallel
    prefix (log2(tile) adder levels).
    """
    N = tile * tile
    ranks = []
    for r in range(tile):
        upto = prefix_sums(m, [bm[r * tile + c] for c in range(tile - 1)], f"{prefix}_r{r}", tile.bit_length())
        for c in range(tile):
            rank = Signal(range(N), name=f"{prefix}_{r}_{c}")
            m.d.comb += rank.eq(bases[r] + upto[c - 1] if c else bases[r])
            ranks.append(rank)
    return ranks


def _line_bases(m: Module, lines, width: int, prefix: str) -> list:
    """Bases of ``lines`` (bit vectors): 0, then the running sums of their bit counts, the last
    line's left out; and the total of all lines. A parallel prefix over the lines."""
    upto = prefix_sums(m, [popcount(line) for line in lines], prefix, width)
    return [0] + upto[:-1], upto[-1]


class Transposer(wiring.Component):
    """Streaming transposer of packed sparse tile x tile bf16 tiles.

    Parameters
    ----------
    cfg : TransposerConfig

    Members
    -------
    i : In(stream.Signature(tile_beat_layout(cfg)))
        Packed tiles: header beat, then ``ceil(nnz/lanes)`` value beats.
    o : Out(stream.Signature(tile_beat_layout(cfg)))
        Packed transposed tiles, same format; malformed input tiles produce nothing.
    error : Out(1)
        Sticky: set the cycle after an input beat that made a tile malformed, held until the
        next header is taken (set again if that header is itself a fault).
    err_code : Out(TransposerError)
        Why ``error`` is set (``NONE`` while it is not).
    err_count : Out(16)
        Malformed tiles seen since reset (saturates at 65535).
    """

    def __init__(self, cfg: TransposerConfig):
        self.cfg = cfg
        layout = tile_beat_layout(cfg)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "error": Out(1),
            "err_code": Out(TransposerError),
            "err_count": Out(16),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        tile, lanes, N, B = cfg.tile, cfg.lanes, cfg.cells, cfg.buffers
        log_p = int(math.log2(lanes))
        n_beats = cfg.max_value_beats
        m = Module()

        # ---- banks -----------------------------------------------------------------------
        bank_bm = [Signal(N, name=f"bank{b}_bitmap") for b in range(B)]
        bank_need = [Signal(range(n_beats + 1), name=f"bank{b}_need") for b in range(B)]
        bank_full = [Signal(name=f"bank{b}_full") for b in range(B)]
        bank_val = [[Signal(16, name=f"bank{b}_v{p // tile}_{p % tile}") for p in range(N)] for b in range(B)]
        commit = Signal()          # the tile being filled is complete: bank wr takes it
        release = Signal()         # the output sends the last beat of bank rd in this cycle
        wr = WrapCounter(m, B, commit, "wr").value
        rd = WrapCounter(m, B, release, "rd").value

        # ---- input side: parse, scatter, commit ----------------------------------------
        # Combinational logic here is written as plain expressions (no comb If/Switch/Array):
        # those become `always @*` blocks, which Icarus (-g2012) never evaluates until one of
        # their inputs changes, leaving outputs X after reset.
        IDLE, VALUES, DISCARD, EMPTY = 0, 1, 2, 3
        in_state = Signal(2, init=IDLE)
        in_bm = Signal(N)                          # bitmap of the tile being filled
        in_need = Signal(range(n_beats + 1))       # its value-beat count
        in_cnt = Signal(range(n_beats + 1))        # value beats taken so far

        hdr_bm = self.i.p.data[:N]
        hdr_need = Signal(range(n_beats + 1))
        if cfg.rank_registers:
            # The header's row bases, registered with in_bm below; their total is its count.
            hdr_bases, hdr_total = _line_bases(m, [hdr_bm[r * tile:(r + 1) * tile] for r in range(tile)],
                                               N.bit_length(), "hdr_rows")
            m.d.comb += hdr_need.eq((hdr_total + (lanes - 1)) >> log_p)
        else:
            m.d.comb += hdr_need.eq((popcount(hdr_bm) + (lanes - 1)) >> log_p)

        # The input fills bank `wr` and commits the tile there once it is complete. Only value
        # beats (and the commit of an empty tile) need that bank to be free: a header goes into
        # in_bm while the bank still drains, and a bank whose last beat leaves in this very
        # cycle counts as free (its cells are read before the clock edge that writes them).
        wr_free = Signal()
        m.d.comb += wr_free.eq(~mux_tree(bank_full, wr) | (release & (rd == wr)))
        m.d.comb += self.i.ready.eq(Mux(in_state == VALUES, wr_free, in_state != EMPTY))
        take = self.i.valid & self.i.ready
        first, last = self.i.p.first, self.i.p.last
        is_hdr = Signal()
        is_val = Signal()          # a value beat inside a tile
        is_stray = Signal()        # a value beat outside a tile (idle or discarding)
        m.d.comb += [is_hdr.eq(take & first),
                     is_val.eq(take & ~first & (in_state == VALUES)),
                     is_stray.eq(take & ~first & (in_state != VALUES))]
        got = Signal(range(n_beats + 2))
        at_need = Signal()
        hdr_empty = Signal()
        m.d.comb += [got.eq(in_cnt + 1), at_need.eq(got == in_need), hdr_empty.eq(hdr_need == 0)]

        commit_need = Signal(range(n_beats + 1))
        err_header = Signal()      # a header while a tile is open: that tile was truncated
        err_value = Signal()       # this beat makes its own tile malformed
        errors_now = Signal(2)     # a header can close a truncated tile and be bad itself
        m.d.comb += [
            commit.eq((is_hdr & hdr_empty & last & wr_free) | ((in_state == EMPTY) & wr_free)
                      | (is_val & last & at_need)),
            commit_need.eq(Mux(is_val, in_need, 0)),
            err_header.eq(is_hdr & (in_state == VALUES)),
            err_value.eq((is_hdr & (hdr_empty ^ last))
                         | (is_stray & (in_state == IDLE))
                         | (is_val & (last ^ at_need))),
            errors_now.eq(err_header + err_value),
        ]

        lane_values = [self.i.p.data[16 * lane:16 * (lane + 1)] for lane in range(lanes)]
        if cfg.rank_registers:
            in_bases = [0] + [Signal(range(N), name=f"src_rowbase{r}") for r in range(1, tile)]
            with m.If(is_hdr):
                m.d.sync += [in_bases[r].eq(hdr_bases[r]) for r in range(1, tile)]
            src = _ranks_from_bases(m, in_bm, in_bases, tile, "src")
        else:
            src = _row_major_ranks(m, in_bm, tile, "src")
        for p in range(N):
            # Cell p holds packed value src[p]: it arrives in beat src // lanes, lane src % lanes.
            hit = Signal(name=f"scatter_{p // tile}_{p % tile}")
            m.d.comb += hit.eq(is_val & in_bm[p] & ((src[p] >> log_p) == in_cnt))
            # A signal, not an expression: Amaranth's simulator and its Verilog backend copy an
            # expression into every use (here one per bank); see docs/transposer.md, "Simulation speed".
            value = Signal(16, name=f"in_{p // tile}_{p % tile}")
            m.d.comb += value.eq(mux_tree(lane_values, src[p][:log_p]))
            for b in range(B):
                with m.If(hit & (wr == b)):
                    m.d.sync += bank_val[b][p].eq(value)

        with m.If(is_hdr):
            m.d.sync += [in_bm.eq(hdr_bm), in_need.eq(hdr_need), in_cnt.eq(0)]
            with m.If(last & hdr_empty & ~wr_free):
                m.d.sync += in_state.eq(EMPTY)         # an empty tile waiting for its bank
            with m.Elif(last):
                m.d.sync += in_state.eq(IDLE)          # an empty tile, or a bad non-empty one
            with m.Elif(hdr_empty):
                m.d.sync += in_state.eq(DISCARD)       # empty but no last: skip to the next tile
            with m.Else():
                m.d.sync += in_state.eq(VALUES)
        with m.If((in_state == EMPTY) & wr_free):
            m.d.sync += in_state.eq(IDLE)
        with m.If(is_stray):
            m.d.sync += in_state.eq(Mux(last, IDLE, DISCARD))
        with m.If(is_val):
            m.d.sync += in_cnt.eq(got)
            with m.If(last):
                m.d.sync += in_state.eq(IDLE)
            with m.Elif(at_need):
                m.d.sync += in_state.eq(DISCARD)       # too many value beats

        if cfg.rank_registers:
            # Column bases of the tile being committed (an empty tile's are never read).
            bank_colbase = [[0] + [Signal(range(N), name=f"bank{b}_colbase{c}") for c in range(1, tile)]
                            for b in range(B)]
            commit_colbase, _ = _line_bases(m, [Cat(in_bm[r * tile + c] for r in range(tile)) for c in range(tile)],
                                            N.bit_length(), "in_cols")
        with m.If(commit):
            for b in range(B):
                with m.If(wr == b):
                    # an empty tile's bitmap is zero; in_bm is only loaded at its header
                    m.d.sync += [bank_bm[b].eq(Mux(is_hdr, 0, in_bm)), bank_need[b].eq(commit_need)]
                    if cfg.rank_registers:
                        m.d.sync += [bank_colbase[b][c].eq(commit_colbase[c]) for c in range(1, tile)]
        for b in range(B):
            # a bank can be released and refilled in the same cycle: the commit wins
            m.d.sync += bank_full[b].eq((commit & (wr == b)) | (bank_full[b] & ~(release & (rd == b))))

        # Sticky until the next tile starts (a header), unless this very beat is a fault.
        error_next = Signal()
        m.d.comb += error_next.eq((self.error & ~is_hdr) | (errors_now != 0))
        m.d.sync += [self.error.eq(error_next),
                     self.err_code.eq(Mux(error_next, TransposerError.MALFORMED, TransposerError.NONE))]
        total = self.err_count + errors_now
        m.d.sync += self.err_count.eq(Mux(total > 0xFFFF, 0xFFFF, total))

        # ---- output side: header (bitmap transposed by wiring), then gathered value beats
        HDR, VAL = 0, 1
        out_state = Signal(1, init=HDR)
        out_cnt = Signal(range(n_beats + 1))
        o_bm = Signal(N)
        o_need = Signal(range(n_beats + 1))
        m.d.comb += [
            o_bm.eq(mux_tree(bank_bm, rd)),
            o_need.eq(mux_tree(bank_need, rd)),
            self.o.valid.eq(mux_tree(bank_full, rd)),
        ]
        o_bm_t = Signal(N)  # a signal for the same reason: its bits feed every rank
        m.d.comb += o_bm_t.eq(Cat(o_bm[r * tile + c] for c in range(tile) for r in range(tile)))
        # dst of cell (r, c) = row-major rank of (c, r) in the transposed bitmap.
        if cfg.rank_registers:
            o_colbase = [0]
            for c in range(1, tile):
                base = Signal(range(N), name=f"o_colbase{c}")
                m.d.comb += base.eq(mux_tree([bank_colbase[b][c] for b in range(B)], rd))
                o_colbase.append(base)
            dst_t = _ranks_from_bases(m, o_bm_t, o_colbase, tile, "dst")
        else:
            dst_t = _row_major_ranks(m, o_bm_t, tile, "dst")
        lane_terms = [[] for _ in range(lanes)]
        for r in range(tile):
            for c in range(tile):
                p, q = r * tile + c, c * tile + r
                dst = dst_t[q]
                here = Signal(name=f"gather_{r}_{c}")
                m.d.comb += here.eq(o_bm[p] & ((dst >> log_p) == out_cnt))
                value = Signal(16, name=f"out_{r}_{c}")  # one bank multiplexer per cell, not one per lane
                m.d.comb += value.eq(mux_tree([bank_val[b][p] for b in range(B)], rd))
                for lane in range(lanes):
                    sel = here & (dst[:log_p] == lane) if log_p else here
                    lane_terms[lane].append(Mux(sel, value, 0))
        val_data = Cat(*(or_tree(terms) for terms in lane_terms))

        o_last = Signal()
        in_hdr = out_state == HDR
        m.d.comb += [
            self.o.p.data.eq(Mux(in_hdr, o_bm_t, val_data)),
            self.o.p.first.eq(in_hdr),
            o_last.eq(Mux(in_hdr, o_need == 0, out_cnt + 1 == o_need)),
            self.o.p.last.eq(o_last),
        ]

        m.d.comb += release.eq(self.o.valid & self.o.ready & o_last)
        with m.If(self.o.valid & self.o.ready):
            with m.If(o_last):
                m.d.sync += out_state.eq(HDR)       # rd steps on `release`
            with m.Elif(out_state == HDR):
                m.d.sync += [out_state.eq(VAL), out_cnt.eq(0)]
            with m.Else():
                m.d.sync += out_cnt.eq(out_cnt + 1)
        return m
