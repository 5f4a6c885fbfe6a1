"""`tinykd predict`: the training preprocessing on the user's images, classes and probabilities, and one
error per unreadable image without losing the others."""

import json

import numpy as np
import pytest
from PIL import Image

from tinykd.cli import main
from tinykd.train.data import prepare_images
from tinykd.train.evaluate import quantize_input
from tinykd.tflite.reader import read_model


@pytest.fixture
def images(tmp_path):
    """Three readable images of different sizes and modes, and one file that is not an image."""
    rng = np.random.default_rng(0)
    paths = []
    for name, size, mode in (("a.png", (40, 30), "L"), ("b.jpg", (64, 64), "RGB"), ("c.png", (24, 24), "RGB")):
        channels = 3 if mode == "RGB" else 1
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
        Image.fromarray(pixels, mode).save(tmp_path / name)
        paths.append(tmp_path / name)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    return paths, broken


def test_int8_model_predicts_like_its_interpreter_on_the_same_preprocessing(zoo, images, capsys):
    paths, _ = images
    model_path = zoo["plain_conv"]  # 24x24x1 input, softmax head
    assert main(["predict", str(model_path), *map(str, paths), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(p) for p in paths]
    from ai_edge_litert.interpreter import Interpreter

    model = read_model(model_path)
    (tensor,) = model.input_tensors()
    interpreter = Interpreter(model_content=model.data)
    interpreter.allocate_tensors()
    for path, result in zip(paths, results):
        pixels = np.asarray(Image.open(path).convert("RGB"))[None]
        x = quantize_input(prepare_images(pixels, (24, 24), 1), tensor.scale[0], tensor.zero_point[0])
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        expected = int(np.argmax(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])))
        assert result["class"] == str(expected)
        assert len(result["top"]) == 3 and result["top"][0] == [result["class"], result["probability"]]
        assert 0 < result["probability"] <= 1


def test_keras_model_with_class_names_from_its_run(images, tmp_path, capsys):
    from tinykd.train.models import build_model

    paths, _ = images
    run = tmp_path / "run"
    run.mkdir()
    build_model("tiny_conv", (32, 32, 3), 4, 1.0).save(run / "student.keras")
    names = ["cat", "dog", "bird", "fish"]
    (run / "dataset.json").write_text(json.dumps({"class_names": names}))
    assert main(["predict", str(run / "student.keras"), *map(str, paths), "--top", "4", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    for result in results:
        assert result["class"] in names
        assert sum(p for _, p in result["top"]) == pytest.approx(1.0, abs=1e-4)  # softmax of the logits
    assert main(["predict", str(run / "student.keras"), str(paths[0])]) == 0
    assert str(paths[0]) in capsys.readouterr().out


def test_an_unreadable_image_is_reported_and_the_others_still_predicted(zoo, images, capsys):
    paths, broken = images
    code = main(["predict", str(zoo["plain_conv"]), str(paths[0]), str(broken), str(paths[1]), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and "broken.png: cannot read image" in captured.err
    results = json.loads(captured.out)
    assert "error" in results[1] and "class" in results[0] and "class" in results[2]


def test_missing_model_is_a_one_line_error(images, tmp_path, capsys):
    paths, _ = images
    assert main(["predict", str(tmp_path / "none.tflite"), str(paths[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.tflite" in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("name, make, message", [
    ("empty.tflite", lambda p: p.write_bytes(b""), "empty.tflite: the file is empty, not a model"),
    ("folder.tflite", lambda p: p.mkdir(), "folder.tflite: a folder, not a model file"),
    ("text.keras", lambda p: p.write_text("hello"), "text.keras: not a Keras model (a .keras file is a zip archive"),
    ("junk.tflite", lambda p: p.write_bytes(b"x" * 64), "junk.tflite: not a TFLite model"),
])
def test_a_model_that_is_not_one_is_named_in_one_line(command, name, make, message, images, tmp_path, capsys):
    paths, _ = images
    make(tmp_path / name)
    extra = [str(paths[0])] if command == "predict" else ["--dataset", "digits", "--image-size", "8"]
    assert main([command, str(tmp_path / name), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
