"""MAX_POOL_2D and AVERAGE_POOL_2D: windows over each channel (one runtime file, pooling.c)."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import inside_pixel, sliding_windows, spatial_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch, io, quant, where


def _lower(model, op) -> Layer:
    (inp,), out = io(model, op)
    o = op.options
    batches, in_h, in_w, channels = inp.shape
    _, out_h, out_w, _ = out.shape
    act_min, act_max = cquant.activation_range(o["fusedActivationFunction"], *quant(out), where(model, op))
    fields = dict(batches=batches, in_h=in_h, in_w=in_w, channels=channels, out_h=out_h, out_w=out_w,
                  k_h=o["filterHeight"], k_w=o["filterWidth"], stride_h=o["strideH"], stride_w=o["strideW"],
                  pad_h=cquant.same_padding(in_h, out_h, o["filterHeight"], o["strideH"], 1),
                  pad_w=cquant.same_padding(in_w, out_w, o["filterWidth"], o["strideW"], 1),
                  act_min=act_min, act_max=act_max)
    detail = f"{o['filterHeight']}x{o['filterWidth']} stride {o['strideH']}x{o['strideW']} {o['padding']}"
    kernel = "tk_max_pool_2d" if op.op == "MAX_POOL_2D" else "tk_average_pool_2d"
    return Layer(op, kernel, "tk_pool_params", detail, fields=fields)


def _overlap(model, op, position: int, kernels: str) -> int | None:
    inp, out = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
    o = op.options
    windows = sliding_windows(inp.shape, out.shape, (o["filterHeight"], o["filterWidth"]), (o["strideH"], o["strideW"]))
    return spatial_distance(*inp.shape, *out.shape[1:], windows, inside_pixel(inp.shape[-1], 1))


def _prepare(model, op, build) -> list[tuple[str, int]]:
    """CMSIS-NN's average pooling fetches its tensors again and, on DSP cores, sums a row in scratch."""
    steps = fetch(op.inputs[0], op.outputs[0])
    if build.cmsis and op.op == "AVERAGE_POOL_2D":
        depth = model.tensors[op.outputs[0]].shape[3]
        steps += fetch(op.inputs[0], op.outputs[0]) + ([("scratch", 4 * depth)] if build.cmsis == "dsp" else [])
    return steps


_TFLM = TflmKernel(params="e 4i e 4i", op_data=lambda build: "(8i) i" if build.cmsis else "8i", prepare=_prepare)

SPECS = [OpSpec(name=name, resolver=resolver, lower=_lower, files=("pooling.c",), overlap=_overlap, tflm=_TFLM)
         for name, resolver in (("MAX_POOL_2D", "AddMaxPool2D"), ("AVERAGE_POOL_2D", "AddAveragePool2D"))]
