"""People counting from few pictures: k-fold cross-validation of the small-data recipe.

The task is classification: classes 0 .. K-2 people and "K-1 or more" (K = 5: 0, 1, 2, 3, 4+), so the
same students, INT8 conversion and C backend apply. The recipe for a few hundred images: strong
augmentation (shifts, flips, brightness and contrast) for teacher and student, a larger teacher trained
the same way, and KD into the student with the teacher inside each step (so the augmented images get
the teacher's own answers). Each fold reports exact-count accuracy and the mean absolute error of the
count (a "K-1 or more" label counts as K-1), next to the baseline that always predicts the training
folds' mean count.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import write_json
from tinykd.core.config import PipelineConfig
from tinykd.core.errors import TinykdError
from tinykd.train.data import Dataset, read_count_file

log = logging.getLogger(__name__)

SMALL_DATA_BATCH = 16
"""Batch size of the counting recipe (at most): with a few hundred images, 128 would be one step an epoch."""


def kfold_indices(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays of `folds` folds with each count in the same share in every fold, as far
    as there are images of it (scikit-learn's StratifiedKFold, shuffled with `seed`)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a count rarer than `folds` cannot be in every fold; that is expected
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(splitter.split(np.zeros(len(labels)), labels))


def count_metrics(predicted: np.ndarray, true: np.ndarray) -> dict:
    """Exact-count accuracy and mean absolute error of predicted counts (class indices)."""
    predicted, true = np.asarray(predicted), np.asarray(true)
    return {"exact_accuracy": float(np.mean(predicted == true)),
            "mae": float(np.mean(np.abs(predicted.astype(float) - true)))}


def _fold_dataset(dataset: Dataset, x, y, train, test, seed: int) -> Dataset:
    """A fold: its test part is held out; 15% of its training part picks the best epoch."""
    order = np.random.default_rng(seed).permutation(train)
    held = max(1, int(round(0.15 * len(order))))
    val, fit = order[:held], order[held:]
    return dataclasses.replace(dataset, x_train=x[fit], y_train=y[fit], x_val=x[val], y_val=y[val],
                               x_test=x[test], y_test=y[test])


def cross_validate(config: PipelineConfig, dataset: Dataset, folds: int = 5) -> dict:
    """Train teacher and distilled student on each fold; metrics per fold and averaged."""
    import keras

    from tinykd.train.distill import distill_student
    from tinykd.train.train import train_teacher

    x = np.concatenate([dataset.x_train, dataset.x_val, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_val, dataset.y_test])
    check_folds(dataset.source, len(x), folds)
    results = []
    for k, (train, test) in enumerate(kfold_indices(y, folds, config.seed)):
        log.info(f"fold {k + 1}/{folds}: {len(train)} training images, {len(test)} held out")
        fold = _fold_dataset(dataset, x, y, train, test, config.seed + k)
        with tempfile.TemporaryDirectory(prefix="tinykd-fold-") as folder:
            teacher = train_teacher(config.teacher, fold, Path(folder), config.seed + k)
            student = distill_student(config.student, fold, [teacher], Path(folder), config.seed + k)
            scores = {name: np.argmax(keras.models.load_model(path, compile=False).predict(fold.x_test, verbose=0),
                                      axis=1) for name, path in (("teacher", teacher), ("student", student))}
        mean_count = int(np.clip(np.round(fold.y_train.mean()), 0, dataset.num_classes - 1))
        results.append({"fold": k + 1, "test_images": len(test),
                        "teacher": count_metrics(scores["teacher"], fold.y_test),
                        "student": count_metrics(scores["student"], fold.y_test),
                        "mean_baseline": count_metrics(np.full(len(test), mean_count), fold.y_test)})
    average = {who: {metric: float(np.mean([r[who][metric] for r in results])) for metric in ("exact_accuracy", "mae")}
               for who in ("teacher", "student", "mean_baseline")}
    return {"folds": results, "mean": average, "classes": dataset.class_names, "images": len(x),
            "unlabelled": dataset.unlabelled}


def counting_recipe(config: PipelineConfig) -> PipelineConfig:
    """The pipeline with the small-data recipe: strong augmentation, batches of at most SMALL_DATA_BATCH."""
    config.teacher.augment = config.student.augment = "strong"
    for section in (config.teacher, config.student):  # a few hundred images: small batches, more steps
        section.batch_size = min(section.batch_size, SMALL_DATA_BATCH)
    return config


def check_folds(source: str, images: int, folds: int) -> None:
    """Each fold needs at least two images."""
    if images < 2 * folds:
        raise TinykdError(f"{source}: {images} labelled images are too few for {folds} folds")


def cross_validate_run(config: PipelineConfig, folds: int = 5) -> tuple[dict, Path]:
    """Cross-validate the recipe on the run's dataset and write RUN_DIR/count_cv.json: (result, its path).
    A count:PATH set with too few labelled images for the folds is refused before any image is read."""
    from tinykd.train import pipeline

    if config.data.dataset.startswith("count:"):
        folder = config.data.dataset.removeprefix("count:")
        counts = read_count_file(Path(folder))
        check_folds(folder, sum(count is not None for count in counts.values()), folds)
    result = cross_validate(config, pipeline.load_data(config), folds)
    path = config.layout.count_cv
    write_json(path, result)
    return result, path
