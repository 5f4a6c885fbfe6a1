"""The training half of the pipeline, stage by stage, in one run directory `runs/<name>/`.

Each stage skips its work when its artifact already exists (so a run resumes where it stopped) unless
`force` is set; nothing existing is replaced without it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinykd.core.artifacts import write_json
from tinykd.core.config import PipelineConfig
from tinykd.train.data import Dataset, load_dataset
from tinykd.core.errors import TinykdError

DATASET_FILE = "dataset.json"
SUMMARY_FILE = "summary.json"


def teacher_path(config: PipelineConfig) -> Path:
    return config.run_dir / "teacher.keras"


def student_path(config: PipelineConfig, kd: bool = True) -> Path:
    return config.run_dir / ("student.keras" if kd else "student_nokd.keras")


def int8_path(config: PipelineConfig, kd: bool = True) -> Path:
    return student_path(config, kd).with_name(f"{student_path(config, kd).stem}_int8.tflite")


def load_data(config: PipelineConfig, record: bool = True) -> Dataset:
    """Load the configured dataset; with `record`, note what it was in the run's `dataset.json`."""
    d = config.data
    print(f"tinykd: loading {d.dataset} at {d.size[0]}x{d.size[1]}x{d.channels}")
    dataset = load_dataset(d.dataset, d.size, d.channels, d.validation_split, config.seed,
                           d.data_dir or None, d.limit)
    print(f"tinykd: {dataset.name} from {dataset.source}: {len(dataset.x_train):,} train, "
          f"{len(dataset.x_val):,} validation, {len(dataset.x_test):,} test images, "
          f"{dataset.num_classes} classes")
    if not record:
        return dataset
    write_json(config.run_dir / DATASET_FILE, {
        "dataset": d.dataset, "image_size": list(d.size), "channels": d.channels, "data_dir": d.data_dir,
        "limit": d.limit, "validation_split": d.validation_split, "seed": config.seed,
        "class_names": dataset.class_names, "source": dataset.source, "unlabelled": dataset.unlabelled,
        "train": len(dataset.x_train), "validation": len(dataset.x_val), "test": len(dataset.x_test)})
    return dataset


def _fresh(path: Path, force: bool, what: str) -> bool:
    """True when the stage must run; prints why it is skipped otherwise."""
    if path.exists() and not force:
        print(f"tinykd: keeping existing {what} {path} (--force retrains)")
        return False
    return True


def train_stage(config: PipelineConfig, dataset: Dataset, force: bool = False) -> Path:
    from tinykd.train.train import train_teacher

    path = teacher_path(config)
    if _fresh(path, force, "teacher"):
        train_teacher(config.teacher, dataset, config.run_dir, config.seed)
        print(f"tinykd: wrote {path}")
    return path


def distill_stage(config: PipelineConfig, dataset: Dataset, force: bool = False, kd: bool = True,
                  teachers: list[Path] | None = None) -> Path:
    """Train the student; the teachers default to this run's teacher plus `teacher.extra`."""
    from tinykd.train.distill import distill_student

    path = student_path(config, kd)
    if _fresh(path, force, "student"):
        if kd and teachers is None:
            teachers = [teacher_path(config)] + [Path(p) for p in config.teacher.extra]
            if not teachers[0].exists():
                raise TinykdError(f"{teachers[0]}: no teacher yet; run `tinykd train` first")
        distill_student(config.student, dataset, teachers or [], config.run_dir, config.seed, kd)
        print(f"tinykd: wrote {path}")
    return path


def quantize_stage(config: PipelineConfig, dataset: Dataset, model: Path, force: bool = False) -> dict:
    from tinykd.train.quantize import quantize_model

    model = Path(model)
    if not model.exists():
        raise TinykdError(f"{model}: no such model; train it first")
    summary_path = model.with_name(f"{model.stem}_quantize.json")
    if _fresh(model.with_name(f"{model.stem}_int8.tflite"), force, "INT8 model"):
        summary = quantize_model(model, dataset, model.parent, config.quantize.representative_samples,
                                 config.seed, config.quantize.per_channel_dense)
        print(f"tinykd: wrote {summary['int8']['path']} ({summary['int8']['bytes']:,} bytes, "
              f"test accuracy {summary['int8']['test_accuracy']:.2%}) and {summary['float32']['path']}")
        return summary
    return json.loads(summary_path.read_text()) if summary_path.exists() else {}


def evaluate_stage(model: Path, dataset: Dataset, out_dir: Path | None = None) -> dict:
    """Evaluate a model on the test split; plots and summary.json under `<run>/eval/<model>/`."""
    from tinykd.train.evaluate import evaluate_model
    from tinykd.train.train import read_history

    model = Path(model)
    out_dir = Path(out_dir) if out_dir else model.parent / "eval" / model.stem
    history = read_history(model) if model.suffix == ".keras" else None
    summary = evaluate_model(model, dataset.x_test, dataset.y_test, dataset.class_names, out_dir, history)
    print(f"tinykd: {model.name}: test accuracy {summary['accuracy']:.2%} on {summary['images']:,} images; "
          f"wrote {out_dir}/")
    return summary


def run(config: PipelineConfig, force: bool = False) -> dict:
    """The whole training half: data, teacher, student (and its no-KD baseline), INT8, evaluation."""
    started = time.perf_counter()
    seconds = {}

    def timed(name, fn, *args, **kwargs):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds[name] = round(time.perf_counter() - t, 1)
        return result

    dataset = timed("data", load_data, config)
    teacher = timed("teacher", train_stage, config, dataset, force)
    variants = [True, False] if config.student.kd and config.student.baseline else [config.student.kd]
    results = {}
    for kd in variants:
        label = "student" if kd else "student_nokd"
        student = timed(label, distill_stage, config, dataset, force, kd)
        quantized = timed(f"{label}_quantize", quantize_stage, config, dataset, student, force)
        history = json.loads(student.with_name(f"{student.stem}_history.json").read_text())
        results[label] = {
            "seconds_per_epoch": round(sum(history["epoch_seconds"]) / max(1, len(history["epoch_seconds"])), 2),
            "keras_test_accuracy": quantized["keras_test_accuracy"],
            "int8_test_accuracy": quantized["int8"]["test_accuracy"],
            "int8_bytes": quantized["int8"]["bytes"],
            "int8_path": quantized["int8"]["path"],
        }
    for model in [teacher, student_path(config, variants[0]), int8_path(config, variants[0])]:
        timed(f"evaluate_{model.name}", evaluate_stage, model, dataset)
    teacher_accuracy = json.loads((config.run_dir / "eval" / "teacher" / "summary.json").read_text())["accuracy"]
    summary = {"name": config.name, "dataset": config.data.dataset, "seed": config.seed,
               "teacher_test_accuracy": teacher_accuracy, **results,
               "seconds": seconds, "total_seconds": round(time.perf_counter() - started, 1)}
    if "student" in results and "student_nokd" in results:
        summary["kd_gain_int8"] = results["student"]["int8_test_accuracy"] - results["student_nokd"]["int8_test_accuracy"]
    write_json(config.run_dir / SUMMARY_FILE, summary)
    _print_summary(summary, config.run_dir)
    return summary


def int8_model(config: PipelineConfig) -> Path:
    """The pipeline's distilled INT8 model, running the missing stages (teacher, student, INT8) first."""
    path = int8_path(config, config.student.kd)
    if path.exists():
        return path
    print(f"tinykd: {path} does not exist yet; running the pipeline stages it needs")
    dataset = load_data(config)
    if config.student.kd:
        train_stage(config, dataset)
    quantize_stage(config, dataset, distill_stage(config, dataset, kd=config.student.kd))
    return path


def _print_summary(summary: dict, run_dir: Path) -> None:
    print(f"\ntinykd: run {summary['name']} finished in {summary['total_seconds'] / 60:.1f} min; "
          f"results in {run_dir / SUMMARY_FILE}")
    print(f"  teacher                    test accuracy {summary['teacher_test_accuracy']:.2%}")
    for label in ("student", "student_nokd"):
        if label in summary:
            r = summary[label]
            print(f"  {label:<13} INT8 {r['int8_bytes']:>7,} B  test accuracy {r['int8_test_accuracy']:.2%} "
                  f"(float {r['keras_test_accuracy']:.2%})")
    if "kd_gain_int8" in summary:
        print(f"  KD gain (INT8)             {summary['kd_gain_int8'] * 100:+.2f} points; a KD epoch took "
              f"{summary['student']['seconds_per_epoch'] / summary['student_nokd']['seconds_per_epoch']:.2f}x "
              "a plain one")


def config_for_model(model: Path, config: PipelineConfig, dataset_given: bool) -> PipelineConfig:
    """The data settings a model was trained with: its run's dataset.json (unless a dataset was given
    on the command line), with the image size and channels read from the model itself."""
    from tinykd.train.evaluate import model_input_shape

    model = Path(model)
    if not model.is_file():
        raise TinykdError(f"{model}: no such model file")
    recorded = model.parent / DATASET_FILE
    if recorded.exists() and not dataset_given:
        info = json.loads(recorded.read_text())
        config.data.dataset, config.data.data_dir = info["dataset"], info.get("data_dir", "")
        config.data.limit, config.seed = info.get("limit", 0), info.get("seed", config.seed)
    height, width, channels = model_input_shape(model)
    config.data.image_size, config.data.channels = [height, width], channels
    config.runs_dir, config.name = str(model.parent.parent), model.parent.name
    return config
