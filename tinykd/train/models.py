"""Named architectures: teachers and students. Every model outputs logits (no softmax layer).

A builder takes the input shape, the number of classes and a width multiplier (a student's also a
depth: extra blocks at its last resolution, 0 for the architecture as described), and returns an
uncompiled functional `keras.Model` whose layers have stable names, so feature distillation can
refer to them. Most take images or 2-D features (height, width, channels); the `conv1d_*` ones take
sequences (length, channels), built from 2-D layers with Kx1 kernels so that they lower to CONV_2D; the
`mlp_*` ones flatten any input.
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
    example_input: tuple[int, ...]
    """An input shape it is made for (`tinykd models` counts the parameters at this shape)."""
    deepens: str = ""
    """What each unit of depth adds (students); empty: no depth setting."""


ARCHITECTURES: dict[str, Architecture] = {}


def _register(role: str, summary: str, example_input: tuple[int, ...] = (48, 48, 1), deepens: str = ""):
    def wrap(fn):
        ARCHITECTURES[fn.__name__] = Architecture(fn.__name__, role, summary, fn, example_input, deepens)
        return fn
    return wrap


def check_architecture(name: str) -> None:
    """An unknown name is an error listing the known ones."""
    if name not in ARCHITECTURES:
        raise TinykdError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")


def check_depth(name: str, depth: int) -> None:
    """A depth other than 0 needs an architecture that has one."""
    if depth < 0:
        raise TinykdError(f"depth must not be negative, got {depth}")
    if depth and not ARCHITECTURES[name].deepens:
        raise TinykdError(f"architecture {name!r} has no depth setting (the students have one: tinykd models)")


def build_model(name: str, input_shape, num_classes: int, width: float = 1.0, depth: int = 0):
    """Build the named architecture."""
    check_architecture(name)
    if width <= 0:
        raise TinykdError(f"width must be positive, got {width}")
    check_depth(name, depth)
    extra = {"depth": int(depth)} if ARCHITECTURES[name].deepens else {}
    try:
        return ARCHITECTURES[name].build(tuple(input_shape), int(num_classes), float(width), **extra)
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


@_register("student", "the classic: Conv8 -> MaxPool -> Dense16 -> Dense10 (width scales the conv and dense)",
           deepens="a 3x3 conv of 8 x width before the pool")
def classic_student(input_shape, num_classes, width, depth=0):
    """The small student of the original RIOT deployment: one conv, one pool, two dense layers."""
    keras, layers, _ = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(_ch(8, width), 3, activation="relu", name="conv")(inputs)
    for i in range(depth):
        x = layers.Conv2D(_ch(8, width), 3, padding="same", activation="relu", name=f"conv_extra{i + 1}")(x)
    x = layers.MaxPooling2D(4 if input_shape[0] >= 32 else 2, name="pool")(x)
    return _student_head(inputs, x, num_classes, "classic_student", hidden=_ch(16, width))


@_register("student", "plain strided 3x3 convs (8/16/32 x width) with a small dense head",
           deepens="a stride-1 3x3 conv of 32 x width after the last")
def tiny_conv(input_shape, num_classes, width, depth=0):
    """Tiny plain-conv student: three strided 3x3 convs, then a dense head on the flattened map."""
    keras, layers, _ = _layers()
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, filters in enumerate((8, 16, 32)):
        x = _conv_bn_relu(x, _ch(filters, width), f"conv{i + 1}", strides=2)
    for i in range(depth):
        x = _conv_bn_relu(x, _ch(32, width), f"conv3_extra{i + 1}")
    x = layers.MaxPooling2D(2, padding="same", name="pool")(x)
    return _student_head(inputs, x, num_classes, "tiny_conv", hidden=_ch(32, width))


@_register("student", "a strided conv stem and depthwise-separable blocks (16/32/64 x width), global pooling",
           deepens="a depthwise-separable block of 64 x width")
def tiny_dsconv(input_shape, num_classes, width, depth=0):
    """Tiny depthwise-separable student, MobileNet style: cheap in MACs and in flash."""
    keras = _layers()[0]
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn_relu(inputs, _ch(16, width), "stem", strides=2)
    x = _ds_block(x, _ch(32, width), "ds1", strides=2)
    x = _ds_block(x, _ch(64, width), "ds2", strides=2)
    for i in range(1 + depth):
        x = _ds_block(x, _ch(64, width), f"ds{i + 3}")
    return _student_head(inputs, x, num_classes, "tiny_dsconv")


@_register("teacher", "CIFAR-10 teacher: VGG-style 3x3 conv blocks (64/128/256 x width), batch norm, dropout",
           (32, 32, 3))
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


@_register("student", "CIFAR-10 student: conv stem and four depthwise-separable blocks (32..128 x width)",
           (32, 32, 3), deepens="a depthwise-separable block of 128 x width")
def cifar_student(input_shape, num_classes, width, depth=0):
    """Student for 32x32 RGB: a depthwise-separable network sized for a Cortex-M4/M7."""
    keras = _layers()[0]
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn_relu(inputs, _ch(32, width), "stem")
    x = _ds_block(x, _ch(64, width), "ds1", strides=2)
    x = _ds_block(x, _ch(64, width), "ds2")
    x = _ds_block(x, _ch(128, width), "ds3", strides=2)
    for i in range(1 + depth):
        x = _ds_block(x, _ch(128, width), f"ds{i + 4}")
    return _student_head(inputs, x, num_classes, "cifar_student")


def _average_head(inputs, x, num_classes, name, dropout=0.0, reg=None):
    """Average pooling over the whole feature map, then the logits (AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED)."""
    keras, layers, _ = _layers()
    x = layers.AveragePooling2D(tuple(x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="pool_drop")(x)
    return keras.Model(inputs, layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x), name=name)


def _ds_cnn(input_shape, num_classes, channels: int, blocks: int, name: str, dropout: float = 0.0, reg=None):
    """DS-CNN for spectrogram-like features (time x frequency x 1), as in keyword spotting: a strided
    conv over up to 10x4 cells, `blocks` depthwise-separable blocks of `channels`, average pool, dense."""
    keras, layers, _ = _layers()
    if len(input_shape) != 3:
        raise ValueError("DS-CNN wants (time, frequency, channels) features")
    inputs = keras.Input(input_shape, name="features")
    kernel = (min(10, input_shape[0]), min(4, input_shape[1]))
    x = _conv_bn_relu(inputs, channels, "stem", strides=2, reg=reg, kernel=kernel)
    if dropout:
        x = layers.Dropout(dropout / 2, name="stem_drop")(x)
    for i in range(blocks):
        x = _ds_block(x, channels, f"ds{i + 1}", reg=reg)
    return _average_head(inputs, x, num_classes, name, dropout, reg)


@_register("teacher", "DS-CNN for 2-D features such as MFCCs: 10x4 strided conv, five depthwise-separable "
           "blocks of 128 x width, dropout, L2 1e-4", (49, 10, 1))
def ds_cnn_teacher(input_shape, num_classes, width):
    """A wide DS-CNN teacher for time x frequency features such as 49x10 MFCCs."""
    return _ds_cnn(input_shape, num_classes, _ch(128, width), 5, "ds_cnn_teacher", dropout=0.4, reg=_layers()[2])


@_register("student", "keyword spotting's DS-CNN (MLPerf Tiny size): 10x4 strided conv, four "
           "depthwise-separable blocks of 64 x width", (49, 10, 1), deepens="a depthwise-separable block")
def ds_cnn_student(input_shape, num_classes, width, depth=0):
    """The small DS-CNN of keyword spotting on microcontrollers."""
    return _ds_cnn(input_shape, num_classes, _ch(64, width), 4 + depth, "ds_cnn_student")


def _conv1d(input_shape, num_classes, filters, name: str, dropout: float = 0.0, reg=None):
    """Kx1 convolutions over a (length, channels) sequence viewed as (length, 1, channels): the first
    `len(filters) - 1` stride 2, then an average pool over the remaining length and the logits."""
    keras, layers, _ = _layers()
    if len(input_shape) != 2:
        raise ValueError("conv1d architectures want (length, channels) sequences")
    inputs = keras.Input(input_shape, name="sequence")
    x = layers.Reshape((input_shape[0], 1, input_shape[1]), name="as_2d")(inputs)
    for i, f in enumerate(filters):
        strides = (2, 1) if i < len(filters) - 1 else 1
        x = _conv_bn_relu(x, f, f"conv{i + 1}", strides=strides, reg=reg, kernel=(5 if i == 0 else 3, 1))
        if dropout and i < len(filters) - 1:
            x = layers.Dropout(dropout / 2, name=f"conv{i + 1}_drop")(x)
    return _average_head(inputs, x, num_classes, name, dropout, reg)


@_register("teacher", "1-D convs for length x channels windows: four Kx1 conv layers of 32..128 x width, "
           "dropout, L2 1e-4", (128, 3))
def conv1d_teacher(input_shape, num_classes, width):
    """A wider 1-D conv teacher for sequences such as accelerometer windows."""
    filters = [_ch(f, width) for f in (32, 64, 128, 128)]
    return _conv1d(input_shape, num_classes, filters, "conv1d_teacher", dropout=0.3, reg=_layers()[2])


@_register("student", "1-D convs for length x channels windows: three Kx1 conv layers of 8/16/32 x width",
           (128, 3), deepens="a 3x1 conv of 32 x width")
def conv1d_student(input_shape, num_classes, width, depth=0):
    """A small 1-D conv student; Kx1 Conv2D layers lower to CONV_2D (no EXPAND_DIMS or SQUEEZE)."""
    filters = [_ch(f, width) for f in (8, 16, 32)] + [_ch(32, width)] * depth
    return _conv1d(input_shape, num_classes, filters, "conv1d_student")


def _mlp(input_shape, num_classes, units, name: str, dropout: float = 0.0, reg=None):
    """Dense ReLU layers of `units` on the flattened input, then the logits."""
    keras, layers, _ = _layers()
    inputs = keras.Input(input_shape, name="features")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, n in enumerate(units):
        x = layers.Dense(n, activation="relu", kernel_regularizer=reg, name=f"dense{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dense{i + 1}_drop")(x)
    return keras.Model(inputs, layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x), name=name)


@_register("teacher", "multilayer perceptron for feature vectors: dense 256/128 x width, dropout, L2 1e-4", (20,))
def mlp_teacher(input_shape, num_classes, width):
    """A dense teacher for tabular or precomputed feature vectors (any input is flattened)."""
    return _mlp(input_shape, num_classes, [_ch(256, width), _ch(128, width)], "mlp_teacher", 0.2, _layers()[2])


@_register("student", "multilayer perceptron for feature vectors: dense 32/16 x width", (20,),
           deepens="a dense layer of 16 x width")
def mlp_student(input_shape, num_classes, width, depth=0):
    """A small dense student: FULLY_CONNECTED layers only."""
    return _mlp(input_shape, num_classes, [_ch(32, width)] + [_ch(16, width)] * (1 + depth), "mlp_student")


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
