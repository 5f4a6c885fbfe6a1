"""DEPTHWISE_CONV_2D: one filter per input channel (times a depth multiplier), per-channel requantization."""

from __future__ import annotations

from tinykd.deploy.cbackend.overlap import inside_pixel
from tinykd.deploy.ops.conv_2d import (convolution_distance, convolution_op_data, convolution_prepare,
                                       lower_convolution)
from tinykd.deploy.ops.spec import OpSpec, TflmKernel


def _overlap(model, op, position: int, kernels: str) -> int | None:
    if position != 0:
        return None
    in_c = model.tensors[op.inputs[0]].shape[-1]
    out_c = model.tensors[op.outputs[0]].shape[-1]
    # output channel oc reads input channel oc // multiplier only
    return convolution_distance(model, op, inside_pixel(in_c, out_c // in_c))


def _macs(model, op) -> int:
    _, k_h, k_w, _ = model.tensors[op.inputs[1]].shape
    return model.tensors[op.outputs[0]].elements * k_h * k_w


SPECS = [OpSpec(
    name="DEPTHWISE_CONV_2D", resolver="AddDepthwiseConv2D",
    lower=lambda model, op: lower_convolution(model, op, depthwise=True),
    files=("depthwise_conv.c",), variants={"dsp": "depthwise_conv_dsp.c", "mve": "depthwise_conv_mve.c"},
    overlap=_overlap, tflm=TflmKernel(params="e iii e ii", op_data=convolution_op_data, prepare=convolution_prepare),
    macs=_macs, weights=True)]
