"""golden/machine.py and golden/program.py on hand-made programs: every op, the memory-side
formats, every error code flagged and recovered from, counters, undefined words and cycles."""

from __future__ import annotations

import numpy as np
import pytest

from golden import emd
from golden.bf16 import f32_round_to_bf16_bits, gemm
from golden.codes import EmdDecoderError, LoadSel, Mode, PEArrayError
from golden.isa import Command, Counter, Fmt, IsaShape, Op, TopError, out_beats
from golden.machine import Machine, Status, TIMING_COUNTERS
from golden.pe_array import (ArrayShape, a_words_circ, a_words_dense, a_words_sparse, b_words, circ_dv,
                             cycle_model, gemm_sparse, make_job, sequence_cycles)
from golden.program import (ChipSegment, Memory, a_circ_words, a_dense_words, a_sparse_words, b_dense_words,
                            bitmap_words, lanes_to_words, words_to_lanes)

SHAPE = IsaShape(k=4, buf_bits=8, dim_bits=12, mem_addr_bits=16, max_blocks=4, a_depth=256, b_depth=256)
K = SHAPE.k
ARR = ArrayShape(K, K, K)
FMT = emd.DEFAULT


def rand_bf16(rng, shape):
    """Values of mixed magnitude and sign (sums round), as bf16 patterns."""
    n = int(np.prod(shape))
    e = 127 + rng.integers(-8, 9, n)
    return ((rng.integers(0, 2, n) << 15) | (e << 7) | rng.integers(0, 128, n)).astype(np.uint16).reshape(shape)


def load(sel, addr, count, bank=0, fmt=Fmt.RAW, extent=None, buf=0):
    return Command(op=Op.LOAD, bank=bank, sel=sel, fmt=fmt, buf=buf, count=count, addr=addr,
                   extent=count if extent is None else extent)


def gemm_cmd(mode, m, n, k, addr, extent, bank=0, fmt=Fmt.RAW, rnd=0, transpose=0):
    return Command(op=Op.GEMM, bank=bank, fmt=fmt, mode=mode, transpose=transpose, round=rnd, addr=addr,
                   extent=extent, m=m, n=n, k=k)


FENCE = Command(op=Op.FENCE)


def run(machine, *cmds, name="seg"):
    return machine.run_segment(ChipSegment(name, list(cmds)))


def fresh(shape=SHAPE) -> Machine:
    return Machine(shape, FMT, Memory(shape.k))


def beats_of(full: np.ndarray) -> np.ndarray:
    """Output beats of a whole-tile result (tiles row-major, R rows each), written out by hand."""
    mt, nt = full.shape[0] // K, full.shape[1] // K
    return np.concatenate([full[ti * K:(ti + 1) * K, tj * K:(tj + 1) * K] for ti in range(mt) for tj in range(nt)])


# ----------------------------------------------------------------------------- formats and layouts

def test_operand_layouts_are_the_pe_array_layouts():
    rng = np.random.default_rng(0)
    a, b = rand_bf16(rng, (6, 5)), rand_bf16(rng, (5, 7))
    assert lanes_to_words(a_dense_words(a, K)) == a_words_dense(a, K)
    assert lanes_to_words(b_dense_words(b, K)) == b_words(b, K)
    w, bm = rand_bf16(rng, (8, 12)), np.array([[1, 0, 1], [0, 1, 1]], bool)
    assert lanes_to_words(a_sparse_words(w, bm, K)) == a_words_sparse(w, bm, K)
    v = rand_bf16(rng, (2, 3, K))
    assert lanes_to_words(a_circ_words(v)) == a_words_circ(v)
    assert bitmap_words(bm, 4) == [0b101, 0b110, 0, 0]


def test_memory_formats():
    mem = Memory(K)
    mem.write_fp32(10, np.array([0x11111111, 0x22222222, 0x33333333], np.uint32))
    assert mem.word(10) == 0x22222222_11111111  # fp32 value 0 in the low 32 bits
    assert mem.word(11) == 0x33333333
    mem.write_bf16(20, np.array([1, 2, 3, 4, 5], np.uint16))
    assert (mem.word(20), mem.word(21)) == (0x0004_0003_0002_0001, 5)
    values = rand_bf16(np.random.default_rng(1), (40,))
    n = mem.write_emd(30, values, FMT)
    words = emd.encode(values, FMT, word_bits=64)
    assert n == 1 + len(words) and mem.word(30) == len(words)
    assert [mem.word(31 + i) for i in range(len(words))] == words
    assert np.array_equal(mem.read_emd(30, FMT), values)
    assert words_to_lanes([0x0004_0003_0002_0001], K).tolist() == [[1, 2, 3, 4]]
    f = np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)
    mem.write_f32(40, f)
    assert np.array_equal(mem.read_f32(40, (2, 2)), f)
    other = mem.copy()
    assert other == mem
    other.set_word(5000, 1)
    assert mem.diff(other) == [5000]
    other.mark_undefined(5000, 1)
    assert mem.diff(other) == []


# ----------------------------------------------------------------------------- every op

def test_dense_gemm_predicts_every_lane_including_padding():
    """Rows past M and columns past N come from what the buffers hold (here: garbage lanes)."""
    rng = np.random.default_rng(2)
    m, n, k = 6, 7, 5
    a_full, b_full = rand_bf16(rng, (8, k)), rand_bf16(rng, (k, 8))  # padding lanes are not zero
    mach = fresh()
    mem = mach.memory
    mem.write(0, a_dense_words(a_full, K))
    mem.write(100, b_dense_words(b_full, K))
    beats = 2 * 2 * K  # 2 x 2 tiles of R beats
    rep = run(mach, load(LoadSel.A, 0, 2 * k), load(LoadSel.B, 100, 2 * k),
              gemm_cmd(Mode.DENSE, m, n, k, 200, 2 * beats),
              gemm_cmd(Mode.DENSE, m, n, k, 300, beats, rnd=1),
              gemm_cmd(Mode.DENSE, m, n, k, 400, 64, fmt=Fmt.EMD, rnd=1), FENCE)
    assert rep.statuses == [Status()] and rep.faults == []
    full = gemm(a_full, b_full)
    assert np.array_equal(mem.read_fp32(200, beats * K), beats_of(full).reshape(-1))
    rounded = (f32_round_to_bf16_bits(beats_of(full)).reshape(-1)).astype(np.uint16)
    assert np.array_equal(mem.read_bf16(300, beats * K), rounded)
    assert np.array_equal(mem.read_emd(400, FMT), rounded)


def test_emd_load_equals_raw_load():
    rng = np.random.default_rng(3)
    a, b = rand_bf16(rng, (4, 8)), rand_bf16(rng, (8, 4))
    outs = []
    for fmt in (Fmt.RAW, Fmt.EMD):
        mach = fresh()
        mach.memory.write(0, a_dense_words(a, K))
        words = b_dense_words(b, K)
        if fmt == Fmt.EMD:
            used = mach.memory.write_emd(100, words.reshape(-1), FMT)
        else:
            used = mach.memory.write(100, words)
        rep = run(mach, load(LoadSel.A, 0, 8), load(LoadSel.B, 100, 8, fmt=fmt, extent=used),
                  gemm_cmd(Mode.DENSE, 4, 4, 8, 200, 8), FENCE)
        assert rep.faults == []
        outs.append(mach.memory.read(200, 8))
        assert rep.counts[Counter.MEM_READ_EMD] == (used if fmt == Fmt.EMD else 0)
        assert rep.counts[Counter.MEM_READ_RAW] == 8 + (used if fmt == Fmt.RAW else 0)
    assert np.array_equal(outs[0], outs[1])


def test_transpose_then_sparse_gemm_is_the_input_gradient():
    rng = np.random.default_rng(4)
    p_, q_ = 3, 2
    w = rand_bf16(rng, (p_ * K, q_ * K))
    bm = np.array([[1, 0], [1, 1], [0, 1]], bool)
    dyt = rand_bf16(rng, (p_ * K, 5))  # B = dY^T (M_W x batch)
    mach = fresh()
    mem = mach.memory
    blocks = a_sparse_words(w, bm, K)
    mem.write(0, blocks)
    for i, word in enumerate(bitmap_words(bm, p_)):
        mem.set_word(50 + i, word | (0b1100 if i == 0 else 0))  # bits at q >= Q are not W's: ignored
    mem.write(100, b_dense_words(dyt, K))
    rep = run(mach, Command(op=Op.TRANSPOSE, bank=1, addr=0, extent=len(blocks), addr2=50, m=p_, n=q_),
              load(LoadSel.B, 100, 2 * p_ * K, bank=1),
              gemm_cmd(Mode.SPARSE, q_ * K, 5, p_ * K, 200, 2 * 2 * 2 * K, bank=1), FENCE)
    assert rep.faults == []
    bank = mach.banks[1]
    assert np.array_equal(bank.a[:len(blocks)], a_sparse_words(w.T, bm.T, K))
    assert bank.bitmap == bitmap_words(bm.T, SHAPE.max_blocks)
    assert rep.counts[Counter.TRANSPOSER_TILES] == 4
    assert rep.counts[Counter.MEM_READ_RAW] == p_ + 4 * K + 2 * p_ * K
    full = gemm_sparse(w.T, bm.T, np.pad(dyt, ((0, 0), (0, 3))), K)
    assert np.array_equal(mem.read_fp32(200, 2 * 2 * K * K), beats_of(full).reshape(-1))


@pytest.mark.parametrize("mode", ["circ", "circ_t", "wgrad", "dv", "sparse"])
def test_modes_match_the_pe_array_golden(mode):
    rng = np.random.default_rng(5)
    kw = {}
    if mode in ("circ", "circ_t"):
        a, b = rand_bf16(rng, (2, 3, K)), rand_bf16(rng, ((2 if mode == "circ_t" else 3) * K, 6))
        kw["transpose"] = mode == "circ_t"
    elif mode == "wgrad":
        a, b = rand_bf16(rng, (8, 6)), rand_bf16(rng, (6, 12))
        kw["bitmap"] = np.array([[1, 0, 1], [0, 0, 1]], bool)
    elif mode == "sparse":
        a, b = rand_bf16(rng, (8, 12)), rand_bf16(rng, (12, 5))
        kw["bitmap"] = np.array([[0, 0, 0], [1, 0, 1]], bool)  # an empty block row gives -0
    else:
        a, b = rand_bf16(rng, (8, 5)), rand_bf16(rng, (5, 12))
    job = make_job("circ" if mode == "circ_t" else mode, ARR, a, b, max_blocks=SHAPE.max_blocks, **kw)
    mach = fresh()
    cmds = []
    for sel in LoadSel:
        words = [w for s, _, w in job.loads if s == sel]
        if words:
            mach.memory.write(100 * (sel + 1), words_to_lanes(words, K))
            cmds.append(load(sel, 100 * (sel + 1), len(words)))
    c = job.cmd
    g = gemm_cmd(c["mode"], c["m"], c["n"], c["k"], 1000, 0, transpose=c["transpose"])
    g = Command(**{**g.fields(), "extent": 2 * out_beats(g, K)})
    rep = run(mach, *cmds, g, FENCE)
    assert rep.faults == []
    got = mach.memory.read_fp32(1000, len(job.expected) * K).reshape(-1, K)
    for beat, want in zip(got, job.expected):
        assert [int(x) for x, w in zip(beat, want) if w is not None] == [w for w in want if w is not None]
    assert rep.counts[Counter.MACS] == job.report.macs
    assert rep.counts[Counter.EX_STEPS] * 16 == job.report.macs
    assert rep.gemm_cycles[0] >= job.report.cycles  # the fp32 store (2 words a beat) may stretch it


def test_dv_lanes_past_the_edge_read_other_blocks():
    """DV with one block column: lanes 1..3 of each beat ring B words of blocks 1..3."""
    rng = np.random.default_rng(6)
    bt = 5
    dy, xt = rand_bf16(rng, (K, bt)), rand_bf16(rng, (bt, 4 * K))  # only block 0 of xt is the operand
    mach = fresh()
    mach.memory.write(0, a_dense_words(dy, K))
    mach.memory.write(100, b_dense_words(xt, K))  # blocks 1..3 sit at words q*bt + b
    rep = run(mach, load(LoadSel.A, 0, bt), load(LoadSel.B, 100, 4 * bt),
              gemm_cmd(Mode.DV, K, K, bt, 200, 2 * K), FENCE)
    assert rep.faults == []
    want = circ_dv(dy, xt, K)  # (K, 4): lane j = block j
    assert np.array_equal(mach.memory.read_fp32(200, K * K).reshape(K, K), want)


def test_counters_block():
    rng = np.random.default_rng(7)
    a, b = rand_bf16(rng, (5, 6)), rand_bf16(rng, (6, 9))
    mach = fresh()
    mach.memory.write(0, a_dense_words(a, K))
    mach.memory.write(100, b_dense_words(b, K))
    run(mach, load(LoadSel.A, 0, 12), load(LoadSel.B, 100, 18), gemm_cmd(Mode.DENSE, 5, 9, 6, 200, 48),
        FENCE, Command(op=Op.COUNTERS, addr=500))
    got = {c: mach.memory.word(500 + c) for c in Counter}
    tiles = 2 * 3
    want = {Counter.COMMANDS: 4, Counter.ERRORS: 0, Counter.A_WRITES: 12, Counter.B_WRITES: 18,
            Counter.MEM_READ_RAW: 30, Counter.MEM_WRITE_RAW: 2 * tiles * K, Counter.MACS: tiles * 6 * 16,
            Counter.MACS_DENSE: 5 * 9 * 6, Counter.EX_STEPS: tiles * 6, Counter.A_READS: tiles * 6,
            Counter.B_READS: tiles * 6, Counter.MEM_READ_EMD: 0, Counter.BITMAP_WRITES: 0}
    assert {c: got[c] for c in want} == want
    assert got[Counter.CYCLES] > 0 and TIMING_COUNTERS <= set(Counter)
    assert mach.counters[Counter.COMMANDS] == 5  # the COUNTERS command retires after its snapshot


# ----------------------------------------------------------------------------- errors and recovery

def _good(mach):
    """A dense GEMM whose result is checked after the faults (recovery)."""
    rng = np.random.default_rng(8)
    a, b = rand_bf16(rng, (4, 4)), rand_bf16(rng, (4, 4))
    mach.memory.write(3000, a_dense_words(a, K))
    mach.memory.write(3100, b_dense_words(b, K))
    cmds = [load(LoadSel.A, 3000, 4), load(LoadSel.B, 3100, 4), gemm_cmd(Mode.DENSE, 4, 4, 4, 3200, 8)]
    return cmds, gemm(a, b)


def _bad_emd_block(mem, addr, kind):
    if kind == "header":
        mem.set_word(addr, 1)
        mem.set_word(addr + 1, 1)  # mode 1, mu 0: BAD_HEADER
        return 2
    words = emd.encode(np.arange(1, 33, dtype=np.uint16) | 0x3F00, FMT, word_bits=64)
    mem.set_word(addr, len(words) - 1)  # cut short: TRUNCATED
    mem.write(addr + 1, words_to_lanes(words[:-1], K))
    return len(words)


def _fill(mach):
    """Operands in bank 0 whose EMD result takes more than one word."""
    rng = np.random.default_rng(10)
    mach.banks[0].a[:4] = rand_bf16(rng, (4, K))
    mach.banks[0].b[:4] = rand_bf16(rng, (4, K))


def _ones_block(mach):
    """An EMD block of 8 words' values at 900; returns its words."""
    return mach.memory.write_emd(900, np.ones(32, np.uint16), FMT)


def _transpose_past_extent(mach):
    """W with 2 kept blocks (8 words) and an extent of 7."""
    mach.memory.set_word(950, 0b11)
    return Command(op=Op.TRANSPOSE, addr=960, extent=7, addr2=950, m=1, n=2)


CASES = {
    "opcode": (lambda mc: Command(op=7), TopError.OPCODE, 0),
    "field_count": (lambda mc: load(LoadSel.A, 0, 0), TopError.FIELD, 0),
    "field_unused": (lambda mc: Command(op=Op.NOP, addr=4), TopError.FIELD, 0),
    "field_extent": (lambda mc: gemm_cmd(Mode.DENSE, 4, 4, 4, 0, 7), TopError.FIELD, 0),
    "array_mode": (lambda mc: gemm_cmd(7, 4, 4, 4, 0, 8), TopError.ARRAY, PEArrayError.MODE),
    "array_shape": (lambda mc: gemm_cmd(Mode.CIRC, 4, 4, 6, 0, 8), TopError.ARRAY, PEArrayError.SHAPE),
    "array_buffer": (lambda mc: gemm_cmd(Mode.DENSE, 4, 4, 257, 0, 8), TopError.ARRAY, PEArrayError.BUFFER),
    "array_bitmap": (lambda mc: gemm_cmd(Mode.SPARSE, 4, 4, 4, 0, 8, bank=1), TopError.ARRAY, PEArrayError.BITMAP),
    "emd_header": (lambda mc: load(LoadSel.B, 900, 4, fmt=Fmt.EMD, extent=_bad_emd_block(mc.memory, 900, "header")),
                   TopError.EMD, EmdDecoderError.BAD_HEADER),
    "emd_truncated": (lambda mc: load(LoadSel.B, 900, 8, fmt=Fmt.EMD, extent=_bad_emd_block(mc.memory, 900, "trunc")),
                      TopError.EMD, EmdDecoderError.TRUNCATED),
    "length_extent": (lambda mc: load(LoadSel.B, 900, 8, fmt=Fmt.EMD, extent=_ones_block(mc) - 1),
                      TopError.LENGTH, 0),
    "length_count": (lambda mc: load(LoadSel.B, 900, 4, fmt=Fmt.EMD, extent=_ones_block(mc)), TopError.LENGTH, 0),
    "length_store": (lambda mc: (_fill(mc), gemm_cmd(Mode.DENSE, 4, 4, 4, 900, 2, fmt=Fmt.EMD, rnd=1))[1],
                     TopError.LENGTH, 0),
    "length_transpose": (lambda mc: _transpose_past_extent(mc), TopError.LENGTH, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_error_is_flagged_skipped_and_recovered(case):
    make, code, detail = CASES[case]
    mach = fresh()
    mach.banks[1].bitmap[0] = 0b10  # a block outside a 1 x 1 grid (array_bitmap)
    good, want = _good(mach)
    bad = make(mach)
    before = mach.memory.copy()
    rep = run(mach, Command(op=Op.NOP), bad, FENCE, *good, FENCE)
    assert rep.statuses == [Status(1, code, int(detail), 1), Status()]
    assert [(f.position, f.code) for f in rep.faults] == [(1, code)]
    assert np.array_equal(mach.memory.read_fp32(3200, 16), beats_of(want).reshape(-1))
    if code in (TopError.OPCODE, TopError.FIELD, TopError.ARRAY):
        assert mach.memory.diff(before, limit=100) == list(range(3200, 3208))  # the bad one wrote nothing


def test_first_fault_and_count_in_one_status_beat_and_flagged_fence():
    mach = fresh()
    rep = run(mach, Command(op=Op.NOP), Command(op=Op.NOP), load(LoadSel.A, 0, 0), Command(op=6),
              Command(op=Op.FENCE, m=1), FENCE, FENCE)
    # the malformed FENCE sends no beat; the next one reports all three faults, the first at index 2
    assert rep.statuses == [Status(3, TopError.FIELD, 0, 2), Status()]
    assert mach.counters[Counter.ERRORS] == 3 and mach.counters[Counter.COMMANDS] == 7


def test_blocks_error_with_a_small_a_buffer():
    shape = IsaShape(k=4, buf_bits=8, dim_bits=12, mem_addr_bits=16, max_blocks=4, a_depth=16, b_depth=256)
    mach = Machine(shape, FMT, Memory(4))
    mach.banks[0].bitmap = [0b11, 0b111, 0, 0]  # 5 kept blocks = 20 words > 16
    rep = run(mach, gemm_cmd(Mode.SPARSE, 8, 4, 12, 0, 16), FENCE)
    assert rep.statuses == [Status(1, TopError.ARRAY, PEArrayError.BLOCKS, 0)]


def test_a_load_flagged_mid_stream_leaves_its_words_undefined_until_reloaded():
    mach = fresh()
    good, want = _good(mach)
    ext = _bad_emd_block(mach.memory, 900, "trunc")
    rep = run(mach, good[0], load(LoadSel.B, 900, 8, fmt=Fmt.EMD, extent=ext), good[2], FENCE)
    assert rep.statuses[0].err_code == TopError.EMD
    assert set(range(3200, 3208)) <= mach.memory.undefined  # the GEMM read undefined B words
    assert Counter.B_WRITES in mach.unpredicted
    rep = run(mach, *good, FENCE)
    assert rep.faults == [] and not mach.memory.undefined & set(range(3200, 3208))
    assert np.array_equal(mach.memory.read_fp32(3200, 16), beats_of(want).reshape(-1))


# ----------------------------------------------------------------------------- cycles

def test_segment_cycles_follow_the_two_bank_sequence_model():
    rng = np.random.default_rng(9)
    mach = fresh()
    dims = [(8, 4, 12), (4, 8, 6), (8, 8, 4)]
    cmds, jobs = [], []
    for i, (m, n, k) in enumerate(dims):
        a, b = rand_bf16(rng, (m, k)), rand_bf16(rng, (k, n))
        aw, bw = a_dense_words(a, K), b_dense_words(b, K)
        mach.memory.write(1000 * i, aw)
        mach.memory.write(1000 * i + 500, bw)
        beats = (m // K) * (n // K) * K
        cmds += [load(LoadSel.A, 1000 * i, len(aw), bank=i % 2), load(LoadSel.B, 1000 * i + 500, len(bw), bank=i % 2),
                 gemm_cmd(Mode.DENSE, m, n, k, 5000 + 100 * i, beats, bank=i % 2, rnd=1)]
        jobs.append((len(aw) + len(bw), cycle_model("dense", m, n, k, ARR).cycles))
    rep = run(mach, *cmds, FENCE)
    assert rep.gemm_cycles == [c for _, c in jobs]
    assert rep.cycles == sequence_cycles(jobs, banks=2).total


def test_array_check_table_is_the_sequencers():
    """golden.pe_array's check rules equal hdl.pe_array_sequencer.SHAPE_RULES (features, whole
    blocks, bitmap grid, operand words) on a grid of shapes, so golden refuses what the RTL does."""
    from types import SimpleNamespace

    from golden.pe_array import _CHECK_RULES, command_dims
    from hdl.pe_array_sequencer import SHAPE_RULES

    for mode, rule in SHAPE_RULES.items():
        feature, whole, grid, a_fn, b_fn = _CHECK_RULES[mode]
        assert (feature, whole, grid) == (rule.feature, rule.whole_blocks, rule.bitmap_grid)
        assert (a_fn is None) == (rule.a_words is None)
        for m, n, k in ((4, 4, 4), (5, 9, 8), (8, 16, 3), (12, 8, 20), (1, 33, 7)):
            d = command_dims(mode, m, n, k, ARR)
            ns = SimpleNamespace(**d)
            assert b_fn(d) == rule.b_words(ns)
            if a_fn is not None:
                assert a_fn(d) == rule.a_words(ns)


def test_emd_raw_baseline_and_segment_callback():
    from golden.compile_td3 import compile_update, example_agent, example_batch, write_agent, write_batch
    from golden.machine import run_program

    shape = IsaShape(k=4, buf_bits=14, dim_bits=16, mem_addr_bits=32, max_blocks=8, a_depth=16384, b_depth=1024)
    agent = example_agent("dense")
    program = compile_update(agent, shape)
    mem = Memory(4)
    write_agent(program, mem, agent)
    write_batch(program, mem, *example_batch(np.random.default_rng(0), agent))
    seen = []
    run = run_program(program, mem, keep_images=False, on_segment=lambda i, rep, m: seen.append((i, m.copy())))
    assert run.images == [] and [i for i, _ in seen] == list(range(len(program.segments)))
    # every EMD load moves count raw words' worth, every EMD store one word per beat
    loads = sum(c.count for c in program.commands() if c.op == Op.LOAD and c.fmt == Fmt.EMD)
    stores = sum(out_beats(c, 4) for c in program.commands() if c.op == Op.GEMM and c.fmt == Fmt.EMD)
    assert run.summary()["emd_raw_words"] == loads + stores  # dense: no wgrad, every tile stored
