"""Operand store of the GST core: the A and B SRAMs and the block bitmap, one set per bank.

With ``banks = 2`` (ping-pong) a host fills one bank through the ``load`` stream while the
running command reads the other. The store holds (``ready`` low) a load to the bank the running
command reads until that command is done, so no command ever sees its operands change and no
beat is lost; a load to the other bank goes straight in. A load that transfers in the same
cycle as the command reading its bank is written before the command's first read.
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import LoadSel

from .lib.sram import Sram

__all__ = ["load_layout", "bank_of", "sram_names", "ReadSignature", "OperandStore"]


def sram_names(cfg) -> tuple[str, ...]:
    """Submodule names of the store's SRAMs: ``a<bank>``, ``b<bank>`` (synthesis black boxes)."""
    return tuple(f"{part}{bank}" for bank in range(cfg.banks) for part in ("a", "b"))


def load_layout(cfg) -> data.StructLayout:
    """One load beat: what it writes (:class:`LoadSel`), word address, word; and the bank when
    the array has two."""
    fields = {"sel": LoadSel, "addr": cfg.addr_bits, "data": 16 * cfg.word_lanes}
    if cfg.banks > 1:
        fields["bank"] = range(cfg.banks)
    return data.StructLayout(fields)


def bank_of(cfg, payload):
    """The ``bank`` field of a load or command payload (0 on a one-bank array, which has none)."""
    return payload.bank if cfg.banks > 1 else 0


class ReadSignature(wiring.Signature):
    """The operand read port, from the reader's side: A and B word addresses and read enables
    out, the words in (one cycle after the enable, held until the next one)."""

    def __init__(self, cfg):
        super().__init__({
            "a_addr": Out(range(cfg.a_depth)), "a_en": Out(1), "a_data": In(16 * cfg.rows),
            "b_addr": Out(range(cfg.b_depth)), "b_en": Out(1), "b_data": In(16 * cfg.cols),
        })


class OperandStore(wiring.Component):
    """A/B operand SRAMs (:class:`hdl.lib.Sram`, synthesis black boxes) and the bitmap registers.

    Parameters
    ----------
    cfg : PEArrayConfig

    Members
    -------
    load : In(stream.Signature(load_layout(cfg)))
        Writes; held while it targets the bank being read (``reading``).
    read : In(ReadSignature(cfg))
        Reads of bank ``read_bank``.
    read_bank : In(range(max(2, banks)))
    reading : In(1)
        A command is reading ``read_bank``.
    bitmap : Out(data.ArrayLayout(max_blocks, max_blocks))
        Bitmap rows of ``read_bank`` (row p, bit q: block (p, q) kept); zero without sparse modes.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        mb = cfg.max_blocks
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "read": In(ReadSignature(cfg)),
            "read_bank": In(range(max(2, cfg.banks))),  # one bit even with one bank (no zero-width port)
            "reading": In(1),
            "bitmap": Out(data.ArrayLayout(mb, mb)),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        load, lp, rd = self.load, self.load.payload, self.read
        bank = bank_of(cfg, lp)
        m.d.comb += load.ready.eq(~(self.reading & (bank == self.read_bank)))
        write = load.valid & load.ready
        a_data, b_data = [], []
        for i in range(cfg.banks):
            a = m.submodules[sram_names(cfg)[2 * i]] = Sram(16 * cfg.rows, cfg.a_depth)
            b = m.submodules[sram_names(cfg)[2 * i + 1]] = Sram(16 * cfg.cols, cfg.b_depth)
            here = write & (bank == i)
            mine = self.read_bank == i
            m.d.comb += [
                a.w_en.eq(here & (lp.sel == LoadSel.A)), a.w_addr.eq(lp.addr), a.w_data.eq(lp.data),
                b.w_en.eq(here & (lp.sel == LoadSel.B)), b.w_addr.eq(lp.addr), b.w_data.eq(lp.data),
                a.r_en.eq(rd.a_en & mine), a.r_addr.eq(rd.a_addr),
                b.r_en.eq(rd.b_en & mine), b.r_addr.eq(rd.b_addr),
            ]
            a_data.append(a.r_data)
            b_data.append(b.r_data)
        # The bank is fixed for a whole command, so a plain select of the read data is enough.
        m.d.comb += [rd.a_data.eq(Array(a_data)[self.read_bank] if cfg.banks > 1 else a_data[0]),
                     rd.b_data.eq(Array(b_data)[self.read_bank] if cfg.banks > 1 else b_data[0])]
        if cfg.sparse:
            self._bitmaps(m, write & (lp.sel == LoadSel.BITMAP), bank, lp)
        return m

    def _bitmaps(self, m: Module, write, bank, lp):
        cfg = self.cfg
        mb = cfg.max_blocks
        rows = [[Signal(mb, name=f"bitmap{i}_{p}") for p in range(mb)] for i in range(cfg.banks)]
        for i in range(cfg.banks):
            for p in range(mb):  # one comparator per row (an Array write lints as a partial case)
                with m.If(write & (bank == i) & (lp.addr == p)):
                    m.d.sync += rows[i][p].eq(lp.data[:mb])
        for p in range(mb):
            m.d.comb += self.bitmap[p].eq(Mux(self.read_bank, rows[-1][p], rows[0][p]) if cfg.banks > 1
                                          else rows[0][p])
