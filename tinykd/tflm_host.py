"""The host TFLM interpreter (PyPI `tflite-micro`), the golden reference, always run in a child process.

That interpreter aborts or segfaults on some valid models instead of raising an error; in a child, such
a crash becomes a TinykdError naming TFLM, the model and the signal, and tinykd itself carries on.
`python -m tinykd.tflm_host REQUEST.npz RESULT.npz` is the child: it imports only numpy and tflite_micro,
so it starts in a fraction of a second.
"""

from __future__ import annotations

import ast
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ADDRESS_SPACE_BYTES = 16 << 30
"""The child's address-space limit: a runaway allocation ends it instead of the machine's memory."""


def tflm_version() -> str:
    """The installed tflite-micro version (the reference's name in reports)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "not installed"


def arena_bytes(model) -> int:
    """An arena far above what the model needs on a 64-bit host: the reference must never run short."""
    from .memory import estimate_arena

    return 2 * estimate_arena(model, 8).total_bytes + (1 << 20)


def outputs(model, inputs: np.ndarray) -> np.ndarray:
    """TFLM's output bytes (as int8) for each row of input bytes: the golden reference."""
    result = _run_child(model, inputs, trace=False)
    return result["outputs"]


def layer_outputs(model, row: np.ndarray) -> list[np.ndarray]:
    """Every operator's first output tensor (bytes as int8) for one row of input bytes."""
    result = _run_child(model, row[None], trace=True)
    return [result[f"layer{i}"] for i in range(len(model.operators))]


def _run_child(model, inputs: np.ndarray, trace: bool) -> dict:
    from .errors import TinykdError

    with tempfile.TemporaryDirectory(prefix="tinykd-tflm-") as folder:
        request, result = Path(folder) / "request.npz", Path(folder) / "result.npz"
        np.savez(request, model=np.frombuffer(model.data, np.uint8), inputs=np.asarray(inputs, np.int8),
                 input_shapes=np.array(repr([tuple(t.shape) for t in model.input_tensors()])),
                 input_dtypes=np.array([t.dtype for t in model.input_tensors()]),
                 output_count=np.array(len(model.outputs)),
                 layers=np.array([op.outputs[0] for op in model.operators] if trace else [], np.int64),
                 arena=np.array(arena_bytes(model) + (sum(t.nbytes for t in model.tensors) if trace else 0)))
        child = subprocess.run([sys.executable, "-m", "tinykd.tflm_host", str(request), str(result)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               preexec_fn=_limit_child)
        if child.returncode != 0:
            raise TinykdError(f"{model.path}: the host TFLM (tflite-micro {tflm_version()}) "
                              f"{_describe_failure(child)} on this model; it cannot serve as the reference")
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


# ---- the child ------------------------------------------------------------------------------------

def _raw_bytes(array) -> np.ndarray:
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
    return np.concatenate([_raw_bytes(interp.get_output(i)) for i in range(output_count)])


def _child(request: Path, result: Path) -> int:
    with np.load(request) as data:
        model_data, inputs = data["model"].tobytes(), data["inputs"]
        specs = list(zip(ast.literal_eval(str(data["input_shapes"])), data["input_dtypes"].tolist()))
        output_count, layers, arena = int(data["output_count"]), data["layers"].tolist(), int(data["arena"])
    interp = interpreter(model_data, arena, preserve_all=bool(layers))
    rows = [invoke(interp, specs, output_count, row) for row in inputs]
    saved = {"outputs": np.stack(rows) if rows else np.zeros((0, 0), np.int8)}
    for i, tensor in enumerate(layers):
        saved[f"layer{i}"] = _raw_bytes(np.asarray(interp.GetTensor(tensor, 0)["tensor_data"]))
    np.savez(result, **saved)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
