"""Keras -> full-integer INT8 `.tflite` (int8 input and output) and a float32 `.tflite`.

The model is converted with a fixed batch size of 1: a dynamic batch adds SHAPE/STRIDED_SLICE/PACK ops
around Flatten/Reshape that a microcontroller does not need. TF 2.21 quantizes FULLY_CONNECTED weights
per channel; the TFLM versions RIOT and Zephyr pin (2024) do not support that (RIOT's computes every
channel with the first channel's scale, Zephyr's refuses the layer), so the pipeline asks for
per-tensor dense weights, which every TFLM version computes alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import RunLayout, write_bytes, write_json
from tinykd.core.console import quiet
from tinykd.train.data import Dataset
from tinykd.core.errors import TinykdError
from tinykd.train.evaluate import accuracy_of, predict
from tinykd.train.models import load_keras_model

log = logging.getLogger(__name__)


def _fixed_batch(model):
    import keras

    if len(model.inputs) > 1:
        inputs = [keras.Input(batch_shape=(1,) + tuple(t.shape[1:]), name=_input_name(i))
                  for i, t in enumerate(model.inputs)]
        return keras.Model(inputs, model(inputs), name=model.name)
    inputs = keras.Input(batch_shape=(1,) + tuple(model.input_shape[1:]), name="input")
    return keras.Model(inputs, model(inputs), name=model.name)


def _converter(model):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(_fixed_batch(model))


def _convert(converter) -> bytes:
    """Convert, keeping the converter's printout (captures, quantizer settings) off the terminal."""
    with quiet():
        return converter.convert()


def to_float_tflite(model) -> bytes:
    return _convert(_converter(model))


def _input_name(index: int) -> str:
    return f"input_{index:03d}"


def _samples(representative):
    """Calibration samples: a batch-of-1 array, or for several inputs a dict of them keyed by input
    name (the converter orders a multi-input model's inputs by its own rules)."""
    if isinstance(representative, (list, tuple)):
        return ({_input_name(i): x[None].astype(np.float32) for i, x in enumerate(sample)}
                for sample in zip(*representative))
    return ([sample[None].astype(np.float32)] for sample in representative)


def to_int8_tflite(model, representative: np.ndarray | list[np.ndarray], float_output: bool = False,
                   per_channel_dense: bool = False) -> bytes:
    """Full-integer INT8: every op int8, int8 input and output, calibrated on `representative`
    (an array of samples, or for a multi-input model a list of such arrays, one per input).
    `float_output` keeps float32 outputs: the converter ends each with a DEQUANTIZE.
    `per_channel_dense` gives FULLY_CONNECTED one weight scale per output unit, as the converter does by
    default; without it one per layer (see the module's docstring)."""
    import tensorflow as tf

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: _samples(representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.float32 if float_output else tf.int8
    converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
    try:
        return _convert(converter)
    except Exception as exc:
        raise TinykdError(f"{model.name}: INT8 conversion failed ({exc}); "
                          "every layer must have an int8 TFLite kernel") from None


def representative_set(dataset: Dataset, samples: int, seed: int = 0) -> np.ndarray:
    """Up to `samples` training images, chosen with `seed`."""
    order = np.random.default_rng(seed).permutation(len(dataset.x_train))[:samples]
    return dataset.x_train[np.sort(order)]


def quantize_model(model_path: Path, dataset: Dataset, out_dir: Path | None = None,
                   representative_samples: int = 500, seed: int = 0, per_channel_dense: bool = False) -> dict:
    """Write `<stem>_int8.tflite` and `<stem>_float32.tflite` beside the model (or into out_dir),
    measure their accuracy on the test split, and write `<stem>_quantize.json`. Returns that summary."""
    model_path = Path(model_path)
    model = load_keras_model(model_path)
    if tuple(model.input_shape[1:]) != dataset.input_shape:
        raise TinykdError(f"{model_path}: model takes {tuple(model.input_shape[1:])} images, "
                          f"the dataset gives {dataset.input_shape}")
    layout = RunLayout(out_dir) if out_dir else RunLayout.of_model(model_path)
    stem = model_path.stem
    int8_path, float_path = layout.int8(stem), layout.float32(stem)
    representative = representative_set(dataset, representative_samples, seed)
    log.info(f"quantizing {model_path} to INT8 with {len(representative)} representative images")
    write_bytes(int8_path, to_int8_tflite(model, representative, per_channel_dense=per_channel_dense))
    write_bytes(float_path, to_float_tflite(model))
    summary = {
        "model": str(model_path),
        "int8": {"path": str(int8_path), "bytes": int8_path.stat().st_size,
                 "test_accuracy": accuracy_of(predict(int8_path, dataset.x_test), dataset.y_test)},
        "float32": {"path": str(float_path), "bytes": float_path.stat().st_size,
                    "test_accuracy": accuracy_of(predict(float_path, dataset.x_test), dataset.y_test)},
        "keras_test_accuracy": accuracy_of(predict(model_path, dataset.x_test, model=model), dataset.y_test),
        "representative_samples": len(representative),
        "per_channel_dense": per_channel_dense,
        "test_images": len(dataset.x_test),
    }
    write_json(layout.quantize_summary(stem), summary)
    return summary
