"""Flows around the blocks: Verilog generation, simulation runs, Yosys synthesis, reports, CLI."""
