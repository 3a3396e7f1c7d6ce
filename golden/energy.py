"""Energy of one TD3 update on the OmniDRL top: events counted x energy per event.

The events come from the top's performance counters (``golden.isa.Counter``, the same numbers
from the RTL or from ``golden.machine``), the config, and the host steps' FLOPs and bytes of
``golden.run_top.run_machine``. Energies per event come from one data file
(``golden/energy_table.toml``, schema in docs/energy.md), each entry with its source and the
scaling applied; users pass their own file for another technology.

How every event is derived (R x C PEs, k = block size, G = EMD group, mem word = 16k bits):

* MACs issued = ``MACS``: one bf16 multiply and one fp32 add each; MACs skipped =
  ``MACS_DENSE - MACS`` when positive (GST group-sparse: pruned blocks never issue).
* operand register bits = ``EX_STEPS`` x 16 (R + C): every step latches one A word (R lanes) and
  one B word (C lanes) into the broadcast registers.
* ring rotations = ``EX_STEPS - A_READS``: in CIRC mode an A word (v of one block) is read once
  and feeds k steps through the ring; each rotation rewrites 16 R ring bits. (The DV mode's
  per-column X rings are not separated by the counters and are not counted.)
* accumulator register bits = ``MACS`` x 32: one fp32 accumulator write per MAC. The shadow copy
  at a tile's end (one per output, K >= 64 MACs per output in TD3) is not counted separately.
* SRAM bits per buffer = ``A_READS``/``A_WRITES`` x 16 R and ``B_READS``/``B_WRITES`` x 16 C, at
  the energy per bit of that buffer's capacity (one bank: depth x width).
* bitmap register bits = ``BITMAP_WRITES`` x max_blocks.
* EMD values = (``EMD_GROUPS_DECODED`` + ``EMD_GROUPS_ENCODED``) x G, each 3 int8 adds (mean,
  delta, escape compare) and 16 register bits (the value staged once).
* transposer beats = ``TRANSPOSER_TILES`` x k, each a k-lane word written into and read out of
  the tile registers (2 x 16 k register bits).
* external-memory bits = (``MEM_READ_*`` + ``MEM_WRITE_*``) x 16 k; raw-equivalent of the EMD
  words = EMD groups x G x 16 (what the same tensors cost uncoded).
* vector FLOPs and host memory bits = the host steps' FLOPs and 8 x bytes read + written.
* leakage = (logic GE + SRAM bits x GE/bit) x W/GE x seconds; seconds = cycles / clock.

Two totals: ``chip_j`` (on-chip: compute, registers, SRAM, codecs, vector FLOPs, leakage; what a
chip's measured power holds, and what the TFLOPS/W figures use) and ``total_j`` (plus external
memory and the host's memory traffic; what ``iterations_per_j`` uses).

No Amaranth or cocotb imports here.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

from .isa import Counter

__all__ = ["ENTRIES", "DEFAULT_TABLE", "EnergyTableError", "EnergyTable", "load_table", "event_counts",
           "COUNTED_EVENTS", "event_mismatches", "update_energy", "peak", "achievable_clock_hz", "logic_area_ge", "sram_bits",
           "mfec_ratios", "mfec_activity", "gate_calibration", "SYSTEM_COMPONENTS"]

DEFAULT_TABLE = Path(__file__).with_name("energy_table.toml")

#: Every entry of an energy table and its unit.
ENTRIES = {
    "bf16_mul": "pJ/op", "fp32_add": "pJ/op", "mac_skipped": "pJ/op", "vector_flop": "pJ/op",
    "int8_add": "pJ/op", "int8_mul": "pJ/op", "int32_add": "pJ/op", "register_bit": "pJ/bit",
    "sram_bit_8kib": "pJ/bit", "sram_capacity_exponent": "1", "dram_bit": "pJ/bit",
    "leakage_per_ge": "nW/GE", "sram_ge_per_bit": "GE/bit", "ge_area": "um^2/GE", "delay_scale": "1",
    "clock": "MHz",
}
#: Fields of an entry: name -> (type, meaning)
FIELDS = {"value": (float, "the number the model uses"), "unit": (str, "the unit, fixed per entry"),
          "source": (str, "where source_value comes from"), "source_value": (float, "the number as published"),
          "factor": (float, "value = source_value x factor"), "scaling": (str, "what the factor is")}
#: Relative tolerance of value = source_value x factor (tables round to 4 digits).
FACTOR_RTOL = 5e-3

SRAM_REF_BYTES = 8192
EMD_ADDS_PER_VALUE = 3
EMD_REG_BITS_PER_VALUE = 16
ACC_BITS = 32
#: Components outside the chip: in total_j, not in chip_j.
SYSTEM_COMPONENTS = ("external_memory", "host_memory")
#: Logic area model for configs without a synthesis figure: GE = a x R x C + b, the line through
#: the two synthesized tops (tiny 4 x 4: 162,833 GE; default 8 x 8: 636,738 GE; docs/top.md).
AREA_PER_PE_GE = (636_738 - 162_833) / (64 - 16)
AREA_FIXED_GE = 162_833 - 16 * AREA_PER_PE_GE


class EnergyTableError(ValueError):
    """A bad energy table: the message is one line naming the file, the entry and what is allowed."""


class EnergyTable:
    """A checked energy table: ``table["bf16_mul"]`` is the value in the entry's unit."""

    def __init__(self, path: str, entries: dict):
        self.path = path
        self.entries = entries

    def __getitem__(self, name: str) -> float:
        return float(self.entries[name]["value"])

    def joules(self, name: str) -> float:
        """The entry in joules (pJ entries only)."""
        assert self.entries[name]["unit"].startswith("pJ/"), name
        return self[name] * 1e-12


def _fail(path, entry, what):
    where = f"{path}: entry {entry!r}" if entry else f"{path}"
    raise EnergyTableError(f"{where}: {what}")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_table(path=None) -> EnergyTable:
    """Read and check an energy table (TOML, or JSON for a ``.json`` file).

    Raises :class:`EnergyTableError` (one line: file, entry, what is allowed) on an unreadable
    or malformed file, an unknown or missing entry, a missing or extra field, a wrong type or
    unit, a negative value, or a value that is not source_value x factor.
    """
    path = Path(path) if path is not None else DEFAULT_TABLE
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(path, None, f"cannot be read ({getattr(exc, 'strerror', None) or exc})")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        _fail(path, None, f"is not valid {kind} ({str(exc).splitlines()[0]})")
    if not isinstance(data, dict):
        _fail(path, None, "must hold one table per entry")
    allowed = ", ".join(ENTRIES)
    for name, entry in data.items():
        if name not in ENTRIES:
            _fail(path, name, f"is not an event the model knows; allowed: {allowed}")
        if not isinstance(entry, dict):
            _fail(path, name, f"must be a table with the fields {', '.join(FIELDS)}")
        missing = [f for f in FIELDS if f not in entry]
        extra = [f for f in entry if f not in FIELDS]
        if missing or extra:
            _fail(path, name, f"{'missing field ' + ', '.join(missing) if missing else 'unknown field ' + ', '.join(extra)}"
                              f"; the fields are {', '.join(FIELDS)}")
        for field, (kind, meaning) in FIELDS.items():
            value = entry[field]
            if kind is float and not _is_number(value):
                _fail(path, name, f"{field} = {value!r} is not allowed: a finite number ({meaning})")
            if kind is str and not (isinstance(value, str) and value.strip()):
                _fail(path, name, f"{field} = {value!r} is not allowed: a non-empty string ({meaning})")
        if entry["unit"] != ENTRIES[name]:
            _fail(path, name, f"unit = {entry['unit']!r} is not allowed: it must be {ENTRIES[name]!r}")
        if entry["value"] < 0:
            _fail(path, name, f"value = {entry['value']!r} is not allowed: it must be >= 0")
        expect = entry["source_value"] * entry["factor"]
        if not math.isclose(entry["value"], expect, rel_tol=FACTOR_RTOL, abs_tol=1e-12):
            _fail(path, name, f"value = {entry['value']!r} is not allowed: it must equal source_value x factor "
                              f"= {expect:.6g} (within {FACTOR_RTOL:.1%})")
    missing = [n for n in ENTRIES if n not in data]
    if missing:
        _fail(path, missing[0], f"is missing; a table needs every entry: {allowed}")
    return EnergyTable(str(path), data)


# -- events ---------------------------------------------------------------------------------
def _dims(cfg):
    pe = cfg.pe_array
    return pe.rows, pe.cols, pe.block_size


#: Events computed from the counters that the machine model predicts exactly (no timing counter).
COUNTED_EVENTS = ("macs", "macs_skipped", "macs_dense", "operand_register_bits", "ring_rotations",
                  "ring_register_bits", "accumulator_register_bits", "sram_a_read_bits", "sram_a_write_bits",
                  "sram_b_read_bits", "sram_b_write_bits", "bitmap_register_bits", "emd_groups_decoded",
                  "emd_groups_encoded", "emd_values", "transposer_beats", "transposer_register_bits",
                  "external_bits_raw", "external_bits_emd", "external_bits_emd_raw_equiv")


def event_counts(cfg, counters: dict) -> dict:
    """The model's events from the top's counters (names of ``golden.isa.Counter``) and ``cfg``.

    Uses no timing counter, so the RTL's counters and the machine model's give the same events.
    """
    from .machine import TIMING_COUNTERS

    missing = [c.name for c in Counter if c.name not in counters and c not in TIMING_COUNTERS]
    if missing:
        raise ValueError(f"counters: {', '.join(missing)} missing; every golden.isa.Counter but the timing "
                         "ones is needed")
    c = {name: int(v) for name, v in counters.items()}
    r, cols, k = _dims(cfg)
    mem_bits, group = 16 * k, cfg.emd.group
    rotations = max(0, c["EX_STEPS"] - c["A_READS"])
    ev = {
        "macs": c["MACS"], "macs_dense": c["MACS_DENSE"], "macs_skipped": max(0, c["MACS_DENSE"] - c["MACS"]),
        "operand_register_bits": c["EX_STEPS"] * 16 * (r + cols), "ring_rotations": rotations,
        "ring_register_bits": rotations * 16 * r, "accumulator_register_bits": c["MACS"] * ACC_BITS,
        "sram_a_read_bits": c["A_READS"] * 16 * r, "sram_a_write_bits": c["A_WRITES"] * 16 * r,
        "sram_b_read_bits": c["B_READS"] * 16 * cols, "sram_b_write_bits": c["B_WRITES"] * 16 * cols,
        "bitmap_register_bits": c["BITMAP_WRITES"] * cfg.pe_array.max_blocks,
        "emd_groups_decoded": c["EMD_GROUPS_DECODED"], "emd_groups_encoded": c["EMD_GROUPS_ENCODED"],
        "emd_values": (c["EMD_GROUPS_DECODED"] + c["EMD_GROUPS_ENCODED"]) * group,
        "transposer_beats": c["TRANSPOSER_TILES"] * k,
        "transposer_register_bits": c["TRANSPOSER_TILES"] * k * 2 * 16 * k,
        "external_bits_raw": (c["MEM_READ_RAW"] + c["MEM_WRITE_RAW"]) * mem_bits,
        "external_bits_emd": (c["MEM_READ_EMD"] + c["MEM_WRITE_EMD"]) * mem_bits,
        "external_bits_emd_raw_equiv": (c["EMD_GROUPS_DECODED"] + c["EMD_GROUPS_ENCODED"]) * group * 16,
    }
    assert tuple(sorted(ev)) == tuple(sorted(COUNTED_EVENTS))
    return ev


def event_mismatches(cfg, chip_counters: dict, model_counters: dict) -> list[str]:
    """Every event of :func:`event_counts` that differs between the chip's counters and the
    machine model's (``name: chip X, machine model Y``); empty when the energy model sees the same
    activity from both."""
    chip, model = event_counts(cfg, chip_counters), event_counts(cfg, model_counters)
    return [f"energy event {n}: chip {chip[n]}, machine model {model[n]}" for n in COUNTED_EVENTS if chip[n] != model[n]]


def sram_bits(cfg) -> dict:
    """Operand SRAM bits of the top: per buffer of one bank, and in total over the banks."""
    pe = cfg.pe_array
    a, b = pe.a_depth * pe.rows * 16, pe.b_depth * pe.cols * 16
    return {"a_bank": a, "b_bank": b, "total": pe.banks * (a + b)}


def logic_area_ge(cfg) -> float:
    """Logic GE of a top without a synthesis figure: the line through the tiny and default tops."""
    return AREA_PER_PE_GE * cfg.pe_array.rows * cfg.pe_array.cols + AREA_FIXED_GE


def _sram_pj_per_bit(table: EnergyTable, bits: int) -> float:
    return table["sram_bit_8kib"] * (bits / 8 / SRAM_REF_BYTES) ** table["sram_capacity_exponent"]


def _components(cfg, ev: dict, table: EnergyTable, vector_flops: float, host_bits: float, seconds: float,
                area_total_ge: float) -> dict:
    """Joules per component (chip components first, then SYSTEM_COMPONENTS)."""
    pj = 1e-12
    sram = sram_bits(cfg)
    e_a, e_b = _sram_pj_per_bit(table, sram["a_bank"]), _sram_pj_per_bit(table, sram["b_bank"])
    reg = table["register_bit"]
    emd_value = EMD_ADDS_PER_VALUE * table["int8_add"] + EMD_REG_BITS_PER_VALUE * reg
    return {
        "mac_multiply": ev["macs"] * table["bf16_mul"] * pj,
        "mac_add": ev["macs"] * table["fp32_add"] * pj,
        "mac_skipped": ev["macs_skipped"] * table["mac_skipped"] * pj,
        "operand_registers": (ev["operand_register_bits"] + ev["ring_register_bits"]) * reg * pj,
        "accumulators": ev["accumulator_register_bits"] * reg * pj,
        "sram_a": (ev["sram_a_read_bits"] + ev["sram_a_write_bits"]) * e_a * pj,
        "sram_b": (ev["sram_b_read_bits"] + ev["sram_b_write_bits"]) * e_b * pj,
        "bitmap": ev["bitmap_register_bits"] * reg * pj,
        "emd_codec": ev["emd_values"] * emd_value * pj,
        "transposer": ev["transposer_register_bits"] * reg * pj,
        "vector_flops": vector_flops * table["vector_flop"] * pj,
        "leakage": area_total_ge * table["leakage_per_ge"] * 1e-9 * seconds,
        "external_memory": (ev["external_bits_raw"] + ev["external_bits_emd"]) * table["dram_bit"] * pj,
        "host_memory": host_bits * table["dram_bit"] * pj,
    }


def update_energy(cfg, run_result: dict, table=None, *, area_ge: float | None = None,
                  overrides: dict | None = None) -> dict:
    """Energy and efficiency of one TD3 update.

    Parameters
    ----------
    cfg : hdl.omnidrl.OmniDRLConfig
    run_result : dict
        ``golden.run_top.run_machine``'s result (``counters``, ``cycles``, ``host_flops``,
        ``host_bytes_read``, ``host_bytes_written``); an RTL result with these keys works too.
    table : EnergyTable, path or None
        The energy table (None: ``golden/energy_table.toml``).
    area_ge : float, optional
        Logic GE of the top (a synthesis figure); default :func:`logic_area_ge`.
    overrides : dict, optional
        Event counts to replace (ablations: ``external_bits_emd`` etc.), and ``extra_host_bits``.

    Returns
    -------
    dict
        ``total_j``, ``chip_j``, ``by_component`` (J), ``events``, ``flops_executed``,
        ``flops_dense_equiv`` (2 per MAC + the host's vector FLOPs), ``seconds``, ``clock_hz``,
        ``flops_per_s``, ``tflops_per_w_executed`` / ``tflops_per_w_dense_equiv`` (on-chip energy),
        the same with ``_system`` (total energy), ``iterations_per_j`` (1 / total_j),
        ``iterations_per_j_chip``, ``area_ge``, ``buffers`` (per operand buffer: bits per bank, banks,
        word width, energy per bit), ``mac_energy_j`` and ``peak`` (:func:`peak`).
    """
    table = table if isinstance(table, EnergyTable) else load_table(table)
    overrides = dict(overrides or {})
    ev = event_counts(cfg, run_result["counters"])
    extra_host_bits = overrides.pop("extra_host_bits", 0)
    unknown = [n for n in overrides if n not in ev]
    if unknown:
        raise ValueError(f"overrides: {', '.join(unknown)} not allowed; events are {', '.join(COUNTED_EVENTS)}")
    ev.update(overrides)
    clock_hz = table["clock"] * 1e6
    cycles = int(run_result["cycles"])
    seconds = cycles / clock_hz
    logic = float(area_ge) if area_ge is not None else logic_area_ge(cfg)
    sram_ge = sram_bits(cfg)["total"] * table["sram_ge_per_bit"]
    vector_flops = float(run_result.get("host_flops", 0))
    host_bits = 8 * (run_result.get("host_bytes_read", 0) + run_result.get("host_bytes_written", 0)) + extra_host_bits
    comp = _components(cfg, ev, table, vector_flops, host_bits, seconds, logic + sram_ge)
    chip = sum(v for n, v in comp.items() if n not in SYSTEM_COMPONENTS)
    total = sum(comp.values())
    executed = 2 * ev["macs"] + vector_flops
    dense = 2 * ev["macs_dense"] + vector_flops
    ev = dict(ev, cycles=cycles, vector_flops=vector_flops, host_memory_bits=host_bits)
    return {
        "total_j": total, "chip_j": chip, "by_component": comp, "events": ev,
        "flops_executed": executed, "flops_dense_equiv": dense, "seconds": seconds, "clock_hz": clock_hz,
        "flops_per_s": executed / seconds if seconds else 0.0,
        "tflops_per_w_executed": executed / chip / 1e12 if chip else 0.0,
        "tflops_per_w_dense_equiv": dense / chip / 1e12 if chip else 0.0,
        "tflops_per_w_executed_system": executed / total / 1e12 if total else 0.0,
        "tflops_per_w_dense_equiv_system": dense / total / 1e12 if total else 0.0,
        "iterations_per_j": 1.0 / total if total else 0.0, "iterations_per_j_chip": 1.0 / chip if chip else 0.0,
        "area_ge": {"logic": logic, "sram": sram_ge, "total": logic + sram_ge},
        "buffers": {name: {"bank_bits": bits, "banks": cfg.pe_array.banks, "width_bits": 16 * lanes,
                           "pj_per_bit": _sram_pj_per_bit(table, bits)}
                    for name, bits, lanes in (("a", sram_bits(cfg)["a_bank"], cfg.pe_array.rows),
                                              ("b", sram_bits(cfg)["b_bank"], cfg.pe_array.cols))},
        "mac_energy_j": (table["bf16_mul"] + table["fp32_add"] + ACC_BITS * table["register_bit"]) * 1e-12,
        "peak": peak(cfg, table, area_ge=logic),
        "table": table.path,
    }


def peak(cfg, table=None, *, area_ge: float | None = None) -> dict:
    """Dense GEMM at full utilization (one step per cycle, operands from the buffers).

    Per cycle: R C MACs (multiply, add, accumulator write), the two broadcast operand registers,
    one A and one B buffer word read, and the leakage of the whole chip for one clock period.
    """
    table = table if isinstance(table, EnergyTable) else load_table(table)
    r, cols, _ = _dims(cfg)
    f = table["clock"] * 1e6
    sram = sram_bits(cfg)
    logic = float(area_ge) if area_ge is not None else logic_area_ge(cfg)
    total_ge = logic + sram["total"] * table["sram_ge_per_bit"]
    pj_cycle = (r * cols * (table["bf16_mul"] + table["fp32_add"] + ACC_BITS * table["register_bit"])
                + 16 * (r + cols) * table["register_bit"]
                + 16 * r * _sram_pj_per_bit(table, sram["a_bank"]) + 16 * cols * _sram_pj_per_bit(table, sram["b_bank"]))
    watts = pj_cycle * 1e-12 * f + total_ge * table["leakage_per_ge"] * 1e-9
    flops = 2 * r * cols * f
    return {"tflops": flops / 1e12, "watts": watts, "tflops_per_w": flops / watts / 1e12,
            "tflops_per_w_dynamic_only": flops / (pj_cycle * 1e-12 * f) / 1e12}


def achievable_clock_hz(min_period_ns: float, table=None) -> float:
    """The clock the synthesis critical path allows at 28 nm: 1 / (period x delay_scale)."""
    table = table if isinstance(table, EnergyTable) else load_table(table)
    return 1e9 / (min_period_ns * table["delay_scale"])


def mfec_ratios(activity: dict, table=None) -> dict:
    """MFEC (ECIM lane) against a conventional bf16 MAC, from ``golden.mfec`` activity counts.

    ``activity`` has ``products``, ``exp_reads_8b``, ``mant_reads_8b`` and ``multiplies`` (the
    sums of :class:`golden.mfec.MfecResult`'s fields). Conventional: every product is one bf16
    multiply and one fp32 add, and reads a 16-bit weight. MFEC: every product costs 3 int8 adds
    on the exponent side (ea + eb, the running-maximum compare, the shift S_max - S_i); every
    multiply not skipped one int8 multiply (8 x 8 significands) and one int32 add (align and
    accumulate in fixed point). Weight reads are 8-bit exponents always and 8-bit
    sign + mantissa for the non-skipped products, against 16 bits, at one SRAM energy per bit.
    """
    table = table if isinstance(table, EnergyTable) else load_table(table)
    n = activity["products"]
    conventional = n * (table["bf16_mul"] + table["fp32_add"])
    mfec = n * 3 * table["int8_add"] + activity["multiplies"] * (table["int8_mul"] + table["int32_add"])
    bits_mfec = 8 * (activity["exp_reads_8b"] + activity["mant_reads_8b"])
    return {"mac_power_ratio": mfec / conventional, "memory_power_ratio": bits_mfec / (16 * n),
            "mfec_pj_per_product": mfec / n, "conventional_pj_per_product": conventional / n}


def gate_calibration(path) -> dict | None:
    """The gate-level toggle calibration (``bench/results/gate_toggles.json``), or None if absent.

    Returns ``energy_per_ge_toggle_j``, ``pe_mac_j`` (the PE's energy per MAC from its netlist's
    toggles), ``emd_value_j`` (the EMD encoder's energy per op) and ``mfec_mac_power_ratio_gate``;
    a file of another shape raises ValueError naming the missing key.
    """
    path = Path(path)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    try:
        blocks = data["blocks"]
        out = {"energy_per_ge_toggle_j": float(data["energy_per_ge_toggle_j"]),
               "pe_mac_j": float(blocks["pe"]["energy_per_op_j"]), "pe_op": blocks["pe"]["op"],
               "emd_enc_op_j": float(blocks["emd_enc"]["energy_per_op_j"]), "emd_enc_op": blocks["emd_enc"]["op"],
               "ecim_op_j": float(blocks["ecim"]["energy_per_op_j"]), "ecim_op": blocks["ecim"]["op"],
               "mfec_mac_power_ratio_gate": float(data["mfec_mac_power_ratio_gate"])}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: key {exc} missing or malformed; expected energy_per_ge_toggle_j, "
                         "blocks.{pe,emd_enc,ecim}.{energy_per_op_j,toggles_per_op,area_ge,op}, "
                         "mfec_mac_power_ratio_gate") from None
    return out


def mfec_activity(max_dots: int = 300, seed: int = 0) -> dict:
    """Activity of MFEC (``MfecParams()``, the numerics of ``hdl.ecim.EcimConfig()``) on the dot
    products of the committed TD3 trace.

    Every layer of ``tests/data/td3_halfcheetah_trace.npz`` in its three passes (forward,
    input gradient, weight gradient), at most ``max_dots`` sampled dot products each
    (``golden.mfec.training_dot_operands``). Returns the sums :func:`mfec_ratios` takes.
    """
    from .mfec import MfecParams, mfec_dot_detail, training_dot_operands
    from .traces import iter_tensors, load_trace

    params = MfecParams()
    layers: dict = {}
    for name, kind, t in iter_tensors(load_trace(), kinds=("W", "x", "dy")):
        layers.setdefault(name, {})[kind] = t
    layers = {k: v for k, v in layers.items() if "W" in v and "x" in v}
    out = {"products": 0, "exp_reads_8b": 0, "mant_reads_8b": 0, "multiplies": 0, "dot_products": 0}
    for _, _, a, b, _ in training_dot_operands(layers, params.n, max_dots=max_dots, seed=seed):
        if a.shape[1] // params.n > params.max_groups:
            continue
        r = mfec_dot_detail(a, b, params)
        out["products"] += int(a.size)
        out["exp_reads_8b"] += int(r.exp_reads.sum())
        out["mant_reads_8b"] += int(r.mant_reads.sum())
        out["multiplies"] += int(r.multiplies.sum())
        out["dot_products"] += int(a.shape[0])
    return out
