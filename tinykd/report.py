"""Plots: confusion matrices and training curves, as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .artifacts import atomic_path


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
