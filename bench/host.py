"""Host latency per model: tinykd's C backend (gcc -O2 shared library, called through ctypes) against the
TFLM interpreter (PyPI tflite-micro) and the TFLite interpreter's reference kernels, on the same inputs.

    .venv/bin/python bench/host.py [MODEL.tflite ...]     (default: the test zoo + ../shared/models)

Runs are interleaved (every round times each runtime once, in a rotating order) and the table shows
medians over the rounds and ratios measured in this one run. Not a test: run it by hand.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tinykd.core.artifacts import write_tree  # noqa: E402
from tinykd.deploy.cbackend.lower import generate_c_backend  # noqa: E402
from tinykd.core.console import quiet  # noqa: E402
from tinykd.tflite.reader import read_model  # noqa: E402
from tinykd.tflite import tflm_host  # noqa: E402

ROUNDS, CALLS = 15, 20


def c_backend(model, folder: Path):
    write_tree(folder, generate_c_backend(model))
    sources = [str(folder / "tinykd_model.c")] + sorted(str(p) for p in (folder / "runtime").glob("*.c"))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{folder}", f"-I{folder / 'runtime'}", *sources,
                    "-o", str(folder / "model.so")], check=True)
    library = ctypes.CDLL(str(folder / "model.so"))
    out = ctypes.create_string_buffer(sum(t.nbytes for t in model.output_tensors()))

    def invoke(row: np.ndarray):
        library.tinykd_invoke(row.ctypes.data_as(ctypes.c_void_p), out)
    return invoke


def tflm(model):
    """In this process, to time it (the bench's models are known to run in TFLM)."""
    with quiet():
        interpreter = tflm_host.interpreter(model.data, tflm_host.arena_bytes(model))
    specs = [(t.shape, t.dtype) for t in model.input_tensors()]
    return lambda row: tflm_host.invoke(interpreter, specs, len(model.outputs), row)


def tflite_reference(model):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with quiet():
        interpreter = Interpreter(model_content=model.data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()

    def invoke(row: np.ndarray):
        interpreter.set_tensor(detail["index"], row.reshape(detail["shape"]))
        interpreter.invoke()
    return invoke


def bench(model_path: Path, folder: Path) -> dict[str, float]:
    model = read_model(model_path)
    runtimes = {"C backend": c_backend(model, folder), "TFLM": tflm(model), "TFLite ref": tflite_reference(model)}
    size = sum(t.nbytes for t in model.input_tensors())
    rows = np.random.default_rng(0).integers(-128, 128, (CALLS, size), dtype=np.int8)
    samples = {name: [] for name in runtimes}
    names = list(runtimes)
    for round_ in range(ROUNDS):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            for row in rows:
                runtimes[name](row)
            samples[name].append((time.perf_counter() - start) / CALLS)
    return {name: float(np.median(values)) * 1e6 for name, values in samples.items()}


def default_models(folder: Path) -> list[Path]:
    from zoo import build_zoo

    with quiet():
        paths = list(build_zoo(folder).values())
    shared = Path(__file__).resolve().parents[2] / "shared" / "models"
    return paths + sorted(shared.glob("*.tflite"))


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(p) for p in argv] or default_models(Path(tmp))
        print(f"{'model':<32} {'C backend us':>13} {'TFLM us':>10} {'TFLite ref us':>14} {'TFLM/C':>7} {'ref/C':>7}")
        for index, path in enumerate(paths):
            folder = Path(tmp) / f"c{index}"
            folder.mkdir()
            t = bench(path, folder)
            print(f"{path.name:<32} {t['C backend']:>13.1f} {t['TFLM']:>10.1f} {t['TFLite ref']:>14.1f} "
                  f"{t['TFLM'] / t['C backend']:>7.2f} {t['TFLite ref'] / t['C backend']:>7.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
