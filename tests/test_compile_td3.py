"""golden/compile_td3.py: a compiled TD3 update run on the machine model equals TD3Agent.update bit
for bit (dense, GST circulant, GST group-sparse, element-masked dense, with and without input
padding), and breaking
the program or the arithmetic order is caught."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from golden import machine as machine_mod
from golden.codes import Mode
from golden.compile_td3 import (command_ranges, compile_update, example_agent, example_batch, read_agent, read_info,
                                write_agent, write_batch)
from golden.isa import Command, IsaShape, Op
from golden.machine import run_program
from golden.program import Memory
from golden.td3 import TD3Agent, TD3Config
from golden.run_top import state_diff

SHAPE = IsaShape(k=4, buf_bits=14, dim_bits=16, mem_addr_bits=32, max_blocks=8, a_depth=16384, b_depth=1024)
NETS = ("actor", "critic1", "critic2", "actor_t", "critic1_t", "critic2_t")


def make_agent(kind: str, compress=("l2",), sparsity=0.5, seed=0) -> TD3Agent:
    return example_agent(kind, compress, sparsity, seed=seed)


def run_updates(agent: TD3Agent, updates: int, seed: int = 1, mutate=None):
    """Run ``updates`` compiled updates on one memory image; return (agent from memory, reference,
    the runs, the programs, (losses from memory, losses of the reference) per update)."""
    rng = np.random.default_rng(seed)
    ref = copy.deepcopy(agent)
    chip = copy.deepcopy(agent)
    mem = Memory(SHAPE.k)
    runs, programs, infos = [], [], []
    for u in range(updates):
        batch, noise = example_batch(rng, chip)
        program = compile_update(chip, SHAPE)
        if mutate is not None:
            mutate(program)
        if u == 0:
            write_agent(program, mem, chip)
        write_batch(program, mem, batch, noise)
        runs.append(run_program(program, mem))
        read_agent(program, mem, chip)
        infos.append((read_info(program, mem), ref.update(batch, noise_draw=noise)))
        programs.append(program)
    return chip, ref, runs, programs, infos


CASES = {
    "dense": ("dense", ("l2",), 0.5),
    "gst_circ_l2": ("circ", ("l2",), 0.5),
    "gst_sparse_l2_50": ("sparse", ("l2",), 0.5),
    "gst_sparse_l2_75": ("sparse", ("l2",), 0.75),
    "gst_circ_l1_l2_padded": ("circ", ("l1", "l2"), 0.5),
    "gst_sparse_l1_l2_padded": ("sparse", ("l1", "l2"), 0.75),
    "gst_circ_pruned_l1_l2_padded": ("circ-pruned", ("l1", "l2"), 0.5),
    "gst_fine_l1_l2_75": ("fine", ("l1", "l2"), 0.75),  # circ-fine after its switch; GMP's form too
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_update_is_bit_exact(case):
    kind, compress, sparsity = CASES[case]
    agent = make_agent(kind, compress, sparsity)
    chip, ref, runs, programs, infos = run_updates(agent, 2)  # update 1: critics; 2: + policy, targets
    assert [p.info["policy"] for p in programs] == [False, True]
    assert state_diff(chip, ref) == []
    assert all(mine == theirs for mine, theirs in infos)
    assert ref.actor_opt.t == 1 and ref.critic_opt.t == 2  # both branches ran
    for run in runs:
        assert all(not s.faults and all(st.errors == 0 for st in s.statuses) for s in run.segments)
        assert len(run.images) == len(run.segments)
    # something really moved: the masters changed from the start
    assert state_diff(chip, agent) != []


def test_product_roles_per_layer_kind():
    """Sparse W^T comes from TRANSPOSE (no transposed copy in memory), circ W^T from transpose=1,
    dense W^T from the host's layout; weight gradients use WGRAD / DV / DENSE."""
    for kind, fwd, dx, dw in (("dense", Mode.DENSE, Mode.DENSE, Mode.DENSE), ("circ", Mode.CIRC, Mode.CIRC, Mode.DV),
                              ("sparse", Mode.SPARSE, Mode.SPARSE, Mode.WGRAD)):
        program = compile_update(make_agent(kind), SHAPE)
        gemms = {(s.name, i): c for s in program.segments for i, c in enumerate(s.commands) if c.op == Op.GEMM}
        modes = {c.mode for c in gemms.values()}
        assert {fwd, dx, dw} <= modes
        names = set(program.layout.regions)
        transposes = [c for c in program.commands() if c.op == Op.TRANSPOSE]
        if kind == "sparse":
            assert len(transposes) == 2  # critic1 and critic2 l2 input gradients
            assert not any(n.endswith("l2.bwd") for n in names)
        else:
            assert transposes == []
        if kind == "circ":
            assert any(c.mode == Mode.CIRC and c.transpose for c in gemms.values())
            assert not any(n.endswith("l2.bwd") for n in names)
        if kind == "dense":
            assert "w.critic1.l2.bwd" in names


def test_swapped_weight_loads_are_caught():
    """Swapping the weight loads of the two critics (one command order) breaks bit-exactness."""
    def swap(program):
        seg = program.segments[0]
        loads = [i for i, c in enumerate(seg.commands) if c.op == Op.LOAD and c.sel == 0]
        i, j = loads[1], loads[2]  # critic1 l1 and critic2 l1 weights (after actor_t l1)
        a, b = seg.commands[i], seg.commands[j]
        seg.commands[i] = Command(**{**a.fields(), "addr": b.addr, "extent": b.extent})
        seg.commands[j] = Command(**{**b.fields(), "addr": a.addr, "extent": a.extent})
    chip, ref, _, _, infos = run_updates(make_agent("dense"), 1, mutate=swap)
    assert any(x.startswith("critic") for x in state_diff(chip, ref))
    assert infos[0][0] != infos[0][1]


def test_reversed_accumulation_order_is_caught(monkeypatch):
    """A chip that adds the products in reverse k order is caught by the memory image after the
    first segment (as the RTL's images are compared), even where the rounding to bf16 later hides
    the difference from the agent's state."""
    agent = make_agent("dense")
    rng = np.random.default_rng(1)
    batch, noise = example_batch(rng, agent)

    def images():
        program = compile_update(agent, SHAPE)
        mem = Memory(SHAPE.k)
        write_agent(program, mem, agent)
        write_batch(program, mem, batch, noise)
        return run_program(program, mem).images

    good = images()
    real = machine_mod.run

    def reversed_run(mode, a, b, **kw):
        if mode == "dense":
            return real(mode, np.asarray(a)[:, ::-1], np.asarray(b)[::-1, :], **kw)
        return real(mode, a, b, **kw)
    monkeypatch.setattr(machine_mod, "run", reversed_run)
    bad = images()
    assert good[0].diff(bad[0]) != []


def test_program_refuses_what_it_cannot_run():
    cfg = TD3Config(env="none", numerics="bf16", hidden=(16, 16), batch=8, block=4, buffer=8)
    agent = TD3Agent(5, 2, np.ones(2, np.float32), cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match="numerics='bf16' is not allowed"):
        compile_update(agent, SHAPE)
    agent = make_agent("circ")
    with pytest.raises(ValueError, match="block size 4 is not the top's k=8"):
        compile_update(agent, IsaShape(k=8, buf_bits=14, dim_bits=16, mem_addr_bits=32))
    small = IsaShape(k=4, buf_bits=6, dim_bits=16, mem_addr_bits=32, max_blocks=8, a_depth=32, b_depth=32)
    with pytest.raises(ValueError, match="do not fit one bank"):
        compile_update(make_agent("dense"), small)


def test_program_for_another_update_is_refused():
    agent = make_agent("dense")
    program = compile_update(agent, SHAPE)
    mem = Memory(SHAPE.k)
    agent.it = 5
    write_agent(program, mem, agent)
    with pytest.raises(ValueError, match="compiled for update 1"):
        run_program(program, mem)


def test_host_steps_declare_flops_and_bytes():
    program = compile_update(make_agent("dense"), SHAPE)
    assert all(s.flops > 0 and s.bytes_read + s.bytes_written > 0 for s in program.host_steps)
    names = [s.name for s in program.host_steps]
    assert names[0] == "begin update" and "Adam critics" in names


def test_every_command_stays_in_one_region_and_regions_do_not_overlap():
    """The extents are the top's dependency footprints: each lies inside one named region."""
    for kind in ("dense", "circ", "sparse"):
        program = compile_update(make_agent(kind, ("l1", "l2")), SHAPE)
        regions = sorted(program.layout.regions.values(), key=lambda r: r.addr)
        assert all(a.end <= b.addr for a, b in zip(regions, regions[1:]))
        for cmd in program.commands():
            for start, end in command_ranges(cmd):
                assert any(r.addr <= start and end <= r.end for r in regions), cmd
        assert all(s.commands[-1].op == Op.FENCE for s in program.segments)


def test_circ_pruned_blocks_keep_their_masters_with_live_adam_moments():
    """Blocks pruned after training carry Adam moments; the compiled Adam must mask their update
    as golden/td3.py does (with zero moments an unmasked update would be zero anyway)."""
    agent = make_agent("circ-pruned", ("l2",), 0.5)
    rng = np.random.default_rng(5)
    for net in (agent.actor, agent.critic1, agent.critic2):
        layer = net.layers[1]
        layer.adam["v"] = [rng.standard_normal(layer.v.shape).astype(np.float32) * 1e-3,
                           rng.uniform(1e-8, 1e-6, layer.v.shape).astype(np.float32)]
    chip, ref, *_ = run_updates(agent, 2)
    assert state_diff(chip, ref) == []
    pruned = ~ref.actor.layers[1].bitmap
    assert np.array_equal(ref.actor.layers[1].v[pruned], agent.actor.layers[1].v[pruned])


def test_element_masked_values_keep_their_masters_with_live_adam_moments():
    """circ-fine's switch hands the masked values Adam moments (the circulant ones, expanded);
    the compiled Adam must mask their update as golden/td3.py does, so they stay frozen."""
    agent = make_agent("fine", ("l1", "l2"), 0.75)
    rng = np.random.default_rng(6)
    for net in (agent.actor, agent.critic1, agent.critic2):
        for layer in net.layers[:2]:
            layer.adam["W"] = [rng.standard_normal(layer.W.shape).astype(np.float32) * 1e-3,
                               rng.uniform(1e-8, 1e-6, layer.W.shape).astype(np.float32)]
    chip, ref, *_ = run_updates(agent, 2)
    assert state_diff(chip, ref) == []
    for i in (0, 1):
        pruned = ref.actor.layers[i].mask == 0
        assert pruned.mean() == pytest.approx(0.75, abs=0.01)
        assert np.array_equal(ref.actor.layers[i].W[pruned], agent.actor.layers[i].W[pruned])
        assert not np.array_equal(ref.actor.layers[i].W[~pruned], agent.actor.layers[i].W[~pruned])
