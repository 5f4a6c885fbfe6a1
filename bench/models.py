"""The C backend against real TFLM, per model and core: instructions, RAM and flash, side by side.

    .venv/bin/python bench/models.py [--cores m7,m4,m0plus] [--vectors N] [MODEL.tflite ...]

For each model (without arguments: the zoo of tests/zoo.py, built in a temporary folder, and the MLPerf
Tiny models from ../shared/models when present) and each core, the C backend is built into the
verification firmware for the core's board and run on QEMU with -icount shift=0, where instruction
counts are exact and repeatable; its outputs are compared byte for byte with TFLM's on the host.

The reference figures are real TFLM's, measured by hand on an emulated Cortex-M7
(bench/tflm_m7_reference.json says how): instructions per inference with TFLM's reference kernels and
with CMSIS-NN's, and TFLM's smallest arena. The DSP cores (M7, M4) are compared with TFLM + CMSIS-NN,
which runs the same DSP instructions on both; the Cortex-M0+ (rpi-pico, portable kernels, on QEMU's M3 machine) with
TFLM's plain-C reference kernels. RAM is the C backend's one static arena (the plan its variant
compiles) against TFLM's arena; flash is the C backend's code and weights, compiled for the board, next
to the .tflite that TFLM needs in flash besides its own 41-103 KB of code. A model without reference
figures shows none. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
MLPERF = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]
REFERENCE = ROOT / "bench" / "tflm_m7_reference.json"
CORES = {"m7": ("nucleo-f767zi", "instr_tflm_cmsis", 0.85), "m4": ("nucleo-f446re", "instr_tflm_cmsis", 0.85),
         "m0plus": ("rpi-pico", "instr_tflm_ref", 0.60)}
"""core -> (its board, the reference figure its instructions are compared with, the target ratio)."""
RAM_TARGET = 0.70


def zoo_models(folder: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from zoo import build_zoo

    from tinykd.core.console import quiet

    with quiet():
        return list(build_zoo(folder).values())


def reference_figures(path: Path) -> dict:
    models = json.loads(REFERENCE.read_text())["models"]
    return models.get(path.stem) or models.get(f"zoo_{path.stem}") or {}


def on_core(model, board, folder: Path, inputs) -> dict:
    """The board's build on QEMU: instructions per inference, byte-equal with TFLM, RAM and flash."""
    from tinykd.core.artifacts import write_tree
    from tinykd.deploy.boards import build_variant
    from tinykd.deploy.cbackend.lower import arena_offsets, generate_c_backend
    from tinykd.verify.compare import tflm_outputs
    from tinykd.verify.runners import make_runner
    from tinykd.verify.toolchain import build_firmware, c_backend_size

    sources = generate_c_backend(model)
    write_tree(folder / "c", sources)
    elf = build_firmware(folder / "c", board, folder / "fw", target="qemu")
    outputs, instructions = make_runner("qemu", elf, board).run(inputs)
    variant = build_variant(board)
    return {"instructions": instructions, "equal": bool((outputs == tflm_outputs(model, inputs)).all()),
            "variant": variant, "ram": arena_offsets(model, kernels=variant)[1],
            "flash": c_backend_size(sources, board)["flash_bytes"]}


def main(argv: list[str]) -> int:
    from tinykd.deploy.boards import load_board
    from tinykd.deploy.ops import model_macs
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import random_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--cores", default=",".join(CORES), help=f"comma-separated, of {', '.join(CORES)}")
    parser.add_argument("--vectors", type=int, default=2, help="inputs per run, compared with TFLM's outputs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinykd-bench-") as folder:
        paths = args.models or zoo_models(Path(folder)) + [
            SHARED_MODELS / name for name in MLPERF if (SHARED_MODELS / name).is_file()]
        for core in args.cores.split(","):
            board_name, figure, target = CORES[core]
            board = load_board(board_name)
            print(f"\n{core}: {board.name} ({board.cpu}); instructions against TFLM's {figure} "
                  f"(target <= {target}), RAM against TFLM's arena (target <= {RAM_TARGET})")
            print(f"{'model':<24} {'MACs':>11} {'variant':>8} {'tinykd':>12} {'TFLM':>12} {'ratio':>6} {'equal':>6} "
                  f"{'C RAM':>8} {'TFLM RAM':>9} {'ratio':>6} {'C flash':>9} {'.tflite':>9}")
            worst = [0.0, 0.0]
            for index, path in enumerate(paths):
                model = read_model(path)
                reference = reference_figures(path)
                run = on_core(model, board, Path(folder) / f"{core}{index}", random_inputs(model, args.vectors))
                speed = run["instructions"] / reference[figure] if figure in reference and run["instructions"] else None
                ram = run["ram"] / reference["m7_min_ref"] if "m7_min_ref" in reference else None
                worst = [max(w, r or 0) for w, r in zip(worst, (speed, ram))]
                print(f"{path.stem:<24} {model_macs(model):>11,} {run['variant']:>8} {run['instructions'] or 0:>12,} "
                      f"{reference.get(figure, 0):>12,} {speed or 0:>6.2f} {'yes' if run['equal'] else 'NO':>6} "
                      f"{run['ram']:>8,} {reference.get('m7_min_ref', 0):>9,} {ram or 0:>6.2f} {run['flash']:>9,} "
                      f"{len(model.data):>9,}", flush=True)
            print(f"worst: instructions {worst[0]:.2f} (target {target}), RAM {worst[1]:.2f} (target {RAM_TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
