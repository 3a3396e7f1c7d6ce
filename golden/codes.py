"""Codes shared by the hardware and the golden model, defined once.

Each is a standard :class:`enum.IntEnum`, so golden/ stays free of Amaranth and hdl/ uses the
same classes directly as layout fields (``data.StructLayout({"mode": Mode})``: Amaranth casts
an all-integer enum to an unsigned shape just wide enough for its largest member). A code
added here reaches the hardware's field widths, its decoders and the golden checks at once.

The error convention of every block (``docs/conventions.md``): ``error`` is a sticky flag and
``err_code`` one of the block's error enums below, ``NONE`` (0) when nothing is wrong; both
hold from the cycle a fault is found until the next unit of work (command, stream, tile)
starts.
"""

from __future__ import annotations

import enum

__all__ = ["Mode", "LoadSel", "PEArrayError", "TransposerError", "EmdDecoderError", "MpMacError"]


class Mode(enum.IntEnum):
    """PE array command modes (``docs/pe_array.md``)."""

    DENSE = 0   # A, B in full
    SPARSE = 1  # A group-sparse: only kept k x k blocks stored, the bitmap drives the k loop
    WGRAD = 2   # dense operands, output tiles of pruned blocks skipped (group-sparse dW)
    CIRC = 3    # A block-circulant, one v word per block, expanded by a rotating ring
    DV = 4      # circulant weight gradient, dv accumulated directly

    @classmethod
    def parse(cls, name: str | int | "Mode") -> "Mode":
        """``Mode.parse("circ") is Mode.CIRC``; ints and members pass through."""
        if isinstance(name, str):
            return cls[name.upper()]
        return cls(name)


class LoadSel(enum.IntEnum):
    """What a PE array load beat writes."""

    A = 0
    B = 1
    BITMAP = 2


class PEArrayError(enum.IntEnum):
    """Why the PE array rejected a command (``err_code``)."""

    NONE = 0
    MODE = 1    # a mode this configuration was not built with, or an unknown code
    SHAPE = 2   # M, N or K zero, or not a whole number of blocks where the mode needs it
    BUFFER = 3  # the operands do not fit the A or B buffer
    BITMAP = 4  # a bitmap bit set outside the command's block grid
    BLOCKS = 5  # the kept blocks of a sparse A do not fit the A buffer


class TransposerError(enum.IntEnum):
    """Why the sparse transposer flagged a tile (``err_code``)."""

    NONE = 0
    MALFORMED = 1  # header/value beats out of order, a count that disagrees with the bitmap, bad padding


class EmdDecoderError(enum.IntEnum):
    """Why the EMD decoder flagged a stream (``err_code``; ``golden.emd.EmdFormatError.code``).

    The first fault in stream order decides, in the hardware and in ``golden.emd.decode`` alike.
    """

    NONE = 0
    TRUNCATED = 1      # the stream ends before its terminator (or inside a field)
    BAD_CODE = 2       # a relative exponent code decodes outside 1..255
    BAD_HEADER = 3     # reserved zero mode 3, a terminator with mode 1, or mu = 0 where a group belongs
    RAGGED = 4         # the final partial group is not a whole number of beats of ``lanes`` values
    TRAILING_DATA = 5  # a whole word after the terminator
    PADDING = 6        # non-zero padding after the terminator
    CRC = 7            # the stream's CRC field (``EmdFormat.crc_bits`` > 0) differs from the decoded values' CRC


class MpMacError(enum.IntEnum):
    """Why the mixed-precision MAC dropped a dot product (``err_code``; ``golden.mpmac.stream_model``).

    Checked on every beat that is not being discarded, in this order; the first that applies
    decides, and the dot product is dropped up to its ``last`` beat.
    """

    NONE = 0
    BITS = 1     # w_bits or a_bits outside 1..max (or, without runtime precision, not the instance's pair)
    MIXED = 2    # a beat's w_bits, a_bits or a_signed differ from those of its dot product's first beat
    OPERAND = 3  # a weight or activation field has bits set above its precision
    LENGTH = 4   # more beats than ``max_beats``, the longest dot product the accumulator holds
