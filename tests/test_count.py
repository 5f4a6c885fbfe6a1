"""The counting recipe end to end on a synthetic set: k-fold cross-validation beats always predicting the
mean count, and the INT8 student comes out at the end."""

import json

import numpy as np
import pytest

from conftest import write_counting_set
from tinykd.cli import main
from tinykd.train.count import count_metrics, kfold_indices


def test_folds_partition_the_images_and_keep_each_count_in_every_fold():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 7 + [4])  # one image of 4 people: fewer than the folds
    folds = kfold_indices(labels, 5, seed=1)
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests) == list(range(23))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
        zeros, ones, twos = np.bincount(labels[test], minlength=5)[:3]
        assert zeros == 2 and ones == 1 and twos in (1, 2)  # 10, 5 and 7 images over 5 folds


def test_count_metrics():
    assert count_metrics([0, 2, 4], [0, 3, 1]) == {"exact_accuracy": pytest.approx(1 / 3), "mae": pytest.approx(4 / 3)}


def test_recipe_beats_the_mean_count_and_makes_an_int8_student(tmp_path, monkeypatch, capsys):
    write_counting_set(tmp_path / "photos")
    (tmp_path / "tinykd.toml").write_text(
        'name = "people"\n[data]\nimage_size = 32\n[teacher]\nepochs = 8\n[student]\nepochs = 12\n'
        '[quantize]\nrepresentative_samples = 50\n')
    monkeypatch.chdir(tmp_path)
    assert main(["count", "photos", "--folds", "3"]) == 0
    captured = capsys.readouterr()
    assert "10 of 200 images have no count yet" in captured.err
    result = json.loads((tmp_path / "runs/people/count_cv.json").read_text())
    assert result["images"] == 190 and len(result["folds"]) == 3
    student, baseline = result["mean"]["student"], result["mean"]["mean_baseline"]
    assert student["exact_accuracy"] > baseline["exact_accuracy"] + 0.15
    assert student["mae"] < baseline["mae"]
    assert (tmp_path / "runs/people/student_int8.tflite").is_file()
    assert "always the mean count" in captured.out


def test_too_few_images_for_the_folds(tmp_path, monkeypatch, capsys):
    write_counting_set(tmp_path / "photos", images=8, unlabelled=0)
    monkeypatch.chdir(tmp_path)
    for size in ("32", "48"):  # 48: resized, with an empty validation split
        assert main(["count", "photos", "--folds", "5", "--image-size", size]) == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1] == "tinykd: error: photos: 8 labelled images are too few for 5 folds", err
        assert "Traceback" not in err


def test_a_file_instead_of_the_folder_is_one_line(tmp_path, monkeypatch, capsys):
    write_counting_set(tmp_path / "photos", images=8, unlabelled=0)
    monkeypatch.chdir(tmp_path)
    assert main(["count", "photos/count.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "photos/count.json: not a folder" in err
