"""Config -> Verilog, deterministically, named by the config hash.

Every Verilog file the flow writes goes through :func:`convert`, which also applies the one
post-processing step the simulators need (:func:`wake_combinational_at_time_zero`, see
docs/flows.md, "FSMs, enums and FIFOs").
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from hdl.config import BlockConfig
from hdl.registry import get_block

__all__ = ["ROOT", "BUILD", "artefact_dir", "convert", "generate_verilog", "generate_component_verilog",
           "resolve_config", "wake_combinational_at_time_zero"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("OMNIDRL_BUILD", ROOT / "build"))


def resolve_config(block: str, preset: str = "default", overrides: list[str] | None = None) -> BlockConfig:
    """Build a validated config from a block name, a preset name and ``key=value`` overrides."""
    cls = get_block(block).config_type()
    return cls.preset(preset, **cls.parse_overrides(overrides or []))


def artefact_dir(cfg: BlockConfig) -> Path:
    return BUILD / cfg.BLOCK / cfg.config_hash()


def generate_verilog(cfg: BlockConfig, out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Write ``<block>-<hash>.v`` and ``<block>-<hash>.json`` and return the ``.v`` path.

    The Verilog carries no source locations and no internal attributes, so the same config and
    the same HDL source always give the same bytes. The component is always elaborated (the
    hash names the configuration, not the source code, so an edited block must not be served
    from an old file), but the file is rewritten only when its bytes change: simulators and
    synthesis then reuse their builds. ``force`` rewrites it regardless.
    """
    out_dir = Path(out_dir) if out_dir is not None else artefact_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{cfg.artefact_name}.v"
    j_path = out_dir / f"{cfg.artefact_name}.json"
    text = convert(get_block(cfg.BLOCK).build(cfg), cfg.BLOCK)
    _write_if_changed(j_path, cfg.to_json() + "\n", force)
    _write_if_changed(v_path, text, force)
    return v_path


def generate_component_verilog(component, name: str, out_dir: Path | None = None) -> Path:
    """Write any component (one that is no registered block, e.g. a test fixture) as
    ``<name>-<hash>.v`` with top module ``name``; the hash is that of the Verilog text itself.

    The default folder is ``build/components/<name>/``.
    """
    text = convert(component, name)
    out_dir = Path(out_dir) if out_dir is not None else BUILD / "components" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}.v"
    _write_if_changed(v_path, text, False)
    return v_path


def convert(component, name: str) -> str:
    """The flow's Verilog for ``component`` with top module ``name``: no source locations, no
    internal attributes, builtin Yosys, and woken at time zero."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog

    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return wake_combinational_at_time_zero(text)


# Yosys's Verilog backend declares, per module with processes, a trigger register that every
# process's `always @* begin` block reads first:  reg \$auto$verilog_backend.cc:NNNN:dump_module$N  = 0;
_TRIGGER_DECLARATION = re.compile(r"^(?P<indent>[ \t]*)reg (?P<name>\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ )"
                                  r" = 0;$", re.MULTILINE)
# The trigger this module adds where Yosys declared none (a module without processes); the `$flow$`
# prefix keeps it apart from every name Amaranth or Yosys give.
_OWN_TRIGGER = "\\$flow$wake_at_time_zero "
_ALWAYS_COMB = re.compile(r"^(?P<indent>[ \t]*)always @\*(?P<begin> begin)?$")


def wake_combinational_at_time_zero(text: str) -> str:
    """Make every ``always @*`` block run once at time zero, in every simulator.

    Yosys's backend writes two kinds of ``always @*``: one ``begin ... end`` block per process,
    whose first statement reads the module's trigger register, and a one-statement block per
    connection that drives part of a ``reg`` (a struct port assigned field by field, some fields
    in a process and some plainly), which reads no trigger. The trigger's declaration
    initializer is meant to wake the first kind, but under SystemVerilog semantics (cocotb builds
    Icarus with ``-g2012``) an initializer is applied before time zero and is no event, so a block
    whose inputs never change (an output decoded from an FSM state that stays put after reset)
    stays X; the second kind is never woken at all (nor run, if its right side is a constant).

    So the initializer becomes ``initial trigger <= 0``, and every one-statement block becomes a
    ``begin ... end`` block that reads the trigger first, as Yosys's own do (a module without
    processes gets a trigger of its own). A nonblocking update is applied after every process
    has run up to its first event control at time zero, so the X -> 0 change wakes every
    ``always @*`` whatever the language mode or the process order, with no delay (which
    Verilator would need a timing option for). Synthesis reads the trigger as the initial value
    0 of a register that drives nothing; Verilator evaluates everything at time zero anyway.

    Raises
    ------
    ValueError
        If an ``always @*`` block has a shape this function does not know (a newer Yosys): the
        flow must not hand out Verilog with a block Icarus may leave X.
    """
    return "".join(_wake_module(chunk) for chunk in re.split(r"(?<=\nendmodule\n)", text))


def _wake_module(module: str) -> str:
    """:func:`wake_combinational_at_time_zero` for one module's text (or the text between modules)."""
    lines = module.split("\n")
    declared = _TRIGGER_DECLARATION.search(module)
    trigger = declared.group("name") if declared else _OWN_TRIGGER
    out: list[str] = []
    needs_trigger = False
    row = 0
    while row < len(lines):
        line = lines[row]
        always = _ALWAYS_COMB.match(line)
        row += 1
        if not always:
            out.append(line)
            continue
        indent = always.group("indent")
        # The block's statement is every following line indented deeper than `always`.
        body_end = row
        while body_end < len(lines) and _indent_of(lines[body_end]) > len(indent):
            body_end += 1
        body = lines[row:body_end]
        if always.group("begin"):
            if not (declared and body and body[0].strip() == f"if ({trigger}) begin end"):
                raise ValueError(f"an `always @* begin` block that reads no trigger: {line.strip()} {body[:1]}")
            out.append(line)
            continue
        if not body or body[0].lstrip().startswith("begin"):
            raise ValueError(f"an `always @*` block of an unknown shape: {line.strip()} {body[:1]}")
        needs_trigger = True
        out += [f"{indent}always @* begin", f"{indent}  if ({trigger}) begin end", *body, f"{indent}end"]
        row = body_end
    woken = "\n".join(out)
    if declared:
        return _TRIGGER_DECLARATION.sub(r"\g<indent>reg \g<name>;\n\g<indent>initial \g<name> <= 1'h0;", woken)
    if needs_trigger:
        header_end = re.search(r"^module [^;]*;\n", woken, re.MULTILINE).end()
        woken = woken[:header_end] + f"  reg {trigger};\n  initial {trigger} <= 1'h0;\n" + woken[header_end:]
    return woken


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip()) if line.strip() else 0


def _write_if_changed(path: Path, text: str, force: bool) -> None:
    if force or not path.exists() or path.read_text() != text:
        _write_atomic(path, text)


def _write_atomic(path: Path, text: str) -> None:
    # Two pytest workers may generate the same artefact; a rename keeps readers from ever
    # seeing a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":  # pragma: no cover - convenience
    print(generate_verilog(resolve_config(sys.argv[1])))
