"""ECIM: an exponent computing-in-memory macro beside a mantissa processing engine (MFEC).

The block computes bf16 dot products ``sum_k W[r, k] * x[k]`` with the numerics of
``golden.mfec`` (bit for bit). Weights live in two memories: their 8-bit exponents in the
**ECIM macro** (:class:`EcimMacro`), which also computes product exponents, zero/Inf flags,
the running maximum and the alignment shifts beside the bit cells, and their sign+mantissa
bytes in a plain SRAM (:class:`hdl.lib.sram.Sram`). The **mantissa engine**
(:class:`MantissaEngine`) multiplies, aligns and accumulates in fixed point and normalizes
once per dot product; the normalization amount goes back to the exponent side, which forms
the output exponent.

Streams
-------
``w``  (in)  ``{row, data[n]}``: write one row of ``n`` bf16 weights (exponents to the macro,
             sign+mantissa to the mantissa memory). Accepted only while no group is in flight,
             so a compute never sees a half-written row; while a write waits, no new group
             starts, so writes take effect before every group offered after them.
``i``  (in)  ``{b[n], row, last}``: one group of a dot product: ``n`` bf16 inputs against
             weight row ``row``. ``last`` closes the dot product.
``o``  (out) ``{value, err}``: one result per ``last`` beat, bf16 or fp32 patterns. ``err``
             is in-band: it marks this result as itself invalid (a dot product longer than
             ``max_groups`` groups; ``value`` is then NaN). The unit has no out-of-band
             ``error``/``err_code`` pair: nothing else can go wrong, and the next dot
             product is computed normally.

Pipeline (why MFEC matters): the macro needs no mantissa bit, so while the engine works on
group g the macro already computes exponents, flags and shifts of group g+1. With
``overlap=False`` the macro waits for the engine instead, which gives the baseline cycle count.
Per group the macro takes :attr:`EcimConfig.exp_cycles` cycles (row read, in-memory exponent
add, a bit-serial max search over the 9 exponent bits, shift subtraction) and the engine
``n / lanes`` cycles.

Synthesis: :class:`EcimMacro` (Verilog module ``ecim.macro``) and the mantissa SRAM
(``ecim.mant_mem``) are the memory macros to black-box (both carry ``synth_blackbox``);
``docs/ecim.md`` gives their SRAM area model. With ``synth_periphery=True`` the macro is not
a black box, only its bit-cell array (``ecim.macro.array``, an :class:`~hdl.lib.sram.Sram`)
is, so Yosys counts the macro's compute periphery.
"""

import dataclasses

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.mfec import EXP_SUM_BITS, PRODUCT_FRAC_BITS, SHIFT_BITS, SHIFT_SAT, MfecParams

from .config import BlockConfig, param
from .lib.counter import wrap_increment
from .lib.fp import FP32_QNAN
from .lib.reduce import leading_zeros, popcount
from .lib.sram import Sram
from .lib.stream import StreamRegister

__all__ = ["EcimConfig", "Ecim", "EcimMacro", "MantissaEngine",
           "write_layout", "group_layout", "output_layout"]


@dataclasses.dataclass(frozen=True)
class EcimConfig(BlockConfig, MfecParams):
    """Parameters of :class:`Ecim`.

    The numerics fields ``n``, ``guard``, ``max_groups``, ``out_format`` and ``zero_skip`` (and
    their ranges) are those of :class:`golden.mfec.MfecParams`, inherited, so the hardware and
    the golden model cannot disagree on them; :attr:`mfec` is the golden view of this config.

    Parameters
    ----------
    n : int
        Group size: entries per macro row, products whose exponents are compared together.
    rows : int
        Rows of the exponent macro (and of the mantissa memory).
    lanes : int
        Multipliers in the mantissa engine; a group takes ``n / lanes`` cycles there.
    guard : int
        Guard bits below the largest product's LSB in the fixed-point accumulator.
    max_groups : int
        Longest dot product (in groups) the accumulator is sized for; longer ones give ``err``.
    out_format : str
        ``bf16`` or ``fp32``.
    overlap : bool
        Let the macro work on group g+1 while the engine works on group g (MFEC pipelining).
    zero_skip : bool
        Gate the multipliers of zero products (activity only; numerics are unchanged).
    synth_periphery : bool
        Synthesis only (the Verilog is the same, so it is left out of the config hash):
        black-box just the macro's bit-cell array instead of the whole macro, so the area
        report includes the exponent periphery.
    """

    PRESETS = {
        "tiny": {"n": 4, "rows": 8, "lanes": 2, "max_groups": 8},
        "default": {},
        "paper": {"n": 16, "rows": 512, "lanes": 2, "max_groups": 256},
    }

    rows: int = param(64, lo=2, hi=4096, pow2=True, doc="rows of the exponent macro and of the mantissa memory")
    lanes: int = param(2, lo=1, hi=64, pow2=True, doc="multipliers in the mantissa engine (at most n)")
    overlap: bool = param(True, doc="macro works on group g+1 while the engine works on group g")
    synth_periphery: bool = param(False, impl=True,
                                  doc="synthesis: black-box only the macro's bit cells, count its periphery")

    def validate(self) -> None:
        super().validate()
        self.check(self.lanes <= self.n, "lanes", f"a power of two from 1 to n={self.n}")


    @property
    def out_width(self) -> int:
        return 16 if self.out_format == "bf16" else 32

    @property
    def row_bits(self) -> int:
        return max(1, (self.rows - 1).bit_length())

    @property
    def exp_cycles(self) -> int:
        """Macro cycles per group: read, exponent add, EXP_SUM_BITS search steps, shifts."""
        return 1 + 1 + EXP_SUM_BITS + 1

    @property
    def mant_cycles(self) -> int:
        """Engine cycles per group."""
        return self.n // self.lanes

    @property
    def group_cycles(self) -> int:
        """Steady-state cycles per group with full input and output streams."""
        if self.overlap:
            return max(self.exp_cycles, self.mant_cycles)
        # the macro restarts one cycle after the engine's busy flag drops
        return self.exp_cycles + self.mant_cycles + 1


def write_layout(cfg: EcimConfig) -> data.StructLayout:
    return data.StructLayout({"row": cfg.row_bits, "data": data.ArrayLayout(16, cfg.n)})


def group_layout(cfg: EcimConfig) -> data.StructLayout:
    return data.StructLayout({"b": data.ArrayLayout(16, cfg.n), "row": cfg.row_bits, "last": 1})


def output_layout(cfg: EcimConfig) -> data.StructLayout:
    return data.StructLayout({"value": cfg.out_width, "err": 1})


class EcimMacro(wiring.Component):
    """Exponent memory (``rows`` x ``n`` x 8 bits) with an exponent compute port.

    A behavioural model of an exponent CIM macro: everything here works on exponent fields
    only. The compute sequence, started by ``start`` while ``ready``:

    1. read row ``row`` (one cycle, like an SRAM);
    2. add the broadcast input exponents column by column: ``s_i = ea_i + eb_i`` and flag
       zero (field 0) and Inf/NaN (field 255) operands;
    3. find the maximum of the valid ``s_i`` and of ``s_floor`` (when ``has_floor``) MSB first,
       one bit per cycle, the way a bit-line wired-OR search does in memory;
    4. subtract: ``shift_i = s_max - s_i`` and ``acc_shift = s_max - s_floor`` (saturated).

    Results (``done``) hold until ``take``; a new ``start`` may come in the same cycle.

    Parameters
    ----------
    n, rows : int
        Entries per row and rows.
    blackbox : bool
        Mark the macro a synthesis black box (``synth_blackbox``). Its bit-cell array, an
        :class:`~hdl.lib.sram.Sram`, is one either way.

    Members
    -------
    wr_en, wr_row, wr_exp : In
        Write port: 8-bit exponent fields of one row (entry i in bits 8i..8i+7).
    start, row, eb, s_floor, has_floor : In
        Compute port: the row, the broadcast input exponents and the running maximum.
    ready, done : Out(1)
        ``start`` is accepted when ``ready``; results are valid while ``done``.
    take : In(1)
        The consumer has taken the results.
    s : Out(9 * n)
        Per-entry product exponents ``ea + eb`` (excess-254).
    zero_a, zero_b, inf_a, inf_b : Out(n)
        Per-entry exponent flags (field 0 / field 255) of the weight and of the input.
    shift : Out(6 * n)
        Per-entry alignment shifts (0 for skipped entries).
    s_new, has_new, acc_shift : Out
        Running maximum after this group, whether it is valid, and the accumulator's shift.
    """

    def __init__(self, n: int, rows: int, *, blackbox: bool = True):
        self.n, self.rows = n, rows
        self.synth_blackbox = blackbox
        super().__init__({
            "wr_en": In(1), "wr_row": In(range(rows)), "wr_exp": In(8 * n),
            "start": In(1), "row": In(range(rows)), "eb": In(8 * n),
            "s_floor": In(EXP_SUM_BITS), "has_floor": In(1),
            "ready": Out(1), "done": Out(1), "take": In(1),
            "s": Out(EXP_SUM_BITS * n), "zero_a": Out(n), "zero_b": Out(n), "inf_a": Out(n), "inf_b": Out(n),
            "shift": Out(SHIFT_BITS * n), "s_new": Out(EXP_SUM_BITS), "has_new": Out(1), "acc_shift": Out(SHIFT_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n
        # The bit cells: a separate module so that synthesis can black-box the array alone
        # and still count the compute periphery below.
        m.submodules.array = cells = Sram(8 * n, self.rows)
        m.d.comb += [cells.w_en.eq(self.wr_en), cells.w_addr.eq(self.wr_row), cells.w_data.eq(self.wr_exp),
                     cells.r_addr.eq(self.row), cells.r_en.eq(self.start & self.ready)]

        eb = Signal(8 * n)
        floor, has_floor = Signal(EXP_SUM_BITS), Signal()
        s = [Signal(EXP_SUM_BITS, name=f"s{i}") for i in range(n)]
        valid = Signal(n)  # entries that take part in the max (finite, non-zero)
        cand = Signal(n)  # candidates still in the running for the maximum
        cand_floor = Signal()
        smax = Signal(EXP_SUM_BITS)
        bit = Signal(range(EXP_SUM_BITS))
        m.d.comb += self.s.eq(Cat(*s))

        go = self.start & self.ready
        # A one-hot state register written with If/Elif rather than m.FSM: the FSM's case
        # statement over a 3-bit state leaves codes 5..7 uncovered, which Verilator's lint flags.
        idle, add, search, shift, done = (Signal(name=f"st_{k}", init=(k == "idle"))
                                          for k in ("idle", "add", "search", "shift", "done"))

        def goto(state):
            for st in (idle, add, search, shift, done):
                m.d.sync += st.eq(st is state)

        with m.If(idle):
            with m.If(go):
                m.d.sync += [eb.eq(self.eb), floor.eq(self.s_floor), has_floor.eq(self.has_floor)]
                goto(add)
        with m.Elif(add):
            # The row is on the read port now: add exponents column by column.
            za, zb, xa, xb = [], [], [], []
            for i in range(n):
                ea, e_b = cells.r_data[8 * i:8 * i + 8], eb[8 * i:8 * i + 8]
                m.d.sync += s[i].eq(ea + e_b)
                za.append(ea == 0)
                zb.append(e_b == 0)
                xa.append(ea == 255)
                xb.append(e_b == 255)
            ok = Cat(*[~(za[i] | zb[i] | xa[i] | xb[i]) for i in range(n)])
            m.d.sync += [self.zero_a.eq(Cat(*za)), self.zero_b.eq(Cat(*zb)), self.inf_a.eq(Cat(*xa)),
                         self.inf_b.eq(Cat(*xb)), valid.eq(ok), cand.eq(ok), cand_floor.eq(has_floor),
                         bit.eq(EXP_SUM_BITS - 1)]
            goto(search)
        with m.Elif(search):
            # MSB first: if any candidate has a 1 here, the maximum has a 1 and every
            # candidate with a 0 drops out. One wired-OR per bit line, no comparators.
            ones = Cat(*[s[i].bit_select(bit, 1) for i in range(n)]) & cand
            floor_one = floor.bit_select(bit, 1) & cand_floor
            hit = ones.any() | floor_one
            with m.If(hit):
                m.d.sync += [cand.eq(ones), cand_floor.eq(floor_one)]
            # The maximum is found MSB first, so it shifts in from the right.
            m.d.sync += [smax.eq(Cat(hit, smax[:-1])), bit.eq(bit - 1)]
            with m.If(bit == 0):
                goto(shift)
        with m.Elif(shift):
            for i in range(n):
                d = Signal(EXP_SUM_BITS + 1, name=f"d{i}")
                m.d.comb += d.eq(smax - s[i])
                m.d.sync += self.shift[SHIFT_BITS * i:SHIFT_BITS * (i + 1)].eq(
                    Mux(valid[i], Mux(d >= SHIFT_SAT, SHIFT_SAT, d), 0))
            da = Signal(EXP_SUM_BITS + 1)
            m.d.comb += da.eq(smax - floor)
            m.d.sync += [self.s_new.eq(smax), self.has_new.eq(valid.any() | has_floor),
                         self.acc_shift.eq(Mux(has_floor, Mux(da >= SHIFT_SAT, SHIFT_SAT, da), 0))]
            goto(done)
        with m.Elif(done):
            with m.If(self.take):
                with m.If(go):
                    m.d.sync += [eb.eq(self.eb), floor.eq(self.s_floor), has_floor.eq(self.has_floor)]
                    goto(add)
                with m.Else():
                    goto(idle)
        # Plain continuous assignments: Icarus does not evaluate an always @* block at time 0
        # unless one of its inputs changes.
        m.d.comb += [self.done.eq(done), self.ready.eq(idle | (done & self.take))]
        return m


def job_layout(cfg: EcimConfig) -> data.StructLayout:
    """What the exponent side hands to the mantissa engine for one group."""
    n = cfg.n
    return data.StructLayout({
        "ma": 8 * n,  # weight sign+mantissa bytes from the mantissa memory
        "mb": 8 * n,  # input sign+mantissa bytes
        "zero_a": n, "zero_b": n, "inf_a": n, "inf_b": n,
        "shift": SHIFT_BITS * n, "acc_shift": SHIFT_BITS,
        "s_new": EXP_SUM_BITS, "has_new": 1, "first": 1, "last": 1, "err": 1,
    })


def result_layout(cfg: EcimConfig) -> data.StructLayout:
    """A finished dot product before normalization."""
    return data.StructLayout({"acc": cfg.acc_width, "s_run": EXP_SUM_BITS, "has": 1, "nan": 1, "pinf": 1,
                              "ninf": 1, "allneg": 1, "err": 1})


class MantissaEngine(wiring.Component):
    """Multipliers, aligners and the fixed-point accumulator of the MFEC unit.

    Takes one group (``job``) at a time and spends ``n / lanes`` cycles on it, ``lanes``
    products per cycle: ``T = +-(((1.ma)(1.mb) << guard) >> shift)``. On a new group the
    accumulator first shifts right by ``acc_shift`` (the running maximum moved up) or, for
    the first group of a dot product, starts from zero. After the ``last`` group the raw
    result goes to ``res`` (a stream) for normalization.

    Members
    -------
    job : In(stream.Signature(job_layout(cfg)))
    res : Out(stream.Signature(result_layout(cfg)))
    busy : Out(1)
        A group is being processed.
    """

    def __init__(self, cfg: EcimConfig):
        self.cfg = cfg
        super().__init__({"job": In(stream.Signature(job_layout(cfg))),
                          "res": Out(stream.Signature(result_layout(cfg))), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n, lanes, w = cfg.n, cfg.lanes, cfg.acc_width
        beats = n // lanes
        cur = Signal(job_layout(cfg))
        acc = Signal(signed(w))
        beat = Signal(range(beats))
        nan, pinf, ninf, allneg, err = Signal(), Signal(), Signal(), Signal(), Signal()
        busy = Signal()
        m.d.comb += self.busy.eq(busy)

        # Special values of the incoming group, all n entries at once (flags and mantissa
        # fractions only; the exponents themselves never reach the engine).
        j = self.job.p
        e_nan, e_pinf, e_ninf, e_neg = [], [], [], []
        for i in range(n):
            fa, fb = j.ma[8 * i:8 * i + 7], j.mb[8 * i:8 * i + 7]
            sg = j.ma[8 * i + 7] ^ j.mb[8 * i + 7]
            za, zb, xa, xb = j.zero_a[i], j.zero_b[i], j.inf_a[i], j.inf_b[i]
            nan_i = (xa & fa.any()) | (xb & fb.any()) | (xa & zb) | (xb & za)
            inf_i = (xa | xb) & ~nan_i
            e_nan.append(nan_i)
            e_pinf.append(inf_i & ~sg)
            e_ninf.append(inf_i & sg)
            e_neg.append(sg)
        g_nan, g_pinf, g_ninf = Cat(*e_nan).any(), Cat(*e_pinf).any(), Cat(*e_ninf).any()
        g_allneg = Cat(*e_neg).all()

        # One beat: lanes products of entries beat*lanes + l.
        terms = []
        for lane in range(lanes):
            idx = [b * lanes + lane for b in range(beats)]

            def sel(field, width, idx=idx):
                # This lane's entry of the current beat, from the group held in `cur`.
                return Array([cur[field][width * i:width * (i + 1)] for i in idx])[beat]

            ma, mb = sel("ma", 8), sel("mb", 8)
            sh = sel("shift", SHIFT_BITS)
            skip = Array([cur.zero_a[i] | cur.zero_b[i] | cur.inf_a[i] | cur.inf_b[i] for i in idx])[beat]
            sa_, sb_ = ma[7], mb[7]
            if cfg.zero_skip:
                # Gate the multiplier inputs of skipped entries: no toggling, same result.
                op_a = Mux(skip, 0, Cat(ma[:7], Const(1, 1)))
                op_b = Mux(skip, 0, Cat(mb[:7], Const(1, 1)))
                prod = Signal(16, name=f"prod{lane}")
                m.d.comb += prod.eq(op_a * op_b)
            else:
                # The multiplier toggles for every entry; a skipped entry's product is still
                # masked, because its shift is 0 and it must contribute nothing.
                prod = Signal(16, name=f"prod{lane}")
                m.d.comb += prod.eq(Mux(skip, 0, Cat(ma[:7], Const(1, 1)) * Cat(mb[:7], Const(1, 1))))
            mag = Signal(16 + cfg.guard, name=f"mag{lane}")
            m.d.comb += mag.eq((prod << cfg.guard) >> sh)
            term = Signal(signed(w), name=f"term{lane}")
            m.d.comb += term.eq(Mux(sa_ ^ sb_, -mag, mag))
            terms.append(term)
        beat_sum = Signal(signed(w))
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        m.d.comb += beat_sum.eq(total)

        last_beat = beat == beats - 1
        finishing = busy & last_beat & cur.last
        # The finished dot product waits in a one-entry output register.
        m.submodules.res_reg = res_reg = StreamRegister(result_layout(cfg))
        wiring.connect(m, res_reg.o, wiring.flipped(self.res))
        fire = busy & ~(finishing & ~res_reg.i.ready)  # a beat is processed this cycle
        acc_after = Signal(signed(w))
        m.d.comb += acc_after.eq(Mux(fire, acc + beat_sum, acc))
        m.d.comb += self.job.ready.eq(~busy | (fire & last_beat))
        done = res_reg.i.p
        m.d.comb += [res_reg.i.valid.eq(finishing),
                     done.acc.eq(acc_after), done.s_run.eq(cur.s_new), done.has.eq(cur.has_new),
                     done.nan.eq(nan), done.pinf.eq(pinf), done.ninf.eq(ninf), done.allneg.eq(allneg),
                     done.err.eq(err)]

        with m.If(fire):
            m.d.sync += [acc.eq(acc_after), beat.eq(wrap_increment(beat, beats))]
            with m.If(last_beat):
                m.d.sync += busy.eq(0)
        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [cur.eq(self.job.p), busy.eq(1), beat.eq(0)]
            with m.If(j.first):
                m.d.sync += [acc.eq(0), nan.eq(g_nan), pinf.eq(g_pinf), ninf.eq(g_ninf), allneg.eq(g_allneg),
                             err.eq(j.err)]
            with m.Else():
                m.d.sync += [acc.eq(acc_after >> j.acc_shift), nan.eq(nan | g_nan), pinf.eq(pinf | g_pinf),
                             ninf.eq(ninf | g_ninf), allneg.eq(allneg & g_allneg), err.eq(err | j.err)]
        return m


def normalize(m: Module, cfg: EcimConfig, r) -> tuple:
    """Mantissa-side normalizer: returns (sign, norm, significand, carry, zero) signals.

    ``norm`` is the normalization amount ``p - 14 - guard`` (``p`` the MSB position of
    ``|acc|``) that the exponent side adds to the running maximum; the significand is rounded
    to the output format (RNE) and ``carry`` says the rounding overflowed into the next binade.
    """
    w = cfg.acc_width
    f = 8 if cfg.out_format == "bf16" else 24
    mw = w - 1  # |acc| < 2^(w-1)
    sign = r.acc[w - 1]
    mag = Signal(mw)
    m.d.comb += mag.eq(Mux(sign, -r.acc, r.acc))
    lz = leading_zeros(m, mag, "norm_lzc")
    pad = max(0, f + 2 - mw)
    nm = Signal(mw + pad)
    m.d.comb += nm.eq(Cat(Const(0, pad), mag) << lz) if pad else nm.eq(mag << lz)
    top = mw + pad
    sig = nm[top - f:top]
    guard_bit = nm[top - f - 1]
    sticky = nm[:top - f - 1].any()
    up = guard_bit & (sticky | sig[0])
    rounded = Signal(f + 1)
    m.d.comb += rounded.eq(sig + up)
    norm = Signal(signed(8))
    m.d.comb += norm.eq((mw - 1) - lz - PRODUCT_FRAC_BITS - cfg.guard)
    return sign, norm, rounded[:f], rounded[f], mag == 0


class Ecim(wiring.Component):
    """ECIM macro + mantissa engine: MFEC bf16 dot products (see the module docstring).

    Parameters
    ----------
    cfg : EcimConfig

    Members
    -------
    w : In(stream.Signature(write_layout(cfg)))
    i : In(stream.Signature(group_layout(cfg)))
    o : Out(stream.Signature(output_layout(cfg)))
    groups, skipped : Out(32)
        Activity counters since reset: groups computed, and multiplies skipped for zero (or
        Inf/NaN) products (always 0 without ``zero_skip``).
    """

    def __init__(self, cfg: EcimConfig):
        self.cfg = cfg
        super().__init__({
            "w": In(stream.Signature(write_layout(cfg))),
            "i": In(stream.Signature(group_layout(cfg))),
            "o": Out(stream.Signature(output_layout(cfg))),
            "groups": Out(32), "skipped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.n
        m.submodules.macro = macro = EcimMacro(n, cfg.rows, blackbox=not cfg.synth_periphery)
        m.submodules.mant_mem = mmem = Sram(8 * n, cfg.rows)
        m.submodules.engine = eng = MantissaEngine(cfg)

        # -- writes: only while nothing is in flight ----------------------------------------
        pending = Signal()  # a group is in the macro (or its results wait for the engine)
        idle = ~pending & ~eng.busy
        m.d.comb += self.w.ready.eq(idle)
        wexp = Cat(*[self.w.p.data[i][7:15] for i in range(n)])
        wman = Cat(*[Cat(self.w.p.data[i][0:7], self.w.p.data[i][15]) for i in range(n)])
        m.d.comb += [macro.wr_en.eq(self.w.valid & self.w.ready), macro.wr_row.eq(self.w.p.row),
                     macro.wr_exp.eq(wexp), mmem.w_en.eq(self.w.valid & self.w.ready),
                     mmem.w_addr.eq(self.w.p.row), mmem.w_data.eq(wman)]

        # -- exponent side: running maximum and group count per dot product ----------------
        run_s, run_has = Signal(EXP_SUM_BITS), Signal()
        count = Signal(range(cfg.max_groups + 1))  # groups seen in this dot product (saturates)
        g_last, g_err, g_first = Signal(), Signal(), Signal()
        g_mb = Signal(8 * n)

        take = macro.done & eng.job.ready
        m.d.comb += macro.take.eq(take)
        # A waiting write stops new groups, so the unit drains and the write cannot starve.
        can_start = macro.ready & ~self.w.valid
        if not cfg.overlap:
            # Baseline: the exponent work of the next group waits for the mantissa work.
            can_start = can_start & ~eng.busy & ~macro.done
        m.d.comb += self.i.ready.eq(can_start)
        go = self.i.valid & self.i.ready
        eb = Cat(*[self.i.p.b[i][7:15] for i in range(n)])
        mb = Cat(*[Cat(self.i.p.b[i][0:7], self.i.p.b[i][15]) for i in range(n)])

        # The floor for a new group is the running max, already including the group the
        # macro is handing over this very cycle (its s_new is final by then).
        floor_s = Mux(take, macro.s_new, run_s)
        floor_has = Mux(take, macro.has_new & ~g_last, run_has)
        m.d.comb += [macro.start.eq(self.i.valid & can_start), macro.row.eq(self.i.p.row), macro.eb.eq(eb),
                     macro.s_floor.eq(floor_s), macro.has_floor.eq(floor_has),
                     mmem.r_en.eq(go), mmem.r_addr.eq(self.i.p.row)]

        with m.If(take):
            m.d.sync += [run_s.eq(macro.s_new), run_has.eq(macro.has_new & ~g_last), pending.eq(0)]
            with m.If(g_last):
                m.d.sync += count.eq(0)
        cnt_now = Mux(take & g_last, 0, count)
        with m.If(go):
            over = cnt_now >= cfg.max_groups
            m.d.sync += [pending.eq(1), g_last.eq(self.i.p.last), g_mb.eq(mb), g_first.eq(cnt_now == 0),
                         g_err.eq(over), count.eq(Mux(over, cnt_now, cnt_now + 1))]

        job = eng.job.p
        m.d.comb += [eng.job.valid.eq(macro.done),
                     job.ma.eq(mmem.r_data), job.mb.eq(g_mb),
                     job.zero_a.eq(macro.zero_a), job.zero_b.eq(macro.zero_b),
                     job.inf_a.eq(macro.inf_a), job.inf_b.eq(macro.inf_b),
                     job.shift.eq(macro.shift), job.acc_shift.eq(macro.acc_shift),
                     job.s_new.eq(macro.s_new), job.has_new.eq(macro.has_new),
                     job.first.eq(g_first), job.last.eq(g_last), job.err.eq(g_err)]

        # -- activity counters ---------------------------------------------------------------
        with m.If(take):
            active = Cat(*[~(macro.zero_a[i] | macro.zero_b[i] | macro.inf_a[i] | macro.inf_b[i])
                           for i in range(n)])
            m.d.sync += self.groups.eq(self.groups + 1)
            if cfg.zero_skip:  # without zero skipping every product goes through a multiplier
                m.d.sync += self.skipped.eq(self.skipped + (n - popcount(active)))

        # -- normalization (mantissa side) and the output exponent (exponent side) ---------------
        # A one-entry register between the engine and the (combinational) normalizer.
        m.submodules.out_reg = out_reg = StreamRegister(result_layout(cfg))
        wiring.connect(m, eng.res, out_reg.i)
        m.d.comb += [self.o.valid.eq(out_reg.o.valid), out_reg.o.ready.eq(self.o.ready)]
        r = out_reg.o.p
        sign, norm, sig, carry, zero = normalize(m, cfg, r)
        frac_bits = 7 if cfg.out_format == "bf16" else 23
        top = cfg.out_width - 1
        e_out = Signal(signed(12))
        e_fin = Signal(signed(12))
        m.d.comb += [e_out.eq(r.s_run - 127 + norm), e_fin.eq(e_out + carry)]
        inf_pat = 0xFF << frac_bits
        qnan = FP32_QNAN >> 16 if cfg.out_format == "bf16" else FP32_QNAN
        value = Signal(cfg.out_width)
        with m.If(r.err | r.nan | (r.pinf & r.ninf)):
            m.d.comb += value.eq(qnan)
        with m.Elif(r.pinf):
            m.d.comb += value.eq(inf_pat)
        with m.Elif(r.ninf):
            m.d.comb += value.eq((1 << top) | inf_pat)
        with m.Elif(~r.has):
            m.d.comb += value.eq(Cat(Const(0, top), r.allneg))
        with m.Elif(zero):
            m.d.comb += value.eq(0)
        with m.Elif(e_out <= 0):
            m.d.comb += value.eq(Cat(Const(0, top), sign))
        with m.Elif(e_fin >= 255):
            m.d.comb += value.eq(Cat(Const(inf_pat, top), sign))
        with m.Else():
            m.d.comb += value.eq(Cat(sig[:frac_bits], e_fin[:8], sign))
        m.d.comb += [self.o.p.value.eq(value), self.o.p.err.eq(r.err)]
        return m
