"""Counters that the controllers share."""

from amaranth import Module, Mux, Signal

__all__ = ["wrap_increment", "WrapCounter"]


def wrap_increment(value, modulus: int):
    """``value + 1`` wrapping to 0 after ``modulus - 1`` (an expression; no power of two needed)."""
    return Mux(value == modulus - 1, 0, value + 1)


class WrapCounter:
    """A counter from 0 to ``modulus - 1`` that steps when ``enable`` and wraps to 0.

    Not a component (it has no ports): ``ctr = WrapCounter(m, 5, enable, "rp")`` adds a signal
    ``ctr.value`` and its update to ``m``; ``ctr.wraps`` is high when the next step wraps.
    """

    def __init__(self, m: Module, modulus: int, enable, name: str):
        if modulus < 1:
            raise ValueError(f"WrapCounter: modulus={modulus} must be >= 1")
        self.modulus = modulus
        self.value = Signal(range(max(2, modulus)), name=name)
        self.wraps = self.value == modulus - 1
        with m.If(enable):
            m.d.sync += self.value.eq(wrap_increment(self.value, modulus))
