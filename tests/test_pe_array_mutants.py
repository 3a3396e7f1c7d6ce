"""golden/pe_array.py: the checks that mutation testing (bench/mutation.py) showed were missing.

Each test fails on at least one mutant that survived the golden tests (test_pe_array_golden.py,
test_gst_layers.py) and the two cycle-exact hardware tests run with them.
"""

import numpy as np

from golden.pe_array import CycleReport, sequence_cycles, unpack_lanes


def test_unpack_lanes_default_is_32_bit_lanes():
    got = unpack_lanes((7 << 32) | 0xFFFFFFFF, 2)
    assert got.dtype == np.uint32 and got.tolist() == [0xFFFFFFFF, 7]
    half = unpack_lanes(0x0003_0002_0001, 3, 16)
    assert half.dtype == np.uint16 and half.tolist() == [1, 2, 3]


def test_utilization():
    report = CycleReport(10, 30, 0, 0, 0, 0, 0)
    assert report.utilization == 3.0              # one PE unless told otherwise
    report._pes = 4
    assert report.utilization == 0.75
    assert CycleReport(0, 0, 0, 0, 0, 0, 0).utilization == 0.0


def test_sequence_of_nothing_and_loadless_commands():
    assert sequence_cycles([], banks=1).total == 0
    # (load beats, command cycles): a command without loads is accepted once the previous is done
    seq = sequence_cycles([(3, 5), (0, 2)], banks=2)
    assert (seq.load_start, seq.accepted, seq.done) == ([0, 3], [3, 9], [9, 12])
    first = sequence_cycles([(0, 2)], banks=1)    # nothing to load: the first command starts at once
    assert (first.accepted, first.done) == ([0], [3])
