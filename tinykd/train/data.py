"""Datasets -> (x, y) numpy arrays + class names.

Images come out as float32 in [0, 1], shape (N, height, width, channels); labels as int32.
Named datasets: fashion_mnist, mnist, cifar10, digits; and `folder:PATH` (one sub-folder per class)
and `count:PATH` (images + count.json giving the number of people in each). `npz:PATH` datasets
(tinykd.train.npz) are not images: their features keep the shape and values they are stored with.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import read_parsed
from tinykd.core.errors import TinykdError
from tinykd.train.npz import is_npz, load_npz, npz_path

log = logging.getLogger(__name__)

SYSTEM_DATA_DIR = Path("/usr/share/datasets")
KERAS_DATA_DIR = Path.home() / ".keras" / "datasets"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
COUNT_FILE = "count.json"
COUNT_CLASSES = 5
"""A counting dataset has classes 0 .. COUNT_CLASSES-2 people and "COUNT_CLASSES-1 or more"."""

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass
class Dataset:
    """Train / validation / test splits of a dataset, already prepared for the models."""

    name: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    """Where the data was read from, for the user and the reports."""
    unlabelled: int = 0
    """Images skipped because they have no label yet (count datasets)."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(name: str, image_size=(48, 48), channels: int = 1, validation_split: float = 0.1,
                 seed: int = 0, data_dir: str | None = None, limit: int = 0) -> Dataset:
    """Load a dataset by name, resize it, set its channels, scale it to [0, 1] and split it.

    The validation split is taken from the training images with `seed`, so the same seed gives the
    same split. `limit` keeps at most that many training images (and a proportional test set).
    An `npz:PATH` dataset is only split: `image_size` and `channels` do not apply to its features.
    """
    raw_train, raw_test, class_names, source, unlabelled = _load_raw(name, data_dir, seed)
    (x_train, y_train), (x_test, y_test) = raw_train, raw_test
    rng = np.random.default_rng(seed)
    if limit and limit < len(x_train):
        keep = rng.permutation(len(x_train))[:limit]
        x_train, y_train = x_train[keep], y_train[keep]
        test_keep = max(1, min(len(x_test), limit // 5))
        x_test, y_test = x_test[:test_keep], y_test[:test_keep]
    order = rng.permutation(len(x_train))
    n_val = int(round(len(x_train) * validation_split))
    log.debug(f"{name}: {len(x_train) - n_val:,} training and {n_val:,} validation images (seed {seed}), "
              f"{len(x_test):,} test images")
    val, train = order[:n_val], order[n_val:]

    def prepare(x):
        return x if is_npz(name) else prepare_images(x, image_size, channels)

    return Dataset(name=name, class_names=class_names,
                   x_train=prepare(x_train[train]), y_train=y_train[train].astype(np.int32),
                   x_val=prepare(x_train[val]), y_val=y_train[val].astype(np.int32),
                   x_test=prepare(x_test), y_test=y_test.astype(np.int32),
                   source=source, unlabelled=unlabelled)


def prepare_images(images: np.ndarray, image_size=(48, 48), channels: int = 1) -> np.ndarray:
    """uint8 images (N, H, W[, C]) -> float32 (N, h, w, channels) in [0, 1], bilinear resize."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.shape[-1] == 3 and channels == 1:
        x = x @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    elif x.shape[-1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=-1)
    if len(x) == 0:
        return np.zeros((0, *image_size, channels), np.float32)
    if tuple(x.shape[1:3]) != tuple(image_size):
        import tensorflow as tf

        batches = [tf.image.resize(x[i:i + 4096], image_size, antialias=True).numpy()
                   for i in range(0, len(x), 4096)]
        x = np.concatenate(batches)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def dataset_names() -> list[str]:
    return ["fashion_mnist", "mnist", "cifar10", "digits", "folder:PATH", "count:PATH", "npz:PATH"]


def check_dataset_name(name: str) -> None:
    """An unknown name is an error listing the known ones."""
    if name not in dataset_names() and not name.startswith(("folder:", "count:", "npz:")):
        raise TinykdError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")


def _load_raw(name: str, data_dir: str | None, seed: int):
    check_dataset_name(name)
    if name in ("fashion_mnist", "mnist"):
        train, test, source = _load_idx_dataset(name, data_dir)
        classes = FASHION_CLASSES if name == "fashion_mnist" else [str(i) for i in range(10)]
        return train, test, classes, source, 0
    if name == "cifar10":
        train, test, source = _load_cifar10(data_dir)
        return train, test, CIFAR10_CLASSES, source, 0
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images * (255.0 / 16.0)).astype(np.uint8)
        train, test = _split_test((x, digits.target), seed=0)
        return train, test, [str(i) for i in range(10)], "scikit-learn digits", 0
    if name.startswith("folder:"):
        x, y, classes = _load_folder(Path(name[len("folder:"):]))
        train, test = _split_test((x, y), seed=0)
        return train, test, classes, name[len("folder:"):], 0
    if is_npz(name):
        train, test, classes = load_npz(npz_path(name))
        return train, test, classes, str(npz_path(name)), 0
    x, y, unlabelled = _load_count(Path(name[len("count:"):]))  # count:PATH, the last name check_dataset_name knows
    train, test = _split_test((x, y), seed=0)
    classes = [str(i) for i in range(COUNT_CLASSES - 1)] + [f"{COUNT_CLASSES - 1}+"]
    return train, test, classes, name[len("count:"):], unlabelled


def _split_test(xy, seed: int, test_fraction: float = 0.2):
    """A fixed test split for datasets that do not ship one."""
    x, y = xy
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    return (x[order[n_test:]], y[order[n_test:]]), (x[order[:n_test]], y[order[:n_test]])


def _search_dirs(data_dir: str | None, subdir: str) -> list[Path]:
    """Where to look, in order: --data-dir, $TINYKD_DATA, the Debian dataset dir, ~/.keras/datasets."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("TINYKD_DATA"):
        roots.append(Path(os.environ["TINYKD_DATA"]))
    roots += [SYSTEM_DATA_DIR, KERAS_DATA_DIR]
    dirs = []
    for root in roots:
        dirs += [root / subdir, root]
    log.debug(f"looking for {subdir or 'the files'} in {', '.join(map(str, dirs))}")
    return dirs


def _load_idx_dataset(name: str, data_dir: str | None):
    subdir = name.replace("_", "-")
    for folder in _search_dirs(data_dir, subdir):
        files = {split: [_find_file(folder, stem) for stem in stems] for split, stems in IDX_FILES.items()}
        if all(all(files[split]) for split in files):
            train = tuple(read_idx(p) for p in files["train"])
            test = tuple(read_idx(p) for p in files["test"])
            for (x, y), split in ((train, "train"), (test, "test")):
                if len(x) != len(y):
                    raise TinykdError(f"{folder}: {split} has {len(x)} images but {len(y)} labels")
            return train, test, str(folder)
    if name == "mnist":
        npz = next((d / "mnist.npz" for d in _search_dirs(data_dir, "") if (d / "mnist.npz").exists()), None)
        if npz is not None:
            with np.load(npz) as f:
                return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"]), str(npz)
    return _keras_download(name)


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format, optionally gzipped) into a numpy array.

    Layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, each
    dimension as a big-endian uint32, then the data in row-major order.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TinykdError(f"{path}: cannot read IDX file: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise TinykdError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise TinykdError(f"{path}: IDX type 0x{data[2]:02x} is not supported (only unsigned bytes)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise TinykdError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise TinykdError(f"{path}: IDX header says {expected} bytes of data for shape {dims}, "
                          f"file has {len(data) - header}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _load_cifar10(data_dir: str | None):
    for folder in _search_dirs(data_dir, "cifar-10-batches-py"):
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        if all(p.is_file() for p in train_files) and (folder / "test_batch").is_file():
            batches = [read_cifar_batch(p) for p in train_files]
            x = np.concatenate([b[0] for b in batches])
            y = np.concatenate([b[1] for b in batches])
            return (x, y), read_cifar_batch(folder / "test_batch"), str(folder)
    return _keras_download("cifar10")


def read_cifar_batch(path: str | Path):
    """Read one batch of CIFAR-10's Python version: uint8 images (N, 32, 32, 3) and labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise TinykdError(f"{path}: not a CIFAR-10 batch file ({type(exc).__name__}: {exc})") from None
    if len(images) != len(labels):
        raise TinykdError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _keras_download(name: str):
    """Last resort: Keras downloads the dataset (needs internet)."""
    import keras

    log.warning(f"{name} not found locally; trying the Keras download")
    try:
        train, test = getattr(keras.datasets, name).load_data()
    except Exception as exc:
        raise TinykdError(
            f"{name}: not found in --data-dir, $TINYKD_DATA, {SYSTEM_DATA_DIR} or {KERAS_DATA_DIR}, "
            f"and the download failed ({type(exc).__name__}). "
            + ("Install the Debian package dataset-fashion-mnist." if name == "fashion_mnist" else
               "Put the dataset files in a folder and pass --data-dir.")) from None
    return (train[0], train[1].reshape(-1)), (test[0], test[1].reshape(-1)), "Keras download"


def read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise TinykdError(f"{path}: cannot read image ({exc})") from None


def _stack_images(paths: list[Path]) -> np.ndarray:
    images = [read_image(p) for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:  # different sizes: bring them to the first one's size before resizing
        h, w = images[0].shape[:2]
        from PIL import Image

        images = [np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR)) for im in images]
    return np.stack(images)


def _load_folder(root: Path):
    if not root.is_dir():
        raise TinykdError(f"{root}: no such folder (folder:PATH wants one sub-folder per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise TinykdError(f"{root}: needs at least two class sub-folders, found {len(classes)}")
    paths, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise TinykdError(f"{root / cls}: class folder has no images")
        paths += files
        labels += [label] * len(files)
    return _stack_images(paths), np.array(labels), classes


MAX_COUNT = 10_000
"""The most people count.json may give one image."""


def read_count_file(root: Path) -> dict:
    """count.json: {image file name: number of people, or null when not labelled yet}."""
    path = root / COUNT_FILE
    if not root.is_dir():
        raise TinykdError(f"{root}: not a folder (the folder with the images and {COUNT_FILE} is wanted)")
    counts = read_parsed(path, json.loads, "JSON", f"missing (count:PATH wants images plus {COUNT_FILE})")
    if not isinstance(counts, dict):
        raise TinykdError(f"{path}: must map image file names to counts")
    for file, count in counts.items():
        if file in ("", ".", "..") or Path(file).name != file or "\\" in file:
            raise TinykdError(f"{path}: {json.dumps(file)} is not the name of a file in {root} (no folders, no absolute "
                              "paths)")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or not 0 <= count <= MAX_COUNT):
            raise TinykdError(f"{path}: count for {json.dumps(file)} is {json.dumps(count)}; expected a whole number from 0 to "
                              f"{MAX_COUNT:,} or null")
    return counts


def _load_count(root: Path):
    counts = read_count_file(root)
    labelled = sorted(f for f, c in counts.items() if c is not None)
    unlabelled = len(counts) - len(labelled)
    missing = [f for f in labelled if not (root / f).is_file()]
    if missing:
        raise TinykdError(f"{root / COUNT_FILE}: lists {json.dumps(missing[0])}, which is not in {root}")
    if unlabelled:
        log.warning(f"{root / COUNT_FILE}: {unlabelled} of {len(counts)} images have no count yet "
                    f"(null); training on the {len(labelled)} labelled ones")
    if len(labelled) < 2:
        raise TinykdError(f"{root / COUNT_FILE}: only {len(labelled)} labelled images; label more first")
    labels = np.array([min(counts[f], COUNT_CLASSES - 1) for f in labelled])
    return _stack_images([root / f for f in labelled]), labels, unlabelled
