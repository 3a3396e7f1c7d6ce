"""Mutation testing of the files where a wrong line is a wrong number, one file at a time.

For each file in scope (``SCOPE`` below) cosmic-ray makes mutants (one small change each: ``+`` for
``-``, ``<`` for ``<=``, a constant plus one, a condition negated, a loop run zero times...), runs the
fast tests that cover the file against each, and counts the mutants the tests kill. A survivor is either a
gap in the tests (add a test that fails on it) or an equivalent mutant (listed in ``EQUIVALENT`` with its
reason in docs/mutation.md).

Usage::

    .venv/bin/python bench/mutation.py                       # every file in scope
    .venv/bin/python bench/mutation.py --files golden/mfec.py  # just the file you changed
    .venv/bin/python bench/mutation.py --fresh --files ...     # forget the saved session, start over
    .venv/bin/python bench/mutation.py --retest-survivors --files ...  # after adding tests: rerun survivors
    .venv/bin/python bench/mutation.py --report                # rewrite the results from saved sessions

The mutants run in a copy of the sources (``build/mutation/tree``), never in the working tree, so an
interrupted run leaves no mutant behind. Each file's cosmic-ray session (``build/mutation/<file>.sqlite``)
keeps the finished mutants: run the same command again to resume. Results go to
``bench/results/mutation.json`` and ``.md``; files not run keep their previous entry, or ``"not run"``.

Operators: every cosmic-ray operator, but one replacement per operator kind rather than all of them
(``REPLACEMENTS``), and a constant is mutated by ``+1`` only; a full cross product (every binary operator
into every other) is 3-4 times the mutants for little extra information.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import ROOT, bench_parser, run_info, utc_now, write_results  # noqa: E402

WORK = ROOT / "build" / "mutation"
TREE = WORK / "tree"
COPIED = ("golden", "hdl", "tb", "flows", "tests", "docs", "pyproject.toml")  # docs: tests read the tables they check
PYTEST = "python -m pytest -x -q -n 0 -p no:cacheprovider"

# file -> (the fast tests that cover it, the functions mutated (None: the whole file)).
SCOPE: dict[str, tuple[list[str], list[str] | None]] = {
    "golden/config.py": (["tests/test_config.py", "tests/test_config_mutants.py"], None),
    "golden/transpose.py": (["tests/test_transpose_golden.py", "tests/test_transpose_mutants.py"], None),
    "golden/gst.py": (["tests/test_gst_layers.py", "tests/test_pe_array_golden.py", "tests/test_gst_mutants.py"],
                      None),
    "golden/mfec.py": (["tests/test_mfec.py", "tests/test_mfec_mutants.py"], None),
    # the cycle model and the job builders are checked only against the hardware: its two cycle-exact tests (4.6 s)
    "golden/pe_array.py": (["tests/test_pe_array_golden.py", "tests/test_gst_layers.py",
                            "tests/test_pe_array_mutants.py",
                            "tests/test_pe_array_amaranth.py::test_every_mode_cycle_exact_without_stalls",
                            "tests/test_pe_array_banks.py::test_sequence_cycle_exact_against_model"], None),
    "golden/bf16.py": (["tests/test_bf16.py", "tests/test_gst_layers.py", "tests/test_bf16_mutants.py"], None),
    "hdl/lib/fp.py": (["tests/test_fp_units_edges.py", "tests/test_fp_mutants.py", "tests/test_pe_amaranth.py"], None),
    "golden/emd.py": (["tests/test_emd_golden.py", "tests/test_emd_sparse_tie.py", "tests/test_emd_mutants.py"], None),
    # test_td3.py takes 20 s: its bit-level checks of a training step (2.8 s) only
    "golden/td3.py": (["tests/test_td3.py::test_same_seed_same_numbers",
                       "tests/test_td3.py::test_committed_trace_schema_and_bits",
                       "tests/test_td3.py::test_committed_trace_products_are_golden_gemm_bits",
                       "tests/test_td3.py::test_stage_traces_schema_and_bits", "tests/test_gst_layers.py",
                       # the PyTorch reference vectors (not the self-planting test: it edits td3.py by text)
                       "tests/test_td3_reference.py::test_golden_update_matches_pytorch_reference",
                       "tests/test_td3_reference.py::test_circulant_layer_matches_autograd_through_expanded_weight",
                       "tests/test_td3_mutants.py"],
                      ["TD3Agent.update", "Adam.step"]),
}

# The one replacement kept per operator kind (cosmic-ray names them core/<Operator>_<From>_<To>).
REPLACEMENTS = {
    "ReplaceBinaryOperator": {"Add": "Sub", "Sub": "Add", "Mul": "Div", "Div": "Mul", "FloorDiv": "Mul",
                              "Mod": "FloorDiv", "Pow": "Mul", "LShift": "RShift", "RShift": "LShift",
                              "BitOr": "BitAnd", "BitAnd": "BitOr", "BitXor": "BitOr", "MatMult": "Mul"},
    "ReplaceComparisonOperator": {"Lt": "LtE", "LtE": "Lt", "Gt": "GtE", "GtE": "Gt", "Eq": "NotEq",
                                  "NotEq": "Eq", "Is": "IsNot", "IsNot": "Is", "In": "NotIn", "NotIn": "In"},
    "ReplaceUnaryOperator": {"USub": "UAdd", "UAdd": "USub", "Invert": "UAdd", "Delete": "Not"},
}

# Survivors argued equivalent in docs/mutation.md: (file, operator, stripped source line) -> why. The
# operator may carry "#<occurrence>" when only one of the mutants of that kind on the line is equivalent.
NUMPY_RESHAPE = "NumPy infers a negative size whatever its value: reshape(-2) is reshape(-1)"
OUT_LINE = ("out = (sign << exp_shift) | (np.clip(e_fin, 0, 255) << frac_bits) | "
            "(q & ((np.int64(1) << frac_bits) - 1))")
TEST_TABLE = ("an operand of a rule case (test data, nothing computes with it): the mutated operand still "
              "obeys the rule and gives the stated result")
FROZEN = "frozen only forbids assigning a field and makes instances hashable: no code does either"
SAFE_LINE = "safe = min_exponent(a) + min_exponent(b) - 14 >= -126"
SLOW_PATH = "makes the flush-free fast path rarer, never more common: the general path gives the same bits"
ANNOTATION = "an annotation: never evaluated (from __future__ import annotations)"
KEYWORD_ONLY = "the bare * marks keyword-only parameters; as / every call (all by keyword) binds the same"
INF_NAN_LINE = "if a.size and a.max() >= 0x7F800000:  # Inf or NaN"
INF_FAST = ("lets an array whose largest magnitude is exactly Inf take the fast path, where u + 0x7FFF leaves "
            "+-Inf's zero fraction below bit 16: Inf rounds to itself there too")
SUBNORMAL_LINE = "if a.size and a.min() < 0x007FFFFF:"
SMALLEST_NORMAL_GENERAL = "sends the smallest normal (a - 1 = 0x007FFFFF) to the general path too: same bits"
EMD_AXIS = "the array is 2-D (a stack of 1-D arrays, or groups x values): axis 1 is axis -1"
MUL_LINE = "m.d.comb += sig.eq(Cat(fa, Const(1, 1)) * Cat(fb, Const(1, 1)))"
T1_LINE = "m.d.comb += t1.eq(Mux(carry, Cat(total[1] | total[0], total[2:28]), total[0:27]))"
R16_LINE = ("m.d.comb += r16.eq(Mux(nan, 0x7FC0, Mux(rounded[7:15] == 0, Cat(Const(0, 15), rounded[15]), "
            "rounded[:16])))")
ONE_ABOVE = "Const(1, 2) is the hidden 1 with a 0 bit above it: the same number, one bit wider"
LOW_NAN = ("also calls Inf a pattern whose only fraction bit is bit 0: a NaN, which the first branch (any NaN) "
           "decides before a_inf / b_inf is read")
EQUIVALENT: dict[tuple[str, str, str], str] = {
    # golden/bf16.py: round_bf16's dispatch (the fast path is an optimisation: the general path gives the same bits)
    ("golden/bf16.py", "core/ReplaceBinaryOperator_BitAnd_BitOr", "a = u & np.uint32(0x7FFFFFFF)"):
        "u | 0x7FFFFFFF is at least 0x7FFFFFFF: every array takes the general path, which gives the same bits",
    ("golden/bf16.py", "core/NumberReplacer", INF_NAN_LINE): INF_FAST,
    ("golden/bf16.py", "core/ReplaceComparisonOperator_GtE_Gt", INF_NAN_LINE): INF_FAST,
    ("golden/bf16.py", "core/NumberReplacer",
     "a -= 1  # zero wraps to the top; a nonzero subnormal lands below 0x007FFFFF"):
        "a -= 2 lets only +-0x00000001 take the fast path, where u + 0x7FFF rounds it to +-0, the flush's result; "
        "the smallest normal goes general instead: same bits",
    ("golden/bf16.py", "core/NumberReplacer", SUBNORMAL_LINE): SMALLEST_NORMAL_GENERAL,
    ("golden/bf16.py", "core/ReplaceComparisonOperator_Lt_LtE", SUBNORMAL_LINE): SMALLEST_NORMAL_GENERAL,
    ("golden/bf16.py", "core/ReplaceBinaryOperator_BitAnd_BitOr", "r = np.where((r & 0x7F80) == 0, r & 0x8000, r)"):
        "never flushes: r has exponent 0 only for a flushed +-0 input, where r & 0x8000 is r itself",
    ("golden/bf16.py", "core/NumberReplacer#342",
     "extra = [0x00800000, 0x00800001, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x33800000, 0x3F800001,"):
        "test data: 0x00800000 is also the widened bf16 0x0080 of the grid, so the grid's values are the same "
        "set (0x00800001 twice)",
    # golden/emd.py
    ("golden/emd.py", "core/NumberReplacer",
     'v = np.asarray(values, dtype=np.uint16).reshape(-1)'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/ReplaceUnaryOperator_USub_UAdd",
     'saving = np.stack([zp * z, zn * z, (zp + zn) * (z - 1)], axis=-1)'):
        EMD_AXIS,
    ("golden/emd.py", "core/ReplaceUnaryOperator_USub_UAdd",
     'zmode = np.argmax(saving, axis=-1).astype(np.int64)  # argmax takes the first of equal maxima'):
        EMD_AXIS,
    ("golden/emd.py", "core/ReplaceUnaryOperator_USub_UAdd",
     'sparse = fmt.sparse & (groups.shape[1] + 2 < saving.max(axis=-1))'):
        EMD_AXIS,
    ("golden/emd.py", "core/ReplaceComparisonOperator_Gt_GtE",
     'short = (e != 0) & ~in_win & (x >= 0) & (x <= fmt.short_max) & (fmt.escape_bits > 0)'):
        "with E = 0, short_max = 2**0 - 2 = -1: x >= 0 and x <= -1 never hold together",
    ("golden/emd.py", "core/ReplaceUnaryOperator_USub_UAdd",
     'hv = np.stack([sparse.astype(np.int64), mu, zmode], axis=-1)'):
        EMD_AXIS,
    ("golden/emd.py", "core/ReplaceUnaryOperator_USub_UAdd",
     'hw = np.stack([np.ones(n, np.int64), np.full(n, 8, np.int64), 2 * sparse.astype(np.int64)], axis=-1)'):
        EMD_AXIS,
    ("golden/emd.py", "core/NumberReplacer#172",
     'return (np.concatenate([hv, vals.reshape(n, -1)], axis=1),'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer#176",
     'np.concatenate([hw, widths.reshape(n, -1)], axis=1))'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'parts_v.append(fv.reshape(-1))'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'parts_w.append(fw.reshape(-1))'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer#190",
     'parts_v.append(np.array([0, 0, 0, tail.size], dtype=np.int64))'):
        "the terminator's third field has width 0: its value is never written (encode_bits drops it)",
    ("golden/emd.py", "core/NumberReplacer#200",
     'tv, tw = _group_fields(tail.reshape(1, -1), fmt)'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'parts_v.append(tv.reshape(-1))'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'parts_w.append(tw.reshape(-1))'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/ReplaceComparisonOperator_Gt_GtE",
     'keep = widths > 0'):
        "widths are never negative, and a kept zero-width field repeats zero times: no bit changes",
    ("golden/emd.py", "core/ReplaceBinaryOperator_FloorDiv_Mul",
     'nbytes = -(-word_bits // 8)'):
        "8 * word_bits bytes: more high zero bytes, cut off by row[:word_bits]",
    ("golden/emd.py", "core/NumberReplacer",
     'return out.reshape(-1)'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer#224",
     'return int(np.dot(chunk.astype(np.int64), 1 << np.arange(width, dtype=np.int64))) if width else 0'):
        "take(0) happens only for the escape field of an E = 0 format, whose value is not read (E = 0: raw)",
    ("golden/emd.py", "core/NumberReplacer#236",
     'zmode = r.take(2, f"group {index} zero mode") if sparse else 0'):
        "a dense group's zmode is read only under `if sparse`; 1 passes the `> ZMODE_SIGNED` check as 0 does",
    ("golden/emd.py", "core/NumberReplacer#288",
     'for part in (full, tail.reshape(1, -1)):'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'e = exponents(values).reshape(-1)'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer",
     'counts = np.bincount(e, minlength=256)'):
        "exponents are 0..255: bin 256 counts nothing, is last in the stable top-3 order and drops out of the entropy",
    ("golden/emd.py", "core/NumberReplacer",
     'e = exponents(values).reshape(-1)'):
        NUMPY_RESHAPE,
    ("golden/emd.py", "core/NumberReplacer#0",
     'return max(0, (n - 1).bit_length())'):
        "n is a group size >= 2, so (n - 1).bit_length() is at least 1 anyway",
    ("golden/emd.py", "core/NumberReplacer#8",
     'group: int = param(32, lo=2, hi=256, pow2=True, doc="values per group G")'):
        "hi=257: group is a power of two, so 256 is still the largest allowed",
    ("golden/emd.py", "core/NumberReplacer#20",
     'hi: int = param(2, lo=0, hi=30, doc="largest delta of the code window (at most 2**delta_bits - 2)")'):
        "hi=31 fails validate() (hi <= 2**delta_bits - 2 <= 30) as the range did",
    # golden/td3.py (TD3Agent.update, Adam.step)
    ("golden/td3.py", "core/ReplaceFalseWithTrue", "p -= upd.astype(F32, copy=False)"):
        "astype to float32 with copy=True gives an equal array; p -= only reads it and nothing keeps it",
    ("golden/td3.py", "core/ReplaceBinaryOperator_BitOr_BitAnd",
     "def update(self, batch, trace: dict | None = None, noise_draw: np.ndarray | None = None) -> dict:"):
        ANNOTATION,
    ("golden/td3.py", "core/ReplaceFalseWithTrue",
     "dsa, _ = self.critic1.backward(dq, cq, num, need_w=False, need_dx_in=True)"):
        "critic 1's weight gradients from the actor loss land in _ and are dropped; Layer.backward and "
        "Numerics keep no state, so computing them changes no result (only time)",
    # golden/pe_array.py
    ("golden/pe_array.py", "core/NumberReplacer#80", "prev_row = tiles[0][0] if tiles else 0"):
        "the else value is taken only without tiles, and then the loop that reads prev_row never runs",
    # hdl/lib/fp.py: widths and slice ends that cannot change a value (see docs/mutation.md)
    ("hdl/lib/fp.py", "core/NumberReplacer", "sig = Signal(16)"):
        "two 8-bit significands multiply to less than 2**16: the 17th bit is always 0 and only sig[0:16] is read",
    ("hdl/lib/fp.py", "core/NumberReplacer#46", MUL_LINE): ONE_ABOVE,
    ("hdl/lib/fp.py", "core/NumberReplacer#50", MUL_LINE): ONE_ABOVE,
    ("hdl/lib/fp.py", "core/NumberReplacer", "exp = Signal(signed(11))"):
        "the exponent sums (multiplier: -127..384; adder: -27..256) already fit signed(11): a 12th bit holds the "
        "same value",
    ("hdl/lib/fp.py", "core/NumberReplacer#114", "a_inf = (ea == 0xFF) & (a[0:23] == 0)"): LOW_NAN,
    ("hdl/lib/fp.py", "core/NumberReplacer#122", "b_inf = (eb == 0xFF) & (b[0:23] == 0)"): LOW_NAN,
    ("hdl/lib/fp.py", "core/ReplaceComparisonOperator_Lt_LtE", "swap = a[0:31] < b[0:31]"):
        "differs only for equal magnitudes: equal operands add alike in either order, opposite signs cancel to "
        "total = 0 (+0) whichever is big; NaN, Inf and zero operands take branches that read a and b",
    ("hdl/lib/fp.py", "core/NumberReplacer", "big, small = Signal(32), Signal(32)"):
        "driven from the 32-bit a or b: bit 32 is 0, and only bits 0..31 are read",
    ("hdl/lib/fp.py", "core/NumberReplacer#162", "e_big, e_small = big[23:31], small[23:31]"):
        "e_small gains the sign as bit 8 (+256); diff is 8 bits, so e_big - e_small is the same modulo 256",
    ("hdl/lib/fp.py", "core/NumberReplacer#174",
     "m_big = Cat(Const(0, 3), big[0:23], Const(1, 1))  # 27 bits: 1.fraction then G, R, S"): ONE_ABOVE,
    ("hdl/lib/fp.py", "core/NumberReplacer#186", "m_small = Cat(Const(0, 3), small[0:23], Const(1, 1))"): ONE_ABOVE,
    ("hdl/lib/fp.py", "core/NumberReplacer", "diff = Signal(8)"):
        "|big| >= |small| gives e_big >= e_small: the difference is 0..255, the 9th bit always 0",
    ("hdl/lib/fp.py", "core/NumberReplacer", "shift = Signal(5)"): "the Mux caps shift at 31: bit 5 is always 0",
    ("hdl/lib/fp.py", "core/ReplaceComparisonOperator_Gt_GtE", "m.d.comb += shift.eq(Mux(diff > 31, 31, diff))"):
        "at diff == 31 both give shift = 31",
    ("hdl/lib/fp.py", "core/NumberReplacer", "aligned = Signal(27)"):
        "m_small >> shift has 27 bits: bit 27 is 0, so the sum and the sticky test see the same number",
    ("hdl/lib/fp.py", "core/NumberReplacer#200", "lost = (aligned << shift)[0:27] != m_small"):
        "(aligned << shift) is m_small with its low shift bits cleared: bit 27 is 0, as m_small's",
    ("hdl/lib/fp.py", "core/NumberReplacer", "total = Signal(28)"):
        "m_big + aligned_s < 2**28 and m_big >= aligned_s when subtracting: a 29th bit is always 0",
    ("hdl/lib/fp.py", "core/NumberReplacer#218", T1_LINE):
        "total is 28 bits: Amaranth clamps a slice end past the width as Python does, total[2:29] is total[2:28]",
    ("hdl/lib/fp.py", "core/NumberReplacer#222", T1_LINE):
        "this arm is taken without carry, where total[27] = 0, and t1 is 27 bits: the extra bit is dropped",
    ("hdl/lib/fp.py", "core/NumberReplacer", "norm = Signal(27)"):
        "(t1 << lzc)[0:27] has 27 bits: bit 27 is 0 and mant = norm[3:27] reads below it",
    ("hdl/lib/fp.py", "core/NumberReplacer#228", "m.d.comb += norm.eq((t1 << lzc)[0:27])"):
        "norm is 27 bits: the assignment drops bit 27",
    ("hdl/lib/fp.py", "core/NumberReplacer#234", "mant = norm[3:27]"):
        "norm is 27 bits: Amaranth clamps norm[3:28] to norm[3:27]",
    ("hdl/lib/fp.py", "core/NumberReplacer", "mant_r = Signal(25)"):
        "mant < 2**24 plus a rounding 1 is at most 2**24: bit 25 is always 0",
    ("hdl/lib/fp.py", "core/NumberReplacer", "exp_r = Signal(signed(11))"):
        "exp + over lies in -27..257, within signed(11): a 12th bit holds the same value",
    ("hdl/lib/fp.py", "core/NumberReplacer#250", "frac = Mux(over, mant_r[1:24], mant_r[0:23])"):
        "read only when over, i.e. mant_r = 2**24 exactly: mant_r[1:24] and mant_r[2:24] are both 0",
    ("hdl/lib/fp.py", "core/NumberReplacer", 'u = Signal(32, name=f"{name}_ftz")'):
        "driven from the 32-bit x: bit 32 is 0, and u + 0x7FFF + u[16] is the same number",
    ("hdl/lib/fp.py", "core/NumberReplacer#312", "m.d.comb += u.eq(Mux(exp == 0, Cat(Const(0, 31), x[31]), x))"):
        "a flushed input becomes sign | 1: adding 0x7FFF (u[16] = 0) stays below bit 16, rounded is the same",
    ("hdl/lib/fp.py", "core/NumberReplacer", 'rounded = Signal(17, name=f"{name}_r")'):
        "(u + 0x8000) >> 16 is below 2**17: bit 17 is always 0, and r16 reads bits 0..15",
    ("hdl/lib/fp.py", "core/NumberReplacer#332", R16_LINE):
        "also needs the sign bit 0: a rounded exponent 0 comes only from a flushed input (rounding never lowers "
        "the exponent), and then rounded = sign << 15, which both arms output",
    ("hdl/lib/fp.py", "core/NumberReplacer#342", R16_LINE): "r16 is 16 bits: the assignment drops bit 16",
    ("golden/config.py", "core/ReplaceBinaryOperator_BitOr_BitAnd",
     "def __init__(self, message: str, *, name: str | None = None, value=None, allowed: str | None = None):"):
        "an annotation: never evaluated (from __future__ import annotations)",
    ("golden/config.py", "core/ReplaceBinaryOperator_Mul_Div",
     "def __init__(self, message: str, *, name: str | None = None, value=None, allowed: str | None = None):"):
        KEYWORD_ONLY,
    ("golden/config.py", "core/ReplaceBinaryOperator_Mul_Div",
     "def param(default=dataclasses.MISSING, *, lo=None, hi=None, pow2: bool = False, choices=None,"):
        KEYWORD_ONLY,
    ("golden/config.py", "core/ReplaceBinaryOperator_Mul_Div",
     "def _fields_dict(self, *, features_only: bool = False) -> dict[str, Any]:"): KEYWORD_ONLY,
    ("golden/config.py", "core/ReplaceBinaryOperator_Mul_Div",
     "def to_dict(self, *, features_only: bool = False) -> dict[str, Any]:"): KEYWORD_ONLY,
    ("golden/config.py", "core/ReplaceBinaryOperator_Mul_Div",
     "def to_json(self, *, features_only: bool = False) -> str:"): KEYWORD_ONLY,
    ("golden/config.py", "core/ReplaceFalseWithTrue",
     "def _fields_dict(self, *, features_only: bool = False) -> dict[str, Any]:"):
        "the default is never used: both callers pass features_only",
    ("golden/config.py", "core/RemoveDecorator", "@dataclasses.dataclass(frozen=True)"):
        "the base Config has no fields; every subclass is itself a frozen dataclass",
    ("golden/config.py", "core/AddNot", "if typ in (bool, str):"):
        "for bool, str and every other class the next branch gives the same isinstance; "
        "no config has a non-class annotation",
    ("golden/transpose.py", "core/ReplaceTrueWithFalse", "@dataclasses.dataclass(frozen=True)"):
        FROZEN,
    ("golden/transpose.py", "core/NumberReplacer", "return int(self.bitmap.shape[0])"):
        "the bitmap is square (pack rejects anything else): shape[1] is the same",
    ("golden/transpose.py", "core/NumberReplacer", "bits = np.asarray(bitmap, dtype=bool).reshape(-1)"):
        NUMPY_RESHAPE,
    ("golden/transpose.py", "core/NumberReplacer#48",
     'raw = (word & ((1 << n) - 1)).to_bytes((n + 7) // 8, "little")'):
        "(n + 8) // 8 bytes: at most one more zero byte, cut off by [:n]",
    ("golden/transpose.py", "core/ReplaceBinaryOperator_FloorDiv_Mul",
     'raw = (word & ((1 << n) - 1)).to_bytes((n + 7) // 8, "little")'):
        "(n + 7) * 8 bytes: more zero bytes, cut off by [:n]",
    ("golden/transpose.py", "core/ReplaceFalseWithTrue", "flag = False"):
        "the first beat either is a header (which clears the flag) or a stray value beat (which raises it)",
    ("golden/transpose.py", "core/NumberReplacer", "need = got = 0"):
        "both are set by every header before a value beat can read them",
    ("golden/transpose.py", "core/NumberReplacer", "mask = (1 << (tile * tile)) - 1"):
        "int_to_bitmap masks the header to tile*tile bits itself",
    ("golden/transpose.py", "core/ReplaceBinaryOperator_LShift_RShift", "mask = (1 << (tile * tile)) - 1"):
        "int_to_bitmap masks the header to tile*tile bits itself",
    ("golden/transpose.py", "core/NumberReplacer", "limit = min(64, self.cells)"):
        "lanes is a power of two <= 64 by its own range: a limit of 65 admits nothing more",
    ("golden/transpose.py", "core/NumberReplacer#154", "side = tiles[0].shape[0]"):
        "tiles are square: shape[1] is the same",
    ("golden/transpose.py", "core/NumberReplacer#12",
     'lanes: int = param(8, lo=1, hi=64, pow2=True, doc="bf16 values per value beat (at most tile*tile)")'):
        "hi=65: lanes is a power of two, so 64 is still the largest allowed",
    ("golden/transpose.py", "core/NumberReplacer#118",
     "released = last_out[k - buffers] if k >= buffers else -1  # the bank is free from here"):
        "-2: released is only compared with max(t, ...) and t >= 0",
    ("golden/bf16.py", "core/NumberReplacer", "r = np.where((r & 0x7F80) == 0, r & 0x8000, r)"):
        "inputs are flushed first, so an exponent-0 r is +-0, whose bit 0 is 0 too",
    ("golden/bf16.py", "core/ReplaceComparisonOperator_Lt_LtE", "swap = mag_a < mag_b"):
        "equal magnitudes: the operands are equal (same sign) or cancel to +0 either way",
    ("golden/bf16.py", "core/NumberReplacer", "d = np.minimum(e_big - e_small, 31)"):
        "a shift of 31 or 32 clears the 27-bit significand alike, the sticky bit set",
    ("golden/bf16.py", "core/NumberReplacer", "for _ in range(27):"):
        "the sum fits in 27 bits: a 28th step adds (t > 0) = 0",
    ("golden/bf16.py", "core/NumberReplacer", "b = np.asarray(b, dtype=np.uint16).reshape(-1)"): NUMPY_RESHAPE,
    ("golden/pe_array.py", "core/ReplaceTrueWithFalse", "@dataclasses.dataclass(frozen=True)"): FROZEN,
    ("golden/pe_array.py", "core/NumberReplacer", "for i, v in enumerate(np.asarray(lanes).reshape(-1)):"):
        NUMPY_RESHAPE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x3F800000, 0xBF800000, 0x00000000, "x + (-x) = +0"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x80000000, 0x80000000, 0x80000000, "-0 + -0 = -0"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x7F800000, 0xFF800000, 0x7FC00000, "Inf - Inf = NaN"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x7F7FFFFF, 0x7F7FFFFF, 0x7F800000, "overflow gives Inf"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x00800001, 0x80800000, 0x00000000, "a subnormal result flushes (sign +)"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x80800001, 0x00800000, 0x80000000, "... keeping its sign"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x00FFFFFF, 0x80800000, 0x00000000, "exponent field 0 after normalising: flushed"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x00C00000, 0x80800000, 0x00000000, "exactly half the smallest normal: flushed"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x00800000, 0x80000000, 0x00800000, "the smallest normal + -0 stays"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer",
     '(0x01000000, 0x80800000, 0x00800000, "2^-125 - 2^-126 lands on the smallest normal"),'): TEST_TABLE,
    ("golden/bf16.py", "core/NumberReplacer#102", "out = (sign << 31) | (np.clip(exp, 0, 255) << 23) | frac"):
        "exp <= 0 is overridden by the flush line below",
    ("golden/bf16.py", "core/NumberReplacer#104", "out = (sign << 31) | (np.clip(exp, 0, 255) << 23) | frac"):
        "exp >= 255 is overridden by the infinity line below",
    ("golden/bf16.py", "core/NumberReplacer#208",
     "out = (s_big << 31) | (np.clip(exp, 0, 255) << 23) | (mant & 0x7FFFFF)"):
        "exp <= 0 is overridden by the flush line below",
    ("golden/bf16.py", "core/NumberReplacer#210",
     "out = (s_big << 31) | (np.clip(exp, 0, 255) << 23) | (mant & 0x7FFFFF)"):
        "exp >= 255 is overridden by the infinity line below",
    ("golden/bf16.py", "core/NumberReplacer", "lost = (m_small & ((np.int64(1) << d) - 1)) != 0"):
        "the significand's low 3 bits are 0 and bit d is the aligned value's own LSB: the sticky OR is unchanged",
    ("golden/bf16.py", "core/NumberReplacer", "lzc = np.where(total == 0, 0, 27 - nbits)"):
        "a zero total is forced to +0 below, whatever its shift",
    ("golden/bf16.py", "core/NumberReplacer", "mant = np.where(over == 1, mant >> 1, mant)"):
        "after a rounding carry mant is exactly 2**24, whose 23 fraction bits are 0 shifted or not",
    ("golden/bf16.py", "core/ReplaceBinaryOperator_RShift_LShift", "mant = np.where(over == 1, mant >> 1, mant)"):
        "after a rounding carry mant is exactly 2**24, whose 23 fraction bits are 0 shifted or not",
    ("golden/bf16.py", "core/NumberReplacer", "out = np.where(a_zero & b_zero, a & b & 0x80000000, out)"):
        "a and b were flushed first: a zero operand has no low bits",
    ("golden/bf16.py", "core/NumberReplacer", "a = np.asarray(a, dtype=np.uint16).reshape(-1)"): NUMPY_RESHAPE,
    ("golden/bf16.py", "core/NumberReplacer", "b = np.asarray(b, dtype=np.uint16).reshape(-1)"): NUMPY_RESHAPE,
    ("golden/bf16.py", "core/ReplaceBinaryOperator_BitOr_BitAnd",
     "def gemm_exact(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:"):
        "an annotation: never evaluated (from __future__ import annotations)",
    ("golden/bf16.py", "core/ReplaceComparisonOperator_GtE_Gt", SAFE_LINE): SLOW_PATH,
    ("golden/bf16.py", "core/ReplaceUnaryOperator_USub_UAdd", SAFE_LINE): SLOW_PATH,
    ("golden/bf16.py", "core/NumberReplacer#488", SAFE_LINE): SLOW_PATH,
    ("golden/pe_array.py", "core/ReplaceBinaryOperator_Mul_Div",
     'def run(mode: str, a, b, *, k: int, bitmap=None, transpose: bool = False) -> np.ndarray:'): KEYWORD_ONLY,
    ("golden/pe_array.py", "core/ReplaceBinaryOperator_Mul_Div",
     'def make_job(mode: str, shape: ArrayShape, a, b, *, bitmap=None, transpose: bool = False,'): KEYWORD_ONLY,
    ("golden/pe_array.py", "core/ReplaceBinaryOperator_BitOr_BitAnd",
     "useful_macs: int | None = None) -> CycleReport:"): ANNOTATION,
    ("golden/pe_array.py", "core/ReplaceBinaryOperator_BitOr_BitAnd",
     'round_bf16: bool = False, max_blocks: int | None = None, bank: int | None = None) -> Job:'): ANNOTATION,
    ("golden/gst.py", "core/NumberReplacer", 'order = np.argsort(-scores.reshape(-1), kind="stable")'):
        NUMPY_RESHAPE,
    ("golden/gst.py", "core/ReplaceComparisonOperator_GtE_Gt", "if t >= t_end:"):
        "at t == t_end the formula gives s_final + (s_init - s_final) * 0.0, which is s_final exactly",
    ("golden/gst.py", "core/NumberReplacer",
     "self.s = round(self.s, 10)  # keep the scripted sequence exact (no 0.30000000000000004)"):
        "the sums of 0.05 steps are off by ~1e-16: rounding to 11 digits lands on the same double as to 10",
    ("golden/mfec.py", "core/NumberReplacer",
     'self.check(self.acc_width <= 62, "acc_width", "<= 62 (it follows from guard, n and max_groups)")'):
        "unreachable: the ranges of guard, n and max_groups give at most 55 bits",
    ("golden/mfec.py", "core/ReplaceComparisonOperator_LtE_Lt",
     'self.check(self.acc_width <= 62, "acc_width", "<= 62 (it follows from guard, n and max_groups)")'):
        "unreachable: the ranges of guard, n and max_groups give at most 55 bits",
    ("golden/mfec.py", "core/NumberReplacer", "gmax = np.where(cand, s, -1).max(axis=-1)"):
        "the -1 of a group without candidates never shows: max with s_run >= 0, or masked by has_g/has_new",
    ("golden/mfec.py", "core/ReplaceUnaryOperator_USub_UAdd#2", "gmax = np.where(cand, s, -1).max(axis=-1)"):
        "the -1 of a group without candidates never shows: max with s_run >= 2, or masked by has_g/has_new",
    ("golden/mfec.py", "core/ReplaceComparisonOperator_Gt_GtE", "return n + (m > 0)"):
        "differs only for 0, whose width no result uses (an exact zero sum is forced to +0)",
    ("golden/mfec.py", "core/NumberReplacer", "sign = (acc < 0).astype(np.int64)"):
        "differs only for acc == 0, forced to +0 (or to the AND of signs when nothing was added)",
    ("golden/mfec.py", "core/ReplaceComparisonOperator_Lt_LtE", "sign = (acc < 0).astype(np.int64)"):
        "differs only for acc == 0, forced to +0 (or to the AND of signs when nothing was added)",
    ("golden/mfec.py", "core/ReplaceComparisonOperator_Gt_GtE",
     "half = np.where(r > 0, np.int64(1) << np.maximum(r - 1, 0), 0)"):
        "half is only used where r > 0 (up is masked by r > 0)",
    ("golden/mfec.py", "core/NumberReplacer#178", "half = np.where(r > 0, np.int64(1) << np.maximum(r - 1, 0), 0)"):
        "half is only used where r > 0 (up is masked by r > 0)",
    ("golden/mfec.py", "core/NumberReplacer", "q = np.where(carry == 1, q >> 1, q)"):
        "after a carry q is exactly 2**f, whose fraction bits are 0 shifted or not",
    ("golden/mfec.py", "core/ReplaceBinaryOperator_RShift_LShift", "q = np.where(carry == 1, q >> 1, q)"):
        "after a carry q is exactly 2**f, whose fraction bits are 0 shifted or not",
    ("golden/mfec.py", "core/NumberReplacer#192", OUT_LINE):
        "e_fin <= 0 only when e_out <= 0, which the FTZ line overrides",
    ("golden/mfec.py", "core/NumberReplacer#194", OUT_LINE): "e_fin >= 255 is overridden by the infinity line",
    ("golden/mfec.py", "core/NumberReplacer#14",
     'n: int = param(16, lo=2, hi=64, pow2=True, doc="group size: products whose exponents are compared together")'):
        "hi=65: n is a power of two, so 64 is still the largest allowed",
    ("golden/mfec.py", "core/NumberReplacer#218",
     "return np.where(ok, np.abs(y - ref) / np.abs(np.where(ok, ref, 1.0)), np.nan)"):
        "the 1.0 only avoids dividing by zero where the result is replaced by NaN",
}


def session_name(path: str) -> str:
    """``golden/mfec.py`` -> ``golden_mfec``: the stem of the file's config and session."""
    return path.removesuffix(".py").replace("/", "_")


def kept(operator: str, occurrence: int) -> bool:
    """Whether a cosmic-ray mutant is in the reduced operator set (see the module docstring)."""
    name = operator.split("/", 1)[1]
    if name.startswith("NumberReplacer"):
        return occurrence % 2 == 0  # each constant yields (+1, -1) in that order: keep +1
    match = re.fullmatch(r"(\w+?)_(\w+)_(\w+)", name)
    if match and match[1] in REPLACEMENTS:
        return REPLACEMENTS[match[1]].get(match[2]) == match[3]
    return True


def function_lines(path: Path, names: list[str]) -> list[tuple[int, int]]:
    """The (first, last) line ranges of the functions ``names`` (``Class.method`` or ``function``)."""
    ranges, tree = [], ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", [])
        for child in body if isinstance(body, list) else []:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                owner = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
                if owner + child.name in names:
                    ranges.append((child.lineno, child.end_lineno))
    if len(ranges) != len(names):
        raise SystemExit(f"functions={names} not all found in {path}; found {len(ranges)}")
    return ranges


def copy_tree() -> None:
    """Refresh the copy the mutants run in (the working tree is never mutated)."""
    TREE.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source, target = ROOT / name, TREE / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)


def write_config(path: str, timeout: float) -> Path:
    tests, _ = SCOPE[path]
    config = WORK / f"{session_name(path)}.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{path}"\n'
        f"timeout = {timeout:.1f}\n"
        "excluded-modules = []\n"
        f'test-command = "{PYTEST} {" ".join(tests)}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n')
    return config


def cosmic_ray(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "cosmic-ray"), *args], cwd=TREE, check=True)


def baseline_seconds(path: str) -> float:
    """Run the file's tests once on the unmutated copy: they must pass, and their time sets the timeout."""
    tests, _ = SCOPE[path]
    start = time.monotonic()
    proc = subprocess.run(f"{PYTEST} {' '.join(tests)}", shell=True, cwd=TREE, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{path}: its tests fail before any mutation:\n{proc.stdout[-2000:]}")
    return time.monotonic() - start


def init_session(path: str, config: Path, db: Path) -> None:
    """Create the session and mark as skipped the mutants outside the reduced set or the functions."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    cosmic_ray("init", str(config), str(db))
    _, functions = SCOPE[path]
    ranges = function_lines(TREE / path, functions) if functions else None
    with use_db(str(db), WorkDB.Mode.open) as work_db:
        skip = []
        for item in work_db.work_items:
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            inside = ranges is None or any(lo <= line <= hi for lo, hi in ranges)
            if not (inside and kept(mutation.operator_name, mutation.occurrence)):
                skip.append(item.job_id)
        work_db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output="outside the reduced operator set or scope"))


def counts(db: Path) -> tuple[int, int]:
    """(finished, total) mutants of a session, skipped ones left out."""
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(db), WorkDB.Mode.open) as work_db:
        results = [r for _, r in work_db.completed_work_items]
        skipped = sum(r.worker_outcome == "skipped" for r in results)
        return len(results) - skipped, work_db.num_work_items - skipped


def summarize(path: str, db: Path, runtime_s: float) -> dict:
    """The file's entry in mutation.json."""
    from cosmic_ray.work_db import WorkDB, use_db

    lines = (ROOT / path).read_text().splitlines()
    stripped = {line.strip() for line in lines}
    for (where, operator, text) in EQUIVALENT:
        if where == path and text not in stripped:
            print(f"warning: {path}: equivalent mutant {operator} names a line that is gone: {text!r}")
    killed = survived = equivalent = incompetent = 0
    survivors, equivalents = [], []
    with use_db(str(db), WorkDB.Mode.open) as work_db:
        pending = len(work_db.pending_work_items)
        for item, result in work_db.completed_work_items:
            if result.worker_outcome == "skipped":
                continue
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            text = lines[line - 1].strip() if line <= len(lines) else ""
            short = f"{path}:{line} {mutation.operator_name.split('/', 1)[1]}#{mutation.occurrence}: {text[:80]}"
            if result.test_outcome == "incompetent":
                incompetent += 1  # the mutant does not even import: not a mutant at all
            elif result.test_outcome != "survived":
                killed += 1
            elif reason := (EQUIVALENT.get((path, mutation.operator_name, text))
                            or EQUIVALENT.get((path, f"{mutation.operator_name}#{mutation.occurrence}", text))):
                equivalent += 1
                equivalents.append(f"{short} -- {reason}")
            else:
                survived += 1
                survivors.append(short)
    mutants = killed + survived + equivalent
    score = killed / (killed + survived) if killed + survived else None
    tests, functions = SCOPE[path]
    return {"status": "complete" if pending == 0 else f"partial ({pending} mutants not run)",
            "tests": tests, "functions": functions, "mutants": mutants, "killed": killed,
            "survived": survived, "equivalent": equivalent, "incompetent": incompetent,
            "score": None if score is None else round(score, 4), "runtime_s": round(runtime_s, 1),
            "date": utc_now(), "survivors": sorted(survivors), "equivalents": sorted(equivalents)}


def forget_survivors(db: Path) -> None:
    """Drop the survivors' results from a session so that ``exec`` runs them again (new tests)."""
    import sqlite3

    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")


def run_file(path: str, fresh: bool, retest: bool = False) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / f"{session_name(path)}.sqlite"
    base = baseline_seconds(path)
    config = write_config(path, timeout=max(20.0, 10 * base))
    if fresh or not db.exists():
        db.unlink(missing_ok=True)
        init_session(path, config, db)
    elif retest:
        forget_survivors(db)
    done, total = counts(db)
    print(f"{path}: {total} mutants ({done} already done), tests {base:.1f} s each", flush=True)
    stop = threading.Event()

    def progress():
        while not stop.wait(15):
            now, _ = counts(db)
            print(f"  {path}: {now}/{total} ({time.monotonic() - start:.0f} s)", flush=True)

    start = time.monotonic()
    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    try:
        cosmic_ray("exec", str(config), str(db))
    finally:
        stop.set()
    runtime = time.monotonic() - start
    previous = load_results().get("files", {}).get(path, {})
    if done and isinstance(previous, dict) and "runtime_s" in previous:
        runtime += previous["runtime_s"]  # a resumed session: add the time of the earlier part
    return summarize(path, db, runtime)


def load_results() -> dict:
    path = ROOT / "bench" / "results" / "mutation.json"
    return json.loads(path.read_text()) if path.exists() else {}


def markdown(files: dict) -> str:
    rows = ["# Mutation testing (bench/mutation.py, cosmic-ray)", "",
            "| file | tests | mutants | killed | survived | equivalent | score | run time |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for path, entry in files.items():
        tests = ", ".join(Path(t).name for t in SCOPE[path][0])
        if entry == "not run":
            rows.append(f"| {path} | {tests} | not run | | | | | |")
            continue
        score = "-" if entry["score"] is None else f"{100 * entry['score']:.1f} %"
        rows.append(f"| {path} | {tests} | {entry['mutants']} | {entry['killed']} | {entry['survived']} | "
                    f"{entry['equivalent']} | {score} | {entry['runtime_s']:.0f} s |")
    rows += ["", "Score: killed / (killed + survived); equivalent mutants are argued in docs/mutation.md."]
    survivors = [s for e in files.values() if e != "not run" for s in e["survivors"]]
    if survivors:
        rows += ["", "## Survivors", ""] + [f"- `{s}`" for s in survivors]
    equivalents = [s for e in files.values() if e != "not run" for s in e["equivalents"]]
    if equivalents:
        rows += ["", "## Equivalent mutants", ""]
        rows += ["- `{}`: {}".format(*s.split(" -- ", 1)) for s in equivalents]
    return "\n".join(rows)


DOC = ROOT / "docs" / "mutation.md"


def doc_tables(files: dict) -> dict[str, str]:
    """The generated tables of docs/mutation.md, by marker: per-file results, survivors, equivalents."""
    results = ["| file | mutants | killed | survived | equivalent | score | run time | status |",
               "|---|---:|---:|---:|---:|---:|---:|---|"]
    survivors, equivalents = [], ["| file | line | mutation | why it cannot change a result |", "|---|---:|---|---|"]
    for path, entry in files.items():
        if entry == "not run":
            results.append(f"| `{path}` | not run | | | | | | |")
            continue
        score = "-" if entry["score"] is None else f"{100 * entry['score']:.1f} %"
        results.append(f"| `{path}` | {entry['mutants']} | {entry['killed']} | {entry['survived']} | "
                       f"{entry['equivalent']} | {score} | {entry['runtime_s']:.0f} s | {entry['status']} |")
        survivors += [f"* `{s}`" for s in entry["survivors"]]
        for item in entry["equivalents"]:
            where, reason = item.split(" -- ", 1)
            line, operator = re.fullmatch(r"\S+:(\d+) (\w+)#\d+: .*", where).groups()
            reason = reason.replace("|", r"\|")  # a | in the reason would end the table cell
            equivalents.append(f"| `{path}` | {line} | {operator} | {reason} |")
    return {"results": "\n".join(results), "survivors": "\n".join(survivors or ["(none)"]),
            "equivalents": "\n".join(equivalents)}


def update_doc(files: dict) -> None:
    """Rewrite the generated tables of docs/mutation.md (between ``<!-- name -->`` and ``<!-- /name -->``)."""
    text = DOC.read_text()
    for name, table in doc_tables(files).items():
        text = re.sub(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", lambda m: m[1] + table + m[2], text,
                      count=1, flags=re.S)
    DOC.write_text(text)


def main(argv=None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--files", nargs="+", default=list(SCOPE), choices=list(SCOPE), metavar="FILE",
                        help=f"files to mutate (default: all in scope: {' '.join(SCOPE)})")
    parser.add_argument("--fresh", action="store_true", help="discard saved sessions and start over")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="run the survivors of the saved sessions again (after adding tests)")
    parser.add_argument("--report", action="store_true", help="only rewrite the results from saved sessions")
    args = parser.parse_args(argv)

    previous = load_results().get("files", {})
    files = {path: previous.get(path, "not run") for path in SCOPE}
    if not args.report:
        copy_tree()
    for path in args.files:
        db = WORK / f"{session_name(path)}.sqlite"
        if args.report:
            if db.exists():
                runtime = previous.get(path, {}).get("runtime_s", 0.0) if previous.get(path) != "not run" else 0.0
                files[path] = summarize(path, db, runtime)
            continue
        files[path] = run_file(path, args.fresh, args.retest_survivors)
        entry = files[path]
        print(f"{path}: {entry['killed']}/{entry['killed'] + entry['survived']} killed, "
              f"{entry['equivalent']} equivalent, {entry['runtime_s']:.0f} s", flush=True)
        write_results("mutation", {**run_info(packages=("numpy", "cosmic-ray", "pytest")), "files": files},
                      markdown(files))
    write_results("mutation", {**run_info(packages=("numpy", "cosmic-ray", "pytest")), "files": files},
                  markdown(files))
    update_doc(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
