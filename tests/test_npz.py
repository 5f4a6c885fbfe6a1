"""`npz:PATH` datasets: features of any shape, split like the image sets, and every bad file a one-line error."""

import numpy as np
import pytest

from conftest import sensor_windows, tone_features, write_npz
from tinykd.core.config import config_from_dict
from tinykd.core.errors import TinykdError
from tinykd.train import pipeline
from tinykd.train.data import check_dataset_name, load_dataset


def tabular(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype(np.float64), rng.integers(0, 4, n)


@pytest.mark.parametrize("make, shape", [(tone_features, (16, 8, 1)), (sensor_windows, (64, 3)), (tabular, (5,))])
def test_features_keep_their_shape_and_values(tmp_path, make, shape):
    write_npz(tmp_path / "d.npz", make, 50, 10)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", image_size=(48, 48), channels=3, validation_split=0.2, seed=3)
    assert ds.input_shape == shape, "image_size and channels do not apply to npz features"
    assert len(ds.x_train) == 40 and len(ds.x_val) == 10 and len(ds.x_test) == 10
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    stored = make(10, seed=2)[0]
    assert np.array_equal(ds.x_test, stored.astype(np.float32)), "no scaling, no resizing"
    assert ds.source == str(tmp_path / "d.npz")


def test_split_limit_and_seed_work_as_for_images(tmp_path):
    write_npz(tmp_path / "d.npz", sensor_windows, 100, 40)
    name = f"npz:{tmp_path / 'd.npz'}"
    a = load_dataset(name, validation_split=0.25, seed=7, limit=60)
    b = load_dataset(name, validation_split=0.25, seed=7, limit=60)
    c = load_dataset(name, validation_split=0.25, seed=8, limit=60)
    assert len(a.x_train) == 45 and len(a.x_val) == 15 and len(a.x_test) == 12
    assert np.array_equal(a.x_val, b.x_val), "the same seed gives the same split"
    assert not np.array_equal(a.x_val, c.x_val)


def test_class_names_and_label_forms(tmp_path):
    x, y = sensor_windows(30)
    write_npz(tmp_path / "d.npz", sensor_windows, 30, 6, y_train=y.astype(np.float32)[:, None],
              class_names=np.array(["walk", "run", "sit"]))
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", validation_split=0)
    assert ds.class_names == ["walk", "run", "sit"] and ds.num_classes == 3
    assert np.array_equal(np.sort(ds.y_train), np.sort(y)), "(N, 1) whole-number floats are labels"
    write_npz(tmp_path / "e.npz", sensor_windows, 30, 6)
    assert load_dataset(f"npz:{tmp_path / 'e.npz'}").class_names == ["0", "1", "2"]


def test_npz_is_a_known_dataset_form():
    check_dataset_name("npz:any/where.npz")
    with pytest.raises(TinykdError, match="npz:PATH"):
        check_dataset_name("nope")


X, Y = sensor_windows(8)

BAD = [
    ("missing", None, "no such .npz dataset file"),
    ("empty", b"", "the file is empty, not a .npz dataset"),
    ("text", b"x_train,y_train\n1,2\n", "not a .npz file (not a zip archive)"),
    ("npy", "npy", "not a .npz file (not a zip archive)"),
    ("damaged", "damaged", "cannot read the .npz file, it is damaged"),
    ("no-test", dict(x_test=None, y_test=None), "no array x_test, y_test (has x_train, y_train)"),
    ("lengths", dict(y_train=Y[:5]), "x_train has 8 samples but y_train has 5 labels"),
    ("shapes", dict(x_test=X[:, :32]), "x_train samples have shape (64, 3) but x_test samples (32, 3)"),
    ("nan", dict(x_train=np.where(np.arange(8)[:, None, None] == 6, np.nan, X)),
     "x_train has NaN or infinite values (first in sample 6)"),
    ("inf", dict(x_test=np.full_like(X, np.inf)), "x_test has NaN or infinite values"),
    ("negative", dict(y_test=-Y - 1), "y_test has label -"),
    ("fraction", dict(y_train=np.where(np.arange(8) == 3, 0.5, Y)),
     "y_train holds 0.5 (sample 3); labels must be whole numbers"),
    ("text-labels", dict(y_train=Y.astype(str)), "y_train holds <U21 values; labels must be whole numbers"),
    ("one-hot", dict(y_train=np.eye(3)[Y]), "y_train has shape (8, 3); want one whole-number label per sample"),
    ("text-x", dict(x_test=X.astype(str)), "x_test holds <U32 values; features must be numbers"),
    ("flat-x", dict(x_train=X[:, 0, 0]), "x_train has shape (8,); want one row per sample"),
    ("no-rows", dict(x_train=X[:0], y_train=Y[:0]), "x_train has no samples"),
    ("one-class", dict(y_train=0 * Y, y_test=0 * Y), "every label is 0; a classifier needs at least two classes"),
    ("few-names", dict(class_names=np.array(["a", "b"]), y_test=np.full(8, 2)),
     "class_names has 2 names but the labels go up to 2"),
    ("number-names", dict(class_names=np.arange(3)), "class_names must be a 1-D array of strings"),
    ("pickled", dict(class_names=np.array(["a", 1, None], dtype=object)), "holds pickled objects"),
]


@pytest.mark.parametrize("name, content, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = tmp_path / f"{name}.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "npy":
        with open(path, "wb") as f:
            np.save(f, X)
    elif content == "damaged":  # the zip directory intact, an array's header overwritten
        np.savez(path, x_train=X, y_train=Y, x_test=X, y_test=Y)
        data = bytearray(path.read_bytes())
        data[70:80] = bytes(10)
        path.write_bytes(bytes(data))
    elif isinstance(content, dict):
        arrays = dict(x_train=X, y_train=Y, x_test=X, y_test=Y) | content
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(TinykdError) as err:
        load_dataset(f"npz:{path}")
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_a_kept_model_is_remade_only_when_the_file_changes(tmp_path):
    """stages.json keys an npz run on the file's content, not on its name nor on the image size."""
    write_npz(tmp_path / "d.npz", sensor_windows, 20, 5)
    config = config_from_dict({"name": "r", "runs_dir": str(tmp_path / "runs"),
                               "data": {"dataset": f"npz:{tmp_path / 'd.npz'}"}})
    teacher = config.layout.teacher
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"kept")
    pipeline._record(teacher, pipeline.stage_settings(pipeline._for_data(config, "teacher"), [], "teacher"))

    def no_training():
        raise AssertionError("a kept teacher made from this file is reused")

    config.data.image_size = 96
    assert pipeline.train_stage(config, no_training) == teacher
    write_npz(tmp_path / "d.npz", sensor_windows, 21, 5)
    with pytest.raises(TinykdError, match="teacher.keras: kept from an earlier run made with data.sha256 = "):
        pipeline.train_stage(config, no_training)
