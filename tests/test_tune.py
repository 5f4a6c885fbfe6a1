"""`tinykd tune` on a tiny search (digits at 8 and 10 px, one epoch per student): the front, the picked
student used by build, resuming after a worker is killed mid-trial, and two workers sharing one study on
a real PostgreSQL server."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tinykd.cli import main

BOARD = "nucleo-f767zi"
PIPELINE = """name = "base"
[data]
dataset = "digits"
image_size = 8
[teacher]
epochs = 2
[student]
epochs = 2
baseline = false
[quantize]
representative_samples = 50
[tune]
architectures = ["tiny_conv", "tiny_dsconv"]
width = [0.25, 0.75]
image_sizes = [8, 10]
epochs = [1, 1]
depth = [0, 1]
"""
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.xdist_group("tune")  # one worker makes the run below once for every test here


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with the pipeline file and run `base`: its teacher and default student (tinykd run), and
    what every study of it shares (the teacher's logits, the default student measured on the board)."""
    from tinykd.core.config import load_config
    from tinykd.deploy.boards import load_board
    from tinykd.train.tune.search import Search, prepare

    root = tmp_path_factory.mktemp("tune")
    (root / "tinykd.toml").write_text(PIPELINE)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["run"]) == 0
        prepare(Search(load_config("tinykd.toml"), load_board(BOARD), "", "base", 1))
    finally:
        os.chdir(cwd)
    return root


def copy_run(work: Path, name: str) -> Path:
    """A run of its own (same teacher, student and tune/ preparations) for a test's study."""
    shutil.copytree(work / "runs" / "base", work / "runs" / name)
    return work / "runs" / name


def tinykd(work: Path, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tinykd.cli", *args], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def trials_in(url: str, study: str) -> list:
    import optuna

    from tinykd.train.tune.study import with_driver

    return optuna.load_study(study_name=study, storage=with_driver(url)).get_trials(deepcopy=False)


def test_tune_resumes_after_a_killed_worker_finds_a_front_and_picks_a_student(work, monkeypatch, capsys):
    from optuna.trial import TrialState

    from tinykd.deploy.boards import load_board
    from tinykd.train.tune.results import dominates
    from tinykd.train.tune.trial import measure_on_board

    run = copy_run(work, "sqlite")
    url = f"sqlite:///{run / 'tune' / 'study.db'}"
    first = tinykd(work, "tune", "--board", BOARD, "--trials", "2", "--name", "sqlite", start_new_session=True)
    partial = run / "tune" / "0" / "student.keras"  # trained, not yet quantized or measured
    deadline = time.monotonic() + 240
    while not partial.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "trial 0 never got under way"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    (killed,) = trials_in(url, "sqlite")
    assert killed.state == TrialState.RUNNING

    # the same command again: the dead worker's trial is failed and run again, the search goes on
    monkeypatch.chdir(work)
    assert main(["tune", "--board", BOARD, "--trials", "2", "--name", "sqlite"]) == 0
    out, err = capsys.readouterr()
    assert "trial(s) 0 of a worker that died: run again" in err
    assert f"Pareto front on {BOARD}" in out and "instructions measured on QEMU" in out
    trials = trials_in(url, "sqlite")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[1].params == killed.params, "the killed trial's student is run again"
    assert sorted(p.name for p in (run / "tune").iterdir() if p.is_dir()) == ["1", "2", "default"], \
        "no partial trial left"

    record = json.loads((run / "tune" / "front.json").read_text())
    assert [t["trial"] for t in record["trials"]] == [1, 2]
    for trial, stored in zip(record["trials"], trials[1:]):
        folder = run / "tune" / str(trial["trial"])
        assert (folder / "student_int8.tflite").is_file() and (folder / "c" / "tinykd_model.c").is_file()
        m = trial["metrics"]
        assert stored.values == [m["accuracy"], m["instructions"], m["ram_bytes"]]
        assert trial["params"]["image_size"] in (8, 10) and trial["params"]["epochs"] == 1
        assert trial["params"]["depth"] in (0, 1)
    # the front: no member dominated, every other trial dominated by a member
    members = [t for t in record["trials"] if t["trial"] in record["front"]]
    others = [t for t in record["trials"] if t["trial"] not in record["front"]]
    assert members and not any(dominates(a["metrics"], b["metrics"]) for a in members for b in members)
    assert all(any(dominates(a["metrics"], o["metrics"]) for a in members) for o in others)
    # the run's own student is measured the same way and shown beside the front
    assert record["default"]["params"]["architecture"] == "tiny_conv" and "default " in out
    assert record["dominate_default"] == [t["trial"] for t in members
                                          if dominates(t["metrics"], record["default"]["metrics"])]
    assert ("beat the default student" in out) == bool(record["dominate_default"])
    # instruction counts are QEMU's, exact and repeatable
    first = record["trials"][0]
    again = measure_on_board(run / "tune" / str(first["trial"]) / "student_int8.tflite", load_board(BOARD),
                             work / "remeasure", _val_image(first["params"]["image_size"]))
    assert again["instructions"] == first["metrics"]["instructions"]
    assert again["ram_bytes"] == first["metrics"]["ram_bytes"]

    # --pick best-under MS: the most accurate trial within the time; build then uses it
    budget = max(t["metrics"]["ms"] for t in record["trials"])
    assert main(["tune", "--pick", "best-under", str(budget), "--name", "sqlite"]) == 0
    best = max(record["trials"], key=lambda t: (t["metrics"]["accuracy"], -t["metrics"]["instructions"]))
    picked = run / "tuned_int8.tflite"
    assert picked.read_bytes() == (run / "tune" / str(best["trial"]) / "student_int8.tflite").read_bytes()
    assert main(["build", "--board", BOARD, "--name", "sqlite", "--runtime", "c", "--no-check",
                 "--out", str(work / "bundle")]) == 0
    manifest = json.loads((work / "bundle" / "manifest.json").read_text())
    assert manifest["model"]["sha256"] == hashlib.sha256(picked.read_bytes()).hexdigest()

    # the report plots the search
    assert main(["report", str(run)]) == 0
    assert "Student search on nucleo-f767zi" in (run / "report.html").read_text()
    assert f"| {record['front'][0]} |" in (run / "report.md").read_text()

    # a finished study is not searched again; errors are one line
    assert main(["tune", "--board", BOARD, "--trials", "2", "--name", "sqlite"]) == 0
    assert len(trials_in(url, "sqlite")) == 3
    capsys.readouterr()
    assert main(["tune", "--pick", "7", "--name", "sqlite"]) == 2
    assert "no finished trial 7 (finished: 1, 2)" in capsys.readouterr().err
    assert main(["tune", "--pick", "best-under", "0.000001", "--name", "sqlite"]) == 2
    assert "no finished trial fits the board in 1e-06 ms" in capsys.readouterr().err
    assert main(["tune", "--board", BOARD, "--name", "sqlite", "--study", "other"]) == 2
    assert "holds the trials of study 'sqlite'" in capsys.readouterr().err


def _val_image(size: int):
    from tinykd.train.data import load_dataset

    return load_dataset("digits", (size, size), 1, 0.1, 0).x_val[0]


def test_tune_section_is_validated(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    bad = work / "bad.toml"
    for good, wrong, message in (
            ("width = [0.25, 0.75]", "width = [0.5, 0.25]", "tune.width = [0.5, 0.25] must be [low, high]"),
            ('architectures = ["tiny_conv", "tiny_dsconv"]', 'architectures = ["cnn_teacher"]',
             "'cnn_teacher' is a teacher, not a student"),
            ("epochs = [1, 1]", "epochs = 3", "[tune]: epochs = 3 is not a list of integers")):
        bad.write_text(PIPELINE.replace(good, wrong))
        assert main(["tune", "--board", BOARD, "--config", str(bad)]) == 2
        assert message in capsys.readouterr().err
    assert main(["tune", "--board", "native"]) == 2
    assert "board native has no QEMU machine" in capsys.readouterr().err


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    assert found, "PostgreSQL is not installed: `make system-packages` installs the Debian package postgresql"
    return found[-1].parent


@pytest.fixture
def postgres():
    """A PostgreSQL server of its own on a unix socket, run by an unprivileged user when tests run as root;
    yields the storage URL of an empty database."""
    bin_dir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="tinykd-pg-"))
    base.chmod(0o755)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, sock = base / "data", base / "sock"
    for folder in (data, sock):
        folder.mkdir()
        if as_user:
            shutil.chown(folder, "postgres", "postgres")

    def pg(*command):
        subprocess.run([*as_user, *command], check=True, stdin=subprocess.DEVNULL, capture_output=True)

    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    pg(bin_dir / "initdb", "-D", str(data), "-A", "trust", "-U", user)
    pg(bin_dir / "pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-o",
       f"-k {sock} -c listen_addresses=''", "start")
    try:
        pg(bin_dir / "createdb", "-h", str(sock), "-U", user, "tinykd")
        yield f"postgresql://{user}@/tinykd?host={sock}"
    finally:
        pg(bin_dir / "pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_a_study_on_postgresql(work, postgres):
    from optuna.trial import TrialState

    run = copy_run(work, "shared")
    workers = [tinykd(work, "tune", "--board", BOARD, "--trials", "2", "--name", "shared", "--storage", postgres)
               for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=500)
        assert worker.returncode == 0, err
    trials = trials_in(postgres, "shared")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, "no trial lost"
    assert [t.number for t in trials] == [0, 1]
    assert len({t.user_attrs["pid"] for t in trials}) == 2, "both workers ran trials"
    # every trial ran once: one folder each, made by the worker the study names
    for t in trials:
        recorded = json.loads((run / "tune" / str(t.number) / "trial.json").read_text())
        assert recorded["trial"] == t.number and recorded["params"] == t.params
        assert recorded["metrics"]["instructions"] == t.values[1]
    assert sorted(p.name for p in (run / "tune").iterdir() if p.is_dir()) == ["0", "1", "default"]
