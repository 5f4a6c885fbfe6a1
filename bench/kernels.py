"""Instructions per MAC of the C backend's portable and DSP kernels (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED) on emulated Cortex-M4 and Cortex-M7 cores, measured side by side in one run.

    .venv/bin/python bench/kernels.py [--vectors N]

Each case is a one-layer INT8 model (the layer's requantization and the copies of the graph input and
output are counted too). Its C backend is built into the verification firmware for each core twice, once
with each kernel variant (forced with -DTK_KERNELS), and run on QEMU with -icount shift=0, where the
count is exact and repeatable. Every run's outputs are compared with TFLM's on the host. Not a test: run
it by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tinykd.deploy.boards import forced_kernels, load_board  # noqa: E402
from tinykd.core.artifacts import write_tree  # noqa: E402
from tinykd.deploy.cbackend.lower import generate_c_backend  # noqa: E402
from tinykd.deploy.ops import op_macs  # noqa: E402
from tinykd.core.console import quiet  # noqa: E402
from tinykd.verify.runners import make_runner  # noqa: E402
from tinykd.verify.toolchain import build_firmware  # noqa: E402
from tinykd.tflite.reader import parse_model  # noqa: E402

CORES = {"cortex-m4": "nucleo-f446re", "cortex-m7": "nucleo-f767zi"}
VARIANTS = ("portable", "dsp")


def cases():
    """(kernel, description, Keras model): the shapes of the default student and of MobileNet-style blocks."""
    import keras
    from keras import layers

    def one(shape, layer):
        inputs = keras.Input(shape)
        return keras.Model(inputs, layer(inputs))

    return [
        ("CONV_2D", "48x48x1 -> 8, 3x3 stride 2 (tiny_conv conv1)", one((48, 48, 1), layers.Conv2D(8, 3, 2, "same"))),
        ("CONV_2D", "24x24x8 -> 16, 3x3 stride 2 (tiny_conv conv2)",
         one((24, 24, 8), layers.Conv2D(16, 3, 2, "same", activation="relu"))),
        ("CONV_2D", "12x12x16 -> 32, 3x3 stride 2 (tiny_conv conv3)",
         one((12, 12, 16), layers.Conv2D(32, 3, 2, "same", activation="relu"))),
        ("CONV_2D", "10x10x32 -> 32, 1x1 (pointwise)", one((10, 10, 32), layers.Conv2D(32, 1))),
        ("DEPTHWISE_CONV_2D", "16x16x32, 3x3 stride 1", one((16, 16, 32), layers.DepthwiseConv2D(3, padding="same"))),
        ("DEPTHWISE_CONV_2D", "16x16x8, 3x3 stride 2, multiplier 2",
         one((16, 16, 8), layers.DepthwiseConv2D(3, 2, "same", depth_multiplier=2))),
        ("FULLY_CONNECTED", "288 -> 32 (tiny_conv hidden)", one((288,), layers.Dense(32, activation="relu"))),
        ("FULLY_CONNECTED", "640 -> 128", one((640,), layers.Dense(128))),
    ]


def convert(keras_model, index: int):
    from tinykd.train.quantize import to_int8_tflite

    rng = np.random.default_rng(index)
    representative = rng.uniform(-1, 1, (16,) + tuple(keras_model.input_shape[1:])).astype(np.float32)
    return parse_model(to_int8_tflite(keras_model, representative), f"case{index}.tflite")


def tflm_outputs(model, rows: np.ndarray) -> bytes:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model.data, arena_size=10 * len(model.data) + (1 << 20))
    shape = model.input_tensors()[0].shape
    outputs = []
    for row in rows:
        interpreter.set_input(row.reshape(shape), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).tobytes())
    return b"".join(outputs)


def instructions(model, variant: str, board_name: str, rows: np.ndarray, folder: Path, golden: bytes) -> int:
    board = load_board(board_name)
    c_dir = folder / "c"
    write_tree(c_dir, generate_c_backend(model))
    firmware = build_firmware(c_dir, forced_kernels(board, variant), folder / "fw", target="qemu")
    outputs, count = make_runner("qemu", firmware, board).run(rows)
    if outputs.tobytes() != golden:
        raise SystemExit(f"{variant} on {board.cpu}: outputs differ from TFLM")
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=3)
    args = parser.parse_args(argv)
    with quiet():
        built = [(kernel, what, convert(keras_model, i)) for i, (kernel, what, keras_model) in enumerate(cases())]
    print(f"{'kernel':18} {'case':48} {'MACs':>9} {'core':10} {'portable':>9} {'dsp':>9} {'dsp/portable':>13}")
    print(f"{'':18} {'':48} {'':>9} {'':10} {'instr/MAC':>9} {'instr/MAC':>9}")
    with tempfile.TemporaryDirectory(prefix="tinykd-bench-") as tmp:
        for index, (kernel, what, model) in enumerate(built):
            (op,) = [op for op in model.operators if op.op == kernel]
            macs = op_macs(model, op)
            rng = np.random.default_rng(index)
            rows = rng.integers(-128, 128, (args.vectors, model.input_tensors()[0].nbytes), dtype=np.int8)
            golden = tflm_outputs(model, rows)
            for cpu, board in CORES.items():
                counts = {v: instructions(model, v, board, rows, Path(tmp) / f"{index}-{cpu}-{v}", golden)
                          for v in VARIANTS}
                per_mac = {v: counts[v] / macs for v in VARIANTS}
                print(f"{kernel:18} {what:48} {macs:>9,} {cpu:10} {per_mac['portable']:>9.2f} "
                      f"{per_mac['dsp']:>9.2f} {counts['dsp'] / counts['portable']:>13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
