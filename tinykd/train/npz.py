"""`npz:PATH` datasets: features of any shape (MFCCs, sensor windows, vectors) in one numpy `.npz` file.

The file holds `x_train`, `y_train`, `x_test`, `y_test` and optionally `class_names` (strings, saved
without pickling). Features are used as stored, as float32: no resizing, no scaling. Labels are whole
numbers from 0; without `class_names` the classes are named by their numbers.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import check_model_file
from tinykd.core.errors import TinykdError

PREFIX = "npz:"
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
WANTED = "a .npz file with arrays x_train, y_train, x_test, y_test and optionally class_names"


def is_npz(name: str) -> bool:
    return name.startswith(PREFIX)


def npz_path(name: str) -> Path:
    return Path(name[len(PREFIX):])


def npz_sha256(name: str) -> str:
    """The file's content hash: what a model trained on it depends on."""
    path = _check_file(npz_path(name))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_npz(path: Path):
    """(x_train, y_train), (x_test, y_test), class names; every fault is one line naming the file."""
    arrays = _read_arrays(_check_file(path))
    x_train, x_test = (_features(path, arrays, name) for name in ("x_train", "x_test"))
    y_train, y_test = (_labels(path, arrays, name) for name in ("y_train", "y_test"))
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise TinykdError(f"{path}: x_{split} has {len(x)} samples but y_{split} has {len(y)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise TinykdError(f"{path}: x_train samples have shape {x_train.shape[1:]} but x_test samples "
                          f"{x_test.shape[1:]}; both splits need the same feature shape")
    highest = int(max(y_train.max(), y_test.max()))
    class_names = _class_names(path, arrays, highest)
    return (x_train, y_train), (x_test, y_test), class_names


def _check_file(path: Path) -> Path:
    check_model_file(path, ".npz dataset")
    if not zipfile.is_zipfile(path):
        raise TinykdError(f"{path}: not a .npz file (not a zip archive); npz:PATH wants {WANTED}")
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = [name for name in ARRAYS if name not in names]
            if missing:
                raise TinykdError(f"{path}: no array {', '.join(missing)} (has {', '.join(sorted(names)) or 'none'}); "
                                  f"npz:PATH wants {WANTED}")
            return {name: npz[name] for name in (*ARRAYS, "class_names") if name in names}
    except TinykdError:
        raise
    except Exception as exc:  # a damaged archive or array header can raise almost anything
        if isinstance(exc, ValueError) and "pickle" in str(exc):
            raise TinykdError(f"{path}: holds pickled objects, which tinykd does not load; save numbers, and "
                              "class_names as a string array (np.array([...], dtype=str))") from None
        raise TinykdError(f"{path}: cannot read the .npz file, it is damaged ({type(exc).__name__}: {exc})") from None


def _features(path: Path, arrays: dict, name: str) -> np.ndarray:
    x = arrays[name]
    if x.dtype.kind not in "iuf":
        raise TinykdError(f"{path}: {name} holds {x.dtype} values; features must be numbers")
    if x.ndim < 2:
        raise TinykdError(f"{path}: {name} has shape {x.shape}; want one row per sample, (samples, features...)")
    if len(x) == 0:
        raise TinykdError(f"{path}: {name} has no samples")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        sample = int(np.argmin(np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise TinykdError(f"{path}: {name} has NaN or infinite values (first in sample {sample})")
    return x


def _labels(path: Path, arrays: dict, name: str) -> np.ndarray:
    y = arrays[name]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise TinykdError(f"{path}: {name} has shape {y.shape}; want one whole-number label per sample, "
                          "shape (samples,) (not one-hot)")
    if y.dtype.kind not in "iuf":
        raise TinykdError(f"{path}: {name} holds {y.dtype} values; labels must be whole numbers from 0")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            first = int(np.argmin(whole))
            raise TinykdError(f"{path}: {name} holds {y[first]:g} (sample {first}); labels must be whole numbers "
                              "from 0")
    if len(y) and y.min() < 0:
        raise TinykdError(f"{path}: {name} has label {y.min():g}; labels must be whole numbers from 0")
    return y.astype(np.int64)


def _class_names(path: Path, arrays: dict, highest: int) -> list[str]:
    if "class_names" not in arrays:
        if highest < 1:
            raise TinykdError(f"{path}: every label is 0; a classifier needs at least two classes")
        return [str(i) for i in range(highest + 1)]
    names = arrays["class_names"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise TinykdError(f"{path}: class_names must be a 1-D array of strings, got {names.dtype} of shape "
                          f"{names.shape}")
    if len(names) < 2:
        raise TinykdError(f"{path}: class_names has {len(names)} name(s); a classifier needs at least two classes")
    if highest >= len(names):
        raise TinykdError(f"{path}: class_names has {len(names)} names but the labels go up to {highest}; "
                          f"give one name per class (labels 0 to {len(names) - 1})")
    return [str(n.decode() if isinstance(n, bytes) else n) for n in names]
