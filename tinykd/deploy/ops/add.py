"""ADD: element-wise sum of two int8 tensors, with broadcasting up to rank 4."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, broadcast_fields, fetch_operands, io, quant, where


def _lower(model, op) -> Layer:
    (first, second), out = io(model, op)
    out_scale, out_zp = quant(out)
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, where(model, op))
    fields = dict(broadcast_fields(model, op, first, second, out), input1_offset=-first.zero_point[0],
                  input2_offset=-second.zero_point[0], output_offset=out_zp,
                  **cquant.add_parameters(first.scale[0], second.scale[0], out_scale), act_min=act_min,
                  act_max=act_max)
    return Layer(op, "tk_add", "tk_add_params", activation, fields=fields)


SPECS = [OpSpec(name="ADD", resolver="AddAdd", lower=_lower, files=("add.c",), overlap=elementwise_distance,
                tflm=TflmKernel(params="eb", op_data="b 14i", prepare=fetch_operands))]
