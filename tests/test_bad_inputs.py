"""Bad input across the commands, as a table: each case exits with its code (2: bad input, 1: a result
such as "does not fit"), says so in exactly one line on stderr without a traceback, and leaves every
existing file as it was."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from tinykd.cli import main
from tinykd.deploy.boards import BUILTIN_DIR

F446 = (BUILTIN_DIR / "nucleo-f446re.toml").read_text()

CASES = [
    # build
    (["build", "--board", "nope", "--model", "m.tflite"], 2, "unknown board 'nope'; known boards:"),
    (["build", "--board", "native", "--model", "missing.tflite"], 2, "missing.tflite: no such TFLite model file"),
    (["build", "--board", "native", "--model", "empty.tflite"], 2, "empty.tflite: the file is empty"),
    (["build", "--board", "native", "--model", "folder"], 2, "folder: a folder, not a TFLite model file"),
    (["build", "--board", "native", "--model", "junk.tflite"], 2, "junk.tflite: not a TFLite model"),
    (["build", "--board", "native", "--model", "m.tflite", "--out", "notes.txt"], 2,
     "notes.txt: exists and is not a folder"),
    (["build", "--board", "native", "--model", "m.tflite", "--out", "notes.txt/sub"], 2, "notes.txt/sub"),
    (["build", "--board", "native", "--model", "m.tflite", "--out", "/proc/x"], 2, "/proc/x: cannot create"),
    (["build", "--board", "native", "--model", "m.tflite", "--out", "mine"], 2,
     "mine: the folder is not empty and was not made by tinykd build"),
    (["build", "--board", "native", "--model", "m.tflite", "--array-name", "class"], 2, "class"),
    (["build", "--board", "native", "--model", "m.tflite", "--array-name", "9lives"], 2, "9lives"),
    (["build", "--board", "odd-cpu", "--model", "m.tflite"], 2, "cpu = 'cortex-m99' is not a core tinykd knows"),
    (["build", "--board", "odd-mve", "--model", "m.tflite"], 2, "kernels = 'mve': a cortex-m4 runs only"),
    (["build", "--board", "odd-qemu", "--model", "m.tflite"], 2, "qemu_machine = 'mps2-an999' is not a machine"),
    # verify
    (["verify", "--board", "native", "--model", "m.tflite", "--vectors", "0"], 2, "give between 1 and 100,000"),
    (["verify", "--board", "native", "--model", "m.tflite", "--vectors", "1000000000000"], 2,
     "--vectors 1000000000000: give between 1 and 100,000 vectors"),
    (["verify", "--board", "native", "--model", "m.tflite", "--target", "bogus"], 2, "unknown target 'bogus'"),
    (["verify", "--board", "native", "--model", "m.tflite", "--target", "qemu"], 2, "board native is the host"),
    (["verify", "--board", "nucleo-f767zi", "--model", "m.tflite", "--target", "serial"], 2,
     "target serial needs a port"),
    (["verify", "--board", "native", "--bundle", "empty-dir"], 2, "not a bundle (no readable manifest.json)"),
    (["verify", "--board", "rpi-pico", "--bundle", "f767"], 2, "the bundle was built for board nucleo-f767zi"),
    (["verify", "--board", "native", "--model", "m.tflite", "--tflm", "bogus"], 2, "bogus"),
    # label and count
    (["label", "notes.txt"], 2, "notes.txt: not a folder"),
    (["label", "photos", "--port", "70000"], 2, "--port 70000: a port is a number from 0 to 65535"),
    (["label", "photos", "--port", "-1"], 2, "--port -1: a port is a number from 0 to 65535"),
    (["label", "negative"], 2, 'count for "a.png" is -1; expected a whole number'),
    (["label", "escape"], 2, '"/etc/hostname" is not the name of a file in'),
    (["count", "notes.txt"], 2, "notes.txt: not a folder"),
    (["count", "photos", "--folds", "1"], 2, "--folds 1: cross-validation needs at least 2 folds"),
    (["count", "empty-dir"], 2, "count.json: missing"),
    (["count", "few"], 2, "few: 6 labelled images are too few for 5 folds"),
    (["verify", "--board", "small-ram", "--model", "big.tflite"], 1, "big.tflite does not fit small-ram: the C backend"),
    # tune
    (["tune"], 2, "tune needs --board B (or --pick TRIAL to choose a finished trial)"),
    (["tune", "--board", "native"], 2, "board native has no QEMU machine"),
    (["tune", "--board", "mps3-an547"], 2, "QEMU's mps3-an547 has no timer that counts instructions"),
    (["tune", "--board", "nucleo-f767zi", "--jobs", "0"], 2, "--jobs 0: run at least one worker"),
    (["tune", "--board", "nucleo-f767zi", "--trials", "0"], 2, "tune.trials must be positive"),
    (["tune", "--board", "nucleo-f767zi", "--storage", "bogus://x"], 2, "--storage bogus://x: cannot open"),
    (["tune", "--pick", "3"], 2, "no finished trials; run `tinykd tune --board B` first"),
    (["tune", "--pick", "best-under", "fast"], 2, "--pick best-under fast: MS must be a number of milliseconds"),
    (["tune", "--pick", "last"], 2, "--pick last: give a trial number or best-under MS"),
    # predict, evaluate, quantize
    (["predict", "empty.tflite", "img.png"], 2, "empty.tflite: the file is empty, not a model"),
    (["predict", "folder", "img.png"], 2, "folder: a folder, not a model file"),
    (["predict", "text.keras", "img.png"], 2, "text.keras: not a Keras model"),
    (["evaluate", "empty.tflite", "--dataset", "digits"], 2, "empty.tflite: the file is empty"),
    (["quantize", "m.tflite"], 2, "m.tflite: quantize takes a .keras model"),
    (["export", "m.tflite"], 2, "m.tflite: export takes a .keras model"),
    (["export", "text.keras"], 2, "text.keras: not a Keras model"),
    (["export", "text.keras", "--format", "tflite"], 2, "--format tflite: unknown export format; known: onnx"),
    (["export", "text.keras", "--out", "notes.txt"], 2, "notes.txt: already exists; --force replaces it"),
    # the pipeline file and its command-line overrides
    (["train", "--dataset", "imagenet"], 2, "unknown dataset 'imagenet'"),
    (["train", "--architecture", "resnet9000"], 2, "unknown architecture 'resnet9000'"),
    (["train", "--limit", "-5"], 2, "data.limit = -5 must be 0 (all images) or positive"),
    (["train", "--batch-size", "0"], 2, "batch_size must be positive"),
    (["train", "--name", "../../escape"], 2, "name = '../../escape' must be a folder name"),
    (["train", "--image-size", "0"], 2, "data.image_size must be positive"),
    (["train", "--dataset", "npz:missing.npz"], 2, "missing.npz: no such .npz dataset file"),
    (["train", "--dataset", "npz:notes.txt"], 2, "notes.txt: not a .npz file (not a zip archive)"),
    (["train", "--dataset", "npz:partial.npz"], 2, "partial.npz: no array y_test (has x_test, x_train, y_train)"),
    (["train", "--distribute", "tpu"], 2, "distribute: unknown strategy 'tpu'"),
    (["run", "--config", "short-size.toml"], 2, "data.image_size = [8] must be one number or [height, width]"),
    (["run", "--config", "no-batch.toml"], 2, "batch_size must be positive"),
    (["run", "--config", "no-name.toml"], 2, "name = '' must be a folder name"),
    (["run", "--config", "unknown-key.toml"], 2, "unknown key 'epoch'"),
    (["run", "--config", "bad-student.toml"], 2, "student.architecture: unknown architecture 'nope'"),
    (["run", "--config", "missing.toml"], 2, "missing.toml: no such pipeline file"),
    (["run", "--config", "broken.toml"], 2, "broken.toml: not valid TOML"),
    # report
    (["report", "run", "--builds", "nonexistent"], 2, "--builds nonexistent: no such folder"),
    (["report", "hollow-run"], 2, "summary.json: no 'name'"),
    (["report", "empty-dir"], 2, "no summary.json"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, zoo):
    """A folder with a good model, bad models, a bundle, counting folders, pipeline files and board profiles."""
    root = tmp_path_factory.mktemp("bad-inputs")
    shutil.copy(zoo["mlp"], root / "m.tflite")
    shutil.copy(zoo["residual_add"], root / "big.tflite")
    (root / "empty.tflite").write_bytes(b"")
    (root / "junk.tflite").write_bytes(b"x" * 64)
    (root / "folder").mkdir()
    (root / "text.keras").write_text("hello")
    (root / "notes.txt").write_text("my notes")
    (root / "img.png").write_bytes(b"not read: the model fails first")
    (root / "mine").mkdir()
    (root / "mine" / "thesis.tex").write_text("\\section{}")
    (root / "empty-dir").mkdir()
    np.savez(root / "partial.npz", x_train=np.zeros((4, 3)), y_train=np.arange(4), x_test=np.zeros((2, 3)))
    few = {f"p{i}.png": i % 3 for i in range(6)}
    for name, counts in (("photos", {"a.png": 1}), ("negative", {"a.png": -1}), ("escape", {"/etc/hostname": 1}),
                         ("few", few)):
        (root / name).mkdir()
        (root / name / "count.json").write_text(json.dumps(counts))
    pipeline = 'name = "x"\n[data]\ndataset = "digits"\n'
    for name, text in (("short-size", pipeline + "image_size = [8]\n"),
                       ("no-batch", pipeline + "[teacher]\nbatch_size = 0\n"),
                       ("no-name", pipeline.replace('"x"', '""')),
                       ("unknown-key", pipeline + "[student]\nepoch = 3\n"),
                       ("bad-student", pipeline + '[student]\narchitecture = "nope"\n'),
                       ("broken", pipeline + "[student\n")):
        (root / f"{name}.toml").write_text(text)
    (root / "boards").mkdir()
    for name, old, new in (("odd-cpu", 'cpu = "cortex-m4"', 'cpu = "cortex-m99"'),
                           ("odd-mve", 'kernels = "dsp"', 'kernels = "mve"'),
                           ("odd-qemu", '"mps2-an386"', '"mps2-an999"'),
                           ("small-ram", "ram_bytes = 131_072\nram_reserved_bytes = 16_384",
                            "ram_bytes = 8_192\nram_reserved_bytes = 1_024")):
        profile = F446.replace('name = "nucleo-f446re"', f'name = "{name}"').replace(old, new)
        (root / "boards" / f"{name}.toml").write_text(profile)
    (root / "run").mkdir()
    (root / "run" / "summary.json").write_text(json.dumps(
        {"name": "run", "dataset": "digits", "seed": 0, "teacher_test_accuracy": 0.5}))
    (root / "hollow-run").mkdir()
    (root / "hollow-run" / "summary.json").write_text("{}")
    return root


@pytest.fixture(scope="module")
def bundle(workspace):
    """A bundle built for nucleo-f767zi (no board profile problems: ./boards is not read from here)."""
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(workspace / "m.tflite"), "--out",
                 str(workspace / "f767")]) == 0
    return workspace / "f767"


def snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_there_are_forty_cases_or_more():
    assert len(CASES) >= 40


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(argv, code, message, workspace, bundle, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    capsys.readouterr()
    before = snapshot(workspace)
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinykd: error: "), err
    assert message in lines[0] and "Traceback" not in err, err
    assert snapshot(workspace) == before
    assert not (workspace / "runs").exists() and not (workspace / "build").exists()
