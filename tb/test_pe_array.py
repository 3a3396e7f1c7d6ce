"""cocotb tests of the GST core (``hdl.pe_array.PEArray``) against ``golden.pe_array``.

Every command's output beats are compared bit for bit with the golden model (lanes past the
matrix edge are not checked), and, in runs without gaps or back-pressure, the cycles during
which ``busy`` is high must equal ``golden.pe_array.cycle_model`` exactly.

With two operand banks, ``bank_sequence_overlapped_loads`` runs a command sequence whose loads
overlap compute and checks every command's accept and finish cycle against
``golden.pe_array.sequence_cycles``.

Environment (``docs/testing.md``): ``OMNIDRL_CONFIG`` (set by the runner), ``PEA_ROUNDS``
(random rounds, default 1), ``PEA_SCALE`` (shape stretch, default 1), ``PEA_SEED``, ``PEA_GAP`` /
``PEA_STALL`` (load and command gap and output stall probabilities of the random test's first
pass, default 0.3 and 0.4), ``PEA_EXACT`` (0 leaves out that test's second, cycle-exact pass
without gaps; default 1), ``PEA_TRACE_BATCH`` (batch rows of the
trace test, default 4; 256 is the whole recorded batch), ``PEA_TRACE_METHODS`` (default
``dense``; ``dense,gst`` adds the GST run with its circulant layers; the stages of a stage trace,
``late``, say), ``PEA_TRACE_NETS`` (default ``actor``; ``actor,critic1,critic2`` for all),
``PEA_TRACE_FILE`` (the trace, default the committed ``golden.traces.DEFAULT_TRACE``; a name
without a folder is looked up in ``tests/data``), ``PEA_TRACE_LAYERS`` (``l2``, say; default all),
``PEA_TRACE_CIRC_BLOCKS`` (cut circulant layers to a window of that many blocks per side, the one
with the most pruned blocks; default whole layers). ``bench/pe_array.py --trace`` runs everything.
"""

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden.codes import PEArrayError
from golden.pe_array import make_job, sequence_cycles
from hdl.pe_array import PEArrayConfig, cmd_layout, load_layout, out_layout
from tb import knobs
from tb.stimulus.pe_array import SequenceHost, bank_sequence, rand_bf16, random_jobs, trace_jobs
from tb.stream import PayloadCodec, Scoreboard, StreamSink, StreamSource, _ClockLoop, reset, start_clock

CFG = PEArrayConfig.from_dict(json.loads(os.environ["OMNIDRL_CONFIG"])) if "OMNIDRL_CONFIG" in os.environ \
    else PEArrayConfig.preset("tiny")
SHAPE = CFG  # golden reads rows, cols and block_size from the config itself
LOAD = PayloadCodec(load_layout(CFG))
CMD = PayloadCodec(cmd_layout(CFG))
OUT = PayloadCodec(out_layout(CFG))


class BusyCounter:
    """Counts the cycles with ``busy`` high, sampled with the stream drivers (same clock loop)."""

    def __init__(self, dut, loop):
        self.busy = dut.busy
        self.count = 0
        self.falls = 0
        self._last = 0
        loop.members.append(self)

    def _drive(self):
        pass

    def _sample(self):
        b = int(self.busy.value)
        self.count += b
        if self._last and not b:
            self.falls += 1
        self._last = b


def lanes_compare(expected, got):
    lanes_exp, last_exp = expected
    data = got["data"]
    for c, e in enumerate(lanes_exp):
        g = (data >> (32 * c)) & 0xFFFFFFFF
        if e is not None and g != e:
            return f"lane {c}: expected 0x{e:08x}, got 0x{g:08x}"
    if got["last"] != last_exp:
        return f"last flag {got['last']}, expected {last_exp}"
    return None


class Harness:
    def __init__(self, dut, gap_prob: float, stall_prob: float, seed: int):
        self.dut = dut
        self.board = Scoreboard("pe_array.o", lanes_compare)
        self.load = StreamSource(dut, "load", LOAD, gap_prob=gap_prob, rng=random.Random(seed))
        self.cmd = StreamSource(dut, "cmd", CMD, gap_prob=gap_prob, rng=random.Random(seed + 1))
        self.sink = StreamSink(dut, "o", OUT, stall_prob=stall_prob, rng=random.Random(seed + 2),
                               callback=self.board.receive)
        self.busy = BusyCounter(dut, self.sink.loop)

    async def run(self, job, name: str = "", check_cycles: bool = False, expect_error: int = 0):
        self.load.send_all({"sel": s, "addr": a, "data": w} for s, a, w in job.loads)
        await self.load.wait_idle(timeout_cycles=20 * len(job.loads) + 100)
        n = len(job.expected)
        if not expect_error:
            for i, lanes in enumerate(job.expected):
                self.board.expect((lanes, int(i == n - 1)))
        start_count, start_falls, start_rx = self.busy.count, self.busy.falls, len(self.sink.received)
        self.cmd.send(job.cmd)
        limit = 50 * (job.report.cycles + 100)
        for _ in range(limit):
            await FallingEdge(self.dut.clk)
            if self.busy.falls > start_falls and self.cmd.idle:
                break
        else:
            raise AssertionError(f"{name}: command did not finish in {limit} cycles")
        busy = self.busy.count - start_count
        err, code = int(self.dut.error.value), int(self.dut.err_code.value)
        if expect_error:
            assert (err, code) == (1, expect_error), f"{name}: error {err} code {code}, expected {expect_error}"
            assert len(self.sink.received) == start_rx, f"{name}: a rejected command produced output"
            return busy
        assert not err, f"{name}: command {job.cmd} rejected with code {code}"
        assert len(self.sink.received) - start_rx == n, f"{name}: {len(self.sink.received) - start_rx} beats, expected {n}"
        if check_cycles:
            assert busy == job.report.cycles, f"{name}: {busy} cycles, cycle model says {job.report.cycles}"
        return busy

    def done(self):
        self.board.check_done(self.sink)


@cocotb.test()
async def random_every_mode_bit_and_cycle_exact(dut):
    """Random shapes (most not dividing the array) in every mode and GEMM role, edge values;
    first with random gaps and back-pressure, then again without, checking cycles exactly."""
    start_clock(dut)
    await reset(dut)
    seed = knobs.count("PEA_SEED", 7, lo=0)
    rounds = knobs.count("PEA_ROUNDS", 1)
    scale = knobs.count("PEA_SCALE", 1)
    rng = np.random.default_rng(seed)
    jobs = []
    for r in range(rounds):
        jobs += random_jobs(rng, SHAPE, CFG.max_blocks, edge=r % 2 == 0, scale=scale)
    h = Harness(dut, gap_prob=knobs.probability("PEA_GAP", 0.3), stall_prob=knobs.probability("PEA_STALL", 0.4),
                seed=seed)
    start, t0 = h.sink.loop.cycle, time.perf_counter()
    for i, job in enumerate(jobs):
        busy = await h.run(job, f"stalled job {i} ({job.mode})")
        assert busy >= job.report.cycles
    h.done()
    # The pass with gaps and back-pressure is what a soak counts (bench/soak.py).
    knobs.record("pe_array", "random_every_mode_bit_and_cycle_exact", beats=h.board.matched, commands=len(jobs),
                 cycles=h.sink.loop.cycle - start, seconds=time.perf_counter() - t0)
    if not knobs.count("PEA_EXACT", 1, lo=0):  # a soak may leave the cycle-exact pass out
        dut._log.info("checked %d commands, %d beats (no cycle-exact pass)", len(jobs), h.board.matched)
        return
    h.load.gap_prob = h.cmd.gap_prob = h.sink.stall_prob = 0.0
    for i, job in enumerate(jobs):
        await h.run(job, f"job {i} ({job.mode} {job.cmd})", check_cycles=True)
    h.done()
    dut._log.info("checked %d commands, %d beats", 2 * len(jobs), h.board.matched)


@cocotb.test()
async def rejected_commands_flag_error_and_recover(dut):
    """Too large for the buffers, unknown mode, bitmap outside the shape, ragged circulant K:
    each sets error with its code, produces nothing, and the next good command runs."""
    start_clock(dut)
    await reset(dut)
    rng = np.random.default_rng(3)
    k = SHAPE.block_size
    h = Harness(dut, gap_prob=0.0, stall_prob=0.0, seed=5)  # cycles are checked
    good = make_job("dense", SHAPE, rand_bf16(rng, (SHAPE.rows, 3)), rand_bf16(rng, (3, SHAPE.cols)))
    big = make_job("dense", SHAPE, rand_bf16(rng, (1, 1)), rand_bf16(rng, (1, 1)))
    big.loads, big.cmd = [], dict(big.cmd, m=2 * SHAPE.rows, k=CFG.a_depth // 2 + 1)
    await h.run(big, "too big", expect_error=PEArrayError.BUFFER)
    await h.run(good, "good after too big", check_cycles=True)
    bad = make_job("dense", SHAPE, rand_bf16(rng, (1, 1)), rand_bf16(rng, (1, 1)))
    bad.cmd = dict(bad.cmd, mode=7)
    await h.run(bad, "mode 7", expect_error=PEArrayError.MODE)
    if CFG.sparse:
        bm = np.ones((2, 2), np.uint8)
        mismatch = make_job("sparse", SHAPE, rand_bf16(rng, (2 * k, 2 * k)), rand_bf16(rng, (2 * k, 3)),
                            bitmap=bm, max_blocks=CFG.max_blocks)
        mismatch.loads.append((2, 1, 0b101))  # row 1 keeps a block in column 2 of 2
        await h.run(mismatch, "bitmap outside the shape", expect_error=PEArrayError.BITMAP)
    if CFG.circulant:
        ragged = make_job("circ", SHAPE, rand_bf16(rng, (1, 1, k)), rand_bf16(rng, (k, 3)))
        ragged.cmd = dict(ragged.cmd, k=k + 1)
        await h.run(ragged, "ragged circulant K", expect_error=PEArrayError.SHAPE)
    await h.run(good, "good at the end", check_cycles=True)
    h.done()


@cocotb.test()
async def trace_layers(dut):
    """Layers of a TD3 trace (default the committed one): the three GEMMs of every dense layer,
    the circulant layers as circ / circ^T / dv from their v (when block_size equals the trace's
    k), circulant layers with pruned blocks also as the probe that tells adding their zero
    products from skipping them (as dense GEMMs on the expanded W when k differs), and
    group-sparse variants (75 %, bitmap from the real weights' block norms) of the dense layers
    whose block grid fits max_blocks. ``PEA_TRACE_METHODS`` / ``PEA_TRACE_NETS`` select layers;
    ``PEA_TRACE_BATCH`` the batch rows used."""
    from golden.traces import DEFAULT_TRACE, load_trace
    start_clock(dut)
    await reset(dut)
    batch = int(os.environ.get("PEA_TRACE_BATCH", "4"))
    methods = tuple(os.environ.get("PEA_TRACE_METHODS", "dense").split(","))
    nets = tuple(os.environ.get("PEA_TRACE_NETS", "actor").split(","))
    layers = os.environ.get("PEA_TRACE_LAYERS")
    circ_blocks = os.environ.get("PEA_TRACE_CIRC_BLOCKS")
    path = os.environ.get("PEA_TRACE_FILE", str(DEFAULT_TRACE))
    path = path if os.sep in path else str(DEFAULT_TRACE.with_name(path))
    # only the chosen networks' tensors: building jobs (with their golden results) is the slow part
    trace = {key: t for key, t in load_trace(path).items() if key.count("/") == 3 and key.split("/")[1] in nets}
    jobs = trace_jobs(trace, SHAPE, batch=batch, max_blocks=CFG.max_blocks, methods=methods,
                      layers=layers and tuple(layers.split(",")), circ_blocks=circ_blocks and int(circ_blocks))
    assert jobs, "no trace layer fits this configuration"
    h = Harness(dut, gap_prob=0.1, stall_prob=0.1, seed=11)
    stalled = 0
    for i, (name, job) in enumerate(jobs):
        # Most commands run unstalled and are cycle-checked; every fourth runs with gaps and
        # back-pressure.
        stall = i % 4 == 3
        h.load.gap_prob = h.cmd.gap_prob = 0.1 if stall else 0.0
        h.sink.stall_prob = 0.3 if stall else 0.0
        stalled += stall
        await h.run(job, name, check_cycles=not stall)
    h.done()
    modes = sorted({job.mode for _, job in jobs})
    dut._log.info("trace: %d commands (%d with back-pressure; modes %s), %d beats (%s: %s)", len(jobs), stalled,
                  ",".join(modes), h.board.matched, os.path.basename(path), " ".join(name for name, _ in jobs))


class HostDriver:
    """Drives load, cmd and o from a :class:`tb.stimulus.pe_array.SequenceHost`, one call per
    clock on the shared clock loop (drive after the falling edge, sample before the rising)."""

    def __init__(self, dut, host: SequenceHost):
        self.dut, self.host = dut, host
        for port in ("load", "cmd"):
            getattr(dut, f"{port}__valid").value = 0
        dut.o__ready.value = 0
        self._driven = False
        _ClockLoop.of(dut.clk).members.append(self)

    def _drive(self):
        self._driven = not self.host.finished
        if not self._driven:
            self.dut.load__valid.value = self.dut.cmd__valid.value = 0
            return
        load, cmd, ready = self.host.drive()
        for port, codec, beat in (("load", LOAD, load), ("cmd", CMD, cmd)):
            getattr(self.dut, f"{port}__valid").value = int(beat is not None)
            if beat is not None:
                getattr(self.dut, f"{port}__payload").value = codec.pack(beat)
        self.dut.o__ready.value = int(ready)

    def _sample(self):
        if not self._driven:
            return
        d = self.dut
        valid = int(d.o__valid.value)
        beat = OUT.unpack(int(d.o__payload.value)) if valid else {"data": 0, "last": 0}
        self.host.sample(int(d.load__ready.value), int(d.cmd__ready.value), int(d.busy.value), valid,
                         (beat["data"], beat["last"]))


@cocotb.test()
async def bank_sequence_overlapped_loads(dut):
    """A command sequence in every mode, job i in bank i % banks, loads streamed back to back:
    bit-exact, and (without gaps or back-pressure) every command accepted and finished in the
    cycle ``golden.pe_array.sequence_cycles`` says; then again with gaps and back-pressure."""
    start_clock(dut)
    await reset(dut)
    rng = np.random.default_rng(knobs.count("PEA_SEED", 7, lo=0) + 100)
    for stalled in (False, True):
        jobs = bank_sequence(rng, SHAPE, CFG.max_blocks, CFG.banks, edge=stalled)
        host = SequenceHost(jobs, CFG.banks, gap_prob=0.3 if stalled else 0.0,
                            stall_prob=0.4 if stalled else 0.0, rng=random.Random(9))
        HostDriver(dut, host)
        model = sequence_cycles(jobs, CFG.banks)
        for _ in range(20 * model.total + 1000):
            await FallingEdge(dut.clk)
            if host.finished:
                break
        assert host.finished, f"sequence of {len(jobs)} commands did not finish"
        assert not int(dut.error.value), f"a command was rejected with code {int(dut.err_code.value)}"
        assert host.mismatches(CFG.cols) == []
        if not stalled:
            assert (host.load_start, host.accepted, host.done) == (model.load_start, model.accepted, model.done), \
                f"cycles {host.accepted}/{host.done}, model {model.accepted}/{model.done}"
            assert CFG.banks == 1 or host.held > 0, "no load waited for the running bank"
        dut._log.info("sequence of %d commands on %d bank(s)%s: %d cycles (model %d; one bank %d)", len(jobs),
                      CFG.banks, " with gaps and back-pressure" if stalled else "", host.done[-1], model.total,
                      sequence_cycles(jobs, 1).total)
