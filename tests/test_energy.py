"""The energy model (golden/energy.py), its data file, and ``omnidrl energy``.

The arithmetic is checked on hand-computed cases (a table of round numbers, counters chosen by
hand); the events' equality between the RTL and the machine model on the tiny top is checked by
``tests/test_omnidrl_cocotb.py::test_omnidrl_td3_update`` (``golden.energy.event_mismatches`` on
every small TD3 update), and here on the recorded default-top HalfCheetah runs.
"""

import json
import re
from pathlib import Path

import pytest

from flows.cli import main
from flows.energy import gate_note
from golden.energy import (ENTRIES, FIELDS, EnergyTableError, achievable_clock_hz, event_counts,
                           event_mismatches, gate_calibration, load_table, mfec_ratios, peak, update_energy)
from golden.isa import Counter
from hdl.omnidrl import OmniDRLConfig

ROOT = Path(__file__).resolve().parents[1]

# round numbers, all with source_value = value and factor 1
HAND = {"bf16_mul": 1.0, "fp32_add": 2.0, "mac_skipped": 0.5, "vector_flop": 3.0, "int8_add": 0.1, "int8_mul": 0.2,
        "int32_add": 0.3, "register_bit": 0.01, "sram_bit_8kib": 0.1, "sram_capacity_exponent": 0.5, "dram_bit": 10.0,
        "leakage_per_ge": 1.0, "sram_ge_per_bit": 1.0, "ge_area": 1.0, "delay_scale": 0.5, "clock": 100.0}


def _toml(entries: dict) -> str:
    out = []
    for name, e in entries.items():
        out.append(f"[{name}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in e.items()]
    return "\n".join(out) + "\n"


def _entries(values=HAND) -> dict:
    return {n: {"value": v, "unit": ENTRIES[n], "source": "hand", "source_value": v, "factor": 1.0,
                "scaling": "none"} for n, v in values.items()}


@pytest.fixture
def hand_table(tmp_path):
    path = tmp_path / "hand.toml"
    path.write_text(_toml(_entries()))
    return load_table(path)


def _counters(**kw):
    c = {x.name: 0 for x in Counter}
    c.update(kw)
    return c


HAND_RUN = {"counters": _counters(MACS=992, MACS_DENSE=1600, EX_STEPS=62, A_READS=50, B_READS=62, A_WRITES=10,
                                  B_WRITES=20, BITMAP_WRITES=3, MEM_READ_RAW=5, MEM_READ_EMD=7, MEM_WRITE_RAW=11,
                                  MEM_WRITE_EMD=2, EMD_GROUPS_DECODED=4, EMD_GROUPS_ENCODED=1, TRANSPOSER_TILES=2,
                                  CYCLES=1000),
            "cycles": 1000, "host_flops": 100, "host_bytes_read": 10, "host_bytes_written": 5}


def _tiny():
    cfg = OmniDRLConfig.preset("tiny")
    pe = cfg.pe_array  # the hand figures below assume these
    assert (pe.rows, pe.cols, pe.block_size, pe.a_depth, pe.b_depth, pe.max_blocks, pe.banks, cfg.emd.group) == \
        (4, 4, 4, 16384, 1024, 8, 2, 8)
    return cfg


def test_update_energy_hand_computed(hand_table):
    e = update_energy(_tiny(), HAND_RUN, hand_table, area_ge=1000)
    # A bank 16384 x 64 bits = 128 KiB: 0.1 x 16^0.5 = 0.4 pJ/bit; B bank 1024 x 64 bits = 8 KiB: 0.1 pJ/bit
    want_pj = {"mac_multiply": 992 * 1.0, "mac_add": 992 * 2.0, "mac_skipped": 608 * 0.5,
               "operand_registers": (62 * 16 * 8 + 12 * 16 * 4) * 0.01, "accumulators": 992 * 32 * 0.01,
               "sram_a": 60 * 64 * 0.4, "sram_b": 82 * 64 * 0.1, "bitmap": 3 * 8 * 0.01,
               "emd_codec": 40 * (3 * 0.1 + 16 * 0.01), "transposer": 2 * 4 * 2 * 16 * 4 * 0.01,
               "vector_flops": 300.0, "leakage": (1000 + 2_228_224) * 1e-9 * 1e-5 * 1e12,
               "external_memory": 25 * 64 * 10.0, "host_memory": 120 * 10.0}
    assert set(e["by_component"]) == set(want_pj)
    for name, pj in want_pj.items():
        assert e["by_component"][name] == pytest.approx(pj * 1e-12, rel=1e-9), name
    assert e["chip_j"] == pytest.approx(28366.4e-12, rel=1e-9)
    assert e["total_j"] == pytest.approx(45566.4e-12, rel=1e-9)
    assert (e["flops_executed"], e["flops_dense_equiv"]) == (2084, 3300)
    assert e["seconds"] == pytest.approx(1e-5)
    assert e["tflops_per_w_executed"] == pytest.approx(2084 / 28366.4, rel=1e-9)
    assert e["tflops_per_w_dense_equiv"] == pytest.approx(3300 / 28366.4, rel=1e-9)
    assert e["tflops_per_w_dense_equiv_system"] == pytest.approx(3300 / 45566.4, rel=1e-9)
    assert e["iterations_per_j"] == pytest.approx(1 / 45566.4e-12, rel=1e-9)
    assert e["events"]["external_bits_emd_raw_equiv"] == 5 * 8 * 16
    assert e["events"]["ring_rotations"] == 12 and e["events"]["transposer_beats"] == 8


def test_update_energy_overrides(hand_table):
    """EMD off: the EMD words replaced by their raw bits, no codec energy."""
    cfg = _tiny()
    e = update_energy(cfg, HAND_RUN, hand_table, area_ge=1000, overrides={"external_bits_emd": 640, "emd_values": 0,
                                                                          "extra_host_bits": 80})
    assert e["by_component"]["external_memory"] == pytest.approx((16 * 64 + 640) * 10e-12)
    assert e["by_component"]["emd_codec"] == 0
    assert e["by_component"]["host_memory"] == pytest.approx(200 * 10e-12)
    with pytest.raises(ValueError, match="not allowed"):
        update_energy(cfg, HAND_RUN, hand_table, overrides={"dram": 1})


def test_peak_clock_and_mfec_hand_computed(hand_table):
    cfg = _tiny()
    # per cycle: 16 x (1 + 2 + 32 x 0.01) + 16 x 8 x 0.01 + 64 x 0.4 + 64 x 0.1 = 86.4 pJ at 100 MHz
    watts = 86.4e-12 * 1e8 + (1000 + 2_228_224) * 1e-9
    pk = peak(cfg, hand_table, area_ge=1000)
    assert pk["tflops"] == pytest.approx(3.2e-3)
    assert pk["tflops_per_w"] == pytest.approx(3.2e9 / watts / 1e12)
    assert pk["tflops_per_w_dynamic_only"] == pytest.approx(3.2e9 / 8.64e-3 / 1e12)
    assert achievable_clock_hz(4.0, hand_table) == pytest.approx(500e6)
    r = mfec_ratios({"products": 100, "exp_reads_8b": 100, "mant_reads_8b": 40, "multiplies": 40}, hand_table)
    assert r["mac_power_ratio"] == pytest.approx(50 / 300)
    assert r["memory_power_ratio"] == pytest.approx(8 * 140 / 1600)


def test_default_table_and_schema_doc():
    """The shipped table loads; docs/energy.md lists exactly its fields and entries, with their units
    and values."""
    table = load_table()
    assert list(table.entries) == list(ENTRIES)
    doc = (ROOT / "docs" / "energy.md").read_text()
    fields = re.search(r"<!-- energy-fields -->\n(.*?)<!-- /energy-fields -->", doc, re.S).group(1)
    rows = [[c.strip(" `") for c in line.strip("|").split("|")] for line in fields.strip().splitlines()[2:]]
    assert [r[0] for r in rows] == list(FIELDS)
    entries = re.search(r"<!-- energy-entries -->\n(.*?)<!-- /energy-entries -->", doc, re.S).group(1)
    rows = [[c.strip(" `") for c in line.strip("|").split("|")] for line in entries.strip().splitlines()[2:]]
    assert [r[0] for r in rows] == list(ENTRIES)
    for name, unit, value, *_ in rows:
        assert unit == ENTRIES[name], name
        assert float(value) == table[name], name


@pytest.mark.parametrize("edit, words", [
    (lambda e: e.update(dram=e["dram_bit"]), ["'dram'", "allowed: bf16_mul"]),
    (lambda e: e["bf16_mul"].pop("source"), ["'bf16_mul'", "missing field source"]),
    (lambda e: e["bf16_mul"].update(colour="red"), ["'bf16_mul'", "unknown field colour"]),
    (lambda e: e["fp32_add"].update(unit="nJ/op"), ["'fp32_add'", "'pJ/op'"]),
    (lambda e: e["fp32_add"].update(value="big"), ["'fp32_add'", "finite number"]),
    (lambda e: e["clock"].update(value=300.0), ["'clock'", "source_value x factor"]),
    (lambda e: e.pop("leakage_per_ge"), ["'leakage_per_ge'", "is missing"]),
])
def test_bad_tables_one_line(tmp_path, capsys, edit, words):
    entries = _entries()
    edit(entries)
    path = tmp_path / "bad.toml"
    path.write_text(_toml(entries))
    with pytest.raises(EnergyTableError) as exc:
        load_table(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg
    assert main(["energy", "--preset", "tiny", "--table", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and words[0] in err


def test_unreadable_and_malformed_files(tmp_path, capsys):
    bad = tmp_path / "x.toml"
    bad.write_text("[bf16_mul\nvalue = ")
    for path, what in [(bad, "not valid TOML"), (tmp_path / "none.toml", "cannot be read")]:
        assert main(["energy", "--preset", "tiny", "--table", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and what in err and str(path) in err
    assert main(["energy", "--preset", "huge"]) == 2
    assert "--preset 'huge' is not allowed" in capsys.readouterr().err
    assert main(["energy", "--workload", "ant"]) == 2
    assert "--workload 'ant' is not allowed" in capsys.readouterr().err
    assert main(["energy", "--preset", "tiny", "--mfec-dots", "0"]) == 2
    assert "--mfec-dots 0 is not allowed" in capsys.readouterr().err


def test_json_table_equals_toml(tmp_path, hand_table):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(_entries()))
    assert load_table(path).entries == hand_table.entries


GATE = {"energy_per_ge_toggle_j": 2e-15, "mfec_mac_power_ratio_gate": 0.8,
        "blocks": {b: {"energy_per_op_j": e, "toggles_per_op": t, "area_ge": a, "op": op}
                   for b, e, t, a, op in [("pe", 1.5e-12, 750.0, 3600.0, "MAC"),
                                          ("emd_enc", 3e-13, 150.0, 40000.0, "value"),
                                          ("ecim", 1.2e-12, 600.0, 11000.0, "product")]}}


def test_gate_calibration_fixture(tmp_path):
    path = tmp_path / "gate_toggles.json"
    assert gate_calibration(path) is None
    gate, note = gate_note(path)
    assert gate is None and "absent" in note and "table" in note and "\n" not in note
    path.write_text(json.dumps(GATE))
    gate = gate_calibration(path)
    assert gate["pe_mac_j"] == 1.5e-12 and gate["pe_op"] == "MAC" and gate["mfec_mac_power_ratio_gate"] == 0.8
    gate, note = gate_note(path)
    assert "PE 1.500 pJ/MAC" in note and "the model uses the table" in note
    path.write_text(json.dumps({"energy_per_ge_toggle_j": 1e-15, "blocks": {}}))
    gate, note = gate_note(path)
    assert gate is None and "missing" in note


def test_events_rtl_equal_machine_recorded():
    """The recorded HalfCheetah updates on the default top: the RTL's counters (Verilator) and the
    machine model's give the same energy events (timing counters differ and are not used)."""
    rec = json.loads((ROOT / "bench" / "results" / "top_td3.json").read_text())
    cfg = OmniDRLConfig.preset("default")
    model = {g["workload"]: g["counters"] for g in rec["golden"] if g["preset"] == "default"}
    assert len(rec["rtl"]) == 3
    for r in rec["rtl"]:
        assert event_mismatches(cfg, r["counters"], model[r["workload"]]) == []
        assert r["counters"]["CYCLES"] != model[r["workload"]]["CYCLES"]
    changed = dict(model["halfcheetah-sparse"], TRANSPOSER_TILES=1023)
    assert event_mismatches(cfg, changed, model["halfcheetah-sparse"]) == [
        "energy event transposer_beats: chip 8184, machine model 8192",
        "energy event transposer_register_bits: chip 2095104, machine model 2097152"]
    with pytest.raises(ValueError, match="MACS missing"):
        event_counts(cfg, {k: v for k, v in changed.items() if k != "MACS"})


def test_cli_tiny_json(capsys):
    """omnidrl energy on the tiny top (the committed machine-model run): figures and the gate line."""
    assert main(["energy", "--preset", "tiny", "--json", "--mfec-dots", "20"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{"):])
    e = doc["energy"]
    assert doc["workload"] == "small-dense" and e["total_j"] > e["chip_j"] > 0
    assert e["events"]["macs"] > 0 and doc["mfec"]["mac_power_ratio"] < 1
    assert "gate-level calibration" in doc["gate_note"]
    assert {r["figure"].split(" (")[0] for r in doc["side_by_side"]} >= {"peak TFLOPS", "peak TFLOPS/W"}


def test_cli_reports_gate_calibration_beside_table(tmp_path, monkeypatch, capsys):
    """With a toggles file of the agreed schema, the MAC energy from the gates is printed beside the
    table's, and the model says it uses the table."""
    import flows.energy

    path = tmp_path / "gate_toggles.json"
    path.write_text(json.dumps(GATE))
    monkeypatch.setattr(flows.energy, "GATE_TOGGLES", path)
    assert main(["energy", "--preset", "tiny", "--mfec-dots", "20"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("energy per MAC"))
    assert "(the model uses this)" in line and "gate-level (MAC) 1.500 pJ" in line
    assert "MFEC MAC power ratio (gates) 0.800" in out
