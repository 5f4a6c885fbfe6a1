"""PAD and PADV2: constant padding up to rank 4 (PADV2 names the value; PAD pads with the zero point)."""

from __future__ import annotations

from tinykd.core.errors import TinykdError
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, dims4, fetch_operands, io, where


def _lower(model, op) -> Layer:
    inputs, out = io(model, op)
    inp, paddings = inputs[0], inputs[1]
    if len(out.shape) > 4 or not paddings.is_constant:
        raise TinykdError(f"{where(model, op)}: the C backend pads up to rank 4 with constant paddings")
    value = inputs[2].array().ravel()[0] if op.op == "PADV2" and len(inputs) > 2 else out.zero_point[0]
    before = [int(p) for p in paddings.array().reshape(-1, 2)[:, 0]]
    fields = dict(in_dims=dims4(inp.shape), out_dims=dims4(out.shape), before=[0] * (4 - len(before)) + before,
                  value=int(value))
    return Layer(op, "tk_pad", "tk_pad_params", f"before {before}", fields=fields)


_TFLM = TflmKernel(params=None, op_data="(b 5i b 5i b) i", prepare=fetch_operands)
"""TFLM registers PADV2 with PAD's Init and Prepare."""

SPECS = [OpSpec(name=name, resolver=resolver, lower=_lower, files=("pad.c",), tflm=_TFLM)
         for name, resolver in (("PAD", "AddPad"), ("PADV2", "AddPadV2"))]
