"""NumPy golden models: the single source of truth for every number the hardware produces.

No Amaranth or cocotb imports in this package.
"""
