"""Named architectures: teachers and students. Every model outputs logits (no softmax layer).

A builder takes the input shape, the number of classes and a width multiplier, and returns an
uncompiled functional `keras.Model` whose layers have stable names, so feature distillation can
refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinykd.core.artifacts import check_model_file
from tinykd.core.errors import TinykdError

L2 = 1e-4
BN_MOMENTUM = 0.9
"""Batch-norm statistics settle within an epoch even on small datasets."""


@dataclass(frozen=True)
class Architecture:
    name: str
    role: str
    summary: str
    build: Callable


ARCHITECTURES: dict[str, Architecture] = {}


def _register(role: str, summary: str):
    def wrap(fn):
        ARCHITECTURES[fn.__name__] = Architecture(fn.__name__, role, summary, fn)
        return fn
    return wrap


def check_architecture(name: str) -> None:
    """An unknown name is an error listing the known ones."""
    if name not in ARCHITECTURES:
        raise TinykdError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")


def build_model(name: str, input_shape, num_classes: int, width: float = 1.0):
    """Build the named architecture."""
    check_architecture(name)
    if width <= 0:
        raise TinykdError(f"width must be positive, got {width}")
    try:
        return ARCHITECTURES[name].build(tuple(input_shape), int(num_classes), float(width))
    except ValueError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise TinykdError(f"architecture {name!r} cannot take {tuple(input_shape)} inputs: {reason}") from None


def _ch(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


def _layers():
    import keras

    return keras, keras.layers, keras.regularizers.L2(L2)


def _conv_bn_relu(x, filters, name, strides=1, reg=None, kernel=3):
    _, layers, _ = _layers()
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_regularizer=reg, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _ds_block(x, filters, name, strides=1, reg=None):
    """Depthwise-separable block: 3x3 depthwise, 1x1 pointwise, each with batch norm and ReLU."""
    _, layers, _ = _layers()
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               depthwise_regularizer=reg, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _conv_bn_relu(x, filters, f"{name}_pw", reg=reg, kernel=1)


def _student_head(inputs, x, num_classes, name, hidden=0):
    """The students' head and model: the feature map flattened into a hidden ReLU dense layer of `hidden`
    units, or (hidden = 0) averaged globally; then the logits."""
    keras, layers, _ = _layers()
    if hidden:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name=name)


@_register("teacher", "conv blocks with batch norm, dropout and L2 1e-4; for 28-64 px grayscale")
def cnn_teacher(input_shape, num_classes, width):
    """Teacher: a strided 3x3 stem, then conv blocks of 32/64/128 x width channels with pooling,
    global average pooling and a dropout-regularised dense head."""
    keras, layers, reg = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn_relu(inputs, _ch(32, width), "stem", strides=2, reg=reg)
    x = _conv_bn_relu(x, _ch(32, width), "block1", reg=reg)
    x = layers.MaxPooling2D(2, padding="same", name="block1_pool")(x)
    x = layers.Dropout(0.1, name="block1_drop")(x)
    x = _conv_bn_relu(x, _ch(64, width), "block2a", reg=reg)
    x = _conv_bn_relu(x, _ch(64, width), "block2b", reg=reg)
    x = layers.MaxPooling2D(2, padding="same", name="block2_pool")(x)
    x = layers.Dropout(0.2, name="block2_drop")(x)
    x = _conv_bn_relu(x, _ch(128, width), "block3", reg=reg)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(_ch(128, width), activation="relu", kernel_regularizer=reg, name="hidden")(x)
    x = layers.Dropout(0.3, name="hidden_drop")(x)
    outputs = layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x)
    return keras.Model(inputs, outputs, name="cnn_teacher")


@_register("student", "the classic: Conv8 -> MaxPool -> Dense16 -> Dense10 (width scales the conv and dense)")
def classic_student(input_shape, num_classes, width):
    """The small student of the original RIOT deployment: one conv, one pool, two dense layers."""
    keras, layers, _ = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(_ch(8, width), 3, activation="relu", name="conv")(inputs)
    x = layers.MaxPooling2D(4 if input_shape[0] >= 32 else 2, name="pool")(x)
    return _student_head(inputs, x, num_classes, "classic_student", hidden=_ch(16, width))


@_register("student", "plain strided 3x3 convs (8/16/32 x width) with a small dense head")
def tiny_conv(input_shape, num_classes, width):
    """Tiny plain-conv student: three strided 3x3 convs, then a dense head on the flattened map."""
    keras, layers, _ = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, filters in enumerate((8, 16, 32)):
        x = _conv_bn_relu(x, _ch(filters, width), f"conv{i + 1}", strides=2)
    x = layers.MaxPooling2D(2, padding="same", name="pool")(x)
    return _student_head(inputs, x, num_classes, "tiny_conv", hidden=_ch(32, width))


@_register("student", "a strided conv stem and depthwise-separable blocks (16/32/64 x width), global pooling")
def tiny_dsconv(input_shape, num_classes, width):
    """Tiny depthwise-separable student, MobileNet style: cheap in MACs and in flash."""
    keras = _layers()[0]
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn_relu(inputs, _ch(16, width), "stem", strides=2)
    x = _ds_block(x, _ch(32, width), "ds1", strides=2)
    x = _ds_block(x, _ch(64, width), "ds2", strides=2)
    x = _ds_block(x, _ch(64, width), "ds3")
    return _student_head(inputs, x, num_classes, "tiny_dsconv")


@_register("teacher", "CIFAR-10 teacher: VGG-style 3x3 conv blocks (64/128/256 x width), batch norm, dropout")
def cifar_teacher(input_shape, num_classes, width):
    """Teacher for 32x32 RGB: three blocks of two 3x3 convs, each followed by pooling and dropout."""
    keras, layers, reg = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, filters in enumerate((64, 128, 256)):
        block = f"block{i + 1}"
        x = _conv_bn_relu(x, _ch(filters, width), f"{block}a", reg=reg)
        x = _conv_bn_relu(x, _ch(filters, width), f"{block}b", reg=reg)
        x = layers.MaxPooling2D(2, padding="same", name=f"{block}_pool")(x)
        x = layers.Dropout(0.1 * (i + 2), name=f"{block}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_teacher")


@_register("student", "CIFAR-10 student: conv stem and four depthwise-separable blocks (32..128 x width)")
def cifar_student(input_shape, num_classes, width):
    """Student for 32x32 RGB: a depthwise-separable network sized for a Cortex-M4/M7."""
    keras = _layers()[0]
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn_relu(inputs, _ch(32, width), "stem")
    x = _ds_block(x, _ch(64, width), "ds1", strides=2)
    x = _ds_block(x, _ch(64, width), "ds2")
    x = _ds_block(x, _ch(128, width), "ds3", strides=2)
    x = _ds_block(x, _ch(128, width), "ds4")
    return _student_head(inputs, x, num_classes, "cifar_student")


def load_keras_model(path):
    """A saved .keras model (uncompiled); anything else is a one-line error naming the file."""
    import keras

    with open(check_model_file(path, "Keras model"), "rb") as file:
        zipped = file.read(4) == b"PK\x03\x04"
    if not zipped:
        raise TinykdError(f"{path}: not a Keras model (a .keras file is a zip archive; this one is not)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise TinykdError(f"{path}: cannot load the Keras model ({exc})") from None
