"""Primitives every block and the top are built from (``docs/building.md`` shows how).

========================  =====================================================================
``hdl.lib.fp``            bf16 multiplier, fp32 adder, fp32 -> bf16 rounding (``docs/numerics.md``)
``hdl.lib.reduce``        popcount, leading zeros, first set bit, OR tree, mux tree
``hdl.lib.sram``          :class:`Sram`, the memory macro synthesis keeps as a black box
``hdl.lib.stream``        :class:`StreamRegister`, :class:`SkidBuffer`, :class:`Queue`
``hdl.lib.counter``       wrap-around counters
========================  =====================================================================
"""

from .counter import WrapCounter, wrap_increment
from .fp import FP32_INF, FP32_NEG_ZERO, FP32_QNAN, Bf16Multiplier, Fp32Adder, round_bf16
from .reduce import first_set, leading_zeros, mux_tree, or_tree, popcount
from .sram import Sram
from .stream import Queue, SkidBuffer, StreamRegister

__all__ = ["Bf16Multiplier", "Fp32Adder", "round_bf16", "FP32_INF", "FP32_NEG_ZERO", "FP32_QNAN",
           "popcount", "leading_zeros", "first_set", "or_tree", "mux_tree", "Sram",
           "StreamRegister", "SkidBuffer", "Queue", "WrapCounter", "wrap_increment"]
