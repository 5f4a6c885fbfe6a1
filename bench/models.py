"""The C backend against TFLM, per model: the zoo of tests/zoo.py and the MLPerf Tiny models.

    .venv/bin/python bench/models.py [--board B] [MODEL.tflite ...]      (default board: nucleo-f767zi)

For each model: the smallest arena the real TFLM interpreter accepts on the host (measured by
bisection, `tinykd.deploy.tflm.memory.measure_arena`), TFLM's planned head alone (its greedy plan of the
activations), the C backend's RAM (its one static arena; it has no other state) and their ratio, the
model's MACs, and on the board's core in QEMU (exact instruction counts) the instructions per inference
with the portable kernels (forced) and those the board's flags pick, and the verification firmware's flash (text + data
of the ELF, optimized kernels) next to the .tflite's size, which TFLM needs in flash before its own code. Without arguments the zoo is built
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

    from tinykd.core.console import quiet

    with quiet():
        return list(build_zoo(folder).values())


def on_board(model, board, folder: Path) -> dict:
    """Instructions per inference per kernel variant, and the optimized firmware's flash, on the board."""
    import subprocess

    import numpy as np

    from tinykd.core.artifacts import write_tree
    from tinykd.deploy.boards import forced_kernels
    from tinykd.deploy.cbackend.lower import generate_c_backend
    from tinykd.verify.firmware import build_firmware, make_runner

    rows = np.zeros((2, sum(t.nbytes for t in model.input_tensors())), np.int8)
    result = {}
    c_dir = folder / "c"
    write_tree(c_dir, generate_c_backend(model))
    for kernels, build_for in (("portable", forced_kernels(board, "portable")), ("optimized", board)):
        elf = build_firmware(c_dir, build_for, folder / kernels / "fw", target="qemu")
        result[kernels] = make_runner("qemu", elf, board).run(rows)[1]
        size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True)
        text, data = (int(v) for v in size.stdout.splitlines()[1].split()[:2])
        result[f"{kernels}_flash"] = text + data
    return result


def row(path: Path, board, folder: Path) -> tuple:
    from tinykd.deploy.cbackend.lower import arena_offsets
    from tinykd.deploy.ops import model_macs
    from tinykd.deploy.tflm.memory import estimate_arena, greedy_plan, measure_arena, tensor_buffers
    from tinykd.tflite.reader import read_model

    model = read_model(path)
    measured = measure_arena(path, start=estimate_arena(model, 8).total_bytes)
    head = greedy_plan(tensor_buffers(model)).size
    ram = arena_offsets(model)[1]
    counts = on_board(model, board, folder)
    return (path.stem, measured, head, ram, ram / measured, model_macs(model), counts["portable"],
            counts["optimized"], counts["optimized_flash"], len(model.data))


def main(argv: list[str]) -> int:
    import argparse

    from tinykd.deploy.boards import build_variant, load_board

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--board", default="nucleo-f767zi")
    args = parser.parse_args(argv)
    board = load_board(args.board)
    with tempfile.TemporaryDirectory() as folder:
        paths = args.models or zoo_models(Path(folder)) + [
            SHARED_MODELS / name for name in MLPERF if (SHARED_MODELS / name).is_file()]
        print(f"{board.name} ({board.cpu}): portable against {build_variant(board)} kernels")
        print(f"{'model':<24} {'TFLM arena':>10} {'TFLM head':>10} {'C RAM':>8} {'C / TFLM':>9} {'MACs':>12} "
              f"{'portable':>12} {'optimized':>11} {'ratio':>8} {'fw flash':>9} {'.tflite':>8}")
        worst = 0.0
        for index, path in enumerate(paths):
            name, measured, head, ram, ratio, macs, portable, dsp, flash, tflite = row(path, board,
                                                                                 Path(folder) / str(index))
            worst = max(worst, ratio)
            counted = portable is not None and dsp is not None  # QEMU's Cortex-M55 machine cannot count
            print(f"{name:<24} {measured:>10,} {head:>10,} {ram:>8,} {ratio:>9.1%} {macs:>12,} "
                  f"{portable or 0:>12,} {dsp or 0:>11,} {dsp / portable if counted else 0:>8.3f} {flash:>9,} "
                  f"{tflite:>8,}", flush=True)
        print(f"largest C / TFLM: {worst:.1%} (target 80%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
