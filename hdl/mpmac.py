"""Digital mixed-precision integer MAC: weights of 1..8 bits in parallel, activations of 1..8
bits bit-serial, shift-and-add accumulation; bit for bit ``golden.mpmac``.

Streams
-------
``i`` (in)  :func:`beat_layout`: ``lanes`` weight fields (``max_w_bits`` each), ``lanes``
            activation fields (``max_a_bits`` each), the beat's ``w_bits``, ``a_bits`` (4-bit
            fields), ``a_signed`` and ``last``. A dot product is a run of beats up to ``last``;
            every beat names its precision, which must be that of the dot product's first beat.
``o`` (out) :func:`result_layout`: ``value``, the signed dot product (``acc_bits``), one beat per
            good dot product, in order.

Datapath (``docs/mpmac.md``)::

    i -> [check, sign-extend w] -> w_reg[lanes], a_reg[lanes], k = a_bits-1
         each cycle: P = sum of w_reg[l] where bit k of a_reg[l] is set   (adder tree)
                     s = -P or P at k = a_bits-1 (sign plane when a_signed), else 2*s + P
         at k = 0:   acc = s (first beat) or acc + s; on last -> output register -> o

A beat takes ``a_bits`` cycles and the next beat is taken in the cycle its predecessor
finishes, so a dot product of ``n`` beats takes ``n * a_bits`` cycles at full rate
(``golden.mpmac.dot_cycles``). Back-pressure holds the finished dot product in the engine while
the output register is full, and ``i.ready`` falls.

Errors: a bad beat (``golden.codes.MpMacError``: BITS, MIXED, OPERAND, LENGTH, in that priority)
drops its dot product; ``error``/``err_code`` rise the cycle after that beat and hold until the
next dot product's first beat is taken; the beats up to ``last`` are taken (one per cycle) and
discarded. Earlier beats of a dropped dot product may still be in the engine: they only reach
the accumulator, which the next first beat overwrites, never the output.

With ``runtime_precision=False`` the precision fields must equal the maxima and every
precision-dependent multiplexer folds to a constant, so synthesis measures a MAC built for
exactly that pair (``bench/mpmac_area.py``).
"""

from __future__ import annotations

import dataclasses

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import MpMacError
from golden.mpmac import PRECISION_FIELD_BITS, MpMacParams

from .config import BlockConfig
from .lib.reduce import add_tree
from .lib.stream import StreamRegister

__all__ = ["MpMacConfig", "MpMac", "beat_layout", "result_layout"]


@dataclasses.dataclass(frozen=True)
class MpMacConfig(BlockConfig, MpMacParams):
    """Parameters of :class:`MpMac`: the fields of :class:`golden.mpmac.MpMacParams`, inherited,
    so the hardware and the golden model cannot disagree on them.

    Parameters
    ----------
    lanes : int
        Products per beat.
    max_w_bits, max_a_bits : int
        Widest weight and activation (1..8 bits each).
    acc_bits : int
        Signed accumulator and result width; dot products longer than ``max_beats`` beats are
        rejected (LENGTH).
    runtime_precision : bool
        Precision chosen per dot product (true) or fixed at the maxima (false).
    """

    PRESETS = {
        "tiny": {"lanes": 4, "acc_bits": 20},
        "default": {},
        "paper": {"lanes": 16, "acc_bits": 32},
    }


def beat_layout(cfg: MpMacParams) -> data.StructLayout:
    """One input beat: weights, activations, precision, ``last``."""
    return data.StructLayout({
        "w": data.ArrayLayout(cfg.max_w_bits, cfg.lanes),
        "a": data.ArrayLayout(cfg.max_a_bits, cfg.lanes),
        "w_bits": PRECISION_FIELD_BITS,
        "a_bits": PRECISION_FIELD_BITS,
        "a_signed": 1,
        "last": 1,
    })


def result_layout(cfg: MpMacParams) -> data.StructLayout:
    """One result: the signed dot product."""
    return data.StructLayout({"value": signed(cfg.acc_bits)})


class MpMac(wiring.Component):
    """Mixed-precision integer dot-product unit (bit-serial activations).

    Parameters
    ----------
    cfg : MpMacConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
        Beats of dot products.
    o : Out(stream.Signature(result_layout(cfg)))
        One result per good dot product.
    error : Out(1)
        Sticky: set the cycle after a bad beat, held until the next dot product's first beat
        is taken (set again if that beat is itself bad).
    err_code : Out(MpMacError)
        Why ``error`` is set (``NONE`` while it is not).
    err_count : Out(16)
        Dot products dropped since reset (saturates at 65535).
    """

    def __init__(self, cfg: MpMacConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(result_layout(cfg))),
            "error": Out(1),
            "err_code": Out(MpMacError),
            "err_count": Out(16),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        lanes, max_w, max_a = cfg.lanes, cfg.max_w_bits, cfg.max_a_bits
        m = Module()
        m.submodules.out = out = StreamRegister(result_layout(cfg))
        wiring.connect(m, out.o, wiring.flipped(self.o))

        # Combinational logic is written as expressions (no comb If/Switch), as in the
        # transposer: Icarus evaluates `always @*` blocks only once an input changes.
        beat = self.i.p
        if cfg.runtime_precision:
            w_bits, a_bits = beat.w_bits, beat.a_bits
        else:  # constants: the precision multiplexers below fold away in synthesis
            w_bits, a_bits = Const(max_w, PRECISION_FIELD_BITS), Const(max_a, PRECISION_FIELD_BITS)

        # ---- input side: the dot product in progress, checks --------------------------------
        in_dot = Signal()                       # a dot product is open (its first beat was good)
        discard = Signal()                      # dropping beats up to the next `last`
        dot_w_bits = Signal(PRECISION_FIELD_BITS)
        dot_a_bits = Signal(PRECISION_FIELD_BITS)
        dot_signed = Signal()
        beats_taken = Signal(range(cfg.max_beats + 1))

        bad_bits = Signal()
        if cfg.runtime_precision:
            m.d.comb += bad_bits.eq((beat.w_bits == 0) | (beat.w_bits > max_w) | (beat.a_bits == 0) | (beat.a_bits > max_a))
        else:
            m.d.comb += bad_bits.eq((beat.w_bits != max_w) | (beat.a_bits != max_a))
        mixed = Signal()
        if cfg.runtime_precision:
            m.d.comb += mixed.eq(in_dot & ((beat.w_bits != dot_w_bits) | (beat.a_bits != dot_a_bits)
                                           | (beat.a_signed != dot_signed)))
        else:  # any other precision is BITS, which comes first: only the signedness can differ
            m.d.comb += mixed.eq(in_dot & (beat.a_signed != dot_signed))
        # Bits above the precision: bit j of a field must be 0 when j >= the precision.
        high_bits = []
        for lane in range(lanes):
            for j in range(1, max_w):
                high_bits.append(beat.w[lane][j] & (w_bits <= j))
            for j in range(1, max_a):
                high_bits.append(beat.a[lane][j] & (a_bits <= j))
        bad_operand = Signal()
        m.d.comb += bad_operand.eq(Cat(*high_bits).any() if high_bits else 0)
        too_long = Signal()
        m.d.comb += too_long.eq(in_dot & (beats_taken == cfg.max_beats))
        fault = Signal(MpMacError)
        m.d.comb += fault.eq(Mux(bad_bits, MpMacError.BITS,
                                 Mux(mixed, MpMacError.MIXED,
                                     Mux(bad_operand, MpMacError.OPERAND,
                                         Mux(too_long, MpMacError.LENGTH, MpMacError.NONE)))))

        # ---- engine registers -------------------------------------------------------------
        busy = Signal()
        w_reg = [Signal(signed(max_w), name=f"w_reg{lane}") for lane in range(lanes)]
        a_reg = [Signal(unsigned(max_a), name=f"a_reg{lane}") for lane in range(lanes)]
        if max_a > 1:
            k = Signal(range(max_a))            # the activation bit of this cycle
            top = Signal(range(max_a))          # a_bits - 1: the first (sign) plane
        else:  # one plane: no bit counter (a zero-width register is not valid Verilog)
            k = top = Const(0, 1)
        e_signed, e_first, e_last = Signal(), Signal(), Signal()
        horner = Signal(signed(cfg.beat_bits))
        acc = Signal(signed(cfg.acc_bits))

        plane = [a_reg[lane].bit_select(k, 1) for lane in range(lanes)]
        partial = Signal(signed(max_w + (lanes - 1).bit_length()))
        m.d.comb += partial.eq(add_tree(Mux(plane[lane], w_reg[lane], 0) for lane in range(lanes)))
        at_top = Signal()
        m.d.comb += at_top.eq(k == top)
        term = Signal(signed(len(partial) + 1))
        m.d.comb += term.eq(Mux(e_signed & at_top, -partial, partial))
        step = Signal(signed(cfg.beat_bits))    # the Horner value after this cycle's plane
        m.d.comb += step.eq(Mux(at_top, term, (horner << 1) + term))
        beat_done = Signal()
        m.d.comb += beat_done.eq(busy & (k == 0))
        dot_value = Signal(signed(cfg.acc_bits))
        m.d.comb += dot_value.eq(Mux(e_first, step, acc + step))
        stall = Signal()                        # a finished dot product waits for the output register
        m.d.comb += [out.i.valid.eq(beat_done & e_last), out.i.p.value.eq(dot_value),
                     stall.eq(beat_done & e_last & ~out.i.ready)]
        engine_free = Signal()
        m.d.comb += engine_free.eq(~busy | (beat_done & ~stall))

        m.d.comb += self.i.ready.eq(discard | engine_free)
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        checked = Signal()                      # a beat that is checked (not discarded)
        m.d.comb += checked.eq(take & ~discard)
        load = Signal()
        m.d.comb += load.eq(checked & (fault == MpMacError.NONE))

        # ---- input-side state ---------------------------------------------------------------
        with m.If(take & discard & beat.last):
            m.d.sync += discard.eq(0)
        with m.If(checked):
            with m.If(fault != MpMacError.NONE):
                m.d.sync += [in_dot.eq(0), discard.eq(~beat.last)]
            with m.Else():
                m.d.sync += [in_dot.eq(~beat.last), dot_w_bits.eq(beat.w_bits), dot_a_bits.eq(beat.a_bits),
                             dot_signed.eq(beat.a_signed), beats_taken.eq(Mux(in_dot, beats_taken + 1, 1))]

        # Sticky until the next dot product starts, unless that very beat is bad.
        starts = Signal()
        m.d.comb += starts.eq(checked & ~in_dot)
        error_next = Signal()
        m.d.comb += error_next.eq((self.error & ~starts) | (checked & (fault != MpMacError.NONE)))
        m.d.sync += [self.error.eq(error_next),
                     self.err_code.eq(Mux(checked & (fault != MpMacError.NONE), fault,
                                          Mux(error_next, self.err_code, MpMacError.NONE)))]
        dropped = self.err_count + (checked & (fault != MpMacError.NONE))
        m.d.sync += self.err_count.eq(Mux(dropped > 0xFFFF, 0xFFFF, dropped))

        # ---- engine ---------------------------------------------------------------------------
        if max_a > 1:
            with m.If(busy & ~beat_done):
                m.d.sync += [horner.eq(step), k.eq(k - 1)]
        with m.If(beat_done & ~stall & ~e_last):
            m.d.sync += acc.eq(dot_value)
        with m.If(beat_done & ~stall):
            m.d.sync += busy.eq(0)
        with m.If(load):
            w_top = Signal(PRECISION_FIELD_BITS)
            m.d.comb += w_top.eq(w_bits - 1)
            for lane in range(lanes):
                raw = beat.w[lane]
                sign_bit = raw.bit_select(w_top, 1) if cfg.runtime_precision else raw[max_w - 1]
                # Sign-extend from bit w_bits-1: the bits above the precision are zero (checked).
                extended = Cat(*[raw[j] | (sign_bit & (w_bits <= j)) for j in range(max_w)]) \
                    if cfg.runtime_precision else raw
                m.d.sync += [w_reg[lane].eq(extended), a_reg[lane].eq(beat.a[lane])]
            m.d.sync += [busy.eq(1), e_signed.eq(beat.a_signed), e_first.eq(~in_dot), e_last.eq(beat.last)]
            if max_a > 1:
                m.d.sync += [k.eq(a_bits - 1), top.eq(a_bits - 1)]
        return m
