# OmniDRL-gen: a facade. Every target calls the `omnidrl` CLI or pytest; the work is in Python.
# Variables: BLOCK (pe), PRESET (default), SIM (all|icarus|verilator), TARGET (generic|ice40|xilinx),
# WAVES=1 (dump waves from cocotb runs), SET="key=value ..." (config overrides).

BLOCK  ?= pe
PRESET ?= default
SIM    ?= all
TARGET ?= generic
WAVES  ?= 0
SET    ?=

VENV   := .venv
STAMP  := $(VENV)/.setup-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AMARANTH_USE_YOSYS := builtin
export WAVES
export OBJCACHE := ccache
export OPENBLAS_NUM_THREADS ?= 1

OMNIDRL := $(VENV)/bin/omnidrl
SETARGS := $(foreach s,$(SET),--set $(s))

.PHONY: setup verilog sim synth lint test demo report clean

setup: $(STAMP)
$(STAMP): pyproject.toml flows/setup.sh
	bash flows/setup.sh
	touch $@

verilog: $(STAMP)
	$(OMNIDRL) verilog $(BLOCK) --preset $(PRESET) $(SETARGS)

sim: $(STAMP)
	$(OMNIDRL) sim $(BLOCK) --sim $(SIM) --preset $(PRESET) $(SETARGS)

synth: $(STAMP)
	$(OMNIDRL) synth $(BLOCK) --preset $(PRESET) --target $(TARGET) $(SETARGS)

lint: $(STAMP)
	$(OMNIDRL) lint $(BLOCK) --preset $(PRESET) $(SETARGS)

report: $(STAMP)
	$(OMNIDRL) report

demo: $(STAMP)
	$(OMNIDRL) demo --preset $(PRESET)
	$(OMNIDRL) run --workload small-sparse --preset tiny --sim verilator

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup --durations=15

clean:
	rm -rf build
