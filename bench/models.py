"""RAM of the C backend against TFLM, per model: the zoo of tests/zoo.py and the MLPerf Tiny models.

    .venv/bin/python bench/models.py [MODEL.tflite ...]

For each model: the smallest arena the real TFLM interpreter accepts on the host (measured by
bisection, `tinykd.memory.measure_arena`), TFLM's planned head alone (its greedy plan of the
activations, what the C backend used before `tinykd.cplan`), the C backend's RAM (its one static
arena; it has no other state), their ratio, and the model's MACs. Without arguments the zoo is built
in a temporary folder (Keras and the TFLite converter, some seconds) and the MLPerf models are taken
from ../shared/models when present. Not a test: run it by hand.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
MLPERF = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]


def zoo_models(folder: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from zoo import build_zoo

    from tinykd.console import quiet

    with quiet():
        return list(build_zoo(folder).values())


def row(path: Path) -> tuple:
    from tinykd.cbackend import arena_offsets
    from tinykd.memory import estimate_arena, greedy_plan, measure_arena, tensor_buffers
    from tinykd.tflite import read_model

    model = read_model(path)
    measured = measure_arena(path, start=estimate_arena(model, 8).total_bytes)
    head = greedy_plan(tensor_buffers(model)).size
    ram = arena_offsets(model)[1]
    return path.stem, measured, head, ram, ram / measured, model.total_macs


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(a) for a in argv] or zoo_models(Path(folder)) + [
            SHARED_MODELS / name for name in MLPERF if (SHARED_MODELS / name).is_file()]
        print(f"{'model':<24} {'TFLM arena':>10} {'TFLM head':>10} {'C RAM':>8} {'C / TFLM':>9} {'MACs':>12}")
        worst = 0.0
        for path in paths:
            name, measured, head, ram, ratio, macs = row(path)
            worst = max(worst, ratio)
            print(f"{name:<24} {measured:>10,} {head:>10,} {ram:>8,} {ratio:>9.1%} {macs:>12,}", flush=True)
        print(f"largest C / TFLM: {worst:.1%} (target 80%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
