"""MEAN: the average over constant axes (rank <= 4)."""

from __future__ import annotations

import math

from tinykd.core.errors import TinykdError
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, dims4, fetch, io, quant, where


def _lower(model, op) -> Layer:
    (inp, axes), out = io(model, op)
    rank = len(inp.shape)
    if rank > 4 or axes is None or not axes.is_constant:
        raise TinykdError(f"{where(model, op)}: the C backend needs a constant axis and rank <= 4")
    reduced = {int(a) % rank + 4 - rank for a in axes.array().ravel()}
    dims = dims4(inp.shape)
    count = math.prod(dims[a] for a in reduced)
    in_scale, in_zp = quant(inp)
    out_scale, out_zp = quant(out)
    multiplier, shift = cquant.mean_multiplier(in_scale, out_scale, count)
    fields = dict(dims=dims, reduce=[int(a in reduced) for a in range(4)], count=count, input_zero_point=in_zp,
                  output_zero_point=out_zp, multiplier=multiplier, shift=shift)
    detail = f"axes {sorted(a - 4 + rank for a in reduced)}"
    return Layer(op, "tk_mean", "tk_mean_params", detail, fields=fields)


def _prepare(model, op, build) -> list[tuple[str, int]]:
    """The int32 accumulator scratch (and, in 2026, two index scratch buffers), then PrepareSimple's tensors."""
    inp, axis, out = op.inputs[0], op.inputs[1], op.outputs[0]
    scratch = [4 * model.tensors[out].elements]
    if build.year >= 2026:
        scratch += [4 * len(model.tensors[inp].shape), 4 * model.tensors[axis].elements]
    return fetch(inp, out, axis) + [("scratch", size) for size in scratch] + fetch(inp, axis, out)


SPECS = [OpSpec(
    name="MEAN", resolver="AddMean", lower=_lower, files=("mean.c",),
    tflm=TflmKernel(params="b", op_data=lambda build: "11i" if build.year >= 2026 else "10i", prepare=_prepare))]
