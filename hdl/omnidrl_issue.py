"""Command decoder and in-order issue of the OmniDRL top, with the dependency scoreboard.

One command at a time sits at the head of the command queue. The decoder checks it exactly as
``golden.isa.check`` does (opcode, unused fields zero, per-op field ranges) and a flagged
command is skipped at once. A good command waits at the head while one of the five rules of
``docs/top.md`` holds, then goes to its unit:

1. GEMM on bank b: the load unit holds a LOAD/TRANSPOSE into bank b (it takes one at a time).
2. LOAD/TRANSPOSE into bank b after a GEMM on bank b: a GEMM issues only when the array takes
   it, so every earlier GEMM has been accepted by the time a later command reaches the head.
3. LOAD/TRANSPOSE whose source range overlaps a store still pending (the store table).
4. GEMM whose destination range overlaps the source of the load in flight, until the load has
   read its last word.
5. FENCE / COUNTERS: every unit idle and every store written.

A GEMM is handed to the PE array, which then either rejects it (its CHECK state, or PRE for a
sparse GEMM's block count) or starts its tiles (``events.running``): a rejection is flagged
``TopError.ARRAY`` with the array's code as ``detail``; an accepted GEMM
enters the store table and the store unit's job queue. The issue also keeps the error record
that the status beat reports (``docs/top.md``, "Ports").
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.codes import EmdDecoderError, LoadSel, Mode, PEArrayError
from golden.isa import USED_FIELDS, Fmt, IsaShape, Op, TopError, command_fields

from .pe_array_sequencer import cmd_layout as array_cmd_layout

__all__ = ["command_layout", "status_layout", "flag_layout", "load_job_layout", "store_job_layout",
           "FIELD_SHAPES", "INDEX_BITS", "DETAIL_BITS", "Issue", "overlaps", "field_error"]

#: Fields of the command whose shape is a code enum (the others are plain unsigned widths).
FIELD_SHAPES = {"op": Op, "sel": LoadSel, "fmt": Fmt, "mode": Mode}
#: Width of the status beat's ``index`` and ``errors`` fields (saturating).
INDEX_BITS = 16
#: Width of the status beat's ``detail`` (the sub-codes: PEArrayError, EmdDecoderError).
DETAIL_BITS = max(max(PEArrayError).bit_length(), max(EmdDecoderError).bit_length())


def command_layout(shape: IsaShape) -> data.StructLayout:
    """The ``cmd`` payload: :func:`golden.isa.command_fields`, LSB first, the codes as enums."""
    fields = {}
    for name, width in command_fields(shape):
        enum_shape = FIELD_SHAPES.get(name)
        if enum_shape is not None:
            assert max(enum_shape).bit_length() <= width, f"{name}: {enum_shape.__name__} is wider than {width} bits"
            if max(enum_shape).bit_length() == width:
                fields[name] = enum_shape
                continue
        fields[name] = width
    layout = data.StructLayout(fields)
    assert layout.size == sum(w for _, w in command_fields(shape))
    return layout


def status_layout() -> data.StructLayout:
    """One status beat per FENCE: commands flagged since the previous beat, the first one's code,
    sub-code and index (commands since that beat)."""
    return data.StructLayout({"errors": INDEX_BITS, "err_code": TopError, "detail": DETAIL_BITS,
                              "index": INDEX_BITS})


def flag_layout(detail: bool = True) -> data.StructLayout:
    """A unit reporting a flagged command: its code, sub-code (if the unit has one) and index."""
    fields = {"valid": 1, "code": TopError, "detail": DETAIL_BITS, "index": INDEX_BITS}
    if not detail:
        del fields["detail"]
    return data.StructLayout(fields)


def load_job_layout(shape: IsaShape) -> data.StructLayout:
    """What the load unit needs of a LOAD or TRANSPOSE."""
    a = shape.mem_addr_bits
    return data.StructLayout({"transpose": 1, "bank": 1, "sel": LoadSel, "fmt": Fmt, "buf": shape.buf_bits,
                              "count": shape.buf_bits + 1, "addr": a, "extent": a, "addr2": a,
                              "m": shape.dim_bits, "n": shape.dim_bits, "index": INDEX_BITS})


def store_job_layout(shape: IsaShape) -> data.StructLayout:
    """What the store unit needs of a GEMM."""
    a = shape.mem_addr_bits
    return data.StructLayout({"fmt": Fmt, "round": 1, "addr": a, "extent": a, "index": INDEX_BITS})


def overlaps(a, a_len, b, b_len):
    """``[a, a + a_len)`` and ``[b, b + b_len)`` share a word (the sums widen: no wrap-around)."""
    return (a_len != 0) & (b_len != 0) & (a < b + b_len) & (b < a + a_len)


def _ceil_shift(x, lk: int):
    return (x + (1 << lk) - 1) >> lk


def field_error(m: Module, cmd, shape: IsaShape):
    """``(bad_opcode, bad_field)`` of a command: ``golden.isa.check`` in logic."""
    k = shape.k
    lk = k.bit_length() - 1
    op = Value.cast(cmd.op)
    known = Cat(*[op == o for o in Op]).any()
    unused_nonzero = {}
    for o in Op:
        extra = [Value.cast(cmd[name]) != 0 for name, _ in command_fields(shape) if name not in USED_FIELDS[o]]
        unused_nonzero[o] = Cat(*extra).any() if extra else Const(0, 1)
    # LOAD
    sel = Value.cast(cmd.sel)
    depth = Mux(sel == LoadSel.A, shape.a_depth, Mux(sel == LoadSel.B, shape.b_depth, shape.max_blocks))
    load_bad = ((sel > max(LoadSel)) | (cmd.count == 0) | (cmd.buf + cmd.count > depth)
                | ((sel == LoadSel.BITMAP) & (cmd.fmt != Fmt.RAW))
                | (cmd.extent < Mux(cmd.fmt == Fmt.RAW, cmd.count, 2)))
    # TRANSPOSE
    tr_bad = ((cmd.m == 0) | (cmd.m > shape.max_blocks) | (cmd.n == 0) | (cmd.n > shape.max_blocks))
    # GEMM: output beats = ceil(m/k) * k * ceil(cols/k), cols = n (n/k in DV)
    cols = Mux(cmd.mode == Mode.DV, cmd.n >> lk, cmd.n)
    beats = Signal(2 * shape.dim_bits + 2, name="gemm_out_beats")
    m.d.comb += beats.eq((_ceil_shift(cmd.m, lk) * _ceil_shift(cols, lk)) << lk)
    words = Mux(cmd.round, beats, beats << 1)
    gemm_bad = (((cmd.fmt == Fmt.EMD) & ~cmd.round)
                | ((cmd.fmt == Fmt.RAW) & (cmd.extent < words))
                | ((cmd.fmt == Fmt.EMD) & (cmd.extent < 2)))
    per_op = {Op.LOAD: load_bad, Op.TRANSPOSE: tr_bad, Op.GEMM: gemm_bad}
    bad_field = Signal(name="bad_field")
    for o in Op:
        with m.If(op == o):
            m.d.comb += bad_field.eq(unused_nonzero[o] | per_op.get(o, Const(0, 1)))
    return ~known, bad_field


class _ErrorRecord:
    """Commands flagged since the last status beat, the first one (lowest index), and the last
    flagged code for ``err_code``. Several units may flag in one cycle."""

    def __init__(self, m: Module, flags, clear):
        self.errors = Signal(INDEX_BITS)
        self.first = Signal(flag_layout())  # valid = something flagged since the last beat
        self.last_code = Signal(TopError)
        self.total = Signal(INDEX_BITS + 32)  # every flag since reset (the ERRORS counter)
        best = self.first
        for f in flags:  # the lowest index wins: program order, whatever unit finishes first
            pick = f.valid & (~best.valid | (f.index < best.index))
            best = Mux(pick, f.as_value(), best.as_value())
            best = data.View(flag_layout(), best)
        n_new = sum(f.valid for f in flags)
        count = self.errors + n_new
        sat = (1 << INDEX_BITS) - 1
        m.d.sync += self.total.eq(self.total + n_new)
        with m.If(clear):
            m.d.sync += [self.errors.eq(0), self.first.eq(0), self.last_code.eq(TopError.NONE)]
        with m.Else():
            m.d.sync += [self.errors.eq(Mux(count > sat, sat, count)), self.first.eq(best)]
            for f in flags:
                with m.If(f.valid):
                    m.d.sync += self.last_code.eq(f.code)
        self.count_now = n_new


class Issue(wiring.Component):
    """Decoder, scoreboard and issue of the OmniDRL top.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig

    Members
    -------
    cmd : In(stream.Signature(command_layout(shape)))
        The head of the command queue.
    ld : Out(stream.Signature(load_job_layout(shape)))
        LOAD / TRANSPOSE jobs (the load unit takes one when idle).
    ld_done, ld_read_done : In(1)
        The load unit finished its job / has received the last memory word of it.
    ld_flag, st_flag : In(flag_layout())
        A unit flagged the command of that index (LENGTH, EMD) as it finished it.
    array : Out(stream.Signature(array_cmd_layout(pe_array)))
        GEMMs to the PE array.
    array_busy, array_running, array_error : In(1)
        The array's ``busy``, its ``events.running`` (past its checks) and its verdict.
    array_err_code : In(PEArrayError)
    st : Out(stream.Signature(store_job_layout(shape)))
        Accepted GEMMs' store jobs (the store unit queues them).
    st_done : In(1)
        The store unit wrote the last word of its oldest job.
    ex_done : Out(1)
        The array finished an accepted GEMM (all its beats left the array).
    counters_start : Out(1), counters_addr : Out(mem_addr_bits), counters_done : In(1)
        COUNTERS: write the counters at ``counters_addr``.
    status : Out(stream.Signature(status_layout()))
    error : Out(1), err_code : Out(TopError)
        The last flagged command's code, until the next status beat.
    retired, flagged : Out(2)
        Commands taken from the queue / flagged this cycle (for the counters).
    macs_dense : Out(48), macs_dense_valid : Out(1)
        Dense-equivalent MACs of the GEMM the array just accepted.
    idle : Out(1)
        Nothing in flight: no job in a unit, no store pending.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        shape = cfg.isa_shape
        a = shape.mem_addr_bits
        super().__init__({
            "cmd": In(stream.Signature(command_layout(shape))),
            "ld": Out(stream.Signature(load_job_layout(shape))),
            "ld_done": In(1), "ld_read_done": In(1),
            "ld_flag": In(flag_layout()), "st_flag": In(flag_layout()),
            "array": Out(stream.Signature(array_cmd_layout(cfg.pe_array))),
            "array_busy": In(1), "array_running": In(1), "array_error": In(1),
            "array_err_code": In(PEArrayError),
            "st": Out(stream.Signature(store_job_layout(shape))),
            "st_done": In(1),
            "ex_done": Out(1),
            "counters_start": Out(1), "counters_addr": Out(a), "counters_done": In(1),
            "status": Out(stream.Signature(status_layout())),
            "error": Out(1), "err_code": Out(TopError),
            "retired": Out(1), "flagged": Out(2),
            "macs_dense": Out(48), "macs_dense_valid": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        shape = cfg.isa_shape
        m = Module()
        cmd, c = self.cmd, self.cmd.payload
        bad_op, bad_field = field_error(m, c, shape)
        op = Value.cast(c.op)

        index = Signal(INDEX_BITS)  # commands taken since the last status beat
        take = Signal()             # the head command leaves the queue this cycle
        m.d.comb += cmd.ready.eq(take)
        with m.If(self.status.valid & self.status.ready):
            m.d.sync += index.eq(0)
        with m.Elif(take & (index != (1 << INDEX_BITS) - 1)):
            m.d.sync += index.eq(index + 1)
        m.d.comb += self.retired.eq(take)

        # --- load unit in flight: its bank and source ranges (rules 1 and 4)
        ld_busy = Signal()
        ld_reading = Signal()
        ld_job = Signal(load_job_layout(shape))
        with m.If(self.ld.valid & self.ld.ready):
            m.d.sync += [ld_busy.eq(1), ld_reading.eq(1), ld_job.eq(self.ld.payload)]
        with m.If(self.ld_read_done):
            m.d.sync += ld_reading.eq(0)
        with m.If(self.ld_done):
            m.d.sync += [ld_busy.eq(0), ld_reading.eq(0)]

        # --- store table: the destination ranges of GEMMs whose store is not written yet (rule 3)
        depth = cfg.store_jobs
        st_addr = [Signal(shape.mem_addr_bits, name=f"st_addr{i}") for i in range(depth)]
        st_ext = [Signal(shape.mem_addr_bits, name=f"st_extent{i}") for i in range(depth)]
        st_valid = [Signal(name=f"st_valid{i}") for i in range(depth)]
        st_head = Signal(range(max(2, depth)))
        st_tail = Signal(range(max(2, depth)))
        push = self.st.valid & self.st.ready

        def wrap_next(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1)

        for i in range(depth):
            with m.If(push & (st_tail == i)):
                m.d.sync += [st_addr[i].eq(self.st.payload.addr), st_ext[i].eq(self.st.payload.extent),
                             st_valid[i].eq(1)]
            with m.If(self.st_done & (st_head == i)):
                m.d.sync += st_valid[i].eq(0)
        with m.If(push):
            m.d.sync += st_tail.eq(wrap_next(st_tail))
        with m.If(self.st_done):
            m.d.sync += st_head.eq(wrap_next(st_head))
        table_full = Cat(*st_valid).all()
        table_empty = ~Cat(*st_valid).any()

        # --- array: a GEMM is judged until the array rejects it (error) or starts its tiles
        # (running; a sparse GEMM's BLOCKS check takes P cycles), then runs until busy falls.
        judging = Signal()
        ex_running = Signal()
        gemm = Signal(store_job_layout(shape))
        dims = [Signal(shape.dim_bits, name=f"gemm_{n}") for n in "mnk"]
        mn = Signal(2 * shape.dim_bits)
        m.d.sync += mn.eq(dims[0] * dims[1])  # ready one cycle after the GEMM is taken
        m.d.comb += self.ex_done.eq(ex_running & ~self.array_busy)
        with m.If(self.ex_done):
            m.d.sync += ex_running.eq(0)

        # Source ranges of the command at the head (LOAD: [addr, +extent); TRANSPOSE also
        # [addr2, +m)) against the pending stores (rule 3).
        raw_hazard = Cat(*[st_valid[i] & (overlaps(c.addr, c.extent, st_addr[i], st_ext[i])
                                          | ((op == Op.TRANSPOSE) & overlaps(c.addr2, c.m, st_addr[i], st_ext[i])))
                           for i in range(depth)]).any()
        # Destination of a GEMM against the load still reading (rule 4).
        war_hazard = ld_reading & (overlaps(c.addr, c.extent, ld_job.addr, ld_job.extent)
                                   | (ld_job.transpose & overlaps(c.addr, c.extent, ld_job.addr2, ld_job.m)))
        bank_hazard = ld_busy & (ld_job.bank == c.bank)  # rule 1
        all_done = ~ld_busy & table_empty & ~ex_running & ~judging & ~self.array_busy

        # --- flags raised here: decoder and array verdicts
        my_flag = Signal(flag_layout())
        clear = self.status.valid & self.status.ready
        rec = _ErrorRecord(m, [my_flag, self.ld_flag, self.st_flag], clear)
        m.d.comb += [self.flagged.eq(rec.count_now), self.error.eq(rec.last_code != TopError.NONE),
                     self.err_code.eq(rec.last_code),
                     self.status.payload.errors.eq(rec.errors),
                     self.status.payload.err_code.eq(Mux(rec.first.valid, rec.first.code, TopError.NONE)),
                     self.status.payload.detail.eq(Mux(rec.first.valid, rec.first.detail, 0)),
                     self.status.payload.index.eq(Mux(rec.first.valid, rec.first.index, 0))]

        # --- job payloads from the head command
        lp = self.ld.payload
        m.d.comb += [lp.transpose.eq(op == Op.TRANSPOSE), lp.bank.eq(c.bank), lp.sel.eq(c.sel), lp.fmt.eq(c.fmt),
                     lp.buf.eq(c.buf), lp.count.eq(c.count), lp.addr.eq(c.addr), lp.extent.eq(c.extent),
                     lp.addr2.eq(c.addr2), lp.m.eq(c.m), lp.n.eq(c.n), lp.index.eq(index)]
        ap = self.array.payload
        m.d.comb += [ap.mode.eq(c.mode), ap.transpose.eq(c.transpose), ap.round.eq(c.round),
                     ap.m.eq(c.m), ap.n.eq(c.n), ap.k.eq(c.k)]
        if cfg.pe_array.banks > 1:
            m.d.comb += ap.bank.eq(c.bank)
        m.d.comb += self.st.payload.eq(gemm)

        m.d.comb += self.counters_addr.eq(c.addr)

        fence_wait = Signal()
        counters_wait = Signal()
        with m.If(judging):
            with m.If(self.array_error):
                m.d.comb += [my_flag.valid.eq(1), my_flag.code.eq(TopError.ARRAY), my_flag.index.eq(gemm.index)]
                m.d.sync += judging.eq(0)
            with m.Elif(self.array_running):
                # the store queue has room: the issue waited for a free store table entry
                m.d.comb += [self.st.valid.eq(1), self.macs_dense.eq(mn * dims[2]), self.macs_dense_valid.eq(1)]
                m.d.sync += [judging.eq(0), ex_running.eq(1)]
        with m.Elif(counters_wait):
            with m.If(self.counters_done):
                m.d.comb += take.eq(1)
                m.d.sync += counters_wait.eq(0)
        with m.Elif(fence_wait):
            m.d.comb += self.status.valid.eq(1)
            with m.If(self.status.ready):
                m.d.comb += take.eq(1)
                m.d.sync += fence_wait.eq(0)
        with m.Elif(cmd.valid):
            with m.If(bad_op | bad_field):
                m.d.comb += [take.eq(1), my_flag.valid.eq(1), my_flag.index.eq(index),
                             my_flag.code.eq(Mux(bad_op, TopError.OPCODE, TopError.FIELD))]
            with m.Elif((op == Op.LOAD) | (op == Op.TRANSPOSE)):
                with m.If(~ld_busy & ~raw_hazard):
                    m.d.comb += [self.ld.valid.eq(1), take.eq(self.ld.ready)]
            with m.Elif(op == Op.GEMM):
                with m.If(~bank_hazard & ~war_hazard & ~table_full):
                    m.d.comb += self.array.valid.eq(1)
                    with m.If(self.array.ready):
                        m.d.comb += take.eq(1)
                        m.d.sync += [judging.eq(1), gemm.fmt.eq(c.fmt), gemm.round.eq(c.round),
                                     gemm.addr.eq(c.addr), gemm.extent.eq(c.extent), gemm.index.eq(index),
                                     dims[0].eq(c.m), dims[1].eq(c.n), dims[2].eq(c.k)]
            with m.Elif(op == Op.FENCE):
                with m.If(all_done):
                    m.d.sync += fence_wait.eq(1)
            with m.Elif(op == Op.COUNTERS):
                with m.If(all_done):
                    m.d.comb += self.counters_start.eq(1)
                    m.d.sync += counters_wait.eq(1)
            with m.Else():  # NOP
                m.d.comb += take.eq(1)
        m.d.comb += my_flag.detail.eq(Mux(my_flag.code == TopError.ARRAY, self.array_err_code, 0))
        m.d.comb += self.idle.eq(all_done & ~fence_wait & ~counters_wait)
        return m
