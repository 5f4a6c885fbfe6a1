"""Host-side integer parameters of TFLM's int8 kernels, derived the way each kernel's Prepare does.

Python floats are C doubles; where TFLM computes in single precision, so does this module (numpy
float32), because the multipliers must match TFLM's to the last bit.
"""

from __future__ import annotations

import math

import numpy as np

from tinykd.core.errors import TinykdError

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(value: float) -> int:
    """C's round(): halves go away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """A positive real as a Q31 multiplier in [2^30, 2^31) and a power-of-two shift (TFLM's
    QuantizeMultiplier, double rounding)."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    fixed = round_half_away(fraction * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def activation_range(activation: str, scale: float, zero_point: int, where: str) -> tuple[int, int]:
    """The int8 clamp of a fused activation on an output with `scale` and `zero_point`."""

    def quantize(value: float) -> int:
        return zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise TinykdError(f"{where}: fused activation {activation} is not supported by the C backend")


def channel_multipliers(input_scale: float, filter_scales, output_scale: float, channels: int):
    """Per-channel (multiplier, shift) lists of CONV_2D, DEPTHWISE_CONV_2D and per-channel
    FULLY_CONNECTED: input_scale * filter_scale / output_scale in double."""
    pairs = [quantize_multiplier(input_scale * filter_scales[c if len(filter_scales) > 1 else 0] / output_scale)
             for c in range(channels)]
    return [m for m, _ in pairs], [s for _, s in pairs]


def fully_connected_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """Per-tensor FULLY_CONNECTED: the scale product is taken in float32, the division in double."""
    return quantize_multiplier(float(np.float32(input_scale) * np.float32(filter_scale)) / output_scale)


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """MEAN's multiplier and shift with the division by `count` folded in."""
    multiplier, shift = quantize_multiplier(input_scale / output_scale)
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << extra) // count, shift - extra


SOFTMAX_DIFF_INTEGER_BITS = 5


def softmax_scale_problem(beta: float, input_scale: float) -> str | None:
    """Why TFLM's int8 SOFTMAX rejects this input scale (it aborts in Prepare, on a device too), or None.
    It needs beta * input_scale * 2^26 > 1: a smaller scale means logits that are all but zero, as in an
    untrained model."""
    if beta * input_scale * (1 << (31 - SOFTMAX_DIFF_INTEGER_BITS)) > 1.0:
        return None
    return (f"its input scale {input_scale:.3g} is below what TFLM's int8 SOFTMAX accepts (beta x scale must "
            f"exceed 2^-26, about 1.5e-8): the logits are all but zero (an untrained model?), and TFLM aborts "
            "on such a model, on the device too")


def softmax_parameters(beta: float, input_scale: float) -> tuple[int, int, int]:
    """SOFTMAX's input multiplier, left shift and diff_min (5 integer bits for the scaled difference);
    the scale must pass softmax_scale_problem."""
    integer_bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(beta * input_scale * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / 2.0 ** shift)
    return multiplier, shift, -radius


def logistic_parameters(input_scale: float) -> tuple[int, int, int]:
    """LOGISTIC's input multiplier, left shift and input range radius (input in Q4.27)."""
    integer_bits = 4
    fraction, shift = math.frexp(input_scale * (1 << (31 - integer_bits)))
    multiplier = round_half_away(fraction * (1 << 31))
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / 2.0 ** shift)
    return multiplier, shift, radius


def _int16_multiplier(multiplier: int) -> int:
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


def hard_swish_parameters(input_scale: float, output_scale: float) -> dict[str, int]:
    """HARD_SWISH's 16-bit output and 'reluish' multipliers and exponents (float32 ratios)."""
    hires = np.float32(1.0 / 128.0) * np.float32(input_scale)
    output_multiplier, output_exponent = quantize_multiplier(float(hires / np.float32(output_scale)))
    reluish_multiplier, reluish_exponent = quantize_multiplier(float(hires / (np.float32(3.0) / np.float32(32768.0))))
    return {"output_multiplier": _int16_multiplier(output_multiplier), "output_exponent": output_exponent,
            "reluish_multiplier": _int16_multiplier(reluish_multiplier), "reluish_exponent": reluish_exponent}


def add_parameters(scale1: float, scale2: float, output_scale: float) -> dict[str, int]:
    """ADD's rescaling of both inputs to twice the larger scale, with 20 bits of headroom."""
    left_shift = 20
    twice_max = 2 * max(scale1, scale2)
    values = {"left_shift": left_shift}
    for name, real in (("input1", scale1 / twice_max), ("input2", scale2 / twice_max),
                       ("output", twice_max / ((1 << left_shift) * output_scale))):
        values[f"{name}_multiplier"], values[f"{name}_shift"] = quantize_multiplier(real)
    return values


def same_padding(in_size: int, out_size: int, kernel: int, stride: int, dilation: int) -> int:
    """The leading padding TFLM uses: half the total, rounded down (0 for VALID)."""
    effective = (kernel - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2
