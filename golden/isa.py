"""The OmniDRL top's command set and memory-side formats, defined once for golden/ and hdl/.

The top (``hdl/omnidrl.py``, block ``omnidrl``) takes one command per beat on its ``cmd`` stream.
Every command has the same flat layout (:func:`command_fields`): the fields an op does not use
must be zero, so a stray or shifted command is caught (``TopError.FIELD``) instead of being run.
``docs/formats.md`` ("Command stream") describes every field; ``docs/top.md`` the units and the
dependency rules. The codes are :class:`enum.IntEnum` so hdl/ uses them as layout fields, as with
:mod:`golden.codes`.

Memory is an array of ``mem_bits = 16 * k`` bit words (``k`` = the PE array's block size), word
addressed. One raw word is one operand-buffer word: ``k`` bf16 lanes, lane 0 in the low 16 bits.

Example
-------
>>> shape = IsaShape(k=4, buf_bits=15, dim_bits=16, mem_addr_bits=32)
>>> cmd = Command(op=Op.LOAD, sel=LoadSel.B, bank=1, buf=8, count=4, addr=0x100)
>>> word = encode(cmd, shape)
>>> decode(word, shape) == cmd
True
>>> check(Command(op=Op.LOAD, count=0, addr=1), shape)
(<TopError.FIELD: 2>, 'count=0: a LOAD writes 1 or more buffer words')
"""

from __future__ import annotations

import dataclasses
import enum

from .codes import LoadSel, Mode

__all__ = ["Op", "Fmt", "TopError", "Counter", "IsaShape", "Command", "command_fields",
           "command_width", "encode", "decode", "check", "USED_FIELDS", "out_beats",
           "emd_extent_bound", "COUNTER_BITS"]


class Op(enum.IntEnum):
    """Command opcodes."""

    NOP = 0        # nothing (retires at once; lets a host pad a command queue)
    LOAD = 1       # memory (raw or EMD) -> operand buffer A, B or bitmap rows of one bank
    TRANSPOSE = 2  # group-sparse W (kept blocks + bitmap, raw) -> W^T kept blocks + bitmap in bank A
    GEMM = 3       # one PE array command; its output goes to memory (raw fp32, raw bf16 or EMD)
    FENCE = 4      # waits until every earlier command is complete, then sends one status beat
    COUNTERS = 5   # waits like FENCE, then writes the performance counters to memory


class Fmt(enum.IntEnum):
    """Memory-side format of a LOAD source or a GEMM destination."""

    RAW = 0  # one memory word per buffer word (bf16), or two per output beat (fp32, round = 0)
    EMD = 1  # one length word L, then L words of one golden.emd stream (word_bits = mem_bits)


class TopError(enum.IntEnum):
    """Why the top flagged a command (``err_code`` and the status beat)."""

    NONE = 0
    OPCODE = 1  # unknown op
    FIELD = 2   # a field out of range for its op, or a field the op does not use not zero
    ARRAY = 3   # the PE array rejected the GEMM (``detail`` = golden.codes.PEArrayError)
    EMD = 4     # the EMD decoder flagged a LOAD's stream (``detail`` = golden.codes.EmdDecoderError)
    LENGTH = 5  # an EMD stream longer than its extent, decoding to another word count than asked,
                # or a store that would write past its extent


class Counter(enum.IntEnum):
    """Performance counters, in the order COUNTERS writes them (one per memory word, low bits)."""

    CYCLES = 0              # cycles since reset
    COMMANDS = 1            # commands retired (flagged ones included)
    ERRORS = 2              # commands flagged
    LD_BUSY = 3             # cycles the load unit holds a LOAD or TRANSPOSE
    LD_STALL = 4            # ... of which it could not move a word (memory, decoder or array not ready)
    EX_BUSY = 5             # cycles the PE array is busy
    EX_STEPS = 6            # cycles the PE array issues a computing step (R*C MACs each)
    ST_BUSY = 7             # cycles the store unit holds a GEMM's output
    ST_STALL = 8            # ... of which the memory write port held it
    MACS = 9                # MACs issued: EX_STEPS * R * C
    MACS_DENSE = 10         # MACs of the same GEMMs run dense (m * n * k per GEMM; DV: m*k*n*k')
    A_READS = 11            # A buffer word reads
    B_READS = 12            # B buffer word reads
    A_WRITES = 13           # A buffer word writes (LOAD and TRANSPOSE)
    B_WRITES = 14           # B buffer word writes
    BITMAP_WRITES = 15      # bitmap row writes
    MEM_READ_RAW = 16       # memory words read for RAW loads (and TRANSPOSE)
    MEM_READ_EMD = 17       # memory words read for EMD loads (length words included)
    MEM_WRITE_RAW = 18      # memory words written raw (counters excluded)
    MEM_WRITE_EMD = 19      # memory words written EMD (length words included)
    EMD_GROUPS_DECODED = 20
    EMD_GROUPS_ENCODED = 21
    TRANSPOSER_TILES = 22   # k x k blocks through the transposer


#: Width of every counter (they saturate).
COUNTER_BITS = 48


@dataclasses.dataclass(frozen=True)
class IsaShape:
    """The widths the command layout depends on (``hdl.omnidrl.OmniDRLConfig.isa_shape``)."""

    k: int              # PE block size = rows = cols = lanes per buffer word
    buf_bits: int       # operand buffer word address width (PEArrayConfig.addr_bits)
    dim_bits: int       # M, N, K width (PEArrayConfig.dim_bits)
    mem_addr_bits: int  # memory word address width
    max_blocks: int = 64
    a_depth: int = 1 << 14
    b_depth: int = 1 << 14

    @property
    def mem_bits(self) -> int:
        return 16 * self.k


def command_fields(shape: IsaShape) -> list[tuple[str, int]]:
    """``(name, width)`` of every command field, LSB first (the layout of ``cmd`` in hdl/)."""
    return [
        ("op", 3),
        ("bank", 1),
        ("sel", 2),          # LOAD: golden.codes.LoadSel
        ("fmt", 1),          # LOAD source / GEMM destination: Fmt
        ("mode", 3),         # GEMM: golden.codes.Mode
        ("transpose", 1),    # GEMM
        ("round", 1),        # GEMM: bf16 output (required for RAW bf16 and EMD destinations)
        ("buf", shape.buf_bits),         # LOAD / TRANSPOSE: first buffer word (bitmap row) written
        ("count", shape.buf_bits + 1),   # LOAD: buffer words (bitmap rows) written
        ("addr", shape.mem_addr_bits),   # LOAD source, TRANSPOSE kept blocks, GEMM/COUNTERS destination
        ("extent", shape.mem_addr_bits), # memory words the command may touch at addr (see docs)
        ("addr2", shape.mem_addr_bits),  # TRANSPOSE: bitmap rows of W (m words)
        ("m", shape.dim_bits),           # GEMM M; TRANSPOSE: block rows P of W
        ("n", shape.dim_bits),           # GEMM N; TRANSPOSE: block columns Q of W
        ("k", shape.dim_bits),           # GEMM K
    ]


#: Fields each op may set (all others must be zero).
USED_FIELDS = {
    Op.NOP: {"op"},
    Op.LOAD: {"op", "bank", "sel", "fmt", "buf", "count", "addr", "extent"},
    Op.TRANSPOSE: {"op", "bank", "buf", "addr", "extent", "addr2", "m", "n"},
    Op.GEMM: {"op", "bank", "fmt", "mode", "transpose", "round", "addr", "extent", "m", "n", "k"},
    Op.FENCE: {"op"},
    Op.COUNTERS: {"op", "addr"},
}


def command_width(shape: IsaShape) -> int:
    return sum(w for _, w in command_fields(shape))


@dataclasses.dataclass(frozen=True)
class Command:
    """One command; fields as in :func:`command_fields` (unused ones stay 0)."""

    op: int = Op.NOP
    bank: int = 0
    sel: int = 0
    fmt: int = Fmt.RAW
    mode: int = Mode.DENSE
    transpose: int = 0
    round: int = 0
    buf: int = 0
    count: int = 0
    addr: int = 0
    extent: int = 0
    addr2: int = 0
    m: int = 0
    n: int = 0
    k: int = 0

    def fields(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in dataclasses.fields(self)}


def encode(cmd: Command, shape: IsaShape) -> int:
    """Pack ``cmd`` into one integer, fields LSB first; a value too wide raises ValueError."""
    word, pos = 0, 0
    values = cmd.fields()
    for name, width in command_fields(shape):
        v = values[name]
        if not 0 <= v < (1 << width):
            raise ValueError(f"command field {name}={v} does not fit its {width} bits")
        word |= v << pos
        pos += width
    return word


def decode(word: int, shape: IsaShape) -> Command:
    """Unpack :func:`encode`'s integer (no validity check: see :func:`check`)."""
    values, pos = {}, 0
    for name, width in command_fields(shape):
        values[name] = (word >> pos) & ((1 << width) - 1)
        pos += width
    return Command(**values)


def out_beats(cmd: Command, k: int) -> int:
    """Output beats of a GEMM on a k x k array (wgrad: the most, every tile kept)."""
    tiles_m = -(-cmd.m // k)
    cols = cmd.n // k if cmd.mode == Mode.DV else cmd.n
    return tiles_m * k * -(-cols // k)


def emd_extent_bound(n_values: int, fmt, mem_bits: int) -> int:
    """Memory words an EMD block of ``n_values`` bf16 values can take at most (length word included).

    Every record costs at most ``fmt.max_record_bits`` bits, every group an 11-bit header, the
    terminator at most 11 + clog2(G) bits, and the optional CRC field ``fmt.crc_bits``.
    """
    groups = -(-n_values // fmt.group)
    bits = n_values * fmt.max_record_bits + 11 * groups + 11 + fmt.count_bits + fmt.crc_bits
    return 1 + -(-bits // mem_bits)


def _field_limits(cmd: Command, shape: IsaShape) -> str | None:
    """The first field of a well-formed-opcode command that is out of range, as a message."""
    f = cmd.fields()
    for name, v in f.items():
        if name not in USED_FIELDS[Op(cmd.op)] and v != 0:
            return f"{name}={v}: {Op(cmd.op).name} does not use {name} (must be 0)"
    if cmd.op == Op.LOAD:
        if cmd.sel not in tuple(LoadSel):
            return f"sel={cmd.sel}: one of {', '.join(f'{s.value} ({s.name})' for s in LoadSel)}"
        if cmd.count == 0:
            return "count=0: a LOAD writes 1 or more buffer words"
        depth = {LoadSel.A: shape.a_depth, LoadSel.B: shape.b_depth, LoadSel.BITMAP: shape.max_blocks}[LoadSel(cmd.sel)]
        if cmd.buf + cmd.count > depth:
            return f"buf+count={cmd.buf + cmd.count}: at most {depth} ({LoadSel(cmd.sel).name} words)"
        if cmd.sel == LoadSel.BITMAP and cmd.fmt != Fmt.RAW:
            return f"fmt={cmd.fmt}: bitmap rows load raw (0)"
        need = cmd.count if cmd.fmt == Fmt.RAW else 2
        if cmd.extent < need:
            return f"extent={cmd.extent}: at least {need} words for this LOAD"
    elif cmd.op == Op.TRANSPOSE:
        for name in ("m", "n"):
            v = getattr(cmd, name)
            if not 1 <= v <= shape.max_blocks:
                return f"{name}={v}: block rows/columns from 1 to max_blocks={shape.max_blocks}"
    elif cmd.op == Op.GEMM:
        if cmd.fmt == Fmt.EMD and not cmd.round:
            return "fmt=1 (EMD) with round=0: EMD stores bf16 results (set round=1)"
        per_beat = 1 if cmd.round else 2
        if cmd.fmt == Fmt.RAW and cmd.extent < per_beat * out_beats(cmd, shape.k):
            return (f"extent={cmd.extent}: at least {per_beat * out_beats(cmd, shape.k)} words for "
                    f"{out_beats(cmd, shape.k)} output beats")
        if cmd.fmt == Fmt.EMD and cmd.extent < 2:
            return f"extent={cmd.extent}: at least 2 words for an EMD store"
    return None


def check(cmd: Command, shape: IsaShape) -> tuple[TopError, str]:
    """What the top's decoder says of ``cmd``: ``(TopError.NONE, "")`` or the code and why.

    This is the decoder's own check (opcode and fields). The PE array's shape checks
    (``TopError.ARRAY``) and stream errors (``EMD``, ``LENGTH``) come later, from the units.
    """
    if cmd.op not in tuple(Op):
        return TopError.OPCODE, f"op={cmd.op}: one of {', '.join(f'{o.value} ({o.name})' for o in Op)}"
    why = _field_limits(cmd, shape)
    if why is not None:
        return TopError.FIELD, why
    return TopError.NONE, ""

