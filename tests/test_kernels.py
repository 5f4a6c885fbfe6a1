"""Every kernel of the C backend against TFLM, byte for byte, on random single-op cases, in every variant
the kernel has: natively (host gcc, the variant forced with -DTK_KERNELS; the dsp and mve variants as
their plain-C stand-ins) and in QEMU (the real DSP and Helium instructions, picked by the core's flags).

The cases come from tests/singleop.py, many branches to a model, each kernel's from its own seed:
SMALL_CASES small ones, which also run in QEMU, then LARGE_CASES the size of real models' layers, in
models of CHUNK cases. Every variant of a kernel runs the same cases, compiled once per model. Each
kernel's cases must also contain what real models contain (REQUIRED_FEATURES, read from the written
models), so a generator that stops producing, say, dead channels fails here. A failure names each
differing case; `singleop.build_model([(kernel, seed, [index])], limits)` rebuilds it alone.
"""

from __future__ import annotations

import functools
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from harness import differing_bytes, random_vectors, run_c, run_on_qemu, run_tflm
from singleop import GENERATORS, KERNEL_OPS, LARGE, SMALL, Limits, build_model
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.boards import KERNEL_VARIANTS, build_variant, load_board
from tinykd.deploy.cbackend.lower import SUPPORTED_OPS, VARIANT_FILES, build_layers
from tinykd.deploy.ops import SPECS
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.tflite.reader import Model, parse_model

KERNELS = sorted(GENERATORS)
SMALL_CASES = 50
LARGE_CASES = 960
CHUNK = 240
VECTORS = 8
QEMU_RUNS = [("mps2-an500", "portable"), ("mps2-an500", "dsp"), ("nucleo-f446re", "dsp"),
             ("nucleo-l552ze-q", "dsp"), ("mps3-an547", "mve"), ("rpi-pico", "portable")]
"""(board, variant): M7, M4, M33 and M55 cores, each with the variant its flags pick, and the M7 with the
portable kernels forced; the Cortex-M0+ runs PICO_KERNELS only."""
PICO_KERNELS = ["CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE"]
"""DEQUANTIZE, whose double arithmetic the Cortex-M0+ does in software, and the convolutions, whose dot
products are ARMv6-M assembly there (tinykd_portable.h)."""


def kernel_seed(kernel: str) -> int:
    """Stable per kernel, whatever kernels are added."""
    return zlib.crc32(kernel.encode())


@functools.cache
def chunks(kernel: str) -> list[tuple[str, range, Limits]]:
    """(name, case indices, limits) of the kernel's models: the small cases, then the large ones."""
    large = range(SMALL_CASES, SMALL_CASES + LARGE_CASES)
    return [("small", range(SMALL_CASES), SMALL)] + [
        (f"large{i}", large[i:i + CHUNK], LARGE) for i in range(0, LARGE_CASES, CHUNK)]


@functools.cache
def cases_model(specs: tuple[tuple[str, range], ...], limits: Limits) -> tuple[Model, list]:
    """The parsed model of the cases (kernel, indices) of every spec, checked to be what was meant."""
    data, cases = build_model([(kernel, kernel_seed(kernel), indices) for kernel, indices in specs], limits)
    name = specs[0][0] if len(specs) == 1 else f"{len(specs)}_kernels"
    model = parse_model(data, f"{name}_from_case_{specs[0][1].start}.tflite")
    check_model(model, cases)
    return model, cases


def check_model(model: Model, cases: list) -> None:
    """Each case is one op of its kernel, from its own graph inputs to its own graph output, and no
    tensor is shared between cases."""
    assert len(model.operators) == len(cases)
    assert list(model.inputs) == [i for case in cases for i in case.inputs]
    assert list(model.outputs) == [case.output for case in cases]
    owner = {}
    for op, case in zip(model.operators, cases):
        assert op.op in KERNEL_OPS[case.kernel], (op.op, str(case))
        assert [i for i in op.inputs if i >= 0 and not model.tensors[i].is_constant] == case.inputs, str(case)
        assert op.outputs == (case.output,), str(case)
        for i in op.inputs + op.outputs:
            if i >= 0:
                assert owner.setdefault(i, op.index) == op.index, f"tensor {i} shared: {case}"
    assert len(owner) == len(model.tensors), "tensors no op uses"


@functools.cache
def variants(kernel: str) -> list[str]:
    """portable, and each variant that replaces one of the kernel's runtime files."""
    model, _ = cases_model(((kernel, range(1)),), SMALL)
    files = {name for layer in build_layers(model) for name in SPECS[layer.op.op].files}
    return ["portable"] + [v for v, replaced in VARIANT_FILES.items() if files & set(replaced)]


def mismatches(model: Model, cases: list, ours: bytes, golden: bytes, where: str) -> list[str]:
    """One line per case whose output bytes differ from TFLM's."""
    return [f"{where}: {case}: {count} of {VECTORS * model.tensors[case.output].nbytes} output bytes differ"
            for case, count in zip(cases, differing_bytes(model, ours, golden)) if count]


def report(failures: list[str], compared: int) -> None:
    if failures:
        pytest.fail(f"{len(failures)} of {compared} case runs differ from TFLM:\n" + "\n".join(failures[:20]))


def test_every_kernel_and_variant_file_has_cases():
    """The generators cover every op the C backend has a kernel for (RESHAPE is an alias, no code),
    and every variant's files; every variant also runs in QEMU."""
    assert {op for ops in KERNEL_OPS.values() for op in ops} == set(SUPPORTED_OPS) - {"RESHAPE"}
    assert {variant for _, variant in QEMU_RUNS} == set(KERNEL_VARIANTS) == {"portable", *VARIANT_FILES}
    assert [(board, v) for board, v in QEMU_RUNS if build_variant(load_board(board)) != v] == [
        ("mps2-an500", "portable")]  # the only forced one
    for variant, replaced in VARIANT_FILES.items():
        kernels = [kernel for kernel in KERNELS if variant in variants(kernel)]
        files = {name for kernel in kernels for layer in build_layers(cases_model(((kernel, range(1)),), SMALL)[0])
                 for name in SPECS[layer.op.op].files}
        assert files == set(replaced), variant


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_is_bit_exact_with_tflm(kernel, tmp_path):
    """All of the kernel's cases in every variant, natively; then what they contained."""

    def run(chunk):
        name, indices, limits = chunk
        model, cases = cases_model(((kernel, indices),), limits)
        vectors = random_vectors(model, VECTORS, seed=kernel_seed(kernel) + indices.start)
        golden = run_tflm(model, vectors)
        failures = []
        for variant in variants(kernel):
            ours = run_c(model, vectors, tmp_path / name / variant, variant)
            failures += mismatches(model, cases, ours, golden, variant)
        return model, cases, failures

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, chunks(kernel)))
    cases = [case for _, chunk_cases, _ in results for case in chunk_cases]
    assert len(cases) == SMALL_CASES + LARGE_CASES >= 1000
    report([line for _, _, failures in results for line in failures], len(cases) * len(variants(kernel)))
    found = set().union(*(features(model, op) for model, _, _ in results for op in model.operators))
    assert REQUIRED_FEATURES[kernel] <= found, f"no case has {sorted(REQUIRED_FEATURES[kernel] - found)}"


@pytest.mark.parametrize("board, variant", QEMU_RUNS)
def test_small_cases_are_bit_exact_with_tflm_on_qemu(board, variant, tmp_path):
    """The small cases of every kernel with this variant, in one firmware for the board."""
    kernels = PICO_KERNELS if board == "rpi-pico" else [k for k in KERNELS if variant in variants(k)]
    model, cases = cases_model(tuple((kernel, range(SMALL_CASES)) for kernel in kernels), SMALL)
    vectors = random_vectors(model, VECTORS, seed=1)
    forced = None if build_variant(load_board(board)) == variant else variant
    ours = run_on_qemu(model, vectors, tmp_path, board, forced)
    report(mismatches(model, cases, ours, run_tflm(model, vectors), f"{board} {variant}"), len(cases))


# ---- what the cases contain, read from the models --------------------------------------------------

def features(model: Model, op) -> set[str]:
    """Names of what one op has that REQUIRED_FEATURES asks for."""
    inputs = [t for t in model.op_inputs(op) if t is not None and not t.is_constant]
    out = model.tensors[op.outputs[0]]
    found = {f"rank {len(inputs[0].shape)}", op.op}
    for role, tensors in (("input", inputs), ("output", [out])):
        zero_points = {t.zero_point[0] for t in tensors if t.zero_point}
        found |= {f"{role} zero point {z}" for z in zero_points & {-128, 127}}
        if zero_points - {-128, 127}:
            found.add(f"{role} zero point between")
    options = op.options
    found |= {f"activation {options['fusedActivationFunction']}"} if "fusedActivationFunction" in options else set()
    found |= {f"padding {options['padding']}"} if "padding" in options else set()
    if "strideH" in options:
        found |= {f"stride {options['strideH']}", f"stride {options['strideW']}"}
    if len(inputs[0].shape) == 4 and max(inputs[0].shape[1:3]) >= 64:
        found.add("image of 64 or more")
    return found | OP_FEATURES.get(op.op, lambda model, op: set())(model, op)


def _requantization(model: Model, op):
    """Per output channel: filter rows, filter scales, multipliers and shifts, bias (None if absent)."""
    inp, weights, *rest = model.op_inputs(op)
    out = model.tensors[op.outputs[0]]
    channels = out.shape[-1]
    array = weights.array()
    rows = array.reshape(-1, channels).T if op.op == "DEPTHWISE_CONV_2D" else array.reshape(channels, -1)
    scales = np.broadcast_to(np.array(weights.scale), channels)
    if len(weights.scale) > 1 or op.op != "FULLY_CONNECTED":
        multipliers, shifts = cquant.channel_multipliers(inp.scale[0], weights.scale, out.scale[0], channels)
    else:
        pair = cquant.fully_connected_multiplier(inp.scale[0], weights.scale[0], out.scale[0])
        multipliers, shifts = [pair[0]] * channels, [pair[1]] * channels
    bias = rest[0].array() if rest and rest[0] is not None else None
    return rows, scales, np.array(multipliers), np.array(shifts), bias


def _filter_features(model: Model, op) -> set[str]:
    rows, scales, multipliers, shifts, bias = _requantization(model, op)
    channels = len(rows)
    dead = ~rows.any(axis=1)
    found = set()
    if dead.any() and len(model.op_inputs(op)[1].scale) > 1:
        found |= {"dead channel of scale 0"} if (scales[dead] == 0).any() else set()
        found |= {"dead channel of a tiny scale"} if (scales[dead] > 0).any() else set()
        found |= {"dead channel with a bias"} if bias is not None and bias[dead].any() else set()
        found |= {"dead channel without bias"} if bias is None or not bias[dead].all() else set()
        block = DSP_CHANNEL_BLOCK
        if channels >= block and any(dead[c:c + block].sum() == 1 for c in range(0, channels, block)):
            found.add("one dead channel in a DSP channel block")
    live = multipliers > 0
    found |= {"left shift"} if (shifts > 0).any() else set()
    found |= {"right shift 31"} if (shifts == -31).any() else set()
    found |= {"multiplier 0 from a tiny scale"} if ((scales > 0) & ~live).any() else set()
    if live.any() and shifts[live].max() - shifts[live].min() >= 20:
        found.add("shifts over 20 octaves in one op")
    if channels >= 128 and channels % 4:
        found.add("128 or more channels, not a multiple of 4")
    found.add("no bias input" if bias is None else "zero bias" if not bias.any() else "bias")
    found.add("per-channel" if len(model.op_inputs(op)[1].scale) > 1 else "per-tensor")
    return found


def _conv_features(model: Model, op) -> set[str]:
    inp, weights = model.op_inputs(op)[:2]
    channels, k_h, k_w, in_c = weights.shape
    options = op.options
    found = _filter_features(model, op) | _dsp_conv_paths(model, op) | _portable_paths(channels, k_h * k_w * in_c)
    found |= {"1x1 filter"} if k_h == k_w == 1 else set()
    found |= {"more than 256 taps"} if k_h * k_w * in_c > 256 else set()
    found |= {"dilation"} if max(options["dilationHFactor"], options["dilationWFactor"]) > 1 else set()
    found |= {"batches"} if inp.shape[0] > 1 else set()
    return found


def _portable_paths(channels: int, taps: int) -> set[str]:
    """Which path of the portable convolution (conv.c, tinykd_portable.h) a layer takes: a patch of at most
    576 taps and at most 128 channels, four at a time in calls of up to 32, the rest one by one; else the
    reference loop. Odd taps take one step before the assembly's two-tap turns (ARMv6-M)."""
    if taps > 576 or channels > 128:
        return {"portable reference loop"}
    found = {"portable patch", f"portable patch, {'odd' if taps % 2 else 'even'} taps"}
    found |= {"portable patch, channels left over"} if channels % 4 else set()
    found |= {"portable patch, more than 32 channels"} if channels > 32 else set()
    return found


def _dsp_conv_paths(model: Model, op) -> set[str]:
    """Which code paths of conv_dsp.c run each block of DSP_CHANNEL_BLOCK output channels (its dispatch in
    tk_conv_2d), whether a block takes the slow requantization with channels the fast one could take, and
    whether the input is swept once per block."""
    _, multipliers, shifts, bias = _requantization(model, op)[1:5]
    channels, k_h, k_w, in_c = model.op_inputs(op)[1].shape
    bias = np.zeros(channels, np.int64) if bias is None else np.abs(bias.astype(np.int64))
    taps = k_h * k_w * in_c
    found = {"dsp: several channel blocks"} if channels > DSP_CHANNEL_BLOCK else set()
    for c0 in range(0, channels, DSP_CHANNEL_BLOCK):
        n = min(DSP_CHANNEL_BLOCK, channels - c0)
        if taps <= 64 and n * ((taps + 1) // 2) <= 128:
            path = "wide"
        elif in_c % 4 == 0 and (taps <= 576 or k_w * in_c <= 288):
            path = "quads" if taps <= 288 else "quads, filter rows in chunks"
        else:
            path = "general, patch" if taps <= 576 else "general, from the input"
        block = slice(c0, c0 + n)  # tk_rq_make's condition (tinykd_dsp.h)
        fast = (multipliers[block] >= 0) & (shifts[block] <= -1) & (shifts[block] >= -22) & (bias[block] <= 2**29)
        found.add(f"dsp {path}")
        if fast.any() and not fast.all():
            found.add(f"dsp {path}: slow block with fast channels")
    return found


def _depthwise_features(model: Model, op) -> set[str]:
    inp = model.op_inputs(op)[0]
    found = _filter_features(model, op)
    _, k_h, k_w, out_c = model.op_inputs(op)[1].shape
    if out_c > 128 or k_h * k_w * inp.shape[3] > 576:
        found.add("portable reference loop")  # depthwise_conv.c's budget
    else:
        found.add("portable 3x3 written out" if (k_h, k_w) == (3, 3) else "portable other filter")
        found |= {"portable, depth multiplier above 1"} if op.options["depthMultiplier"] > 1 else set()
    if op.options["depthMultiplier"] > 1:
        found.add("depth multiplier above 1")
    elif inp.shape[3] % 4:
        found.add("depth multiplier 1, channels not a multiple of 4")
    else:  # depthwise_conv_dsp.c's paths
        _, k_h, k_w, channels = model.op_inputs(op)[1].shape
        if k_h * k_w * channels > 576:
            found.add("dsp: weights too many to widen")
        elif (k_h, k_w) == (3, 3):
            found.add("dsp: 3x3 from widened weights")
        else:
            found.add("dsp: other filter from widened weights")
    found |= {"dilation"} if max(op.options["dilationHFactor"], op.options["dilationWFactor"]) > 1 else set()
    return found


def _fully_connected_features(model: Model, op) -> set[str]:
    weights = model.op_inputs(op)[1]
    units, depth = weights.shape
    found = _filter_features(model, op)
    found |= {"depth not a multiple of 4"} if depth % 4 else set()
    found |= {"depth above 256"} if depth > 256 else set()
    found |= {"batches"} if model.tensors[op.outputs[0]].elements > units else set()
    found |= {"keep_num_dims"} if op.options["keepNumDims"] else set()
    found |= {"flattened input"} if len(model.op_inputs(op)[0].shape) == 4 else set()
    return found


def _pool_features(model: Model, op) -> set[str]:
    inp, out = model.op_inputs(op)[0], model.tensors[op.outputs[0]]
    found = {"window of the whole image"} if out.shape[1:3] == (1, 1) and inp.shape[1:3] == (
        op.options["filterHeight"], op.options["filterWidth"]) else set()
    return found


def _mean_features(model: Model, op) -> set[str]:
    inp, axis = model.op_inputs(op)
    axes = axis.array().ravel()
    rank = len(inp.shape)
    normal = sorted({int(a) % rank for a in axes})
    found = {f"axes {normal if normal == [1, 2] and rank == 4 else 'other'}, keep_dims {op.options['keepDims']}"}
    found |= {"negative axis"} if (axes < 0).any() else set()
    found |= {"batches"} if inp.shape[0] > 1 and rank == 4 else set()
    return found


def _softmax_features(model: Model, op) -> set[str]:
    inp = model.op_inputs(op)[0]
    found = {"beta 1" if op.options["beta"] == 1 else "other beta"}
    found |= {"depth above 256"} if inp.shape[-1] > 256 else set()
    found |= {"depth above the kept exps"} if inp.shape[-1] > 32 else {"every exp kept"}  # TK_SOFTMAX_KEPT
    return found


def _binary_features(model: Model, op) -> set[str]:
    first, second = model.op_inputs(op)
    out = model.tensors[op.outputs[0]]
    found = {"broadcast"} if first.shape != out.shape or second.shape != out.shape else set()
    found |= {"different ranks"} if len(first.shape) != len(second.shape) else set()
    if op.op == "MUL":
        shift = cquant.quantize_multiplier(first.scale[0] * second.scale[0] / out.scale[0])[1]
        found.add("left shift" if shift > 0 else "right shift")
    return found


def _concatenation_features(model: Model, op) -> set[str]:
    count, axis = len(op.inputs), op.options["axis"]
    return {f"{'negative' if axis < 0 else 'positive'} axis", "more than 3 inputs" if count > 3 else "2 or 3 inputs",
            f"axis {axis % len(model.tensors[op.outputs[0]].shape)} of {len(model.tensors[op.outputs[0]].shape)}"}


def _quantize_features(model: Model, op) -> set[str]:
    inp, out = model.op_inputs(op)[0], model.tensors[op.outputs[0]]
    if inp.scale[0] == out.scale[0]:
        return {"same scale"}
    return {"left shift" if cquant.quantize_multiplier(inp.scale[0] / out.scale[0])[1] > 0 else "right shift"}


def _hard_swish_features(model: Model, op) -> set[str]:
    inp, out = model.op_inputs(op)[0], model.tensors[op.outputs[0]]
    exponent = cquant.hard_swish_parameters(inp.scale[0], out.scale[0])["reluish_exponent"]
    return {"reluish left shift" if exponent > 0 else "reluish right shift"}


def _dequantize_features(model: Model, op) -> set[str]:
    scale = model.op_inputs(op)[0].scale[0]
    return {"scale below 0.01"} if scale < 0.01 else {"scale above 100"} if scale > 100 else set()


OP_FEATURES = {
    "CONV_2D": _conv_features, "DEPTHWISE_CONV_2D": _depthwise_features,
    "FULLY_CONNECTED": _fully_connected_features, "MAX_POOL_2D": _pool_features,
    "AVERAGE_POOL_2D": _pool_features, "MEAN": _mean_features, "SOFTMAX": _softmax_features,
    "ADD": _binary_features, "MUL": _binary_features, "CONCATENATION": _concatenation_features,
    "QUANTIZE": _quantize_features, "HARD_SWISH": _hard_swish_features, "DEQUANTIZE": _dequantize_features,
}

ZERO_POINTS = {f"{role} zero point {z}" for role in ("input", "output") for z in (-128, 127, "between")}
ACTIVATIONS = {f"activation {a}" for a in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")}
WINDOWS = {"padding SAME", "padding VALID", "stride 1", "stride 2", "stride 3", "image of 64 or more"}
FILTERS = ZERO_POINTS | ACTIVATIONS | {
    "dead channel of scale 0", "dead channel of a tiny scale", "dead channel with a bias", "dead channel without bias",
    "one dead channel in a DSP channel block", "left shift", "right shift 31", "multiplier 0 from a tiny scale",
    "shifts over 20 octaves in one op", "128 or more channels, not a multiple of 4", "bias", "zero bias",
    "per-channel", "per-tensor"}
REQUIRED_FEATURES = {
    "CONV_2D": FILTERS | WINDOWS | {
        "no bias input", "1x1 filter", "more than 256 taps", "dilation", "batches", "dsp wide", "dsp quads",
        "dsp quads, filter rows in chunks", "dsp general, patch", "dsp general, from the input",
        "dsp: several channel blocks", "dsp wide: slow block with fast channels",
        "dsp quads: slow block with fast channels", "dsp general, patch: slow block with fast channels",
        "dsp general, from the input: slow block with fast channels", "portable patch", "portable patch, odd taps",
        "portable patch, even taps", "portable patch, channels left over", "portable patch, more than 32 channels",
        "portable reference loop"},
    "DEPTHWISE_CONV_2D": FILTERS | WINDOWS | {
        "depth multiplier above 1", "depth multiplier 1, channels not a multiple of 4", "dilation",
        "dsp: weights too many to widen", "dsp: 3x3 from widened weights", "dsp: other filter from widened weights",
        "portable reference loop", "portable 3x3 written out", "portable other filter",
        "portable, depth multiplier above 1"},
    "FULLY_CONNECTED": FILTERS | {"no bias input", "depth not a multiple of 4", "depth above 256", "batches",
                                  "keep_num_dims", "flattened input"},
    "MAX_POOL_2D": ZERO_POINTS | ACTIVATIONS | WINDOWS | {"window of the whole image"},
    "AVERAGE_POOL_2D": ZERO_POINTS | ACTIVATIONS | WINDOWS | {"window of the whole image"},
    "MEAN": ZERO_POINTS | {"image of 64 or more", "axes [1, 2], keep_dims True", "axes [1, 2], keep_dims False",
                           "axes other, keep_dims True", "axes other, keep_dims False", "negative axis",
                           "batches", "rank 2", "rank 3"},
    "SOFTMAX": {"input zero point -128", "input zero point 127", "input zero point between", "rank 2", "rank 4",
                "beta 1", "other beta", "depth above 256", "every exp kept", "depth above the kept exps"},
    "ADD": ZERO_POINTS | ACTIVATIONS | {"broadcast", "different ranks", "rank 1", "rank 4", "image of 64 or more"},
    "MUL": ZERO_POINTS | ACTIVATIONS | {"broadcast", "different ranks", "rank 1", "rank 4", "left shift",
                                        "right shift"},
    "CONCATENATION": ZERO_POINTS | {"negative axis", "positive axis", "more than 3 inputs", "2 or 3 inputs",
                                    "axis 0 of 1", "axis 1 of 2", "axis 2 of 3", "axis 0 of 4", "axis 3 of 4"},
    "PAD": ZERO_POINTS | {"PAD", "PADV2", "rank 1", "rank 2", "rank 3", "rank 4", "image of 64 or more"},
    "QUANTIZE": ZERO_POINTS | {"same scale", "left shift", "right shift", "rank 1", "rank 4"},
    "LOGISTIC": ZERO_POINTS - {"output zero point 127", "output zero point between"} | {"rank 1", "rank 4"},
    "HARD_SWISH": ZERO_POINTS | {"reluish left shift", "reluish right shift", "image of 64 or more"},
    "DEQUANTIZE": {"input zero point -128", "input zero point 127", "input zero point between", "scale below 0.01",
                   "scale above 100", "rank 1", "rank 4"},
}
"""Per kernel, what its cases must contain between them (besides matching TFLM)."""
