"""What KD buys: the default student with and without KD over several seeds, and a small alpha x T grid.

    .venv/bin/python bench/distill.py [--seeds K] [--alphas A,A] [--temperatures T,T] [--out DIR]
    .venv/bin/python bench/distill.py --timing [--images N] [--epochs E]

Uses the real Fashion-MNIST at 48x48 and the defaults of the pipeline file (teacher, student, INT8).
One teacher is trained (seed 0) and kept in DIR/teacher.keras; each seed then trains the student with
KD and without it (same initialisation and shuffling for both), quantizes both to INT8 and measures
their test accuracy. The grid trains KD students with seed 0 for each (alpha, temperature) pair.
Every finished model's result is kept in DIR/results.json, so a stopped run resumes where it stopped.
Prints mean and sample standard deviation over the seeds, and the paired difference KD - plain.

--timing instead prints seconds per epoch and per batch of the plain student, KD on cached teacher
logits, and KD with the teacher in every step (augmentation on), Keras or ONNX (onnxruntime), measured
side by side (untrained teacher: its weights do not change its cost).
Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tinykd.core.artifacts import RunLayout, write_json  # noqa: E402
from tinykd.core.config import PipelineConfig, StudentConfig  # noqa: E402
from tinykd.train.data import load_dataset  # noqa: E402
from tinykd.train.distill import distill_student  # noqa: E402
from tinykd.train.export import export_model  # noqa: E402
from tinykd.train.models import build_model  # noqa: E402
from tinykd.train.quantize import quantize_model  # noqa: E402
from tinykd.train.train import train_teacher  # noqa: E402


def numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the KD / no-KD comparison (default: 3)")
    parser.add_argument("--alphas", type=numbers, default=[0.2, 0.8], help="grid alphas (default: 0.2,0.8)")
    parser.add_argument("--temperatures", type=numbers, default=[2.0, 5.0],
                        help="grid temperatures (default: 2,5)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_distill"), help="models and results.json")
    parser.add_argument("--limit", type=int, default=0, help="at most this many training images (0: all)")
    parser.add_argument("--timing", action="store_true", help="seconds per epoch: plain, cached KD, live KD")
    parser.add_argument("--images", type=int, default=20000, help="--timing: training images")
    parser.add_argument("--epochs", type=int, default=3, help="--timing: epochs (at least 2)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.timing:
        timing(args.images, args.epochs)
    else:
        accuracy(args)


def accuracy(args) -> None:
    defaults = PipelineConfig()
    d = defaults.data
    dataset = load_dataset(d.dataset, d.size, d.channels, d.validation_split, 0, None, args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    started = time.perf_counter()
    teacher = RunLayout(args.out).teacher
    if not teacher.exists():
        train_teacher(defaults.teacher, dataset, args.out, seed=0)
    base = defaults.student
    jobs = [(seed, kd, base.alpha, base.temperature) for seed in range(args.seeds) for kd in (True, False)]
    jobs += [(0, True, a, t) for a in args.alphas for t in args.temperatures
             if (a, t) != (base.alpha, base.temperature)]
    for seed, kd, alpha, temperature in jobs:
        key = f"seed{seed}_{'kd' if kd else 'nokd'}_a{alpha:g}_T{temperature:g}"
        if key in results:
            continue
        t = time.perf_counter()
        folder = args.out / key
        config = replace(base, alpha=alpha, temperature=temperature)
        model = distill_student(config, dataset, [teacher], folder, seed=seed, kd=kd)
        summary = quantize_model(model, dataset, folder, defaults.quantize.representative_samples, seed)
        results[key] = {"seed": seed, "kd": kd, "alpha": alpha, "temperature": temperature,
                        "int8": summary["int8"]["test_accuracy"], "float": summary["keras_test_accuracy"],
                        "seconds": round(time.perf_counter() - t, 1)}
        write_json(results_path, results)
        logging.info(f"{key}: INT8 test accuracy {results[key]['int8']:.2%} ({results[key]['seconds']:.0f} s)")
    report(results, args.seeds, base, time.perf_counter() - started)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{100 * statistics.mean(values):6.2f} ± {100 * sd:4.2f}"


def report(results: dict, seeds: int, base: StudentConfig, seconds: float) -> None:
    def of(kd, alpha=base.alpha, temperature=base.temperature):
        return {r["seed"]: r["int8"] for r in results.values()
                if r["kd"] == kd and (not kd or (r["alpha"], r["temperature"]) == (alpha, temperature))
                and r["seed"] < seeds}

    kd, plain = of(True), of(False)
    paired = [kd[s] - plain[s] for s in sorted(kd) if s in plain]
    print(f"\nFashion-MNIST 48x48, {base.architecture} student, {base.epochs} epochs, INT8 test accuracy (%), "
          f"mean ± sample standard deviation over {len(paired)} seeds")
    print(f"  no KD                    {mean_sd(list(plain.values()))}")
    print(f"  KD alpha {base.alpha:g} T {base.temperature:g}         {mean_sd(list(kd.values()))}")
    print(f"  paired KD - no KD        {mean_sd(paired)} points  (per seed: "
          f"{', '.join(f'{100 * d:+.2f}' for d in paired)})")
    print("grid, seed 0 only (KD alpha, T: INT8 test accuracy %)")
    for r in sorted((r for r in results.values() if r["kd"] and r["seed"] == 0),
                    key=lambda r: (r["alpha"], r["temperature"])):
        print(f"  alpha {r['alpha']:<4g} T {r['temperature']:<4g} {100 * r['int8']:6.2f}")
    print(f"this invocation took {seconds / 60:.1f} min; per model: "
          f"{statistics.mean(r['seconds'] for r in results.values()) / 60:.1f} min on average")


def timing(images: int, epochs: int) -> None:
    dataset = load_dataset("fashion_mnist", (48, 48), 1, 0.1, 0, None, images)
    steps = -(-len(dataset.x_train) // StudentConfig().batch_size)
    variants = [  # (label, kd, augment, teacher file)
        ("plain", False, False, "teacher.keras"),
        ("plain, augmented", False, True, "teacher.keras"),
        ("KD, cached logits", True, False, "teacher.keras"),
        ("KD live, Keras teacher", True, True, "teacher.keras"),
        ("KD live, ONNX teacher", True, True, "teacher.onnx"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        teacher = RunLayout(folder).teacher
        build_model("cnn_teacher", dataset.input_shape, dataset.num_classes, 1.0).save(teacher)
        export_model(teacher, out=folder / "teacher.onnx")
        results = {}
        for _ in range(2):  # interleaved, so drift affects every variant alike
            for label, kd, augment, name in variants:
                start = time.perf_counter()
                distill_student(StudentConfig(epochs=epochs, augment=augment), dataset, [folder / name], folder,
                                kd=kd)
                total = time.perf_counter() - start
                history = json.loads(RunLayout(folder).history(RunLayout.student_stem(kd)).read_text())
                results.setdefault(label, []).append((statistics.median(history["epoch_seconds"][1:]), total))
    print(f"\n{len(dataset.x_train):,} images ({steps} batches), {epochs} epochs, tiny_conv student, "
          "untrained cnn_teacher; medians of 2 runs, first epoch (tracing) left out of the per-epoch figure")
    print(f"{'':<24} {'s/epoch':>8} {'ms/batch':>9} {'x plain':>8} {'s/run':>7}")
    base = statistics.median(e for e, _ in results["plain"])
    for label, runs in results.items():
        epoch, total = statistics.median(e for e, _ in runs), statistics.median(t for _, t in runs)
        print(f"{label:<24} {epoch:>8.2f} {1000 * epoch / steps:>9.1f} {epoch / base:>8.2f} {total:>7.1f}")


if __name__ == "__main__":
    main()
