"""`tinykd build`: an INT8 model and a board profile -> a bundle of sources, with the fit verdict.

The bundle is written to a temporary folder and moved into place whole, so an interrupted or failed
build leaves nothing behind, and a folder tinykd did not create is never overwritten without `force`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinykd import __version__
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import Board
from tinykd.deploy.ops import model_macs
from tinykd.deploy.tflm.codegen import (Names, check_identifier, comment_text, default_array_names, render_arduino,
                                        render_tflm_sources, tflm_method)
from tinykd.core.errors import TinykdError
from tinykd.deploy.tflm.memory import CMSIS_NN_ISAS, ArenaEstimate, arena_estimates, arena_target, estimate_arena, measure_arena
from tinykd.tflite.reader import Model
from tinykd.tflite.tflm_host import installed_version, known_abort, pinned_versions

MANIFEST = "manifest.json"
MODEL_FILE = "model.tflite"
"""The model itself, so a bundle can be verified on its own."""
RUNTIME_BASE_BYTES = 32_768
RUNTIME_PER_OP_BYTES = 4_096
"""A rough size of TFLM's code on a Cortex-M at -Os: the interpreter and flatbuffer reader, plus one
reference kernel per registered op. Only an estimate: measure the real firmware's .text."""
ZEPHYR_STACK_BYTES = 4096


def tflm_registrations(model: Model) -> list[tuple[str, str]]:
    """(op, resolver method) for each distinct op, sorted; an op TFLM has no kernel for is an error."""
    registrations = []
    for op in model.ops:
        method = tflm_method(op)
        if method is None:
            layer = next(o for o in model.operators if o.op == op)
            raise TinykdError(f"{model.path}: layer {layer.index} uses {op}, which TFLM has no kernel for "
                              "(TFLM cannot register it)")
        registrations.append((op, method))
    return registrations


RUNTIMES = {"tflm": "TFLM", "c": "C backend"}
"""The runtimes a bundle can hold: TFLM's sources (model array, resolver, arena, RIOT/Zephyr glue) and
the C backend (c/, and the Arduino library built on it)."""


@dataclass
class Fit:
    """One runtime's flash and RAM needs against the board's budget, as (what, bytes) parts."""

    runtime: str
    flash: list[tuple[str, int]]
    ram: list[tuple[str, int]]
    board: Board

    @property
    def flash_bytes(self) -> int:
        return sum(size for _, size in self.flash)

    @property
    def ram_bytes(self) -> int:
        return sum(size for _, size in self.ram)

    @property
    def fits_flash(self) -> bool:
        return self.flash_bytes <= self.board.flash_bytes

    @property
    def fits_ram(self) -> bool:
        return self.ram_bytes <= self.board.ram_bytes

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram

    def shortfall(self) -> str:
        """What does not fit: "flash", "RAM", "flash and RAM" ("" when it fits)."""
        return " and ".join(what for what, ok in (("flash", self.fits_flash), ("RAM", self.fits_ram)) if not ok)

    def summary(self) -> dict:
        return {"flash": {"parts": dict(self.flash), "total_bytes": self.flash_bytes,
                          "budget_bytes": self.board.flash_bytes, "fits": self.fits_flash},
                "ram": {"parts": dict(self.ram), "total_bytes": self.ram_bytes,
                        "budget_bytes": self.board.ram_bytes, "fits": self.fits_ram},
                "fits": self.fits}


def fit_table(fits: list[Fit]) -> str:
    """Each runtime's flash and RAM, part by part, with the totals against the board's."""
    lines = [f"{'':10} {'':6} {'':32} {'bytes':>11} {'board':>11} {'used':>7}"]
    for fit in fits:
        runtime = RUNTIMES[fit.runtime]
        for memory, parts, budget in (("flash", fit.flash, fit.board.flash_bytes),
                                      ("RAM", fit.ram, fit.board.ram_bytes)):
            rows = parts + ([("total", sum(size for _, size in parts))] if len(parts) > 1 else [])
            for position, (what, size) in enumerate(rows):
                line = f"{runtime:10} {memory if position == 0 else '':6} {what:32} {size:>11,}"
                if position == len(rows) - 1:
                    line += f" {budget:>11,} {size / budget:>7.1%}"
                lines.append(line)
                runtime = ""
    return "\n".join(lines)


def tflm_fit(models: list[Model], board: Board, arena_bytes: int) -> Fit:
    """The fit of TFLM: the models' arrays, TFLM's code with their ops, and one arena of `arena_bytes`."""
    ops = {op for model in models for op in model.ops}
    code = RUNTIME_BASE_BYTES + RUNTIME_PER_OP_BYTES * len(ops)
    return Fit("tflm", [("model arrays", sum(len(model.data) for model in models)),
                        (f"TFLM code, {len(ops)} ops (estimate)", code)],
               [("tensor arena", arena_bytes), ("stack, heap, RTOS (reserved)", board.ram_reserved_bytes)], board)


def c_backend_fit(c_backend: dict, board: Board) -> Fit | None:
    """The fit of the C backend, from its exact size for the board (None when it was not sized)."""
    if "flash_bytes" not in c_backend:
        return None
    return Fit("c", [("code, weights and constants (c/)", c_backend["flash_bytes"])],
               [("static arena and data (c/)", c_backend["ram_bytes"]),
                ("stack, heap, RTOS (reserved)", board.ram_reserved_bytes)], board)


def manifest(model: Model, board: Board, estimates: dict[str, ArenaEstimate], targets: dict[str, int],
             fits: dict[str, Fit], measured: int | None, files: dict[str, bytes], names: Names) -> dict:
    arena = {**estimates["reference"].summary(targets["reference"]), "pointer_bytes": board.pointer_bytes,
             "cmsis_nn": {**estimates["cmsis_nn"].summary(targets["cmsis_nn"]),
                          "isa": CMSIS_NN_ISAS[board.kernels]}}
    if measured is not None:
        arena["tflm_measured_bytes"] = measured
        arena["tflm_measured_on"] = ("host (64-bit pointers), PyPI tflite-micro's Python interpreter (a "
                                     "RecordingMicroAllocator, compression built in: ~300 bytes above a plain build)")
        arena["host_estimated_bytes"] = estimate_arena(model, 8).total_bytes
    return {
        "generator": f"tinykd {__version__}",
        "board": {"name": board.name, "cpu": board.cpu, "clock_hz": board.clock_hz,
                  "flash_bytes": board.flash_bytes, "ram_bytes": board.ram_bytes,
                  "ram_reserved_bytes": board.ram_reserved_bytes, "pointer_bytes": board.pointer_bytes,
                  "riot_board": board.riot_board, "zephyr_board": board.zephyr_board},
        "model": {"file": model.path.name, "sha256": model.sha256, "bytes": len(model.data),
                  "ops": model.ops, "layers": len(model.operators), "macs": model_macs(model),
                  "inputs": [t.describe() for t in model.input_tensors()],
                  "outputs": [t.describe() for t in model.output_tensors()]},
        "names": {"array": names.array_name, "namespace": names.namespace, "riot_module": names.riot_module},
        "arena": arena,
        "fit": {runtime: fit.summary() for runtime, fit in fits.items()},
        "fits": any(fit.fits for fit in fits.values()),
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }


@dataclass
class Bundle:
    """What `build` made: the files (relative path -> bytes), the manifest and each runtime's fit (the
    C backend's only when it was sized)."""

    files: dict[str, bytes]
    manifest: dict
    fits: dict[str, Fit]


def c_backend_files(model: Model, board: Board, size: bool, check: bool) -> tuple[dict[str, str], dict]:
    """The C backend under `c/` and its manifest entry; a model it cannot run gets none, and the entry
    says why (the TFLM sources do not depend on it). The sources are the same for every board; the
    entry's `kernels` are the runtime files whose code the board's build compiles (its cflags choose the
    variant: `boards.check_kernels` warns when it is not the profile's). `size` compiles it for the
    board to record its exact flash and RAM; `check` runs it against TFLM on the host
    (`verify.check_c_backend`)."""
    from tinykd.deploy.boards import check_kernels
    from tinykd.deploy.cbackend.lower import generate_c_backend, variant_sources

    try:
        sources = generate_c_backend(model)
    except TinykdError as exc:
        return {}, {"available": False, "reason": str(exc)}
    variant = check_kernels(board)
    runtime = [p.removeprefix("runtime/") for p in sources if p.startswith("runtime/")]
    info = {"available": True, "kernel_variant": variant, "kernels": variant_sources(runtime, variant)}
    if size:
        from tinykd.verify.toolchain import c_backend_size

        info.update(c_backend_size(sources, board), compiled_for=board.name)
    if check:
        from tinykd.verify.compare import check_c_backend

        info["check"] = check_c_backend(model, sources, board)
    else:
        info["check"] = {"passed": None, "vectors": 0, "result": "not run"}
    return {f"c/{path}": text for path, text in sources.items()}, info


def arduino_files(model: Model) -> dict[str, str]:
    """The Arduino library: the C backend (every kernel variant: the board's compiler keeps the one its
    core has, the DSP kernels on a Cortex-M4F such as the Nano 33 BLE) and a sketch."""
    from tinykd.deploy.cbackend.lower import generate_c_backend
    from tinykd.train.predict import class_names

    tensor = model.input_tensors()[0]
    outputs = sum(t.nbytes for t in model.output_tensors())
    context = {"model": {"file": comment_text(model.path.name), "ops": model.ops},
               "input_scale": f"{tensor.scale[0]:.6g}", "input_zero_point": tensor.zero_point[0],
               "input_bytes": sum(t.nbytes for t in model.input_tensors()),
               "class_names": [comment_text(n) for n in class_names(model.path, outputs) if not n.isdigit()]}
    return render_arduino(generate_c_backend(model), context)


def make_bundle(models: Model | list[Model], board: Board, names: Names = Names(), measure: bool = False,
                size_c_backend: bool = True, check_c_backend: bool = True,
                array_names: list[str] | None = None, runtimes: tuple[str, ...] = tuple(RUNTIMES)) -> Bundle:
    """Render every file of the bundle in memory (nothing is written): the sources of the `runtimes`
    ("tflm", "c"), the model and the manifest, with each runtime's fit. `size_c_backend` compiles the
    C backend for the board to record its exact flash and RAM; `check_c_backend` compares it with TFLM
    on the host (the result is in the manifest; the caller decides what a failure means).

    Several models share one bundle: one op resolver for all their ops, one array each (`array_names`,
    default from `names` for one model, from the file stems for several), an arena figure each and
    one for running them one after another on one arena; the C backend holds one model only."""
    models = [models] if isinstance(models, Model) else list(models)
    if not runtimes or set(runtimes) - set(RUNTIMES) or ("tflm" not in runtimes and len(models) > 1):
        raise TinykdError(f"runtimes must be {' and/or '.join(RUNTIMES)} (several models: with tflm), "
                          f"not {', '.join(runtimes) or 'none'}")
    array_names = array_names or ([names.array_name] if len(models) == 1 else
                                  default_array_names([m.path.name for m in models]))
    if len(array_names) != len(models) or len(set(array_names)) != len(array_names):
        raise TinykdError(f"give one distinct array name per model ({len(models)} models, "
                          f"array names {', '.join(array_names)})")
    for array_name in array_names:
        check_identifier("array name", array_name)
    names = dataclasses.replace(names, array_name=array_names[0])
    registrations = sorted({pair for model in models for pair in tflm_registrations(model)})
    entries, per_model_targets = [], []
    for model, array_name in zip(models, array_names):
        model.require_int8()
        problem = known_abort(model)
        if problem:
            raise TinykdError(f"{model.path}: TFLM cannot run this model: {problem}")
        estimates = arena_estimates(model, board)
        targets = {kernels: arena_target(estimate) for kernels, estimate in estimates.items()}
        per_model_targets.append((estimates, targets))
        entries.append({"file": comment_text(model.path.name), "bytes": len(model.data), "sha256": model.sha256,
                        "ops": model.ops, "array_name": array_name, "data": model.data,
                        "arena": {"target_bytes": targets["reference"],
                                  "cmsis_nn_target_bytes": targets["cmsis_nn"]}})
    model = models[0]
    estimates = per_model_targets[0][0]
    shared = {kernels: max(t[kernels] for _, t in per_model_targets) for kernels in estimates}
    measured = measure_arena(model.path, start=estimate_arena(model, 8).total_bytes) if measure else None
    fits = {"tflm": tflm_fit(models, board, shared["reference"])} if "tflm" in runtimes else {}
    context = {"models": entries, "board": board, "registrations": registrations,
               "arena": {"target_bytes": shared["reference"], "cmsis_nn_target_bytes": shared["cmsis_nn"],
                         "cmsis_nn_isa": CMSIS_NN_ISAS[board.kernels]},
               "arena_lines": _arena_lines(entries, per_model_targets, "reference", "kTensorArenaSize"),
               "cmsis_nn_arena_lines": _arena_lines(entries, per_model_targets, "cmsis_nn",
                                                    "kTensorArenaSizeCmsisNn"),
               "zephyr_stack_bytes": ZEPHYR_STACK_BYTES, "tflm_version": installed_version()}
    if "c" not in runtimes:
        c_sources, c_backend = {}, {"available": False, "reason": "built with TFLM's sources only"}
    elif len(models) == 1:
        c_sources, c_backend = c_backend_files(model, board, size_c_backend, check_c_backend)
    else:
        c_sources, c_backend = {}, {"available": False, "reason": "a bundle of several models has TFLM sources "
                                    "only; build one bundle per model for the C backend"}
    if "tflm" not in runtimes and not c_backend["available"]:
        raise TinykdError(f"{model.path}: no C backend for this model ({c_backend['reason']}), and TFLM's sources "
                          "were not asked for")
    c_fit = c_backend_fit(c_backend, board)
    fits.update({"c": c_fit} if c_fit else {})
    arduino = arduino_files(model) if c_backend["available"] and model.inputs else {}
    tflm_sources = render_tflm_sources(context, names) if "tflm" in runtimes else {}
    files = {path: text.encode() for path, text in {**tflm_sources, **c_sources, **arduino}.items()}
    for entry, one in zip(entries, models):
        files[MODEL_FILE if len(models) == 1 else f"models/{entry['array_name']}.tflite"] = one.data
    info = manifest(model, board, estimates, shared, fits, measured, files, names)
    if len(models) > 1:
        info["models"] = [{"file": e["file"], "sha256": e["sha256"], "array": e["array_name"], "ops": e["ops"],
                           "arena": e["arena"]} for e in entries]
    info["c_backend"] = c_backend
    info["runtimes"] = [r for r in RUNTIMES if r in runtimes and (r == "tflm" or c_backend["available"])]
    info["tflm"] = {"pinned_by": pinned_versions(model), "checked_against": installed_version()}
    files[MANIFEST] = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()
    return Bundle(files, info, fits)


def _arena_lines(entries: list[dict], per_model: list, kernels: str, name: str) -> list[str]:
    """tinykd_arena.h's breakdown: one model's parts, or each model's figure and the largest."""
    if len(entries) == 1:
        estimate, target = per_model[0][0][kernels], per_model[0][1][kernels]
        return estimate.describe(target, name)
    width = max(len(e["file"]) for e in entries + [{"file": name}])
    lines = [f"{e['file']:<{width}}  {targets[kernels]:>9,} bytes" for e, (_, targets) in zip(entries, per_model)]
    return lines + [f"{name:<{width}}  {max(t[kernels] for _, t in per_model):>9,} bytes (the largest)"]


def read_manifest(folder: Path) -> dict:
    """A bundle's manifest.json; a folder without a readable one is not a bundle."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or not str(manifest.get("generator", "")).startswith("tinykd"):
        raise TinykdError(f"{folder}: not a bundle (no readable manifest.json); run tinykd build")
    return manifest


def is_bundle(folder: Path) -> bool:
    """Whether `folder` holds a bundle tinykd wrote (its manifest names tinykd as the generator)."""
    try:
        read_manifest(folder)
    except TinykdError:
        return False
    return True


def check_bundle_folder(out_dir: Path, force: bool = False) -> bool:
    """Whether `out_dir` is a foreign folder that `force` lets the bundle's files into; an error when the
    bundle cannot go there (a file in the way, a folder that is not a bundle, an unwritable parent).
    Cheap, so commands call it before their slow work."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TinykdError(f"{out_dir}: exists and is not a folder")
    foreign = out_dir.is_dir() and any(out_dir.iterdir()) and not is_bundle(out_dir)
    if foreign and not force:
        raise TinykdError(f"{out_dir}: the folder is not empty and was not made by tinykd build; "
                          "choose another --out or use --force")
    existing = next(parent for parent in out_dir.absolute().parents if parent.exists())
    try:  # the one sure test of a folder that takes new folders: make one
        os.rmdir(tempfile.mkdtemp(prefix=".tinykd-probe.", dir=existing))
    except OSError as exc:
        raise TinykdError(f"{out_dir}: cannot create the bundle's folder in {existing}: {exc.strerror}") from None
    return foreign


def write_bundle(files: dict[str, bytes], out_dir: Path, force: bool = False) -> None:
    """Write the files as one folder. A previous bundle is replaced whole; a non-empty folder that is
    not a bundle is refused unless `force`, and then only the bundle's files in it are replaced."""
    out_dir = Path(out_dir)
    foreign = check_bundle_folder(out_dir, force)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise TinykdError(f"{out_dir}: cannot create the bundle's folder: {exc.strerror}") from None
    try:
        write_tree(staging, files)
        if foreign:
            for relative in files:
                (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / relative, out_dir / relative)
        elif out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.rename(out_dir, old / "bundle")
            os.rename(staging, out_dir)
            shutil.rmtree(old)
        else:
            os.rename(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
