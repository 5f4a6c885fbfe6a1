"""The C backend against TFLM, per model: the zoo of tests/zoo.py and the MLPerf Tiny models.

    .venv/bin/python bench/models.py [MODEL.tflite ...]

For each model: the smallest arena the real TFLM interpreter accepts on the host (measured by
bisection, `tinykd.memory.measure_arena`), TFLM's planned head alone (its greedy plan of the
activations), the C backend's RAM (its one static arena; it has no other state) and their ratio, the
model's MACs, and on nucleo-f767zi (Cortex-M7 in QEMU, exact instruction counts) the instructions per
inference with the portable and the DSP kernels and the verification firmware's flash (text + data of
the ELF, with the DSP kernels) next to the .tflite's size, which TFLM needs in flash before its own code. Without arguments the zoo is built
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


def on_cortex_m7(model, folder: Path) -> dict:
    """Instructions per inference per kernel variant, and the DSP firmware's flash, on nucleo-f767zi."""
    import subprocess

    import numpy as np

    from tinykd.boards import load_board
    from tinykd.cbackend import generate_c_backend
    from tinykd.firmware import build_firmware, make_runner

    board = load_board("nucleo-f767zi")
    rows = np.zeros((2, sum(t.nbytes for t in model.input_tensors())), np.int8)
    result = {}
    for kernels in ("portable", "dsp"):
        c_dir = folder / kernels / "c"
        for name, text in generate_c_backend(model, kernels).items():
            (c_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (c_dir / name).write_text(text)
        elf = build_firmware(c_dir, board, folder / kernels / "fw", target="qemu")
        result[kernels] = make_runner("qemu", elf, board).run(rows)[1]
        size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True)
        text, data = (int(v) for v in size.stdout.splitlines()[1].split()[:2])
        result[f"{kernels}_flash"] = text + data
    return result


def row(path: Path, folder: Path) -> tuple:
    from tinykd.cbackend import arena_offsets
    from tinykd.memory import estimate_arena, greedy_plan, measure_arena, tensor_buffers
    from tinykd.tflite import read_model

    model = read_model(path)
    measured = measure_arena(path, start=estimate_arena(model, 8).total_bytes)
    head = greedy_plan(tensor_buffers(model)).size
    ram = arena_offsets(model)[1]
    m7 = on_cortex_m7(model, folder)
    return (path.stem, measured, head, ram, ram / measured, model.total_macs, m7["portable"], m7["dsp"],
            m7["dsp_flash"], len(model.data))


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(a) for a in argv] or zoo_models(Path(folder)) + [
            SHARED_MODELS / name for name in MLPERF if (SHARED_MODELS / name).is_file()]
        print(f"{'model':<24} {'TFLM arena':>10} {'TFLM head':>10} {'C RAM':>8} {'C / TFLM':>9} {'MACs':>12} "
              f"{'M7 portable':>12} {'M7 dsp':>11} {'dsp/port':>8} {'fw flash':>9} {'.tflite':>8}")
        worst = 0.0
        for index, path in enumerate(paths):
            name, measured, head, ram, ratio, macs, portable, dsp, flash, tflite = row(path, Path(folder) / str(index))
            worst = max(worst, ratio)
            print(f"{name:<24} {measured:>10,} {head:>10,} {ram:>8,} {ratio:>9.1%} {macs:>12,} {portable:>12,} "
                  f"{dsp:>11,} {dsp / portable:>8.3f} {flash:>9,} {tflite:>8,}", flush=True)
        print(f"largest C / TFLM: {worst:.1%} (target 80%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
