"""The OmniDRL top: PE array with two operand banks, load / transpose / store units over
external memory streams, an in-order command issue with a dependency scoreboard, counters.

``docs/top.md`` has the ports, the units and the five dependency rules; ``golden/isa.py`` the
command set (one definition for hdl/ and golden/); ``docs/formats.md`` ("Command stream") every
field and the memory-side formats. The parts, one module each::

    cmd -> Queue -> Issue (decoder, golden.isa.check in logic, scoreboard) --+--> LoadUnit -> array.load
                                                                          +--> PEArray.cmd
                                                                          +--> StoreUnit (job queue)
    rd_req <- LoadUnit <- rd_data      PEArray.o -> StoreUnit -> wr <- Counters (COUNTERS)

The memory ports are plain streams (``rd_req``/``rd_data``/``wr``): a testbench memory model or
an AXI adapter serves them with any latency and back-pressure.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from amaranth import Cat, Const, Module, Mux, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import LoadSel
from golden.emd import EmdFormat
from golden.isa import COUNTER_BITS, Counter, IsaShape, TopError

from .config import BlockConfig, ConfigError, param
from .emd import EmdDecoderConfig, EmdEncoderConfig
from .lib.stream import Queue
from .omnidrl_counters import Counters
from .omnidrl_issue import Issue, command_layout, status_layout
from .omnidrl_load import LoadUnit, rd_data_layout, rd_req_layout
from .omnidrl_store import StoreUnit, wr_layout
from .pe_array import PEArray, PEArrayConfig
from .transposer import TransposerConfig

__all__ = ["OmniDRLConfig", "OmniDRL"]


def _widen(value, width: int):
    """``value`` (an int or a Value, unsigned) zero-extended to ``width`` bits."""
    v = Const(value, width) if isinstance(value, int) else Value.cast(value).as_unsigned()
    return Cat(v, Const(0, width - len(v))) if len(v) < width else v[:width]


def _array_preset(name: str) -> dict:
    return {**PEArrayConfig.PRESETS.get(name, {}), "banks": 2}


@dataclasses.dataclass(frozen=True)
class OmniDRLConfig(BlockConfig):
    """Parameters of :class:`OmniDRL`: its parts nested, plus the top's own.

    ``pe_array.rows == cols == block_size = k`` (>= 4): a memory word is one operand-buffer
    word of k bf16 lanes (``mem_bits = 16 k``); the EMD codecs take k lanes (k <= ``emd.group``)
    and the transposer a k x k tile, k lanes per beat.
    """

    PRESETS = {
        "tiny": {"pe_array": _array_preset("tiny"), "emd": EmdEncoderConfig.PRESETS["tiny"]["fmt"],
                 "transposer_buffers": 2},
        "default": {"pe_array": _array_preset("default")},
        "paper": {"pe_array": _array_preset("paper")},
    }

    #: Fields ``validate`` keeps equal, which no valid config changes one at a time.
    TIED_FIELDS: ClassVar[tuple] = (("pe_array.rows", "pe_array.cols", "pe_array.block_size"),)

    pe_array: PEArrayConfig = param(PEArrayConfig(banks=2), doc="the GST core (PE array, operand banks)")
    emd: EmdFormat = param(EmdFormat(), doc="EMD stream format of EMD loads and stores")
    transposer_buffers: int = param(2, lo=2, hi=4, doc="tile banks of the sparse transposer")
    mem_addr_bits: int = param(32, lo=8, hi=48, doc="memory word address width")
    cmd_depth: int = param(4, lo=1, hi=64, doc="commands queued in front of the decoder")
    store_jobs: int = param(2, lo=1, hi=8, doc="GEMM outputs queued at the store unit")
    emd_dec_pipeline: int = param(1, lo=0, hi=1, doc="the load unit's EMD decoder: its pipeline "
                                  "(hdl.emd.EmdDecoderConfig.pipeline)")
    emd_enc_pipeline: int = param(1, lo=0, hi=1, doc="the store unit's EMD encoder: its pipeline "
                                  "(hdl.emd.EmdEncoderConfig.pipeline)")

    def validate(self) -> None:
        pe, k = self.pe_array, self.pe_array.block_size
        self.check(pe.rows == k and pe.cols == k, "pe_array.rows",
                   f"equal to pe_array.cols and pe_array.block_size={k} (a memory word is one buffer word)")
        self.check(k >= 4, "pe_array.block_size", "at least 4 in the top (fp32 stores split a beat in two words)")
        self.check(k <= self.emd.group, "emd.group", f"at least pe_array.block_size={k} (EMD lanes = k)")
        self.check(k <= 16, "pe_array.block_size", "at most 16 in the top (EMD codecs take 1 to 16 lanes)")
        try:
            self.parts()
        except ConfigError as exc:
            raise ConfigError(f"{self.BLOCK}: a part does not fit: {exc}") from None

    def parts(self) -> dict:
        """The configs of the registered blocks inside the top, by instance name (the load and
        store units build them from here; ``omnidrl sweep`` synthesizes them one by one)."""
        k = self.pe_array.block_size
        return {"array": self.pe_array,
                "load.decoder": EmdDecoderConfig(lanes=k, word_bits=16 * k, fmt=self.emd, pipeline=self.emd_dec_pipeline),
                "load.transposer": TransposerConfig(tile=k, lanes=k, buffers=self.transposer_buffers),
                "store.encoder": EmdEncoderConfig(lanes=k, word_bits=16 * k, fmt=self.emd, pipeline=self.emd_enc_pipeline)}

    @property
    def isa_shape(self) -> IsaShape:
        """The widths of the command layout (``golden.isa.IsaShape``)."""
        pe = self.pe_array
        return IsaShape(k=pe.block_size, buf_bits=pe.addr_bits, dim_bits=pe.dim_bits,
                        mem_addr_bits=self.mem_addr_bits, max_blocks=pe.max_blocks,
                        a_depth=pe.a_depth, b_depth=pe.b_depth)


class OmniDRL(wiring.Component):
    """The processor.

    Parameters
    ----------
    cfg : OmniDRLConfig

    Members
    -------
    cmd : In(stream.Signature(command_layout(shape)))
        One command per beat (``golden.isa.encode``).
    status : Out(stream.Signature(status_layout()))
        One beat per FENCE.
    rd_req : Out(stream.Signature(rd_req_layout(shape)))
    rd_data : In(stream.Signature(rd_data_layout(shape)))
    wr : Out(stream.Signature(wr_layout(shape)))
    error : Out(1), err_code : Out(TopError)
        The last flagged command, until the next status beat.
    idle : Out(1)
        No command queued or in flight.
    """

    def __init__(self, cfg: OmniDRLConfig):
        self.cfg = cfg
        shape = cfg.isa_shape
        super().__init__({
            "cmd": In(stream.Signature(command_layout(shape))),
            "status": Out(stream.Signature(status_layout())),
            "rd_req": Out(stream.Signature(rd_req_layout(shape))),
            "rd_data": In(stream.Signature(rd_data_layout(shape))),
            "wr": Out(stream.Signature(wr_layout(shape))),
            "error": Out(1),
            "err_code": Out(TopError),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        pe = cfg.pe_array
        m = Module()
        m.submodules.queue = queue = Queue(command_layout(cfg.isa_shape), cfg.cmd_depth)
        m.submodules.issue = issue = Issue(cfg)
        m.submodules.load = load = LoadUnit(cfg)
        m.submodules.array = array = PEArray(pe)
        m.submodules.store = store = StoreUnit(cfg)
        m.submodules.counters = counters = Counters(cfg)

        wiring.connect(m, wiring.flipped(self.cmd), queue.i)
        wiring.connect(m, queue.o, issue.cmd)
        wiring.connect(m, issue.ld, load.job)
        wiring.connect(m, issue.array, array.cmd)
        wiring.connect(m, issue.st, store.job)
        wiring.connect(m, wiring.flipped(self.status), issue.status)
        wiring.connect(m, load.load, array.load)
        wiring.connect(m, array.o, store.i)
        wiring.connect(m, load.rd_req, wiring.flipped(self.rd_req))
        wiring.connect(m, wiring.flipped(self.rd_data), load.rd_data)
        m.d.comb += [
            issue.ld_done.eq(load.done), issue.ld_read_done.eq(load.read_done), issue.ld_flag.eq(load.flag),
            issue.st_flag.valid.eq(store.flag.valid), issue.st_flag.code.eq(store.flag.code),
            issue.st_flag.index.eq(store.flag.index), issue.st_done.eq(store.done),
            issue.array_busy.eq(array.busy), issue.array_running.eq(array.events.running),
            issue.array_error.eq(array.error), issue.array_err_code.eq(array.err_code),
            store.ex_done.eq(issue.ex_done),
            counters.start.eq(issue.counters_start), counters.addr.eq(issue.counters_addr),
            issue.counters_done.eq(counters.done),
            self.error.eq(issue.error), self.err_code.eq(issue.err_code),
            self.idle.eq(~queue.o.valid & issue.idle),
        ]
        # The write port: the store unit, or the counters while COUNTERS runs (it waits for
        # every earlier store, so the two never compete).
        wr = self.wr
        writer_counters = counters.wr.valid
        m.d.comb += [wr.valid.eq(Mux(writer_counters, counters.wr.valid, store.wr.valid)),
                     wr.payload.eq(Mux(writer_counters, counters.wr.payload.as_value(), store.wr.payload.as_value())),
                     counters.wr.ready.eq(writer_counters & wr.ready), store.wr.ready.eq(~writer_counters & wr.ready)]
        self._count(m, issue, load, array, store)
        return m

    def _count(self, m: Module, issue, load, array, store):
        """Per-cycle increments of every :class:`golden.isa.Counter`."""
        cfg = self.cfg
        pe = cfg.pe_array
        counters = m.submodules.counters
        rd_word = self.rd_data.valid & self.rd_data.ready
        wr_store = store.wr.valid & store.wr.ready
        ld_beat = array.load.valid & array.load.ready
        sel = array.load.payload.sel
        inc = {
            Counter.CYCLES: 1,
            Counter.COMMANDS: issue.retired,
            Counter.ERRORS: issue.flagged,
            Counter.LD_BUSY: load.events.busy,
            Counter.LD_STALL: load.events.stall,
            Counter.EX_BUSY: array.busy,
            Counter.EX_STEPS: array.events.step,
            Counter.ST_BUSY: store.events.busy,
            Counter.ST_STALL: store.events.stall,
            Counter.MACS: Mux(array.events.step, pe.rows * pe.cols, 0),
            Counter.MACS_DENSE: Mux(issue.macs_dense_valid, issue.macs_dense, 0),
            Counter.A_READS: array.events.a_read,
            Counter.B_READS: array.events.b_read,
            Counter.A_WRITES: ld_beat & (sel == LoadSel.A),
            Counter.B_WRITES: ld_beat & (sel == LoadSel.B),
            Counter.BITMAP_WRITES: ld_beat & (sel == LoadSel.BITMAP),
            Counter.MEM_READ_RAW: rd_word & ~load.events.emd,
            Counter.MEM_READ_EMD: rd_word & load.events.emd,
            Counter.MEM_WRITE_RAW: wr_store & ~store.events.emd,
            Counter.MEM_WRITE_EMD: wr_store & store.events.emd,
            Counter.EMD_GROUPS_DECODED: load.events.group,
            Counter.EMD_GROUPS_ENCODED: store.events.group,
            Counter.TRANSPOSER_TILES: load.events.tile,
        }
        assert set(inc) == set(Counter)
        # one assignment of the whole array (no per-slice ``always @*`` that Icarus would leave X)
        m.d.comb += counters.inc.eq(Cat(*[_widen(inc[c], COUNTER_BITS) for c in Counter]))
