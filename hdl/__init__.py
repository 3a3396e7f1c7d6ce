"""Amaranth descriptions of the accelerator's blocks, one file per block.

See :mod:`hdl.registry` for the list of blocks and :mod:`hdl.config` for the config pattern.
"""
