"""Tier 1: the OmniDRL top (``hdl.omnidrl``, tiny preset) in Amaranth's simulator.

A Python memory model (``tb.stimulus.omnidrl``) serves ``rd_req``/``rd_data``/``wr`` with random
gaps and back-pressure; every test compares the whole memory image bit for bit with the words
the golden block functions give (``golden.pe_array.make_job``, ``golden.emd.encode``), and the
status beats with the flags the commands must raise.
"""

import numpy as np
import pytest

from golden.bf16 import f32_round_to_bf16_bits
from golden.codes import EmdDecoderError, LoadSel, Mode, PEArrayError
from golden.emd import EmdFormatError, decode as emd_decode
from golden.isa import COUNTER_BITS, Command, Counter, Fmt, Op, TopError, check
from golden.pe_array import a_words_sparse, make_job
from hdl.omnidrl import OmniDRLConfig
from tb.stimulus.omnidrl import ProgramBuilder, Segment, emd_words, run_amsim
from tb.stimulus.pe_array import rand_bf16

CFG = OmniDRLConfig.preset("tiny")
PE = CFG.pe_array
K = PE.block_size
MB = PE.max_blocks


def image_diff(expected: dict, got: dict) -> list[str]:
    return [f"0x{a:x}: expected 0x{expected.get(a, 0):x}, got 0x{got.get(a, 0):x}"
            for a in sorted(set(expected) | set(got)) if expected.get(a, 0) != got.get(a, 0)]


def assert_image(pb: ProgramBuilder, host):
    diff = image_diff(pb.expected_image(), host.memory.image())
    assert not diff, f"{len(diff)} words differ; first: " + "; ".join(diff[:6])


def bitmap(rng, p, q, density=0.5):
    bm = (rng.random((p, q)) < density).astype(np.uint8)
    bm[0, 0] = 1
    return bm


def test_config_cross_checks_and_shape():
    shape = CFG.isa_shape
    assert (shape.k, shape.mem_bits, shape.max_blocks) == (4, 64, 8)
    assert CFG.pe_array.banks == 2
    for preset in ("default", "paper"):
        cfg = OmniDRLConfig.preset(preset)
        assert cfg.pe_array.banks == 2 and cfg.isa_shape.k == cfg.pe_array.rows
    with pytest.raises(Exception, match="pe_array.rows"):
        OmniDRLConfig.preset("tiny", pe_array={"rows": 8, "cols": 8, "block_size": 4, "circulant": False,
                                               "sparse": False})
    with pytest.raises(Exception, match="emd.group"):
        OmniDRLConfig.preset("default", emd={"group": 4})


@pytest.mark.parametrize("seed", [1])
def test_every_mode_and_format_on_two_banks(seed):
    """Every GEMM mode with fp32 raw, bf16 raw and EMD stores, A and B loaded raw and EMD,
    bank 0 and 1 alternating (loads of one bank while the other computes), gaps and stalls."""
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(CFG)
    jobs = []
    a = rand_bf16(rng, (8, 12))
    jobs.append((make_job("dense", PE, a, rand_bf16(rng, (12, 8))), Fmt.RAW, Fmt.RAW, Fmt.RAW))
    bm = bitmap(rng, 2, 3)
    jobs.append((make_job("sparse", PE, rand_bf16(rng, (8, 12)), rand_bf16(rng, (12, 4)), bitmap=bm,
                          max_blocks=MB, round_bf16=True), Fmt.RAW, Fmt.EMD, Fmt.RAW))
    bm = bitmap(rng, 2, 2)
    jobs.append((make_job("wgrad", PE, rand_bf16(rng, (8, 8)), rand_bf16(rng, (8, 8)), bitmap=bm,
                          max_blocks=MB, round_bf16=True), Fmt.EMD, Fmt.RAW, Fmt.EMD))
    v = rand_bf16(rng, (2, 3, K))
    jobs.append((make_job("circ", PE, v, rand_bf16(rng, (12, 4))), Fmt.RAW, Fmt.RAW, Fmt.RAW))
    jobs.append((make_job("circ", PE, v, rand_bf16(rng, (8, 4)), transpose=True, round_bf16=True),
                 Fmt.RAW, Fmt.RAW, Fmt.EMD))
    jobs.append((make_job("dv", PE, rand_bf16(rng, (8, 4)), rand_bf16(rng, (4, 16))), Fmt.EMD, Fmt.EMD, Fmt.RAW))
    jobs.append((make_job("dense", PE, rand_bf16(rng, (4, 4)), rand_bf16(rng, (4, 4)), round_bf16=True),
                 Fmt.RAW, Fmt.RAW, Fmt.RAW))
    for i, (job, fa, fb, fo) in enumerate(jobs):
        pb.load_job(job, i % 2, fmt_a=fa, fmt_b=fb)
        pb.gemm(job, i % 2, fmt=fo)
    counters = pb.alloc(len(Counter))
    pb.emit(op=Op.COUNTERS, addr=counters)
    host, cycles = run_amsim(CFG, pb.initial(), [Segment(pb.commands)], seed=seed, gap=0.2, stall=0.2)
    assert host.statuses == [{"errors": 0, "err_code": 0, "detail": 0, "index": 0}]
    got = host.memory.image()
    values = [host.memory.words.get(counters + c, 0) for c in range(len(Counter))]
    for c in range(len(Counter)):
        got.pop(counters + c, None)
    pb_image = pb.expected_image()
    diff = image_diff(pb_image, got)
    assert not diff, f"{len(diff)} words differ; first: " + "; ".join(diff[:6])
    count = dict(zip(Counter, values))
    loads = [c for c in pb.commands if c.op == Op.LOAD]
    assert count[Counter.COMMANDS] == len(pb.commands) - 1
    assert count[Counter.ERRORS] == 0
    assert count[Counter.A_WRITES] == sum(c.count for c in loads if c.sel == LoadSel.A)
    assert count[Counter.B_WRITES] == sum(c.count for c in loads if c.sel == LoadSel.B)
    assert count[Counter.BITMAP_WRITES] == sum(c.count for c in loads if c.sel == LoadSel.BITMAP)
    assert count[Counter.MEM_READ_RAW] == sum(c.count for c in loads if c.fmt == Fmt.RAW)
    assert count[Counter.MEM_READ_EMD] == sum(c.extent for c in loads if c.fmt == Fmt.EMD)
    gemms = [c for c in pb.commands if c.op == Op.GEMM]
    written = len(pb.expected)
    assert count[Counter.MEM_WRITE_RAW] + count[Counter.MEM_WRITE_EMD] == written
    assert count[Counter.MEM_WRITE_EMD] == sum(1 + host.memory.words[c.addr] for c in gemms if c.fmt == Fmt.EMD)
    assert count[Counter.MACS] == count[Counter.EX_STEPS] * PE.rows * PE.cols
    assert count[Counter.MACS_DENSE] == sum(c.m * c.n * c.k for c in gemms)
    reports = [job.report for job, *_ in jobs]
    assert count[Counter.A_READS] == sum(r.a_reads for r in reports)
    assert count[Counter.B_READS] == sum(r.b_reads for r in reports)
    # every issue slot computes except dv's one batch of ring filling per tile
    assert count[Counter.EX_STEPS] == sum(r.steps for r in reports) - sum(
        r.tiles * K for (job, *_), r in zip(jobs, reports) if job.mode == "dv")
    # Loads overlapped compute: the two units were busy longer, together, than the run took.
    assert count[Counter.LD_BUSY] + count[Counter.EX_BUSY] > count[Counter.CYCLES]
    assert count[Counter.CYCLES] < (1 << COUNTER_BITS)


def transpose_case(pb: ProgramBuilder, rng, p: int, q: int, batch: int, bank: int, buf: int = 0):
    """W (p*k x q*k, group-sparse) in memory as kept blocks + bitmap; TRANSPOSE it into ``bank``,
    load dY^T, and run the input-gradient GEMM on W^T (sparse mode)."""
    w = rand_bf16(rng, (p * K, q * K))
    bm = bitmap(rng, p, q)
    blocks = pb.place(a_words_sparse(w, bm, K))
    rows = pb.place([sum(int(bm[i, j]) << j for j in range(q)) for i in range(p)])
    pb.emit(op=Op.TRANSPOSE, bank=bank, buf=buf, addr=blocks, extent=int(bm.sum()) * K, addr2=rows, m=p, n=q)
    job = make_job("sparse", PE, np.ascontiguousarray(w.T), rand_bf16(rng, (p * K, batch)), bitmap=bm.T,
                   max_blocks=MB, round_bf16=True)
    # A (W^T's kept blocks) and the bitmap come from the transposer; B is loaded
    pb.load_words(LoadSel.B, bank, 0, [word for sel, _, word in job.loads if sel == LoadSel.B])
    assert buf == 0  # the GEMM reads kept blocks from word 0
    return job


@pytest.mark.parametrize("seed", [2])
def test_transpose_builds_wt_for_the_sparse_input_gradient(seed):
    """TRANSPOSE of W's kept blocks and bitmap gives W^T's blocks and bitmap: the sparse GEMM on
    them equals golden's on W^T; P != Q both ways, one bank each, and W's own forward GEMM."""
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(CFG)
    for i, (p, q) in enumerate([(2, 3), (3, 2), (1, 1), (4, 4)]):
        job = transpose_case(pb, rng, p, q, 4, i % 2)
        pb.gemm(job, i % 2, fmt=Fmt.RAW if i % 2 else Fmt.EMD)
    host, cycles = run_amsim(CFG, pb.initial(), [Segment(pb.commands)], seed=seed, gap=0.2, stall=0.2)
    assert host.statuses[0]["errors"] == 0
    assert_image(pb, host)


@pytest.mark.parametrize("seed", [3])
def test_memory_dependencies_raw_and_war(seed):
    """RAW: a LOAD of a stored result waits for the store (the second GEMM uses the first one's
    bf16 output as B). WAR: a GEMM storing over the source of an earlier LOAD waits until it
    was read (the later GEMM computes on the old words)."""
    rng = np.random.default_rng(seed)
    pb = ProgramBuilder(CFG)
    first = make_job("dense", PE, rand_bf16(rng, (8, 8)), rand_bf16(rng, (8, 4)), round_bf16=True)
    pb.load_job(first, 0)
    store = pb.gemm(first, 0)
    c_bf16 = f32_round_to_bf16_bits(np.asarray(first.result, dtype=np.uint32)).astype(np.uint16)  # B next
    second = make_job("dense", PE, rand_bf16(rng, (4, 8)), c_bf16)
    pb.load_words(LoadSel.A, 1, 0, [w for s, _, w in second.loads if s == LoadSel.A])
    pb.emit(op=Op.LOAD, sel=LoadSel.B, bank=1, buf=0, count=8, addr=store.addr, extent=8)  # RAW
    pb.gemm(second, 1)
    # WAR: bank 0 loads A from a region that the next GEMM (bank 1) overwrites.
    third = make_job("dense", PE, rand_bf16(rng, (4, 4)), rand_bf16(rng, (4, 4)))
    a_load = pb.load_words(LoadSel.A, 0, 0, [w for s, _, w in third.loads if s == LoadSel.A])
    over = make_job("dense", PE, rand_bf16(rng, (4, 4)), rand_bf16(rng, (4, 4)), round_bf16=True)
    pb.load_job(over, 1)
    pb.gemm(over, 1, dst=a_load.addr, extent=a_load.extent)  # WAR on the A words
    pb.load_words(LoadSel.B, 0, 0, [w for s, _, w in third.loads if s == LoadSel.B])
    pb.gemm(third, 0)
    host, cycles = run_amsim(CFG, pb.initial(), [Segment(pb.commands)], seed=seed, gap=0.3, stall=0.3)
    assert host.statuses[0]["errors"] == 0
    assert_image(pb, host)


def emd_fault(pb: ProgramBuilder, rng):
    """An EMD block whose stream is cut one word short (and golden's verdict on it)."""
    values = rand_bf16(rng, (4 * K,)).reshape(-1)
    block = emd_words(values, CFG.emd, CFG.isa_shape.mem_bits)
    stream = block[1:-1]
    with pytest.raises(EmdFormatError) as info:
        emd_decode(stream, CFG.emd, CFG.isa_shape.mem_bits, lanes=K)
    addr = pb.place([len(stream)] + stream)
    return addr, len(stream) + 1, EmdDecoderError(info.value.code)


def test_every_error_flagged_skipped_and_recovered_from():
    """Each TopError in its own segment between good commands: the status beat counts it, names
    it (code, sub-code) and its index; the good GEMM after it still computes right."""
    rng = np.random.default_rng(4)
    pb = ProgramBuilder(CFG)
    segments, expected_status = [], []

    def good_gemm(bank):
        job = make_job("dense", PE, rand_bf16(rng, (4, 8)), rand_bf16(rng, (8, 4)))
        pb.load_job(job, bank)
        pb.gemm(job, bank)

    def segment(bad: Command, code: TopError, detail: int = 0, before: int = 0):
        start = len(pb.commands)
        for _ in range(before):
            pb.emit(op=Op.NOP)
        pb.commands.append(bad)
        good_gemm(len(segments) % 2)
        segments.append(Segment(pb.commands[start:]))
        expected_status.append({"errors": 1, "err_code": int(code), "detail": int(detail), "index": before})
        assert check(bad, CFG.isa_shape)[0] == (code if code in (TopError.OPCODE, TopError.FIELD) else TopError.NONE)

    segment(Command(op=7), TopError.OPCODE)
    segment(Command(op=Op.NOP, bank=1), TopError.FIELD, before=1)
    segment(Command(op=Op.FENCE, addr=5), TopError.FIELD, before=2)
    segment(Command(op=Op.LOAD, sel=3, count=1, addr=1, extent=1), TopError.FIELD)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, count=4, addr=1, extent=3), TopError.FIELD)
    segment(Command(op=Op.GEMM, fmt=Fmt.EMD, round=0, m=4, n=4, k=4, extent=9), TopError.FIELD)
    segment(Command(op=Op.TRANSPOSE, m=MB + 1, n=1), TopError.FIELD)
    # the array's own checks
    dst = pb.alloc(16)
    segment(Command(op=Op.GEMM, mode=Mode.SPARSE, m=6, n=4, k=8, addr=dst, extent=16), TopError.ARRAY,
            PEArrayError.SHAPE, before=1)
    segment(Command(op=Op.GEMM, mode=Mode.DENSE, m=4, n=4, k=PE.b_depth + 4, addr=dst, extent=8), TopError.ARRAY,
            PEArrayError.BUFFER)
    # EMD stream faults and lengths
    addr, extent, code = emd_fault(pb, rng)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=4, addr=addr, extent=extent), TopError.EMD, code)
    good = emd_words(rand_bf16(rng, (4 * K,)).reshape(-1), CFG.emd, CFG.isa_shape.mem_bits)
    at = pb.place(good)
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=4, addr=at, extent=len(good) - 1),
            TopError.LENGTH)  # length word >= extent
    segment(Command(op=Op.LOAD, sel=LoadSel.B, fmt=Fmt.EMD, count=3, addr=at, extent=len(good)),
            TopError.LENGTH)  # decodes to 4 beats, 3 asked
    segment(Command(op=Op.LOAD, sel=LoadSel.B, fmt=Fmt.EMD, count=5, addr=at, extent=len(good)),
            TopError.LENGTH)  # decodes to 4 beats, 5 asked
    zero = pb.place([0, 0])
    segment(Command(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=1, addr=zero, extent=2), TopError.LENGTH)
    # a store past its extent: EMD output of 4 x 4 values does not fit 2 words
    job = make_job("dense", PE, rand_bf16(rng, (4, 4)), rand_bf16(rng, (4, 4)), round_bf16=True)
    start = len(pb.commands)
    pb.load_job(job, 0)
    small = pb.alloc(2)
    pb.emit(op=Op.GEMM, bank=0, fmt=Fmt.EMD, round=1, m=4, n=4, k=4, addr=small, extent=2)
    good_gemm(1)
    segments.append(Segment(pb.commands[start:]))
    expected_status.append({"errors": 1, "err_code": int(TopError.LENGTH), "detail": 0, "index": 2})
    stream = emd_words([v >> 16 for lanes in job.expected for v in lanes], CFG.emd, CFG.isa_shape.mem_bits)[1:]
    pb.expected[small + 1] = stream[0]  # the one stream word that fits; no length word
    # a transpose whose kept blocks exceed its extent
    bm_at = pb.place([1, 1])
    segment(Command(op=Op.TRANSPOSE, addr=pb.alloc(4), extent=K, addr2=bm_at, m=2, n=1), TopError.LENGTH)
    # two flags in one segment: the first in program order is reported
    start = len(pb.commands)
    pb.emit(op=Op.NOP)
    pb.emit(op=Op.LOAD, sel=LoadSel.A, fmt=Fmt.EMD, count=1, addr=zero, extent=2)
    pb.emit(op=Op.NOP, n=1)
    good_gemm(0)
    segments.append(Segment(pb.commands[start:]))
    expected_status.append({"errors": 2, "err_code": int(TopError.LENGTH), "detail": 0, "index": 1})
    host, cycles = run_amsim(CFG, pb.initial(), segments, seed=5, gap=0.2, stall=0.2)
    assert host.statuses == expected_status
    assert_image(pb, host)
