"""CONCATENATION: activations quantized like the output, joined along one axis."""

from __future__ import annotations

import math

from tinykd.core.errors import TinykdError
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch, io, quant, where


NEWER_BUILD_BYTES = 32
"""PyPI's TFLM latest (upstream 8f6596d, newer than the 2026 sources replayed) needs 32 bytes more per
CONCATENATION on the 64-bit host, whatever its inputs; counted as uncertain."""


def _lower(model, op) -> Layer:
    inputs, out = io(model, op)
    axis = op.options["axis"] % len(out.shape)
    if op.options["fusedActivationFunction"] != "NONE" or any(
            t.is_constant or quant(t) != quant(out) for t in inputs):
        raise TinykdError(f"{where(model, op)}: the C backend concatenates only activations quantized like "
                          "the output, without a fused activation")
    outer, rows = _rows(model, op)
    fields = dict(count=len(inputs), outer=outer)
    arrays = [("row_bytes", "int", rows)]
    return Layer(op, "tk_concatenation", "tk_concatenation_params", f"axis {axis}", fields=fields, arrays=arrays)


def _rows(model, op) -> tuple[int, list[int]]:
    """How many times the kernel takes a row of every input, and each input's row in bytes."""
    out = model.tensors[op.outputs[0]]
    axis = op.options["axis"] % len(out.shape)
    return math.prod(out.shape[:axis]), [math.prod(model.tensors[i].shape[axis:]) for i in op.inputs]


def _overlap(model, op, position: int, kernels: str) -> int | None:
    """tk_concatenation copies row o of every input in turn (memmove). Before it reads row o + 1 of input
    k, it has written the output up to byte (o + 1) * R + before_k - 1 (R the output's row, before_k the
    rows of the inputs ahead of k), so its output may start (outer - 1) * (R - r_k) + before_k bytes below
    input k: with one row, the inputs may lie where the output puts them and nothing moves."""
    outer, rows = _rows(model, op)
    return (outer - 1) * (sum(rows) - rows[position]) + sum(rows[:position])


def _prepare(model, op, build) -> list[tuple[str, int]]:
    """Every input once; the 2024 kernel also keeps the int8 inputs' scales and zero points."""
    steps = fetch(op.inputs[0], op.outputs[0]) + fetch(*op.inputs)
    if build.year < 2026:
        steps += fetch(op.outputs[0]) + [("persistent", 4 * len(op.inputs))] * 2 + fetch(*op.inputs)
    return steps


SPECS = [OpSpec(name="CONCATENATION", resolver="AddConcatenation", lower=_lower, files=("concatenation.c",),
                overlap=_overlap,
                tflm=TflmKernel(params="ie", op_data="b pp h ii", prepare=_prepare,
                                uncertain=lambda build: NEWER_BUILD_BYTES if build.year >= 2026 else 0))]
