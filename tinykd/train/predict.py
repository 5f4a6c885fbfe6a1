"""`tinykd predict`: a model's class and probabilities for the user's own image files.

Images get the preprocessing the model was trained with: the model's input size and channels, bilinear
resizing, [0, 1] scaling and, for an INT8 `.tflite`, quantization with the model's input scale and zero
point. An unreadable image is reported on its own; the others are still predicted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import RunLayout, check_model_file
from tinykd.train.data import prepare_images, read_image
from tinykd.core.errors import TinykdError
from tinykd.train.evaluate import model_input_shape, predict


def class_names(model_path: Path, count: int) -> list[str]:
    """The class names of the run the model comes from (its dataset.json), else the class numbers."""
    recorded = RunLayout.of_model(model_path).dataset
    try:
        names = json.loads(recorded.read_text())["class_names"]
        if len(names) == count:
            return [str(n) for n in names]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return [str(i) for i in range(count)]


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax of the model's outputs, unless they already are probabilities (a softmax head)."""
    if np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=0.02):
        return scores / scores.sum(axis=1, keepdims=True)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict_images(model_path: str | Path, image_paths: list[str | Path], top: int = 3) -> list[dict]:
    """One result per image, in order: {image, class, probability, top: [[class, p], ...]} or {image, error}."""
    model_path = Path(model_path)
    check_model_file(model_path)
    shape = model_input_shape(model_path)
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise TinykdError(f"{model_path}: the model takes {shape} inputs, not images; predict reads image files "
                          "(tinykd evaluate measures a model on its npz: dataset)")
    height, width, channels = shape
    results, images, readable = [], [], []
    for path in image_paths:
        try:
            images.append(prepare_images(read_image(Path(path))[None], (height, width), channels)[0])
            readable.append(len(results))
            results.append({"image": str(path)})
        except TinykdError as exc:
            results.append({"image": str(path), "error": str(exc)})
    if images:
        p = probabilities(np.asarray(predict(model_path, np.stack(images)), np.float64))
        names = class_names(model_path, p.shape[1])
        for row, index in zip(p, readable):
            order = np.argsort(-row)[:top]
            results[index].update({"class": names[order[0]], "probability": round(float(row[order[0]]), 6),
                                   "top": [[names[k], round(float(row[k]), 6)] for k in order]})
    return results
