"""LOGISTIC: the sigmoid in TFLM's fixed point."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch_operands, io


def _lower(model, op) -> Layer:
    (inp,), out = io(model, op)
    multiplier, shift, radius = cquant.logistic_parameters(inp.scale[0])
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], input_multiplier=multiplier,
                  input_range_radius=radius, input_left_shift=shift)
    return Layer(op, "tk_logistic", "tk_logistic_params", "", fields=fields)


SPECS = [OpSpec(name="LOGISTIC", resolver="AddLogistic", lower=_lower, files=("logistic.c", "fixedpoint.c"),
                overlap=elementwise_distance, tflm=TflmKernel(params=None, op_data="4i", prepare=fetch_operands))]
