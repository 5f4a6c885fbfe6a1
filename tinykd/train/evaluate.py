"""Evaluate a `.keras` or `.tflite` classifier: accuracy, per-class accuracy, confusion matrix, plots, JSON.

`.tflite` models run in the TFLite interpreter (ai-edge-litert); int8 inputs are quantized with the
model's own scale and zero point, int8 outputs dequantized the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinykd.core.artifacts import evaluation_file, write_json
from tinykd.core.console import quiet
from tinykd.core.errors import TinykdError
from tinykd.tflite.reader import read_model
from tinykd.train.models import load_keras_model


def model_input_shape(model_path: Path) -> tuple[int, ...]:
    """(height, width, channels) the model expects."""
    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        return tuple(int(d) for d in _tflite_interpreter(model_path).get_input_details()[0]["shape"][1:])
    return tuple(load_keras_model(model_path).input_shape[1:])


def predict(model_path: Path, images: np.ndarray, model=None) -> np.ndarray:
    """Class scores (N, classes) for float images in [0, 1]: logits, or dequantized int8 outputs."""
    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        return _predict_tflite(model_path, images)
    if model_path.suffix == ".keras":
        model = model or load_keras_model(model_path)
        return np.asarray(model.predict(images, batch_size=512, verbose=0))
    raise TinykdError(f"{model_path}: expected a .keras or .tflite model")


def accuracy_of(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def _tflite_interpreter(model_path: Path):
    from ai_edge_litert.interpreter import Interpreter

    read_model(model_path)  # a missing, empty or damaged file is a one-line error before the interpreter sees it
    try:
        with quiet():
            interpreter = Interpreter(model_path=str(model_path))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise TinykdError(f"{model_path}: not a usable .tflite model ({exc})") from None
    return interpreter


def quantize_input(images: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float images -> int8 with the model's input quantization, as the device does it."""
    return np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)


def _predict_tflite(model_path: Path, images: np.ndarray) -> np.ndarray:
    interpreter = _tflite_interpreter(model_path)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    if tuple(images.shape[1:]) != expected:
        raise TinykdError(f"{model_path}: model takes {expected} inputs, got {tuple(images.shape[1:])}")
    if inp["dtype"] == np.int8:
        scale, zero_point = inp["quantization"]
        batch = quantize_input(images, scale, zero_point)
    else:
        batch = images.astype(inp["dtype"])
    scores = np.empty((len(images), int(np.prod(out["shape"][1:]))), np.float32)
    for i in range(len(images)):
        interpreter.set_tensor(inp["index"], batch[i:i + 1])
        interpreter.invoke()
        scores[i] = interpreter.get_tensor(out["index"]).reshape(-1)
    if out["dtype"] == np.int8:
        scale, zero_point = out["quantization"]
        scores = (scores - zero_point) * scale
    return scores


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def evaluate_model(model_path: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str],
                   out_dir: Path, history: dict | None = None) -> dict:
    """Measure the model on (images, labels); write summary.json, confusion.png (and curves.png)."""
    from tinykd.ui.report import plot_confusion, plot_history

    model_path = Path(model_path)
    scores = predict(model_path, images)
    if scores.shape[1] != len(class_names):
        raise TinykdError(f"{model_path}: model has {scores.shape[1]} outputs, "
                          f"the dataset has {len(class_names)} classes")
    predicted = np.argmax(scores, axis=1)
    matrix = confusion_matrix(labels, predicted, len(class_names))
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {kind: evaluation_file(out_dir, kind) for kind in ("summary", "confusion", "curves")}
    plot_confusion(matrix, class_names, files["confusion"], title=model_path.name)
    if history:
        plot_history(history, files["curves"], title=model_path.name)
    else:
        del files["curves"]
    summary = {
        "model": str(model_path),
        "model_bytes": model_path.stat().st_size,
        "images": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": {name: float(a) for name, a in zip(class_names, per_class)},
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
        "files": {kind: str(path) for kind, path in files.items()},
    }
    write_json(files["summary"], summary)
    return summary
