"""The whole training half through the CLI, on small data: every verb, its artifacts and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_idx_dataset
from tinykd.cli import main

QUICK = ["--dataset", "digits", "--image-size", "12"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One quick `tinykd run` (1 epoch per model) shared by the tests below."""
    root = tmp_path_factory.mktemp("work")
    (root / "tinykd.toml").write_text(
        'name = "quick"\n[data]\ndataset = "digits"\nimage_size = 12\n'
        '[teacher]\nepochs = 2\n[student]\nepochs = 2\n[quantize]\nrepresentative_samples = 50\n')
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["run"]) == 0
    finally:
        os.chdir(cwd)
    return root / "runs" / "quick"


def test_run_leaves_every_artifact(run_dir):
    for name in ["teacher.keras", "teacher_history.json", "student.keras", "student_history.json",
                 "student_nokd.keras", "student_int8.tflite", "student_float32.tflite",
                 "student_quantize.json", "dataset.json", "summary.json",
                 "eval/teacher/summary.json", "eval/teacher/confusion.png", "eval/teacher/curves.png",
                 "eval/student_int8/summary.json", "eval/student_int8/confusion.png"]:
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["student"]["int8_bytes"] == (run_dir / "student_int8.tflite").stat().st_size
    assert summary["kd_gain_int8"] == pytest.approx(
        summary["student"]["int8_test_accuracy"] - summary["student_nokd"]["int8_test_accuracy"])
    history = json.loads((run_dir / "teacher_history.json").read_text())
    assert len(history["loss"]) == 2 and history["architecture"] == "cnn_teacher"


def test_int8_model_is_full_integer(run_dir):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(run_dir / "student_int8.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert list(inp["shape"]) == [1, 12, 12, 1], "fixed batch size of 1"
    dtypes = {t["dtype"] for t in interpreter.get_tensor_details()}
    assert dtypes <= {np.int8, np.int32}, f"float tensors left in the INT8 model: {dtypes}"
    quantized = json.loads((run_dir / "student_quantize.json").read_text())
    # two epochs on 12x12 digits: 0.27-0.32 measured, varying between processes (TensorFlow's threads)
    assert quantized["int8"]["test_accuracy"] > 0.2, "the INT8 model must still classify digits"
    assert quantized["int8"]["test_accuracy"] >= quantized["float32"]["test_accuracy"] - 0.05, "as the float one does"
    # one weight scale per dense layer: the TFLM versions RIOT and Zephyr pin compute nothing else right
    from tinykd.tflite.reader import read_model

    model = read_model(run_dir / "student_int8.tflite")
    dense = [op for op in model.operators if op.op == "FULLY_CONNECTED"]
    assert dense and all(len(model.op_inputs(op)[1].scale) == 1 for op in dense)
    assert not quantized["per_channel_dense"]


def test_int8_accuracy_agrees_with_evaluate(run_dir, capsys):
    model = run_dir / "student_int8.tflite"
    out = run_dir.parent / "eval_again"
    assert main(["evaluate", str(model), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    quantized = json.loads((run_dir / "student_quantize.json").read_text())
    assert summary["accuracy"] == quantized["int8"]["test_accuracy"]
    assert sum(map(sum, summary["confusion_matrix"])) == summary["images"]
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "test accuracy" in capsys.readouterr().out


def test_rerun_keeps_existing_artifacts(run_dir, monkeypatch, capsys):
    monkeypatch.chdir(run_dir.parent.parent)
    before = (run_dir / "teacher.keras").stat().st_mtime_ns
    assert main(["train", "--name", "quick", *QUICK]) == 0
    assert (run_dir / "teacher.keras").stat().st_mtime_ns == before
    assert "tinykd: keeping existing teacher" in capsys.readouterr().err


def test_distill_no_kd_and_quantize_verbs(run_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    teacher = str(run_dir / "teacher.keras")
    assert main(["distill", "--name", "v", *QUICK, "--epochs", "1", "--teacher", teacher]) == 0
    assert main(["distill", "--name", "v", *QUICK, "--epochs", "1", "--no-kd"]) == 0
    assert main(["quantize", "--name", "v", "--samples", "20"]) == 0
    assert main(["quantize", str(tmp_path / "runs/v/student_nokd.keras"), "--samples", "20"]) == 0
    for name in ["student.keras", "student_nokd.keras", "student_int8.tflite", "student_nokd_int8.tflite"]:
        assert (tmp_path / "runs/v" / name).is_file(), name


def test_build_without_model_uses_the_pipelines_int8_student(run_dir, monkeypatch):
    monkeypatch.chdir(run_dir.parent.parent)
    assert main(["build", "--board", "nucleo-f767zi"]) == 0
    manifest = json.loads((run_dir.parent.parent / "build/nucleo-f767zi/manifest.json").read_text())
    assert manifest["model"]["file"] == "student_int8.tflite" and manifest["fits"] is True


def test_build_without_model_runs_the_missing_stages(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--board", "native", "--name", "fresh", *QUICK]) == 0
    assert "running the pipeline stages it needs" in capsys.readouterr().err
    for name in ["teacher.keras", "student.keras", "student_int8.tflite"]:
        assert (tmp_path / "runs/fresh" / name).is_file(), name
    assert (tmp_path / "build/native/model_data.cc").is_file()


def test_report_renders_in_a_browser_with_the_runs_numbers(run_dir, monkeypatch, capsys):
    """report.html opens offline in headless Chromium: every image renders, the numbers are the JSON's."""
    from playwright.sync_api import sync_playwright

    root = run_dir.parent.parent
    monkeypatch.chdir(root)
    assert main(["verify", "--board", "mps2-an500", "--vectors", "20"]) == 0  # builds the bundle, runs QEMU
    assert main(["report"]) == 0
    assert "report.html" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    verify = json.loads((root / "build/mps2-an500/verify.json").read_text())
    markdown = (run_dir / "report.md").read_text()
    assert f"{summary['teacher_test_accuracy'] * 100:.2f}%" in markdown and "| mps2-an500 |" in markdown
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto((run_dir / "report.html").resolve().as_uri())
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        values = dict(page.evaluate("Array.from(document.querySelectorAll('[data-key]'))"
                                    ".map(e => [e.dataset.key, e.dataset.value])"))
        browser.close()
    assert len(images) >= 6 and all(ok for _, ok in images), images
    assert {alt for alt, _ in images} >= {"model sizes", "teacher confusion", "student curves",
                                          "accuracy against instructions"}
    assert float(values["teacher_test_accuracy"]) == summary["teacher_test_accuracy"]
    assert float(values["student.int8_test_accuracy"]) == summary["student"]["int8_test_accuracy"]
    assert int(values["student.int8_bytes"]) == summary["student"]["int8_bytes"]
    assert float(values["kd_gain_int8"]) == pytest.approx(summary["kd_gain_int8"])
    assert int(values["byte_equal.mps2-an500.2"]) == verify["runtimes"][2]["byte_equal"] == 20


def test_report_lists_only_this_runs_bundles_and_where_each_was_verified(run_dir, zoo, tmp_path, monkeypatch,
                                                                         capsys):
    """A bundle of another model is left out; a native-only verification is not called verified on the board;
    a verify.json of an earlier model in the same folder does not count."""
    monkeypatch.chdir(tmp_path)
    student = str(run_dir / "student_int8.tflite")
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(zoo["mlp"]), "--out", "b/other"]) == 0
    assert main(["verify", "--board", "rpi-pico", "--model", student, "--out", "b/pico", "--target", "native",
                 "--vectors", "5"]) == 0
    assert main(["verify", "--board", "nucleo-f446re", "--model", student, "--out", "b/f446", "--vectors", "5"]) == 0
    assert main(["build", "--board", "bluepill", "--model", student, "--out", "b/blue"]) == 0
    stale = json.loads((tmp_path / "b/f446/verify.json").read_text())
    (tmp_path / "b/blue/verify.json").write_text(json.dumps(stale | {"model": {"sha256": "0" * 64}}))
    capsys.readouterr()
    assert main(["report", str(run_dir), "--builds", "b"]) == 0
    assert "1 bundle(s) in b are of other models: not listed" in capsys.readouterr().err
    rows = {line.split(" | ")[0].strip("| "): line for line in (run_dir / "report.md").read_text().splitlines()
            if "| C backend |" in line}
    assert set(rows) == {"rpi-pico", "nucleo-f446re", "bluepill"}
    assert rows["rpi-pico"].endswith("| host only |") and rows["nucleo-f446re"].endswith("| yes |")
    assert rows["bluepill"].endswith("| not run |")
    assert main(["report", str(run_dir), "--builds", "nonexistent"]) == 2
    assert "--builds nonexistent: no such folder" in capsys.readouterr().err


def test_report_on_a_summary_without_its_keys_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summary.json: no 'name'; it is not what `tinykd run` writes" in err


def test_report_without_a_run_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no summary.json" in err


def _error_of(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_unknown_dataset_and_architecture(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, line = _error_of(["train", "--dataset", "imagenet"], capsys)
    assert code == 2 and "unknown dataset 'imagenet'" in line and "fashion_mnist" in line
    code, line = _error_of(["train", *QUICK, "--architecture", "resnet9000"], capsys)
    assert code == 2 and "unknown architecture 'resnet9000'" in line and "tiny_conv" in line
    assert not (tmp_path / "runs/fashion/teacher.keras").exists()


def test_missing_and_corrupt_data(tmp_path, monkeypatch, capsys, no_system_data):
    monkeypatch.chdir(tmp_path)
    code, line = _error_of(["train"], capsys)
    assert code == 2 and "fashion_mnist: not found" in line and "dataset-fashion-mnist" in line
    write_idx_dataset(tmp_path / "data")
    (tmp_path / "data" / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    code, line = _error_of(["train", "--data-dir", str(tmp_path / "data")], capsys)
    assert code == 2 and "t10k-images-idx3-ubyte.gz: cannot read IDX" in line


def test_bad_pipeline_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.toml").write_text("[student\nalpha=1")
    code, line = _error_of(["run", "a.toml"], capsys)
    assert code == 2 and "a.toml: not valid TOML" in line
    (tmp_path / "b.toml").write_text("[student]\nalpah = 0.3\n")
    code, line = _error_of(["run", "b.toml"], capsys)
    assert code == 2 and "unknown key 'alpah'" in line
    (tmp_path / "c.toml").write_text("[student]\nalpha = 3\n")
    code, line = _error_of(["run", "c.toml"], capsys)
    assert code == 2 and "alpha must be between 0 and 1" in line
    code, line = _error_of(["run", "missing.toml"], capsys)
    assert code == 2 and "missing.toml: no such pipeline file" in line


def test_evaluate_errors(tmp_path, capsys):
    code, line = _error_of(["evaluate", str(tmp_path / "nope.tflite")], capsys)
    assert code == 2 and "nope.tflite: no such model file" in line
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    code, line = _error_of(["evaluate", str(tmp_path / "junk.tflite")], capsys)
    assert code == 2 and "junk.tflite" in line


def test_error_in_a_real_process_is_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinykd.cli", "train", "--dataset", "nope"],
                            cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tinykd: error: command line: data.dataset: unknown dataset 'nope'; known: fashion_mnist, mnist, cifar10, "
        "digits, folder:PATH, count:PATH, npz:PATH"]
    assert "Traceback" not in result.stdout + result.stderr


def test_models_lists_architectures(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ["cnn_teacher", "classic_student", "tiny_conv", "tiny_dsconv", "cifar_teacher", "cifar_student",
                 "ds_cnn_teacher", "ds_cnn_student", "conv1d_teacher", "conv1d_student", "mlp_teacher", "mlp_student"]:
        assert name in out


def test_a_kept_model_made_with_other_settings_is_never_reused(tmp_path, monkeypatch, capsys):
    """Changing the pipeline file, or retraining the teacher, makes the kept models stale: `run` says which
    and what changed before any work, and leaves every file as it was."""
    monkeypatch.chdir(tmp_path)
    pipeline_file = ('name = "stale"\n[data]\ndataset = "digits"\nimage_size = SIZE\n[teacher]\nepochs = 1\n'
                     '[student]\nepochs = 1\nbaseline = false\n[quantize]\nrepresentative_samples = 20\n')
    (tmp_path / "tinykd.toml").write_text(pipeline_file.replace("SIZE", "8"))
    assert main(["run"]) == 0
    run = tmp_path / "runs" / "stale"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    (tmp_path / "tinykd.toml").write_text(pipeline_file.replace("SIZE", "12"))
    capsys.readouterr()
    for command in (["run"], ["build", "--board", "native"], ["distill"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "made with data.image_size = [8, 8], which is now [12, 12]; --force remakes it" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    (tmp_path / "tinykd.toml").write_text(pipeline_file.replace("SIZE", "8"))
    assert main(["train", "--force"]) == 0
    capsys.readouterr()
    assert main(["run"]) == 2
    assert ("runs/stale/student.keras: kept from an earlier run made from another teacher.keras than the one "
            "there now") in capsys.readouterr().err
    assert main(["run", "--force"]) == 0
    student = str((tmp_path / "runs/stale/student.keras").resolve())  # the same files, named another way
    capsys.readouterr()
    assert main(["quantize", student]) == 0
    assert "keeping existing INT8 model" in capsys.readouterr().err
