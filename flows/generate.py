"""Config -> Verilog, deterministically, named by the config hash."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hdl.config import BlockConfig
from hdl.registry import get_block

__all__ = ["ROOT", "BUILD", "artefact_dir", "generate_verilog", "resolve_config"]

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
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog

    out_dir = Path(out_dir) if out_dir is not None else artefact_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{cfg.artefact_name}.v"
    j_path = out_dir / f"{cfg.artefact_name}.json"
    component = get_block(cfg.BLOCK).build(cfg)
    text = verilog.convert(component, name=cfg.BLOCK, emit_src=False, strip_internal_attrs=True)
    config_text = cfg.to_json() + "\n"
    if force or not j_path.exists() or j_path.read_text() != config_text:
        _write_atomic(j_path, config_text)
    if force or not v_path.exists() or v_path.read_text() != text:
        _write_atomic(v_path, text)
    return v_path


def _write_atomic(path: Path, text: str) -> None:
    # Two pytest workers may generate the same artefact; a rename keeps readers from ever
    # seeing a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":  # pragma: no cover - convenience
    print(generate_verilog(resolve_config(sys.argv[1])))
