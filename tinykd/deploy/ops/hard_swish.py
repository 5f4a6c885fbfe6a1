"""HARD_SWISH: x * relu6(x + 3) / 6 with TFLM's 16-bit intermediate."""

from __future__ import annotations

from tinykd.core.errors import TinykdError
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch_operands, io, where


def _lower(model, op) -> Layer:
    (inp,), out = io(model, op)
    parameters = cquant.hard_swish_parameters(inp.scale[0], out.scale[0])
    if parameters["output_exponent"] > 0:
        raise TinykdError(f"{where(model, op)}: the output scale is below 1/128 of the input scale, "
                          "which TFLM's HARD_SWISH refuses too; recalibrate the model")
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], output_zero_point=out.zero_point[0],
                  **parameters)
    return Layer(op, "tk_hard_swish", "tk_hard_swish_params", "", fields=fields)


SPECS = [OpSpec(name="HARD_SWISH", resolver="AddHardSwish", lower=_lower, files=("hard_swish.c",),
                overlap=elementwise_distance,
                tflm=TflmKernel(params=None, op_data="hhh i h i", prepare=fetch_operands))]
