"""One TD3 update of a named workload on the top's machine model (``omnidrl run --sim machine``).

The result has the keys the cocotb testbench writes for an RTL run (``tb/test_omnidrl.py``,
``test_td3_workload``), so ``omnidrl run`` and ``bench/top_td3.py`` print both the same way.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np

from .compile_td3 import compile_update, read_agent, write_agent, write_batch
from .isa import Counter
from .machine import run_program
from .program import Memory
from .workloads import workload

__all__ = ["state_diff", "state_equal", "run_machine", "run_machine_image"]


def state_diff(a, b) -> list[str]:
    """Every parameter, Adam moment and step counter of agent ``a`` that differs from ``b``
    (bit for bit), by name: ``critic1.l2.W``, ``actor.l1.b.adam_m``, ``it``, ``critic_opt.t``."""
    out = []
    for net in ("actor", "critic1", "critic2", "actor_t", "critic1_t", "critic2_t"):
        for la, lb in zip(getattr(a, net).layers, getattr(b, net).layers):
            for p in la.param_names():
                if np.asarray(la.param(p)).tobytes() != np.asarray(lb.param(p)).tobytes():
                    out.append(f"{net}.{la.name}.{p}")
                ma, mb = la.adam.get(p, ()), lb.adam.get(p, ())
                if len(ma) != len(mb):
                    out.append(f"{net}.{la.name}.{p}.adam")
                for moment, x, y in zip("ms", ma, mb):
                    if x.tobytes() != y.tobytes():
                        out.append(f"{net}.{la.name}.{p}.adam_{moment}")
    if a.it != b.it:
        out.append("it")
    out += [f"{o}.t" for o in ("actor_opt", "critic_opt") if getattr(a, o).t != getattr(b, o).t]
    return out


def state_equal(a, b) -> bool:
    """True when two agents hold the same masters, Adam moments, targets and step counters."""
    return not state_diff(a, b)


def run_machine(cfg, name: str, progress: Callable[[str], None] = lambda m: None) -> dict:
    """The result of :func:`run_machine_image` alone."""
    return run_machine_image(cfg, name, progress)[0]


def run_machine_image(cfg, name: str, progress: Callable[[str], None] = lambda m: None):
    """Compile workload ``name`` for the top ``cfg`` and run it on ``golden.machine``.

    Returns ``(result, program, memory)``: the memory image after the update stays available
    for measurements on it (``bench/top_td3.py`` counts the traffic per tensor kind).

    ``cfg`` is anything with ``isa_shape``, ``emd`` and ``pe_array.block_size`` (the top's
    config). Returns segments, commands, ``state_equal`` (the agent after the program against
    ``TD3Agent.update``), ``images_equal`` (True: the model is the reference), ``cycles`` (the
    model's estimate), ``array_utilization``, ``counters``, host FLOPs and bytes, wall time.
    """
    shape = cfg.isa_shape
    agent, batch, noise = workload(name, k=shape.k)
    progress("compiling the update")
    program = compile_update(agent, shape, cfg.emd)
    reference = copy.deepcopy(agent)
    reference.update(batch, noise_draw=noise)
    memory = Memory(shape.k)
    write_agent(program, memory, agent)
    write_batch(program, memory, batch, noise)
    progress(f"machine model: {len(program.segments)} chip segments, {len(program.host_steps)} host steps")
    t0 = time.perf_counter()
    run = run_program(program, memory, keep_images=False)
    wall = time.perf_counter() - t0
    after = copy.deepcopy(agent)
    read_agent(program, memory, after)
    counters = {c.name: int(run.total(c)) for c in Counter}
    cycles = int(run.cycles)
    result = {"workload": name, "k": shape.k, "segments": len(program.segments),
            "commands": len(program.commands()), "images_equal": True,
            "state_equal": state_equal(reference, after), "errors": [], "cycles": cycles,
            "array_utilization": counters["EX_STEPS"] / cycles if cycles else 0.0, "counters": counters,
            "host_flops": sum(h.flops for h in run.host), "host_bytes_read": sum(h.bytes_read for h in run.host),
            "host_bytes_written": sum(h.bytes_written for h in run.host), "wall_s": wall}
    return result, program, memory
