"""Shared fixtures: small generated datasets in the formats tinykd reads."""

import gzip
import hashlib
import os
import pickle
import struct
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


def write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    """Write an unsigned-byte IDX file (the MNIST format)."""
    array = np.asarray(array, np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)


def write_idx_dataset(folder, n_train=60, n_test=20, size=28, seed=0) -> None:
    """A tiny dataset in the Fashion-MNIST file layout: the label is drawn as the image's brightness."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (labels[:, None, None] * 25 + rng.integers(0, 5, (n, size, size))).astype(np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", labels)


def write_cifar_batches(folder, n=20, seed=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Hide the machine's datasets (Debian package, ~/.keras) and forbid downloads."""
    import tinykd.train.data as data

    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "no-system-data")
    monkeypatch.setattr(data, "KERAS_DATA_DIR", tmp_path / "no-keras-data")
    monkeypatch.delenv("TINYKD_DATA", raising=False)

    def offline(*args, **kwargs):
        raise OSError("no internet")

    import keras

    for name in ("fashion_mnist", "mnist", "cifar10"):
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data", offline)
    return tmp_path


def converted_models_folder(request, tmp_path_factory, module) -> Path:
    """Where a module of test models keeps its INT8 .tflite files: pytest's cache, under a hash of the
    module, tinykd's converter and TensorFlow's version (only a change converts again; the workers of one
    run share them), or a temporary folder with -p no:cacheprovider."""
    import tensorflow as tf

    import tinykd.train.quantize

    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp(module.__name__)
    digest = hashlib.sha256(tf.__version__.encode())
    for source in (module.__file__, tinykd.train.quantize.__file__):
        digest.update(Path(source).read_bytes())
    return cache.mkdir(f"tinykd-{module.__name__}") / digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def zoo(request, tmp_path_factory):
    """The INT8 model zoo of tests/zoo.py: name -> .tflite path."""
    import zoo as zoo_models

    from tinykd.core.console import quiet

    folder = converted_models_folder(request, tmp_path_factory, zoo_models)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet():
        return zoo_models.build_zoo(folder)


@pytest.fixture(scope="session")
def suite_models(request, tmp_path_factory):
    """The real-scale models of tests/model_suite.py as INT8 .tflite files: name -> path."""
    import model_suite

    from tinykd.core.console import quiet

    with quiet():
        return model_suite.convert_suite(converted_models_folder(request, tmp_path_factory, model_suite))


def write_counting_set(folder, images=200, size=32, most=5, unlabelled=10, seed=0) -> dict:
    """Synthetic people counting: N bright 5x5 "figures" on a noisy background, N in 0..most; the last
    `unlabelled` images have a null count. Returns count.json's content."""
    import json

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = {}
    for i in range(images):
        n = int(rng.integers(0, most + 1))
        pixels = rng.integers(0, 60, (size, size)).astype(np.uint8)
        cells = rng.permutation(((size - 2) // 6) ** 2)[:n]
        for cell in cells:
            row, col = divmod(int(cell), (size - 2) // 6)
            pixels[1 + 6 * row:6 + 6 * row, 1 + 6 * col:6 + 6 * col] = rng.integers(180, 256)
        Image.fromarray(pixels).save(folder / f"photo{i:03d}.png")
        counts[f"photo{i:03d}.png"] = None if i >= images - unlabelled else n
    (folder / "count.json").write_text(json.dumps(counts, indent=1))
    return counts


TONES_HZ = (300.0, 700.0, 1500.0)


def tone_features(n, frames=16, bands=8, rate=4000, hop=128, seed=0):
    """Synthetic keyword spotting: each clip is one of TONES_HZ (pitch jittered, random phase and level) in
    noise, turned into log mel-like band energies with numpy: (n, frames, bands, 1) features, labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(TONES_HZ), n)
    t = np.arange(frames * hop) / rate
    pitch = np.asarray(TONES_HZ)[labels] * rng.uniform(0.95, 1.05, n)
    clips = (rng.uniform(0.3, 1.0, (n, 1)) * np.sin(2 * np.pi * pitch[:, None] * t + rng.uniform(0, 6.3, (n, 1)))
             + rng.normal(0, 0.3, (n, t.size)))
    spectrum = np.abs(np.fft.rfft(clips.reshape(n, frames, hop) * np.hanning(hop), axis=-1)) ** 2
    mel = np.linspace(0, 2595 * np.log10(1 + rate / 2 / 700), bands + 2)
    edges = 700 * (10 ** (mel / 2595) - 1) / (rate / 2) * (hop // 2)  # band edges in FFT bins
    bins = np.arange(hop // 2 + 1)
    filters = np.stack([np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
                        for lo, mid, hi in zip(edges, edges[1:], edges[2:])], axis=1)
    return np.log(spectrum @ filters + 1e-3)[..., None].astype(np.float32), labels


def sensor_windows(n, length=64, channels=3, seed=0):
    """Synthetic sensor windows: class c is a slow wave on axis c plus noise on every axis;
    (n, length, channels) windows and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, channels, n)
    x = rng.normal(0, 0.5, (n, length, channels))
    wave = np.sin(2 * np.pi * rng.uniform(2, 4, (n, 1)) * np.arange(length) / length + rng.uniform(0, 6.3, (n, 1)))
    x[np.arange(n), :, labels] += 1.5 * wave
    return x.astype(np.float32), labels


def feature_vectors(n, features=12, classes=3, seed=0):
    """Synthetic tabular data: class c raises feature c above the noise; (n, features) vectors and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.normal(0, 1, (n, features))
    x[np.arange(n), labels] += 3
    return x.astype(np.float32), labels


def write_npz(path, make, n_train, n_test, **arrays) -> None:
    """An npz: dataset from a generator (`tone_features`, `sensor_windows`, `feature_vectors`); `arrays` add or
    replace arrays."""
    x_train, y_train = make(n_train, seed=1)
    x_test, y_test = make(n_test, seed=2)
    np.savez(path, **(dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test) | arrays))
