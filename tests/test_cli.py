"""What the command line shows: the library's log lines on stderr, at the level -q and -v choose, and the
commands' results on stdout whatever the level."""

import shutil
import subprocess
import sys

import pytest

from tinykd.cli import main

# loads the data (an info line, a debug line before it), then fails: too few images for the folds; no training
FAILS_AFTER_LOADING = ["count", "photos", "--folds", "5", "--image-size", "32"]


@pytest.fixture(autouse=True)
def photos(tmp_path):
    from conftest import write_counting_set

    write_counting_set(tmp_path / "photos", images=8, unlabelled=0)


def _stderr_lines(argv, capsys) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip().splitlines()


def test_default_shows_progress_as_plain_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(FAILS_AFTER_LOADING, capsys)
    assert len(lines) == 2, lines
    assert lines[0].startswith("tinykd: count:photos from photos: ") and "test images" in lines[0]
    assert lines[1] == "tinykd: error: photos: 8 labelled images are too few for 5 folds"


def test_quiet_silences_info_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(["-q", *FAILS_AFTER_LOADING], capsys)
    assert lines == ["tinykd: error: photos: 8 labelled images are too few for 5 folds"]


def test_verbose_shows_debug_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(["--verbose", *FAILS_AFTER_LOADING], capsys)
    assert "tinykd: debug: loading count:photos at 32x32x1" in lines
    assert any(line.startswith("tinykd: count:photos from photos: ") for line in lines)
    assert lines[-1].startswith("tinykd: error: ")


def test_quiet_keeps_warnings(tmp_path, monkeypatch, capsys):
    from conftest import write_counting_set

    shutil.rmtree(tmp_path / "photos")
    write_counting_set(tmp_path / "photos", images=8, unlabelled=2)
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(["-q", "count", "photos", "--folds", "5", "--image-size", "32"], capsys)
    assert lines[0].startswith("tinykd: warning: ") and "2 of 8 images have no count yet" in lines[0], lines
    assert "too few for 5 folds" in lines[-1]


def test_quiet_still_prints_results(capsys):
    assert main(["-q", "models"]) == 0
    captured = capsys.readouterr()
    assert "tiny_conv" in captured.out and captured.err == ""


def test_quiet_and_verbose_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["-q", "-v", "models"])
    assert exit.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_levels_in_a_real_process(tmp_path):
    def stderr(*options):
        result = subprocess.run([sys.executable, "-m", "tinykd.cli", *options, *FAILS_AFTER_LOADING],
                                cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert result.returncode == 2 and result.stdout == ""
        return result.stderr.strip().splitlines()

    quiet, verbose = stderr("-q"), stderr("-v")
    assert len(quiet) == 1 and quiet[0].startswith("tinykd: error: "), quiet
    assert "tinykd: debug: loading count:photos at 32x32x1" in verbose, verbose
    assert all(line.startswith("tinykd: ") for line in verbose), "no logger names or level prefixes of logging's own"
