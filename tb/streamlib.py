"""The simulator-independent half of the stream test kit: payload codec and scoreboard.

Both harnesses use these: the cocotb drivers in :mod:`tb.stream` (generated Verilog on Icarus
or Verilator) and the Amaranth-simulator harness in :mod:`tb.amsim`. Nothing here imports
cocotb, so tier-1 tests stay free of it.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any, Callable

from amaranth.lib import data

__all__ = ["PayloadCodec", "Scoreboard", "SourceQueue"]


class PayloadCodec:
    """Pack and unpack a stream payload through its Amaranth layout.

    Packing goes through ``layout.const(value).as_bits()`` and unpacking through
    ``layout.from_bits(word)``, so the bit positions are Amaranth's own, whatever the nesting
    (struct, union and array layouts inside each other, enum fields).

    Parameters
    ----------
    layout : amaranth.lib.data.Layout or int
        The payload layout; an ``int`` is a plain vector of that width.
    nested : bool
        How :meth:`unpack` answers for a layout. False (the default, what the block testbenches
        compare against): a dict of the top-level fields, each as its unsigned bit pattern, so a
        sub-layout field is one integer. True: the whole structure, a dict per struct or union,
        a list per array, the enum member for an enum field (the plain integer when the bits are
        no member) and a signed integer for a signed field.

    Notes
    -----
    :meth:`pack` takes a dict for a struct or union, a list for an array, and an integer (the
    raw bits) wherever a layout is expected; missing fields are zero (their ``init``).
    """

    def __init__(self, layout, *, nested: bool = False):
        if isinstance(layout, int):
            self.layout = None
            self.width = layout
        else:
            if not isinstance(layout, data.Layout):
                raise TypeError(f"PayloadCodec: layout={layout!r} is not allowed; pass an "
                                f"amaranth.lib.data layout or an int width")
            self.layout = layout
            self.width = layout.size
        self.nested = nested
        self._mask = (1 << self.width) - 1

    @property
    def fields(self) -> list[tuple[str, int, int]] | None:
        """``(name, offset, width)`` of the top-level fields; None for a plain vector."""
        if self.layout is None or isinstance(self.layout, data.ArrayLayout):
            return None
        return [(name, field.offset, field.width) for name, field in self.layout]

    def pack(self, value: dict | list | int) -> int:
        if self.layout is None or isinstance(value, int):
            return int(value) & self._mask
        return self.layout.const(_initializer(self.layout, value)).as_bits() & self._mask

    def unpack(self, word: int) -> dict | list | int:
        if self.layout is None:
            return word
        word &= self._mask
        if self.nested:
            return _plain(self.layout, self.layout.from_bits(word))
        if isinstance(self.layout, data.ArrayLayout):
            return word
        return {name: (word >> field.offset) & ((1 << field.width) - 1) for name, field in self.layout}


def _initializer(layout: data.Layout, value):
    """``value`` with every integer that stands for a sub-layout turned into that layout's
    constant, because ``Layout.const`` wants a mapping or a sequence there."""
    if isinstance(value, int):
        return layout.from_bits(value & ((1 << layout.size) - 1))
    if isinstance(layout, data.ArrayLayout):
        return [_field_initializer(layout.elem_shape, v) for v in value]
    names = {name for name, _ in layout}
    unknown = set(value) - names
    if unknown:
        raise KeyError(f"payload has no fields {sorted(unknown)}; the layout has {sorted(names)}")
    return {name: _field_initializer(layout[name].shape, v) for name, v in value.items()}


def _field_initializer(shape, value):
    if isinstance(shape, data.Layout) and not isinstance(value, data.Const):
        return _initializer(shape, value)
    return value


def _plain(shape, value):
    """A ``data.Const`` (or a field of one) as dicts, lists, enum members and ints."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [_plain(layout.elem_shape, value[k]) for k in range(layout.length)]
        return {name: _plain(field.shape, _field(value, name, field)) for name, field in layout}
    if isinstance(shape, type) and issubclass(shape, enum.Enum) and not isinstance(value, enum.Enum):
        # A Python enum used as a field shape comes back as an int; name it when it is a member.
        try:
            return shape(value)
        except ValueError:
            return int(value)
    return value if isinstance(value, enum.Enum) else int(value)


def _field(const: data.Const, name: str, field: data.Field):
    try:
        return const[name]
    except ValueError:  # an Amaranth enum field whose bits name no member: keep the bits
        return (const.as_bits() >> field.offset) & ((1 << field.width) - 1)


class SourceQueue:
    """What the sources of both harnesses share: a queue of packed beats.

    A subclass sets ``codec``, ``queue`` (a deque) and ``_holding`` (a beat is being offered).
    """

    def send(self, beat: dict | list | int) -> None:
        self.queue.append(self.codec.pack(beat))

    def send_all(self, beats) -> None:
        for beat in beats:
            self.send(beat)

    @property
    def idle(self) -> bool:
        """Everything given has been taken by the DUT."""
        return not self.queue and not self._holding


class Scoreboard:
    """In-order checker: expected items are queued, received items must match them one by one.

    ``compare(expected, got)`` returns ``None`` when they match or a message otherwise; the
    default compares with ``==``. :meth:`check_done` fails when anything is left over or any
    mismatch, loss, duplication, reordering or stream-protocol error was seen.
    """

    def __init__(self, name: str, compare: Callable[[Any, Any], str | None] | None = None):
        self.name = name
        self.expected: deque[Any] = deque()
        self.errors: list[str] = []
        self.matched = 0
        self.compare = compare or (lambda exp, got: None if exp == got else f"expected {exp!r}, got {got!r}")

    def expect(self, item: Any) -> None:
        self.expected.append(item)

    def expect_all(self, items) -> None:
        for item in items:
            self.expect(item)

    def receive(self, item: Any) -> None:
        if not self.expected:
            self.errors.append(f"{self.name}: unexpected extra item {item!r} (duplicate or spurious)")
            return
        exp = self.expected.popleft()
        msg = self.compare(exp, item)
        if msg:
            self.errors.append(f"{self.name}: item {self.matched}: {msg}")
        self.matched += 1

    def check_done(self, *sinks) -> None:
        """Fail unless every expected item arrived, matched and nothing else came.

        ``sinks`` (any object with a ``protocol_errors`` list) add their stream-rule violations.
        """
        errors = list(self.errors)
        for sink in sinks:
            errors += sink.protocol_errors
        if self.expected:
            errors.append(f"{self.name}: {len(self.expected)} expected items never arrived (lost)")
        assert not errors, f"{len(errors)} scoreboard errors; first: " + "; ".join(errors[:5])
        assert self.matched > 0, f"{self.name}: nothing was checked"
