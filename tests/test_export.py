"""`tinykd export`: a .keras model as float32 and INT8 ONNX that onnxruntime runs like Keras."""

import numpy as np
import onnx
import onnxruntime
import pytest

from tinykd.cli import main
from tinykd.train.data import load_dataset
from tinykd.train.models import build_model
from tinykd.train.train import train_classifier


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny_conv trained briefly on 16x16 digits (so its argmax means something), and the data."""
    data = load_dataset("digits", (16, 16), 1, validation_split=0.2)
    model = build_model("tiny_conv", data.input_shape, 10)
    train_classifier(model, data, epochs=4, batch_size=64, learning_rate=2e-3)
    path = tmp_path_factory.mktemp("export") / "student.keras"
    model.save(path)
    return path, model, data


def _run_onnx(path, images):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def test_float_onnx_gives_the_keras_logits(trained, capsys):
    path, model, data = trained
    assert main(["export", str(path)]) == 0
    out = path.with_name("student.onnx")
    assert f"wrote {out}" in capsys.readouterr().out
    np.testing.assert_allclose(_run_onnx(out, data.x_test), model.predict(data.x_test, verbose=0), atol=1e-4)


def test_teacher_with_batch_norm_exports(tmp_path):
    model = build_model("cnn_teacher", (16, 16, 1), 10)
    model.save(tmp_path / "teacher.keras")
    assert main(["export", str(tmp_path / "teacher.keras"), "--out", str(tmp_path / "t" / "teacher.onnx")]) == 0
    images = np.random.default_rng(0).random((8, 16, 16, 1), np.float32)
    np.testing.assert_allclose(_run_onnx(tmp_path / "t" / "teacher.onnx", images),
                               model.predict(images, verbose=0), atol=1e-4)


def test_int8_onnx_agrees_with_keras_on_the_class(trained, tmp_path):
    path, model, data = trained
    out = tmp_path / "student_int8.onnx"
    assert main(["export", str(path), "--int8", "--out", str(out)]) == 0
    int8 = _run_onnx(out, data.x_test)
    agreement = np.mean(int8.argmax(1) == model.predict(data.x_test, verbose=0).argmax(1))
    assert agreement >= 0.97, agreement  # measured: 100% of the 359 test images
    ops = {node.op_type for node in onnx.load(out).graph.node}
    assert {"ConvInteger", "MatMulInteger"} <= ops, ops


def test_force_replaces_an_existing_output(trained, tmp_path):
    path, _, _ = trained
    out = tmp_path / "old.onnx"
    out.write_bytes(b"old")
    assert main(["export", str(path), "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != b"old" and _run_onnx(out, np.zeros((1, 16, 16, 1), np.float32)).shape == (1, 10)
