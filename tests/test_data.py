import gzip
import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_cifar_batches, write_idx, write_idx_dataset
from tinykd.train.data import FASHION_CLASSES, SYSTEM_DATA_DIR, load_dataset, read_idx
from tinykd.core.errors import TinykdError


def test_idx_roundtrip_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array, compress=False)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(read_idx(tmp_path / "a"), array)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-5], "IDX header says"),
    (lambda b: b"\x01" + b[1:], "bad magic"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "not supported"),
    (lambda b: b[:6], "truncated"),
])
def test_corrupt_idx_is_a_clear_error(tmp_path, damage, message):
    array = np.zeros((3, 2, 2), np.uint8)
    write_idx(tmp_path / "good", array, compress=False)
    (tmp_path / "bad").write_bytes(damage((tmp_path / "good").read_bytes()))
    with pytest.raises(TinykdError, match=message) as err:
        read_idx(tmp_path / "bad")
    assert "bad" in str(err.value)


def test_broken_gzip_is_a_clear_error(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(TinykdError, match="cannot read IDX"):
        read_idx(tmp_path / "x.gz")


def test_fashion_mnist_from_data_dir_prepared_and_split(tmp_path, no_system_data):
    write_idx_dataset(tmp_path / "mine" / "fashion-mnist", n_train=50, n_test=10)
    ds = load_dataset("fashion_mnist", (48, 48), 1, validation_split=0.2, seed=3, data_dir=str(tmp_path / "mine"))
    assert ds.x_train.shape == (40, 48, 48, 1) and ds.x_val.shape == (10, 48, 48, 1)
    assert ds.x_test.shape == (10, 48, 48, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.class_names == FASHION_CLASSES
    again = load_dataset("fashion_mnist", (48, 48), 1, validation_split=0.2, seed=3, data_dir=str(tmp_path / "mine"))
    assert np.array_equal(ds.y_val, again.y_val), "the same seed gives the same split"


def test_search_order_data_dir_before_env(tmp_path, monkeypatch, no_system_data):
    write_idx_dataset(tmp_path / "a", n_train=30)
    write_idx_dataset(tmp_path / "b", n_train=40)
    monkeypatch.setenv("TINYKD_DATA", str(tmp_path / "b"))
    assert load_dataset("mnist", (28, 28), validation_split=0).source == str(tmp_path / "b")
    chosen = load_dataset("mnist", (28, 28), validation_split=0, data_dir=str(tmp_path / "a"))
    assert chosen.source == str(tmp_path / "a") and len(chosen.x_train) == 30


def test_missing_dataset_names_where_it_looked(no_system_data):
    with pytest.raises(TinykdError, match="dataset-fashion-mnist") as err:
        load_dataset("fashion_mnist")
    assert "download failed" in str(err.value)


def test_mismatched_image_and_label_counts(tmp_path, no_system_data):
    write_idx_dataset(tmp_path, n_train=20)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(TinykdError, match="20 images but 19 labels"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path))


def test_cifar10_batches_rgb_and_grayscale(tmp_path, no_system_data):
    write_cifar_batches(tmp_path / "cifar-10-batches-py", n=8)
    rgb = load_dataset("cifar10", (32, 32), 3, validation_split=0.25, data_dir=str(tmp_path))
    assert rgb.x_train.shape == (30, 32, 32, 3) and rgb.x_test.shape == (8, 32, 32, 3)
    gray = load_dataset("cifar10", (16, 16), 1, data_dir=str(tmp_path))
    assert gray.input_shape == (16, 16, 1)


def test_corrupt_cifar_batch(tmp_path, no_system_data):
    write_cifar_batches(tmp_path / "cifar-10-batches-py", n=4)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(TinykdError, match="data_batch_3: not a CIFAR-10 batch"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_digits_for_quick_runs():
    ds = load_dataset("digits", (8, 8), validation_split=0.1)
    assert ds.num_classes == 10 and ds.input_shape == (8, 8, 1)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 1797


def test_unknown_dataset():
    with pytest.raises(TinykdError, match="unknown dataset 'fashion'.*fashion_mnist"):
        load_dataset("fashion")


def _write_images(folder, names, size=(12, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full(size + (3,), 20 * i, np.uint8)).save(folder / name)


def test_folder_dataset(tmp_path):
    _write_images(tmp_path / "cats", [f"{i}.png" for i in range(5)])
    _write_images(tmp_path / "dogs", [f"{i}.jpg" for i in range(5)], size=(20, 16))
    ds = load_dataset(f"folder:{tmp_path}", (16, 16), 3, validation_split=0)
    assert ds.class_names == ["cats", "dogs"] and ds.input_shape == (16, 16, 3)
    assert len(ds.x_train) + len(ds.x_test) == 10


def test_count_dataset_skips_and_reports_nulls(tmp_path, caplog):
    names = [f"p{i}.png" for i in range(8)]
    _write_images(tmp_path, names)
    counts = {name: i % 3 for i, name in enumerate(names[:6])} | {names[6]: None, names[7]: None}
    counts[names[0]] = 9  # "4 or more"
    (tmp_path / "count.json").write_text(json.dumps(counts))
    ds = load_dataset(f"count:{tmp_path}", (16, 16), 1, validation_split=0)
    assert ds.unlabelled == 2 and len(ds.x_train) + len(ds.x_test) == 6
    assert ds.class_names[-1] == "4+" and 4 in set(ds.y_train) | set(ds.y_test)
    warned = [r for r in caplog.records if r.name == "tinykd.train.data" and r.levelname == "WARNING"]
    assert len(warned) == 1 and "2 of 8 images have no count yet" in warned[0].getMessage()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"a.png": -1}', "expected a whole number"),
    ('{"ghost.png": 1, "p0.png": 2}', 'lists "ghost.png"'),
    ('{"p0.png": true}', 'count for "p0.png" is true; expected a whole number from 0 to 10,000 or null'),
    ('{"p0.png": 10001}', "is 10001; expected a whole number from 0 to 10,000"),
    ('{"../p0.png": 1}', '"../p0.png" is not the name of a file in'),
])
def test_bad_count_json(tmp_path, content, message):
    _write_images(tmp_path, ["p0.png"])
    (tmp_path / "count.json").write_text(content)
    with pytest.raises(TinykdError, match=message):
        load_dataset(f"count:{tmp_path}")


def test_real_fashion_mnist():
    """The Debian package dataset-fashion-mnist, which `make` installs."""
    ds = load_dataset("fashion_mnist", (48, 48), 1, validation_split=0.1, limit=500)
    assert ds.source == str(SYSTEM_DATA_DIR / "fashion-mnist")
    assert ds.x_train.shape == (450, 48, 48, 1) and set(ds.y_train) <= set(range(10))
    with gzip.open(SYSTEM_DATA_DIR / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz") as f:
        assert len(f.read()) == 8 + 10000
