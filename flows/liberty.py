"""A small gate-equivalent (GE) cell library in Liberty format, written from one table.

No open standard-cell Liberty file ships with Debian or PyPI for offline use, so area is reported
in NAND2 gate equivalents: each cell's area is its X1 area in the NanGate 45 nm Open Cell Library
(FreePDK45) divided by NAND2_X1's 0.798 um^2 (INV_X1 0.532, AND2/OR2/AOI21/OAI21 1.064,
XOR2/XNOR2 1.596, MUX2 1.862, DFF_X1 4.522 um^2). GE is the unit area papers use to compare
across processes, so ratios between our blocks are meaningful; absolute um^2 needs a real PDK.

The delays are single numbers per cell (no slew or load tables), of the order of a 45 nm X1 cell
with a fan-out of about two. They make OpenSTA's worst path a logic-depth measure weighted by cell
type, good for comparing pipelines of the same design; they are not sign-off timing.
See ``docs/flows.md``.
"""

from pathlib import Path

__all__ = ["CELLS", "NAND2_UM2", "write_liberty"]

NAND2_UM2 = 0.798

# name: (area in GE, function or None for the flop, input pins, delay in ns)
CELLS = {
    "INV": (0.532 / NAND2_UM2, "!A", ["A"], 0.015),
    "BUF": (0.798 / NAND2_UM2, "A", ["A"], 0.030),
    "NAND2": (1.0, "!(A&B)", ["A", "B"], 0.020),
    "NOR2": (1.0, "!(A|B)", ["A", "B"], 0.025),
    "AND2": (1.064 / NAND2_UM2, "(A&B)", ["A", "B"], 0.035),
    "OR2": (1.064 / NAND2_UM2, "(A|B)", ["A", "B"], 0.040),
    "XOR2": (1.596 / NAND2_UM2, "(A^B)", ["A", "B"], 0.050),
    "XNOR2": (1.596 / NAND2_UM2, "!(A^B)", ["A", "B"], 0.050),
    "AOI21": (1.064 / NAND2_UM2, "!((A1&A2)|B)", ["A1", "A2", "B"], 0.030),
    "OAI21": (1.064 / NAND2_UM2, "!((A1|A2)&B)", ["A1", "A2", "B"], 0.030),
    "MUX2": (1.862 / NAND2_UM2, "((S&B)|(A&!S))", ["A", "B", "S"], 0.060),
    "DFF": (4.522 / NAND2_UM2, None, ["D", "CK"], 0.090),
}
DFF_SETUP_NS = 0.04


def _timing_block(pin: str, delay: float, sense: str = "non_unate") -> str:
    return (f"      timing() {{\n        related_pin : \"{pin}\";\n        timing_sense : {sense};\n"
            f"        cell_rise(scalar) {{ values(\"{delay:.3f}\"); }}\n"
            f"        cell_fall(scalar) {{ values(\"{delay:.3f}\"); }}\n"
            f"        rise_transition(scalar) {{ values(\"0.020\"); }}\n"
            f"        fall_transition(scalar) {{ values(\"0.020\"); }}\n      }}\n")


def liberty_text() -> str:
    out = ["/* OmniDRL-gen gate-equivalent library: areas in NAND2 equivalents (see flows/liberty.py). */",
           "library(omnidrl_ge) {",
           "  delay_model : table_lookup;", "  time_unit : \"1ns\";", "  voltage_unit : \"1V\";",
           "  current_unit : \"1mA\";", "  capacitive_load_unit(1, pf);", "  pulling_resistance_unit : \"1kohm\";",
           "  leakage_power_unit : \"1nW\";", "  nom_voltage : 1.0;", "  nom_temperature : 25.0;", "  nom_process : 1.0;",
           "  default_cell_leakage_power : 0;", "  default_fanout_load : 1;", "  default_inout_pin_cap : 0.001;",
           "  default_input_pin_cap : 0.001;", "  default_output_pin_cap : 0;", "  default_max_transition : 1.0;",
           "  slew_lower_threshold_pct_rise : 20;", "  slew_upper_threshold_pct_rise : 80;",
           "  slew_lower_threshold_pct_fall : 20;", "  slew_upper_threshold_pct_fall : 80;",
           "  input_threshold_pct_rise : 50;", "  input_threshold_pct_fall : 50;",
           "  output_threshold_pct_rise : 50;", "  output_threshold_pct_fall : 50;"]
    for name, (area, function, pins, delay) in CELLS.items():
        out.append(f"  cell({name}) {{\n    area : {area:.4f};")
        if function is None:  # positive-edge D flip-flop
            out.append("    ff(IQ, IQN) { clocked_on : \"CK\"; next_state : \"D\"; }")
            out.append("    pin(CK) { direction : input; capacitance : 0.001; clock : true; }")
            out.append("    pin(D) {\n      direction : input;\n      capacitance : 0.001;\n"
                       "      timing() {\n        related_pin : \"CK\";\n        timing_type : setup_rising;\n"
                       f"        rise_constraint(scalar) {{ values(\"{DFF_SETUP_NS:.3f}\"); }}\n"
                       f"        fall_constraint(scalar) {{ values(\"{DFF_SETUP_NS:.3f}\"); }}\n      }}\n    }}")
            out.append("    pin(Q) {\n      direction : output;\n      function : \"IQ\";\n"
                       "      timing() {\n        related_pin : \"CK\";\n        timing_type : rising_edge;\n"
                       f"        cell_rise(scalar) {{ values(\"{delay:.3f}\"); }}\n"
                       f"        cell_fall(scalar) {{ values(\"{delay:.3f}\"); }}\n"
                       "        rise_transition(scalar) { values(\"0.020\"); }\n"
                       "        fall_transition(scalar) { values(\"0.020\"); }\n      }\n    }")
        else:
            for pin in pins:
                out.append(f"    pin({pin}) {{ direction : input; capacitance : 0.001; }}")
            body = "".join(_timing_block(pin, delay) for pin in pins)
            out.append(f"    pin(Y) {{\n      direction : output;\n      function : \"{function}\";\n{body}    }}")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def write_liberty(path: Path) -> Path:
    """Write the library to ``path`` (only when the content changed) and return the path."""
    path = Path(path)
    text = liberty_text()
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path
