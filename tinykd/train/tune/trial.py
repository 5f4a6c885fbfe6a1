"""One trial of `tinykd tune`: a student drawn from the [tune] ranges, trained by KD on the teacher's cached
logits, converted to INT8, and measured on the board: its C backend's exact flash and RAM, compiled for
the board, and its exact instructions per inference, run on the board's core in QEMU."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np

from tinykd.core.artifacts import RunLayout, atomic_path, write_json
from tinykd.core.config import PipelineConfig
from tinykd.core.errors import TinykdError
from tinykd.deploy.boards import Board
from tinykd.train.data import Dataset

log = logging.getLogger(__name__)

STEM = "student"
"""A trial folder's model stem: student.keras, student_int8.tflite, ..."""
TRIAL_FILE = "trial.json"
"""A trial folder's record of its settings and numbers, written last: a folder without one is incomplete."""
COST_SOURCE = "QEMU"
"""Where a trial's instruction count comes from: every trial runs on the board's core in QEMU."""


def suggest(trial, config: PipelineConfig) -> dict:
    """The trial's student, drawn from the pipeline file's [tune] ranges."""
    tune = config.tune
    return {
        "architecture": trial.suggest_categorical("architecture", tune.architectures),
        "width": trial.suggest_float("width", *tune.width, log=tune.width[0] < tune.width[1]),
        "image_size": (trial.suggest_categorical("image_size", tune.image_sizes) if tune.image_sizes
                       else config.data.image_size),
        "alpha": trial.suggest_float("alpha", *tune.alpha),
        "temperature": trial.suggest_float("temperature", *tune.temperature),
        "epochs": trial.suggest_int("epochs", *tune.epochs),
        "depth": trial.suggest_int("depth", *tune.depth),
    }


def size_text(image_size: int | list[int]) -> str:
    """48, or 48x32 for [height, width]."""
    return "x".join(map(str, image_size)) if isinstance(image_size, list) else str(image_size)


def teacher_files(config: PipelineConfig) -> list[Path]:
    """The run's teacher and `teacher.extra`, as `tinykd distill` averages them."""
    return [config.layout.teacher] + [Path(p) for p in config.teacher.extra]


def teachers_digest(config: PipelineConfig) -> str:
    digest = hashlib.sha256()
    for path in teacher_files(config):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def teacher_logits(config: PipelineConfig, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The teachers' logits on the training and validation images, computed once per search and kept in
    `tune/teacher_logits.npz` (remade when a teacher changes)."""
    from tinykd.train.distill import ensemble_logits, load_teacher

    path = config.layout.tune / "teacher_logits.npz"
    digest = teachers_digest(config)
    if path.exists():
        with np.load(path) as kept:
            if str(kept["teachers"]) == digest and len(kept["train"]) == len(data.x_train):
                return kept["train"], kept["val"]
    log.info("computing the teachers' logits once for the whole search")
    teachers = [load_teacher(p) for p in teacher_files(config)]
    train = ensemble_logits(teachers, data.x_train, data.num_classes)
    val = ensemble_logits(teachers, data.x_val, data.num_classes)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            np.savez(file, train=train, val=val, teachers=np.array(digest))
    return train, val


def measure_on_board(model_path: Path, board: Board, folder: Path, image: np.ndarray,
                     sources: dict[str, str] | None = None) -> dict:
    """The C backend (`sources`, default generated here) of an INT8 model for the board: exact flash and
    RAM (compiled for it), and the
    instructions of one inference of `image` on the board's core in QEMU (-icount: exact, repeatable).
    The firmware is linked with the QEMU machine's memory, so a model too big for the board is measured
    all the same (the caller judges the fit)."""
    from tinykd.core.artifacts import write_tree
    from tinykd.deploy.bundle import c_backend_fit
    from tinykd.deploy.cbackend.lower import generate_c_backend
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import quantized_images
    from tinykd.verify.runners import machine_for, make_runner
    from tinykd.verify.toolchain import build_firmware, c_backend_size

    model = read_model(model_path)
    sources = sources or generate_c_backend(model)
    write_tree(folder / "c", sources)
    size = c_backend_size(sources, board)
    machine = machine_for(board)
    roomy = dataclasses.replace(board, flash_bytes=machine.flash_bytes, ram_bytes=machine.ram_bytes)
    elf = build_firmware(folder / "c", roomy, folder / "fw", target="qemu")
    shutil.rmtree(folder / "fw" / "cmake-build", ignore_errors=True)
    _, instructions = make_runner("qemu", elf, board).run(quantized_images(model, image[None]))
    fit = c_backend_fit(size, board)
    return {"instructions": int(instructions), "ms": instructions / board.clock_hz * 1e3,
            "ram_bytes": size["ram_bytes"], "flash_bytes": size["flash_bytes"], "fits": fit.fits,
            "ram_total_bytes": fit.ram_bytes, "flash_total_bytes": fit.flash_bytes}


def constraints(metrics: dict, board: Board, max_ms: float) -> list[float]:
    """Optuna's constraint values (<= 0: satisfied): RAM and flash against the board's, and the time
    budget at its clock (max_ms 0: none)."""
    return [float(metrics["ram_total_bytes"] - board.ram_bytes),
            float(metrics["flash_total_bytes"] - board.flash_bytes),
            float(metrics["ms"] - max_ms) if max_ms else 0.0]


def feasible(metrics: dict, max_ms: float) -> bool:
    return metrics["fits"] and (not max_ms or metrics["ms"] <= max_ms)


class CandidateError(Exception):
    """This trial's student cannot be made or run (an input too small for the architecture, an op the C
    backend has no kernel for): the search goes on without it."""


def run_trial(number: int, params: dict, config: PipelineConfig, board: Board, data: Dataset,
              logits: tuple[np.ndarray, np.ndarray]) -> dict:
    """Train, quantize and measure one student into `tune/<number>/`, whose trial.json, written last, marks
    it complete. Returns its metrics; CandidateError when it cannot be made."""
    from tinykd.deploy.cbackend.lower import generate_c_backend
    from tinykd.tflite.reader import read_model
    from tinykd.train.distill import distill_on_logits
    from tinykd.train.evaluate import accuracy_of, predict
    from tinykd.train.models import build_model
    from tinykd.train.quantize import quantize_model
    from tinykd.train.train import save_model

    import keras

    folder = config.layout.trial(number)
    shutil.rmtree(folder, ignore_errors=True)  # a dead worker's, or an earlier study's
    student_config = dataclasses.replace(
        config.student, architecture=params["architecture"], width=params["width"], depth=params["depth"],
        epochs=params["epochs"], alpha=params["alpha"], temperature=params["temperature"], augment=False,
        features=[])
    keras.utils.set_random_seed(config.seed)
    try:
        student = build_model(params["architecture"], data.input_shape, data.num_classes, params["width"],
                              params["depth"])
        history = distill_on_logits(student_config, data, student, *logits, config.seed)
        history.update(architecture=params["architecture"], parameters=int(student.count_params()), kd=True,
                       alpha=params["alpha"], temperature=params["temperature"], teacher_logits="cached")
        keras_path = save_model(student, history, folder, STEM)
        quantized = quantize_model(keras_path, data, folder, config.quantize.representative_samples,
                                   config.seed, config.quantize.per_channel_dense)
        int8 = RunLayout(folder).int8(STEM)
        accuracy = accuracy_of(predict(int8, data.x_val), data.y_val)
        sources = generate_c_backend(read_model(int8))
    except TinykdError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise CandidateError(str(exc)) from None
    metrics = measure_on_board(int8, board, folder, data.x_val[0], sources)
    metrics.update(accuracy=accuracy, test_accuracy=quantized["int8"]["test_accuracy"],
                   parameters=int(student.count_params()), int8_bytes=quantized["int8"]["bytes"])
    write_json(folder / TRIAL_FILE, {"trial": number, "params": params, "metrics": metrics,
                                     "board": board.name, "instructions_from": COST_SOURCE})
    return metrics
