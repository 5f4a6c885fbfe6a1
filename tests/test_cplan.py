"""The C backend's own arena plan (tinykd.deploy.cbackend.plan): small, valid, and safe for the kernels' loop orders.

The bit-exact tests (test_cbackend.py, test_verify.py) run the planned code against TFLM; here:
the RAM target against the real TFLM interpreter, the plan's invariants (for each kernel variant's
plan), the overlap distances against a simulation of the kernels' loops, and in C, every kernel variant
with each output at the tightest overlap the planner allows, against the same layer with separate
buffers, and the DSP convolution, which needs a plan of its own above its channel block.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinykd.deploy.cbackend import lower as cbackend
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import KERNEL_VARIANTS, kernels_define
from tinykd.deploy.cbackend.lower import arena_offsets, arena_plans, generate_c_backend
from tinykd.deploy.cbackend.plan import (ALIGNMENT, Block, CPlan, arena_blocks,
                                         overlap_distance, place, plan_arena, plan_variants)
from tinykd.deploy.cbackend.quantize import same_padding
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.deploy.tflm.memory import estimate_arena, measure_arena
from tinykd.tflite.reader import Model, Operator, Tensor, read_model

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MLPERF = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]
RAM_TARGET = 0.80
"""The C backend's RAM (its one static arena) against the smallest arena TFLM accepts."""
M7_REFERENCE = Path(__file__).resolve().parents[1] / "bench" / "tflm_m7_reference.json"
M7_RAM_TARGET = 0.70
"""... against the smallest arena of real TFLM on a Cortex-M7 (bench/tflm_m7_reference.json)."""


def c_backend_ram(model) -> int:
    return arena_offsets(model)[1]


def tflm_arena(path) -> int:
    return measure_arena(path, start=estimate_arena(read_model(path), 8).total_bytes)


def test_c_backend_needs_at_most_80_percent_of_tflm_arena_on_every_zoo_model(zoo):
    assert len(zoo) == 9
    ratios = {name: c_backend_ram(read_model(path)) / tflm_arena(path) for name, path in sorted(zoo.items())}
    assert all(ratio <= RAM_TARGET for ratio in ratios.values()), ratios


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")
@pytest.mark.parametrize("name", MLPERF)
def test_c_backend_ram_on_mlperf_tiny_models(name):
    path = SHARED_MODELS / name
    assert c_backend_ram(read_model(path)) <= RAM_TARGET * tflm_arena(path)


def test_c_backend_needs_at_most_70_percent_of_tflm_m7_arena_with_every_variant(zoo):
    """Every zoo model and both MLPerf Tiny models (when present), with each kernel variant's plan."""
    figures = json.loads(M7_REFERENCE.read_text())["models"]
    paths = {f"zoo_{name}": path for name, path in zoo.items()}
    paths |= {Path(name).stem: SHARED_MODELS / name for name in MLPERF if (SHARED_MODELS / name).is_file()}
    ratios = {(name, plan.variants): plan.size / figures[name]["m7_min_ref"]
              for name, path in paths.items() for plan in arena_plans(read_model(path))}
    assert len({name for name, _ in ratios}) >= 9
    assert all(ratio <= M7_RAM_TARGET for ratio in ratios.values()), ratios


# ---- Invariants of the plan -------------------------------------------------------------------------


def check_plan(model: Model, plan: CPlan) -> None:
    assert plan.violations() == []
    offsets = plan.tensor_offsets()
    planned = [t.index for t in model.tensors if not t.is_constant and t.nbytes]
    assert sorted(offsets) == sorted(planned)
    for t in planned:
        assert offsets[t] % ALIGNMENT == 0 and offsets[t] + model.tensors[t].nbytes <= plan.size
    block_of = {t: i for i, b in enumerate(plan.blocks) for t in b.tensors}
    # aliases: only a RESHAPE's input and output share a block
    reshapes = {frozenset((op.inputs[0], op.outputs[0])) for op in model.operators if op.op == "RESHAPE"}
    for block in plan.blocks:
        for a in block.tensors:
            assert any(frozenset((a, b)) in reshapes for b in block.tensors if b != a) or len(block.tensors) == 1
    # an overlap is between an op's output and one of its inputs read for the last time there, not a
    # graph output; anything else alive at the same time has its own bytes (violations() checks that)
    for (out, source), distance in plan.overlaps.items():
        assert distance >= 0
        ops = [(k, op) for k, op in enumerate(model.operators, start=1)
               if block_of.get(op.outputs[0]) == out and op.op != "RESHAPE"]
        assert len(ops) == 1
        time, op = ops[0]
        assert any(block_of.get(i) == source for i in op.inputs)
        assert plan.blocks[source].last == time == plan.blocks[out].first
        assert not set(plan.blocks[source].tensors) & set(model.outputs)


def test_plans_of_zoo_and_mlperf_models_are_valid(zoo):
    paths = list(zoo.values()) + ([SHARED_MODELS / name for name in MLPERF] if SHARED_MODELS.is_dir() else [])
    for path in paths:
        model = read_model(path)
        plan = plan_arena(model)
        check_plan(model, plan)
        assert plan.size <= plan_arena(model, in_place=False).size
        assert plan == plan_arena(read_model(path))  # deterministic
        # every RESHAPE is an alias: the only copies are of the graph's inputs and outputs
        invoke = generate_c_backend(model)["tinykd_model.c"].split("int tinykd_invoke")[1]
        assert invoke.count("memcpy(") == len(model.inputs) + len(model.outputs)
        assert invoke.count("an alias of its input") == sum(op.op == "RESHAPE" for op in model.operators)
        check_variant_plans(model)


def check_variant_plans(model: Model) -> list[tuple[tuple[str, ...], CPlan]]:
    """Every variant has one plan, valid under its own overlaps and no larger than its own best."""
    plans = plan_variants(model)
    assert sorted(v for variants, _ in plans for v in variants) == sorted(KERNEL_VARIANTS)
    for variants, plan in plans:
        for variant in variants:
            blocks, overlaps = arena_blocks(model, kernels=variant)
            assert CPlan(blocks, plan.offsets, overlaps).violations() == []
            assert plan.size <= plan_arena(model, kernels=variant).size
    return plans


def test_variants_share_a_plan_unless_a_wide_dsp_convolution_needs_its_own(zoo):
    """Only the DSP convolution with more than TK_RQ_BLOCK output channels forbids an overlap the others
    allow: the zoo (at most 32 channels) has one plan, a convolution with more channels than a block two."""
    for path in zoo.values():
        assert [variants for variants, _ in check_variant_plans(read_model(path))] == [KERNEL_VARIANTS]
    model = _wide_convolution()
    plans = check_variant_plans(model)
    assert [variants for variants, _ in plans] == [("portable", "mve"), ("dsp",)]
    (_, shared), (_, dsp) = plans
    assert shared.overlaps and not dsp.overlaps and shared.size < dsp.size


def test_overlaps_put_residual_and_convolutions_in_place(zoo):
    model = read_model(zoo["residual_add"])
    plan = plan_arena(model)
    offsets = plan.tensor_offsets()
    conv, add = model.operators[2], model.operators[3]
    assert conv.op == "CONV_2D" and add.op == "ADD"
    # the 20x20x16 3x3 SAME convolution writes pixel p's next-to-last channel before it reads the
    # window from pixel p - 21 again: it may start 21 pixels and 15 bytes below its input
    assert overlap_distance(model, conv, 0) == 21 * 16 + 15
    assert offsets[conv.outputs[0]] <= offsets[conv.inputs[0]] - 351
    assert offsets[add.outputs[0]] in (offsets[add.inputs[0]], offsets[add.inputs[1]])
    assert plan.size == 2 * 6400 + 352  # the input of the ADD, and the overlapping pair (aligned to 4)


def test_placement_honours_overlaps_in_both_directions():
    blocks = [Block((0,), 100, 0, 1), Block((1,), 100, 1, 2), Block((2,), 40, 0, 2)]
    overlaps = {(1, 0): 20}  # block 1 is written by the op that reads block 0 for the last time
    sizes = {}
    for order in ([0, 1, 2], [1, 0, 2], [2, 0, 1], [2, 1, 0]):
        plan = CPlan(blocks, place(blocks, overlaps, order), overlaps)
        assert plan.violations() == []
        sizes[tuple(order)] = plan.size
    assert sizes == {(0, 1, 2): 240, (1, 0, 2): 160, (2, 0, 1): 240, (2, 1, 0): 160}
    plan = CPlan(blocks, place(blocks, overlaps, [0, 1, 2]), overlaps)
    assert plan.offsets[:2] == [0, 100]  # the input at 0 leaves no room below it: the output goes above
    plan = CPlan(blocks, place(blocks, overlaps, [1, 0, 2]), overlaps)
    assert plan.offsets[:2] == [20, 0]  # the output first: the input 20 bytes above it
    bad = CPlan(blocks, [0, 8, 120], overlaps)
    assert len(bad.violations()) == 1 and "overlap" in bad.violations()[0]
    assert CPlan(blocks, [22, 2, 124], overlaps).violations() == [
        "block (0,) at offset 22 is not aligned to 4", "block (1,) at offset 2 is not aligned to 4"]
    assert CPlan(blocks, [0, 100, 200], {}).violations() == []
    assert len(CPlan(blocks, [20, 0, 120], {}).violations()) == 1  # no overlap without its permission


# ---- Synthetic single-op models ---------------------------------------------------------------------


class _Builder:
    def __init__(self):
        self.tensors, self.operators, self.inputs, self.outputs = [], [], [], []

    def tensor(self, shape, dtype="int8", data=None, scale=0.05, zero_point=0):
        scales = tuple(scale) if isinstance(scale, (list, tuple)) else (scale,)
        self.tensors.append(Tensor(len(self.tensors), f"t{len(self.tensors)}", tuple(shape), dtype, data, scales,
                                   (zero_point,) * len(scales)))
        return len(self.tensors) - 1

    def op(self, name, inputs, output, **options):
        self.operators.append(Operator(len(self.operators), name, 1, tuple(inputs), (output,), options))

    def model(self, name="synthetic.tflite") -> Model:
        return Model(Path(name), name.encode(), self.tensors, self.operators, tuple(self.inputs),
                     tuple(self.outputs))


def _out_size(size, kernel, stride, dilation, same):
    return -(-size // stride) if same else (size - (kernel - 1) * dilation - 1) // stride + 1


def _spatial_branch(b: _Builder, rng, kind):
    """One random CONV_2D, DEPTHWISE_CONV_2D or pooling layer on a graph input: (op index, input)."""
    batches = 1 if rng.random() < 0.8 else 2
    in_h, in_w, in_c = (int(v) for v in rng.integers(1, 10, 3))
    k_h, k_w = (int(v) for v in rng.integers(1, 5, 2))
    s_h, s_w = (int(v) for v in rng.integers(1, 4, 2))
    dilated = not kind.endswith("POOL_2D") and rng.random() >= 0.6
    d_h, d_w = tuple(int(v) for v in rng.integers(1, 3, 2)) if dilated else (1, 1)
    same = bool(rng.random() < 0.5)
    out_h, out_w = _out_size(in_h, k_h, s_h, d_h, same), _out_size(in_w, k_w, s_w, d_w, same)
    if out_h < 1 or out_w < 1:
        return None
    zp = int(rng.integers(-20, 20))
    inp = b.tensor((batches, in_h, in_w, in_c), zero_point=zp)
    padding = "SAME" if same else "VALID"
    if kind.endswith("POOL_2D"):
        out = b.tensor((batches, out_h, out_w, in_c), zero_point=zp)
        b.op(kind, [inp], out, filterHeight=k_h, filterWidth=k_w, strideH=s_h, strideW=s_w, padding=padding,
             fusedActivationFunction="NONE")
    else:
        depthwise = kind == "DEPTHWISE_CONV_2D"
        out_c = in_c * int(rng.integers(1, 4)) if depthwise else int(rng.integers(1, 10))
        shape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, in_c)
        weights = b.tensor(shape, data=rng.integers(-127, 128, shape, dtype=np.int8).tobytes(),
                           scale=list(rng.uniform(0.001, 0.02, out_c)))
        bias = b.tensor((out_c,), "int32", rng.integers(-2000, 2000, out_c, dtype=np.int32).tobytes(), 0.0)
        out = b.tensor((batches, out_h, out_w, out_c), scale=0.1, zero_point=int(rng.integers(-20, 20)))
        b.op(kind, [inp, weights, bias], out, strideH=s_h, strideW=s_w, dilationHFactor=d_h, dilationWFactor=d_w,
             padding=padding, fusedActivationFunction="NONE")
    b.inputs.append(inp)
    b.outputs.append(out)
    return len(b.operators) - 1


def _elementwise_branch(b: _Builder, rng, kind):
    shape = tuple(int(v) for v in rng.integers(1, 8, int(rng.integers(2, 5))))
    inputs = [b.tensor(shape, scale=float(rng.uniform(0.02, 0.1)), zero_point=int(rng.integers(-30, 30)))
              for _ in range(2 if kind in ("ADD", "MUL") else 1)]
    options = {"fusedActivationFunction": "NONE"} if kind in ("ADD", "MUL") else {}
    if kind == "SOFTMAX":
        options = {"beta": 1.0}
    out = b.tensor(shape, "float32" if kind == "DEQUANTIZE" else "int8", scale=float(rng.uniform(0.02, 0.1)),
                   zero_point=int(rng.integers(-30, 30)))
    b.op(kind, inputs, out, **options)
    b.inputs += inputs
    b.outputs.append(out)
    return len(b.operators) - 1


def _concatenation_branch(b: _Builder, rng, kind="CONCATENATION"):
    """2 to 4 inputs of rank 1 to 4 joined along a random axis (negative half the time)."""
    dims = [int(v) for v in rng.integers(1, 6, int(rng.integers(1, 5)))]
    axis = int(rng.integers(len(dims)))
    inputs = []
    for _ in range(int(rng.integers(2, 5))):
        dims[axis] = int(rng.integers(1, 5))
        inputs.append(b.tensor(tuple(dims), zero_point=3))
    dims[axis] = sum(b.tensors[i].shape[axis] for i in inputs)
    out = b.tensor(tuple(dims), zero_point=3)
    b.op(kind, inputs, out, axis=axis - len(dims) if rng.random() < 0.5 else axis, fusedActivationFunction="NONE")
    b.inputs += inputs
    b.outputs.append(out)
    return len(b.operators) - 1


SPATIAL = ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"]
ELEMENTWISE = ["ADD", "MUL", "LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE", "SOFTMAX"]


def synthetic_model(seed, kinds, branches):
    rng = np.random.default_rng(seed)
    b = _Builder()
    while len(b.operators) < branches:
        kind = kinds[len(b.operators) % len(kinds)]
        branch = _spatial_branch if kind in SPATIAL else _concatenation_branch if kind == "CONCATENATION" \
            else _elementwise_branch
        branch(b, rng, kind)
    return b.model(f"synthetic_{seed}.tflite")


# The kernels' loops as Python generators of ("r", input byte) and ("w", output byte), in order, to find
# the least distance by brute force: the largest (write - lowest later read) + 1.


def _window(o, stride, pad, kernel, dilation, size):
    return [y for y in (o * stride - pad + k * dilation for k in range(kernel)) if 0 <= y < size]


def _loop_events(model, op):
    inp, out = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
    batches, in_h, in_w, in_c = inp.shape
    _, out_h, out_w, out_c = out.shape
    o = op.options
    if op.op.endswith("POOL_2D"):
        k_h, k_w, d_h, d_w = o["filterHeight"], o["filterWidth"], 1, 1
    else:
        _, k_h, k_w, _ = model.tensors[op.inputs[1]].shape
        d_h, d_w = o["dilationHFactor"], o["dilationWFactor"]
    p_h = same_padding(in_h, out_h, k_h, o["strideH"], d_h)
    p_w = same_padding(in_w, out_w, k_w, o["strideW"], d_w)
    multiplier = out_c // in_c
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                ys = _window(oy, o["strideH"], p_h, k_h, d_h, in_h)
                xs = _window(ox, o["strideW"], p_w, k_w, d_w, in_w)
                for oc in range(out_c):
                    channels = range(in_c) if op.op == "CONV_2D" else [oc // multiplier]
                    for y in ys:
                        for x in xs:
                            for c in channels:
                                yield "r", ((b * in_h + y) * in_w + x) * in_c + c
                    yield "w", ((b * out_h + oy) * out_w + ox) * out_c + oc


def _concatenation_events(model, op, position):
    """tk_concatenation: row o of each input in turn, copied byte by byte (reads of input `position` only)."""
    out = model.tensors[op.outputs[0]]
    axis = op.options["axis"] % len(out.shape)
    rows = [int(np.prod(model.tensors[i].shape[axis:])) for i in op.inputs]
    written = 0
    for o in range(int(np.prod(out.shape[:axis]))):
        for k, row in enumerate(rows):
            for j in range(row):
                if k == position:
                    yield "r", o * row + j
                yield "w", written
                written += 1


def brute_force_distance(model, op, position=0):
    later, need = None, 0
    events = _concatenation_events(model, op, position) if op.op == "CONCATENATION" else _loop_events(model, op)
    for kind, byte in reversed(list(events)):
        if kind == "r":
            later = byte if later is None else min(later, byte)
        elif later is not None:
            need = max(need, byte - later + 1)
    return need


def test_overlap_distances_equal_a_simulation_of_the_kernel_loops():
    model = synthetic_model(1, SPATIAL, 240)
    for op in model.operators:
        assert overlap_distance(model, op, 0) == brute_force_distance(model, op), (op.op, op.options)


def test_concatenation_distances_equal_a_simulation_of_its_loop():
    model = synthetic_model(4, ["CONCATENATION"], 60)
    for op in model.operators:
        for position in range(len(op.inputs)):
            assert overlap_distance(model, op, position) == brute_force_distance(model, op, position), op.options


def test_elementwise_distances():
    model = synthetic_model(2, ELEMENTWISE, 14)
    for op in model.operators:
        out = model.tensors[op.outputs[0]]
        expected = 3 * (out.elements - 1) if op.op == "DEQUANTIZE" else 0
        assert overlap_distance(model, op, 0) == expected
    b = _Builder()
    big, small = b.tensor((1, 4, 4, 3)), b.tensor((1, 1, 1, 3))
    b.op("MUL", [big, small], b.tensor((1, 4, 4, 3)), fusedActivationFunction="NONE")
    model = b.model()
    assert overlap_distance(model, model.operators[0], 0) == 0
    assert overlap_distance(model, model.operators[0], 1) is None  # broadcast: read again and again


# ---- In C: each output at the tightest overlap, every kernel variant -------------------------------


def _tight_offsets(model, kernels="portable", slack=0, position=0):
    """Branch after branch: the output at an aligned base, input `position` `distance - slack` above it,
    other inputs above both."""
    offsets, base = {}, 0
    for op in model.operators:
        tight, out = op.inputs[position], op.outputs[0]
        distance = max(overlap_distance(model, op, position, kernels) - slack, 0)
        offsets[out], offsets[tight] = base, base + distance
        end = max(base + model.tensors[out].nbytes, base + distance + model.tensors[tight].nbytes)
        for index in op.inputs:
            if index >= 0 and index != tight and not model.tensors[index].is_constant:
                offsets[index], end = end, end + model.tensors[index].nbytes
        base = (end + 15) // 16 * 16
    return offsets, base


DRIVER = r"""
#include <stdio.h>
#include "tinykd_model.h"
int main(void)
{
    static int8_t input[TINYKD_INPUT_BYTES], output[TINYKD_OUTPUT_BYTES];
    unsigned state = 12345u;
    int i;
    for (i = 0; i < TINYKD_INPUT_BYTES; ++i) {
        state = state * 1103515245u + 12345u;
        input[i] = (int8_t)(state >> 16);
    }
    tinykd_invoke(input, output);
    return fwrite(output, 1, sizeof output, stdout) == sizeof output ? 0 : 1;
}
"""


def run_generated(model, kernels, folder, monkeypatch, offsets) -> bytes:
    """The model's outputs for one fixed input, built with the `kernels` variant and `offsets` (tensor
    offsets, arena size) as the plan of every variant."""
    plan = cbackend.ArenaPlan(KERNEL_VARIANTS, *offsets)
    monkeypatch.setattr(cbackend, "arena_plans", lambda m, in_place=True, fusion=None: [plan])
    sources = generate_c_backend(model)
    monkeypatch.undo()
    write_tree(folder, {**sources, "driver.c": DRIVER})
    c_files = ["driver.c"] + sorted(name for name in sources if name.endswith(".c"))
    subprocess.run(["gcc", "-std=c99", "-O2", kernels_define(kernels), "-o", "model", *c_files], cwd=folder,
                   check=True)
    return subprocess.run(["./model"], cwd=folder, check=True, capture_output=True).stdout


def _wide_convolution() -> Model:
    """One 3x3 SAME convolution of a graph input with more output channels than the DSP kernel's block."""
    rng = np.random.default_rng(4)
    b = _Builder()
    channels = DSP_CHANNEL_BLOCK + 8
    inp = b.tensor((1, 6, 6, 3), zero_point=5)
    weights = b.tensor((channels, 3, 3, 3), data=rng.integers(-127, 128, (channels, 3, 3, 3), dtype=np.int8).tobytes(),
                       scale=list(rng.uniform(0.001, 0.02, channels)))
    out = b.tensor((1, 6, 6, channels), scale=0.1, zero_point=-3)
    b.op("CONV_2D", [inp, weights, -1], out, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1,
         padding="SAME", fusedActivationFunction="NONE")
    b.inputs, b.outputs = [inp], [out]
    return b.model("wide.tflite")


def test_the_dsp_convolution_needs_its_own_plan_above_its_channel_block(tmp_path, monkeypatch):
    """At the portable kernels' tightest overlap the DSP kernel's second block of channels reads input
    its first block has overwritten; its own plan keeps them apart."""
    model = _wide_convolution()
    separate = run_generated(model, "dsp", tmp_path / "separate", monkeypatch, arena_offsets(model, in_place=False))
    tight = _tight_offsets(model, "portable")
    assert run_generated(model, "portable", tmp_path / "portable", monkeypatch, tight) == separate
    assert run_generated(model, "dsp", tmp_path / "dsp", monkeypatch, tight) != separate
    own = arena_offsets(model, kernels="dsp")
    assert run_generated(model, "dsp", tmp_path / "own", monkeypatch, own) == separate


def test_concatenation_is_exact_with_each_input_at_the_tightest_overlap(tmp_path, monkeypatch):
    """Each input in turn at its distance below the output (the others apart): the same bytes as with
    separate buffers; one byte closer and some output goes wrong."""
    model = synthetic_model(5, ["CONCATENATION"], 12)
    separate = run_generated(model, "portable", tmp_path / "separate", monkeypatch, arena_offsets(model, in_place=False))
    for position in range(2):
        for slack, same in ((0, True), (1, False)):
            offsets = _tight_offsets(model, slack=slack, position=position)
            folder = tmp_path / f"input{position}_slack{slack}"
            assert (run_generated(model, "portable", folder, monkeypatch, offsets) == separate) == same


@pytest.mark.parametrize("kernels", KERNEL_VARIANTS)
def test_every_kernel_variant_is_exact_at_the_tightest_overlap(kernels, tmp_path, monkeypatch):
    model = synthetic_model(3, SPATIAL + ELEMENTWISE, 66)
    separate = run_generated(model, kernels, tmp_path / "separate", monkeypatch,
                             arena_offsets(model, in_place=False))
    tight = run_generated(model, kernels, tmp_path / "tight", monkeypatch, _tight_offsets(model, kernels))
    assert tight == separate
    # and the test can fail: one byte closer, some convolution or pooling output goes wrong
    closer = run_generated(model, kernels, tmp_path / "closer", monkeypatch, _tight_offsets(model, kernels, slack=1))
    assert closer != separate
