"""Combinational bf16 / fp32 arithmetic shared by the compute blocks.

The units implement the policy of ``docs/numerics.md`` bit for bit, and each mirrors a golden
function step by step: :class:`Bf16Multiplier` is ``golden.bf16.bf16_mul`` and
:class:`Fp32Adder` is ``golden.bf16.fp32_add_reference``. They are plain combinational
components; the blocks that use them decide where the pipeline registers go.
"""


from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import bf16 as golden

from .reduce import leading_zeros

__all__ = ["Bf16Multiplier", "Fp32Adder", "round_bf16", "FP32_QNAN", "FP32_INF", "FP32_NEG_ZERO"]

# The golden model's patterns, as plain ints for Amaranth: one definition of each.
FP32_QNAN = int(golden.FP32_QNAN)
FP32_INF = int(golden.FP32_POS_INF)
FP32_NEG_ZERO = int(golden.FP32_NEG_ZERO)  # the additive identity every accumulator starts from


class Bf16Multiplier(wiring.Component):
    """Exact bf16 x bf16 -> fp32 product (combinational).

    Members
    -------
    a, b : In(16)
        bf16 bit patterns. Subnormals read as zero.
    product : Out(32)
        fp32 bit pattern: exact within fp32's normal range, signed Inf on overflow, signed zero
        on underflow, canonical NaN for NaN operands and 0 x Inf.
    """

    a: In(16)
    b: In(16)
    product: Out(32)

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        sign = a[15] ^ b[15]
        ea, eb = a[7:15], b[7:15]
        fa, fb = a[0:7], b[0:7]
        a_zero, b_zero = ea == 0, eb == 0
        a_max, b_max = ea == 0xFF, eb == 0xFF
        a_nan, b_nan = a_max & (fa != 0), b_max & (fb != 0)
        a_inf, b_inf = a_max & (fa == 0), b_max & (fb == 0)

        sig = Signal(16)
        m.d.comb += sig.eq(Cat(fa, Const(1, 1)) * Cat(fb, Const(1, 1)))
        carry = sig[15]  # significand product in [2, 4): one more exponent step
        exp = Signal(signed(11))
        m.d.comb += exp.eq(ea + eb - 127 + carry)
        frac = Mux(carry, Cat(Const(0, 8), sig[0:15]), Cat(Const(0, 9), sig[0:14]))

        with m.If(a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)):
            m.d.comb += self.product.eq(FP32_QNAN)
        with m.Elif(a_inf | b_inf | (exp >= 255)):
            m.d.comb += self.product.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
        with m.Elif(a_zero | b_zero | (exp <= 0)):
            m.d.comb += self.product.eq(Cat(Const(0, 31), sign))
        with m.Else():
            m.d.comb += self.product.eq(Cat(frac, exp[0:8], sign))
        return m


class Fp32Adder(wiring.Component):
    """fp32 + fp32 with round-to-nearest-even and flush-to-zero (combinational).

    The datapath: order by magnitude, align the smaller significand with guard, round and
    sticky bits (27 bits in all: three suffice for correct RNE), add or subtract, normalise with
    one right shift or a leading-zero left shift, round, then handle overflow and underflow.

    Members
    -------
    a, b : In(32)
        fp32 bit patterns. Subnormals read as zero.
    sum : Out(32)
        fp32 bit pattern of ``a + b`` under the numerics policy.
    """

    a: In(32)
    b: In(32)
    sum: Out(32)

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        ea, eb = a[23:31], b[23:31]
        a_zero, b_zero = ea == 0, eb == 0
        a_inf = (ea == 0xFF) & (a[0:23] == 0)
        b_inf = (eb == 0xFF) & (b[0:23] == 0)
        a_nan = (ea == 0xFF) & (a[0:23] != 0)
        b_nan = (eb == 0xFF) & (b[0:23] != 0)

        swap = a[0:31] < b[0:31]
        big, small = Signal(32), Signal(32)
        m.d.comb += [big.eq(Mux(swap, b, a)), small.eq(Mux(swap, a, b))]
        e_big, e_small = big[23:31], small[23:31]
        m_big = Cat(Const(0, 3), big[0:23], Const(1, 1))  # 27 bits: 1.fraction then G, R, S
        m_small = Cat(Const(0, 3), small[0:23], Const(1, 1))

        diff = Signal(8)
        m.d.comb += diff.eq(e_big - e_small)
        shift = Signal(5)
        m.d.comb += shift.eq(Mux(diff > 31, 31, diff))
        aligned = Signal(27)
        m.d.comb += aligned.eq(m_small >> shift)
        # Sticky: any bit shifted out makes the LSB 1 (it only matters as "more below").
        lost = (aligned << shift)[0:27] != m_small
        aligned_s = aligned | lost

        subtract = big[31] ^ small[31]
        total = Signal(28)
        m.d.comb += total.eq(Mux(subtract, m_big - aligned_s, m_big + aligned_s))

        carry = total[27]
        t1 = Signal(27)
        m.d.comb += t1.eq(Mux(carry, Cat(total[1] | total[0], total[2:28]), total[0:27]))
        lzc = leading_zeros(m, t1, "add_lzc")
        norm = Signal(27)
        m.d.comb += norm.eq((t1 << lzc)[0:27])
        exp = Signal(signed(11))
        m.d.comb += exp.eq(e_big + carry - lzc)

        mant = norm[3:27]
        guard = norm[2]
        rest = norm[1] | norm[0]
        mant_r = Signal(25)
        m.d.comb += mant_r.eq(mant + (guard & (rest | mant[0])))
        over = mant_r[24]  # rounding carried out: 1.111..1 + ulp = 10.000..0
        exp_r = Signal(signed(11))
        m.d.comb += exp_r.eq(exp + over)
        frac = Mux(over, mant_r[1:24], mant_r[0:23])
        sign = big[31]

        with m.If(a_nan | b_nan | (a_inf & b_inf & (a[31] != b[31]))):
            m.d.comb += self.sum.eq(FP32_QNAN)
        with m.Elif(a_inf):
            m.d.comb += self.sum.eq(a)
        with m.Elif(b_inf):
            m.d.comb += self.sum.eq(b)
        with m.Elif(a_zero & b_zero):
            m.d.comb += self.sum.eq(Cat(Const(0, 31), a[31] & b[31]))
        with m.Elif(a_zero):
            m.d.comb += self.sum.eq(b)
        with m.Elif(b_zero):
            m.d.comb += self.sum.eq(a)
        with m.Elif(total == 0):
            m.d.comb += self.sum.eq(0)  # exact cancellation is +0 in RNE
        with m.Elif(exp_r >= 255):
            m.d.comb += self.sum.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
        with m.Elif(exp_r <= 0):
            m.d.comb += self.sum.eq(Cat(Const(0, 31), sign))
        with m.Else():
            m.d.comb += self.sum.eq(Cat(frac, exp_r[0:8], sign))
        return m


def round_bf16(m: Module, x, name: str):
    """fp32 -> bf16 (RNE, FTZ, canonical NaN), returned as an fp32 pattern (low 16 bits zero).

    Mirrors ``golden.bf16.f32_round_to_bf16_bits``; ``name`` prefixes the helper signals.
    """
    exp = x[23:31]
    nan = (exp == 0xFF) & (x[0:23] != 0)
    u = Signal(32, name=f"{name}_ftz")
    m.d.comb += u.eq(Mux(exp == 0, Cat(Const(0, 31), x[31]), x))
    rounded = Signal(17, name=f"{name}_r")
    m.d.comb += rounded.eq((u + 0x7FFF + u[16]) >> 16)
    r16 = Signal(16, name=f"{name}_b")
    m.d.comb += r16.eq(Mux(nan, 0x7FC0, Mux(rounded[7:15] == 0, Cat(Const(0, 15), rounded[15]), rounded[:16])))
    return Cat(Const(0, 16), r16)
