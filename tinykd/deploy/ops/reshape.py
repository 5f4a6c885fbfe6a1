"""RESHAPE: the same bytes under another shape. The C backend's arena plan aliases its output to its
input, so it generates no code (a copy where they differ, which the plan never makes)."""

from __future__ import annotations

from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch


SPECS = [OpSpec(name="RESHAPE", resolver="AddReshape",
                lower=lambda model, op: Layer(op, "memcpy", None, "an alias of its input"), files=(),
                tflm=TflmKernel(params="9i", op_data=None,
                                prepare=lambda model, op, build: fetch(op.inputs[0], op.outputs[0])))]
