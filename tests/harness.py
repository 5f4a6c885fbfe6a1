"""Shared by the tests: the C backend compiled with the host gcc or for QEMU, and TFLM on the host, on the
same input vectors; equal output bytes, never "within 1".

`kernels` forces a kernel variant (-DTK_KERNELS=...): natively, the dsp and mve variants run as their
plain-C stand-ins; None keeps the variant the compiler's flags choose (portable on the host, the
core's own on QEMU)."""

import subprocess

import numpy as np
import pytest

from tinykd.tflite import tflm_host
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import forced_kernels, kernels_define, load_board
from tinykd.deploy.cbackend.lower import generate_c_backend
from tinykd.verify.runners import make_runner
from tinykd.verify.toolchain import build_firmware

DRIVER = r"""
#include <stdio.h>

#include "tinykd_model.h"

int main(int argc, char **argv)
{
    static int8_t input[TINYKD_INPUT_BYTES], output[TINYKD_OUTPUT_BYTES];
    FILE *in, *out;
    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb"))) {
        return 2;
    }
    while (fread(input, 1, sizeof input, in) == sizeof input) {
        tinykd_invoke(input, output);
        fwrite(output, 1, sizeof output, out);
    }
    fclose(in);
    return fclose(out);
}
"""
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]


def random_vectors(model, count, seed):
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, t.shape, dtype=np.int8) for t in model.input_tensors()] for _ in range(count)]


def run_c(model, vectors, folder, kernels=None, fusion=None) -> bytes:
    """Outputs of the generated C for every vector, back to back (`fusion`: see generate_c_backend)."""
    sources = generate_c_backend(model, fusion)
    write_tree(folder, {**sources, "driver.c": DRIVER})
    c_files = ["driver.c"] + sorted(name for name in sources if name.endswith(".c"))
    forced = [kernels_define(kernels)] if kernels else []
    subprocess.run(["gcc", *CFLAGS, *forced, "-o", "model", *c_files], cwd=folder, check=True)
    (folder / "inputs.bin").write_bytes(b"".join(x.tobytes() for vector in vectors for x in vector))
    subprocess.run(["./model", "inputs.bin", "outputs.bin"], cwd=folder, check=True)
    return (folder / "outputs.bin").read_bytes()


def rows_of(vectors) -> np.ndarray:
    """Vectors (one array per model input) as rows of input bytes."""
    return np.stack([np.concatenate([x.view(np.int8).ravel() for x in vector]) for vector in vectors])


def run_tflm(model, vectors) -> bytes:
    """TFLM's outputs for every vector, back to back (in a child process, as tinykd runs it)."""
    return tflm_host.outputs(model, rows_of(vectors)).tobytes()


def assert_bit_exact(model, vectors, folder, kernels=None):
    ours, golden = run_c(model, vectors, folder, kernels), run_tflm(model, vectors)
    assert len(ours) == len(golden)
    if ours != golden:
        diff = np.frombuffer(ours, np.int8).astype(int) - np.frombuffer(golden, np.int8)
        pytest.fail(f"{model.path}: {np.count_nonzero(diff)} of {diff.size} output bytes differ from TFLM "
                    f"(max |diff| {np.abs(diff).max()})")


def run_on_qemu(model, vectors, folder, board="mps2-an500", kernels=None, fusion=None) -> bytes:
    """Outputs of the firmware built for `board` (in QEMU) for every vector, back to back."""
    board = load_board(board)
    c_dir = folder / "c"
    write_tree(c_dir, generate_c_backend(model, fusion))
    build_for = forced_kernels(board, kernels) if kernels else board
    firmware = build_firmware(c_dir, build_for, folder / "fw" / board.name, target="qemu")
    outputs, _ = make_runner("qemu", firmware, board).run(rows_of(vectors))
    return outputs.tobytes()


def assert_bit_exact_on_qemu(model, vectors, folder, board="mps2-an500", kernels=None):
    assert run_on_qemu(model, vectors, folder, board, kernels) == run_tflm(model, vectors), \
        f"{model.path}: QEMU {load_board(board).cpu} output ({kernels or 'its own'} kernels) differs from TFLM"


def differing_bytes(model, ours: bytes, golden: bytes) -> list[int]:
    """For each graph output, how many of its bytes differ over all vectors (outputs back to back per
    vector, as run_c and run_tflm give them)."""
    assert len(ours) == len(golden)
    sizes = [t.nbytes for t in model.output_tensors()]
    differ = np.frombuffer(ours, np.uint8).reshape(-1, sum(sizes)) != np.frombuffer(golden, np.uint8).reshape(
        -1, sum(sizes))
    return [int(part.sum()) for part in np.split(differ, np.cumsum(sizes)[:-1], axis=1)]
