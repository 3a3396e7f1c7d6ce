"""Find the synthesis black boxes of a design by their mark, wherever they sit.

A component that synthesis must not turn into gates (an SRAM, the ECIM macro) says so itself
with a truthy ``synth_blackbox`` attribute (:class:`hdl.lib.sram.Sram` has it; a block may set
it per instance, from its configuration). :func:`find_blackboxes` elaborates a design and
returns the Verilog module names of every marked submodule, at any depth and under any
wrapper: Amaranth names a module by its hierarchy path (``top.pe_array.store.a0``), so a list of
names written by hand breaks as soon as the block is wrapped. The walk stops at a black box:
what is inside it is the black box's business.

The names come from Amaranth's own naming pass (:meth:`Fragment.prepare`), the one its Verilog
backend uses, and :func:`check_in_verilog` confirms each of them is a module of the file that
synthesis reads, so a name that drifted from the netlist is an error, not a silent flip-flop
array.

Example
-------
>>> from hdl.lib.sram import Sram
>>> find_blackboxes(Sram(8, 16), "mem")
('mem',)
"""

from __future__ import annotations

import re

from amaranth.hdl import Fragment, Value
from amaranth.lib import wiring

__all__ = ["is_blackbox", "find_instances", "find_blackboxes", "verilog_modules", "check_in_verilog", "stub_blackboxes",
           "merge_identical_modules", "yosys_name"]


def is_blackbox(elaboratable) -> bool:
    """True when ``elaboratable`` carries a truthy ``synth_blackbox`` mark."""
    return bool(getattr(elaboratable, "synth_blackbox", False))


def _ports(component) -> list:
    # The top-level port names amaranth.back.verilog.convert gives a wiring.Component: they
    # take part in the naming pass (a submodule may not shadow one). Directions are inferred.
    return [("__".join(map(str, path)), Value.cast(value), None)
            for path, _member, value in component.signature.flatten(component)]


def find_instances(component: wiring.Component, top: str, predicate) -> list[tuple[str, object]]:
    """``(Verilog module name, elaboratable)`` of every submodule of ``component`` (elaborated
    as ``top``) for which ``predicate(elaboratable)`` holds, in hierarchy order; the inside of a
    match is not searched. The top itself is included when it matches.
    """
    design = Fragment.get(component, None).prepare(ports=_ports(component), hierarchy=(top,))
    found: list[tuple[str, object]] = []

    def walk(fragment) -> None:
        match = next((origin for origin in fragment.origins or () if predicate(origin)), None)
        if match is not None:
            found.append((".".join(design.fragments[fragment].name), match))
            return
        for sub, _name, _src_loc in fragment.subfragments:
            walk(sub)

    walk(design.fragment)
    return found


def find_blackboxes(component: wiring.Component, top: str) -> tuple[str, ...]:
    """Verilog module names of every marked submodule of ``component`` (elaborated as ``top``).

    Parameters
    ----------
    component : wiring.Component
        The design as it is converted to Verilog (a fresh instance: it is elaborated here).
    top : str
        The top module's name (``name=`` of the Verilog conversion).

    Returns
    -------
    tuple of str
        Module names such as ``top.pe_array.store.a0``, in hierarchy order; the top itself if it
        is marked. The inside of a black box is not searched.
    """
    return tuple(name for name, _ in find_instances(component, top, is_blackbox))


_MODULE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][\w$]*)", re.M)


def verilog_modules(text: str) -> set[str]:
    """Names of the modules defined in Verilog ``text`` (escaped names without the backslash)."""
    return {name.lstrip("\\") for name in _MODULE.findall(text)}


def check_in_verilog(names: tuple[str, ...], text: str, where: str = "the Verilog") -> None:
    """Raise ``ValueError`` naming the first of ``names`` that is not a module of ``text``."""
    modules = verilog_modules(text)
    for name in names:
        if name not in modules:
            raise ValueError(f"black box {name!r} is not a module of {where}; modules are "
                               f"{', '.join(sorted(modules))}")


_MODULE_BLOCK = re.compile(r"^(?P<attrs>(?:[ \t]*\(\*[^\n]*\*\)[ \t]*\n)*)(?P<head>[ \t]*module[ \t]+(?P<name>\\\S+|[A-Za-z_][\w$]*)"
                           r"[^;]*;\n)(?P<body>.*?)^[ \t]*endmodule\b", re.M | re.S)
_PORT_DECLARATION = re.compile(r"^[ \t]*(?:input|output|inout)\b[^;]*;[ \t]*$", re.M)


def stub_blackboxes(text: str, names: tuple[str, ...]) -> str:
    r"""``text`` with the module of each of ``names`` cut down to a ``(* blackbox *)`` stub.

    A stub keeps the module header and its port declarations and drops everything else, so
    synthesis never reads what it would throw away: a 16384-word memory is written with one
    ``initial`` assignment per word, and Yosys's reader spent minutes on those before the
    ``blackbox`` pass discarded them. Raises ``ValueError`` naming a name that is no module.

    Example
    -------
    >>> stub_blackboxes("module m(a);\n  input a;\n  wire a;\n  reg r;\nendmodule\n", ("m",))
    '(* blackbox *)\nmodule m(a);\n  input a;\nendmodule\n'
    """
    check_in_verilog(names, text)
    wanted = set(names)

    def stub(match: re.Match) -> str:
        if match["name"].lstrip("\\") not in wanted:
            return match[0]
        ports = "".join(line + "\n" for line in _PORT_DECLARATION.findall(match["body"]))
        return f"{match['attrs']}(* blackbox *)\n{match['head']}{ports}endmodule"

    return _MODULE_BLOCK.sub(stub, text)


# The wake-up register of the Yosys backend is numbered per module (flows/generate.py).
_TRIGGER = re.compile(r"dump_module\$\d+ ")
_INSTANCE = re.compile(r"^(?P<indent>[ \t]+)\\(?P<module>\S+)(?P<rest>[ \t]+\S+[ \t]*\()$", re.M)


def merge_identical_modules(text: str) -> tuple[str, dict[str, str]]:
    r"""``text`` with every module that is identical to an earlier one but for its name removed,
    and its instances pointed at the earlier one; returns the text and ``{removed: kept}``.

    Amaranth writes one module per instance (``pe_array.grid.add0_0``, ``add0_1``, ...), so an
    array of 256 identical PEs is 256 modules; a synthesis that keeps the hierarchy then maps
    each distinct module once. Repeats until no pair is left (two modules become identical once
    the submodules they instantiate are merged). Only escaped module names (Amaranth's
    submodules, ``\a.b``) are merged; the top keeps its own. The number of the backend's
    wake-up register (``dump_module$N``) does not count as a difference.

    Example
    -------
    >>> sub = "module \\t.{} (a);\n  input a;\nendmodule\n"
    >>> v = "module top(a);\n  input a;\n  \\t.x  x (\n  );\n  \\t.y  y (\n  );\nendmodule\n"
    >>> merged, names = merge_identical_modules(v + sub.format("x") + sub.format("y"))
    >>> names
    {'t.y': 't.x'}
    >>> print(merged.replace("\\", "/"), end="")
    module top(a);
      input a;
      /t.x  x (
      );
      /t.x  y (
      );
    endmodule
    module /t.x (a);
      input a;
    endmodule
    <BLANKLINE>
    """
    merged: dict[str, str] = {}
    while True:
        kept: dict[str, str] = {}   # module text with its name blanked -> name kept
        renames: dict[str, str] = {}
        for match in _MODULE_BLOCK.finditer(text):
            name = match["name"]
            if not name.startswith("\\") or "blackbox" in match["attrs"]:
                continue  # the top, and black-box stubs (synthesis reports them by name)
            key = _TRIGGER.sub("", match[0][len(match["attrs"]):].replace(name + " ", "\\ ", 1))
            if key in kept:
                renames[name[1:]] = kept[key]
            else:
                kept[key] = name[1:]
        if not renames:
            return text, merged
        text = _MODULE_BLOCK.sub(lambda m: "" if m["name"][1:] in renames and m["name"].startswith("\\")
                                 else m[0], text)
        text = _INSTANCE.sub(lambda m: f"{m['indent']}\\{renames.get(m['module'], m['module'])}{m['rest']}", text)
        for old, new in renames.items():
            merged[old] = new
        merged = {old: renames.get(new, new) for old, new in merged.items()}


def yosys_name(name: str) -> str:
    """``name`` as Yosys reads it in a script: escaped unless it is a plain identifier."""
    return name if re.fullmatch(r"[A-Za-z_][\w$]*", name) and "$" not in name else "\\" + name
