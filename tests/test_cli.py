"""What the command line shows: the library's log lines on stderr, at the level -q and -v choose, and the
commands' results on stdout whatever the level."""

import subprocess
import sys

import pytest

from tinykd.cli import main

# loads the data (an info line, a debug line before it), then fails: the architecture cannot take 1x1 images
FAILS_AFTER_LOADING = ["train", "--dataset", "digits", "--image-size", "1", "--architecture", "classic_student"]
FAILURE = "tinykd: error: architecture 'classic_student' cannot take (1, 1, 1) inputs"


def _stderr_lines(argv, capsys) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip().splitlines()


def test_default_shows_progress_as_plain_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(FAILS_AFTER_LOADING, capsys)
    assert len(lines) == 2, lines
    assert lines[0].startswith("tinykd: digits from scikit-learn digits: ") and "test images" in lines[0]
    assert lines[1].startswith(FAILURE)


def test_quiet_silences_info_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(["-q", *FAILS_AFTER_LOADING], capsys)
    assert len(lines) == 1 and lines[0].startswith(FAILURE), lines


def test_verbose_shows_debug_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _stderr_lines(["--verbose", *FAILS_AFTER_LOADING], capsys)
    assert "tinykd: debug: loading digits at 1x1x1" in lines
    assert any(line.startswith("tinykd: digits from scikit-learn digits: ") for line in lines)
    assert lines[-1].startswith("tinykd: error: ")


def test_quiet_keeps_warnings(tmp_path, monkeypatch, capsys):
    from tinykd.deploy.boards import BUILTIN_DIR

    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "native.toml").write_text((BUILTIN_DIR / "native.toml").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "boards"]) == 0
    captured = capsys.readouterr()
    assert "native" in captured.out
    assert captured.err.startswith("tinykd: warning: board native comes from boards/native.toml, which replaces")


def test_quiet_still_prints_results(capsys):
    assert main(["-q", "models"]) == 0
    captured = capsys.readouterr()
    assert "tiny_conv" in captured.out and captured.err == ""


def test_quiet_and_verbose_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["-q", "-v", "models"])
    assert exit.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_converting_a_model_leaves_each_line_shown_once(monkeypatch, capsys):
    """TensorFlow's converter gives a root logger without handlers (the command line's) one of its own
    (absl's logging.basicConfig), which would show every tinykd line twice."""
    import logging

    import numpy as np
    from zoo import BUILDERS

    from tinykd.core.console import configure_logging
    from tinykd.train.quantize import to_int8_tflite

    monkeypatch.setattr(logging.root, "handlers", [])  # as in `tinykd`, not pytest's capturing handlers
    model = BUILDERS["mlp"]()
    to_int8_tflite(model, np.random.default_rng(0).random((8, *model.input_shape[1:]), np.float32))
    assert logging.root.handlers == []
    configure_logging()
    logging.getLogger("tinykd.train.quantize").info("converted")
    assert capsys.readouterr().err.count("converted") == 1


def test_levels_in_a_real_process(tmp_path):
    def stderr(*options):
        result = subprocess.run([sys.executable, "-m", "tinykd.cli", *options, *FAILS_AFTER_LOADING],
                                cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert result.returncode == 2 and result.stdout == ""
        return result.stderr.strip().splitlines()

    quiet, verbose = stderr("-q"), stderr("-v")
    assert len(quiet) == 1 and quiet[0].startswith("tinykd: error: "), quiet
    assert "tinykd: debug: loading digits at 1x1x1" in verbose, verbose
    assert all(line.startswith("tinykd: ") for line in verbose), "no logger names or level prefixes of logging's own"
