"""DEQUANTIZE: int8 to float32, the only float32 output the C backend writes."""

from __future__ import annotations

from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch_operands, io


def _lower(model, op) -> Layer:
    (inp,), _ = io(model, op)
    # repr gives the shortest text that parses back to the same double: the float32 scale exactly
    fields = dict(size=inp.elements, zero_point=inp.zero_point[0], scale=repr(inp.scale[0]))
    return Layer(op, "tk_dequantize", "tk_dequantize_params", "int8 -> float32", fields=fields)


SPECS = [OpSpec(name="DEQUANTIZE", resolver="AddDequantize", lower=_lower, files=("dequantize.c",),
                overlap=elementwise_distance,
                tflm=TflmKernel(params=None, op_data="(d i) 3i", prepare=fetch_operands))]
