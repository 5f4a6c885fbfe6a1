"""Plots (confusion matrices, training curves, sizes, accuracy against cost) and the run report: one
self-contained HTML page (images embedded) and a Markdown summary, from the JSON files of a run."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import RunLayout, atomic_path, write_bytes
from tinykd.core.errors import TinykdError

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    _pyplot().close(fig)


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path, title: str = "") -> None:
    """Confusion matrix with counts in each cell; rows are true classes."""
    plt = _pyplot()
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    ax.set_title(f"{title} accuracy {np.trace(matrix) / max(matrix.sum(), 1):.2%}", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_history(history: dict, path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, ax in (("loss", loss_ax), ("categorical_accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    loss_ax.set_title(f"{title} loss", fontsize=9)
    acc_ax.set_title(f"{title} accuracy", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png", metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def plot_sizes(sizes: dict[str, int]) -> bytes:
    """Horizontal bars of file sizes in KB (PNG bytes)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.45 * len(sizes)))
    names = list(sizes)
    ax.barh(names, [sizes[n] / 1024 for n in names], color="#4c72b0")
    for i, name in enumerate(names):
        ax.text(sizes[name] / 1024, i, f" {sizes[name] / 1024:,.1f} KB", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("KB")
    ax.set_title("model sizes", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def plot_accuracy_cost(points: list[tuple[str, float, float]]) -> bytes:
    """Accuracy against instructions per inference, one labelled point per (label, instructions, accuracy)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for label, instructions, accuracy in points:
        ax.scatter(instructions / 1e6, accuracy * 100)
        ax.annotate(label, (instructions / 1e6, accuracy * 100), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel("million instructions per inference")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def plot_tune_front(tune: dict) -> bytes:
    """`tinykd tune`'s trials: validation accuracy against instructions per inference, the Pareto front
    highlighted (it is the front in accuracy, instructions and RAM), the run's own student marked (PNG bytes)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    members = set(tune["front"])
    trials = tune["trials"]
    others = [t for t in trials if t["trial"] not in members]
    front = [t for t in trials if t["trial"] in members]
    for group, style in ((others, dict(color="#b0b0b0", s=18, label="trial")),
                         (front, dict(color="#dd5522", s=30, label="Pareto front"))):
        ax.scatter([t["metrics"]["instructions"] / 1e6 for t in group],
                   [t["metrics"]["accuracy"] * 100 for t in group], zorder=3, **style)
    for t in front:
        ax.annotate(str(t["trial"]), (t["metrics"]["instructions"] / 1e6, t["metrics"]["accuracy"] * 100),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    if tune.get("default"):
        m = tune["default"]["metrics"]
        ax.scatter([m["instructions"] / 1e6], [m["accuracy"] * 100], marker="*", s=140, color="#2255aa",
                   zorder=4, label=f"default student ({tune['default']['params']['architecture']})")
    ax.set_xlabel(f"million instructions per inference on {tune['board']['name']} (QEMU)")
    ax.set_ylabel("INT8 validation accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TinykdError(f"{path}: cannot read it as JSON ({exc})") from None


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


SUMMARY_KEYS = ("name", "dataset", "seed", "teacher_test_accuracy")
"""What the report needs from summary.json (tinykd run writes it)."""


def collect(run_dir: Path, builds_dir: Path | None) -> dict:
    """Everything the report shows, read from the run's files and, of the bundles in `builds_dir`, those
    built from this run's INT8 student, with their verify.json."""
    layout = RunLayout(run_dir)
    summary = _read_json(layout.summary)
    if summary is None:
        raise TinykdError(f"{run_dir}: no {layout.summary.name}; run `tinykd run` first")
    missing = [key for key in SUMMARY_KEYS if not isinstance(summary, dict) or key not in summary]
    if missing:
        raise TinykdError(f"{layout.summary}: no {missing[0]!r}; it is not what `tinykd run` writes (run it again)")
    dataset = _read_json(layout.dataset) or {}
    student = layout.student_stem()
    models = {}
    for model in (layout.teacher, layout.student(), layout.student_int8()):
        evaluation = _read_json(layout.evaluation_file(model.stem, "summary"))
        if evaluation:
            plots = {kind: layout.evaluation_file(model.stem, kind) for kind in ("confusion", "curves")}
            models[model.stem] = {"accuracy": evaluation["accuracy"], "images": {
                kind: _data_uri(path.read_bytes()) for kind, path in plots.items() if path.exists()}}
    sizes = {label: path.stat().st_size for label, path in (
        ("teacher (.keras)", layout.teacher), ("student (.keras)", layout.student()),
        ("student float32 (.tflite)", layout.float32(student)), ("student INT8 (.tflite)", layout.student_int8()))
        if path.exists()}
    boards = run_bundles(layout.student_int8(), builds_dir)
    int8 = summary.get("student", {}).get("int8_test_accuracy")
    points = [(b["manifest"]["board"]["name"], r["instructions_per_inference"], int8) for b in boards if b["verify"]
              for r in b["verify"]["runtimes"] if r["instructions_per_inference"] and int8 is not None]
    tune = _read_json(layout.tune / "front.json")
    if tune:
        from tinykd.train.tune.results import student_text

        for trial in [*tune["trials"], *([tune["default"]] if tune.get("default") else [])]:
            trial["student"] = student_text(trial["params"])
    return {"summary": summary, "dataset": dataset, "models": models, "sizes": sizes, "boards": boards,
            "tune": tune,
            "plots": {"sizes": _data_uri(plot_sizes(sizes)) if sizes else None,
                      "accuracy_cost": _data_uri(plot_accuracy_cost(points)) if points else None,
                      "tune": _data_uri(plot_tune_front(tune)) if tune and tune["trials"] else None}}


def run_bundles(model_path: Path, builds_dir: Path | None) -> list[dict]:
    """The bundles under `builds_dir` (default: ./build when it exists) built from `model_path`, each with
    its verify.json (if that verified this model) and a verdict: "yes" (byte-equal on the board's
    firmware), "host only" (byte-equal, but verified natively only), "no" or "not run"."""
    if builds_dir is None:
        builds_dir = Path("build")
        if not builds_dir.is_dir():
            return []
    elif not Path(builds_dir).is_dir():
        raise TinykdError(f"--builds {builds_dir}: no such folder")
    sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest() if model_path.is_file() else None
    bundles, others = [], 0
    for manifest_path in sorted(Path(builds_dir).glob("*/manifest.json")):
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, dict) or manifest.get("model", {}).get("sha256") != sha256:
            others += 1
            continue
        verify = _read_json(manifest_path.parent / "verify.json")
        if verify and verify.get("model", {}).get("sha256") != sha256:
            verify = None  # a verification of an earlier model in the same folder
        bundles.append({"manifest": manifest, "verify": verify, "verified": _verdict(verify)})
    if others:
        log.info("report: %d bundle(s) in %s are of other models: not listed", others, builds_dir)
    return bundles


def _verdict(verify: dict | None) -> str:
    if not verify:
        return "not run"
    if not verify["bit_exact"]:
        return "no"
    on_target = [r for r in verify["runtimes"] if r["runtime"].startswith("firmware on")]
    return "yes" if on_target else "host only"


def write_report(run_dir: Path, builds_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.html (self-contained) and report.md into the run folder."""
    from tinykd.core.templates import environment

    layout = RunLayout(run_dir)
    values = collect(layout.folder, builds_dir)
    env = environment(compact=True)
    paths = layout.report_html, layout.report_md
    for path in paths:
        write_bytes(path, env.get_template(f"report/{path.name}.j2").render(values).encode())
    return paths
