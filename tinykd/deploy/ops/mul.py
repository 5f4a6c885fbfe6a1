"""MUL: element-wise product of two int8 tensors, with broadcasting up to rank 4."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.overlap import elementwise_distance
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, broadcast_fields, fetch_operands, io, quant, where


def _lower(model, op) -> Layer:
    (first, second), out = io(model, op)
    out_scale, out_zp = quant(out)
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, where(model, op))
    multiplier, shift = cquant.quantize_multiplier(first.scale[0] * second.scale[0] / out_scale)
    fields = dict(broadcast_fields(model, op, first, second, out), input1_offset=-first.zero_point[0],
                  input2_offset=-second.zero_point[0], output_offset=out_zp, multiplier=multiplier, shift=shift,
                  act_min=act_min, act_max=act_max)
    return Layer(op, "tk_mul", "tk_mul_params", activation, fields=fields)


SPECS = [OpSpec(name="MUL", resolver="AddMul", lower=_lower, files=("mul.c",), overlap=elementwise_distance,
                tflm=TflmKernel(params="e", op_data="9i", prepare=fetch_operands),
                macs=lambda model, op: model.tensors[op.outputs[0]].elements)]
