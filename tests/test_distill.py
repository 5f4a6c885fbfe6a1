import json

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import TensorProto, helper, numpy_helper

from tinykd.core.config import FeatureKD, StudentConfig
from tinykd.train.data import load_dataset
from tinykd.train.distill import (cached_distiller, distill_student, ensemble_logits, load_teacher,
                                  make_distiller)
from tinykd.core.errors import TinykdError
from tinykd.train.models import build_model
from tinykd.train.train import make_batches


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kd_loss_numpy(student_logits, teacher_logits, labels, alpha, temperature):
    """alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))."""
    ce = -np.mean(np.log(_softmax(student_logits)[np.arange(len(labels)), labels]))
    p_t, p_s = _softmax(teacher_logits / temperature), _softmax(student_logits / temperature)
    kl = np.mean(np.sum(p_t * np.log(p_t / p_s), axis=1))
    return alpha * ce + (1 - alpha) * temperature ** 2 * kl


def _tiny_student(shape=(6, 6, 1), classes=4):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Flatten()(inputs)))


@pytest.mark.parametrize("alpha, temperature", [(0.5, 3.0), (0.2, 1.0), (0.9, 5.0)])
def test_cached_kd_loss_matches_numpy_formula(alpha, temperature):
    rng = np.random.default_rng(0)
    x = rng.random((16, 6, 6, 1), np.float32)
    teacher_logits = (rng.standard_normal((16, 4)) * 3).astype(np.float32)
    labels = rng.integers(0, 4, 16)
    student = _tiny_student()
    distiller = cached_distiller(student, 4, alpha, temperature)
    y_pred = distiller((x, teacher_logits))
    loss = distiller.compute_loss(x=(x, teacher_logits), y=np.eye(4, dtype=np.float32)[labels], y_pred=y_pred)
    expected = kd_loss_numpy(student.predict(x, verbose=0), teacher_logits, labels, alpha, temperature)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_live_kd_loss_matches_numpy_formula():
    rng = np.random.default_rng(1)
    x = rng.random((8, 6, 6, 1), np.float32)
    labels = rng.integers(0, 4, 8)
    teacher, student = _tiny_student(), _tiny_student()
    distiller = make_distiller(teacher, student, alpha=0.5, temperature=3.0)
    loss = distiller.compute_loss(x=x, y=np.eye(4, dtype=np.float32)[labels], y_pred=distiller(x))
    expected = kd_loss_numpy(student.predict(x, verbose=0), teacher.predict(x, verbose=0), labels, 0.5, 3.0)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def _onnx_linear_teacher(path, weights, bias, height=8, width=8):
    """An ONNX classifier: NHWC image -> flatten -> Gemm -> logits."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "shape"], ["flat"]),
         helper.make_node("Gemm", ["flat", "W", "b"], ["logits"])],
        "linear", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", height, width, 1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", weights.shape[1]])],
        [numpy_helper.from_array(np.array([-1, height * width], np.int64), "shape"),
         numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", (8, 8), 1, validation_split=0.2, limit=400)


def test_onnx_and_keras_teachers_are_averaged(tmp_path, digits):
    rng = np.random.default_rng(2)
    weights, bias = rng.standard_normal((64, 10)).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    _onnx_linear_teacher(tmp_path / "t.onnx", weights, bias)
    keras_teacher = build_model("tiny_conv", digits.input_shape, 10)
    keras_teacher.save(tmp_path / "t.keras")
    x = digits.x_test[:12]
    onnx_logits = x.reshape(12, 64) @ weights + bias
    keras_logits = keras_teacher.predict(x, verbose=0)
    teachers = [load_teacher(tmp_path / "t.onnx"), load_teacher(tmp_path / "t.keras")]
    np.testing.assert_allclose(ensemble_logits(teachers[:1], x, 10), onnx_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ensemble_logits(teachers, x, 10), (onnx_logits + keras_logits) / 2,
                               rtol=1e-4, atol=1e-4)


def test_teacher_errors(tmp_path, digits):
    with pytest.raises(TinykdError, match="not found"):
        load_teacher(tmp_path / "missing.keras")
    (tmp_path / "t.pt").write_bytes(b"x")
    with pytest.raises(TinykdError, match=".keras or .onnx"):
        load_teacher(tmp_path / "t.pt")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(TinykdError, match="bad.onnx: cannot load ONNX"):
        load_teacher(tmp_path / "bad.onnx")
    _onnx_linear_teacher(tmp_path / "three.onnx", np.zeros((64, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(TinykdError, match="3,\\) outputs, the dataset has 10 classes"):
        ensemble_logits([load_teacher(tmp_path / "three.onnx")], digits.x_test[:4], 10)


def test_distill_with_cached_onnx_ensemble(tmp_path, digits):
    rng = np.random.default_rng(3)
    for i in range(2):
        _onnx_linear_teacher(tmp_path / f"t{i}.onnx", rng.standard_normal((64, 10)).astype(np.float32),
                             np.zeros(10, np.float32))
    config = StudentConfig(architecture="tiny_conv", epochs=1, batch_size=64)
    path = distill_student(config, digits, [tmp_path / "t0.onnx", tmp_path / "t1.onnx"], tmp_path)
    history = (tmp_path / "student_history.json").read_text()
    assert path.exists() and '"teacher_logits": "cached"' in history and "t1.onnx" in history


def _keras_linear_teacher(path, weights, bias, height=8, width=8):
    """The Keras twin of _onnx_linear_teacher: the same logits."""
    image = keras.Input((height, width, 1))
    dense = keras.layers.Dense(weights.shape[1])
    model = keras.Model(image, dense(keras.layers.Flatten()(image)))
    dense.set_weights([weights, bias])
    model.save(path)


def test_onnx_teacher_runs_live_with_augmentation(tmp_path, digits):
    rng = np.random.default_rng(4)
    weights, bias = rng.standard_normal((64, 10)).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    _onnx_linear_teacher(tmp_path / "t.onnx", weights, bias)
    _keras_linear_teacher(tmp_path / "t.keras", weights, bias)
    # inside a compiled step, on augmented images, the ONNX teacher gives the Keras twin's logits
    onnx_model = load_teacher(tmp_path / "t.onnx").keras_model(digits.input_shape, digits.num_classes)
    keras_model = load_teacher(tmp_path / "t.keras").keras_model(digits.input_shape, digits.num_classes)
    images, _ = next(iter(make_batches(digits.x_train, digits.y_train, 10, 64, augment=True)))
    step = tf.function(lambda batch: (onnx_model(batch), keras_model(batch)))
    onnx_logits, keras_logits = step(images)
    assert not np.allclose(images.numpy(), digits.x_train[:64])  # the batch really is augmented
    np.testing.assert_allclose(onnx_logits.numpy(), keras_logits.numpy(), rtol=1e-4, atol=1e-4)
    config = StudentConfig(architecture="tiny_conv", epochs=2, batch_size=64, augment=True)
    distill_student(config, digits, [tmp_path / "t.onnx"], tmp_path / "kd")
    onnx_run = json.loads((tmp_path / "kd" / "student_history.json").read_text())
    assert onnx_run["teacher_logits"] == "live"
    distill_student(config, digits, [tmp_path / "t.onnx"], tmp_path / "plain", kd=False)
    plain = json.loads((tmp_path / "plain" / "student_nokd_history.json").read_text())
    assert abs(plain["loss"][0] - onnx_run["loss"][0]) > 0.1  # the teacher's term is in the loss


def test_feature_kd_refuses_an_onnx_teacher(tmp_path, digits):
    _onnx_linear_teacher(tmp_path / "t.onnx", np.zeros((64, 10), np.float32), np.zeros(10, np.float32))
    config = StudentConfig(epochs=1, features=[FeatureKD("dense", "hidden")])
    with pytest.raises(TinykdError, match="t.onnx: feature KD needs a Keras teacher"):
        distill_student(config, digits, [tmp_path / "t.onnx"], tmp_path)


def test_feature_kd_with_projection(tmp_path):
    data = load_dataset("digits", (16, 16), 1, validation_split=0.2, limit=200)
    build_model("cnn_teacher", data.input_shape, 10).save(tmp_path / "teacher.keras")
    config = StudentConfig(architecture="tiny_conv", epochs=1, batch_size=64, features=[
        FeatureKD("block2b_relu", "conv2_relu"),  # 4x4x64 <- 4x4x16: 1x1 conv, mse
        FeatureKD("hidden", "hidden", weight=0.5),  # 128 <- 32: dense, cosine
    ])
    path = distill_student(config, data, [tmp_path / "teacher.keras"], tmp_path)
    student = keras.models.load_model(path)
    assert not [layer.name for layer in student.layers if "project" in layer.name]
    assert student.count_params() == build_model("tiny_conv", data.input_shape, 10).count_params()
    assert '"teacher_logits": "live"' in (tmp_path / "student_history.json").read_text()


def test_feature_kd_unknown_layer(tmp_path):
    data = load_dataset("digits", (16, 16), 1, limit=100)
    build_model("cnn_teacher", data.input_shape, 10).save(tmp_path / "teacher.keras")
    config = StudentConfig(epochs=1, features=[FeatureKD("nope", "conv2_relu")])
    with pytest.raises(TinykdError, match="no layer 'nope'"):
        distill_student(config, data, [tmp_path / "teacher.keras"], tmp_path)
