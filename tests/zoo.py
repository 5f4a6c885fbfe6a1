"""A zoo of small, different INT8 models, built with Keras and the TFLite converter for the tests.

Each builder returns a Keras model; `build_zoo` converts them all to full-integer INT8 `.tflite` files.
Together they cover plain and depthwise-separable convolutions (with a depth multiplier), residual ADD,
global average pooling (MEAN), max and average pooling, odd channel counts, strides and SAME/VALID
padding, concatenation, multiplication, hard-swish, and heads with and without softmax.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from tinykd.train.quantize import to_int8_tflite


def plain_conv():
    x = inputs = keras.Input((24, 24, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(10)(x)
    return keras.Model(inputs, layers.Softmax()(x))


def depthwise_separable():
    x = inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2D(24, 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=2)(x)
    x = layers.Conv2D(32, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


def residual_add():
    x = inputs = keras.Input((20, 20, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(16, 3, padding="same")(y)
    x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    return keras.Model(inputs, layers.Softmax()(x))


def pooling_variants():
    x = inputs = keras.Input((30, 30, 2))
    x = layers.Conv2D(12, 3, padding="valid", activation="relu")(x)
    x = layers.AveragePooling2D(3, strides=2, padding="valid")(x)
    x = layers.Conv2D(12, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.AveragePooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(6)(x))


def odd_channels():
    x = inputs = keras.Input((27, 19, 5))
    x = layers.Conv2D(7, 5, strides=2, padding="valid", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=3, activation="relu")(x)
    x = layers.Conv2D(13, (3, 1), strides=(1, 2), padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(9)(x)
    return keras.Model(inputs, layers.Softmax()(x))


def strides_padding():
    x = inputs = keras.Input((33, 21, 1))
    x = layers.Conv2D(6, 3, strides=3, padding="same", activation="relu")(x)
    x = layers.Conv2D(10, 2, strides=2, padding="valid", activation="relu6")(x)
    x = layers.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = layers.Conv2D(8, 3, strides=1, padding="valid")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(4)(x))


def mlp():
    x = inputs = keras.Input((12, 12, 1))
    x = layers.Flatten()(x)
    x = layers.Dense(40, activation="relu")(x)
    x = layers.Dense(17, activation="relu")(x)
    x = layers.Dense(10)(x)
    return keras.Model(inputs, layers.Softmax()(x))


def concat_mul():
    x = inputs = keras.Input((16, 16, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    b = layers.Conv2D(5, 1, padding="same", activation="sigmoid")(x)
    x = layers.Concatenate()([a, b])
    x = layers.Activation("hard_swish")(layers.Conv2D(11, 3, strides=2, padding="same")(x))
    gate = layers.Conv2D(11, 1, activation="sigmoid")(x)
    x = layers.Multiply()([x, gate])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(5)(x))


def tiny_student():
    """The project's own default student at 48x48."""
    from tinykd.train.models import build_model

    return build_model("tiny_conv", (48, 48, 1), 10)


BUILDERS = {f.__name__: f for f in (plain_conv, depthwise_separable, residual_add, pooling_variants,
                                    odd_channels, strides_padding, mlp, concat_mul, tiny_student)}


def build_zoo(folder: Path, names=tuple(BUILDERS), per_channel_dense: bool = True) -> dict[str, Path]:
    """The zoo's models (all, or `names`) as INT8 .tflite files in `folder`: name -> path. Dense weights
    per channel by default, as the converter does (../shared's TFLM figures are of these files). A file
    already in `folder` is reused; each is written whole or not at all."""
    paths = {}
    for index, (name, builder) in enumerate(BUILDERS.items()):
        if name not in names:
            continue
        paths[name] = folder / f"{name}.tflite"
        if paths[name].exists():
            continue
        keras.utils.set_random_seed(index)
        model = builder()
        rng = np.random.default_rng(index)
        representative = rng.random((32,) + tuple(model.input_shape[1:]), dtype=np.float32)
        partial = paths[name].with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(to_int8_tflite(model, representative, per_channel_dense=per_channel_dense))
        partial.replace(paths[name])
    return paths
