"""The table of blocks the CLI, the flows and the tests know by name.

Each entry names the module holding the block's config dataclass and component, and the cocotb
module that tests it. Imports are lazy so that ``omnidrl --help`` stays fast and a broken block
cannot stop the others from building.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib

from golden.config import ConfigError

__all__ = ["BlockSpec", "BLOCKS", "get_block", "block_names", "name_of_config"]


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """Where a block lives.

    Parameters
    ----------
    name : str
        CLI name (``omnidrl verilog NAME``).
    module : str
        Python module with the config class and the component class.
    config_class, component_class : str
        Attribute names in ``module``. The component is built as ``component_class(cfg)``.
    tb_module : str
        cocotb test module run by ``omnidrl sim NAME``.
    summary : str
        One line for ``omnidrl --help`` and reports.
    """

    name: str
    module: str
    config_class: str
    component_class: str
    tb_module: str
    summary: str

    def config_type(self) -> type:
        return getattr(importlib.import_module(self.module), self.config_class)

    def component_type(self):
        return getattr(importlib.import_module(self.module), self.component_class)

    def build(self, cfg):
        """Elaborate-ready component for ``cfg``."""
        return self.component_type()(cfg)


BLOCKS: dict[str, BlockSpec] = {
    spec.name: spec
    for spec in [
        BlockSpec("pe", "hdl.pe", "PEConfig", "PE", "tb.test_pe",
                  "bf16 x bf16 multiply-accumulate PE with an fp32 accumulator"),
        BlockSpec("ecim", "hdl.ecim", "EcimConfig", "Ecim", "tb.test_ecim", "ECIM exponent macro + MFEC mantissa engine: bf16 dot products, exponents beside memory"),
        BlockSpec("transposer", "hdl.transposer", "TransposerConfig", "Transposer", "tb.test_transposer", "sparse weight transposer: packed tile x tile bf16 tile in, packed transposed tile out"),
        BlockSpec("emd_enc", "hdl.emd", "EmdEncoderConfig", "EmdEncoder", "tb.test_emd", "EMD encoder: bf16 lanes in, exponent-mean-delta packed words out"),
        BlockSpec("emd_dec", "hdl.emd", "EmdDecoderConfig", "EmdDecoder", "tb.test_emd", "EMD decoder: exponent-mean-delta packed words in, bf16 lanes out"),
        BlockSpec("pe_array", "hdl.pe_array", "PEArrayConfig", "PEArray", "tb.test_pe_array", "GST core: R x C bf16 PE array running dense, block-circulant and group-sparse training GEMMs"),
        BlockSpec("mpmac", "hdl.mpmac", "MpMacConfig", "MpMac", "tb.test_mpmac",
                  "mixed-precision integer MAC: 1..8-bit weights, bit-serial 1..8-bit activations, shift-and-add"),
        BlockSpec("omnidrl", "hdl.omnidrl", "OmniDRLConfig", "OmniDRL", "tb.test_omnidrl",
                  "OmniDRL top: PE array, EMD load/store, sparse transposer, command issue, memory streams"),
    ]
}


def name_of_config(module: str, qualname: str) -> str | None:
    """The block name registered for config class ``module.qualname`` (None if unregistered)."""
    for spec in BLOCKS.values():
        if spec.module == module and spec.config_class == qualname:
            return spec.name
    return None


def block_names() -> list[str]:
    return sorted(BLOCKS)


def get_block(name: str) -> BlockSpec:
    """Look up a block by name; unknown names raise a one-line :class:`ConfigError`."""
    if name not in BLOCKS:
        close = difflib.get_close_matches(name, BLOCKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown block {name!r}{hint}; blocks are {', '.join(block_names())}")
    return BLOCKS[name]
