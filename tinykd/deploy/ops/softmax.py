"""SOFTMAX: int8 in, int8 out, TFLM's fixed-point exponent."""

from __future__ import annotations

from tinykd.core.errors import TinykdError
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch_operands, io, where

_PARAMS = "d 6i i 5p"
"""TFLM's SoftmaxParams (kernels/internal/types.h), its OpData."""


def _lower(model, op) -> Layer:
    (inp,), out = io(model, op)
    problem = cquant.softmax_scale_problem(op.options["beta"], inp.scale[0])
    if problem:
        raise TinykdError(f"{where(model, op)}: {problem}")
    multiplier, shift, diff_min = cquant.softmax_parameters(op.options["beta"], inp.scale[0])
    depth = inp.shape[-1]
    fields = dict(rows=inp.elements // depth, depth=depth, input_multiplier=multiplier, input_left_shift=shift,
                  diff_min=diff_min)
    return Layer(op, "tk_softmax", "tk_softmax_params", f"beta {op.options['beta']:g}", fields=fields)


def _overlap(model, op, position: int, kernels: str) -> int | None:
    return 0  # tk_softmax reads a whole row twice, then writes out[c] right after reading in[c]


SPECS = [OpSpec(
    name="SOFTMAX", resolver="AddSoftmax", lower=_lower, files=("softmax.c", "fixedpoint.c"), overlap=_overlap,
    tflm=TflmKernel(params="i", op_data=lambda build: f"({_PARAMS}) ii" if build.cmsis else _PARAMS,
                    prepare=fetch_operands))]
