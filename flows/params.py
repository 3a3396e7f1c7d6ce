"""Parameter tables generated from the config declarations, and kept in the docs.

Each block's parameters are declared once (``param(...)`` in its config class). This module
renders them as a Markdown table (name, default, allowed values, the presets' values, meaning),
``omnidrl params BLOCK`` prints it, and the block documents embed it between two markers::

    <!-- params:pe_array -->
    | parameter | default | allowed | presets | meaning |
    ...
    <!-- /params -->

``omnidrl params --update-docs`` rewrites every such section from the code, and
``tests/test_params_doc.py`` fails when one differs, so a document cannot drift from the
declarations.
"""

from __future__ import annotations

import re
from pathlib import Path

from hdl.registry import BLOCKS, get_block

from .generate import ROOT

__all__ = ["params_markdown", "doc_sections", "update_docs", "stale_sections"]

DOCS = ROOT / "docs"
_SECTION = re.compile(r"(<!-- params:(?P<block>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /params -->)", re.S)


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def params_markdown(block: str) -> str:
    """The parameter table of ``block`` (Markdown, ends with a newline)."""
    cls = get_block(block).config_type()
    presets = {name: _flatten(cls.preset(name).to_dict()) for name in cls.preset_names() if name != "default"}
    lines = ["| parameter | default | allowed | presets | meaning |", "|---|---|---|---|---|"]
    for row in cls.parameter_table():
        name = row["name"]
        differs = [f"{p} {_fmt(values[name])}" for p, values in presets.items() if values.get(name) != row["default"]]
        meaning = row["doc"] + (" (implementation knob: not in the config hash)" if row["impl"] else "")
        lines.append(f"| `{name}` | {_fmt(row['default'])} | {row['allowed']} | {', '.join(differs) or '-'} | {meaning} |")
    return "\n".join(lines) + "\n"


def doc_sections(path: Path) -> list[tuple[str, str]]:
    """``(block, table text)`` of every parameter section in the document ``path``."""
    return [(m["block"], m["body"]) for m in _SECTION.finditer(path.read_text())]


def stale_sections(docs: Path = DOCS) -> list[str]:
    """``file: block`` for every embedded table that differs from the declarations."""
    stale = []
    for path in sorted(docs.glob("*.md")):
        for block, body in doc_sections(path):
            if block not in BLOCKS or body != params_markdown(block):
                stale.append(f"{path.name}: {block}")
    return stale


def update_docs(docs: Path = DOCS) -> list[Path]:
    """Rewrite every parameter section under ``docs``; return the files that changed."""
    changed = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text()
        new = _SECTION.sub(lambda m: m.group(1) + params_markdown(m["block"]) + m.group(4), text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed
