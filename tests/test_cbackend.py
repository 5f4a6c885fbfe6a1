"""The C backend against the golden reference, TFLM on the host: equal output bytes, never "within 1".

Each model's generated C is compiled with the host gcc together with a small driver that reads
input vectors from a file and writes the outputs; TFLM's interpreter runs the same vectors.
Here: whole models (the zoo), code generation itself, and the DSP kernels' in-place use and speed;
each kernel's random cases are in test_kernels.py.
"""

import subprocess

import keras
import numpy as np
import pytest
from keras import layers

from tinykd.artifacts import write_tree
from tinykd.boards import load_board
from tinykd.firmware import build_firmware, make_runner
from tinykd.cbackend import RUNTIME_DIR, generate_c_backend
from tinykd.errors import TinykdError
from tinykd.quantize import to_int8_tflite
from tinykd.tflite import parse_model, read_model

from harness import CFLAGS, assert_bit_exact, random_vectors, rows_of, run_tflm


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


def test_kernel_variants_replace_only_their_files(zoo):
    model = read_model(zoo["depthwise_separable"])
    runtime = lambda sources: sorted(name.removeprefix("runtime/") for name in sources if "/" in name)
    portable, dsp = generate_c_backend(model), generate_c_backend(model, "dsp")
    assert runtime(portable) == ["conv.c", "depthwise_conv.c", "fully_connected.c", "mean.c", "tinykd_runtime.h"]
    assert runtime(dsp) == ["conv_dsp.c", "depthwise_conv_dsp.c", "fully_connected_dsp.c", "mean.c", "tinykd_dsp.h",
                            "tinykd_runtime.h"]
    # the same model code: only the comment listing the runtime files differs
    assert [line for line in dsp["tinykd_model.c"].splitlines() if "Runtime files:" not in line] == \
        [line for line in portable["tinykd_model.c"].splitlines() if "Runtime files:" not in line]
    assert runtime(generate_c_backend(model, "mve")) == ["conv_mve.c", "depthwise_conv_mve.c",
                                                         "fully_connected_mve.c", "mean.c", "tinykd_mve.h",
                                                         "tinykd_runtime.h"]
    other = generate_c_backend(read_model(zoo["concat_mul"]), "dsp")  # its dense layer only
    assert "runtime/fully_connected_dsp.c" in other and "runtime/conv.c" not in other


@pytest.mark.parametrize("compiler", ["gcc", "arm-none-eabi-gcc"])
def test_runtime_and_generated_model_compile_strictly(compiler, zoo, tmp_path):
    flags = CFLAGS + (["-mcpu=cortex-m4", "-mthumb"] if compiler.startswith("arm") else [])
    write_tree(tmp_path, generate_c_backend(read_model(zoo["tiny_student"])))
    sources = [str(tmp_path / "tinykd_model.c")] + [str(path) for path in sorted(RUNTIME_DIR.glob("*.c"))]
    for source in sources:
        subprocess.run([compiler, *flags, "-c", source, "-o", str(tmp_path / "out.o")], check=True)


def test_wide_convolutions_in_place_stay_exact_with_both_kernel_variants(tmp_path):
    """More output channels than the DSP conv's channel block: that kernel sweeps the image once per
    block, so its output must not overlap its input; the portable one may. Both stay exact."""
    keras.utils.set_random_seed(7)
    x = inputs = keras.Input((10, 10, 8))
    x = layers.Conv2D(40, 1, activation="relu")(x)
    x = layers.Conv2D(44, 3, padding="same")(x)
    model = parse_model(to_int8_tflite(keras.Model(inputs, x), np.random.default_rng(7).random((16, 10, 10, 8),
                                                                                          dtype=np.float32)),
                        "wide.tflite")
    vectors = random_vectors(model, 6, seed=7)
    for kernels in ("portable", "dsp"):
        assert_bit_exact(model, vectors, tmp_path / kernels, kernels=kernels)


def test_dsp_kernels_take_at_most_a_third_of_the_instructions_on_cortex_m7(zoo, tmp_path):
    """The default student on nucleo-f767zi (QEMU counts instructions exactly): optimized against
    portable kernels, same outputs as TFLM."""
    model = read_model(zoo["tiny_student"])
    board = load_board("nucleo-f767zi")
    vectors = random_vectors(model, 3, seed=3)
    rows = rows_of(vectors)
    counts = {}
    for kernels in ("portable", "dsp"):
        c_dir = tmp_path / kernels / "c"
        write_tree(c_dir, generate_c_backend(model, kernels))
        firmware = build_firmware(c_dir, board, tmp_path / kernels / "fw", target="qemu")
        outputs, counts[kernels] = make_runner("qemu", firmware, board).run(rows)
        assert outputs.tobytes() == run_tflm(model, vectors), kernels
    assert counts["dsp"] * 3 <= counts["portable"], counts
