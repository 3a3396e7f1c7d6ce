"""Golden model of the digital mixed-precision MAC (``hdl/mpmac.py``): integer dot products with
bit-serial activations and shift-and-add accumulation, its cycle model, and its area table.

Numbers (``docs/mpmac.md``)
---------------------------
* **Weights**: two's complement integers of ``w_bits`` bits (1..8), range
  ``-2**(w_bits-1) .. 2**(w_bits-1) - 1`` (so 1 bit means {-1, 0}).
* **Activations**: integers of ``a_bits`` bits (1..8), two's complement when ``a_signed`` and
  unsigned (``0 .. 2**a_bits - 1``, what a ReLU layer produces) otherwise.
* **Fields**: a beat carries ``lanes`` weight fields of ``max_w_bits`` bits and ``lanes``
  activation fields of ``max_a_bits`` bits. A value of ``b`` bits sits in the low ``b`` bits of
  its field as its ``b``-bit pattern; the bits above must be zero (the hardware sign-extends).
* **Order** (the contract): activations are consumed one bit plane per cycle, most significant
  first. For a beat, ``P_k = sum of w_l over the lanes whose activation has bit k set``;
  ``s = P_top`` (negated when ``a_signed``: the sign plane weighs ``-2**top``), then
  ``s = 2*s + P_k`` for ``k = top-1 .. 0`` (Horner). The dot product's beats are added in
  order: ``acc = s_0``, ``acc = acc + s_b``. Integer arithmetic is exact and the accumulator of
  ``acc_bits`` bits cannot overflow within ``max_beats`` beats, so the value is the plain
  integer dot product; the order matters for the cycle count and for what a fault drops.
* **Rejected** (``golden.codes.MpMacError``): a dot product is dropped at its first bad beat,
  and beats up to its ``last`` are discarded. See :func:`stream_model`.

Cycle model: one cycle per activation bit of each beat, ``a_bits * beats`` per dot product at
full rate (:func:`dot_cycles`); the weight precision does not change the cycle count.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

from .codes import MpMacError
from .config import Config, param

__all__ = ["MpMacParams", "Beat", "StreamResult", "PRECISION_FIELD_BITS", "value_range", "to_pattern",
           "from_pattern", "product_bound", "acc_bits_for", "beat_steps", "beat_sum", "dot_beats", "check_beat",
           "stream_model", "dot_cycles", "length_cycles", "AREA_TABLE", "AreaTableError", "load_area_table"]

#: width of the ``w_bits`` and ``a_bits`` fields of a beat (values 0..15; only 1..8 are valid)
PRECISION_FIELD_BITS = 4
MAX_BITS = 8

AREA_TABLE = Path(__file__).resolve().parent / "data" / "mpmac_area.json"


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest integer of ``bits`` bits (two's complement when ``signed``)."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def to_pattern(value: int, bits: int, signed: bool = True) -> int:
    """The ``bits``-bit pattern of ``value``; a value outside :func:`value_range` raises ValueError."""
    lo, hi = value_range(bits, signed)
    if not lo <= value <= hi:
        raise ValueError(f"value {value} does not fit {bits} {'signed' if signed else 'unsigned'} bits ({lo}..{hi})")
    return value & ((1 << bits) - 1)


def from_pattern(pattern: int, bits: int, signed: bool = True) -> int:
    """The integer a ``bits``-bit ``pattern`` encodes (bits above ``bits`` are ignored)."""
    pattern &= (1 << bits) - 1
    return pattern - (1 << bits) if signed and pattern >> (bits - 1) else pattern


def product_bound(w_bits: int, a_bits: int) -> int:
    """Largest magnitude of one product ``w * a`` at this precision, signed or unsigned activations:
    ``2**(w_bits-1) * (2**a_bits - 1)``."""
    return (1 << (w_bits - 1)) * ((1 << a_bits) - 1)


def acc_bits_for(lanes: int, w_bits: int, a_bits: int, beats: int) -> int:
    """Fewest accumulator bits that hold every dot product of ``beats`` beats at this precision."""
    return (lanes * beats * product_bound(w_bits, a_bits)).bit_length() + 1


@dataclasses.dataclass(frozen=True)
class MpMacParams(Config):
    """What a mixed-precision MAC instance computes and rejects.

    ``hdl.mpmac.MpMacConfig`` inherits these fields, so the hardware and the golden model share
    one declaration (and one range) of each.

    Parameters
    ----------
    lanes : int
        Products per beat (the dot-product width the adder tree sums per cycle).
    max_w_bits, max_a_bits : int
        Widest weight and activation the instance takes (field widths of a beat).
    acc_bits : int
        Signed accumulator (and result) width; it sets :attr:`max_beats`.
    runtime_precision : bool
        Take any ``w_bits <= max_w_bits`` and ``a_bits <= max_a_bits`` per dot product. Without
        it the instance computes exactly ``(max_w_bits, max_a_bits)``, the dedicated MAC whose
        area the cost table records.
    """

    NAME = "mpmac"

    lanes: int = param(8, lo=1, hi=64, doc="products per beat, summed by one adder tree per cycle")
    max_w_bits: int = param(8, lo=1, hi=MAX_BITS, doc="widest weight (two's complement), bits of a weight field")
    max_a_bits: int = param(8, lo=1, hi=MAX_BITS, doc="widest activation (signed or unsigned), bits of an activation field")
    acc_bits: int = param(32, lo=3, hi=48, doc="signed accumulator and result width; sets max_beats")
    runtime_precision: bool = param(True, doc="w_bits, a_bits chosen per dot product (false: exactly the maxima)")

    def validate(self) -> None:
        need = acc_bits_for(self.lanes, self.max_w_bits, self.max_a_bits, 1)
        self.check(self.acc_bits >= need, "acc_bits",
                   f"an integer from {need} to 48 (one beat of lanes={self.lanes} products of "
                   f"{self.max_w_bits} x {self.max_a_bits} bits needs {need})")

    @property
    def max_beats(self) -> int:
        """Longest dot product, in beats, that the accumulator holds at the widest precision."""
        return ((1 << (self.acc_bits - 1)) - 1) // (self.lanes * product_bound(self.max_w_bits, self.max_a_bits))

    @property
    def beat_bits(self) -> int:
        """Width of the Horner register that builds one beat's sum (signed)."""
        return acc_bits_for(self.lanes, self.max_w_bits, self.max_a_bits, 1)


@dataclasses.dataclass(frozen=True)
class Beat:
    """One input beat: ``lanes`` weight and activation patterns, the precision, ``last``.

    ``w`` and ``a`` are the raw field contents (patterns, not values); :meth:`make` encodes values.
    """

    w: tuple[int, ...]
    a: tuple[int, ...]
    w_bits: int
    a_bits: int
    a_signed: bool
    last: bool

    @classmethod
    def make(cls, w_values: Sequence[int], a_values: Sequence[int], w_bits: int, a_bits: int,
             a_signed: bool, last: bool = True) -> "Beat":
        return cls(tuple(to_pattern(int(v), w_bits, True) for v in w_values),
                   tuple(to_pattern(int(v), a_bits, a_signed) for v in a_values),
                   w_bits, a_bits, bool(a_signed), bool(last))

    def as_dict(self) -> dict:
        """Field values for the hardware's beat layout (``hdl.mpmac.beat_layout``)."""
        return {"w": list(self.w), "a": list(self.a), "w_bits": self.w_bits, "a_bits": self.a_bits,
                "a_signed": int(self.a_signed), "last": int(self.last)}

    def values(self) -> tuple[list[int], list[int]]:
        """The weight and activation integers (meaningful for a beat that :func:`check_beat` accepts)."""
        return ([from_pattern(w, self.w_bits, True) for w in self.w],
                [from_pattern(a, self.a_bits, self.a_signed) for a in self.a])


def beat_steps(beat: Beat) -> list[tuple[int, int, int]]:
    """``(k, P_k, s)`` for each cycle of an accepted beat, in the hardware's order: ``P_k`` is
    the sum of the weights whose activation has bit ``k`` set, planes most significant first;
    ``s`` the Horner value after the plane (the sign plane negated for signed activations)."""
    weights, _ = beat.values()
    top = beat.a_bits - 1
    steps, s = [], 0
    for k in range(top, -1, -1):
        plane = sum(w for w, a in zip(weights, beat.a) if a >> k & 1)
        term = -plane if beat.a_signed and k == top else plane
        s = term if k == top else 2 * s + term
        steps.append((k, plane, s))
    return steps


def beat_sum(beat: Beat) -> int:
    """``sum_l w_l * a_l`` of an accepted beat, built the hardware's way (:func:`beat_steps`)."""
    return beat_steps(beat)[-1][2]


def dot_beats(w_values: Sequence[int], a_values: Sequence[int], w_bits: int, a_bits: int, a_signed: bool,
              lanes: int) -> list[Beat]:
    """The beats of one dot product: ``lanes`` elements each, the last beat padded with zeros."""
    n = len(w_values)
    if n != len(a_values) or n == 0:
        raise ValueError(f"a dot product needs as many weights as activations, at least one ({n}, {len(a_values)})")
    beats = max(1, math.ceil(n / lanes))
    out = []
    for b in range(beats):
        w = [int(v) for v in w_values[b * lanes:(b + 1) * lanes]]
        a = [int(v) for v in a_values[b * lanes:(b + 1) * lanes]]
        pad = lanes - len(w)
        out.append(Beat.make(w + [0] * pad, a + [0] * pad, w_bits, a_bits, a_signed, b == beats - 1))
    return out


def check_beat(params: MpMacParams, beat: Beat, dot: tuple | None, beats_so_far: int) -> MpMacError:
    """The fault of ``beat`` (``NONE`` if it is good), in the hardware's priority order.

    ``dot`` is the ``(w_bits, a_bits, a_signed)`` of the open dot product's first beat, or
    None when this beat starts one; ``beats_so_far`` counts its beats already taken.
    """
    if len(beat.w) != params.lanes or len(beat.a) != params.lanes:
        raise ValueError(f"a beat has {params.lanes} weights and activations, not {len(beat.w)} and {len(beat.a)}")
    for value, width in [(v, params.max_w_bits) for v in beat.w] + [(v, params.max_a_bits) for v in beat.a]:
        if not 0 <= value < 1 << width:
            raise ValueError(f"field value {value} does not fit its {width}-bit field")
    for bits in (beat.w_bits, beat.a_bits):
        if not 0 <= bits < 1 << PRECISION_FIELD_BITS:
            raise ValueError(f"precision field {bits} does not fit {PRECISION_FIELD_BITS} bits")
    if params.runtime_precision:
        bad_bits = not (1 <= beat.w_bits <= params.max_w_bits and 1 <= beat.a_bits <= params.max_a_bits)
    else:
        bad_bits = (beat.w_bits, beat.a_bits) != (params.max_w_bits, params.max_a_bits)
    if bad_bits:
        return MpMacError.BITS
    if dot is not None and (beat.w_bits, beat.a_bits, beat.a_signed) != dot:
        return MpMacError.MIXED
    if any(w >> beat.w_bits for w in beat.w) or any(a >> beat.a_bits for a in beat.a):
        return MpMacError.OPERAND
    if dot is not None and beats_so_far >= params.max_beats:
        return MpMacError.LENGTH
    return MpMacError.NONE


@dataclasses.dataclass
class StreamResult:
    """What the MAC does with a stream of beats.

    ``results``: the values of the good dot products, in order (one output beat each).
    ``rejected``: ``(index of the dot product among all started, code)`` of the dropped ones.
    ``error_after[j]`` / ``code_after[j]``: the sticky ``error`` / ``err_code`` after input beat j.
    """

    results: list[int]
    rejected: list[tuple[int, MpMacError]]
    error_after: list[bool]
    code_after: list[MpMacError]

    @property
    def errors(self) -> int:
        return len(self.rejected)


def stream_model(params: MpMacParams, beats: Iterable[Beat]) -> StreamResult:
    """Bit-exact model of the MAC's stream behaviour, error recovery included.

    * A beat taken while no dot product is open starts one: ``error`` clears (a new unit of
      work) unless that beat is itself bad.
    * A bad beat (:func:`check_beat`) drops its dot product: no result, ``error`` set with the
      code; the following beats are discarded up to and including the next ``last`` (the bad
      beat's own ``last`` ends it at once), and ``error`` holds meanwhile.
    * A good beat adds its :func:`beat_sum`; the ``last`` beat's dot product is a result.
    """
    out = StreamResult([], [], [], [])
    dot, count, acc = None, 0, 0
    discard = False
    flag, code = False, MpMacError.NONE
    started = -1
    for beat in beats:
        if discard:
            discard = not beat.last
        else:
            if dot is None:
                started += 1
                flag, code = False, MpMacError.NONE
            fault = check_beat(params, beat, dot, count)
            if fault:
                out.rejected.append((started, fault))
                flag, code = True, fault
                dot, discard = None, not beat.last
            else:
                acc = beat_sum(beat) + (acc if dot is not None else 0)
                count = count + 1 if dot is not None else 1
                dot = (beat.w_bits, beat.a_bits, beat.a_signed)
                if beat.last:
                    out.results.append(acc)
                    dot = None
        out.error_after.append(flag)
        out.code_after.append(code)
    return out


def dot_cycles(a_bits: int, beats: int = 1) -> int:
    """Cycles of one dot product of ``beats`` beats at full rate: from taking its first beat to
    its result being offered, and the interval between results back to back."""
    return a_bits * beats


def length_cycles(length: int, lanes: int, a_bits: int) -> int:
    """Cycles of a dot product of ``length`` elements on ``lanes`` lanes (padded to whole beats)."""
    return dot_cycles(a_bits, max(1, math.ceil(length / lanes)))


# -- area table ----------------------------------------------------------------------------------
class AreaTableError(ValueError):
    """The area table is missing or malformed; the message is one line naming the file."""


_ENTRY_KEYS = {"w_bits": int, "a_bits": int, "area_ge": float, "flip_flops": int, "critical_path_ns": float,
               "cycles_per_dot": int, "energy_per_mac_j": (float, type(None))}


def load_area_table(path: str | Path | None = None) -> dict[tuple[int, int], dict]:
    """``(w_bits, a_bits) -> entry`` of the measured area table (``bench/mpmac_area.py``).

    Every entry has ``w_bits``, ``a_bits``, ``area_ge``, ``flip_flops``, ``critical_path_ns``,
    ``cycles_per_dot`` and ``energy_per_mac_j`` (None where not measured); the table covers all
    64 pairs of 1..8 bits. A missing or malformed file raises :class:`AreaTableError`.
    """
    path = Path(path) if path is not None else AREA_TABLE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise AreaTableError(f"{path}: no MAC area table; run `python bench/mpmac_area.py` to measure it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AreaTableError(f"{path}: not a readable JSON area table ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or doc.get("block") != "mpmac" or not isinstance(doc.get("entries"), list) \
            or not isinstance(doc.get("lanes"), int):
        raise AreaTableError(f"{path}: not an mpmac area table (needs block 'mpmac', an integer lanes and a list of entries)")
    table: dict[tuple[int, int], dict] = {}
    for n, entry in enumerate(doc["entries"]):
        if not isinstance(entry, dict) or set(entry) != set(_ENTRY_KEYS):
            raise AreaTableError(f"{path}: entry {n} must have exactly the keys {', '.join(_ENTRY_KEYS)}")
        for key, typ in _ENTRY_KEYS.items():
            value = entry[key]
            ok = isinstance(value, typ) and not isinstance(value, bool)
            if typ is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise AreaTableError(f"{path}: entry {n}: {key}={value!r} has the wrong type")
        pair = (entry["w_bits"], entry["a_bits"])
        if pair in table:
            raise AreaTableError(f"{path}: entry {n}: pair w_bits={pair[0]}, a_bits={pair[1]} appears twice")
        table[pair] = dict(entry)
    missing = [(w, a) for w in range(1, MAX_BITS + 1) for a in range(1, MAX_BITS + 1) if (w, a) not in table]
    extra = sorted(set(table) - {(w, a) for w in range(1, MAX_BITS + 1) for a in range(1, MAX_BITS + 1)})
    if missing or extra:
        what = f"missing {len(missing)} pairs, first w_bits={missing[0][0]}, a_bits={missing[0][1]}" if missing \
            else f"pair w_bits={extra[0][0]}, a_bits={extra[0][1]} is outside 1..{MAX_BITS}"
        raise AreaTableError(f"{path}: the table must cover w_bits, a_bits in 1..{MAX_BITS}: {what}")
    return table
