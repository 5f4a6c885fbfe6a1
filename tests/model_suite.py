"""Real-scale INT8 models with random weights and pruned channels, built with Keras and the TFLite converter.

Five architectures at the sizes microcontrollers run: MobileNet v1 0.25 and MobileNetV2 0.35 on 96x96x3
images, and MLPerf Tiny's DS-CNN keyword spotter, dense autoencoder (anomaly detection) and ResNet-8.
In every convolution, depthwise convolution and dense layer a few output channels are pruned: their
kernel weights are exactly 0 (in some layers their bias too, and the gamma of a BatchNormalization that
follows), so each such layer has at least one dead channel (an all-zero filter) among live ones.
BatchNormalization statistics are those of the calibration data and gamma and beta are random, so the
folded per-channel scales vary as in a trained model.

The converter gives an all-zero filter a tiny nonzero scale; a dead channel whose bias is 0 too gets
scale 0 instead, as older converters wrote pruned channels (its requantization multiplier is then 0).
So both forms occur.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from tinykd.train.quantize import to_int8_tflite
from tinykd.tflite.reader import parse_model

CALIBRATION_SAMPLES = 24


def mobilenet_v1():
    """MobileNet v1 at width 0.25 on 96x96x3, two classes: MLPerf Tiny's person detection network."""
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=2)


def mobilenet_v2():
    """MobileNetV2 at width 0.35 on 96x96x3, ten classes."""
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)


def ds_cnn():
    """MLPerf Tiny's keyword spotting DS-CNN: 49x10 MFCC features in, 12 classes out."""
    x = inputs = keras.Input((49, 10, 1))
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for _ in range(4):
        x = layers.DepthwiseConv2D(3, padding="same")(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(64, 1)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.AveragePooling2D((25, 5))(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Softmax()(layers.Dense(12)(x)))


def autoencoder():
    """MLPerf Tiny's anomaly detection autoencoder: 640 log-mel values through four 128-wide dense layers
    to an 8-wide bottleneck and four more back to 640; every hidden layer with BatchNormalization and ReLU."""
    x = inputs = keras.Input((640,))
    for width in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = layers.ReLU()(layers.BatchNormalization()(layers.Dense(width)(x)))
    return keras.Model(inputs, layers.Dense(640)(x))


def resnet8():
    """MLPerf Tiny's image classification ResNet-8 on 32x32x3: three residual stages of 16, 32 and 64
    channels, the last two downsampling with a 1x1 projection shortcut, ten classes."""
    x = inputs = keras.Input((32, 32, 3))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(x)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = layers.Conv2D(filters, 1, strides=stride)(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Flatten()(layers.AveragePooling2D(8)(x))
    return keras.Model(inputs, layers.Softmax()(layers.Dense(10)(x)))


BUILDERS = {"mobilenet_v1": mobilenet_v1, "mobilenet_v2": mobilenet_v2, "ds_cnn": ds_cnn,
            "autoencoder": autoencoder, "resnet8": resnet8}

INPUT_RANGES = {"mobilenet_v1": (-1.0, 1.0), "mobilenet_v2": (-1.0, 1.0), "ds_cnn": (-30.0, 20.0),
                "autoencoder": (-60.0, 0.0), "resnet8": (0.0, 1.0)}
"""The plausible float range of each model's input: MobileNet's [-1, 1] pixels, MFCCs, log-mel
energies in dB, CIFAR pixels in [0, 1]."""


def _output_channels(layer) -> np.ndarray:
    """The layer's kernel with the output channel last (a depthwise kernel's input channel and depth
    multiplier together index its output channel)."""
    kernel = layer.kernel.numpy()
    return kernel.reshape(kernel.shape[:-2] + (-1,)) if isinstance(layer, layers.DepthwiseConv2D) else kernel


def vary_and_prune_channels(model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """In every conv, depthwise and dense layer, scale each output channel's weights by a random gain
    in [1/3, 3] (a BatchNormalization after it cancels that, the others keep it) and zero the weights of
    a few channels (one in sixteen, at least one), in about half of the layers their bias too;
    layer name -> pruned channels."""
    pruned = {}
    for layer in model.layers:
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            continue
        kernel = _output_channels(layer)
        channels = kernel.shape[-1]
        kernel *= np.exp(rng.uniform(-np.log(3.0), np.log(3.0), channels)).astype(np.float32)
        dead = np.sort(rng.choice(channels, max(1, channels // 16), replace=False))
        kernel[..., dead] = 0
        layer.kernel.assign(kernel.reshape(layer.kernel.shape))
        if layer.use_bias and rng.random() < 0.5:
            layer.bias.assign(np.where(np.isin(np.arange(channels), dead), 0, layer.bias.numpy()))
        pruned[layer.name] = dead
    return pruned


def randomize_batch_norms(model, pruned: dict[str, np.ndarray], calibration: np.ndarray,
                          rng: np.random.Generator) -> None:
    """Give every BatchNormalization random gamma and beta and the moving mean and variance of its
    input on `calibration`; a pruned channel of the layer before it gets gamma 0 (in about half of the
    layers beta 0 too), so the folded filter stays all-zero."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for norm in norms:
        channels = norm.gamma.shape[0]
        norm.gamma.assign(np.exp(rng.uniform(np.log(0.3), np.log(3.0), channels)).astype(np.float32))
        norm.beta.assign(rng.normal(0.0, 0.5, channels).astype(np.float32))
    momenta = [norm.momentum for norm in norms]
    for norm in norms:  # one forward pass in training mode stores each layer's batch statistics
        norm.momentum = 0.0
    model(calibration, training=True)
    producers = {id(layer.output): layer.name for layer in model.layers}
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
        dead = pruned.get(producers.get(id(norm.input)))
        if dead is not None:
            norm.gamma.assign(np.where(np.isin(np.arange(norm.gamma.shape[0]), dead), 0, norm.gamma.numpy()))
            if rng.random() < 0.5:
                norm.beta.assign(np.where(np.isin(np.arange(norm.beta.shape[0]), dead), 0, norm.beta.numpy()))


def build(name: str, seed: int):
    """The named model with pruned channels and its calibration inputs (random, in the input's range)."""
    keras.utils.set_random_seed(seed)
    model = BUILDERS[name]()
    rng = np.random.default_rng(seed)
    low, high = INPUT_RANGES[name]
    calibration = rng.uniform(low, high, (CALIBRATION_SAMPLES,) + tuple(model.input_shape[1:])).astype(np.float32)
    randomize_batch_norms(model, vary_and_prune_channels(model, rng), calibration, rng)
    return model, calibration


def dead_channels(model, op) -> np.ndarray:
    """The output channels of a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED whose filter is all zero."""
    weights = model.op_inputs(op)[1]
    filters = np.moveaxis(weights.array(), weights.quantized_dimension, 0)
    return np.flatnonzero(~filters.reshape(len(filters), -1).any(axis=1))


def zero_dead_scales(data: bytes, path: str) -> bytes:
    """The model with scale 0 for each dead channel whose bias is 0 too, as older converters wrote pruned
    channels: their multiplier is then 0. (TF 2.21 gives an all-zero filter a tiny nonzero scale.)"""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model, flat = parse_model(data, path), schema.ModelT.InitFromPackedBuf(data, 0)
    tensors = flat.subgraphs[0].tensors
    for op in model.operators:
        if op.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        inputs = model.op_inputs(op)
        weights, bias = inputs[1], inputs[2] if len(inputs) > 2 else None
        dead = dead_channels(model, op)
        if bias is not None:
            dead = dead[bias.array()[dead] == 0]
        for tensor in (weights, bias):
            if tensor is not None and len(tensor.scale) > 1:
                scale = np.array(tensors[tensor.index].quantization.scale, np.float32)
                scale[dead] = 0.0
                tensors[tensor.index].quantization.scale = scale
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def convert_suite(folder: Path) -> dict[str, Path]:
    """Every suite model as an INT8 .tflite in `folder` (reused when already there): name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, name in enumerate(BUILDERS):
        paths[name] = folder / f"{name}.tflite"
        if not paths[name].exists():
            model, calibration = build(name, seed)
            partial = paths[name].with_suffix(f".{os.getpid()}.partial")
            data = to_int8_tflite(model, calibration, per_channel_dense=True)  # the converter's default
            partial.write_bytes(zero_dead_scales(data, str(paths[name])))
            partial.replace(paths[name])
    return paths
