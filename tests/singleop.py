"""INT8 .tflite models of many independent single-op branches, with every weight, scale and zero point
chosen by a seeded generator.

The TFLite converter cannot be told which weights, scales and zero points to use, so these models are
written directly with the flatbuffer schema's object API, as the converter writes them: int8 activations
with one scale and zero point; OHWI convolution filters, 1HWO depthwise filters and [units, depth]
fully-connected weights, symmetric int8 quantized per output channel (quantized dimension 0, or 3 for
depthwise) or, as older converters did, per tensor; int32 biases with scale input_scale * filter_scale
and zero point 0; the converter's options and op versions. Each branch is its own graph input(s) -> one
op -> its own graph output: one test case, drawn by its kernel's generator (GENERATORS) from a random
generator seeded with (seed, index), so a case is the same in any model that holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2,
               "AVERAGE_POOL_2D": 2, "MEAN": 2, "SOFTMAX": 2, "ADD": 2, "MUL": 2, "CONCATENATION": 2,
               "PAD": 2, "PADV2": 2, "QUANTIZE": 1, "LOGISTIC": 2, "HARD_SWISH": 1, "DEQUANTIZE": 2}
"""What the converter writes for int8 (per-channel) models."""
WIDE_CHANNELS = (129, 131, 157, 250)
"""Output channel counts of 128 and more that are multiples of neither 4, 16 nor 32."""
UNIFORM_INT8_VARIANCE = (256 ** 2 - 1) / 12
"""Of the test inputs, uniform over the int8 range."""


@dataclass(frozen=True)
class Limits:
    """Most a case may cost: multiply-accumulates, activation bytes (inputs + output), weight bytes."""

    name: str
    macs: int
    activation_bytes: int
    weight_bytes: int


SMALL = Limits("small", macs=30_000, activation_bytes=640, weight_bytes=6_000)
"""Cases that fit many to a model on the smallest board in QEMU (128 KB of RAM)."""
LARGE = Limits("large", macs=250_000, activation_bytes=40_000, weight_bytes=16_000)
"""Cases the size of real models' layers (images up to 96x96), for the host."""


@dataclass
class Case:
    """One branch: the kernel it tests, how to draw it again (seed, index, limits) and what was chosen."""

    kernel: str
    seed: int
    index: int
    limits: Limits
    params: dict
    inputs: list[int] = field(default_factory=list)
    """Its graph input tensors."""
    output: int = -1
    """Its graph output tensor."""

    def __str__(self) -> str:
        chosen = ", ".join(f"{k} {v}" for k, v in self.params.items())
        return f"{self.kernel} case {self.index} of seed {self.seed}, {self.limits.name} ({chosen})"


class BranchModel:
    """A TFLite model being written: one subgraph of independent branches."""

    def __init__(self):
        self.buffers = [schema.BufferT()]  # buffer 0: the empty buffer of every activation
        self.tensors: list[schema.TensorT] = []
        self.operators: list[schema.OperatorT] = []
        self.opcodes: dict[str, int] = {}
        self.opcode_list: list[schema.OperatorCodeT] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.cases: list[Case] = []
        self.cases_inputs: list[int] = []

    def _tensor(self, shape, dtype, name, scale=None, zero_point=None, quantized_dimension=0, data=None) -> int:
        tensor = schema.TensorT()
        tensor.shape = [int(d) for d in shape]
        tensor.type = dtype
        tensor.name = f"case{len(self.cases)}/{name}"
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            tensor.buffer = len(self.buffers)
            self.buffers.append(buffer)
        if scale is not None:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale = [float(s) for s in np.atleast_1d(scale)]
            tensor.quantization.zeroPoint = [int(z) for z in np.atleast_1d(zero_point)]
            tensor.quantization.quantizedDimension = quantized_dimension
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def input(self, shape, scale: float, zero_point: int) -> int:
        """A new int8 graph input."""
        index = self._tensor(shape, schema.TensorType.INT8, f"input{len(self.cases_inputs)}", scale, zero_point)
        self.inputs.append(index)
        self.cases_inputs.append(index)
        return index

    def output(self, shape, scale: float | None = None, zero_point: int = 0) -> int:
        """The branch's graph output: int8, or float32 without a scale."""
        dtype = schema.TensorType.INT8 if scale is not None else schema.TensorType.FLOAT32
        index = self._tensor(shape, dtype, "output", scale, zero_point)
        self.outputs.append(index)
        return index

    def weights(self, array: np.ndarray, scales, quantized_dimension: int) -> int:
        """Symmetric per-channel (or per-tensor: one scale) int8 weights."""
        scales = np.asarray(scales, np.float32)
        return self._tensor(array.shape, schema.TensorType.INT8, "weights", scales, np.zeros(scales.size, np.int64),
                            quantized_dimension, array.astype(np.int8))

    def bias(self, array: np.ndarray, scales) -> int:
        scales = np.asarray(scales, np.float32)
        return self._tensor(array.shape, schema.TensorType.INT32, "bias", scales, np.zeros(scales.size, np.int64),
                            0, array.astype(np.int32))

    def int32_constant(self, array, name: str) -> int:
        array = np.asarray(array, np.int32)
        return self._tensor(array.shape, schema.TensorType.INT32, name, data=array)

    def int8_constant(self, array, name: str, scale: float, zero_point: int) -> int:
        array = np.asarray(array, np.int8)
        return self._tensor(array.shape, schema.TensorType.INT8, name, scale, zero_point, data=array)

    def operator(self, name: str, inputs: list[int], output: int, options=None) -> None:
        if name not in self.opcodes:
            code = schema.OperatorCodeT()
            code.builtinCode = getattr(schema.BuiltinOperator, name)
            code.deprecatedBuiltinCode = min(code.builtinCode, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            code.version = OP_VERSIONS[name]
            self.opcodes[name] = len(self.opcode_list)
            self.opcode_list.append(code)
        op = schema.OperatorT()
        op.opcodeIndex = self.opcodes[name]
        op.inputs = list(inputs)
        op.outputs = [output]
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__.removesuffix("T"))
            op.builtinOptions = options
        self.operators.append(op)

    def add_case(self, kernel: str, seed: int, index: int, limits: Limits) -> Case:
        """Case `index` of `kernel`'s generator seeded with `seed`: the same branch in any model."""
        self.cases_inputs = []
        outputs_before = len(self.outputs)
        params = (GENERATORS | CHAINS)[kernel](self, np.random.default_rng([seed, index]), limits)
        assert len(self.outputs) == outputs_before + 1, kernel
        case = Case(kernel, seed, index, limits, params, self.cases_inputs, self.outputs[-1])
        self.cases.append(case)
        return case

    def to_bytes(self) -> bytes:
        graph = schema.SubGraphT()
        graph.tensors, graph.operators = self.tensors, self.operators
        graph.inputs, graph.outputs = list(self.inputs), list(self.outputs)
        graph.name = "main"
        model = schema.ModelT()
        model.version = 3
        model.description = "tinykd single-op test cases"
        model.operatorCodes = self.opcode_list
        model.subgraphs = [graph]
        model.buffers = self.buffers
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def build_model(specs: list[tuple[str, int, range]], limits: Limits) -> tuple[bytes, list[Case]]:
    """A model of the cases (kernel, seed, indices) of every spec, in that order: its bytes and cases."""
    net = BranchModel()
    for kernel, seed, indices in specs:
        for index in indices:
            net.add_case(kernel, seed, index, limits)
    return net.to_bytes(), net.cases


# ---- drawing parameters ----------------------------------------------------------------------------

def _f32(value) -> float:
    return float(np.float32(value))


def _scale(rng, low: float, high: float) -> float:
    """A float32 scale, log-uniform between 2^low and 2^high."""
    return _f32(2.0 ** rng.uniform(low, high))


def _zero_point(rng) -> int:
    """The extremes often, anything in between otherwise."""
    return int(rng.choice([-128, 127, int(rng.integers(-128, 128))], p=[0.25, 0.15, 0.6]))


def _activation(rng) -> str:
    return str(rng.choice(ACTIVATIONS, p=[0.4, 0.2, 0.2, 0.2]))


def _activation_code(name: str) -> int:
    return getattr(schema.ActivationFunctionType, name)


@dataclass(frozen=True)
class Window:
    """A filter or pooling window sliding over an NHWC image."""

    k: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    same: bool
    size: tuple[int, int]
    batches: int = 1

    @property
    def out_size(self) -> tuple[int, int]:
        if self.same:
            return tuple(-(-self.size[a] // self.stride[a]) for a in range(2))
        return tuple((self.size[a] - (self.k[a] - 1) * self.dilation[a] - 1) // self.stride[a] + 1 for a in range(2))

    def pixels(self) -> tuple[int, int]:
        """Input and output pixels over all batches."""
        return self.batches * math.prod(self.size), self.batches * math.prod(self.out_size)

    def set_options(self, options) -> None:
        """Padding, strides and (where the options have them) dilations."""
        options.padding = schema.Padding.SAME if self.same else schema.Padding.VALID
        options.strideH, options.strideW = self.stride
        if hasattr(options, "dilationHFactor"):
            options.dilationHFactor, options.dilationWFactor = self.dilation

    def describe(self) -> dict:
        return dict(input=(self.batches, *self.size), filter=self.k, stride=self.stride, dilation=self.dilation,
                    padding="SAME" if self.same else "VALID")


def _slide(rng, limits: Limits, k: tuple[int, int], sizes: tuple[int, int], cost, dilated: bool = True,
           batches: int = 1) -> Window | None:
    """A window of a k filter: stride 1, or 1 to 3 each way; dilation likewise (if `dilated`); SAME or
    VALID; an image drawn up to `sizes`, shrunk until cost(window), (MACs, activation bytes, weight
    bytes), is within the limits. None if even the smallest image is not."""
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if dilated and rng.random() < 0.25 else (1, 1)
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if rng.random() < 0.5 else (1, 1)
    same = bool(rng.random() < 0.5)
    low = (1, 1) if same else tuple((k[a] - 1) * dilation[a] + 1 for a in range(2))
    size = [int(rng.integers(low[a], max(low[a], sizes[a]) + 1)) for a in range(2)]
    while True:
        window = Window(k, stride, dilation, same, (size[0], size[1]), batches)
        if _fits(limits, *cost(window)):
            return window
        if tuple(size) == low:
            return None
        a = int(size[1] - low[1] > size[0] - low[0])
        size[a] = max(low[a], size[a] * 3 // 4)


def _fits(limits: Limits, macs: int, activation_bytes: int, weight_bytes: int) -> bool:
    return macs <= limits.macs and activation_bytes <= limits.activation_bytes and weight_bytes <= limits.weight_bytes


def _retry(draw):
    """Calls draw() until it returns something (a draw that does not fit the limits returns None)."""
    for _ in range(1000):
        result = draw()
        if result is not None:
            return result
    raise AssertionError("no case fits the limits")


# ---- weights and their quantization ----------------------------------------------------------------

def _channel_weights(rng, channels: int, taps: int) -> np.ndarray:
    """[channels, taps] int8, quantized per channel as the converter does (largest magnitude 127), or
    sometimes small integers; no channel all zero."""
    if rng.random() < 0.2:
        limit = int(rng.integers(1, 9))
        weights = rng.integers(-limit, limit + 1, (channels, taps))
    else:
        real = rng.standard_normal((channels, taps)) * (rng.random((channels, taps)) < rng.uniform(0.3, 1.0))
        peak = np.abs(real).max(axis=1, keepdims=True)
        weights = np.round(real / np.where(peak > 0, peak, 1) * 127)
    weights[np.abs(weights).sum(axis=1) == 0, 0] = 1
    return weights.astype(np.int64)


def _dead_channels(rng, channels: int) -> np.ndarray:
    """Which channels have an all-zero filter: none, a few, or exactly one in some of the DSP kernels'
    channel blocks."""
    dead = np.zeros(channels, bool)
    kind = rng.choice(["none", "few", "one per block"], p=[0.45, 0.3, 0.25])
    if kind == "few":
        dead[rng.choice(channels, int(rng.integers(1, max(1, channels // 4) + 1)), replace=False)] = True
    elif kind == "one per block":
        for start in range(0, channels, DSP_CHANNEL_BLOCK):
            if rng.random() < 0.7:
                dead[start + int(rng.integers(0, min(DSP_CHANNEL_BLOCK, channels - start)))] = True
    if dead.all() and channels > 1:
        dead[int(rng.integers(channels))] = False
    return dead


def _effective_scales(rng, spans: np.ndarray) -> tuple[np.ndarray, str]:
    """input_scale * filter_scale / output_scale per channel: calibrated so the output spans about the
    int8 range (`spans` is each channel's accumulator range), spread over some 45 octaves (left shifts
    down to right shifts beyond 31), or calibrated with some channels anywhere in that spread."""
    calibrated = 100.0 / spans * 2.0 ** rng.normal(0, 0.8, spans.size)
    spread = 2.0 ** rng.uniform(-40, 4, spans.size)
    mode = str(rng.choice(["calibrated", "spread", "mixed"], p=[0.45, 0.2, 0.35]))
    if mode == "calibrated":
        return calibrated, mode
    if mode == "spread":
        return spread, mode
    return np.where(rng.random(spans.size) < 0.2, spread, calibrated), mode


def _filter_quantization(rng, weights: np.ndarray, input_zero_point: int, input_scale: float,
                         output_scale: float, bias_mode: str, activation: str, per_channel: bool = True):
    """Dead channels, filter scales (one per channel, or one), the int32 bias (see _bias_mode) and the
    output zero point for [channels, taps] weights, changed in place for the dead channels. Returns
    (scales, bias or None for none, output zero point, what was chosen)."""
    channels = weights.shape[0]
    dead = _dead_channels(rng, channels)
    weights[dead] = 0
    mean = -0.5 - input_zero_point
    sums, squares = weights.sum(axis=1), (weights.astype(np.float64) ** 2).sum(axis=1)
    std = np.sqrt(UNIFORM_INT8_VARIANCE * squares)
    bias = np.round(rng.normal(0, 1, channels) * std * rng.choice([0.3, 1.0, 3.0])).astype(np.int64)
    bias = np.where(rng.random(channels) < 0.1, -np.round(mean * sums), bias)  # centres some channels' outputs
    bias[dead] = rng.choice([0, int(rng.integers(-5000, 5001))], int(dead.sum()))
    if bias_mode != "values":
        bias[:] = 0
    spans = np.abs(mean * sums + bias) + 3 * std + 1
    live = spans[~dead] if (~dead).any() else spans
    effective, mode = _effective_scales(rng, spans if per_channel else np.median(live, keepdims=True))
    scales = np.array([_f32(e * output_scale / input_scale) for e in effective], np.float64)
    params = dict(quantization="per channel" if per_channel else "per tensor", scales=mode, dead=int(dead.sum()))
    if per_channel and dead.any():
        params["dead scales"] = str(rng.choice(["zero", "tiny", "mixed"]))
        for c in np.flatnonzero(dead):
            if params["dead scales"] == "zero" or (params["dead scales"] == "mixed" and rng.random() < 0.5):
                scales[c] = 0.0
            else:  # so tiny that the multiplier is 0 or the shift far to the right
                scales[c] = _f32(2.0 ** rng.uniform(-64, -26) * output_scale / input_scale)
    out_zp = _output_zero_point(rng, effective * (mean * sums + bias), activation)
    return scales, None if bias_mode == "absent" else bias, out_zp, params


def _output_zero_point(rng, means, activation: str = "NONE", calibrated: float = 0.5) -> int:
    """With probability `calibrated` the zero point calibration would choose: -128 after a ReLU, else
    the one that centres the outputs (`means`: their means in output steps, before the zero point);
    any other otherwise."""
    if rng.random() >= calibrated:
        return _zero_point(rng)
    if activation in ("RELU", "RELU6"):
        return -128
    return int(np.clip(np.round(-np.median(means)), -128, 127))


def _bias_mode(rng, absent_allowed: bool = True) -> str:
    """A bias of any values, all zeros (the converter's choice for a layer without bias), or no bias
    input at all (TFLM segfaults on a DEPTHWISE_CONV_2D without one)."""
    modes, p = ("values", "zeros", "absent"), [0.7, 0.15, 0.15]
    return str(rng.choice(modes, p=p) if absent_allowed else rng.choice(modes[:2], p=[0.8, 0.2]))


def _bias_tensor(net: BranchModel, bias, input_scale: float, scales) -> int:
    """The bias input: -1 for no bias."""
    if bias is None:
        return -1
    return net.bias(bias, [_f32(np.float32(input_scale) * np.float32(s)) for s in scales])


# ---- one generator per kernel: draws a case, writes its branch, returns its parameters --------------

def _wide_channels(rng) -> int:
    return int(rng.choice(WIDE_CHANNELS + (int(rng.integers(128, 261)),)))


def conv_2d(net: BranchModel, rng, limits: Limits) -> dict:
    """CONV_2D: small layers, 128 and more output channels, large images with few channels, more than 256
    taps, or input channels a multiple of 4 (each a code path of the DSP kernel)."""

    def draw():
        shape = str(rng.choice(["small", "wide", "image", "deep", "quads"], p=[0.35, 0.15, 0.15, 0.15, 0.2]))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6))) if rng.random() < 0.8 else (1, 1)
        in_c, out_c, sizes = int(rng.integers(1, 13)), int(rng.integers(1, 41)), (12, 12)
        if shape == "wide":
            k, in_c, out_c, sizes = [(1, 1), (3, 3), (1, 3)][int(rng.integers(3))], int(rng.integers(1, 9)), \
                _wide_channels(rng), (4, 4)
        elif shape == "image":
            in_c, out_c, sizes = int(rng.integers(1, 4)), int(rng.integers(1, 5)), (96, 96)
        elif shape == "deep":
            k, low, high = [((1, 1), 257, 700), ((2, 2), 65, 100), ((3, 3), 29, 80), ((5, 5), 11, 17)][
                int(rng.integers(4))]
            in_c, sizes = int(rng.integers(low, high + 1)), (6, 6)
        elif shape == "quads":
            in_c, out_c = 4 * int(rng.integers(1, 8)), int(rng.integers(1, 71))
            while k[0] * k[1] * in_c > 256:
                k = (max(1, k[0] - 1), k[1])
        taps = k[0] * k[1] * in_c
        batches = 2 if rng.random() < 0.05 else 1
        window = _slide(rng, limits, k, sizes, lambda win: (
            win.pixels()[1] * out_c * taps, win.pixels()[0] * in_c + win.pixels()[1] * out_c, out_c * (taps + 12)),
            batches=batches)
        return window and (shape, window, in_c, out_c)

    shape, window, in_c, out_c = _retry(draw)
    in_scale, in_zp, out_scale = _scale(rng, -10, 0), _zero_point(rng), _scale(rng, -9, 0)
    activation, bias_mode = _activation(rng), _bias_mode(rng)
    weights = _channel_weights(rng, out_c, window.k[0] * window.k[1] * in_c)
    per_channel = bool(rng.random() < 0.85)  # older converters quantize filters per tensor
    scales, bias, out_zp, params = _filter_quantization(rng, weights, in_zp, in_scale, out_scale, bias_mode,
                                                        activation, per_channel)
    inp = net.input((window.batches, *window.size, in_c), in_scale, in_zp)
    filters = net.weights(weights.reshape(out_c, *window.k, in_c), scales, 0)
    out = net.output((window.batches, *window.out_size, out_c), out_scale, out_zp)
    options = schema.Conv2DOptionsT()
    window.set_options(options)
    options.fusedActivationFunction = _activation_code(activation)
    net.operator("CONV_2D", [inp, filters, _bias_tensor(net, bias, in_scale, scales)], out, options)
    return dict(shape=shape, **window.describe(), channels=(in_c, out_c), activation=activation, bias=bias_mode,
                zero_points=(in_zp, out_zp), **params)


def depthwise_conv_2d(net: BranchModel, rng, limits: Limits) -> dict:
    """DEPTHWISE_CONV_2D: small layers, 128 and more channels with depth multiplier 1 (four at a time on
    DSP cores, plus a rest), large images with few channels, depth multipliers above 1, or MobileNet's
    3x3 filters over a multiple of 4 channels (on DSP cores from weights widened once per call)."""

    def draw():
        shape = str(rng.choice(["small", "wide", "image", "multiplier", "3x3"], p=[0.3, 0.2, 0.15, 0.15, 0.2]))
        k = (int(rng.integers(1, 8)), int(rng.integers(1, 8))) if rng.random() < 0.85 else (1, 1)
        channels, multiplier, sizes = int(rng.integers(1, 17)), 1, (12, 12)
        if shape == "3x3":
            k, channels = (3, 3), 4 * int(rng.integers(1, 17))
            sizes = (int(rng.integers(3, 13)), int(rng.integers(3, 13)))
        elif shape == "small" and rng.random() < 0.4:
            multiplier = int(rng.integers(2, 5))
        elif shape == "wide":
            channels, sizes = _wide_channels(rng), (5, 5)
        elif shape == "image":
            channels, multiplier, sizes = int(rng.integers(1, 5)), int(rng.integers(1, 3)), (96, 96)
        elif shape == "multiplier":
            channels, multiplier = int(rng.integers(1, 41)), int(rng.integers(2, 5))
        out_c, taps = channels * multiplier, k[0] * k[1]
        batches = 2 if rng.random() < 0.05 else 1
        window = _slide(rng, limits, k, sizes, lambda win: (
            win.pixels()[1] * out_c * taps, win.pixels()[0] * channels + win.pixels()[1] * out_c,
            out_c * (taps + 12)), batches=batches)
        return window and (shape, window, channels, multiplier)

    shape, window, channels, multiplier = _retry(draw)
    out_c = channels * multiplier
    in_scale, in_zp, out_scale = _scale(rng, -10, 0), _zero_point(rng), _scale(rng, -9, 0)
    activation, bias_mode = _activation(rng), _bias_mode(rng, absent_allowed=False)
    weights = _channel_weights(rng, out_c, window.k[0] * window.k[1])
    per_channel = bool(rng.random() < 0.85)
    scales, bias, out_zp, params = _filter_quantization(rng, weights, in_zp, in_scale, out_scale, bias_mode,
                                                        activation, per_channel)
    inp = net.input((window.batches, *window.size, channels), in_scale, in_zp)
    filters = net.weights(weights.T.reshape(1, *window.k, out_c), scales, 3)
    out = net.output((window.batches, *window.out_size, out_c), out_scale, out_zp)
    options = schema.DepthwiseConv2DOptionsT()
    window.set_options(options)
    options.depthMultiplier = multiplier
    options.fusedActivationFunction = _activation_code(activation)
    net.operator("DEPTHWISE_CONV_2D", [inp, filters, _bias_tensor(net, bias, in_scale, scales)], out, options)
    return dict(shape=shape, **window.describe(), channels=channels, multiplier=multiplier, activation=activation,
                bias=bias_mode, zero_points=(in_zp, out_zp), **params)


def fully_connected(net: BranchModel, rng, limits: Limits) -> dict:
    """FULLY_CONNECTED: small, 128 and more units, or depths above 256; per-channel or per-tensor weights;
    rows of a batch, keep_num_dims, or a rank-4 input it flattens."""

    def draw():
        shape = str(rng.choice(["small", "wide", "deep"], p=[0.5, 0.25, 0.25]))
        depth, units = int(rng.integers(1, 65)), int(rng.integers(1, 41))
        if shape == "wide":
            depth, units = int(rng.integers(1, 33)), int(rng.choice(WIDE_CHANNELS + (int(rng.integers(128, 261)),)))
        elif shape == "deep":
            depth, units = int(rng.integers(257, 601)), int(rng.integers(1, 31))
        batches = 1 if rng.random() < 0.8 else int(rng.integers(2, 5))
        fits = (batches * depth * units <= limits.macs and batches * (depth + units) <= limits.activation_bytes
                and units * (depth + 12) <= limits.weight_bytes)
        return (shape, depth, units, batches) if fits else None

    shape, depth, units, batches = _retry(draw)
    layout = str(rng.choice(["rows", "keep_num_dims", "flattened"], p=[0.8, 0.1, 0.1]))
    per_channel = bool(rng.random() < 0.6)
    in_scale, in_zp = _scale(rng, -10, 0), _zero_point(rng)
    out_scale = _scale(rng, -9, 0)
    activation, bias_mode = _activation(rng), _bias_mode(rng)
    weights = _channel_weights(rng, units, depth)
    scales, bias, out_zp, params = _filter_quantization(rng, weights, in_zp, in_scale, out_scale, bias_mode,
                                                        activation, per_channel)
    # [batches, depth] rows; [1, batches, depth] keeping that rank; or [batches, 1, 1, depth] flattened
    in_shape = {"rows": (batches, depth), "keep_num_dims": (1, batches, depth),
                "flattened": (batches, 1, 1, depth)}[layout]
    inp = net.input(in_shape, in_scale, in_zp)
    filters = net.weights(weights, scales, 0)
    out = net.output((1, batches, units) if layout == "keep_num_dims" else (batches, units), out_scale, out_zp)
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = _activation_code(activation)
    options.keepNumDims = layout == "keep_num_dims"
    net.operator("FULLY_CONNECTED", [inp, filters, _bias_tensor(net, bias, in_scale, scales)], out, options)
    return dict(shape=shape, input=in_shape, units=units, activation=activation, bias=bias_mode,
                zero_points=(in_zp, out_zp), **params)


def _pool_2d(net: BranchModel, rng, limits: Limits, op: str) -> dict:
    """Small windows, large images with few channels, or a window of the whole image (a global pool)."""

    def draw():
        shape = str(rng.choice(["small", "image", "global"], p=[0.6, 0.2, 0.2]))
        k, channels, sizes = (int(rng.integers(1, 5)), int(rng.integers(1, 5))), int(rng.integers(1, 41)), (16, 16)
        if shape == "image":
            k, channels, sizes = (int(rng.integers(2, 6)), int(rng.integers(2, 6))), int(rng.integers(1, 5)), (96, 96)
        elif shape == "global":
            k, channels = (int(rng.integers(2, 13)),) * 2, int(rng.integers(1, 161))

        def cost(win):
            pixels_in, pixels_out = win.pixels()
            return pixels_out * channels * k[0] * k[1], (pixels_in + pixels_out) * channels, 0

        if shape == "global":
            window = Window(k, (1, 1), (1, 1), False, k)
            window = window if _fits(limits, *cost(window)) else None
        else:
            window = _slide(rng, limits, k, sizes, cost, dilated=False)
        return window and (shape, window, channels)

    shape, window, channels = _retry(draw)
    scale, activation = _scale(rng, -9, 0), _activation(rng)
    zp = _output_zero_point(rng, [0], activation, calibrated=0.3)
    inp = net.input((1, *window.size, channels), scale, zp)
    out = net.output((1, *window.out_size, channels), scale, zp)
    options = schema.Pool2DOptionsT()
    window.set_options(options)
    options.filterHeight, options.filterWidth = window.k
    options.fusedActivationFunction = _activation_code(activation)
    net.operator(op, [inp], out, options)
    params = window.describe()
    del params["dilation"]
    return dict(shape=shape, **params, channels=channels, activation=activation, zero_point=zp)


def max_pool_2d(net: BranchModel, rng, limits: Limits) -> dict:
    """MAX_POOL_2D; input and output share their quantization, as the converter writes it."""
    return _pool_2d(net, rng, limits, "MAX_POOL_2D")


def average_pool_2d(net: BranchModel, rng, limits: Limits) -> dict:
    """AVERAGE_POOL_2D; input and output share their quantization, as the converter writes it."""
    return _pool_2d(net, rng, limits, "AVERAGE_POOL_2D")


def _dims(rng, rank: int, elements: int) -> tuple[int, ...]:
    """A shape of `rank` with at most `elements` elements: NHWC-like at rank 4 (batch 1, a small image,
    a large one with few channels, or a pixel with many channels), small dimensions otherwise."""
    if rank == 4:
        kind = rng.choice(["small", "image", "channels"], p=[0.6, 0.2, 0.2])
        dims = {"small": lambda: [1, rng.integers(1, 13), rng.integers(1, 13), rng.integers(1, 41)],
                "image": lambda: [1, rng.integers(24, 97), rng.integers(24, 97), rng.integers(1, 5)],
                "channels": lambda: [1, rng.integers(1, 4), rng.integers(1, 4), rng.integers(100, 301)]}[kind]()
    else:
        dims = [rng.integers(1, 9) for _ in range(rank - 1)] + [rng.integers(1, 65)]
    dims = [int(d) for d in dims]
    while math.prod(dims) > elements:
        largest = int(np.argmax(dims))
        dims[largest] = max(1, dims[largest] * 2 // 3)
    return tuple(dims)


def _rank(rng) -> int:
    return int(rng.choice([1, 2, 3, 4], p=[0.1, 0.2, 0.15, 0.55]))


def mean(net: BranchModel, rng, limits: Limits) -> dict:
    """MEAN over axes 1 and 2 of NHWC inputs (a global average pool) or any other axes, some written
    negative, with or without keep_dims."""
    rank = int(rng.choice([2, 3, 4], p=[0.15, 0.15, 0.7]))
    batches = 2 if rank == 4 and rng.random() < 0.2 else 1
    dims = list(_dims(rng, rank, limits.activation_bytes // (2 * batches)))
    dims[0] *= batches
    if rank == 4 and rng.random() < 0.6:
        axes = [1, 2]  # a global average pool
    else:
        axes = sorted(int(a) for a in rng.choice(rank, int(rng.integers(1, rank + 1)), replace=False))
    keep_dims = bool(rng.random() < 0.5)
    written = [int(a) - rank if rng.random() < 0.3 else int(a) for a in rng.permutation(axes)]
    out_dims = [1 if a in axes else d for a, d in enumerate(dims)] if keep_dims else \
        [d for a, d in enumerate(dims) if a not in axes]
    in_scale, in_zp = _scale(rng, -9, 0), _zero_point(rng)
    if rng.random() < 0.75:  # calibrated to the averages' range (in input steps), which holds 0
        spread = 3 * math.sqrt(UNIFORM_INT8_VARIANCE / math.prod(dims[a] for a in axes))
        low, high = min(0.0, -0.5 - in_zp - spread), max(0.0, -0.5 - in_zp + spread)
        ratio = (high - low) / 255 * 2.0 ** rng.uniform(-1, 1)
        out_zp = int(np.clip(np.round(-128 - low / ratio), -128, 127))
    else:
        ratio, out_zp = 2.0 ** rng.uniform(-4, 2), _zero_point(rng)
    out_scale = _f32(in_scale * ratio)
    inp = net.input(dims, in_scale, in_zp)
    axis = net.int32_constant(written, "axis")
    out = net.output(out_dims, out_scale, out_zp)
    options = schema.ReducerOptionsT()
    options.keepDims = keep_dims
    net.operator("MEAN", [inp, axis], out, options)
    return dict(input=tuple(dims), axes=written, keep_dims=keep_dims, zero_points=(in_zp, out_zp))


def softmax(net: BranchModel, rng, limits: Limits) -> dict:
    """SOFTMAX over the last axis; the output quantization TFLM requires (1/256, -128)."""
    rank = int(rng.choice([2, 4], p=[0.7, 0.3]))
    depth = int(rng.integers(1, 41)) if rng.random() < 0.7 else int(rng.integers(41, 301))
    rows = max(1, min(int(rng.integers(1, 5)) if rank == 2 else int(rng.integers(1, 26)),
                      limits.activation_bytes // (2 * depth)))
    depth = min(depth, limits.activation_bytes // 2)
    dims = (rows, depth) if rank == 2 else (1, 1, rows, depth)
    in_scale, in_zp = _scale(rng, -8, 1), _zero_point(rng)
    beta = 1.0 if rng.random() < 0.8 else _f32(rng.uniform(0.2, 4.0))
    inp = net.input(dims, in_scale, in_zp)
    out = net.output(dims, 1 / 256, -128)
    options = schema.SoftmaxOptionsT()
    options.beta = beta
    net.operator("SOFTMAX", [inp], out, options)
    return dict(input=dims, beta=beta, input_scale=in_scale, zero_point=in_zp)


def _broadcast(rng, dims: tuple[int, ...]) -> tuple[int, ...]:
    """dims itself, or dims with some axes 1, or its trailing axes only."""
    kind = rng.choice(["same", "ones", "trailing"], p=[0.6, 0.25, 0.15])
    if kind == "ones":
        return tuple(1 if rng.random() < 0.5 else d for d in dims)
    if kind == "trailing":
        return dims[int(rng.integers(0, len(dims))):]
    return dims


def _binary(net: BranchModel, rng, limits: Limits, op: str) -> dict:
    """ADD or MUL of inputs of any scales, broadcast or not, ranks 1 to 4."""
    dims = _dims(rng, _rank(rng), limits.activation_bytes // 3)
    shapes = [_broadcast(rng, dims), _broadcast(rng, dims)]
    if rng.random() < 0.5:
        shapes.reverse()
    out_dims = tuple(int(d) for d in np.broadcast_shapes(*shapes))
    scales = [_scale(rng, -9, 0)]
    scales.append(_f32(scales[0] * 2.0 ** rng.uniform(-6, 6)))
    zero_points = [_zero_point(rng), _zero_point(rng)]
    ranges = [np.array([-128 - z, 127 - z]) * s for z, s in zip(zero_points, scales)]
    if op == "ADD":
        low, high = ranges[0] + ranges[1]
        options = schema.AddOptionsT()
    else:
        products = np.outer(*ranges)
        low, high = products.min(), products.max()
        options = schema.MulOptionsT()
    if rng.random() < 0.75:  # calibrated to the result's range
        out_scale = _f32((high - low) / 255 * 2.0 ** rng.uniform(-1.5, 1))
        out_zp = int(np.clip(np.round(-128 - low / out_scale), -128, 127)) if rng.random() < 0.8 else _zero_point(rng)
    elif op == "ADD":  # TFLM needs twice the larger input scale below 2^20 output scales
        out_scale, out_zp = _f32(max(scales) * 2.0 ** rng.uniform(-8, 6)), _zero_point(rng)
    else:  # effective scales from a left shift down to 2^-20
        out_scale, out_zp = _f32(scales[0] * scales[1] / 2.0 ** rng.uniform(-20, 3)), _zero_point(rng)
    activation = _activation(rng)
    inputs = [net.input(shape, s, z) for shape, s, z in zip(shapes, scales, zero_points)]
    out = net.output(out_dims, out_scale, out_zp)
    options.fusedActivationFunction = _activation_code(activation)
    net.operator(op, inputs, out, options)
    return dict(inputs=shapes, activation=activation, zero_points=(*zero_points, out_zp))


def add(net: BranchModel, rng, limits: Limits) -> dict:
    """ADD."""
    return _binary(net, rng, limits, "ADD")


def mul(net: BranchModel, rng, limits: Limits) -> dict:
    """MUL."""
    return _binary(net, rng, limits, "MUL")


def concatenation(net: BranchModel, rng, limits: Limits) -> dict:
    """CONCATENATION of 2 to 5 inputs along any axis; all quantized like the output, as the converter
    makes them."""
    count = int(rng.integers(2, 6))
    dims = list(_dims(rng, _rank(rng), limits.activation_bytes // (2 * count)))
    axis = int(rng.integers(0, len(dims)))
    shapes = []
    for _ in range(count):
        dims[axis] = int(rng.integers(1, 13))
        shapes.append(tuple(dims))
    out_dims = list(dims)
    out_dims[axis] = sum(shape[axis] for shape in shapes)
    scale, zp = _scale(rng, -9, 0), _zero_point(rng)
    inputs = [net.input(shape, scale, zp) for shape in shapes]
    out = net.output(out_dims, scale, zp)
    options = schema.ConcatenationOptionsT()
    options.axis = axis - len(dims) if rng.random() < 0.3 else axis
    net.operator("CONCATENATION", inputs, out, options)
    return dict(inputs=shapes, axis=options.axis, zero_point=zp)


def pad(net: BranchModel, rng, limits: Limits) -> dict:
    """PAD with the zero point, or PADV2 with a given value, ranks 1 to 4."""
    rank = _rank(rng)
    dims = _dims(rng, rank, limits.activation_bytes // 3)
    paddings = [[int(rng.integers(0, 4)) if rng.random() < 0.5 else 0 for _ in range(2)] for _ in dims]
    if not any(map(any, paddings)):
        paddings[int(rng.integers(rank))][int(rng.integers(2))] = int(rng.integers(1, 4))
    out_dims = [d + before + after for d, (before, after) in zip(dims, paddings)]
    scale, zp = _scale(rng, -9, 0), _zero_point(rng)
    inp = net.input(dims, scale, zp)
    inputs = [inp, net.int32_constant(paddings, "paddings")]
    params = dict(input=dims, paddings=paddings, zero_point=zp)
    if rng.random() < 0.3:  # PADV2: the value to pad with as a third input
        value = int(rng.integers(-128, 128))
        inputs.append(net.int8_constant([value], "constant_values", scale, zp))
        op, options, params["value"] = "PADV2", schema.PadV2OptionsT(), value
    else:
        op, options = "PAD", schema.PadOptionsT()
    net.operator(op, inputs, net.output(out_dims, scale, zp), options)
    return params


def quantize(net: BranchModel, rng, limits: Limits) -> dict:
    """QUANTIZE int8 -> int8: the same scale (a new zero point only), a nearby one, or one far off."""
    dims = _dims(rng, _rank(rng), limits.activation_bytes // 2)
    in_scale, in_zp = _scale(rng, -10, 0), _zero_point(rng)
    ratio = float(rng.choice([1.0, 2.0 ** rng.uniform(-1.5, 1.5), 2.0 ** rng.uniform(-12, 8)], p=[0.1, 0.5, 0.4]))
    out_zp = _output_zero_point(rng, [-in_zp * ratio], calibrated=0.6)  # calibrated: the real 0 stays put
    inp = net.input(dims, in_scale, in_zp)
    net.operator("QUANTIZE", [inp], net.output(dims, _f32(in_scale / ratio), out_zp))
    return dict(input=dims, scale_ratio=ratio, zero_points=(in_zp, out_zp))


def logistic(net: BranchModel, rng, limits: Limits) -> dict:
    """LOGISTIC; the output quantization TFLM requires (1/256, -128)."""
    dims = _dims(rng, _rank(rng), limits.activation_bytes // 2)
    in_scale, in_zp = _scale(rng, -10, -2) if rng.random() < 0.85 else _scale(rng, -2, 2), _zero_point(rng)
    inp = net.input(dims, in_scale, in_zp)
    net.operator("LOGISTIC", [inp], net.output(dims, 1 / 256, -128))
    return dict(input=dims, input_scale=in_scale, zero_point=in_zp)


def hard_swish(net: BranchModel, rng, limits: Limits) -> dict:
    """HARD_SWISH, with the output scales TFLM takes."""
    dims = _dims(rng, _rank(rng), limits.activation_bytes // 2)
    in_scale, in_zp = _scale(rng, -10, 1), _zero_point(rng)
    real = (np.arange(-128, 128) - in_zp) * in_scale
    swished = real * np.clip(real + 3, 0, 6) / 6
    low, high = swished.min(), swished.max()
    if rng.random() < 0.7:  # calibrated to the outputs' range (TFLM needs above 1/128 of the input scale)
        out_scale = _f32(max((high - low) / 255 * 2.0 ** rng.uniform(-1, 0.5), in_scale / 100))
        out_zp = int(np.clip(np.round(-128 - low / out_scale), -128, 127))
    else:  # anything TFLM's Prepare takes
        out_scale, out_zp = _f32(in_scale / 126 * 2.0 ** rng.uniform(0, 10)), _zero_point(rng)
    inp = net.input(dims, in_scale, in_zp)
    net.operator("HARD_SWISH", [inp], net.output(dims, out_scale, out_zp))
    return dict(input=dims, scales=(in_scale, out_scale), zero_points=(in_zp, out_zp))


def dequantize(net: BranchModel, rng, limits: Limits) -> dict:
    """DEQUANTIZE to float32, scales over six orders of magnitude."""
    dims = _dims(rng, _rank(rng), limits.activation_bytes // 5)
    scale, zp = _f32(10.0 ** rng.uniform(-3, 3)), _zero_point(rng)
    inp = net.input(dims, scale, zp)
    net.operator("DEQUANTIZE", [inp], net.output(dims))
    return dict(input=dims, scale=scale, zero_point=zp)


def conv_then_pool(net: BranchModel, rng, limits: Limits) -> dict:
    """A CONV_2D or DEPTHWISE_CONV_2D branch (as its own generator draws it) whose output only a
    MAX_POOL_2D or AVERAGE_POOL_2D reads, the pair the C backend may run band by band: a pooling window
    of 1 to 5 rows and columns, windows that share rows or skip some, SAME or VALID."""
    convolution = conv_2d if rng.random() < 0.5 else depthwise_conv_2d
    params = convolution(net, rng, limits)
    middle = net.outputs.pop()
    tensor = net.tensors[middle]
    tensor.name = tensor.name.replace("output", "convolved")
    batches, height, width, channels = tensor.shape
    k = (int(rng.integers(1, min(height, 5) + 1)), int(rng.integers(1, min(width, 5) + 1)))
    window = Window(k, (int(rng.integers(1, 4)), int(rng.integers(1, 4))), (1, 1), bool(rng.random() < 0.5),
                    (height, width), batches)
    out = net.output((batches, *window.out_size, channels), tensor.quantization.scale[0],
                     tensor.quantization.zeroPoint[0])
    options = schema.Pool2DOptionsT()
    window.set_options(options)
    options.filterHeight, options.filterWidth = window.k
    options.fusedActivationFunction = _activation_code(str(rng.choice(["NONE", "RELU"])))
    pool = str(rng.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"]))
    net.operator(pool, [middle], out, options)
    return dict(convolution=params, pool=pool, **window.describe())


CHAINS = {"CONV_POOL": conv_then_pool}
"""Branches of several ops (not a kernel's own cases): name -> generator."""

GENERATORS = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d, "FULLY_CONNECTED": fully_connected,
    "MAX_POOL_2D": max_pool_2d, "AVERAGE_POOL_2D": average_pool_2d, "MEAN": mean, "SOFTMAX": softmax,
    "ADD": add, "MUL": mul, "CONCATENATION": concatenation, "PAD": pad, "QUANTIZE": quantize,
    "LOGISTIC": logistic, "HARD_SWISH": hard_swish, "DEQUANTIZE": dequantize,
}
"""Kernel -> generator of one case (a branch written into the model) returning what it chose."""
KERNEL_OPS = {kernel: {kernel} for kernel in GENERATORS} | {"PAD": {"PAD", "PADV2"}}
"""The ops a kernel's branches may be."""
