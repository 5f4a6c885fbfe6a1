import pytest

from tinykd.core.config import PipelineConfig, config_from_dict, load_config
from tinykd.core.errors import TinykdError


def test_defaults_are_the_fashion_mnist_48_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config == PipelineConfig()
    assert (config.data.dataset, config.data.size, config.data.channels) == ("fashion_mnist", (48, 48), 1)
    assert (config.student.alpha, config.student.temperature) == (0.5, 3.0)
    assert config.teacher.label_smoothing == 0.05


def test_file_overrides_and_feature_pairs(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = "x"\n[data]\nimage_size = [32, 40]\n[student]\nalpha = 1\n'
                    '[[student.features]]\nteacher_layer = "a"\nstudent_layer = "b"\n')
    config = load_config(path)
    assert config.name == "x" and config.data.size == (32, 40) and config.student.alpha == 1
    assert config.student.features[0].teacher_layer == "a" and config.student.features[0].loss == "auto"


@pytest.mark.parametrize("raw, message", [
    ({"student": {"epochs": "ten"}}, "epochs = 'ten'"),
    ({"teacher": {"augment": 1}}, "augment = 1"),
    ({"nope": 1}, "unknown key 'nope'"),
    ({"data": 3}, r"\[data\] must be a table"),
    ({"student": {"features": [{"teacher_layer": "a"}]}}, "student_layer"),
    ({"data": {"channels": 2}}, "channels must be 1 or 3"),
    ({"data": {"image_size": [8]}}, r"data.image_size = \[8\] must be one number or \[height, width\]"),
    ({"data": {"image_size": [8, 8, 8]}}, "must be one number or"),
    ({"data": {"limit": -5}}, "data.limit = -5 must be 0"),
    ({"teacher": {"batch_size": 0}}, "batch_size must be positive"),
    ({"student": {"learning_rate": 0}}, "learning_rate must be positive"),
    ({"name": "../../escape"}, "name = '../../escape' must be a folder name"),
    ({"name": ""}, "name = '' must be a folder name"),
    ({"name": ".hidden"}, "must be a folder name"),
    ({"name": "a/b"}, "must be a folder name"),
    ({"student": {"architecture": "nope"}}, r"t.toml: student.architecture: unknown architecture 'nope'; known: "),
    ({"teacher": {"architecture": "nope"}}, "teacher.architecture: unknown architecture 'nope'"),
    ({"data": {"dataset": "imagenet"}}, "data.dataset: unknown dataset 'imagenet'; known: fashion_mnist"),
    ({"student": {"architecture": "cnn_teacher", "depth": 1}},
     "student.depth: architecture 'cnn_teacher' has no depth setting"),
    ({"student": {"depth": -1}}, "student.depth: depth must not be negative, got -1"),
    ({"tune": {"depth": [2, 1]}}, r"tune.depth = \[2, 1\] must be \[low, high\] with low <= high, at least 0"),
])
def test_bad_values(raw, message):
    with pytest.raises(TinykdError, match=message):
        config_from_dict(raw, "t.toml")


def test_command_line_overrides_are_checked_like_the_file(tmp_path, monkeypatch, capsys):
    from tinykd.cli import main

    monkeypatch.chdir(tmp_path)
    for args, message in [(["--name", "../x"], "command line: name = '../x' must be a folder name"),
                          (["--limit", "-1"], "command line: data.limit = -1 must be 0"),
                          (["--batch-size", "0"], "command line: batch_size must be positive")]:
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert main(["distill", "--architecture", "cnn_teacher", "--depth", "2"]) == 2
    assert "student.depth: architecture 'cnn_teacher' has no depth setting" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
