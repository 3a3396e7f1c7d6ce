"""EMD (exponent-mean-delta) encoder and decoder for streams of bf16 lanes.

The bit stream is the one of ``golden.emd`` and ``docs/formats.md`` ("EMD bitstream"); the
hardware emits exactly the golden bits, packed LSB-first into ``word_bits``-wide words, the last
word zero-padded and flagged ``last``.

Encoder (:class:`EmdEncoder`)::

    i (L lanes, last) -> [ingest: exponent sum, count, zeros] -> beat queue (2 groups) -----+
                                 | group done: mu = divide, mode                          |
                                 +-> stats queue (2 groups) -> [emit: header + L records] -+-> [packer] -> o

The base ``mu`` of a group is only known after its last value, so a group is buffered once
(the beat queue holds two groups: one filling while the other is emitted). The emit stage turns
one beat into a chunk per cycle (the group header rides with the first beat) and the packer
appends it to a bit accumulator and sends ``word_bits`` at a time. A stream ends with the
``last`` input beat; the encoder then emits the terminator and flushes.

* Throughput: one input beat per cycle whenever the output is not back-pressured and the
  compressed data averages at most ``word_bits`` per beat (the accumulator absorbs bursts of
  up to ``2 * word_bits`` extra bits). Raw bf16 is ``16 * lanes`` bits per beat, so
  ``word_bits = 16 * lanes`` (the default) keeps up with anything that compresses at all.
* Latency: a group's header and first beat enter the packer the cycle after the group's last
  beat is accepted, and a word is valid one cycle after the packer holds ``word_bits`` bits: at
  the earliest 3 cycles after the group's last beat (measured with the defaults on trained
  weights: 4, as the first beat's 51 bits do not fill a 64-bit word).
* One extra cycle per stream for the terminator, and one for the CRC field when
  ``fmt.crc_bits`` asks for it (computed over the beats as they are emitted).

Decoder (:class:`EmdDecoder`): a bit buffer refilled one word per cycle; each cycle it parses
the group header (on a group's first beat) and ``lanes`` records in a chain, and writes one
output beat. On the last beat of a group it also peeks at the next header, so that the final
beat of the stream carries ``last``. Latency: one cycle from the word that completes a beat's
bits (plus the look-ahead of ``max_chunk`` bits) to the output beat.

Pipelining (``pipeline=1``, each block's own field; docs/emd.md, "Pipelining"): the decoder
finds a beat's record starts in one cycle (the chain of record lengths in one-hot form,
:func:`_record_positions`) and decodes and judges the records in the next (+1 cycle of
latency); the encoder registers a group's sums before its mean divider and each chunk before
the packer (+2 cycles). Streams, throughput and error causes are those of ``pipeline=0``.

Errors: a truncated stream (``last`` word absorbed before the terminator), a code that decodes
outside the exponent range, a reserved header, a partial group that is not a whole number of
beats, a CRC field (``fmt.crc_bits``) that differs from the decoded values' CRC, data after
the terminator (or the CRC) or non-zero padding raise ``error`` and put the cause on
``err_code`` (:class:`golden.codes.EmdDecoderError`: the first fault in stream order, the one
``golden.emd.decode`` reports); both stay until the next stream starts. The decoder then drops
input words up to ``last`` and returns to idle.
"""

from __future__ import annotations

import dataclasses
import operator
from functools import reduce

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import EmdDecoderError
from golden.emd import CRC_SPECS, CrcSpec, EmdFormat

from .config import BlockConfig, param
from .lib.reduce import first_set, or_tree
from .lib.stream import Queue, StreamRegister

__all__ = ["EmdEncoderConfig", "EmdDecoderConfig", "EmdEncoder", "EmdDecoder", "lanes_layout", "words_layout",
           "crc_network"]

@dataclasses.dataclass(frozen=True)
class EmdEncoderConfig(BlockConfig):
    """Parameters of the EMD encoder (and, through :class:`EmdDecoderConfig`, the decoder).

    The stream format is a nested :class:`golden.emd.EmdFormat` (its fields and ranges are
    declared there, once); this class adds only the hardware's own fields.

    Parameters
    ----------
    lanes : int
        bf16 values per uncompressed beat ``L`` (1, 2, 4, 8 or 16; at most ``fmt.group``).
    word_bits : int
        Width of the packed words (16 to 512, a multiple of 8).
    fmt : EmdFormat
        The stream format: ``group``, ``delta_bits``, ``hi``, ``escape_bits``, ``sparse``
        (``--set fmt.group=16``).
    """

    PRESETS = {
        "tiny": {"lanes": 2, "word_bits": 32, "fmt": {"group": 8, "delta_bits": 2, "hi": 1, "escape_bits": 2}},
        "default": {},
        "paper": {"lanes": 16, "word_bits": 256, "pipeline": 1},
        "simple": {"fmt": {"delta_bits": 3, "hi": 3, "escape_bits": 0, "sparse": False}},
    }

    lanes: int = param(4, choices=(1, 2, 4, 8, 16), doc="bf16 values per uncompressed beat L (at most fmt.group)")
    word_bits: int = param(64, lo=16, hi=512, doc="width W of the packed words (a multiple of 8)")
    fmt: EmdFormat = param(EmdFormat(), doc="the stream format (golden.emd.EmdFormat)")
    pipeline: int = param(0, lo=0, hi=1, omit_default=True,
                          doc="extra register stages: 1 registers a group's sums before the mean divider "
                              "and each chunk before the packer (two more cycles of latency)")

    def validate(self) -> None:
        self.check(self.word_bits % 8 == 0, "word_bits", "a multiple of 8 from 16 to 512")
        self.check(self.lanes <= self.fmt.group, "lanes", f"at most fmt.group={self.fmt.group}")

    @property
    def beats_per_group(self) -> int:
        return self.fmt.group // self.lanes

    @property
    def max_chunk(self) -> int:
        """Most bits one beat can produce or consume: header plus ``lanes`` longest records (or
        the CRC field, where that is longer)."""
        return max(11 + self.lanes * self.fmt.max_record_bits, self.fmt.crc_bits)


@dataclasses.dataclass(frozen=True)
class EmdDecoderConfig(EmdEncoderConfig):
    """Parameters of :class:`EmdDecoder`: the fields of :class:`EmdEncoderConfig`, with a
    ``pipeline`` of the decoder's own (the record positions of a beat found in one cycle, its
    values decoded and checked in the next)."""

    PRESETS = EmdEncoderConfig.PRESETS

    pipeline: int = param(0, lo=0, hi=1, omit_default=True,
                          doc="extra register stages: 1 finds a beat's record positions in one cycle "
                              "and decodes and checks its values in the next (one more cycle of latency)")


def lanes_layout(lanes: int) -> data.StructLayout:
    """Uncompressed beat: ``lanes`` bf16 patterns (lane 0 = first value) and ``last``."""
    return data.StructLayout({"data": data.ArrayLayout(16, lanes), "last": 1})


def words_layout(word_bits: int) -> data.StructLayout:
    """Compressed beat: one word (first stream bit in bit 0) and ``last``."""
    return data.StructLayout({"data": word_bits, "last": 1})


def _bits(v, width):
    """``v`` zero-extended or truncated to ``width`` bits."""
    return v.as_unsigned()[:width] if len(v) >= width else Cat(v, Const(0, width - len(v)))


def crc_network(spec: CrcSpec, data_bits: int) -> list[int]:
    """The CRC register after ``data_bits`` more message bits, as a linear map over GF(2).

    Entry ``j`` is a bit mask over ``Cat(state, data)`` (state bits first, then the data bits
    in message order): next-state bit ``j`` is the XOR of the bits it selects. Worked out by
    running :meth:`golden.emd.CrcSpec.step` on symbols, so it is the golden CRC by construction
    (and the tests compare the hardware with :func:`golden.emd.crc` anyway).
    """
    K = spec.width
    state = [1 << i for i in range(K)]
    for t in range(data_bits):
        out = state[0] ^ (1 << (K + t))
        state = state[1:] + [0]
        state = [bit ^ (out if (spec.poly >> i) & 1 else 0) for i, bit in enumerate(state)]
    return state


def _crc_update(m: Module, spec: CrcSpec, state, data, name: str):
    """``state`` after the message bits ``data`` (bit 0 first): one XOR tree per register bit."""
    inputs = Cat(state, data)
    nxt = Signal(spec.width, name=name)
    for j, mask in enumerate(crc_network(spec, len(data))):
        m.d.comb += nxt[j].eq(Cat(inputs[i] for i in range(len(inputs)) if (mask >> i) & 1).xor())
    return nxt


class _Packer(wiring.Component):
    """Appends variable-length chunks (LSB = first bit) and emits fixed-width words.

    A chunk is accepted when, after this cycle's word leaves, at most ``2 * word_bits`` bits
    are waiting; a chunk with ``last`` set makes the packer flush (pad the final word with
    zeros and flag it) before it takes the next chunk.
    """

    def __init__(self, word_bits: int, max_chunk: int):
        self.w, self.k = word_bits, max_chunk
        self.size = max_chunk + 2 * word_bits
        super().__init__({
            "chunk": In(max_chunk), "length": In(range(max_chunk + 1)), "chunk_last": In(1),
            "chunk_valid": In(1), "chunk_ready": Out(1),
            "o": Out(stream.Signature(words_layout(word_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.w
        acc = Signal(self.size)
        n = Signal(range(self.size + 1))
        flushing = Signal()

        # Output register: a word is offered whenever a whole one is waiting, or while flushing.
        m.submodules.out = out = StreamRegister(words_layout(w))
        wiring.connect(m, wiring.flipped(self.o), out.o)
        m.d.comb += [out.i.valid.eq((n >= w) | (flushing & (n != 0))),
                     out.i.p.data.eq(acc[:w]), out.i.p.last.eq(flushing & (n <= w))]
        take = out.i.valid & out.i.ready
        n1 = Signal.like(n)
        m.d.comb += n1.eq(Mux(take, Mux(n >= w, n - w, 0), n))
        acc1 = Mux(take, acc >> w, acc)
        m.d.comb += self.chunk_ready.eq(~flushing & (n1 <= 2 * w))
        accept = self.chunk_valid & self.chunk_ready

        with m.If(take & flushing & (n <= w)):
            m.d.sync += flushing.eq(0)
        with m.If(accept):
            m.d.sync += [acc.eq(acc1 | (self.chunk << n1)[:self.size]), n.eq(n1 + self.length)]
            with m.If(self.chunk_last):
                m.d.sync += flushing.eq(1)
        with m.Else():
            m.d.sync += [acc.eq(acc1), n.eq(n1)]
        return m


class _ChunkRegister(wiring.Component):
    """A pipeline register between the encoder's emit stage and the packer: the packer's chunk
    ports on the input side (``chunk``, ``length``, ``chunk_last``, ``chunk_valid``,
    ``chunk_ready``), a stream of them on ``o``."""

    def __init__(self, max_chunk: int):
        self.layout = data.StructLayout({"chunk": max_chunk, "length": range(max_chunk + 1), "last": 1})
        super().__init__({
            "chunk": In(max_chunk), "length": In(range(max_chunk + 1)), "chunk_last": In(1),
            "chunk_valid": In(1), "chunk_ready": Out(1),
            "o": Out(stream.Signature(self.layout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reg = reg = StreamRegister(self.layout)
        wiring.connect(m, wiring.flipped(self.o), reg.o)
        m.d.comb += [reg.i.p.chunk.eq(self.chunk), reg.i.p.length.eq(self.length), reg.i.p.last.eq(self.chunk_last),
                     reg.i.valid.eq(self.chunk_valid), self.chunk_ready.eq(reg.i.ready)]
        return m


def _encode_record(m: Module, cfg: EmdEncoderConfig, value, mu, sparse, zmode, name: str):
    """Record of one value (flag, code, escape, raw exponent, sign|mantissa) and its length."""
    f = cfg.fmt
    D, E = f.delta_bits, f.escape_bits
    e = value[7:15]
    sm = Cat(value[0:7], value[15])
    # Unsigned arithmetic with a bias (Icarus 11 mis-evaluates some of Amaranth's signed
    # compares against narrow constants): u = d - lo + 256 and v = x + 512 are never negative.
    u = Signal(11, name=f"{name}_u")
    v = Signal(11, name=f"{name}_v")
    m.d.comb += [u.eq(e + (256 - f.delta_lo) - mu), v.eq(mu + (512 + f.delta_lo - 1) - e)]
    in_win = (e != 0) & (u >= 256) & (u <= 256 + f.window - 1)
    short = (e != 0) & ~in_win & (v >= 512) & (v <= 512 + f.short_max) if E else Const(0, 1)
    code = u[:D]
    x = v[:E] if E else Cat()
    # Zeros the group's zero mode codes with a flag (0: +0, 1: -0, 2: both, with a sign bit).
    zero = sparse & Mux(zmode == 2, value[:15] == 0, value == Cat(Const(0, 15), zmode[0]))
    signed_zero = zmode == 2
    esc = Const(f.esc_code, D)
    ones_e = Const((1 << E) - 1, E) if E else Cat()
    # The body after the optional flag, for each of the three record shapes.
    width = D + E + 16
    body = Signal(width, name=f"{name}_body")
    blen = Signal(range(width + 1), name=f"{name}_blen")
    with m.If(in_win):
        m.d.comb += [body.eq(Cat(code, sm)), blen.eq(D + 8)]
    with m.Elif(short):
        m.d.comb += [body.eq(Cat(esc, x, sm)), blen.eq(D + E + 8)]
    with m.Else():
        m.d.comb += [body.eq(Cat(esc, ones_e, e, sm)), blen.eq(D + E + 16)]
    rec = Signal(f.max_record_bits, name=f"{name}_rec")
    length = Signal(range(f.max_record_bits + 1), name=f"{name}_len")
    if f.sparse:
        with m.If(zero):
            m.d.comb += [rec.eq(Cat(Const(0, 1), value[15] & signed_zero)), length.eq(1 + signed_zero)]
        with m.Elif(sparse):
            m.d.comb += [rec.eq(Cat(Const(1, 1), body)), length.eq(blen + 1)]
        with m.Else():
            m.d.comb += [rec.eq(body), length.eq(blen)]
    else:
        m.d.comb += [rec.eq(body), length.eq(blen)]
    return rec, length


class EmdEncoder(wiring.Component):
    """EMD encoder: ``lanes`` bf16 values per beat in, ``word_bits``-wide packed words out.

    Parameters
    ----------
    cfg : EmdEncoderConfig

    Members
    -------
    i : In(stream.Signature(lanes_layout(lanes)))
        Values; ``last`` on the final beat of a stream (a tensor).
    o : Out(stream.Signature(words_layout(word_bits)))
        The EMD bit stream of ``golden.emd.encode``; ``last`` on the stream's final word.
    """

    def __init__(self, cfg: EmdEncoderConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(lanes_layout(cfg.lanes))),
            "o": Out(stream.Signature(words_layout(cfg.word_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, f = self.cfg, self.cfg.fmt
        L, G, nb = cfg.lanes, f.group, cfg.beats_per_group

        # The beat queue holds two groups: one filling while the other is emitted (with the
        # pipeline, a group's statistics come a cycle later: one more beat for one-beat groups).
        m.submodules.beats = beats = Queue(lanes_layout(L), max(2 * nb, 3) if cfg.pipeline else 2 * nb)
        stat_layout = data.StructLayout({"mu": 8, "sparse": 1, "zmode": 2, "beats": range(nb + 1), "final": 1})
        m.submodules.stats = stats = Queue(stat_layout, 2)
        m.submodules.packer = packer = _Packer(cfg.word_bits, cfg.max_chunk)
        wiring.connect(m, wiring.flipped(self.o), packer.o)
        if cfg.pipeline:
            # Each chunk is registered on its way to the packer; the emit stage drives the register.
            m.submodules.chunk_reg = emit_to = _ChunkRegister(cfg.max_chunk)
            m.d.comb += [packer.chunk.eq(emit_to.o.p.chunk), packer.length.eq(emit_to.o.p.length),
                         packer.chunk_last.eq(emit_to.o.p.last), packer.chunk_valid.eq(emit_to.o.valid),
                         emit_to.o.ready.eq(packer.chunk_ready)]
        else:
            emit_to = packer

        # -- ingest: running sums over the group being collected ----------------------------------
        total = Signal(range(255 * G + 1))
        count = Signal(range(G + 1))
        zpos = Signal(range(G + 1))          # +0 values
        zneg = Signal(range(G + 1))          # -0 values
        k = Signal(range(nb))
        lanes = [self.i.p.data[j] for j in range(L)]
        exps = [v[7:15] for v in lanes]
        total_next = total + sum(Mux(e != 0, e, 0) for e in exps)
        count_next = count + sum((e != 0).as_unsigned() for e in exps)
        zpos_next = zpos + sum((v == 0x0000).as_unsigned() for v in lanes)
        zneg_next = zneg + sum((v == 0x8000).as_unsigned() for v in lanes)
        group_end = (k == nb - 1) | self.i.p.last
        take = self.i.valid & self.i.ready
        if cfg.pipeline:
            # A group's sums are registered; its mean, mode and zero mode are worked out the
            # next cycle, on their way into the stats queue.
            sums = data.StructLayout({"total": len(total), "count": len(count), "zpos": len(zpos),
                                      "zneg": len(zneg), "k": len(k), "last": 1})
            pend = Signal(sums)
            pend_valid = Signal()
            with m.If(take & group_end):
                m.d.sync += [pend.total.eq(total_next), pend.count.eq(count_next), pend.zpos.eq(zpos_next),
                             pend.zneg.eq(zneg_next), pend.k.eq(k), pend.last.eq(self.i.p.last), pend_valid.eq(1)]
            with m.Elif(stats.i.ready):
                m.d.sync += pend_valid.eq(0)
            g_total, g_count, g_zpos, g_zneg, g_k, g_last = pend.total, pend.count, pend.zpos, pend.zneg, pend.k, pend.last
        else:
            g_total, g_count, g_zpos, g_zneg, g_k, g_last = total_next, count_next, zpos_next, zneg_next, k, self.i.p.last
        # Saving of each zero mode (golden.emd.group_stats); ties go to the lower mode.
        zd = f.zero_dense_bits
        save_pos = Signal(range(G * zd + 1))
        save_neg = Signal(range(G * zd + 1))
        save_both = Signal(range(G * zd + 1))
        m.d.comb += [save_pos.eq(g_zpos * zd), save_neg.eq(g_zneg * zd),
                     save_both.eq((g_zpos + g_zneg) * (zd - 1))]
        zmode = Signal(2)
        best = Signal.like(save_pos)
        with m.If((save_pos >= save_neg) & (save_pos >= save_both)):
            m.d.comb += [zmode.eq(0), best.eq(save_pos)]
        with m.Elif(save_neg >= save_both):
            m.d.comb += [zmode.eq(1), best.eq(save_neg)]
        with m.Else():
            m.d.comb += [zmode.eq(2), best.eq(save_both)]

        # Round-half-up mean of the non-zero exponents; 1 for a group without any (0 marks the
        # terminator). count_next <= G, so the divider is small.
        mean = Signal(9)
        m.d.comb += mean.eq((g_total + (g_count >> 1)) // Mux(g_count == 0, 1, g_count))
        new_stat = Signal(stat_layout)
        n_vals = (g_k + 1) * L
        m.d.comb += [
            new_stat.mu.eq(Mux(g_count == 0, 1, mean)),
            new_stat.sparse.eq(Const(int(f.sparse), 1) & (n_vals + 2 < best)),
            new_stat.zmode.eq(zmode),
            new_stat.beats.eq(g_k + 1),
            new_stat.final.eq(g_last),
        ]
        stat_room, stat_valid = ((~pend_valid | stats.i.ready, pend_valid) if cfg.pipeline else
                                 (stats.i.ready, self.i.valid & self.i.ready & group_end))
        m.d.comb += [
            self.i.ready.eq(beats.i.ready & stat_room),
            beats.i.payload.eq(self.i.payload),
            beats.i.valid.eq(self.i.valid & self.i.ready),
            stats.i.payload.eq(new_stat),
            stats.i.valid.eq(stat_valid),
        ]
        with m.If(take):
            with m.If(group_end):
                m.d.sync += [total.eq(0), count.eq(0), zpos.eq(0), zneg.eq(0), k.eq(0)]
            with m.Else():
                m.d.sync += [total.eq(total_next), count.eq(count_next), zpos.eq(zpos_next), zneg.eq(zneg_next),
                             k.eq(k + 1)]

        # -- emit: one chunk per cycle ------------------------------------------------------------
        head = stats.o.payload
        j = Signal(range(nb))              # beat within the group being emitted
        term_sent = Signal()               # the terminator before a final partial group went out
        after_full = Signal()              # the final group was full: the terminator is still due
        partial = head.beats != nb
        term_len = 9 + f.count_bits
        values = [beats.o.p.data[t] for t in range(L)]

        header = Cat(head.sparse, head.mu, Mux(head.sparse, head.zmode, 0))   # zero mode only in sparse groups
        recs = [_encode_record(m, cfg, values[t], head.mu, head.sparse, head.zmode, f"lane{t}") for t in range(L)]
        chunk = Signal(cfg.max_chunk)
        length = Signal(range(cfg.max_chunk + 1))
        offset = Mux(j == 0, Mux(head.sparse, 11, 9), 0)
        parts = _bits(Mux(j == 0, header, 0), cfg.max_chunk)
        pos = offset
        for t, (rec, rlen) in enumerate(recs):
            parts = parts | (rec << pos)[:cfg.max_chunk]
            # A bounded signal per lane: the sum's width would otherwise grow by a bit per lane,
            # and a shift by it would be exponentially wide.
            nxt = Signal(range(cfg.max_chunk + 1), name=f"pos{t + 1}")
            m.d.comb += nxt.eq(pos + rlen)
            pos = nxt
        beat_chunk, beat_len = parts, pos
        # Terminator: mode 0, mu 0, then the size of a partial group (0 after a full one).
        count_field = Mux(after_full, 0, head.beats * L)
        term_chunk = _bits(Cat(Const(0, 9), count_field.as_unsigned()[:f.count_bits]) if f.count_bits else Const(0, 9),
                           cfg.max_chunk)

        send_term = after_full | (stats.o.valid & head.final & partial & ~term_sent)
        send_beat = ~after_full & stats.o.valid & beats.o.valid & ~send_term
        last_beat = j == head.beats - 1
        # The values end with the terminator after a full group, or with the partial group.
        values_end = Mux(send_term, after_full, last_beat & head.final & partial)
        if not f.crc_bits:
            m.d.comb += [
                chunk.eq(Mux(send_term, term_chunk, beat_chunk)),
                length.eq(Mux(send_term, term_len, beat_len)),
                emit_to.chunk.eq(chunk),
                emit_to.length.eq(length),
                emit_to.chunk_valid.eq(send_term | send_beat),
                emit_to.chunk_last.eq(values_end),
            ]
        else:
            # The CRC of the stream's values follows as a chunk of its own, which ends the stream;
            # it is computed as the beats leave (the ingest side may already hold the next stream).
            spec = CRC_SPECS[f.crc_bits]
            crc = Signal(spec.width, init=spec.init)
            crc_due = Signal()
            send_term = ~crc_due & send_term
            send_beat = ~crc_due & send_beat
            crc_chunk = _bits(crc ^ spec.xorout, cfg.max_chunk)
            m.d.comb += [
                chunk.eq(Mux(crc_due, crc_chunk, Mux(send_term, term_chunk, beat_chunk))),
                length.eq(Mux(crc_due, spec.width, Mux(send_term, term_len, beat_len))),
                emit_to.chunk.eq(chunk),
                emit_to.length.eq(length),
                emit_to.chunk_valid.eq(crc_due | send_term | send_beat),
                emit_to.chunk_last.eq(crc_due),
            ]
        done = emit_to.chunk_valid & emit_to.chunk_ready
        if f.crc_bits:
            beat_crc = _crc_update(m, spec, crc, beats.o.p.data.as_value(), "beat_crc")
            with m.If(done & send_beat):
                m.d.sync += crc.eq(beat_crc)
            with m.If(done & (send_term | send_beat) & values_end):
                m.d.sync += crc_due.eq(1)
            with m.If(done & crc_due):
                m.d.sync += [crc_due.eq(0), crc.eq(spec.init)]
        with m.If(done & send_term):
            with m.If(after_full):
                m.d.sync += after_full.eq(0)
            with m.Else():
                m.d.sync += term_sent.eq(1)
        with m.If(done & send_beat):
            m.d.comb += beats.o.ready.eq(1)
            with m.If(last_beat):
                m.d.comb += stats.o.ready.eq(1)
                m.d.sync += [j.eq(0), term_sent.eq(0)]
                with m.If(head.final & ~partial):
                    m.d.sync += after_full.eq(1)
            with m.Else():
                m.d.sync += j.eq(j + 1)
        return m


def _decode_record(m: Module, cfg: EmdEncoderConfig, rec, mu, sparse, zmode, name: str):
    """Parse one record at bit 0 of ``rec``.

    Returns (bf16 value, length, bad code, checked): ``checked`` is the length of the fields a
    range check reads (flag, code, short escape); a decoder that reads a record in stream order
    finds a bad code as soon as these are in, before the rest of the record.
    """
    f = cfg.fmt
    D, E = f.delta_bits, f.escape_bits
    flag = rec[0]
    body = Signal(D + E + 16, name=f"{name}_body")
    m.d.comb += body.eq(Mux(sparse, rec[1:], rec[:D + E + 16]) if f.sparse else rec[:D + E + 16])
    code = body[:D]
    x = body[D:D + E] if E else Const(0, 1)
    is_esc = code == f.esc_code
    is_short = is_esc & (x != (1 << E) - 1) if E else Const(0, 1)
    # Biased, unsigned: eb = e + 256 for relative codes (see _encode_record).
    eb = Signal(11, name=f"{name}_eb")
    sm = Signal(8, name=f"{name}_sm")
    blen = Signal(range(D + E + 17), name=f"{name}_blen")
    relative = Signal(name=f"{name}_rel")
    with m.If(~is_esc):
        m.d.comb += [eb.eq(mu + code + (256 + f.delta_lo)), sm.eq(body[D:D + 8]), blen.eq(D + 8), relative.eq(1)]
    with m.Elif(is_short):
        m.d.comb += [eb.eq(mu + (256 + f.delta_lo - 1) - x), sm.eq(body[D + E:D + E + 8]), blen.eq(D + E + 8),
                     relative.eq(1)]
    with m.Else():
        m.d.comb += [eb.eq(body[D + E:D + E + 8] + 256), sm.eq(body[D + E + 8:D + E + 16]), blen.eq(D + E + 16)]
    e = eb[:8]
    zero = sparse & ~flag if f.sparse else Const(0, 1)
    value = Signal(16, name=f"{name}_value")
    length = Signal(range(f.max_record_bits + 1), name=f"{name}_len")
    m.d.comb += [
        value.eq(Mux(zero, Cat(Const(0, 15), Mux(zmode == 2, rec[1], zmode[0])), Cat(sm[:7], e, sm[7]))),
        length.eq(Mux(zero, 1 + (zmode == 2), blen + (sparse if f.sparse else 0))),
    ]
    bad = ~zero & relative & ((eb < 257) | (eb > 511))
    flag_len = sparse if f.sparse else Const(0, 1)
    checked = Mux(~zero & relative, flag_len + D + Mux(is_short, E, 0), length)
    return value, length, bad, checked


def _record_lengths(f: EmdFormat, bit, sparse, zmode) -> dict:
    """``{length: condition}`` of a record whose ``i``-th bit is ``bit(i)`` (``i < 1 + D + E``).

    The same lengths as :func:`_decode_record` gives, from the fields that decide them only
    (flag, code, short escape), so a chain of records can be followed without decoding them.
    ``bit(i)`` may be one bit or a vector (bit ``q``: the record starting at position ``q``), so
    the conditions come out for one record or for every position at once.
    """
    D, E = f.delta_bits, f.escape_bits
    terms: dict = {}

    def add(length, cond):
        terms[length] = terms[length] | cond if length in terms else cond

    for s in ((0, 1) if f.sparse else (0,)):
        is_esc = reduce(operator.and_, (bit(s + i) if (f.esc_code >> i) & 1 else ~bit(s + i) for i in range(D)))
        is_short = is_esc & ~reduce(operator.and_, (bit(s + D + i) for i in range(E))) if E else None
        if s:   # a sparse group: flag 0 is a zero (1 bit, or 2 with the signed zero mode)
            nonzero = bit(0) & _spread(sparse, bit(0))
            add(1, ~bit(0) & _spread(sparse & (zmode != 2), bit(0)))
            add(2, ~bit(0) & _spread(sparse & (zmode == 2), bit(0)))
        else:
            nonzero = _spread(~sparse if f.sparse else Const(1, 1), bit(0))
        add(D + 8 + s, nonzero & ~is_esc)
        if E:
            add(D + E + 8 + s, nonzero & is_short)
        add(D + E + 16 + s, nonzero & is_esc & ~is_short if E else nonzero & is_esc)
    return terms


def _spread(cond, like):
    """A one-bit condition as wide as ``like`` (all ones or all zeros), to AND with a vector."""
    n = len(like)
    return cond if n == 1 else Mux(cond, Const((1 << n) - 1, n), Const(0, n))


def _record_positions(m: Module, cfg: EmdEncoderConfig, win, offsets: dict, sparse, zmode, term_len: int):
    """Where each of a beat's ``lanes`` records starts, following the chain in one-hot form.

    ``offsets`` is ``{position: condition}`` of the first record (after the header, if any).
    Bit ``q`` of record ``t + 1``'s one-hot vector is the OR over lengths ``l`` of (record ``t``
    at ``q - l``) AND (the record at ``q - l`` is ``l`` bits long). The lengths at every position
    come from the window's bits in parallel, as one vector per length, so a record costs a
    shift, an AND and an OR per length on the chain (not a shifter and an adder as in the
    single-cycle decoder), and the Verilog stays a few lines per record. Returns the starts
    (binary), the bits used by the beat and whether a terminator follows it (the look-ahead).
    """
    f = cfg.fmt
    # The last position a record may start at (every record at its longest): no wider needed.
    width = max(offsets) + cfg.lanes * f.max_record_bits + 1
    winx = Cat(win, Const(0, width + f.max_record_bits + term_len))
    # bit(i)[q] = the window's bit q + i: every position's i-th record bit at once
    lengths = _record_lengths(f, lambda i: winx[i:i + width], sparse, zmode)
    at = Signal(width, name="at0")
    m.d.comb += [at[q].eq(cond) for q, cond in offsets.items()]
    starts = []
    for t in range(cfg.lanes + 1):
        starts.append(_onehot_to_binary(m, at, len(win), f"start{t}"))
        if t == cfg.lanes:
            break
        nxt = Signal(width, name=f"at{t + 1}")
        m.d.comb += nxt.eq(or_tree(((at & cond) << length)[:width] for length, cond in sorted(lengths.items())))
        at = nxt
    no_term = winx[0:width]
    for i in range(1, term_len):
        no_term = no_term | winx[i:i + width]
    stop = (at & ~no_term).any()            # a terminator (term_len zero bits) where the beat ends
    return starts[:-1], starts[-1], stop


def _onehot_to_binary(m: Module, onehot, width: int, name: str):
    """The position set in the one-hot vector ``onehot`` (at most one bit high) in binary."""
    out = Signal(range(width + 1), name=name)
    n = len(onehot)
    m.d.comb += out.eq(Cat((onehot & Const(sum(1 << q for q in range(n) if (q >> b) & 1), n)).any()
                           for b in range(len(out))))
    return out


def _lane_cause(m: Module, records, n, short):
    """Cause of a beat's first faulty record (``records``: start, checked length, bad code and
    end of each), given the ``n`` bits buffered; else TRUNCATED when the look-ahead runs past
    them (``short``), else NONE.

    A record is faulty when it is cut before its checked fields, has a bad code, or is cut
    after them; the first faulty record decides whether it is the code (BAD_CODE) or the cut.
    """
    C = EmdDecoderError
    lane_fault = Cat((start + checked > n) | bad | (end > n) for start, checked, bad, end in records)
    lane_bad_code = Cat(~(start + checked > n) & bad for start, checked, bad, end in records)
    any_lane, first_lane = first_set(m, lane_fault, "lane_fault")
    return Mux(any_lane, Mux(lane_bad_code.bit_select(first_lane, 1), C.BAD_CODE, C.TRUNCATED),
               Mux(short, C.TRUNCATED, C.NONE))  # else the look-ahead at the next header


class EmdDecoder(wiring.Component):
    """EMD decoder: packed words in, ``lanes`` bf16 values per beat out.

    Parameters
    ----------
    cfg : EmdDecoderConfig

    Members
    -------
    i : In(stream.Signature(words_layout(word_bits)))
        An EMD bit stream, ``last`` on its final word.
    o : Out(stream.Signature(lanes_layout(lanes)))
        The decoded values; ``last`` on the stream's final beat.
    error : Out(1)
        Set by a truncated or corrupt stream (with ``fmt.crc_bits``, also by a CRC mismatch,
        judged after the values are out); cleared when the next stream's first word is taken.
    err_code : Out(EmdDecoderError)
        Why (the first fault in stream order, the cause ``golden.emd.decode`` reports); held
        with ``error``, ``NONE`` while ``error`` is low.
    """

    def __init__(self, cfg: EmdDecoderConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(words_layout(cfg.word_bits))),
            "o": Out(stream.Signature(lanes_layout(cfg.lanes))),
            "error": Out(1),
            "err_code": Out(EmdDecoderError),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, f = self.cfg, self.cfg.fmt
        W, L, nb = cfg.word_bits, cfg.lanes, cfg.beats_per_group
        term_len = 9 + f.count_bits
        need = cfg.max_chunk + term_len      # look-ahead: a beat with its header plus the next header
        size = need + 2 * W
        buf = Signal(size)
        n = Signal(range(size + 1))
        ended = Signal()                     # the stream's last word is in the buffer
        in_group = Signal()
        j = Signal(range(nb))
        mu = Signal(8)
        sparse = Signal()
        zmode = Signal(2)
        beats = Signal(range(nb + 1), init=nb)  # beats in the current group
        final = Signal()                     # the current group is the partial group at the end
        done = Signal()                      # terminator seen: check the tail, then go idle
        draining = Signal()                  # after an error: drop words up to last
        started = Signal()                   # a word of the current stream has been taken
        C = EmdDecoderError
        if f.crc_bits:
            spec = CRC_SPECS[f.crc_bits]
            crc = Signal(spec.width, init=spec.init)  # of the values decoded so far
            crc_wait = Signal()              # the values are out: the CRC field is next
            values_done = crc_wait
        else:
            values_done = done

        win = buf[:need]
        # Header (parsed at bit 0 when no group is open).
        h_sparse, h_mu, h_zmode = win[0], win[1:9], win[9:11]
        h_count = win[9:9 + f.count_bits] if f.count_bits else Const(0, 1)
        is_term = ~in_group & (h_mu == 0)
        g_sparse = Mux(in_group, sparse, h_sparse)
        g_mu = Mux(in_group, mu, h_mu)
        g_zmode = Mux(in_group, zmode, h_zmode)

        if not cfg.pipeline:
            # Chain of records.
            pos = Mux(in_group, 0, Mux(h_sparse, 11, 9))
            vals, records = [], []
            for t in range(L):
                rec = (win >> pos)[:f.max_record_bits]
                v, rlen, b, checked = _decode_record(m, cfg, rec, g_mu, g_sparse, g_zmode, f"lane{t}")
                vals.append(v)
                nxt = Signal(range(need + 1), name=f"pos{t + 1}")
                m.d.comb += nxt.eq(pos + rlen)
                records.append((pos, checked, b, nxt))
                pos = nxt
            beat_used = Signal(range(need + 1))
            m.d.comb += beat_used.eq(pos)
        group_ends = j == beats - 1          # j is 0 between groups; beats is nb except for the final partial group
        if not cfg.pipeline:
            # Look-ahead at the header after a group (only full groups; the partial group is final).
            nxt = (win >> beat_used)[:term_len]
            nxt_stop = (nxt[:9] == 0) & ((nxt[9:] == 0) if f.count_bits else Const(1, 1))
        else:
            # Stage 1 only follows the chain of record lengths; stage 2 (below) decodes the
            # records at the registered starts and judges them.
            offsets = {0: in_group, 9: ~in_group & ~h_sparse, 11: ~in_group & h_sparse}
            starts, beat_used, nxt_stop = _record_positions(m, cfg, win, offsets, g_sparse, g_zmode, term_len)
        peek = group_ends & ~final
        stream_ends = (final & group_ends) | (peek & nxt_stop)
        used = Signal(range(need + 1))
        m.d.comb += used.eq(Mux(is_term, term_len, beat_used + Mux(peek & nxt_stop, term_len, 0)))

        # Which action this cycle.
        busy = started & ~done & ~draining
        if f.crc_bits:
            busy = busy & ~crc_wait
        enough = ended | (n >= need)
        short = used > n                                     # only possible once ended
        count = h_count.as_unsigned()
        # A terminator must have mode 0, must not stand where the partial group's header belongs,
        # and (in hardware) must announce whole beats.
        ragged = ((count % L) != 0) if L > 1 else Const(0, 1)
        bad_hdr = ~in_group & h_sparse & (h_zmode == 3)    # reserved zero mode
        # The cause is the first fault in stream order, as golden.emd.decode finds it: bits
        # past n are zeros here, so every field is checked for being in before it is judged.
        cause = Signal(C)
        if not cfg.pipeline:
            beat_cause = _lane_cause(m, records, n, short)
        else:
            beat_cause = C.NONE                              # the records are judged in stage 2
        beat_cause = Mux(~in_group & (Mux(h_sparse, 11, 9) > n), C.TRUNCATED,
                         Mux(bad_hdr, C.BAD_HEADER, beat_cause))
        term_cause = Mux(n < 9, C.TRUNCATED, Mux(h_sparse | final, C.BAD_HEADER,
                         Mux(short, C.TRUNCATED, Mux(ragged, C.RAGGED, C.NONE))))
        m.d.comb += cause.eq(Mux(is_term, term_cause, beat_cause))
        fault = cause != C.NONE

        # Output register: a decoded beat is offered when its bits are in and sound.
        m.submodules.out = out = StreamRegister(lanes_layout(L))
        wiring.connect(m, wiring.flipped(self.o), out.o)
        if not cfg.pipeline:
            m.d.comb += [out.i.valid.eq(busy & enough & ~fault & ~is_term), out.i.p.last.eq(stream_ends)]
            m.d.comb += [out.i.p.data[t].eq(vals[t]) for t in range(L)]
            act = busy & enough & out.i.ready                # a header or beat is parsed this cycle
            error_now = act & fault
            consume = Mux(act & ~error_now, used, 0)
            commit = act & ~error_now
            s2_valid = Const(0, 1)
        else:
            # Stage 2: the beat's window, record starts and bit count, registered.
            s2_layout = data.StructLayout({"win": need, "starts": data.ArrayLayout(range(need + 1), L),
                                           "n": range(size + 1), "mu": 8, "sparse": 1, "zmode": 2,
                                           "last": 1, "short": 1})
            s2 = Signal(s2_layout)
            s2_valid = Signal()
            vals, records = [], []
            for t in range(L):
                reach = min(need, 11 + (t + 1) * f.max_record_bits)   # record t lies below this
                rec = (s2.win[:reach] >> s2.starts[t])[:f.max_record_bits]
                v, rlen, b, checked = _decode_record(m, cfg, rec, s2.mu, s2.sparse, s2.zmode, f"lane{t}")
                vals.append(v)
                end = Signal(range(need + 1), name=f"end{t}")
                m.d.comb += end.eq(s2.starts[t] + rlen)
                records.append((s2.starts[t], checked, b, end))
            s2_cause = Signal(C)
            m.d.comb += s2_cause.eq(_lane_cause(m, records, s2.n, s2.short))
            s2_fault = s2_valid & (s2_cause != C.NONE)
            m.d.comb += [out.i.valid.eq(s2_valid & ~s2_fault), out.i.p.last.eq(s2.last)]
            m.d.comb += [out.i.p.data[t].eq(vals[t]) for t in range(L)]
            # Stage 1 parses while stage 2 is empty or hands its beat on; a beat that runs past
            # the stream's end (only once it has ended) takes what is left and stage 2 flags it.
            act = busy & enough & (~s2_valid | out.i.ready)
            error_now = act & fault
            consume = Mux(act & ~error_now, Mux(short, n, used), 0)
            commit = act & ~error_now & ~s2_fault         # a fault in stage 2 is earlier in the stream
            with m.If(commit & ~is_term):
                m.d.sync += [s2.win.eq(win), s2.n.eq(n), s2.mu.eq(g_mu), s2.sparse.eq(g_sparse),
                             s2.zmode.eq(g_zmode), s2.last.eq(stream_ends), s2.short.eq(short), s2_valid.eq(1)]
                m.d.sync += [s2.starts[t].eq(starts[t]) for t in range(L)]
            with m.Elif(out.i.valid & out.i.ready):
                m.d.sync += s2_valid.eq(0)
        if f.crc_bits:
            # The CRC field: judged once it is in (or the stream has ended without it).
            crc_check = started & crc_wait & ~draining & ~s2_valid & (ended | (n >= spec.width))
            crc_cause = Mux(n < spec.width, C.TRUNCATED, Mux(buf[:spec.width] != (crc ^ spec.xorout), C.CRC, C.NONE))
            crc_fault = crc_check & (crc_cause != C.NONE)
            crc_pass = crc_check & (crc_cause == C.NONE)
            consume = Mux(crc_pass, spec.width, consume)
            beat_crc = _crc_update(m, spec, crc, Cat(vals), "beat_crc")
            with m.If(out.i.valid & out.i.ready):
                m.d.sync += crc.eq(beat_crc)

        # Input words: refill while there is room; after the terminator or an error, words up
        # to last are taken too (they are checked or dropped).
        room = n <= size - W
        m.d.comb += self.i.ready.eq(~ended & (room | draining))
        take_word = self.i.valid & self.i.ready
        n_left = Signal.like(n)
        m.d.comb += n_left.eq(n - consume)
        with m.If(draining):
            m.d.sync += [buf.eq(0), n.eq(0)]
        with m.Elif(take_word):
            m.d.sync += [buf.eq((buf >> consume) | (self.i.p.data << n_left)[:size]), n.eq(n_left + W)]
        with m.Else():
            m.d.sync += [buf.eq(buf >> consume), n.eq(n_left)]
        with m.If(take_word):
            m.d.sync += started.eq(1)
            with m.If(self.i.p.last):
                m.d.sync += ended.eq(1)
            with m.If(~started):
                m.d.sync += [self.error.eq(0), self.err_code.eq(EmdDecoderError.NONE)]

        # Group state.
        with m.If(commit):
            with m.If(is_term):
                with m.If(count == 0):
                    m.d.sync += values_done.eq(1)
                with m.Else():
                    m.d.sync += [beats.eq(count // L), final.eq(1)]
            with m.Else():
                with m.If(~in_group):
                    m.d.sync += [mu.eq(h_mu), sparse.eq(h_sparse), zmode.eq(h_zmode)]
                with m.If(group_ends):
                    m.d.sync += [in_group.eq(0), j.eq(0)]
                    with m.If(stream_ends):
                        m.d.sync += values_done.eq(1)
                with m.Else():
                    m.d.sync += [in_group.eq(1), j.eq(j + 1)]

        # End of stream: the terminator must sit in the last word and the padding must be zero.
        reset_state = [in_group.eq(0), j.eq(0), final.eq(0), done.eq(0), draining.eq(0), started.eq(0),
                       ended.eq(0), beats.eq(nb)]
        if f.crc_bits:
            reset_state += [crc_wait.eq(0), crc.eq(spec.init)]
        # The stream's last word arrives this cycle or already has: no draining needed then.
        ended_now = ended | (take_word & self.i.p.last)
        tail_cause = Mux(n >= W, C.TRAILING_DATA, C.PADDING)
        with m.If(done & ended):
            m.d.sync += reset_state + [buf.eq(0), n.eq(0)]
            with m.If((n >= W) | (buf != 0)):
                m.d.sync += [self.error.eq(1), self.err_code.eq(tail_cause)]
        with m.Elif(done & (n >= W)):
            # A whole word beyond the terminator: extra data.
            m.d.sync += [self.error.eq(1), self.err_code.eq(C.TRAILING_DATA)]
            with m.If(ended_now):
                m.d.sync += reset_state + [buf.eq(0), n.eq(0)]
            with m.Else():
                m.d.sync += [draining.eq(1), done.eq(0)]
        with m.If(error_now):
            m.d.sync += [self.error.eq(1), self.err_code.eq(cause)]
            with m.If(ended_now):
                m.d.sync += reset_state + [buf.eq(0), n.eq(0)]
            with m.Else():
                m.d.sync += [draining.eq(1)]
        if f.crc_bits:
            with m.If(crc_pass):
                m.d.sync += [crc_wait.eq(0), done.eq(1)]
            with m.If(crc_fault):
                m.d.sync += [self.error.eq(1), self.err_code.eq(crc_cause)]
                with m.If(ended_now):
                    m.d.sync += reset_state + [buf.eq(0), n.eq(0)]
                with m.Else():
                    m.d.sync += [draining.eq(1), crc_wait.eq(0)]
        with m.If(draining & take_word & self.i.p.last):
            m.d.sync += reset_state
        if cfg.pipeline:
            # Last, so that it wins: stage 2's beat comes before anything stage 1 saw this cycle.
            with m.If(s2_fault):
                m.d.sync += [self.error.eq(1), self.err_code.eq(s2_cause), s2_valid.eq(0)]
                with m.If(ended_now):
                    m.d.sync += reset_state + [buf.eq(0), n.eq(0)]
                with m.Else():
                    m.d.sync += draining.eq(1)
        return m
