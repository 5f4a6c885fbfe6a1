"""A run's artifacts: where each one lives (RunLayout), writing them safely (atomic replacement,
deterministic JSON, no partial files on failure), and reading the files a user writes."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tinykd.core.errors import TinykdError


def evaluation_file(folder: str | Path, kind: str) -> Path:
    """A file of an evaluation folder (`<run>/eval/<model>/` or `evaluate --out`): kind summary
    (summary.json), or confusion or curves (the PNG plots)."""
    return Path(folder) / ("summary.json" if kind == "summary" else f"{kind}.png")


@dataclass(frozen=True)
class RunLayout:
    """The files of one run folder `<runs_dir>/<name>/`: every artifact's name is spelled here, once.

    A model's files share its stem: `<stem>.keras`, `<stem>_history.json`, `<stem>_int8.tflite`,
    `<stem>_float32.tflite`, `<stem>_quantize.json`, and its evaluation under `eval/<stem>/`.
    """

    folder: Path
    TEACHER = "teacher"
    STUDENT = "student"

    def __post_init__(self):
        object.__setattr__(self, "folder", Path(self.folder))

    @classmethod
    def for_name(cls, name: str, runs_dir: str | Path = "runs") -> RunLayout:
        return cls(Path(runs_dir) / name)

    @classmethod
    def of_model(cls, model_path: str | Path) -> RunLayout:
        """The run a model file lives in (its folder)."""
        return cls(Path(model_path).parent)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def runs_dir(self) -> Path:
        return self.folder.parent

    # the run's own records
    @property
    def dataset(self) -> Path:
        """What data the run was trained on (`tinykd evaluate` and `verify` read it back)."""
        return self.folder / "dataset.json"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def stages(self) -> Path:
        """The settings each kept model was made with, so a changed pipeline file never reuses it."""
        return self.folder / "stages.json"

    @property
    def count_cv(self) -> Path:
        return self.folder / "count_cv.json"

    @property
    def report_html(self) -> Path:
        return self.folder / "report.html"

    @property
    def report_md(self) -> Path:
        return self.folder / "report.md"

    # tinykd tune: the search's study, one folder per trial, the picked student
    @property
    def tune(self) -> Path:
        return self.folder / "tune"

    def trial(self, number: int) -> Path:
        return self.tune / str(number)

    @property
    def pick(self) -> Path:
        """Which trial `tinykd tune --pick` made the run's student (`tuned_int8.tflite`)."""
        return self.tune / "pick.json"

    # the pipeline's models
    @property
    def teacher(self) -> Path:
        return self.keras(self.TEACHER)

    @classmethod
    def student_stem(cls, kd: bool = True) -> str:
        return cls.STUDENT if kd else f"{cls.STUDENT}_nokd"

    def student(self, kd: bool = True) -> Path:
        return self.keras(self.student_stem(kd))

    def student_int8(self, kd: bool = True) -> Path:
        return self.int8(self.student_stem(kd))

    # any model's files, by stem
    def keras(self, stem: str) -> Path:
        return self.folder / f"{stem}.keras"

    def history(self, stem: str) -> Path:
        return self.folder / f"{stem}_history.json"

    def int8(self, stem: str) -> Path:
        return self.folder / f"{stem}_int8.tflite"

    def float32(self, stem: str) -> Path:
        return self.folder / f"{stem}_float32.tflite"

    def quantize_summary(self, stem: str) -> Path:
        return self.folder / f"{stem}_quantize.json"

    def evaluation(self, stem: str) -> Path:
        """The folder of a model's evaluation: its summary and plots."""
        return self.folder / "eval" / stem

    def evaluation_file(self, stem: str, kind: str) -> Path:
        """summary, confusion or curves of a model's evaluation (see `evaluation_file`)."""
        return evaluation_file(self.evaluation(stem), kind)


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_tree(folder: str | Path, files: dict[str, str | bytes]) -> None:
    """Write relative path -> text or bytes under `folder`, creating sub-folders (for build and staging
    folders; user-facing artifacts go through write_bytes)."""
    for relative, content in files.items():
        path = Path(folder) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def write_json(path: str | Path, obj) -> None:
    """Pretty, key-sorted JSON, so the same content always gives the same bytes."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_parsed(path: str | Path, parse: Callable[[str], object], language: str, missing: str):
    """`parse` of a text file, with its two usual faults as one-line errors: `PATH: <missing>` when there
    is no such file, and `PATH: not valid <language>: <reason>` for bad syntax or bytes."""
    try:
        return parse(Path(path).read_text())
    except FileNotFoundError:
        raise TinykdError(f"{path}: {missing}") from None
    except ValueError as exc:  # the parsers' decode errors and UnicodeDecodeError
        raise TinykdError(f"{path}: not valid {language}: {exc}") from None


def check_model_file(path: str | Path, kind: str = "model") -> Path:
    """`path` as a Path when it is a non-empty file; else a one-line error saying it is missing, a folder
    or empty (`kind`: "TFLite model", "Keras model", ...)."""
    path = Path(path)
    if path.is_dir():
        raise TinykdError(f"{path}: a folder, not a {kind} file")
    if not path.is_file():
        raise TinykdError(f"{path}: no such {kind} file")
    if path.stat().st_size == 0:
        raise TinykdError(f"{path}: the file is empty, not a {kind}")
    return path
