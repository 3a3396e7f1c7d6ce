"""bf16 multiply-accumulate processing element with stream ports.

The PE turns a stream of operand pairs into a stream of fp32 dot products. Each input beat
carries ``a`` and ``b`` (bf16) and two control bits:

* ``clear``: this beat starts a new dot product (the accumulator takes this product as is);
* ``last``: after adding this product, send the accumulator on the output stream.

A beat with both bits is a one-element dot product. Between a ``clear`` and a ``last`` the PE
computes exactly ``golden.bf16.dot`` (fp32, RNE at each add, FTZ, canonical NaN).

Pipeline (``mul_stages`` = S registers before the accumulator)::

    S = 0:  i -> [mul -> add -> acc]                       latency 1
    S = 1:  i -> [mul] -> reg -> [add -> acc]              latency 2 (default)
    S = 2:  i -> reg -> [mul] -> reg -> [add -> acc]       latency 3

Latency is counted in clock edges from the transfer of the ``last`` beat to ``o.valid`` rising.
The accumulate stage is one cycle, so the PE takes one beat per cycle. The result leaves through
a :class:`~hdl.lib.stream.StreamRegister`. Back-pressure: the pipeline moves as one; it stops
only when a finished result would overwrite an output that is still waiting (the register
refuses it). Nothing is lost or reordered.
"""

import dataclasses

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import BlockConfig, param
from .lib.fp import FP32_NEG_ZERO, Bf16Multiplier, Fp32Adder
from .lib.stream import StreamRegister

__all__ = ["PEConfig", "PE", "pe_input_layout"]


@dataclasses.dataclass(frozen=True)
class PEConfig(BlockConfig):
    """Parameters of :class:`PE`.

    Parameters
    ----------
    mul_stages : int
        Pipeline registers between the input and the accumulator (0, 1 or 2). More stages
        shorten the critical path through the multiplier at the cost of latency and flops.
    """

    PRESETS = {
        "tiny": {"mul_stages": 0},
        "default": {"mul_stages": 1},
        "paper": {"mul_stages": 2},
    }

    mul_stages: int = param(1, lo=0, hi=2, doc="pipeline registers between the input and the accumulator")

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` beat to its result being valid."""
        return self.mul_stages + 1


def pe_input_layout() -> data.StructLayout:
    """Layout of one input beat: bf16 ``a`` and ``b``, then ``clear`` and ``last``."""
    return data.StructLayout({"a": 16, "b": 16, "clear": 1, "last": 1})


class PE(wiring.Component):
    """bf16 x bf16 multiply, fp32 accumulate; one beat per cycle.

    Parameters
    ----------
    cfg : PEConfig

    Members
    -------
    i : In(stream.Signature(pe_input_layout()))
        Operand beats.
    o : Out(stream.Signature(32))
        One fp32 bit pattern per ``last`` beat.
    """

    def __init__(self, cfg: PEConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(pe_input_layout())),
            "o": Out(stream.Signature(32)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Bf16Multiplier()
        m.submodules.add = add = Fp32Adder()

        # The whole pipeline advances together unless a finished result would overwrite an
        # output beat that has not been taken yet.
        advance = Signal()
        m.d.comb += self.i.ready.eq(advance)

        valid, a, b = self.i.valid, self.i.p.a, self.i.p.b
        clear, last = self.i.p.clear, self.i.p.last
        if self.cfg.mul_stages >= 2:
            valid, a, b, clear, last = self._register(m, advance, "in", valid=valid, a=a, b=b,
                                                      clear=clear, last=last)
        m.d.comb += [mul.a.eq(a), mul.b.eq(b)]
        product = mul.product
        if self.cfg.mul_stages >= 1:
            valid, product, clear, last = self._register(m, advance, "prod", valid=valid,
                                                         product=product, clear=clear, last=last)

        acc = Signal(32, init=FP32_NEG_ZERO)
        m.d.comb += [add.a.eq(acc), add.b.eq(product)]
        result = Mux(clear, product, add.sum)

        # Output register: a finished result enters it when it is free or being emptied.
        m.submodules.out = out = StreamRegister(32)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        m.d.comb += [out.i.valid.eq(valid & last), out.i.payload.eq(result),
                     advance.eq(~(valid & last) | out.i.ready)]
        with m.If(valid & advance):
            m.d.sync += acc.eq(result)
        return m

    @staticmethod
    def _register(m: Module, enable, prefix: str, **values):
        """One pipeline register bank for ``values`` (in order), loaded when ``enable``."""
        out = []
        for name, value in values.items():
            reg = Signal.like(value, name=f"{prefix}_{name}") if name != "valid" else Signal(name=f"{prefix}_valid")
            with m.If(enable):
                m.d.sync += reg.eq(value)
            out.append(reg)
        return out
