"""Teacher training: label-smoothed cross-entropy, Adam, L2 (in the architecture), light augmentation.

Also the training machinery the student shares: the tf.data input pipeline, augmentation, keeping the
best epoch on validation accuracy, and history.json.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tinykd.core.artifacts import RunLayout, atomic_path, write_json
from tinykd.core.config import TeacherConfig
from tinykd.core.console import duration
from tinykd.train.data import Dataset
from tinykd.train.models import build_model

log = logging.getLogger(__name__)


def fit_verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch otherwise (logs, CI)."""
    return 1 if sys.stdout.isatty() else 2


def augment_images(images, strong: bool = False):
    """Light augmentation on a batch: pad + random crop (about 1/12 of the side), brightness, contrast.
    Strong (for small datasets): shifts up to 1/6 of the side, horizontal flips, larger changes."""
    height, width = images.shape[1], images.shape[2]
    pad = max(1, int(round(min(height, width) / (6 if strong else 12))))
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    n = tf.shape(images)[0]
    dy = tf.random.uniform([n], 0, 2 * pad + 1, dtype=tf.int32)
    dx = tf.random.uniform([n], 0, 2 * pad + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    if strong:
        flip = tf.random.uniform([n, 1, 1, 1]) < 0.5
        cropped = tf.where(flip, tf.reverse(cropped, axis=[2]), cropped)
    change = 0.2 if strong else 0.1
    brightness = tf.random.uniform([n, 1, 1, 1], -change, change)
    contrast = tf.random.uniform([n, 1, 1, 1], 1 - 2 * change, 1 + 2 * change)
    mean = tf.reduce_mean(cropped, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((cropped - mean) * contrast + mean + brightness, 0.0, 1.0)


def make_batches(x, y, num_classes: int, batch_size: int, augment: bool | str = False,
                 shuffle: bool = True, seed: int = 0, extra=None):
    """A tf.data pipeline of (inputs, one-hot labels); inputs are (x, extra) when extra is given."""
    labels = tf.one_hot(y, num_classes)
    ds = tf.data.Dataset.from_tensor_slices((x if extra is None else (x, extra), labels))
    if shuffle:
        ds = ds.shuffle(min(len(x), 20000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        strong = augment == "strong"
        if extra is None:
            ds = ds.map(lambda images, t: (augment_images(images, strong), t), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda inputs, t: ((augment_images(inputs[0], strong), inputs[1]), t),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the epoch with the best validation accuracy, restore them at the end,
    and time each epoch, logging the time the remaining epochs will take."""

    def __init__(self, model, epochs: int, monitor: str = "val_categorical_accuracy"):
        super().__init__()
        self.target, self.epochs, self.monitor = model, epochs, monitor
        self.best, self.best_epoch, self.weights, self.epoch_seconds = -np.inf, -1, None, []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(round(time.perf_counter() - self._start, 2))
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best, self.best_epoch, self.weights = value, epoch, self.target.get_weights()
        left = np.mean(self.epoch_seconds) * (self.epochs - epoch - 1)
        accuracy = f", validation accuracy {value:.2%}" if value is not None else ""
        log.info(f"{self.target.name}: epoch {epoch + 1}/{self.epochs}{accuracy}, {duration(left)} left")

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.target.set_weights(self.weights)


def adam(learning_rate: float, epochs: int, steps_per_epoch: int):
    """Adam whose learning rate decays along a cosine to zero over the whole training."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, epochs * steps_per_epoch))
    return keras.optimizers.Adam(schedule)


def steps_per_epoch(samples: int, batch_size: int) -> int:
    return -(-samples // batch_size)


def fit(trainer, model, train_batches, val_batches, epochs: int) -> dict:
    """Run `trainer.fit`, keep `model` at its best validation epoch, and return the history as a dict."""
    keep_best = KeepBest(model, epochs)
    history = trainer.fit(train_batches, validation_data=val_batches, epochs=epochs,
                          verbose=fit_verbosity(), callbacks=[keep_best], shuffle=False)
    record = {key: [float(v) for v in values] for key, values in history.history.items()}
    record["epoch_seconds"] = keep_best.epoch_seconds
    record["best_epoch"] = keep_best.best_epoch + 1
    record["best_val_accuracy"] = float(keep_best.best) if keep_best.weights is not None else None
    return record


def train_classifier(model, dataset: Dataset, epochs: int, batch_size: int, learning_rate: float,
                     label_smoothing: float = 0.0, augment: bool | str = False, seed: int = 0) -> dict:
    """Train `model` on labels alone (cross-entropy on logits); returns the history."""
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=adam(learning_rate, epochs, steps_per_epoch(len(dataset.x_train), batch_size)),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing),
                  metrics=["categorical_accuracy"])
    train = make_batches(dataset.x_train, dataset.y_train, dataset.num_classes, batch_size, augment, seed=seed)
    val = make_batches(dataset.x_val, dataset.y_val, dataset.num_classes, 512, shuffle=False)
    return fit(model, model, train, val, epochs)


def train_teacher(config: TeacherConfig, dataset: Dataset, out_dir: Path, seed: int = 0) -> Path:
    """Train the teacher and write `teacher.keras` and `teacher_history.json` into out_dir."""
    keras.utils.set_random_seed(seed)
    model = build_model(config.architecture, dataset.input_shape, dataset.num_classes, config.width)
    log.info(f"training teacher {config.architecture} ({model.count_params():,} parameters) "
             f"for {config.epochs} epochs on {len(dataset.x_train):,} images")
    history = train_classifier(model, dataset, config.epochs, config.batch_size, config.learning_rate,
                               config.label_smoothing, config.augment, seed)
    history["architecture"] = config.architecture
    history["parameters"] = int(model.count_params())
    return save_model(model, history, Path(out_dir), RunLayout.TEACHER)


def save_model(model, history: dict, out_dir: Path, stem: str) -> Path:
    """Write `<stem>.keras` and `<stem>_history.json` atomically; return the model path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = RunLayout(out_dir)
    path = layout.keras(stem)
    with atomic_path(path) as tmp:
        model.save(tmp)
    write_json(layout.history(stem), history)
    return path


def read_history(model_path: Path) -> dict | None:
    """The history.json written beside a model, if there is one."""
    path = RunLayout.of_model(model_path).history(Path(model_path).stem)
    return json.loads(path.read_text()) if path.exists() else None
