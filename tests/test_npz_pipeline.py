"""Non-image data end to end: the README's keyword-spotting recipe (npz: features, DS-CNN teacher and
student) through run, build and verify on an emulated Cortex-M4; a 1-D conv student on sensor windows and
a dense student on feature vectors through build's check of the C backend against TFLM."""

import json

import numpy as np

from conftest import TONES_HZ, feature_vectors, sensor_windows, tone_features, write_npz
from tinykd.cli import main
from tinykd.tflite.reader import read_model

KWS = """name = "tones"
[data]
dataset = "npz:tones.npz"
[teacher]
architecture = "ds_cnn_teacher"
width = 0.25
epochs = 4
batch_size = 32
[student]
architecture = "ds_cnn_student"
width = 0.25
epochs = 4
batch_size = 32
baseline = false
[quantize]
representative_samples = 64
"""


def test_keyword_spotting_recipe_runs_on_a_cortex_m4(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "tones.npz", tone_features, 360, 60, class_names=np.array(["low", "mid", "high"]))
    (tmp_path / "tinykd.toml").write_text(KWS)
    assert main(["run"]) == 0
    run = tmp_path / "runs" / "tones"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["student"]["int8_test_accuracy"] > 2 / len(TONES_HZ), "the tones are learnt, INT8 included"
    dataset = json.loads((run / "dataset.json").read_text())
    assert dataset["input_shape"] == [16, 8, 1] and dataset["class_names"] == ["low", "mid", "high"]
    assert "image_size" not in dataset and "channels" not in dataset, "they do not apply to npz: features"
    stages = json.loads((run / "stages.json").read_text())
    assert stages["teacher.keras"]["teacher"]["augment"] is False, "image augmentation is off for npz features"
    model = read_model(run / "student_int8.tflite")
    assert {op.op for op in model.operators} == {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                                                 "FULLY_CONNECTED"}

    assert main(["build", "--board", "nucleo-f446re"]) == 0
    assert "byte-equal with TFLM" in capsys.readouterr().out
    assert main(["verify", "--board", "nucleo-f446re", "--vectors", "8"]) == 0
    report = json.loads((tmp_path / "build" / "nucleo-f446re" / "verify.json").read_text())
    qemu = next(r for r in report["runtimes"] if "qemu (cortex-m4)" in r["runtime"])
    assert report["bit_exact"] and qemu["byte_equal"] == qemu["vectors"] == 8
    assert "npz:tones.npz test images" in json.dumps(report), "verified on the dataset's test features"


SENSOR = """name = "motion"
[data]
dataset = "npz:motion.npz"
[teacher]
architecture = "conv1d_teacher"
width = 0.25
epochs = 2
batch_size = 32
[student]
architecture = "conv1d_student"
epochs = 3
batch_size = 32
[quantize]
representative_samples = 64
"""


def test_a_1d_student_quantizes_to_ops_the_c_backend_runs_exactly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "motion.npz", sensor_windows, 240, 40)
    (tmp_path / "tinykd.toml").write_text(SENSOR)
    assert main(["build", "--board", "native"]) == 0, "build runs the missing stages, then checks the C backend"
    assert "byte-equal with TFLM" in capsys.readouterr().out
    model = read_model(tmp_path / "runs" / "motion" / "student_int8.tflite")
    assert [t.shape for t in model.input_tensors()] == [(1, 64, 3)]
    assert {op.op for op in model.operators} <= {"RESHAPE", "CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED"}
    quantized = json.loads((tmp_path / "runs" / "motion" / "student_quantize.json").read_text())
    assert quantized["int8"]["test_accuracy"] > 0.5, "three classes: the axis that moves is learnt"

    int8 = "runs/motion/student_int8.tflite"
    assert main(["evaluate", int8, "--out", "eval"]) == 0, "evaluate finds the run's npz: dataset"
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["accuracy"] == quantized["int8"]["test_accuracy"]
    capsys.readouterr()
    assert main(["predict", int8, "window.png"]) == 2
    assert "takes (64, 3) inputs, not images; predict reads image files" in capsys.readouterr().err


TABLE = """name = "table"
[data]
dataset = "npz:table.npz"
[student]
architecture = "mlp_student"
kd = false
epochs = 5
batch_size = 32
learning_rate = 1e-2
[quantize]
representative_samples = 64
"""


def test_a_dense_student_on_feature_vectors_needs_no_teacher(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "table.npz", feature_vectors, 240, 40)
    (tmp_path / "tinykd.toml").write_text(TABLE)
    assert main(["build", "--board", "native"]) == 0
    assert "byte-equal with TFLM" in capsys.readouterr().out
    run = tmp_path / "runs" / "table"
    assert not (run / "teacher.keras").exists(), "kd = false: labels alone"
    assert {op.op for op in read_model(run / "student_nokd_int8.tflite").operators} == {"FULLY_CONNECTED"}
    assert json.loads((run / "student_nokd_quantize.json").read_text())["int8"]["test_accuracy"] > 0.6
