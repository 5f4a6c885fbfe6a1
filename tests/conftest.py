"""Shared fixtures: small generated datasets in the formats tinykd reads."""

import gzip
import os
import pickle
import struct

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


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """The INT8 model zoo of tests/zoo.py, converted once per test session: name -> .tflite path."""
    from zoo import build_zoo

    from tinykd.core.console import quiet

    with quiet():
        return build_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="session")
def suite_models(request, tmp_path_factory):
    """The real-scale models of tests/model_suite.py as INT8 .tflite files: name -> path. They are kept in
    pytest's cache under a key of their sources and TensorFlow's version, so only a change reconverts."""
    from model_suite import convert_suite, source_key

    from tinykd.core.console import quiet

    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    folder = cache.mkdir("tinykd-model-suite") / source_key() if cache else tmp_path_factory.mktemp("suite")
    with quiet():
        return convert_suite(folder)


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
