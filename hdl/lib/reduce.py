"""Reductions over bit vectors and lists of values, as balanced trees.

Every function here builds expressions (or, where it needs named intermediate signals, adds
them to the module it is given); none holds state. Depth is logarithmic in the width, which is
what keeps the wide bitmaps of the PE array and the transposer off the critical path.
"""

from amaranth import Cat, Const, Module, Mux, Signal

__all__ = ["add_tree", "popcount", "prefix_sums", "leading_zeros", "first_set", "or_tree", "mux_tree"]


def leading_zeros(m: Module, value, name: str = "lzc"):
    """Count leading zeros of ``value`` with a balanced tree (depth log2 of the width).

    Returns a signal of ``ceil(log2(width + 1))`` bits; an all-zero input gives ``width``.
    """
    width = len(value)
    size = 1
    while size < width:
        size *= 2
    # Pad on the LSB side with ones so the padded bits never count as leading zeros.
    padded = Cat(Const((1 << (size - width)) - 1, size - width), value) if size > width else value

    def tree(bits, lo, n):
        # Returns (all_zero, count) for bits[lo:lo+n], counting from the MSB end.
        if n == 1:
            return ~bits[lo], Cat()  # a single bit: the count has no bits of its own
        half = n // 2
        z_hi, c_hi = tree(bits, lo + half, half)
        z_lo, c_lo = tree(bits, lo, half)
        count = Mux(z_hi, Cat(c_lo, Const(1, 1)), Cat(c_hi, Const(0, 1)))
        return z_hi & z_lo, count

    all_zero, count = tree(padded, 0, size)
    out = Signal(range(width + 1), name=name)
    m.d.comb += out.eq(Mux(all_zero, width, count))
    return out


def add_tree(terms):
    """Sum of a list of values as a balanced adder tree (an expression; widths grow per level,
    signed terms stay signed)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def popcount(bits):
    """Number of set bits of ``bits`` (a Value), as a balanced adder tree (an expression)."""
    return add_tree(bits[k] for k in range(len(bits)))


def prefix_sums(m: Module, terms, name: str, width: int) -> list[Signal]:
    """Inclusive running sums ``terms[0] + ... + terms[i]`` as a parallel prefix (Sklansky).

    ``ceil(log2(len(terms)))`` levels of adders instead of a chain of ``len(terms) - 1``: level
    ``d`` adds the last sum of each lower half-block of ``2**(d+1)`` terms into every sum of the
    upper half. Every sum is a signal of ``width`` bits (``<name>_<level>_<i>``; the last level's
    are returned), not an expression, so its readers share it instead of copying it.
    """
    sums = []
    for i, term in enumerate(terms):
        sig = Signal(width, name=f"{name}_0_{i}")
        m.d.comb += sig.eq(term)
        sums.append(sig)
    n, span, level = len(sums), 1, 0
    while span < n:
        level += 1
        nxt = list(sums)
        for i in range(n):
            if (i // span) % 2:
                nxt[i] = Signal(width, name=f"{name}_{level}_{i}")
                m.d.comb += nxt[i].eq(sums[i] + sums[(i // (2 * span)) * 2 * span + span - 1])
        sums, span = nxt, 2 * span
    return sums


def first_set(m: Module, bits, name: str):
    """``(any, index)`` of the lowest set bit of ``bits`` (a priority encoder).

    ``index`` is a signal of ``range(max(2, len(bits)))``; it is 0 when no bit is set.
    """
    idx = Signal(range(max(2, len(bits))), name=f"{name}_idx")
    for i in reversed(range(len(bits))):
        with m.If(bits[i]):
            m.d.comb += idx.eq(i)
    return bits.any(), idx


def or_tree(terms):
    """OR of a list of values as a balanced tree (an expression)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[k] | terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def mux_tree(items, sel):
    """``items[sel]`` as a tree of 2:1 multiplexers on the bits of ``sel`` (an expression).

    Indices past the end of ``items`` select the last item.
    """
    items = list(items)
    k = 0
    while len(items) > 1:
        if len(items) % 2:
            items.append(items[-1])
        items = [Mux(sel[k], items[j + 1], items[j]) for j in range(0, len(items), 2)]
        k += 1
    return items[0]
