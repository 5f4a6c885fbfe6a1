"""CONV_2D: a 2-D convolution with per-channel requantization (also the parts DEPTHWISE_CONV_2D shares)."""

from __future__ import annotations

import math

from tinykd.core.errors import TinykdError
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import sliding_windows, spatial_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch, io, optional_input, quant, where

DSP_CHANNEL_BLOCK = 64
"""The runtime's TK_RQ_BLOCK (tinykd_kernels.h): conv_dsp.c sweeps the whole image once per block of
that many output channels. The generated tinykd_model.c refuses to build with another value."""

OP_DATA = "4i 5i pp 2i i"
"""TFLM's OpDataConv: padding, zero points and multiplier, per-channel arrays, ..."""


def lower_convolution(model, op, depthwise: bool) -> Layer:
    """tk_conv_2d or tk_depthwise_conv_2d: one struct of shapes, offsets and per-channel multipliers."""
    (inp, weights, *rest), out = io(model, op)
    bias = rest[0] if rest else None
    o = op.options
    _, in_h, in_w, in_c = inp.shape
    batches, out_h, out_w, out_c = out.shape
    k_h, k_w = weights.shape[1], weights.shape[2]
    if not depthwise and weights.shape[3] != in_c:
        raise TinykdError(f"{where(model, op)}: grouped convolutions are not supported by the C backend")
    in_scale, in_zp = quant(inp)
    out_scale, out_zp = quant(out)
    multipliers, shifts = cquant.channel_multipliers(in_scale, weights.scale, out_scale, out_c)
    act_min, act_max = cquant.activation_range(o["fusedActivationFunction"], out_scale, out_zp, where(model, op))
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
    kernel = "tk_depthwise_conv_2d" if depthwise else "tk_conv_2d"
    return Layer(op, kernel, "tk_conv_params", detail, fields=fields, arrays=arrays)


def convolution_distance(model, op, per_pixel: int | None) -> int:
    """How far a convolution's output may start below its input (`overlap.spatial_distance`)."""
    inp, weights = model.op_inputs(op)[:2]
    out = model.tensors[op.outputs[0]]
    o = op.options
    windows = sliding_windows(inp.shape, out.shape, tuple(weights.shape[1:3]), (o["strideH"], o["strideW"]),
                              (o["dilationHFactor"], o["dilationWFactor"]))
    return spatial_distance(*inp.shape, *out.shape[1:], windows, per_pixel)


def _overlap(model, op, position: int, kernels: str) -> int | None:
    out_c = model.tensors[op.outputs[0]].shape[-1]
    if position != 0 or (kernels == "dsp" and out_c > DSP_CHANNEL_BLOCK):
        return None  # a second DSP channel block reads the input again after the first wrote its outputs
    # tk_conv_2d: every output channel reads the whole window again, from its channel 0
    return convolution_distance(model, op, out_c - 2 if out_c > 1 else None)


def convolution_op_data(build) -> str:
    return f"({OP_DATA}) i" if build.cmsis else OP_DATA  # CMSIS-NN's kernels wrap the reference OpData


def convolution_prepare(model, op, build) -> list[tuple[str, int]]:
    """Per-channel multipliers and shifts, then the OpData's tensors again; CMSIS-NN adds its im2col or
    depthwise scratch buffer."""
    inp, weights, bias, out = op.inputs[0], op.inputs[1], optional_input(op, 2), op.outputs[0]
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    shape = model.tensors[weights].shape
    channels = shape[3] if depthwise else shape[0]
    first = fetch(inp, weights, out) if build.cmsis else fetch(out, inp, weights)
    steps = first + [("persistent", 4 * channels)] * 2 + fetch(inp, weights, bias, out)
    if build.cmsis:
        scratch = (_cmsis_nn_depthwise_scratch(model, op, build) if depthwise
                   else cmsis_nn_conv_scratch(model, op, build, shape[3]))
        steps += [("scratch", scratch)] if scratch > 0 else []
    return steps


def tflm_padding(model, op, axis: int) -> int:
    """TFLM's padding of a convolution along axis 1 (height) or 2 (width)."""
    o = op.options
    name = "H" if axis == 1 else "W"
    return cquant.same_padding(model.tensors[op.inputs[0]].shape[axis], model.tensors[op.outputs[0]].shape[axis],
                               model.tensors[op.inputs[1]].shape[axis], o.get(f"stride{name}", 1),
                               o.get(f"dilation{name}Factor", 1))


def cmsis_nn_conv_scratch(model, op, build, filter_channels: int) -> int:
    """CMSIS-NN's arm_convolve_wrapper_s8_get_buffer_size, built with GCC (its 1x1 DSP kernel needs none).
    Since 2026 a grouped convolution (input channels != filter channels) takes the general path."""
    _, in_h, _, in_c = model.tensors[op.inputs[0]].shape
    k_h, k_w = model.tensors[op.inputs[1]].shape[1:3]
    dilation = (op.options.get("dilationHFactor", 1), op.options.get("dilationWFactor", 1))
    ungrouped = in_c == filter_channels or build.year < 2026
    if k_h == k_w == 1 and tflm_padding(model, op, 1) == tflm_padding(model, op, 2) == 0 and dilation == (1, 1) \
            and ungrouped:
        return 0
    columns = k_h * k_w * in_c
    if build.cmsis != "mve":
        return 4 * -(-columns // 4) * 4  # two im2col columns of int16
    one_row = in_h == 1 and k_h == 1 and dilation[1] == 1 and op.options.get("strideW", 1) * in_c % 4 == 0
    if one_row and ungrouped:
        return _cmsis_nn_1xn_mve_scratch(model, op, columns)
    return 4 * math.ceil(columns / 16) * 16


def _cmsis_nn_1xn_mve_scratch(model, op, columns: int) -> int:
    """arm_convolve_1_x_n_s8_get_buffer_size for Helium (C's remainder and division keep the sign)."""
    in_w, in_c = model.tensors[op.inputs[0]].shape[2:]
    k_w = model.tensors[op.inputs[1]].shape[2]
    out_w = model.tensors[op.outputs[0]].shape[2]
    stride, pad = op.options.get("strideW", 1), tflm_padding(model, op, 2)
    asymmetric = int(math.fmod((out_w - 1) * stride + k_w - in_w, 2))
    right = max(1, int((pad + asymmetric + stride - 1) / stride)) if pad + asymmetric else 0
    left = max(1, (pad + stride - 1) // stride) if pad else 0
    if right + max(out_w - right - left, 0) + left != out_w:
        return 4 * math.ceil(columns / 16) * 16
    pad_right = right * in_c if asymmetric else pad * in_c
    return max(k_w * in_c + pad * in_c, (k_w - 1) * in_c + pad_right)


def _cmsis_nn_depthwise_scratch(model, op, build) -> int:
    """CMSIS-NN's arm_depthwise_conv_wrapper_s8_get_buffer_size: none for 3x3 kernels on DSP cores;
    since 2026, Helium runs a one-channel input with several outputs as a convolution."""
    batch, _, _, in_c = model.tensors[op.inputs[0]].shape
    out_c = model.tensors[op.outputs[0]].shape[3]
    k_h, k_w = model.tensors[op.inputs[1]].shape[1:3]
    if build.cmsis == "mve" and build.year >= 2026 and in_c == 1 and out_c > 1:
        return cmsis_nn_conv_scratch(model, op, build, filter_channels=1) + out_c * k_h * k_w
    dilation = (op.options.get("dilationHFactor", 1), op.options.get("dilationWFactor", 1))
    if in_c != out_c or batch != 1 or dilation != (1, 1):
        return 0
    if build.cmsis == "mve":
        return 4 * 124 * k_h * k_w  # CH_IN_BLOCK_MVE channels of four int8 rows
    three_by_three = k_h == k_w == 3 and tflm_padding(model, op, 1) <= 1 and tflm_padding(model, op, 2) <= 1
    return 0 if build.cmsis == "none" or three_by_three else 2 * in_c * k_h * k_w


def _macs(model, op) -> int:
    _, k_h, k_w, in_c = model.tensors[op.inputs[1]].shape
    return model.tensors[op.outputs[0]].elements * k_h * k_w * in_c


SPECS = [OpSpec(
    name="CONV_2D", resolver="AddConv2D", lower=lambda model, op: lower_convolution(model, op, depthwise=False),
    files=("conv.c",), variants={"dsp": "conv_dsp.c", "mve": "conv_mve.c"}, overlap=_overlap,
    tflm=TflmKernel(params="e ii e ii e", op_data=convolution_op_data, prepare=convolution_prepare),
    macs=_macs, weights=True)]
