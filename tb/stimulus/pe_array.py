"""Stimulus for the GST core (``hdl.pe_array``): random bf16 operands, random commands in every
mode and GEMM role, the GEMMs of a recorded TD3 trace, and command sequences for the two-bank
(ping-pong) array.

Each generator returns :class:`golden.pe_array.Job` objects, whose expected beats and cycles
come from the golden model; nothing here decides what a result should be. ``shape`` is anything
with ``rows``, ``cols`` and ``block_size`` (``PEArrayConfig`` itself, or
``golden.pe_array.ArrayShape``).
"""

from __future__ import annotations

import random
from itertools import accumulate

import numpy as np

from golden.bf16 import bf16_edge_values, bf16_to_f32
from golden.gst import block_bitmap, block_expand
from golden.pe_array import ArrayShape, Job, circ_operand, make_job, run

__all__ = ["rand_bf16", "edge_bf16", "random_jobs", "trace_jobs", "pruned_circ_probe", "pruned_window",
           "sub_circulant", "bank_sequence", "SequenceHost", "run_host"]


def rand_bf16(rng: np.random.Generator, shape, wild: float = 0.05) -> np.ndarray:
    """Values near 1 with random signs (real rounding and cancellation), some arbitrary patterns."""
    n = int(np.prod(shape))
    near = ((rng.integers(0, 2, n) << 15) | ((127 + rng.integers(-6, 7, n)) << 7)
            | rng.integers(0, 128, n)).astype(np.uint16)
    anyp = rng.integers(0, 1 << 16, n).astype(np.uint16)
    return np.where(rng.random(n) < wild, anyp, near).astype(np.uint16).reshape(shape)


def edge_bf16(rng: np.random.Generator, shape) -> np.ndarray:
    """:func:`rand_bf16` with bf16 edge classes (signed zeros, subnormals, Inf, NaN, extremes)."""
    x = rand_bf16(rng, shape, wild=0.1)
    e = bf16_edge_values()
    mask = rng.random(x.shape) < 0.15
    x[mask] = e[rng.integers(0, len(e), int(mask.sum()))]
    return x


def random_jobs(rng: np.random.Generator, shape: ArrayShape, max_blocks: int, *, edge: bool = False,
                scale: int = 1) -> list[Job]:
    """Every GEMM role in every mode with random shapes (most not dividing the array).

    ``scale`` stretches the shapes (1 for Icarus, larger for Verilator).
    """
    gen = edge_bf16 if edge else rand_bf16
    k, r_, c_ = shape.block_size, shape.rows, shape.cols

    def dim(lo, hi):
        return int(rng.integers(lo, hi * scale + 1))

    jobs = []
    # dense: forward W.x, input gradient W^T.d (host loads W^T), weight gradient d.x^T
    for _ in range(3):
        m, kd, n = dim(1, 2 * r_ + 1), dim(1, 2 * k), dim(1, 2 * c_ + 1)
        jobs.append(make_job("dense", shape, gen(rng, (m, kd)), gen(rng, (kd, n)),
                             round_bf16=bool(rng.integers(0, 2))))
    # sparse: A = W (or W^T with the transposed bitmap) with random kept blocks, one empty row
    for transpose in (False, True):
        p, q = dim(1, 3), dim(1, 3)
        p, q = min(p, max_blocks), min(q, max_blocks)
        bm = (rng.random((p, q)) < 0.5).astype(np.uint8)
        if p > 1:
            bm[rng.integers(0, p)] = 0
        w = gen(rng, (p * k, q * k))
        if transpose:
            w, bm = np.ascontiguousarray(w.T), np.ascontiguousarray(bm.T)
        jobs.append(make_job("sparse", shape, w, gen(rng, (w.shape[1], dim(1, 2 * c_))), bitmap=bm,
                             max_blocks=max_blocks))
    # wgrad: dW tiles of kept blocks only
    p, q = min(dim(1, 4), max_blocks), min(dim(1, 3), max_blocks)
    bm = (rng.random((p, q)) < 0.5).astype(np.uint8)
    dy = gen(rng, (p * k, dim(1, 6)))
    jobs.append(make_job("wgrad", shape, dy, gen(rng, (dy.shape[1], q * k)), bitmap=bm, max_blocks=max_blocks))
    # circulant forward and transpose from the same v, and dv
    p, q = dim(1, 3), dim(1, 3)
    v = gen(rng, (p, q, k))
    jobs.append(make_job("circ", shape, v, gen(rng, (q * k, dim(1, 2 * c_)))))
    jobs.append(make_job("circ", shape, v, gen(rng, (p * k, dim(1, 2 * c_))), transpose=True))
    bt = dim(1, 4)
    jobs.append(make_job("dv", shape, gen(rng, (p * k, bt)), gen(rng, (bt, q * k))))
    return jobs


def pruned_circ_probe(v: np.ndarray, bitmap: np.ndarray, x: np.ndarray, dy: np.ndarray):
    """Operands of a pruned circulant layer on which adding its pruned blocks' zero products
    (the CIRC contract, docs/td3.md "hardware order") and skipping them give different bits.

    From a real layer: the kept v words with their sign set (magnitudes kept), the pruned ones
    +0, the inputs ``x`` and output gradients ``dy`` made non-negative with their first row +0.
    In that row every kept product is -0 and every pruned one +0, so an accumulator (starting at
    -0) ends at +0 in each output whose block row (forward) or block column (input gradient)
    has a pruned block, and at -0 if the pruned products were skipped.

    Returns ``(v, x, dy)`` as uint16 patterns. Raises ValueError when no block is pruned.
    """
    bm = np.asarray(bitmap).astype(bool)
    if bm.all():
        raise ValueError("pruned_circ_probe: the bitmap keeps every block; there is nothing to probe")
    v = np.where(bm[:, :, None], np.asarray(v, np.uint16) | 0x8000, 0).astype(np.uint16)
    x = np.asarray(x, np.uint16) & 0x7FFF
    dy = np.asarray(dy, np.uint16) & 0x7FFF
    x[0] = dy[0] = 0
    return v, x, dy


def _skip_pruned(w: np.ndarray, b: np.ndarray, bm: np.ndarray, k: int) -> np.ndarray:
    """What an array that skipped the pruned blocks would produce: the sparse mode's sums."""
    rows, cols = bm.shape[0] * k, bm.shape[1] * k
    wp = np.zeros((rows, cols), np.uint16)
    wp[:w.shape[0], :w.shape[1]] = w
    bp = np.zeros((cols, b.shape[1]), np.uint16)
    bp[:b.shape[0]] = b
    return run("sparse", wp, bp, bitmap=bm, k=k)[:w.shape[0]]


def _circ_layer_jobs(name: str, v, x, dy, shape: ArrayShape) -> list[tuple[str, Job]]:
    """Forward, input gradient and (at the layer's own k) DV of one circulant layer.

    At ``shape.block_size == k`` these are the CIRC commands the host issues, the pruned
    blocks' v words loaded as they are in the trace (signed zeros). Otherwise the forward and
    input gradient run as dense GEMMs on the expanded W, the same bits by the contract (a CIRC
    command adds every block's products, pruned ones as zeros).
    """
    k = v.shape[2]
    q_ = v.shape[1]
    xp = np.zeros((x.shape[0], q_ * k), np.uint16)
    xp[:, :x.shape[1]] = x
    xt, dyt = np.ascontiguousarray(xp.T), np.ascontiguousarray(dy.T)
    if k == shape.block_size:
        return [(f"{name}/fwd-circ", make_job("circ", shape, v, xt)),
                (f"{name}/dx-circ", make_job("circ", shape, v, dyt, transpose=True)),
                (f"{name}/dv", make_job("dv", shape, dyt, xp))]
    return [(f"{name}/fwd-circW", make_job("dense", shape, circ_operand(v), xt)),
            (f"{name}/dx-circW", make_job("dense", shape, circ_operand(v, transpose=True), dyt))]


def sub_circulant(v: np.ndarray, x: np.ndarray, dy: np.ndarray, k: int):
    """A circulant layer of block size ``k`` made from one of block size ``K`` (a multiple of k):
    the same block grid and bitmap, each block's first k values ``v[p, q, :k]``, and the input
    and output-gradient columns ``q*K .. q*K+k-1`` and ``p*K .. p*K+k-1``. Not the layer's
    function, but its values, pruned blocks and block grid, for an array whose k is smaller."""
    big = v.shape[2]
    xp = np.zeros((x.shape[0], v.shape[1] * big), np.uint16)
    xp[:, :x.shape[1]] = x
    cols = lambda n: (np.arange(n)[:, None] * big + np.arange(k)).reshape(-1)  # noqa: E731
    return (np.ascontiguousarray(v[:, :, :k]), np.ascontiguousarray(xp[:, cols(v.shape[1])]),
            np.ascontiguousarray(dy[:, cols(v.shape[0])]))


def _probe_jobs(name: str, v, bitmap, x, dy, shape: ArrayShape) -> list[tuple[str, Job]]:
    """:func:`_circ_layer_jobs` (forward and input gradient) on :func:`pruned_circ_probe`
    operands; each job's golden result is checked to differ from the pruned-blocks-skipped one."""
    k = v.shape[2]
    bm = np.asarray(bitmap).astype(np.uint8)
    pv, px, pdy = pruned_circ_probe(v, bitmap, x, dy)
    jobs = [(f"{n}-probe", job) for n, job in _circ_layer_jobs(name, pv, px, pdy, shape) if "/dv" not in n]
    q_ = v.shape[1]
    xp = np.zeros((px.shape[0], q_ * k), np.uint16)
    xp[:, :px.shape[1]] = px
    skipped = {"fwd": _skip_pruned(circ_operand(pv), xp.T, bm, k),
               "dx": _skip_pruned(circ_operand(pv, transpose=True), np.ascontiguousarray(pdy.T), bm.T.copy(), k)}
    for n, job in jobs:
        want = skipped[n.rsplit("/", 1)[1].split("-")[0]]
        if np.array_equal(job.result.view(np.uint32), want.view(np.uint32)):
            raise ValueError(f"{n}: the probe does not tell adding pruned products from skipping them")
    return jobs


def pruned_window(v: np.ndarray, bitmap: np.ndarray, x: np.ndarray, dy: np.ndarray, blocks: int):
    """A ``blocks`` x ``blocks`` window of a circulant layer's block grid, and the input and
    output-gradient columns it uses: the block rows with the most pruned blocks, then among
    them the block columns with the most (ties: lower index). A smaller GEMM of the same layer
    (its partial sums), with pruned blocks in it whenever the layer has any."""
    k = v.shape[2]
    bm = np.asarray(bitmap).astype(bool)
    rows = np.sort(np.argsort(-(~bm).sum(axis=1), kind="stable")[:blocks])
    cols = np.sort(np.argsort(-(~bm[rows]).sum(axis=0), kind="stable")[:blocks])
    xp = np.zeros((x.shape[0], v.shape[1] * k), np.uint16)
    xp[:, :x.shape[1]] = x
    take = lambda idx: (idx[:, None] * k + np.arange(k)).reshape(-1)  # noqa: E731 (block -> element indices)
    return (np.ascontiguousarray(v[rows][:, cols]), np.ascontiguousarray(bitmap[rows][:, cols]),
            np.ascontiguousarray(xp[:, take(cols)]), np.ascontiguousarray(dy[:, take(rows)]))


def trace_jobs(trace: dict, shape: ArrayShape, *, batch: int | None = None, sparsity: float = 0.75,
               max_blocks: int = 64, methods=("dense", "gst"), layers=None,
               circ_blocks: int | None = None) -> list[tuple[str, Job]]:
    """The three GEMMs of every layer of a recorded TD3 trace, as (name, job).

    Dense layers run dense forward (A = W, B = X^T), input gradient (A = W^T, B = dY^T) and weight
    gradient (A = dY^T, B = X); circulant layers run circ, circ with transpose and dv from their
    v (pruned blocks, rule circ-prune, as the trace holds them: zero v words). Every dense layer
    whose shape divides into blocks also runs the group-sparse forward, input gradient and weight
    gradient with the bitmap that keeps the largest-norm blocks at ``sparsity``
    (golden.gst.block_bitmap on the real weights).

    A circulant layer with pruned blocks also runs :func:`pruned_circ_probe`'s forward and input
    gradient (``-probe``), whose bits differ if the pruned products were skipped; when its k is
    not the array's block size, it runs (probe included) as dense GEMMs on the expanded W, and
    its :func:`sub_circulant` at the array's k (``NAME/k4/...``) as CIRC, CIRC^T, DV and probe.
    ``methods``: the first key parts to take (methods, or stages of a stage trace); ``layers``:
    layer names (``l2``) to take, default all; ``batch`` takes the first rows; ``circ_blocks``
    cuts each circulant layer to a window of that many blocks per side (:func:`pruned_window`).
    """
    k = shape.block_size
    out = []
    names = sorted({key.rsplit("/", 1)[0] for key in trace if key.count("/") == 3})
    for name in names:
        if name.split("/")[0] not in methods or (layers is not None and name.split("/")[2] not in layers):
            continue
        w, x, dy = trace[f"{name}/W"], trace[f"{name}/x"], trace[f"{name}/dy"]
        if batch is not None:
            x, dy = x[:batch], dy[:batch]
        xt, dyt = np.ascontiguousarray(x.T), np.ascontiguousarray(dy.T)
        if f"{name}/v" in trace:
            v, bm = trace[f"{name}/v"], trace.get(f"{name}/bitmap")
            if circ_blocks is not None:
                v, bm, x, dy = pruned_window(v, np.ones(v.shape[:2], np.uint8) if bm is None else bm, x, dy,
                                             circ_blocks)
            pruned = bm is not None and not bm.all()
            if v.shape[2] == k or pruned:
                out += _circ_layer_jobs(name, v, x, dy, shape)
            if pruned:
                out += _probe_jobs(name, v, bm, x, dy, shape)
            if pruned and v.shape[2] != k and v.shape[2] % k == 0:  # CIRC and DV on the array's k too
                sv, sx, sdy = sub_circulant(v, x, dy, k)
                out += _circ_layer_jobs(f"{name}/k{k}", sv, sx, sdy, shape)
                out += _probe_jobs(f"{name}/k{k}", sv, bm, sx, sdy, shape)
            continue
        out.append((f"{name}/fwd", make_job("dense", shape, w, xt)))
        out.append((f"{name}/dx", make_job("dense", shape, np.ascontiguousarray(w.T), dyt)))
        out.append((f"{name}/dW", make_job("dense", shape, dyt, x)))
        m, n = w.shape
        if m % k == 0 and n % k == 0 and m // k <= max_blocks and n // k <= max_blocks:
            bm = block_bitmap(bf16_to_f32(w), k, sparsity).astype(np.uint8)
            ws = np.where(np.repeat(np.repeat(bm, k, 0), k, 1).astype(bool), w, 0).astype(np.uint16)
            out.append((f"{name}/fwd-sparse", make_job("sparse", shape, ws, xt, bitmap=bm, max_blocks=max_blocks)))
            out.append((f"{name}/dx-sparse", make_job("sparse", shape, np.ascontiguousarray(ws.T), dyt,
                                                      bitmap=np.ascontiguousarray(bm.T), max_blocks=max_blocks)))
            out.append((f"{name}/dW-sparse", make_job("wgrad", shape, dyt, x, bitmap=bm, max_blocks=max_blocks)))
    return out


def bank_sequence(rng: np.random.Generator, shape: ArrayShape, max_blocks: int, banks: int, *,
                  edge: bool = False, scale: int = 1) -> list[Job]:
    """:func:`random_jobs` in bank order for a command sequence with overlapped loads: job i
    fills and reads bank ``i % banks`` (one-bank jobs carry no bank field)."""
    jobs = random_jobs(rng, shape, max_blocks, edge=edge, scale=scale)
    return [job.in_bank(i % banks) if banks > 1 else job for i, job in enumerate(jobs)]


class SequenceHost:
    """The host of a command sequence with overlapped loads, cycle by cycle.

    It follows the protocol :func:`golden.pe_array.sequence_cycles` models: one load stream with
    every job's beats in order, job i's beats offered only after command ``i - banks`` has
    transferred, command i offered once its loads are in. A cocotb testbench calls :meth:`drive`
    before each clock edge (what to offer) and :meth:`sample` with what the DUT answered;
    :func:`run_host` feeds stream sources from :meth:`allowed_beats` and :meth:`next_command`
    and reports each cycle to :meth:`record`. The cycle numbers it records (``load_start``,
    ``accepted``, ``done``) are those of the model.

    Parameters
    ----------
    jobs : list of Job
        In bank order (:func:`bank_sequence`).
    banks : int
    gap_prob, stall_prob : float
        Idle cycles before a load beat, and output back-pressure (the model then no longer applies).
    rng : random.Random, optional
    """

    def __init__(self, jobs, banks: int, *, gap_prob: float = 0.0, stall_prob: float = 0.0, rng=None):
        self.jobs, self.banks = list(jobs), banks
        self.gap_prob, self.stall_prob = gap_prob, stall_prob
        self.rng = rng or random.Random(0)
        self.beats = [(i, beat) for i, job in enumerate(self.jobs) for beat in job.load_beats()]
        self._beats_before = list(accumulate((len(job.loads) for job in self.jobs), initial=0))
        self.next_beat = 0
        self.loaded = [0] * len(self.jobs)
        self.load_start: list[int | None] = [None] * len(self.jobs)
        self.accepted: list[int] = []
        self.done: list[int] = []
        self.received: list[list] = [[] for _ in self.jobs]
        self.status: list[tuple[int, int]] = []  # (error, err_code) in each done cycle, when reported
        self.held = 0  # cycles a load beat was offered and held back by the DUT
        self.cycle = 0
        self._holding = False
        self._offer = (None, None, True)

    @property
    def finished(self) -> bool:
        return len(self.done) == len(self.jobs)

    def allowed_beats(self) -> int:
        """How many beats of the load stream may be offered by now: those of every job up to
        the one whose bank the last accepted command has freed."""
        return self._beats_before[min(len(self.jobs), len(self.accepted) + self.banks)]

    def next_command(self) -> dict | None:
        """The next command, once its loads are in (None before, and after the last)."""
        c = len(self.accepted)
        if c < len(self.jobs) and self.loaded[c] == len(self.jobs[c].loads):
            return self.jobs[c].command()
        return None

    def drive(self):
        """(load beat or None, command or None, output ready) to present this cycle."""
        load = None
        if self.next_beat < self.allowed_beats() and (self._holding or self.rng.random() >= self.gap_prob):
            load, self._holding = self.beats[self.next_beat][1], True
        ready = not (self.stall_prob and self.rng.random() < self.stall_prob)
        self._offer = (load, self.next_command(), ready)
        return self._offer

    def sample(self, load_ready: bool, cmd_ready: bool, busy: bool, out_valid: bool, out_beat) -> None:
        """Record the DUT's answer for this cycle (``out_beat``: (data, last) when valid)."""
        load, cmd, out_ready = self._offer
        self.record(load_offered=load is not None, load_taken=load is not None and load_ready,
                    cmd_taken=cmd is not None and cmd_ready, busy=busy,
                    out_beat=out_beat if out_valid and out_ready else None)

    def record(self, *, load_offered: bool, load_taken: bool, cmd_taken: bool, busy: bool, out_beat=None,
               status: tuple[int, int] | None = None) -> None:
        """Book one cycle: a load beat offered (and taken), the command taken, ``busy``, the
        output beat (data, last) transferred (None if none), the DUT's (error, err_code)."""
        running = len(self.done)
        if out_beat is not None and running < len(self.jobs):
            self.received[running].append(out_beat)
        if len(self.accepted) > running and not busy and self.cycle > self.accepted[running]:
            self.done.append(self.cycle)
            if status is not None:
                self.status.append(status)
        if load_taken:
            job = self.beats[self.next_beat][0]
            if self.load_start[job] is None:
                self.load_start[job] = self.cycle
            self.loaded[job] += 1
            self.next_beat += 1
            self._holding = False
        elif load_offered:
            self.held += 1
        if cmd_taken:
            self.accepted.append(self.cycle)
        self.cycle += 1

    def mismatches(self, cols: int, jobs=None) -> list[str]:
        """Every received beat against the golden beats of its job (lanes past the edge are
        not compared); empty when all match and nothing is missing or extra. ``jobs``: the
        indices to compare (default every job)."""
        errors = []
        for i in range(len(self.jobs)) if jobs is None else jobs:
            job, got = self.jobs[i], self.received[i]
            if len(got) != len(job.expected):
                errors.append(f"job {i} ({job.mode}): {len(got)} beats, expected {len(job.expected)}")
            for n, ((data, last), lanes) in enumerate(zip(got, job.expected)):
                for c, exp in enumerate(lanes):
                    lane = (int(data) >> (32 * c)) & 0xFFFFFFFF
                    if exp is not None and lane != exp:
                        errors.append(f"job {i} ({job.mode}) beat {n} lane {c}: 0x{lane:08x}, expected 0x{exp:08x}")
                if int(last) != (n == len(job.expected) - 1):
                    errors.append(f"job {i} ({job.mode}) beat {n}: last = {int(last)}")
        return errors


def run_host(cfg, host: SequenceHost, max_cycles: int = 100_000, *, allow_errors: bool = False) -> SequenceHost:
    """Drive ``host``'s sequence into ``hdl.pe_array.PEArray(cfg)`` on a :class:`tb.amsim.StreamBench`
    until every command has finished (the simulator is imported here: the generators above need
    no HDL).

    Loads and commands go through stream sources, the output through a stream sink (which
    fails the test when it changes or drops before a transfer), with the host's gaps and
    back-pressure from the host's generator (with gaps, the same draws in the same order as
    :meth:`SequenceHost.drive`). Each cycle, after the DUT answered, what the host allows next is queued: it is
    offered from the next cycle, as :meth:`SequenceHost.drive` would offer it. A rejected
    command fails the run unless ``allow_errors``; (error, err_code) in each command's done
    cycle land in ``host.status``.
    """
    from hdl.pe_array import PEArray
    from tb.amsim import StreamBench, StreamSink, StreamSource

    dut = PEArray(cfg)
    bench = StreamBench(dut, max_cycles=max_cycles)
    loads = StreamSource(bench, "load", gap_prob=host.gap_prob, rng=host.rng)
    cmds = StreamSource(bench, "cmd")
    taken = []
    StreamSink(bench, "o", stall_prob=host.stall_prob, rng=host.rng,
               callback=lambda beat: taken.append((beat["data"], beat["last"])))
    load_valid, load_ready = bench.watch(dut.load.valid), bench.watch(dut.load.ready)
    busy, error, err_code = bench.watch(dut.busy), bench.watch(dut.error), bench.watch(dut.err_code)

    def feed():
        for _, beat in host.beats[host.next_beat + len(loads.queue):host.allowed_beats()]:
            loads.send(beat)
        if cmds.idle and (cmd := host.next_command()) is not None:
            cmds.send(cmd)

    def step(ctx, cycle):
        host.record(load_offered=load_valid[-1], load_taken=load_valid[-1] and load_ready[-1],
                    cmd_taken=cmds.sent > len(host.accepted), busy=busy[-1],
                    out_beat=taken.pop() if taken else None, status=(error[-1], err_code[-1]))
        assert allow_errors or not error[-1], f"command {len(host.accepted) - 1} rejected: {err_code[-1]}"
        feed()

    feed()
    bench.on_cycle(step)
    bench.run(until=lambda: host.finished)
    return host
