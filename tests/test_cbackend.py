"""The C backend against the golden reference, TFLM on the host: equal output bytes, never "within 1".

Each model's generated C is compiled with the host gcc together with a small driver that reads
input vectors from a file and writes the outputs; TFLM's interpreter runs the same vectors.
Here: whole models (the zoo), code generation itself, the kernel variants the compiler picks per core
(one c/ for every board), and the DSP kernels' in-place use and speed; each kernel's random cases are
in test_kernels.py.
"""

import dataclasses
import logging
import shutil
import subprocess

import keras
import numpy as np
import pytest
from keras import layers

from tinykd.deploy import boards
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import KERNEL_VARIANTS, compiled_variant, forced_kernels, kernels_define, load_board
from tinykd.deploy.bundle import arduino_files, c_backend_files
from tinykd.verify.runners import make_runner
from tinykd.verify.toolchain import build_firmware
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.deploy.cbackend.lower import (PARAMS_HEADER, RUNTIME_DIR, arena_plans, generate_c_backend, runtime_source,
                                          variant_sources)
from tinykd.core.errors import TinykdError
from tinykd.train.quantize import to_int8_tflite
from tinykd.tflite.reader import parse_model, read_model

from harness import CFLAGS, assert_bit_exact, random_vectors, rows_of, run_on_qemu, run_tflm

CORES = {"rpi-pico": "portable", "nucleo-f446re": "dsp", "mps2-an500": "dsp", "mps3-an547": "mve"}
"""Cortex-M0+, M4, M7 and M55, and the kernels each one's flags choose."""


def test_zoo_models_are_bit_exact_with_tflm(zoo, tmp_path):
    for index, (name, path) in enumerate(sorted(zoo.items())):
        model = read_model(path)
        folder = tmp_path / name
        folder.mkdir()
        assert_bit_exact(model, random_vectors(model, 50, seed=index), folder)


def test_generation_is_deterministic_and_names_unsupported_layers(zoo):
    model = read_model(zoo["concat_mul"])
    first = generate_c_backend(model)
    assert first == generate_c_backend(read_model(zoo["concat_mul"]))
    assert "runtime/softmax.c" not in first and "runtime/hard_swish.c" in first
    assert "/* Layer 6: HARD_SWISH 1x8x8x11 -> 1x8x8x11 */" in first["tinykd_model.c"]
    model.operators[6].op = "TANH"
    with pytest.raises(TinykdError, match=r"layer 6 \(TANH\).*no kernel for TANH"):
        generate_c_backend(model)
    model = read_model(zoo["concat_mul"])
    model.tensors[model.operators[6].outputs[0]].dtype = "float32"  # only DEQUANTIZE may write float32
    with pytest.raises(TinykdError, match=r"layer 6 \(HARD_SWISH\).*int8 kernels only"):
        generate_c_backend(model)
    model.input_tensors()[0].dtype = "float32"
    with pytest.raises(TinykdError, match=r"float32 input tensor .*needs int8 inputs"):
        generate_c_backend(model)


def compiled_files(c_dir, compiler, flags, folder) -> set[str]:
    """The runtime .c files of `c_dir` whose objects define a function when compiled with `flags` (each
    variant's code sits inside its own #if)."""
    folder.mkdir(parents=True, exist_ok=True)
    nm = "nm" if compiler == "gcc" else "arm-none-eabi-nm"
    found = set()
    for source in sorted((c_dir / "runtime").glob("*.c")):
        obj = folder / f"{source.stem}.o"
        subprocess.run([compiler, *flags, f"-I{c_dir / 'runtime'}", "-c", str(source), "-o", str(obj)], check=True)
        symbols = subprocess.run([nm, "--defined-only", "-g", str(obj)], capture_output=True, text=True, check=True)
        if " T " in symbols.stdout:
            found.add(source.name)
    return found


def test_every_variant_is_in_the_sources_and_each_build_keeps_one(zoo, tmp_path):
    """The runtime files do not depend on the board: every variant of the kernels the model uses, of
    which a build keeps the one TK_KERNELS names."""
    model = read_model(zoo["depthwise_separable"])
    sources = generate_c_backend(model)
    runtime = sorted(name.removeprefix("runtime/") for name in sources if "/" in name)
    assert runtime == ["conv.c", "conv_dsp.c", "conv_mve.c", "depthwise_conv.c", "depthwise_conv_dsp.c",
                       "depthwise_conv_mve.c", "fully_connected.c", "fully_connected_dsp.c", "fully_connected_mve.c",
                       "mean.c", "tinykd_compiler.h", "tinykd_dsp.h", "tinykd_fixedpoint.h", "tinykd_kernels.h",
                       "tinykd_loops.h", "tinykd_mve.h", "tinykd_params.h", "tinykd_portable.h", "tinykd_runtime.h"]
    assert variant_sources(runtime, "dsp") == ["conv_dsp.c", "depthwise_conv_dsp.c", "fully_connected_dsp.c",
                                               "mean.c"]
    other = generate_c_backend(read_model(zoo["mlp"]))  # dense layers only
    assert "runtime/fully_connected_dsp.c" in other and "runtime/conv.c" not in other
    write_tree(tmp_path / "c", sources)
    for variant in KERNEL_VARIANTS:
        found = compiled_files(tmp_path / "c", "gcc", CFLAGS + [kernels_define(variant)], tmp_path / variant)
        assert found == set(variant_sources(runtime, variant)), variant
    # a variant that does not exist is refused, not taken for the portable one
    result = subprocess.run(["gcc", *CFLAGS, "-DTK_KERNELS=TK_KERNELS_NEON", "-c", "runtime/conv.c", "-o", "x.o"],
                            cwd=tmp_path / "c", capture_output=True, text=True)
    assert result.returncode != 0 and "TK_KERNELS must be" in result.stderr


STRICT_BUILDS = [("gcc", [kernels_define(variant)]) for variant in KERNEL_VARIANTS] + [
    ("arm-none-eabi-gcc", load_board(board).cflags) for board in CORES]


@pytest.mark.parametrize("compiler, flags", STRICT_BUILDS, ids=lambda value: " ".join(value) if isinstance(
    value, list) else value)
def test_runtime_and_generated_model_compile_strictly(compiler, flags, zoo, tmp_path):
    """Every runtime file and a model, -Wall -Wextra -pedantic -Werror: each variant forced on the host
    (the stand-ins), and on the Cortex-M0+, M4, M7 and M55 with the variant their flags pick (the real
    instructions)."""
    write_tree(tmp_path, generate_c_backend(read_model(zoo["tiny_student"])))
    names = sorted(path.name for path in RUNTIME_DIR.iterdir()) + [PARAMS_HEADER]
    write_tree(tmp_path / "runtime", {name: runtime_source(name) for name in names})
    sources = [str(tmp_path / "tinykd_model.c")] + [str(path) for path in sorted((tmp_path / "runtime").glob("*.c"))]
    for source in sources:
        subprocess.run([compiler, *CFLAGS, *flags, "-c", source, "-o", str(tmp_path / "out.o")], check=True)


def test_a_runtime_with_another_channel_block_than_the_plan_refuses_to_build(zoo, tmp_path):
    """The planner's DSP channel block is the runtime's TK_RQ_BLOCK, or the model does not compile."""
    write_tree(tmp_path, generate_c_backend(read_model(zoo["tiny_student"])))
    subprocess.run(["gcc", *CFLAGS, "-c", "tinykd_model.c", "-o", "model.o"], cwd=tmp_path, check=True)
    result = subprocess.run(["gcc", *CFLAGS, f"-DTK_RQ_BLOCK={DSP_CHANNEL_BLOCK // 2}", "-c", "tinykd_model.c", "-o", "model.o"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and f"the arena plan of this model assumes TK_RQ_BLOCK {DSP_CHANNEL_BLOCK}" in result.stderr


def test_one_c_folder_picks_its_kernels_on_every_core(zoo, tmp_path):
    """The same c/ built for Cortex-M0+, M4, M7 and M55: each core's flags pick its variant (seen in the
    compiler's macros and in which objects define the kernels), and each firmware in QEMU gives TFLM's
    bytes."""
    model = read_model(zoo["depthwise_separable"])
    sources = generate_c_backend(model)
    runtime = [name.removeprefix("runtime/") for name in sources if name.startswith("runtime/")]
    write_tree(tmp_path / "c", sources)
    vectors = random_vectors(model, 4, seed=11)
    golden = run_tflm(model, vectors)
    for name, variant in CORES.items():
        board = load_board(name)
        assert board.kernels == compiled_variant(board) == variant, name
        found = compiled_files(tmp_path / "c", "arm-none-eabi-gcc", ["-O2", *board.cflags], tmp_path / name)
        assert found == set(variant_sources(runtime, variant)), name
        assert run_on_qemu(model, vectors, tmp_path / f"qemu-{name}", name) == golden, name


def test_the_arduino_library_carries_every_variant_and_the_nano_33_ble_builds_the_dsp_one(zoo, tmp_path):
    model = read_model(zoo["depthwise_separable"])
    files = arduino_files(model)
    src = tmp_path / "arduino" / "tinykd_depthwise_separable" / "src"
    write_tree(tmp_path, files)
    runtime = sorted(path.name for path in (src / "runtime").iterdir())
    assert runtime == sorted(name.removeprefix("runtime/") for name in generate_c_backend(model) if "/" in name)
    nano = load_board("arduino-nano-33-ble")
    assert compiled_variant(nano) == "dsp"
    found = compiled_files(src, "arm-none-eabi-gcc", ["-O2", *nano.cflags], tmp_path / "objects")
    assert found == set(variant_sources(runtime, "dsp")) and "conv_dsp.c" in found


def test_every_board_profile_compiles_the_kernels_it_promises():
    assert shutil.which("arm-none-eabi-gcc")
    for board in boards.all_boards()[0]:
        assert compiled_variant(board) == board.kernels, board.name
        assert compiled_variant(forced_kernels(board, "mve")) == "mve", board.name


def test_a_profile_whose_flags_lack_its_kernels_is_warned_about(zoo, caplog, monkeypatch):
    """kernels = "dsp" on a Cortex-M0+: a warning, and the manifest says the build runs the portable
    kernels; without the compiler to ask, no warning and the profile's word."""
    model = read_model(zoo["mlp"])
    wrong = dataclasses.replace(load_board("nucleo-f446re"), name="wrong", cflags=["-mcpu=cortex-m0plus", "-mthumb"])
    with caplog.at_level(logging.WARNING, logger="tinykd.deploy.boards"):
        _, info = c_backend_files(model, wrong, size=False, check=False)
    assert info["kernel_variant"] == "portable" and "fully_connected.c" in info["kernels"]
    assert "board wrong promises the dsp kernels, but its cflags (-mcpu=cortex-m0plus -mthumb) compile the " \
           "portable ones" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tinykd.deploy.boards"):
        _, info = c_backend_files(model, load_board("nucleo-f446re"), size=False, check=False)
    assert info["kernel_variant"] == "dsp" and "fully_connected_dsp.c" in info["kernels"] and not caplog.text
    monkeypatch.setattr(shutil, "which", lambda name: None)
    unknown = dataclasses.replace(wrong, cflags=["-mcpu=cortex-m0plus", "-mthumb", "-Os"])  # not cached yet
    with caplog.at_level(logging.WARNING, logger="tinykd.deploy.boards"):
        _, info = c_backend_files(model, unknown, size=False, check=False)
    assert info["kernel_variant"] == "dsp" and not caplog.text


def test_wide_convolutions_in_place_stay_exact_with_every_kernel_variant(tmp_path):
    """More output channels than the DSP conv's channel block: that kernel sweeps the image once per
    block, so its output must not overlap its input; the others may. The one c/ holds both plans, and
    each variant's build is exact."""
    keras.utils.set_random_seed(7)
    x = inputs = keras.Input((10, 10, 8))
    x = layers.Conv2D(DSP_CHANNEL_BLOCK + 8, 1, activation="relu")(x)
    x = layers.Conv2D(DSP_CHANNEL_BLOCK + 12, 3, padding="same")(x)
    model = parse_model(to_int8_tflite(keras.Model(inputs, x), np.random.default_rng(7).random((16, 10, 10, 8),
                                                                                          dtype=np.float32)),
                        "wide.tflite")
    plans = arena_plans(model)
    assert [plan.variants for plan in plans] == [("portable", "mve"), ("dsp",)]
    assert plans[0].size < plans[1].size
    header = generate_c_backend(model)["tinykd_model.h"]
    assert header.count("#define TINYKD_ARENA_BYTES") == 2 and "#if TK_KERNELS == TK_KERNELS_PORTABLE" in header
    vectors = random_vectors(model, 6, seed=7)
    for kernels in KERNEL_VARIANTS:
        assert_bit_exact(model, vectors, tmp_path / kernels, kernels=kernels)


def test_dsp_kernels_take_at_most_two_thirds_of_the_instructions_on_cortex_m7(zoo, tmp_path):
    """The default student on nucleo-f767zi (QEMU counts instructions exactly): one c/, built with the
    kernels the core's flags pick (DSP) and with the portable ones forced; same outputs as TFLM."""
    model = read_model(zoo["tiny_student"])
    board = load_board("nucleo-f767zi")
    vectors = random_vectors(model, 3, seed=3)
    rows = rows_of(vectors)
    c_dir = tmp_path / "c"
    write_tree(c_dir, generate_c_backend(model))
    counts = {}
    for kernels, build_for in (("portable", forced_kernels(board, "portable")), ("dsp", board)):
        firmware = build_firmware(c_dir, build_for, tmp_path / kernels / "fw", target="qemu")
        outputs, counts[kernels] = make_runner("qemu", firmware, board).run(rows)
        assert outputs.tobytes() == run_tflm(model, vectors), kernels
    assert counts["dsp"] * 3 <= counts["portable"] * 2, counts  # 0.54 on 2026-12-03
