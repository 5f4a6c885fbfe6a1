"""The C backend: an INT8 TFLite model as plain C99 calls into tinykd's runtime (`tinykd/runtime/`);
the only float32 tensors it allows are the outputs of DEQUANTIZE (int8 -> float32) layers.

No interpreter and no flatbuffer on the device: weights become const arrays, each layer a const
parameter struct and one kernel call, and activations live in one static arena placed by the C
backend's own planner (`tinykd.cplan`: aliases and in-place outputs where the kernels allow), so RAM
is exact. Parameters come from `tinykd.cquant`, which derives
them as TFLM's Prepare does; outputs are meant to be byte-equal to TFLM's.

The same sources build for any core: the runtime carries every kernel variant the model's layers have
(portable, dsp, mve), and the compiler keeps the one the core's macros choose
(`tinykd/runtime/tinykd_kernels.h`; `boards.kernels_define` forces one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


from tinykd import __version__
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment
from tinykd.deploy.cbackend.plan import DSP_CONV_CHANNEL_BLOCK, plan_variants
from tinykd.tflite.reader import Model, Operator, Tensor

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"


@dataclass
class Layer:
    """One kernel call: its parameter struct (fields and the const arrays they point to) and arguments."""

    op: Operator
    kernel: str
    struct: str | None
    detail: str
    args: list[str] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)
    arrays: list[tuple[str, str, list]] = field(default_factory=list)
    """(name suffix, C element type, values): a field of the same name points at the array."""
    files: tuple[str, ...] = ()


def _where(model: Model, op: Operator) -> str:
    return f"{model.path}: layer {op.index} ({op.op})"


def _quant(tensor: Tensor) -> tuple[float, int]:
    return tensor.scale[0], tensor.zero_point[0]


def _dims4(shape) -> list[int]:
    return [1] * (4 - len(shape)) + list(shape)


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _io(model: Model, op: Operator):
    return model.op_inputs(op), model.tensors[op.outputs[0]]


def _conv(model: Model, op: Operator, depthwise: bool) -> Layer:
    (inp, weights, *rest), out = _io(model, op)
    bias = rest[0] if rest else None
    o = op.options
    _, in_h, in_w, in_c = inp.shape
    batches, out_h, out_w, out_c = out.shape
    k_h, k_w = weights.shape[1], weights.shape[2]
    if not depthwise and weights.shape[3] != in_c:
        raise TinykdError(f"{_where(model, op)}: grouped convolutions are not supported by the C backend")
    in_scale, in_zp = _quant(inp)
    out_scale, out_zp = _quant(out)
    multipliers, shifts = cquant.channel_multipliers(in_scale, weights.scale, out_scale, out_c)
    act_min, act_max = cquant.activation_range(o["fusedActivationFunction"], out_scale, out_zp, _where(model, op))
    fields = dict(batches=batches, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                  k_h=k_h, k_w=k_w, stride_h=o["strideH"], stride_w=o["strideW"],
                  dilation_h=o["dilationHFactor"], dilation_w=o["dilationWFactor"],
                  pad_h=cquant.same_padding(in_h, out_h, k_h, o["strideH"], o["dilationHFactor"]),
                  pad_w=cquant.same_padding(in_w, out_w, k_w, o["strideW"], o["dilationWFactor"]),
                  depth_multiplier=out_c // in_c if depthwise else 1,
                  input_offset=-in_zp, output_offset=out_zp, act_min=act_min, act_max=act_max)
    arrays = [("weights", "int8_t", weights.array().ravel().tolist()),
              ("bias", "int32_t", bias.array().ravel().tolist() if bias is not None else None),
              ("multiplier", "int32_t", multipliers), ("shift", "int32_t", shifts)]
    detail = (f"{k_h}x{k_w} stride {o['strideH']}x{o['strideW']} dilation {o['dilationHFactor']}x"
              f"{o['dilationWFactor']} {o['padding']}, {o['fusedActivationFunction']}")
    name = "depthwise_conv_2d" if depthwise else "conv_2d"
    return Layer(op, f"tk_{name}", "tk_conv_params", detail, fields=fields, arrays=arrays,
                 files=("depthwise_conv.c" if depthwise else "conv.c",))


def _fully_connected(model: Model, op: Operator) -> Layer:
    (inp, weights, *rest), out = _io(model, op)
    bias = rest[0] if rest else None
    units, accum = weights.shape
    in_scale, in_zp = _quant(inp)
    out_scale, out_zp = _quant(out)
    if len(weights.scale) > 1:
        multipliers, shifts = cquant.channel_multipliers(in_scale, weights.scale, out_scale, units)
    else:
        multiplier, shift = cquant.fully_connected_multiplier(in_scale, weights.scale[0], out_scale)
        multipliers, shifts = [multiplier] * units, [shift] * units
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, _where(model, op))
    fields = dict(batches=out.elements // units, accum_depth=accum, out_depth=units, input_offset=-in_zp,
                  output_offset=out_zp, act_min=act_min, act_max=act_max)
    arrays = [("weights", "int8_t", weights.array().ravel().tolist()),
              ("bias", "int32_t", bias.array().ravel().tolist() if bias is not None else None),
              ("multiplier", "int32_t", multipliers), ("shift", "int32_t", shifts)]
    return Layer(op, "tk_fully_connected", "tk_fully_connected_params", f"{accum} -> {units}, {activation}",
                 fields=fields, arrays=arrays, files=("fully_connected.c",))


def _pool(model: Model, op: Operator) -> Layer:
    (inp,), out = _io(model, op)
    o = op.options
    batches, in_h, in_w, channels = inp.shape
    _, out_h, out_w, _ = out.shape
    act_min, act_max = cquant.activation_range(o["fusedActivationFunction"], *_quant(out), _where(model, op))
    fields = dict(batches=batches, in_h=in_h, in_w=in_w, channels=channels, out_h=out_h, out_w=out_w,
                  k_h=o["filterHeight"], k_w=o["filterWidth"], stride_h=o["strideH"], stride_w=o["strideW"],
                  pad_h=cquant.same_padding(in_h, out_h, o["filterHeight"], o["strideH"], 1),
                  pad_w=cquant.same_padding(in_w, out_w, o["filterWidth"], o["strideW"], 1),
                  act_min=act_min, act_max=act_max)
    detail = f"{o['filterHeight']}x{o['filterWidth']} stride {o['strideH']}x{o['strideW']} {o['padding']}"
    kernel = "tk_max_pool_2d" if op.op == "MAX_POOL_2D" else "tk_average_pool_2d"
    return Layer(op, kernel, "tk_pool_params", detail, fields=fields, files=("pooling.c",))


def _mean(model: Model, op: Operator) -> Layer:
    (inp, axes), out = _io(model, op)
    rank = len(inp.shape)
    if rank > 4 or axes is None or not axes.is_constant:
        raise TinykdError(f"{_where(model, op)}: the C backend needs a constant axis and rank <= 4")
    reduced = {int(a) % rank + 4 - rank for a in axes.array().ravel()}
    dims = _dims4(inp.shape)
    count = math.prod(dims[a] for a in reduced)
    in_scale, in_zp = _quant(inp)
    out_scale, out_zp = _quant(out)
    multiplier, shift = cquant.mean_multiplier(in_scale, out_scale, count)
    fields = dict(dims=dims, reduce=[int(a in reduced) for a in range(4)], count=count, input_zero_point=in_zp,
                  output_zero_point=out_zp, multiplier=multiplier, shift=shift)
    detail = f"axes {sorted(a - 4 + rank for a in reduced)}"
    return Layer(op, "tk_mean", "tk_mean_params", detail, fields=fields, files=("mean.c",))


def _softmax(model: Model, op: Operator) -> Layer:
    (inp,), out = _io(model, op)
    problem = cquant.softmax_scale_problem(op.options["beta"], inp.scale[0])
    if problem:
        raise TinykdError(f"{_where(model, op)}: {problem}")
    multiplier, shift, diff_min = cquant.softmax_parameters(op.options["beta"], inp.scale[0])
    depth = inp.shape[-1]
    fields = dict(rows=inp.elements // depth, depth=depth, input_multiplier=multiplier, input_left_shift=shift,
                  diff_min=diff_min)
    return Layer(op, "tk_softmax", "tk_softmax_params", f"beta {op.options['beta']:g}", fields=fields,
                 files=("softmax.c", "fixedpoint.c"))


def _broadcast(model: Model, op: Operator, first: Tensor, second: Tensor, out: Tensor) -> dict:
    if len(out.shape) > 4:
        raise TinykdError(f"{_where(model, op)}: the C backend broadcasts up to rank 4")
    dims = _dims4(out.shape)

    def strides(tensor: Tensor) -> list[int]:
        shape = _dims4(tensor.shape)
        result = [math.prod(shape[a + 1:]) for a in range(4)]
        return [0 if shape[a] == 1 and dims[a] > 1 else result[a] for a in range(4)]

    return dict(dims=dims, strides1=strides(first), strides2=strides(second))


def _add(model: Model, op: Operator) -> Layer:
    (first, second), out = _io(model, op)
    out_scale, out_zp = _quant(out)
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, _where(model, op))
    fields = dict(_broadcast(model, op, first, second, out), input1_offset=-first.zero_point[0],
                  input2_offset=-second.zero_point[0], output_offset=out_zp,
                  **cquant.add_parameters(first.scale[0], second.scale[0], out_scale), act_min=act_min,
                  act_max=act_max)
    return Layer(op, "tk_add", "tk_add_params", activation, fields=fields, files=("add.c",))


def _mul(model: Model, op: Operator) -> Layer:
    (first, second), out = _io(model, op)
    out_scale, out_zp = _quant(out)
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, _where(model, op))
    multiplier, shift = cquant.quantize_multiplier(first.scale[0] * second.scale[0] / out_scale)
    fields = dict(_broadcast(model, op, first, second, out), input1_offset=-first.zero_point[0],
                  input2_offset=-second.zero_point[0], output_offset=out_zp, multiplier=multiplier, shift=shift,
                  act_min=act_min, act_max=act_max)
    return Layer(op, "tk_mul", "tk_mul_params", activation, fields=fields, files=("mul.c",))


def _concatenation(model: Model, op: Operator) -> Layer:
    inputs, out = _io(model, op)
    axis = op.options["axis"] % len(out.shape)
    if op.options["fusedActivationFunction"] != "NONE" or any(
            t.is_constant or _quant(t) != _quant(out) for t in inputs):
        raise TinykdError(f"{_where(model, op)}: the C backend concatenates only activations quantized like "
                          "the output, without a fused activation")
    fields = dict(count=len(inputs), outer=math.prod(out.shape[:axis]))
    arrays = [("row_bytes", "int", [math.prod(t.shape[axis:]) for t in inputs])]
    return Layer(op, "tk_concatenation", "tk_concatenation_params", f"axis {axis}", fields=fields,
                 arrays=arrays, files=("concatenation.c",))


def _pad(model: Model, op: Operator) -> Layer:
    inputs, out = _io(model, op)
    inp, paddings = inputs[0], inputs[1]
    if len(out.shape) > 4 or not paddings.is_constant:
        raise TinykdError(f"{_where(model, op)}: the C backend pads up to rank 4 with constant paddings")
    value = inputs[2].array().ravel()[0] if op.op == "PADV2" and len(inputs) > 2 else out.zero_point[0]
    before = [int(p) for p in paddings.array().reshape(-1, 2)[:, 0]]
    fields = dict(in_dims=_dims4(inp.shape), out_dims=_dims4(out.shape), before=[0] * (4 - len(before)) + before,
                  value=int(value))
    return Layer(op, "tk_pad", "tk_pad_params", f"before {before}", fields=fields, files=("pad.c",))


def _logistic(model: Model, op: Operator) -> Layer:
    (inp,), out = _io(model, op)
    multiplier, shift, radius = cquant.logistic_parameters(inp.scale[0])
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], input_multiplier=multiplier,
                  input_range_radius=radius, input_left_shift=shift)
    return Layer(op, "tk_logistic", "tk_logistic_params", "", fields=fields, files=("logistic.c", "fixedpoint.c"))


def _hard_swish(model: Model, op: Operator) -> Layer:
    (inp,), out = _io(model, op)
    parameters = cquant.hard_swish_parameters(inp.scale[0], out.scale[0])
    if parameters["output_exponent"] > 0:
        raise TinykdError(f"{_where(model, op)}: the output scale is below 1/128 of the input scale, "
                          "which TFLM's HARD_SWISH refuses too; recalibrate the model")
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], output_zero_point=out.zero_point[0],
                  **parameters)
    return Layer(op, "tk_hard_swish", "tk_hard_swish_params", "", fields=fields, files=("hard_swish.c",))


def _quantize(model: Model, op: Operator) -> Layer:
    (inp,), out = _io(model, op)
    multiplier, shift = cquant.quantize_multiplier(inp.scale[0] / out.scale[0])
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], output_zero_point=out.zero_point[0],
                  multiplier=multiplier, shift=shift)
    return Layer(op, "tk_quantize", "tk_quantize_params", "int8 -> int8", fields=fields, files=("quantize.c",))


def _dequantize(model: Model, op: Operator) -> Layer:
    (inp,), _ = _io(model, op)
    # repr gives the shortest text that parses back to the same double: the float32 scale exactly
    fields = dict(size=inp.elements, zero_point=inp.zero_point[0], scale=repr(inp.scale[0]))
    return Layer(op, "tk_dequantize", "tk_dequantize_params", "int8 -> float32", fields=fields,
                 files=("dequantize.c",))


def _reshape(model: Model, op: Operator) -> Layer:
    """No code when the arena plan aliases the output to the input (it always does: a reshape keeps
    the bytes); a copy otherwise (see _finish)."""
    return Layer(op, "memcpy", None, "an alias of its input")


_BUILDERS = {
    "CONV_2D": lambda m, op: _conv(m, op, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda m, op: _conv(m, op, depthwise=True),
    "FULLY_CONNECTED": _fully_connected, "MAX_POOL_2D": _pool, "AVERAGE_POOL_2D": _pool, "MEAN": _mean,
    "SOFTMAX": _softmax, "ADD": _add, "MUL": _mul, "CONCATENATION": _concatenation, "PAD": _pad, "PADV2": _pad,
    "LOGISTIC": _logistic, "HARD_SWISH": _hard_swish, "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
    "RESHAPE": _reshape,
}
SUPPORTED_OPS = sorted(_BUILDERS)


def _check_graph_io(model: Model) -> None:
    """int8 graph inputs; int8 or float32 graph outputs (a float32 one can only come from DEQUANTIZE,
    which _check_types ensures)."""
    for t in model.input_tensors() + model.output_tensors():
        if t.dtype != "int8" and (t.index in model.inputs or t.dtype != "float32"):
            raise TinykdError(f"{model.path}: {t.dtype} {'input' if t.index in model.inputs else 'output'} "
                              f"tensor {t.name!r}: the C backend needs int8 inputs and int8 outputs (or float32 "
                              "ones from DEQUANTIZE); convert with `tinykd quantize`")


def _check_types(model: Model, op: Operator) -> None:
    """int8 activations and weights only (int16 activations and int4 weights are refused); only
    DEQUANTIZE writes float32."""
    activations = [model.tensors[i] for i in op.inputs if i >= 0 and not model.tensors[i].is_constant]
    weights = [t for t in model.op_inputs(op)[1:2] if t is not None and op.op in (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    output = model.tensors[op.outputs[0]].dtype
    if any(t.dtype != "int8" for t in activations + weights) or output != (
            "float32" if op.op == "DEQUANTIZE" else "int8"):
        types = ", ".join(t.dtype for t in activations + weights)
        raise TinykdError(f"{_where(model, op)}: the C backend runs int8 kernels only (inputs {types}, "
                          f"output {output}); convert with `tinykd quantize`")


MAX_TENSOR_BYTES = 1 << 26
"""64 MB: a tensor larger than this cannot be meant for a microcontroller."""


def build_layers(model: Model) -> list[Layer]:
    """One Layer per operator; an op without a C kernel is a TinykdError naming it and its layer."""
    layers = []
    for op in model.operators:
        builder = _BUILDERS.get(op.op)
        if builder is None:
            raise TinykdError(f"{_where(model, op)}: the C backend has no kernel for {op.op} "
                              f"(it supports {', '.join(SUPPORTED_OPS)}); use the TFLM bundle instead")
        _check_types(model, op)
        largest = max((t for t in model.op_inputs(op) + [model.tensors[i] for i in op.outputs] if t is not None),
                      key=lambda t: t.nbytes)
        if largest.nbytes > MAX_TENSOR_BYTES:
            raise TinykdError(f"{_where(model, op)}: tensor {largest.name!r} has {largest.nbytes:,} bytes, more "
                              "than any microcontroller holds (a damaged file?)")
        try:
            layers.append(builder(model, op))
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            # A damaged or unusual file: tensors, quantization or options are not what the op needs.
            raise TinykdError(f"{_where(model, op)}: its tensors, quantization or options are not what the "
                              f"C backend expects ({type(exc).__name__}: {exc})") from None
    return layers


class ArenaPlan(NamedTuple):
    """The arena of the kernel variants that share it: every planned tensor's offset, and its size."""

    variants: tuple[str, ...]
    offsets: dict[int, int]
    size: int


def arena_plans(model: Model, in_place: bool = True) -> list[ArenaPlan]:
    """The C backend's own arena plans (`tinykd.cplan.plan_variants`), one per group of kernel variants
    that share one. RESHAPE outputs alias their inputs and, with `in_place`, an output may overlap an
    input that dies at its op as far as the variant's loop order allows."""
    return [ArenaPlan(variants, plan.tensor_offsets(), plan.size) for variants, plan in plan_variants(model, in_place)]


def arena_offsets(model: Model, in_place: bool = True, kernels: str = "portable") -> tuple[dict[int, int], int]:
    """The offsets and arena size of the plan the `kernels` variant's build uses."""
    plan = next(plan for plan in arena_plans(model, in_place) if kernels in plan.variants)
    return plan.offsets, plan.size


VARIANT_FILES = {"dsp": {"conv.c": "conv_dsp.c", "depthwise_conv.c": "depthwise_conv_dsp.c",
                         "fully_connected.c": "fully_connected_dsp.c"},
                 "mve": {"conv.c": "conv_mve.c", "depthwise_conv.c": "depthwise_conv_mve.c",
                         "fully_connected.c": "fully_connected_mve.c"}}
"""Per kernel variant: the portable runtime files it replaces with its own, which define the same
functions (same results, byte for byte), written for its cores. Each file keeps its code inside
`#if TK_KERNELS == ...`, so all of them are compiled and one definition remains."""
VARIANT_HEADERS = {"dsp": "tinykd_dsp.h", "mve": "tinykd_mve.h"}


def common_headers() -> set[str]:
    """The runtime headers every build includes: all but the variants' own."""
    return {path.name for path in RUNTIME_DIR.glob("*.h")} - set(VARIANT_HEADERS.values())


def runtime_files(layers: list[Layer]) -> list[str]:
    """The runtime files the layers need, in every kernel variant (with each variant's header, if one of
    its files is used), and the common headers, sorted."""
    names = {name for layer in layers for name in layer.files} | common_headers()
    for variant, replaced in VARIANT_FILES.items():
        own = {replaced[name] for name in names if name in replaced}
        names |= own | ({VARIANT_HEADERS[variant]} if own else set())
    return sorted(names)


def variant_sources(files: list[str], variant: str) -> list[str]:
    """Of the runtime's files, the .c files whose code a `variant` build compiles, sorted."""
    others = {name for other, replaced in VARIANT_FILES.items() if other != variant for name in replaced.values()}
    inactive = others | set(VARIANT_FILES.get(variant, {}))
    return sorted(name for name in files if name.endswith(".c") and name not in inactive)


def _c_values(ctype: str, values: list) -> str:
    per_line = 16 if ctype == "int8_t" else 8
    rows = [", ".join(str(v) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return ",\n".join("    " + row for row in rows)


def _finish(model: Model, layer: Layer, pointer) -> None:
    """Fill in a layer's call arguments and its pointer fields."""
    op = layer.op
    inputs = [i for i in op.inputs if i >= 0 and not model.tensors[i].is_constant]
    out = model.tensors[op.outputs[0]]
    name = f"layer{op.index}"
    if layer.kernel == "memcpy":
        layer.args = [pointer(op.outputs[0]), pointer(inputs[0]), str(out.nbytes)]
        if layer.args[0] == layer.args[1]:  # an alias: no call (the template writes a comment)
            layer.kernel, layer.args = "", []
        return
    for suffix, _, values in layer.arrays:
        layer.fields[suffix] = f"{name}_{suffix}" if values is not None else "NULL"
    if layer.kernel == "tk_concatenation":
        layer.arrays.append(("inputs", "int8_t *const", [pointer(i) for i in inputs]))
        layer.args = [f"&{name}", f"{name}_inputs", pointer(op.outputs[0])]
    else:
        layer.args = [f"&{name}"] + [pointer(i) for i in inputs] + [pointer(op.outputs[0])]
    layer.arrays = [(suffix, ctype, values) for suffix, ctype, values in layer.arrays if values is not None]


def _field_text(value) -> str:
    if isinstance(value, list):
        return "{" + ", ".join(str(v) for v in value) + "}"
    return str(value)


def _plan_directives(plans: list[ArenaPlan]) -> list[str]:
    """The #if / #elif / #else lines that pick each plan's group of variants."""
    lines = []
    for position, plan in enumerate(plans):
        if position == len(plans) - 1:
            lines.append(f"#else /* {', '.join(plan.variants)} */")
        else:
            test = " || ".join(f"TK_KERNELS == TK_KERNELS_{v.upper()}" for v in plan.variants)
            lines.append(f"{'#if' if position == 0 else '#elif'} {test}")
    return lines


def generate_c_backend(model: Model) -> dict[str, str]:
    """The C backend's sources for `model`: relative path -> text.

    `tinykd_model.h` / `tinykd_model.c` (entry point `tinykd_invoke`) and, under `runtime/`, the
    runtime headers and the kernels the model uses, in every variant (see VARIANT_FILES). Graph inputs
    (outputs) are read (written) back to back, in the model's order (a float32 output as its raw
    bytes). Where the variants' arena plans differ, both headers pick the build's plan by TK_KERNELS.
    The same model gives the same bytes, whatever core it is built for.
    """
    _check_graph_io(model)
    layers = build_layers(model)
    plans = arena_plans(model)
    differing: dict[tuple[int, ...], str] = {}  # offsets in each plan -> the macro that names them
    for index in sorted(plans[0].offsets):
        where = tuple(plan.offsets[index] for plan in plans)
        if len(set(where)) > 1:
            differing.setdefault(where, f"TINYKD_OFFSET_{index}")

    def pointer(index: int) -> str:
        # the planner's offsets are 4-aligned, so a float32 tensor is suitably aligned
        where = tuple(plan.offsets[index] for plan in plans)
        text = f"arena + {differing.get(where, where[0])}"
        return f"(float *)({text})" if model.tensors[index].dtype == "float32" else text

    for layer in layers:
        _finish(model, layer, pointer)
    files = runtime_files(layers)

    def tensor_io(indices) -> list[dict]:
        result, position = [], 0
        for index in indices:
            t = model.tensors[index]
            result.append(dict(index=len(result), name=t.name, shape=_shape(t.shape), dtype=t.dtype,
                               bytes=t.nbytes, position=position, pointer=pointer(index)))
            position += t.nbytes
        return result

    inputs, outputs = tensor_io(model.inputs), tensor_io(model.outputs)
    directives = _plan_directives(plans)
    values = dict(
        version=__version__, model=dict(file=model.path.name, sha256=model.sha256, ops=model.ops),
        plans=[dict(directive=directive, arena_bytes=plan.size) for directive, plan in zip(directives, plans)],
        offsets=[dict(directive=directive, defines=[(name, where[position]) for where, name in differing.items()])
                 for position, directive in enumerate(directives)],
        rq_block=DSP_CONV_CHANNEL_BLOCK, input_bytes=sum(t["bytes"] for t in inputs),
        output_bytes=sum(t["bytes"] for t in outputs), inputs=inputs, outputs=outputs,
        float_outputs=[t for t in outputs if t["dtype"] == "float32"],
        runtime_files=files,
        layers=[dict(index=l.op.index, op=l.op.op, detail=l.detail, kernel=l.kernel, struct=l.struct,
                     out_pointer=pointer(l.op.outputs[0]), out_bytes=model.tensors[l.op.outputs[0]].nbytes,
                     args=l.args, fields={k: _field_text(v) for k, v in l.fields.items()},
                     arrays=[(suffix, ctype, len(v), _c_values(ctype, v)) for suffix, ctype, v in l.arrays],
                     shapes=" + ".join(_shape(model.tensors[i].shape) for i in l.op.inputs
                                       if i >= 0 and not model.tensors[i].is_constant)
                     + " -> " + _shape(model.tensors[l.op.outputs[0]].shape))
                for l in layers])
    env = environment(compact=True)
    sources = {name: env.get_template(f"c/{name}.j2").render(values) for name in ("tinykd_model.h", "tinykd_model.c")}
    for name in files:
        sources[f"runtime/{name}"] = (RUNTIME_DIR / name).read_text()
    return sources
