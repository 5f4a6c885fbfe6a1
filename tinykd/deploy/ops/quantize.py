"""QUANTIZE: int8 to int8 with another scale and zero point (a requantization)."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch_operands, io


def _lower(model, op) -> Layer:
    (inp,), out = io(model, op)
    multiplier, shift = cquant.quantize_multiplier(inp.scale[0] / out.scale[0])
    fields = dict(size=inp.elements, input_zero_point=inp.zero_point[0], output_zero_point=out.zero_point[0],
                  multiplier=multiplier, shift=shift)
    return Layer(op, "tk_quantize", "tk_quantize_params", "int8 -> int8", fields=fields)


SPECS = [OpSpec(name="QUANTIZE", resolver="AddQuantize", lower=_lower, files=("quantize.c",),
                overlap=elementwise_distance,
                tflm=TflmKernel(params=None, op_data="(i d) 3i", prepare=fetch_operands))]
