"""Exponent-mean-delta (EMD) compression of bf16 streams: the bit-exact golden codec.

The format is ours (the papers name the idea only); ``docs/formats.md`` ("EMD bitstream") is the
normative description and this module implements it field for field. In short:

* Values are cut into groups of ``G``. A group header holds a mode bit and the base exponent
  ``mu``, the rounded mean of the group's non-zero exponents.
* Each value keeps its sign and mantissa (8 bits, unchanged) and codes its exponent as a
  ``D``-bit delta from ``mu`` inside a window ``[lo, hi]``; the all-ones code is an escape.
* An escape is followed by an ``E``-bit "short escape" that reaches ``2**E - 1`` exponents just
  below the window (the long tail of small weights), or by a raw 8-bit exponent.
* A group with enough zeros (ReLU outputs, pruned weights, masked gradients) switches to sparse
  mode: every value starts with a one-bit flag, and the header's zero mode says which zeros the
  flag codes: ``+0`` only, ``-0`` only (the flag alone), or both (the flag and a sign bit).
* The stream ends with a terminator (a header with mode 0 and ``mu`` 0, which no group uses)
  followed by the size of a final partial group, so any number of values can be coded.
* Optionally (``crc_bits`` 16 or 32; off by default) a CRC of the decoded values closes the
  stream, so that damage which still decodes to valid values is caught.

Also here: the top-3 exponent code of the 2019 KAIST DRL accelerator (the baseline) and the
Shannon entropy of an exponent stream. NumPy only; no Amaranth or cocotb imports.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from .codes import EmdDecoderError
from .config import Config, param

__all__ = [
    "EmdFormat", "EmdFormatError", "SIMPLE", "DEFAULT",
    "exponents", "group_stats", "encode_fields", "encode_bits", "encode", "decode_bits", "decode",
    "bits_to_words", "words_to_bits", "encoded_bits", "cost", "top3_bits", "entropy_bits",
    "CRC_SPECS", "CrcSpec", "crc",
]


class EmdFormatError(ValueError):
    """The bit stream is truncated or corrupt. The message says where and why.

    ``code`` (:class:`golden.codes.EmdDecoderError`) is the cause the hardware decoder puts on
    ``err_code`` for the same stream: the first fault in stream order.
    """

    def __init__(self, code: EmdDecoderError, message: str):
        super().__init__(message)
        self.code = code


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclasses.dataclass(frozen=True)
class EmdFormat(Config):
    """Parameters of an EMD stream (both ends must agree on them; they are not in the stream).

    The ranges below are the format's, declared once; the hardware blocks nest this config
    (``hdl.emd.EmdEncoderConfig.fmt``) and add only their own fields.

    Parameters
    ----------
    group : int
        Values per group ``G`` (a power of two, 2..256).
    delta_bits : int
        Width ``D`` of the per-value code (2..5). ``2**D - 1`` codes are window deltas, the
        all-ones code is the escape.
    hi : int
        Largest delta of the window; the window is ``[hi - (2**D - 2), hi]`` (0..2**D - 2;
        ``2**(D-1) - 1`` centres it, one more negative delta than positive ones).
    escape_bits : int
        Width ``E`` of the short escape (0..4). 0 means every escape carries a raw exponent.
    sparse : bool
        Allow sparse-mode groups (a one-bit zero flag per value, the zero sign in the header).
    crc_bits : int
        Width of the integrity field after the terminator and the partial group: 0 (none, the
        default), 16 (CRC-16/IBM-SDLC) or 32 (CRC-32/ISO-HDLC), computed over the stream's
        values (:func:`crc`). Left out of the config's JSON and hashes while 0, so the configs
        from before it keep theirs.
    """

    NAME = "emd"

    group: int = param(32, lo=2, hi=256, pow2=True, doc="values per group G")
    delta_bits: int = param(2, lo=2, hi=5, doc="width D of the per-value exponent code")
    hi: int = param(2, lo=0, hi=30, doc="largest delta of the code window (at most 2**delta_bits - 2)")
    escape_bits: int = param(2, lo=0, hi=4, doc="width E of the short escape below the window (0: raw only)")
    sparse: bool = param(True, doc="allow sparse-mode groups (one-bit zero flag per value)")
    crc_bits: int = param(0, choices=(0, 16, 32), omit_default=True,
                          doc="CRC of the values after the terminator: 0 none, 16 or 32 bits")

    def validate(self) -> None:
        self.check(self.hi <= self.window - 1, "hi", f"an integer from 0 to {self.window - 1} (2**delta_bits - 2)")

    # -- derived constants (shared with the hardware) ------------------------------------------
    @property
    def window(self) -> int:
        """Number of window codes, ``2**D - 1``."""
        return (1 << self.delta_bits) - 1

    @property
    def esc_code(self) -> int:
        return (1 << self.delta_bits) - 1

    @property
    def delta_lo(self) -> int:
        """Smallest delta of the window, ``hi - (2**D - 2)``."""
        return self.hi - (self.window - 1)

    @property
    def short_max(self) -> int:
        """Largest short-escape payload ``x`` (``2**E - 2``); ``2**E - 1`` announces a raw exponent."""
        return (1 << self.escape_bits) - 2

    @property
    def count_bits(self) -> int:
        """Width of the terminator's partial-group size field, ``clog2(G)``."""
        return _clog2(self.group)


    @property
    def zero_dense_bits(self) -> int:
        """Cost of an exact zero in a dense group: code, long escape, raw exponent, sign/mantissa."""
        return self.delta_bits + self.escape_bits + 8 + 8

    @property
    def max_record_bits(self) -> int:
        return int(self.sparse) + self.delta_bits + self.escape_bits + 8 + 8

    def label(self) -> str:
        crc = f"-C{self.crc_bits}" if self.crc_bits else ""
        return f"G{self.group}-D{self.delta_bits}-hi{self.hi}-E{self.escape_bits}-{'S' if self.sparse else 'd'}{crc}"


#: The straightforward scheme of the design guide: raw escapes, no sparse groups, centred window.
SIMPLE = EmdFormat(group=32, delta_bits=3, hi=3, escape_bits=0, sparse=False)
#: The defaults, picked from the measured sweep over G, D, hi and E on the committed TD3 trace
#: (bench/emd_ratio.py, docs/results.md): G=32, D=2, window 0..+2, short escapes -1..-3.
DEFAULT = EmdFormat()


@dataclasses.dataclass(frozen=True)
class CrcSpec:
    """A reflected CRC (bits enter least significant first, as everything in the stream does).

    ``poly`` is the reflected polynomial: the register shifts right, and a one shifted out of
    bit 0 (XOR the incoming bit) XORs ``poly`` in. ``check`` is the CRC of the ASCII bytes
    ``123456789``, the catalogue's check value.
    """

    name: str
    width: int
    poly: int
    init: int
    xorout: int
    check: int

    def step(self, state: int, bit: int) -> int:
        """The register after one more message bit (before ``xorout``)."""
        out = (state ^ bit) & 1
        state >>= 1
        return state ^ self.poly if out else state


#: The CRCs ``EmdFormat.crc_bits`` selects: x^16 + x^12 + x^5 + 1 and the IEEE 802.3 polynomial.
CRC_SPECS = {
    16: CrcSpec("CRC-16/IBM-SDLC", 16, 0x8408, 0xFFFF, 0xFFFF, 0x906E),
    32: CrcSpec("CRC-32/ISO-HDLC", 32, 0xEDB88320, 0xFFFFFFFF, 0xFFFFFFFF, 0xCBF43926),
}
_CRC_TABLES: dict[int, list[int]] = {}


def _crc_bytes(data: bytes, spec: CrcSpec) -> int:
    """The CRC of ``data`` (bytes in order, each least significant bit first), table-driven."""
    table = _CRC_TABLES.get(spec.width)
    if table is None:
        table = []
        for byte in range(256):
            state = byte
            for _ in range(8):
                state = spec.step(state, 0)
            table.append(state)
        _CRC_TABLES[spec.width] = table
    state = spec.init
    for byte in data:
        state = (state >> 8) ^ table[(state ^ byte) & 0xFF]
    return state ^ spec.xorout


def crc(values, width: int) -> int:
    """CRC of a stream's values for ``EmdFormat.crc_bits = width`` (16 or 32).

    The message is every value's 16 bits in stream order, bit 0 first: the values as
    little-endian bytes. The result is written to the stream least significant bit first.
    """
    data = np.asarray(values, dtype=np.uint16).reshape(-1).astype("<u2").tobytes()
    return _crc_bytes(data, CRC_SPECS[width])


def exponents(values) -> np.ndarray:
    """Exponent fields (``int64``) of bf16 patterns."""
    return (np.asarray(values, dtype=np.uint16).astype(np.int64) >> 7) & 0xFF


def _as_groups(values, fmt: EmdFormat):
    v = np.asarray(values, dtype=np.uint16).reshape(-1)
    n_full = v.size // fmt.group
    return v[: n_full * fmt.group].reshape(n_full, fmt.group), v[n_full * fmt.group:]


#: Zero modes of a sparse group (the 2-bit ``zmode`` header field).
ZMODE_POS, ZMODE_NEG, ZMODE_SIGNED = 0, 1, 2


def group_stats(groups: np.ndarray, fmt: EmdFormat):
    """Base exponent, mode and zero mode of each row of ``groups`` (shape (n, g), bf16 patterns).

    Returns
    -------
    mu : ndarray of int64
        ``round_half_up(mean of the non-zero exponents)``; 1 when the group has none (0 is
        reserved for the terminator).
    sparse : ndarray of bool
        Sparse mode, chosen exactly when it is strictly shorter than dense mode.
    zmode : ndarray of int64
        Which zeros a sparse group codes with its flag: 0 = ``+0`` only, 1 = ``-0`` only,
        2 = both, each followed by its sign bit. Of the three, the one with the largest saving
        (``zp * Z``, ``zn * Z``, ``(zp + zn) * (Z - 1)`` with ``Z`` = ``zero_dense_bits``);
        ties go to the lower mode number. 0 in dense groups.
    """
    e = exponents(groups)
    nz = e != 0
    cnt = nz.sum(axis=1)
    total = np.where(nz, e, 0).sum(axis=1)
    mu = np.where(cnt > 0, (total + cnt // 2) // np.maximum(cnt, 1), 1)
    zp = (groups == 0x0000).sum(axis=1)
    zn = (groups == 0x8000).sum(axis=1)
    z = fmt.zero_dense_bits
    saving = np.stack([zp * z, zn * z, (zp + zn) * (z - 1)], axis=-1)
    zmode = np.argmax(saving, axis=-1).astype(np.int64)  # argmax takes the first of equal maxima
    # Sparse costs one flag per value and a 2-bit zero mode; each coded zero saves its dense cost.
    sparse = fmt.sparse & (groups.shape[1] + 2 < saving.max(axis=-1))
    return mu.astype(np.int64), np.asarray(sparse, dtype=bool), np.where(sparse, zmode, 0)


def _zero_mask(v: np.ndarray, sparse: np.ndarray, zmode: np.ndarray) -> np.ndarray:
    """Values a sparse group codes as zeros (flag 0)."""
    zm = zmode[:, None]
    return sparse[:, None] & (((zm == ZMODE_POS) & (v == 0x0000)) | ((zm == ZMODE_NEG) & (v == 0x8000))
                              | ((zm == ZMODE_SIGNED) & ((v & 0x7FFF) == 0)))


def _value_fields(groups: np.ndarray, mu: np.ndarray, sparse: np.ndarray, zmode: np.ndarray, fmt: EmdFormat):
    """Field values and widths, shape (n, g, 6): flag, zero sign, code, short escape, raw exponent, sign|mantissa."""
    v = groups.astype(np.int64)
    e = (v >> 7) & 0xFF
    sm = ((v >> 8) & 0x80) | (v & 0x7F)
    d = e - mu[:, None]
    in_win = (e != 0) & (d >= fmt.delta_lo) & (d <= fmt.hi)
    x = fmt.delta_lo - 1 - d
    short = (e != 0) & ~in_win & (x >= 0) & (x <= fmt.short_max) & (fmt.escape_bits > 0)
    raw = ~in_win & ~short
    zero = _zero_mask(v, sparse, zmode)
    one = np.ones_like(v)
    vals = np.stack([
        (~zero).astype(np.int64),
        v >> 15,
        np.where(in_win, d - fmt.delta_lo, fmt.esc_code),
        np.where(short, x, (1 << fmt.escape_bits) - 1),
        e,
        sm,
    ], axis=-1)
    widths = np.stack([
        np.broadcast_to(sparse[:, None], v.shape) * one,
        (zero & (zmode[:, None] == ZMODE_SIGNED)).astype(np.int64),
        np.where(zero, 0, fmt.delta_bits),
        np.where(zero | in_win, 0, fmt.escape_bits),
        np.where(raw & ~zero, 8, 0),
        np.where(zero, 0, 8),
    ], axis=-1)
    return vals, widths


def _group_fields(groups: np.ndarray, fmt: EmdFormat):
    mu, sparse, zmode = group_stats(groups, fmt)
    vals, widths = _value_fields(groups, mu, sparse, zmode, fmt)
    n = groups.shape[0]
    hv = np.stack([sparse.astype(np.int64), mu, zmode], axis=-1)
    hw = np.stack([np.ones(n, np.int64), np.full(n, 8, np.int64), 2 * sparse.astype(np.int64)], axis=-1)
    return (np.concatenate([hv, vals.reshape(n, -1)], axis=1),
            np.concatenate([hw, widths.reshape(n, -1)], axis=1))


def encode_fields(values, fmt: EmdFormat = DEFAULT):
    """The stream as a flat sequence of fields: ``(values, widths)``, both ``int64`` arrays.

    Zero-width fields are left in (they carry nothing); :func:`encode_bits` drops them.
    """
    full, tail = _as_groups(values, fmt)
    parts_v, parts_w = [], []
    if full.shape[0]:
        fv, fw = _group_fields(full, fmt)
        parts_v.append(fv.reshape(-1))
        parts_w.append(fw.reshape(-1))
    # Terminator: mode 0, mu 0, then the size of the partial group that follows (0: none).
    parts_v.append(np.array([0, 0, 0, tail.size], dtype=np.int64))
    parts_w.append(np.array([1, 8, 0, fmt.count_bits], dtype=np.int64))
    if tail.size:
        tv, tw = _group_fields(tail.reshape(1, -1), fmt)
        parts_v.append(tv.reshape(-1))
        parts_w.append(tw.reshape(-1))
    if fmt.crc_bits:
        parts_v.append(np.array([crc(values, fmt.crc_bits)], dtype=np.int64))
        parts_w.append(np.array([fmt.crc_bits], dtype=np.int64))
    return np.concatenate(parts_v), np.concatenate(parts_w)


def encode_bits(values, fmt: EmdFormat = DEFAULT) -> np.ndarray:
    """Encode bf16 patterns into the EMD bit sequence (``uint8`` array of 0/1, stream order).

    Every field is written least significant bit first, in the order of ``docs/formats.md``.
    """
    vals, widths = encode_fields(values, fmt)
    keep = widths > 0
    vals, widths = vals[keep], widths[keep]
    starts = np.cumsum(widths) - widths
    total = int(widths.sum())
    pos = np.arange(total, dtype=np.int64) - np.repeat(starts, widths)
    return ((np.repeat(vals, widths) >> pos) & 1).astype(np.uint8)


def encoded_bits(values, fmt: EmdFormat = DEFAULT) -> int:
    """Length in bits of the encoded stream (without padding to a word)."""
    return int(encode_fields(values, fmt)[1].sum())


def bits_to_words(bits: np.ndarray, word_bits: int) -> list[int]:
    """Pack a bit sequence into ``word_bits``-wide words, first bit in bit 0; zero padding."""
    bits = np.asarray(bits, dtype=np.uint8)
    n_words = max(1, -(-bits.size // word_bits))
    padded = np.zeros(n_words * word_bits, dtype=np.uint8)
    padded[: bits.size] = bits
    out = []
    for row in padded.reshape(n_words, word_bits):
        out.append(int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little"))
    return out


def words_to_bits(words: Iterable[int], word_bits: int) -> np.ndarray:
    """Inverse of :func:`bits_to_words` (the padding stays)."""
    words = list(words)
    nbytes = -(-word_bits // 8)
    out = np.zeros((len(words), word_bits), dtype=np.uint8)
    for k, w in enumerate(words):
        row = np.unpackbits(np.frombuffer(int(w).to_bytes(nbytes, "little"), dtype=np.uint8), bitorder="little")
        out[k] = row[:word_bits]
    return out.reshape(-1)


def encode(values, fmt: EmdFormat = DEFAULT, word_bits: int = 64) -> list[int]:
    """Encode bf16 patterns into ``word_bits``-wide words (what the hardware encoder emits)."""
    return bits_to_words(encode_bits(values, fmt), word_bits)


class _Reader:
    def __init__(self, bits: np.ndarray):
        self.bits = np.asarray(bits, dtype=np.uint8)
        self.pos = 0

    def take(self, width: int, what: str) -> int:
        if self.pos + width > self.bits.size:
            raise EmdFormatError(EmdDecoderError.TRUNCATED, f"emd: stream truncated at bit {self.pos} while reading {what} "
                                 f"({width} bits needed, {self.bits.size - self.pos} left)")
        chunk = self.bits[self.pos:self.pos + width]
        self.pos += width
        return int(np.dot(chunk.astype(np.int64), 1 << np.arange(width, dtype=np.int64))) if width else 0


def _decode_group(r: _Reader, n: int, fmt: EmdFormat, index: int) -> list[int]:
    sparse = r.take(1, f"group {index} mode")
    mu = r.take(8, f"group {index} base")
    if mu == 0:
        raise EmdFormatError(EmdDecoderError.BAD_HEADER, f"emd: group {index} at bit {r.pos - 9} has base exponent 0 "
                             f"(reserved for the terminator) but a group was expected")
    zmode = r.take(2, f"group {index} zero mode") if sparse else 0
    if zmode > ZMODE_SIGNED:
        raise EmdFormatError(EmdDecoderError.BAD_HEADER, f"emd: group {index} at bit {r.pos - 11} has the reserved zero mode 3; "
                             f"the stream is corrupt")
    out = []
    for k in range(n):
        where = f"value {index * fmt.group + k}"
        if sparse and r.take(1, f"{where} flag") == 0:
            sign = r.take(1, f"{where} zero sign") if zmode == ZMODE_SIGNED else zmode
            out.append(sign << 15)
            continue
        code = r.take(fmt.delta_bits, f"{where} code")
        relative = True  # window and short-escape exponents are relative to mu; raw ones are not
        if code != fmt.esc_code:
            e = mu + fmt.delta_lo + code
        else:
            x = r.take(fmt.escape_bits, f"{where} escape")
            if fmt.escape_bits and x <= fmt.short_max:
                e = mu + fmt.delta_lo - 1 - x
            else:
                e, relative = r.take(8, f"{where} raw exponent"), False
        # An encoder codes exponent 0 raw only, so a relative code reaching 0 (or leaving 1..255)
        # can only come from a damaged stream.
        if relative and not 1 <= e <= 255:
            raise EmdFormatError(EmdDecoderError.BAD_CODE, f"emd: {where} decodes to exponent {e} from base {mu} "
                                 f"(bit {r.pos}); the stream is corrupt")
        sm = r.take(8, f"{where} sign/mantissa")
        out.append(((sm & 0x80) << 8) | (e << 7) | (sm & 0x7F))
    return out


def decode_bits(bits, fmt: EmdFormat = DEFAULT) -> np.ndarray:
    """Decode an EMD bit sequence back to bf16 patterns (``uint16``).

    Bits after the terminator (or after the CRC field) are ignored here (:func:`decode` checks
    the padding). Raises :class:`EmdFormatError` on a truncated stream, on a code that no
    encoder produces or on a CRC that differs from the decoded values'.
    """
    return _decode_bits(bits, fmt)[0]


def _decode_bits(bits, fmt: EmdFormat, lanes: int = 1):
    r = _Reader(bits)
    out: list[int] = []
    index = 0
    while True:
        start = r.pos
        sparse = r.take(1, f"group {index} mode")
        mu = r.take(8, f"group {index} base")
        if mu == 0:
            if sparse:
                raise EmdFormatError(EmdDecoderError.BAD_HEADER, f"emd: header at bit {start} has mode 1 and base 0; the stream is corrupt")
            tail = r.take(fmt.count_bits, "terminator count")
            if tail % lanes:
                raise EmdFormatError(EmdDecoderError.RAGGED, f"emd: the final partial group of {tail} values "
                                     f"(bit {r.pos}) is not a whole number of {lanes}-value beats")
            if tail:
                out += _decode_group(r, tail, fmt, index)
            values = np.array(out, dtype=np.uint16)
            if fmt.crc_bits:
                where = r.pos
                stored, computed = r.take(fmt.crc_bits, "CRC"), crc(values, fmt.crc_bits)
                if stored != computed:
                    raise EmdFormatError(EmdDecoderError.CRC, f"emd: CRC field at bit {where} is {stored:#x}, but the "
                                         f"{values.size} decoded values give {computed:#x}; the stream is corrupt")
            return values, r.pos
        r.pos = start
        out += _decode_group(r, fmt.group, fmt, index)
        index += 1


def decode(words: Iterable[int], fmt: EmdFormat = DEFAULT, word_bits: int = 64, lanes: int = 1) -> np.ndarray:
    """Decode ``word_bits``-wide words (see :func:`encode`).

    The terminator (and the CRC field after it, if any) must lie in the last word and the
    padding after it must be zero, and a final partial group must be whole beats of ``lanes``
    values, as the hardware decoder checks; anything else raises :class:`EmdFormatError` with
    the hardware's ``err_code``.
    """
    bits = words_to_bits(words, word_bits)
    values, end = _decode_bits(bits, fmt, lanes)
    if bits.size - end >= word_bits:
        raise EmdFormatError(EmdDecoderError.TRAILING_DATA, f"emd: {(bits.size - end) // word_bits} whole word(s) of data after the "
                             f"terminator (bit {end})")
    if bits[end:].any():
        raise EmdFormatError(EmdDecoderError.PADDING, f"emd: non-zero padding after the terminator (bit {end})")
    return values


# -- measurements -------------------------------------------------------------------------------

def cost(values, fmt: EmdFormat = DEFAULT) -> dict[str, float]:
    """Bit counts of one tensor under ``fmt``: total, exponent part and sign/mantissa part.

    ``exponent`` counts headers, terminator, CRC, flags, codes and escape payloads: everything but
    the 8 sign/mantissa bits that travel unchanged (a sparse-mode zero sends none, or only its
    sign bit, which counts as sign/mantissa).
    """
    vals, widths = encode_fields(values, fmt)
    total = int(widths.sum())
    full, tail = _as_groups(values, fmt)
    sm = 0
    for part in (full, tail.reshape(1, -1)):
        if part.size:
            _, sp, zm = group_stats(part, fmt)
            zero = _zero_mask(part.astype(np.int64), sp, zm)
            # 8 sign/mantissa bits per coded value; the sign bit of a signed zero is a sign bit too.
            sm += 8 * int((~zero).sum()) + int((zero & (zm[:, None] == ZMODE_SIGNED)).sum())
    n = int(np.asarray(values).size)
    return {"values": n, "total": total, "exponent": total - sm, "sign_mantissa": sm}


def top3_bits(values) -> dict[str, float]:
    """Cost of the 2019 top-3 exponent code over one buffer (here: one tensor).

    A 24-bit table holds the three most frequent exponents (ties: smaller exponent first); each
    value sends a 2-bit code (``01``/``10``/``11`` = table entry, ``00`` = miss) and, on a miss,
    its raw 8-bit exponent. Sign and mantissa (8 bits) always travel.
    """
    e = exponents(values).reshape(-1)
    counts = np.bincount(e, minlength=256)
    top = np.argsort(-counts, kind="stable")[:3]
    miss = int((~np.isin(e, top)).sum())
    exp_bits = 24 + 2 * e.size + 8 * miss
    return {"values": int(e.size), "total": exp_bits + 8 * int(e.size), "exponent": exp_bits,
            "sign_mantissa": 8 * int(e.size)}


def entropy_bits(values) -> float:
    """Shannon entropy (bits per exponent) of the exponent fields of ``values`` (order-0)."""
    e = exponents(values).reshape(-1)
    counts = np.bincount(e, minlength=256)
    p = counts[counts > 0] / e.size
    return float(-(p * np.log2(p)).sum())
