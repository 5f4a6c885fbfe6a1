"""Seconds per KD epoch against seconds per plain student epoch, measured side by side in one run.

    .venv/bin/python bench/distill.py [--images N] [--epochs E]

Uses the real Fashion-MNIST at 48x48 (first N training images) and the default teacher architecture
(its weights do not change the cost of its forward pass, so it is not trained here). The KD run includes
the one-off pass that caches the teacher's logits; both the per-epoch ratio and the ratio of whole runs
are printed. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tinykd.core.artifacts import RunLayout  # noqa: E402
from tinykd.core.config import StudentConfig  # noqa: E402
from tinykd.train.data import load_dataset  # noqa: E402
from tinykd.train.distill import distill_student  # noqa: E402
from tinykd.train.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset("fashion_mnist", (48, 48), 1, 0.1, 0, None, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        teacher = RunLayout(folder).teacher
        build_model("cnn_teacher", dataset.input_shape, dataset.num_classes, 1.0).save(teacher)
        config = StudentConfig(epochs=args.epochs)
        results = {}
        for kd in (False, True, False, True):  # interleaved, so drift affects both alike
            start = time.perf_counter()
            distill_student(config, dataset, [teacher], folder, kd=kd)
            total = time.perf_counter() - start
            history = json.loads(RunLayout(folder).history(RunLayout.student_stem(kd)).read_text())
            results.setdefault(kd, []).append((statistics.median(history["epoch_seconds"]), total))
    plain, distilled = results[False], results[True]
    epoch_plain = statistics.median(e for e, _ in plain)
    epoch_kd = statistics.median(e for e, _ in distilled)
    run_plain = statistics.median(t for _, t in plain)
    run_kd = statistics.median(t for _, t in distilled)
    print(f"\n{args.images:,} images, {args.epochs} epochs, tiny_conv student, cnn_teacher")
    print(f"{'':<22} {'plain':>8} {'KD':>8} {'KD/plain':>9}")
    print(f"{'seconds per epoch':<22} {epoch_plain:>8.2f} {epoch_kd:>8.2f} {epoch_kd / epoch_plain:>9.2f}")
    print(f"{'seconds per run':<22} {run_plain:>8.2f} {run_kd:>8.2f} {run_kd / run_plain:>9.2f}")


if __name__ == "__main__":
    main()
