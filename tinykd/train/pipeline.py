"""The training half of the pipeline, stage by stage, in one run directory `runs/<name>/`.

Each stage skips its work when its artifact already exists (so a run resumes where it stopped) unless
`force` is set; nothing existing is replaced without it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tinykd.core.artifacts import RunLayout, check_model_file, write_json
from tinykd.core.config import PipelineConfig
from tinykd.train.data import Dataset, load_dataset
from tinykd.core.errors import TinykdError

log = logging.getLogger(__name__)


def load_data(config: PipelineConfig, record: bool = True) -> Dataset:
    """Load the configured dataset; with `record`, note what it was in the run's `dataset.json`."""
    d = config.data
    log.debug(f"loading {d.dataset} at {d.size[0]}x{d.size[1]}x{d.channels}")
    dataset = load_dataset(d.dataset, d.size, d.channels, d.validation_split, config.seed,
                           d.data_dir or None, d.limit)
    log.info(f"{dataset.name} from {dataset.source}: {len(dataset.x_train):,} train, "
             f"{len(dataset.x_val):,} validation, {len(dataset.x_test):,} test images, "
             f"{dataset.num_classes} classes")
    if not record:
        return dataset
    write_json(config.layout.dataset, {
        "dataset": d.dataset, "image_size": list(d.size), "channels": d.channels, "data_dir": d.data_dir,
        "limit": d.limit, "validation_split": d.validation_split, "seed": config.seed,
        "class_names": dataset.class_names, "source": dataset.source, "unlabelled": dataset.unlabelled,
        "train": len(dataset.x_train), "validation": len(dataset.x_val), "test": len(dataset.x_test)})
    return dataset


def _fresh(path: Path, force: bool, what: str) -> bool:
    """True when the stage must run; logs why it is skipped otherwise."""
    if path.exists() and not force:
        log.info(f"keeping existing {what} {path} (--force retrains)")
        return False
    return True


def train_stage(config: PipelineConfig, dataset: Dataset, force: bool = False) -> Path:
    from tinykd.train.train import train_teacher

    path = config.layout.teacher
    if _fresh(path, force, "teacher"):
        train_teacher(config.teacher, dataset, config.layout.folder, config.seed)
        log.info(f"wrote {path}")
    return path


def distill_stage(config: PipelineConfig, dataset: Dataset, force: bool = False, kd: bool = True,
                  teachers: list[Path] | None = None) -> Path:
    """Train the student; the teachers default to this run's teacher plus `teacher.extra`."""
    from tinykd.train.distill import distill_student

    path = config.layout.student(kd)
    if _fresh(path, force, "student"):
        if kd and teachers is None:
            teachers = [config.layout.teacher] + [Path(p) for p in config.teacher.extra]
            if not teachers[0].exists():
                raise TinykdError(f"{teachers[0]}: no teacher yet; run `tinykd train` first")
        distill_student(config.student, dataset, teachers or [], config.layout.folder, config.seed, kd)
        log.info(f"wrote {path}")
    return path


def quantize_stage(config: PipelineConfig, dataset: Dataset, model: Path, force: bool = False) -> dict:
    from tinykd.train.quantize import quantize_model

    model = Path(model)
    if not model.exists():
        raise TinykdError(f"{model}: no such model; train it first")
    layout = RunLayout.of_model(model)
    summary_path = layout.quantize_summary(model.stem)
    if _fresh(layout.int8(model.stem), force, "INT8 model"):
        summary = quantize_model(model, dataset, model.parent, config.quantize.representative_samples,
                                 config.seed, config.quantize.per_channel_dense)
        log.info(f"wrote {summary['int8']['path']} ({summary['int8']['bytes']:,} bytes, "
                 f"test accuracy {summary['int8']['test_accuracy']:.2%}) and {summary['float32']['path']}")
        return summary
    return json.loads(summary_path.read_text()) if summary_path.exists() else {}


def evaluate_stage(model: Path, dataset: Dataset, out_dir: Path | None = None) -> dict:
    """Evaluate a model on the test split; plots and summary.json under `<run>/eval/<model>/`."""
    from tinykd.train.evaluate import evaluate_model
    from tinykd.train.train import read_history

    model = Path(model)
    out_dir = Path(out_dir) if out_dir else RunLayout.of_model(model).evaluation(model.stem)
    history = read_history(model) if model.suffix == ".keras" else None
    return evaluate_model(model, dataset.x_test, dataset.y_test, dataset.class_names, out_dir, history)


def describe_evaluation(summary: dict) -> str:
    """One line: a model's test accuracy and where its evaluation went."""
    return (f"{Path(summary['model']).name}: test accuracy {summary['accuracy']:.2%} on {summary['images']:,} "
            f"images; wrote {Path(summary['files']['summary']).parent}/")


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
    layout = config.layout
    results = {}
    for kd in variants:
        label = layout.student_stem(kd)
        student = timed(label, distill_stage, config, dataset, force, kd)
        quantized = timed(f"{label}_quantize", quantize_stage, config, dataset, student, force)
        history = json.loads(layout.history(label).read_text())
        results[label] = {
            "seconds_per_epoch": round(sum(history["epoch_seconds"]) / max(1, len(history["epoch_seconds"])), 2),
            "keras_test_accuracy": quantized["keras_test_accuracy"],
            "int8_test_accuracy": quantized["int8"]["test_accuracy"],
            "int8_bytes": quantized["int8"]["bytes"],
            "int8_path": quantized["int8"]["path"],
        }
    for model in [teacher, layout.student(variants[0]), layout.student_int8(variants[0])]:
        log.info(describe_evaluation(timed(f"evaluate_{model.name}", evaluate_stage, model, dataset)))
    teacher_accuracy = json.loads(layout.evaluation_file(teacher.stem, "summary").read_text())["accuracy"]
    summary = {"name": config.name, "dataset": config.data.dataset, "seed": config.seed,
               "teacher_test_accuracy": teacher_accuracy, **results,
               "seconds": seconds, "total_seconds": round(time.perf_counter() - started, 1)}
    kd, plain = layout.student_stem(True), layout.student_stem(False)
    if kd in results and plain in results:
        summary["kd_gain_int8"] = results[kd]["int8_test_accuracy"] - results[plain]["int8_test_accuracy"]
    write_json(layout.summary, summary)
    return summary


def int8_model(config: PipelineConfig) -> Path:
    """The pipeline's distilled INT8 model, running the missing stages (teacher, student, INT8) first."""
    path = config.layout.student_int8(config.student.kd)
    if path.exists():
        return path
    log.info(f"{path} does not exist yet; running the pipeline stages it needs")
    dataset = load_data(config)
    if config.student.kd:
        train_stage(config, dataset)
    quantize_stage(config, dataset, distill_stage(config, dataset, kd=config.student.kd))
    return path


def config_for_model(model: Path, config: PipelineConfig, dataset_given: bool) -> PipelineConfig:
    """The data settings a model was trained with: its run's dataset.json (unless a dataset was given
    on the command line), with the image size and channels read from the model itself."""
    from tinykd.train.evaluate import model_input_shape

    model = Path(model)
    check_model_file(model)
    layout = RunLayout.of_model(model)
    recorded = layout.dataset
    if recorded.exists() and not dataset_given:
        info = json.loads(recorded.read_text())
        config.data.dataset, config.data.data_dir = info["dataset"], info.get("data_dir", "")
        config.data.limit, config.seed = info.get("limit", 0), info.get("seed", config.seed)
    height, width, channels = model_input_shape(model)
    config.data.image_size, config.data.channels = [height, width], channels
    config.runs_dir, config.name = str(layout.runs_dir), layout.name
    return config
