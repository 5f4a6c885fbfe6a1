"""FULLY_CONNECTED: a matrix product with per-tensor (or per-channel) requantization."""

from __future__ import annotations

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.ops.spec import Layer, OpSpec, TflmKernel, fetch, io, optional_input, quant, where

_OP_DATA = {2026: "8i i pp b", 2024: "8i i"}
"""TFLM's OpDataFullyConnected: the 2026 sources added per-channel arrays."""
NEWER_BUILD_BYTES = 16
"""PyPI's TFLM latest is built from upstream 8f6596d, newer than the 2026 sources replayed (90b983c2):
on the 64-bit host it needs 16 bytes more per FULLY_CONNECTED. Its sources were not available: the bytes
are counted as uncertain."""


def _lower(model, op) -> Layer:
    (inp, weights, *rest), out = io(model, op)
    bias = rest[0] if rest else None
    units, accum = weights.shape
    in_scale, in_zp = quant(inp)
    out_scale, out_zp = quant(out)
    if len(weights.scale) > 1:
        multipliers, shifts = cquant.channel_multipliers(in_scale, weights.scale, out_scale, units)
    else:
        multiplier, shift = cquant.fully_connected_multiplier(in_scale, weights.scale[0], out_scale)
        multipliers, shifts = [multiplier] * units, [shift] * units
    activation = op.options["fusedActivationFunction"]
    act_min, act_max = cquant.activation_range(activation, out_scale, out_zp, where(model, op))
    fields = dict(batches=out.elements // units, accum_depth=accum, out_depth=units, input_offset=-in_zp,
                  output_offset=out_zp, act_min=act_min, act_max=act_max)
    arrays = [("weights", "int8_t", weights.array().ravel().tolist()),
              ("bias", "int32_t", bias.array().ravel().tolist() if bias is not None else None),
              ("multiplier", "int32_t", multipliers), ("shift", "int32_t", shifts)]
    return Layer(op, "tk_fully_connected", "tk_fully_connected_params", f"{accum} -> {units}, {activation}",
                 fields=fields, arrays=arrays)


def _op_data(build) -> str:
    op_data = _OP_DATA[build.year]
    if build.cmsis:
        return f"({op_data}) ii p 3i" if build.year >= 2026 else f"({op_data}) pp i p 3i"
    return op_data


def _prepare(model, op, build) -> list[tuple[str, int]]:
    """Per-channel multipliers and shifts (2026 sources); CMSIS-NN's conv-1x1 path for 3-D and 4-D outputs."""
    inp, weights, out = op.inputs[0], op.inputs[1], op.outputs[0]
    steps = fetch(inp, weights, optional_input(op, 2), out)
    channels = len(model.tensors[weights].scale)
    per_channel = channels > 1 and build.year >= 2026
    steps += [("persistent", 4 * channels)] * 2 if per_channel else []
    if not build.cmsis:
        return steps
    depth = model.tensors[out].shape[-1]
    conv_1x1 = len(model.tensors[out].shape) > 2 and model.tensors[weights].shape[-1] % 4 == 0
    if conv_1x1 and build.year < 2026:
        steps += [("persistent", 4 * depth)] * 2
    elif conv_1x1 and not per_channel:
        steps.append(("scratch", 8 * depth))
    elif not conv_1x1 and build.cmsis == "mve":  # the kernel sums, kept when optimized for speed (2026)
        steps.append(("persistent" if build.for_speed or build.year < 2026 else "scratch", 4 * depth))
    return steps


def _macs(model, op) -> int:
    return model.tensors[op.outputs[0]].elements * model.tensors[op.inputs[1]].shape[1]


SPECS = [OpSpec(
    name="FULLY_CONNECTED", resolver="AddFullyConnected", lower=_lower, files=("fully_connected.c",),
    variants={"dsp": "fully_connected_dsp.c", "mve": "fully_connected_mve.c"},
    tflm=TflmKernel(params="ee bb e", op_data=_op_data, prepare=_prepare,
                    uncertain=lambda build: NEWER_BUILD_BYTES if build.year >= 2026 else 0),
    macs=_macs, weights=True)]
