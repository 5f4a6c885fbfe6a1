"""The training half of the pipeline, stage by stage, in one run directory `runs/<name>/`.

Each stage skips its work when its artifact already exists (so a run resumes where it stopped) unless
`force` is set; nothing existing is replaced without it. What made each model is recorded in the run's
`stages.json`: the settings it was trained or converted with and the hashes of the models it came from.
A kept model made otherwise (the pipeline file changed, a teacher was retrained) is an error naming the
first difference, before any work: it is never silently reused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable

from tinykd.core.artifacts import RunLayout, check_model_file, write_json
from tinykd.core.config import PipelineConfig
from tinykd.train.data import Dataset, load_dataset
from tinykd.train.devices import training_scope
from tinykd.train.npz import is_npz, npz_sha256
from tinykd.core.errors import TinykdError

log = logging.getLogger(__name__)


def load_data(config: PipelineConfig, record: bool = True) -> Dataset:
    """Load the configured dataset; with `record`, note what it was in the run's `dataset.json`."""
    d = config.data
    npz = is_npz(d.dataset)
    log.debug(f"loading {d.dataset}" + ("" if npz else f" at {d.size[0]}x{d.size[1]}x{d.channels}"))
    dataset = load_dataset(d.dataset, d.size, d.channels, d.validation_split, config.seed,
                           d.data_dir or None, d.limit)
    shape = "x".join(map(str, dataset.input_shape))
    log.info(f"{dataset.name} from {dataset.source}: {len(dataset.x_train):,} train, "
             f"{len(dataset.x_val):,} validation, {len(dataset.x_test):,} test "
             f"{f'samples of {shape}' if npz else 'images'}, {dataset.num_classes} classes")
    if not record:
        return dataset
    write_json(config.layout.dataset, _applicable(config, {
        "dataset": d.dataset, "image_size": list(d.size), "channels": d.channels, "data_dir": d.data_dir,
        "limit": d.limit, "validation_split": d.validation_split, "seed": config.seed,
        "class_names": dataset.class_names, "input_shape": list(dataset.input_shape), "source": dataset.source,
        "unlabelled": dataset.unlabelled,
        "train": len(dataset.x_train), "validation": len(dataset.x_val), "test": len(dataset.x_test)}))
    return dataset


def _applicable(config: PipelineConfig, data: dict) -> dict:
    """Data settings without those that do not apply: image size and channels for npz: features."""
    if not is_npz(config.data.dataset):
        return data
    return {k: v for k, v in data.items() if k not in ("image_size", "channels")}


def lazy_data(config: PipelineConfig, record: bool = True) -> Callable[[], Dataset]:
    """The dataset, loaded (and recorded in dataset.json) the first time a stage needs it: a run whose
    models are all kept loads nothing before its checks."""
    return functools.cache(lambda: load_data(config, record))


def stage_settings(config: PipelineConfig, sources: list[Path], section: str | None = None) -> dict:
    """What a model depends on: the data, the seed, one pipeline-file section and the models it is made from.
    For an npz: dataset that is the file's content, not the image size and channels, which do not apply."""
    data = _applicable(config, dataclasses.asdict(config.data) | {"image_size": list(config.data.size)})
    if is_npz(config.data.dataset):
        data["sha256"] = npz_sha256(config.data.dataset)
    settings = {"data": data, "seed": config.seed,
                "sources": {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sources}}
    if section:
        values = dataclasses.asdict(getattr(config, section))
        settings[section] = {k: v for k, v in values.items() if k not in ("kd", "baseline")}  # not the model's
        if not values.get("depth"):
            settings[section].pop("depth", None)  # as models made before students had a depth recorded them
    return settings


def _fresh(path: Path, settings: dict, force: bool, what: str) -> bool:
    """True when the stage must run. A kept model is reused only when it was made with `settings`."""
    if not path.exists() or force:
        return True
    recorded = _read_stages(path).get(path.name)
    difference = _first_difference(recorded, settings) if recorded is not None else None
    if difference:
        key, then, now = difference
        source = key.removeprefix("sources.")
        why = (f"made from another {source} than the one there now" if source != key else
               f"made with {key} = {json.dumps(then)}, which is now {json.dumps(now)}")
        raise TinykdError(f"{path}: kept from an earlier run {why}; --force remakes it and what comes after "
                          "it, or choose another --name")
    log.info(f"keeping existing {what} {path} (--force retrains)")
    return False


def _record(path: Path, settings: dict) -> None:
    write_json(RunLayout.of_model(path).stages, _read_stages(path) | {path.name: settings})


def _read_stages(path: Path) -> dict:
    stages = RunLayout.of_model(path).stages
    return json.loads(stages.read_text()) if stages.exists() else {}


def _first_difference(then, now, key: str = "") -> tuple[str, object, object] | None:
    """(dotted key, recorded value, current value) of the first setting that differs, or None."""
    if isinstance(then, dict) and isinstance(now, dict):
        for name in sorted(set(then) | set(now)):
            found = _first_difference(then.get(name), now.get(name), f"{key}.{name}" if key else name)
            if found:
                return found
        return None
    return None if then == now else (key, then, now)


def _for_data(config: PipelineConfig, section: str) -> PipelineConfig:
    """The config with `section` (teacher or student) as it applies to the data: augmentation crops and
    brightens images, so npz: features train without it."""
    settings = getattr(config, section)
    if not (settings.augment and is_npz(config.data.dataset)):
        return config
    log.debug(f"{section}: no augmentation for npz: features (augment is for images)")
    return dataclasses.replace(config, **{section: dataclasses.replace(settings, augment=False)})


def train_stage(config: PipelineConfig, data: Callable[[], Dataset], force: bool = False) -> Path:
    from tinykd.train.train import train_teacher

    config = _for_data(config, "teacher")
    path = config.layout.teacher
    settings = stage_settings(config, [], "teacher")
    if _fresh(path, settings, force, "teacher"):
        dataset = data()
        with training_scope(config.distribute):
            train_teacher(config.teacher, dataset, config.layout.folder, config.seed)
        _record(path, settings)
        log.info(f"wrote {path}")
    return path


def distill_stage(config: PipelineConfig, data: Callable[[], Dataset], force: bool = False, kd: bool = True,
                  teachers: list[Path] | None = None) -> Path:
    """Train the student; the teachers default to this run's teacher plus `teacher.extra`."""
    from tinykd.train.distill import distill_student

    config = _for_data(config, "student")
    path = config.layout.student(kd)
    if kd and teachers is None:
        teachers = [config.layout.teacher] + [Path(p) for p in config.teacher.extra]
    teachers = teachers if kd else []
    missing = [t for t in teachers if not t.is_file()]
    if missing:
        raise TinykdError(f"{missing[0]}: no such teacher; run `tinykd train` first")
    settings = stage_settings(config, teachers, "student")
    if _fresh(path, settings, force, "student"):
        dataset = data()
        with training_scope(config.distribute):
            distill_student(config.student, dataset, teachers, config.layout.folder, config.seed, kd)
        _record(path, settings)
        log.info(f"wrote {path}")
    return path


def quantize_stage(config: PipelineConfig, data: Callable[[], Dataset], model: Path, force: bool = False) -> dict:
    from tinykd.train.quantize import quantize_model

    model = Path(model)
    if not model.exists():
        raise TinykdError(f"{model}: no such model; train it first")
    layout = RunLayout.of_model(model)
    summary_path = layout.quantize_summary(model.stem)
    settings = stage_settings(config, [model], "quantize")
    if _fresh(layout.int8(model.stem), settings, force, "INT8 model"):
        summary = quantize_model(model, data(), model.parent, config.quantize.representative_samples,
                                 config.seed, config.quantize.per_channel_dense)
        _record(layout.int8(model.stem), settings)
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

    data = lazy_data(config)
    teacher = timed("teacher", train_stage, config, data, force)
    variants = [True, False] if config.student.kd and config.student.baseline else [config.student.kd]
    layout = config.layout
    results = {}
    for kd in variants:
        label = layout.student_stem(kd)
        student = timed(label, distill_stage, config, data, force, kd)
        quantized = timed(f"{label}_quantize", quantize_stage, config, data, student, force)
        history = json.loads(layout.history(label).read_text())
        results[label] = {
            "seconds_per_epoch": round(sum(history["epoch_seconds"]) / max(1, len(history["epoch_seconds"])), 2),
            "keras_test_accuracy": quantized["keras_test_accuracy"],
            "int8_test_accuracy": quantized["int8"]["test_accuracy"],
            "int8_bytes": quantized["int8"]["bytes"],
            "int8_path": quantized["int8"]["path"],
        }
    for model in [teacher, layout.student(variants[0]), layout.student_int8(variants[0])]:
        log.info(describe_evaluation(timed(f"evaluate_{model.name}", evaluate_stage, model, data())))
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
    """The run's INT8 student: the one `tinykd tune --pick` chose, else the pipeline's distilled INT8
    model, running the missing stages (teacher, student, INT8) first."""
    from tinykd.train.tune.results import picked_student

    picked = picked_student(config.layout)
    if picked is not None:
        log.info(f"the run's student is {picked}, picked from the search ({config.layout.pick})")
        return picked
    path = config.layout.student_int8(config.student.kd)
    if not path.exists():
        epochs = f"teacher {config.teacher.epochs} epochs, " if config.student.kd else ""
        log.info(f"{path} does not exist yet; running the pipeline stages it needs ({epochs}student "
                 f"{config.student.epochs} epochs; each epoch logs the time left)")
    data = lazy_data(config)
    if config.student.kd:
        train_stage(config, data)
    quantize_stage(config, data, distill_stage(config, data, kd=config.student.kd))
    return path


def config_for_model(model: Path, config: PipelineConfig, dataset_given: bool) -> PipelineConfig:
    """The data settings a model was trained with: its run's dataset.json (unless a dataset was given
    on the command line), with the image size and channels read from the model itself (when it takes images)."""
    from tinykd.train.evaluate import model_input_shape

    model = Path(model)
    check_model_file(model)
    layout = RunLayout.of_model(model)
    recorded = layout.dataset
    if recorded.exists() and not dataset_given:
        info = json.loads(recorded.read_text())
        config.data.dataset, config.data.data_dir = info["dataset"], info.get("data_dir", "")
        config.data.limit, config.seed = info.get("limit", 0), info.get("seed", config.seed)
    shape = model_input_shape(model)
    if len(shape) == 3:
        config.data.image_size, config.data.channels = list(shape[:2]), shape[2]
    config.runs_dir, config.name = str(layout.runs_dir), layout.name
    return config
