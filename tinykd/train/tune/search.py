"""`tinykd tune`'s search: worker processes that ask the study for trials and report them, and the
command's own process, which prepares what every trial shares (the teacher, its cached logits, the run's
own student measured on the board), watches the study (trials done, best so far, time left) and writes
the front."""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass

from tinykd.core.artifacts import RunLayout, write_json
from tinykd.core.config import PipelineConfig, config_from_dict
from tinykd.core.console import Progress
from tinykd.core.errors import TinykdError
from tinykd.deploy.boards import Board, load_board
from tinykd.train.tune import results, study as studies
from tinykd.train.tune.trial import (CandidateError, constraints, feasible, measure_on_board, run_trial, size_text,
                                     suggest, teacher_logits, teachers_digest)

log = logging.getLogger(__name__)

STUDY_FILE = "study.json"
POLL_SECONDS = 2.0
"""How often the command's process looks at the study for finished trials."""


@dataclass(frozen=True)
class Search:
    """One `tinykd tune` invocation: what to search, for which board, in which study."""

    config: PipelineConfig
    board: Board
    storage: str
    study: str
    trials: int
    jobs: int = 1
    max_ms: float = 0.0

    @property
    def layout(self) -> RunLayout:
        return self.config.layout

    def identity(self) -> dict:
        """What a study is bound to: resuming it with another board or teacher is refused."""
        return {"board": self.board.name, "teachers": teachers_digest(self.config)}


def check_board(board: Board) -> None:
    """A board the search can measure: a Cortex-M core QEMU runs with an instruction-counting timer."""
    from tinykd.verify.runners import machine_for

    if board.cpu == "host" or not board.qemu_machine:
        raise TinykdError(f"board {board.name} has no QEMU machine: tune counts instructions on the board's "
                          "core in QEMU; pick a Cortex-M board (tinykd boards)")
    if machine_for(board).timer_base is None:
        raise TinykdError(f"board {board.name}: QEMU's {board.qemu_machine} has no timer that counts "
                          "instructions; tune cannot measure on it")
    if not board.clock_hz:
        raise TinykdError(f"board {board.name}: its profile has no clock_hz, so instructions have no time")


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _started(study) -> int:
    from optuna.trial import TrialState

    return _finished(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _data_at(config: PipelineConfig, size: int | list[int]):
    """The run's data with images of `size` (the run's own image_size, or a square side)."""
    from tinykd.train.pipeline import load_data

    sized = dataclasses.replace(config, data=dataclasses.replace(config.data, image_size=size))
    return load_data(sized, record=False)


def _objective(search: Search, data_at, logits, current: dict):
    """The trial function; `current["trial_id"]` is the trial it runs (or last ran)."""
    from optuna import TrialPruned

    def objective(trial):
        current["trial_id"] = trial._trial_id
        studies.stamp(trial)
        params = suggest(trial, search.config)
        try:
            metrics = run_trial(trial.number, params, search.config, search.board, data_at(params["image_size"]),
                                logits)
        except CandidateError as exc:
            trial.set_user_attr("reason", str(exc))
            raise TrialPruned(str(exc)) from None
        trial.set_user_attr("metrics", metrics)
        for key, value in zip(("ram", "flash", "time"), constraints(metrics, search.board, search.max_ms)):
            trial.set_constraint(key, value)
        return metrics["accuracy"], metrics["instructions"], metrics["ram_bytes"]
    return objective


def _sampler(trials: int):
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=max(2, min(10, trials // 3)), multivariate=True)


def work(search: Search) -> None:
    """One worker: trials from the study until it has `search.trials` finished (or started) ones."""
    from optuna.trial import TrialState

    studies.quiet_optuna()
    study = studies.open_study(search.storage, search.study, search.identity(), _sampler(search.trials))
    loaded = {}

    def data_at(size):
        key = size_text(size)
        if key not in loaded:
            loaded[key] = _data_at(search.config, size)
        return loaded[key]

    logits = teacher_logits(search.config, data_at(search.config.data.image_size))
    current = {}
    objective = _objective(search, data_at, logits, current)
    while _started(study) < search.trials:
        try:
            study.optimize(objective, n_trials=1)
        except BaseException:  # Ctrl-C, or a failure of the tools: the next tinykd tune runs that student again
            interrupted = study._storage.get_trial(current["trial_id"]) if current else None
            if interrupted is not None and interrupted.state == TrialState.FAIL:
                studies.retry(study, interrupted, search.layout)
            raise


def _worker_main(values: dict, board: str, storage: str, study: str, trials: int, max_ms: float,
                 level: int) -> None:
    """A spawned worker process: quiet (the command's process reports), one line on an error."""
    from tinykd.core.console import configure_logging, quiet_tensorflow

    configure_logging(level)
    sys.stdout = open(os.devnull, "w")  # Keras's epoch lines: the command's process reports progress
    quiet_tensorflow()
    try:
        work(Search(config_from_dict(values), load_board(board), storage, study, trials, 1, max_ms))
    except KeyboardInterrupt:
        sys.exit(130)
    except TinykdError as exc:
        log.error(f"worker {os.getpid()}: {exc}")
        sys.exit(2)
    except Exception as exc:  # a bug: one line, as the command line does
        log.error(f"worker {os.getpid()}: internal error: {type(exc).__name__}: {exc}")
        sys.exit(1)


def measure_default(search: Search) -> dict | None:
    """The run's own INT8 student (tinykd run's), measured like a trial into tune/default/ (once per board
    and model); None when the run has none yet."""
    from tinykd.train.evaluate import accuracy_of, predict

    layout = search.layout
    model = layout.student_int8()
    if not model.is_file():
        log.info(f"{model} does not exist: the front is shown without the run's own student (tinykd run makes it)")
        return None
    import hashlib

    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    kept = results.default_student(layout)
    if kept and kept.get("sha256") == digest and kept.get("board") == search.board.name:
        return kept
    log.info(f"measuring the run's own student {model.name} on {search.board.name} for comparison")
    size = search.config.data.image_size
    data = _data_at(search.config, size)
    history = json.loads(layout.history(layout.student_stem()).read_text()) if layout.history(
        layout.student_stem()).exists() else {}
    quantized = json.loads(layout.quantize_summary(layout.student_stem()).read_text())
    partial = layout.tune / f".default.{os.getpid()}.partial"  # another worker may measure it meanwhile
    metrics = measure_on_board(model, search.board, partial, data.x_val[0])
    shutil.rmtree(layout.tune / "default", ignore_errors=True)
    try:
        partial.rename(layout.tune / "default")
    except OSError:  # the other one's is in place: the same model, the same numbers
        shutil.rmtree(partial, ignore_errors=True)
    metrics.update(accuracy=accuracy_of(predict(model, data.x_val), data.y_val),
                   test_accuracy=quantized["int8"]["test_accuracy"], int8_bytes=model.stat().st_size)
    record = {"model": str(model), "sha256": digest, "board": search.board.name,
              "params": {"architecture": history.get("architecture", search.config.student.architecture),
                         "width": search.config.student.width, "depth": search.config.student.depth,
                         "image_size": size},
              "metrics": metrics}
    write_json(layout.tune / results.DEFAULT_FILE, record)
    return record


def _describe(frozen, best: float | None) -> str:
    p = frozen.params
    student = f"{results.student_text(p)} {size_text(p['image_size'])} px"
    if "metrics" not in frozen.user_attrs:
        return f"trial {frozen.number} ({student}) skipped: {frozen.user_attrs.get('reason', frozen.state.name)}"
    m = frozen.user_attrs["metrics"]
    verdict = "" if m["fits"] else ", does not fit"
    return (f"trial {frozen.number} ({student}): accuracy {m['accuracy']:.2%}, {m['instructions']:,} instructions "
            f"({m['ms']:.3f} ms), RAM {m['ram_bytes']:,} B{verdict}; best so far "
            + (f"{best:.2%}" if best is not None else "none that fits"))


def run_search(search: Search) -> dict:
    """The whole search: prepare, run `search.jobs` workers, report progress, write and return the front."""
    from tinykd.train import pipeline

    check_board(search.board)
    from tinykd.verify.toolchain import require

    require("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    require("qemu-system-arm", "qemu-system-arm")
    require("cmake", "cmake")
    layout = search.layout
    _check_tune_folder(search)
    studies.storage(search.storage)  # a bad URL or an unreachable server: an error before any work
    pipeline.train_stage(search.config, pipeline.lazy_data(search.config))
    study = studies.open_study(search.storage, search.study, search.identity())
    write_json(layout.tune / STUDY_FILE, {"study": search.study})
    log.info(f"study {search.study!r} in {studies.shown(search.storage)}: {_finished(study)} of {search.trials} "
             f"trials finished")
    studies.recover_dead_trials(study, layout)
    prepare(search)
    already = _finished(study)
    if already < search.trials:
        _run_workers(search, study, already)
    return results.write_front(layout, search.board, search.max_ms, search.study)


def prepare(search: Search) -> None:
    """What every study of the run shares, made once and kept in its tune/ folder: the trained teacher's
    logits (teacher_logits.npz) and the run's own student measured on the board (default/)."""
    config = search.config
    teacher_logits(config, _data_at(config, config.data.image_size))
    measure_default(search)


def _check_tune_folder(search: Search) -> None:
    """runs/NAME/tune/ holds the trials of one study (folders named by trial number): another study's
    search in it is refused."""
    path = search.layout.tune / STUDY_FILE
    recorded = json.loads(path.read_text())["study"] if path.exists() else search.study
    if recorded != search.study:
        raise TinykdError(f"{path}: {search.layout.tune} holds the trials of study {recorded!r}; search study "
                          f"{search.study!r} in another run (--name), or remove that folder")


def _run_workers(search: Search, study, already: int) -> None:
    from optuna.trial import TrialState

    context = multiprocessing.get_context("spawn")
    level = logging.getLogger("tinykd").getEffectiveLevel()
    values = dataclasses.asdict(search.config)
    workers = [context.Process(target=_worker_main, args=(values, search.board.name, search.storage, search.study,
                                                          search.trials, search.max_ms, max(level, logging.WARNING)))
               for _ in range(search.jobs)]
    for worker in workers:
        worker.start()
    log.info(f"{search.jobs} worker(s) running trials {already + 1}..{search.trials} on {search.board.name}")
    progress = Progress(f"tune {search.study}", search.trials - already, "trials", log)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    seen = {t.number for t in done}
    best = max((t.user_attrs["metrics"]["accuracy"] for t in done if "metrics" in t.user_attrs
                and feasible(t.user_attrs["metrics"], search.max_ms)), default=None)
    try:
        while True:
            alive = any(w.is_alive() for w in workers)
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
                if frozen.number in seen:
                    continue
                seen.add(frozen.number)
                metrics = frozen.user_attrs.get("metrics")
                if metrics and feasible(metrics, search.max_ms):
                    best = max(best or 0.0, metrics["accuracy"])
                log.info(_describe(frozen, best))
            count = min(len(seen) - already, search.trials - already)
            if count != progress.reported:
                progress.update(count)
            if not alive:
                break
            time.sleep(POLL_SECONDS)
    finally:
        for worker in workers:
            worker.join()
    failed = [w.exitcode for w in workers if w.exitcode]
    if failed:
        if 130 in failed:
            raise KeyboardInterrupt
        raise TinykdError(f"{len(failed)} of {len(workers)} worker(s) failed (above); the study keeps every "
                          "finished trial: run the same command again to resume")
