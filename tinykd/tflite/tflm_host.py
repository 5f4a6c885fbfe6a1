"""The host TFLM interpreter (PyPI `tflite-micro`), the golden reference, always run in a child process.

That interpreter aborts or segfaults on some valid models instead of raising an error; in a child, such
a crash becomes a TinykdError naming TFLM, the model and the signal, and tinykd itself carries on.
Running this file as a script (`python tflm_host.py REQUEST.npz RESULT.npz`) is the child: it needs only
numpy and tflite_micro, so it also runs in the environment of an older TFLM.

TFLM versions compute different bytes on some models, and RIOT and Zephyr pin versions from 2024, so
the reference names its version: `latest` is the tflite-micro installed with tinykd; `riot`, `zephyr`
or an explicit nightly (`0.dev20240520175645`) run in a virtual environment of their own, created on
first use from the package index and kept under the cache folder.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ADDRESS_SPACE_BYTES = 16 << 30
"""The child's address-space limit: a runaway allocation ends it instead of the machine's memory."""

PINNED = {
    "riot": ("0.dev20240520175645", "RIOT's TFLM (pkg/tflite-micro: 8e22946, 2024-05-20)"),
    "zephyr": ("0.dev20240529040542", "Zephyr's TFLM (module tflite-micro: 48613f7, 2024-06, on upstream "
                                      "71fba59 of 2024-05-29)"),
}
"""RTOS -> (the PyPI nightly built from the TFLM commit it pins, which TFLM that is)."""
_NIGHTLY = re.compile(r"0\.dev\d{14}")
OLD_NUMPY = "numpy<2"
"""The 2023-2024 nightlies were built against numpy 1."""


def installed_version() -> str:
    """The tflite-micro installed with tinykd."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "not installed"


def resolve(name: str) -> str:
    """`latest`, `riot`, `zephyr` or a nightly version -> the tflite-micro version it means."""
    from tinykd.core.errors import TinykdError

    if name == "latest":
        return installed_version()
    if name in PINNED:
        return PINNED[name][0]
    if _NIGHTLY.fullmatch(name):
        return name
    raise TinykdError(f"--tflm {name}: use latest, riot, zephyr or a tflite-micro nightly such as "
                      f"{PINNED['riot'][0]}")


def cache_dir() -> Path:
    """Where tinykd keeps what it downloads: $TINYKD_CACHE, else $XDG_CACHE_HOME/tinykd or ~/.cache/tinykd."""
    if os.environ.get("TINYKD_CACHE"):
        return Path(os.environ["TINYKD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinykd"


def python_for(version: str) -> str:
    """The Python that runs tflite-micro `version`: tinykd's own for the installed one, else that
    version's environment, created once (pip, from the package index) and reused."""
    from tinykd.core.errors import TinykdError

    if version == installed_version():
        return sys.executable
    home = cache_dir() / "tflm" / version
    python = home / "bin" / "python"
    if python.is_file():
        return str(python)
    logging.getLogger(__name__).info(f"creating an environment for TFLM {version} in {home} (once, a few "
                                     f"minutes; pip install tflite-micro=={version} '{OLD_NUMPY}')")
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=home.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True)
        pip = subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", f"tflite-micro=={version}", OLD_NUMPY],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if pip.returncode != 0:
            errors = [line for line in pip.stderr.splitlines() if line.startswith("ERROR")] or ["?"]
            raise TinykdError(f"could not install tflite-micro=={version}: {errors[-1]}")
        try:
            os.rename(staging, home)
        except OSError:  # made meanwhile by another tinykd
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(python)


def arena_bytes(model) -> int:
    """An arena far above what the model needs on a 64-bit host: the reference must never run short."""
    from tinykd.deploy.tflm.memory import estimate_arena

    return 2 * estimate_arena(model, 8).total_bytes + (1 << 20)


def outputs(model, inputs: np.ndarray, version: str | None = None) -> np.ndarray:
    """TFLM's output bytes (as int8) for each row of input bytes: the golden reference. `version` is a
    tflite-micro version (`resolve`); None is the installed one."""
    result = _run_child(model, inputs, trace=False, version=version)
    return result["outputs"]


def layer_outputs(model, row: np.ndarray, version: str | None = None) -> list[np.ndarray]:
    """Every operator's first output tensor (bytes as int8) for one row of input bytes."""
    result = _run_child(model, row[None], trace=True, version=version)
    return [result[f"layer{i}"] for i in range(len(model.operators))]


def pinned_versions(model) -> dict[str, dict]:
    """For RIOT and Zephyr: the TFLM version each pins, and what it does wrong on this model, if anything.
    Those 2024 versions compute every op tinykd supports as the latest does, except FULLY_CONNECTED
    layers with per-channel weights: RIOT's uses the first channel's scale for all (fixed upstream in
    2024-09), Zephyr's refuses them."""
    per_channel = [op.index for op in model.operators
                   if op.op == "FULLY_CONNECTED" and len(model.op_inputs(op)[1].scale) > 1]
    layers = f"layer{'s' if len(per_channel) > 1 else ''} {', '.join(map(str, per_channel))}"
    problems = {"riot": f"computes the per-channel FULLY_CONNECTED {layers} with the first channel's weight "
                        "scale for every channel: its outputs differ from TFLM's today",
                "zephyr": f"refuses the per-channel FULLY_CONNECTED {layers} (AllocateTensors fails)"}
    return {name: {"tflite_micro": version, "pin": pin, "problem": problems[name] if per_channel else None}
            for name, (version, pin) in PINNED.items()}


def known_abort(model) -> str | None:
    """Why TFLM will abort on this model, where that can be told before running it (it checks some
    conditions with a bare abort()), or None."""
    from tinykd.deploy.cbackend.quantize import softmax_scale_problem

    for op in model.operators:
        if op.op == "SOFTMAX":
            scale = model.tensors[op.inputs[0]].scale
            problem = softmax_scale_problem(op.options["beta"], scale[0]) if scale else None
            if problem:
                return f"layer {op.index} (SOFTMAX): {problem}"
    return None


def _run_child(model, inputs: np.ndarray, trace: bool, version: str | None) -> dict:
    from tinykd.core.errors import TinykdError

    problem = known_abort(model)
    if problem:
        raise TinykdError(f"{model.path}: TFLM cannot run this model: {problem}")
    version = version or installed_version()
    python = python_for(version)
    with tempfile.TemporaryDirectory(prefix="tinykd-tflm-") as folder:
        request, result = Path(folder) / "request.npz", Path(folder) / "result.npz"
        np.savez(request, model=np.frombuffer(model.data, np.uint8), inputs=np.asarray(inputs, np.int8),
                 input_shapes=np.array(repr([tuple(t.shape) for t in model.input_tensors()])),
                 input_dtypes=np.array([t.dtype for t in model.input_tensors()]),
                 output_count=np.array(len(model.outputs)),
                 layers=np.array([op.outputs[0] for op in model.operators] if trace else [], np.int64),
                 arena=np.array(arena_bytes(model) + (sum(t.nbytes for t in model.tensors) if trace else 0)))
        child = subprocess.run([python, __file__, str(request), str(result)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               preexec_fn=_limit_child)
        if child.returncode != 0:
            known = [f" ({p['pin']} {p['problem']})" for p in pinned_versions(model).values()
                     if p["tflite_micro"] == version and p["problem"]]
            raise TinykdError(f"{model.path}: the host TFLM (tflite-micro {version}) "
                              f"{_describe_failure(child)} on this model{''.join(known) or _crash_hint(model)}; "
                              "it cannot serve as the reference")
        with np.load(result) as data:
            return {name: data[name] for name in data.files}


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


def _describe_failure(child: subprocess.CompletedProcess) -> str:
    if child.returncode < 0:
        try:
            name = signal.Signals(-child.returncode).name
        except ValueError:
            name = f"signal {-child.returncode}"
        what = f"crashed ({name})"
    else:
        what = f"failed (exit code {child.returncode})"
    lines = [line.strip() for line in child.stderr.splitlines() if line.strip()]
    return f"{what}: {lines[-1]}" if lines else what


def _crash_hint(model) -> str:
    """What in the model is known to crash TFLM while it runs: its int8 SOFTMAX aborts when the
    exponentials of a row sum to 512 or more (512 or more nearly equal logits), and its
    DEPTHWISE_CONV_2D dereferences a missing bias (the converter always writes one)."""
    hints = []
    if any(op.op == "SOFTMAX" and model.tensors[op.inputs[0]].shape[-1] >= 512 for op in model.operators):
        hints.append("its int8 SOFTMAX aborts when 512 or more classes have nearly equal logits, as in an "
                     "untrained model")
    no_bias = [op.index for op in model.operators
               if op.op == "DEPTHWISE_CONV_2D" and (len(op.inputs) < 3 or op.inputs[2] < 0)]
    if no_bias:
        hints.append(f"it crashes on a DEPTHWISE_CONV_2D without a bias input (layer {no_bias[0]})")
    return f" ({'; '.join(hints)})" if hints else ""


# ---- the child ------------------------------------------------------------------------------------

def raw_bytes(array) -> np.ndarray:
    """A tensor of any dtype as its bytes, viewed as int8: what the C backend writes."""
    return np.ascontiguousarray(array).reshape(-1).view(np.int8)


def interpreter(model_data: bytes, arena: int, preserve_all: bool = False):
    """A TFLM interpreter in this process (the child, or a bench that times it on a model known to run)."""
    from tflite_micro.python.tflite_micro import runtime

    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve_all else \
        runtime.InterpreterConfig.kAllocationRecording
    return runtime.Interpreter.from_bytes(model_data, arena_size=int(arena), intrepreter_config=config)


def invoke(interp, input_specs, output_count: int, row: np.ndarray) -> np.ndarray:
    """One inference on a row of input bytes; the outputs' bytes back to back. `input_specs` holds
    (shape, numpy dtype) per input."""
    position = 0
    for index, (shape, dtype) in enumerate(input_specs):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        interp.set_input(row[position:position + size].view(dtype).reshape(shape), index)
        position += size
    interp.invoke()
    return np.concatenate([raw_bytes(interp.get_output(i)) for i in range(output_count)])


def _child(request: Path, result: Path) -> int:
    with np.load(request) as data:
        model_data, inputs = data["model"].tobytes(), data["inputs"]
        specs = list(zip(ast.literal_eval(str(data["input_shapes"])), data["input_dtypes"].tolist()))
        output_count, layers, arena = int(data["output_count"]), data["layers"].tolist(), int(data["arena"])
    interp = interpreter(model_data, arena, preserve_all=bool(layers))
    rows = [invoke(interp, specs, output_count, row) for row in inputs]
    saved = {"outputs": np.stack(rows) if rows else np.zeros((0, 0), np.int8)}
    for i, tensor in enumerate(layers):
        saved[f"layer{i}"] = raw_bytes(np.asarray(interp.GetTensor(tensor, 0)["tensor_data"]))
    np.savez(result, **saved)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
