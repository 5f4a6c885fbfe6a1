"""The C backend against the golden reference, TFLM on the host: equal output bytes, never "within 1".

Each model's generated C is compiled with the host gcc together with a small driver that reads
input vectors from a file and writes the outputs; TFLM's interpreter runs the same vectors.
Per-kernel cases are many independent single-layer branches (input -> one layer -> output) in one
Keras model, converted once; the test checks that every branch became exactly its one op
(plus the QUANTIZE ops the converter inserts to requantize a branch's inputs).
"""

import collections
import subprocess

import keras
import numpy as np
import pytest
from keras import layers

from tinykd.artifacts import write_tree
from tinykd.boards import load_board
from tinykd.firmware import build_firmware, make_runner
from tinykd.cbackend import RUNTIME_DIR, arena_offsets, generate_c_backend
from tinykd.errors import TinykdError
from tinykd.quantize import to_int8_tflite
from tinykd.tflite import parse_model, read_model

from harness import CFLAGS, assert_bit_exact, assert_bit_exact_on_qemu, random_vectors, rows_of, run_tflm


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


# ---- Per-kernel random cases -------------------------------------------------------------------------

ACTIVATIONS = [None, "relu", "relu6"]


def _init(rng):
    return keras.initializers.RandomNormal(stddev=float(rng.uniform(0.05, 1.0)), seed=int(rng.integers(1 << 30)))


def _size(rng, low, high):
    return int(rng.integers(low, high + 1))


def _conv(rng, depthwise):
    k = (_size(rng, 1, 4), _size(rng, 1, 4))
    dilation = (1, 1) if rng.random() < 0.6 else (_size(rng, 1, 3), _size(rng, 1, 3))
    strides = (1, 1) if dilation != (1, 1) else (_size(rng, 1, 3), _size(rng, 1, 3))
    shape = tuple((k[a] - 1) * dilation[a] + 1 + _size(rng, 0, 7) for a in range(2)) + (_size(rng, 1, 7),)
    options = dict(strides=strides, dilation_rate=dilation, padding=str(rng.choice(["same", "valid"])),
                   activation=ACTIVATIONS[_size(rng, 0, 2)], use_bias=bool(rng.random() < 0.8),
                   bias_initializer=_init(rng))
    if depthwise:
        layer = layers.DepthwiseConv2D(k, depth_multiplier=_size(rng, 1, 3), depthwise_initializer=_init(rng),
                                       **options)
    else:
        layer = layers.Conv2D(_size(rng, 1, 9), k, kernel_initializer=_init(rng), **options)
    return [shape], layer


def _pool(rng, average):
    size = (_size(rng, 1, 3), _size(rng, 1, 3))
    shape = (size[0] + _size(rng, 0, 7), size[1] + _size(rng, 0, 7), _size(rng, 1, 7))
    kind = layers.AveragePooling2D if average else layers.MaxPooling2D
    return [shape], kind(size, strides=(_size(rng, 1, 3), _size(rng, 1, 3)),
                         padding=str(rng.choice(["same", "valid"])))


def _image(rng):
    # at least 2x2: the converter drops a MEAN over 1x1 and reshapes an ADD of 1x1 images
    return (_size(rng, 2, 9), _size(rng, 2, 9), _size(rng, 1, 9))


def _fully_connected(rng):
    return [(_size(rng, 1, 48),)], layers.Dense(_size(rng, 1, 20), activation=ACTIVATIONS[_size(rng, 0, 2)],
                                               use_bias=bool(rng.random() < 0.8), kernel_initializer=_init(rng),
                                               bias_initializer=_init(rng))


def _softmax(rng):
    return [(_size(rng, 1, 30),) if rng.random() < 0.5 else _image(rng)], layers.Softmax()


def _binary(rng, kind):
    shape = _image(rng)
    second = (1, 1, shape[2]) if kind is layers.Multiply and rng.random() < 0.3 else shape
    return [shape, second], kind()


def _concatenation(rng):
    shape = _image(rng)
    axis = _size(rng, 1, 3)
    shapes = []
    for _ in range(_size(rng, 2, 3)):
        other = list(shape)
        other[axis - 1] = _size(rng, 1, 6)
        shapes.append(tuple(other))
    return shapes, layers.Concatenate(axis=axis)


def _requantize(rng):
    """One input concatenated with two others of different ranges: the converter gives it one
    scale and requantizes it (QUANTIZE int8 -> int8) for at least one of the concatenations."""
    shape = _image(rng)
    return [shape] * 3, lambda x: [layers.Concatenate()([x[0], x[1]]), layers.Concatenate()([x[0], x[2]])]


def _pad(rng):
    padding = [_size(rng, 0, 2) for _ in range(4)]
    padding[_size(rng, 0, 3)] = _size(rng, 1, 2)  # the converter drops an all-zero PAD
    return [_image(rng)], layers.ZeroPadding2D((tuple(padding[:2]), tuple(padding[2:])))


def _dequantize(rng):
    """A Flatten: the converter drops an identity layer, leaving a float input passed through with no op,
    so each branch is a RESHAPE (an alias in the C backend: no code) and then the DEQUANTIZE to the float32 output."""
    shape = tuple(_size(rng, 1, 9) for _ in range(_size(rng, 2, 3)))
    return [shape], layers.Flatten()


# kernel -> (branch builder, op it must convert to)
KERNELS = {
    "CONV_2D": (lambda rng: _conv(rng, depthwise=False), "CONV_2D"),
    "DEPTHWISE_CONV_2D": (lambda rng: _conv(rng, depthwise=True), "DEPTHWISE_CONV_2D"),
    "FULLY_CONNECTED": (_fully_connected, "FULLY_CONNECTED"),
    "MAX_POOL_2D": (lambda rng: _pool(rng, average=False), "MAX_POOL_2D"),
    "AVERAGE_POOL_2D": (lambda rng: _pool(rng, average=True), "AVERAGE_POOL_2D"),
    "MEAN": (lambda rng: ([_image(rng)], layers.GlobalAveragePooling2D(keepdims=bool(rng.random() < 0.5))),
             "MEAN"),
    "SOFTMAX": (_softmax, "SOFTMAX"),
    "ADD": (lambda rng: _binary(rng, layers.Add), "ADD"),
    "MUL": (lambda rng: _binary(rng, layers.Multiply), "MUL"),
    "CONCATENATION": (_concatenation, "CONCATENATION"),
    "PAD": (_pad, "PAD"),
    "QUANTIZE": (_requantize, "QUANTIZE"),
    "LOGISTIC": (lambda rng: ([_image(rng)], layers.Activation("sigmoid")), "LOGISTIC"),
    "HARD_SWISH": (lambda rng: ([_image(rng)], layers.Activation("hard_swish")), "HARD_SWISH"),
    "DEQUANTIZE": (_dequantize, "DEQUANTIZE"),
}
DSP_KERNELS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
"""Kernels with a dsp variant (tinykd.cbackend.KERNEL_VARIANTS), checked with it as well."""
MVE_KERNELS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
"""Kernels with an mve variant (Helium, Cortex-M55), checked with it as well."""
# Seeds number the kernels in this order; one added later goes last, so the others keep their cases.
SEED_ORDER = sorted(set(KERNELS) - {"DEQUANTIZE"}) + ["DEQUANTIZE"]
CASES_PER_KERNEL = 200
BRANCHES_PER_MODEL = 50


def branch_model(kernel, seed):
    """BRANCHES_PER_MODEL single-layer branches of `kernel`, and calibration data with a random
    range per input (so every branch gets its own input scale and zero point)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    inputs, outputs, representative = [], [], []
    for _ in range(BRANCHES_PER_MODEL):
        shapes, layer = KERNELS[kernel][0](rng)
        branch_inputs = [keras.Input(shape) for shape in shapes]
        output = layer(branch_inputs if len(shapes) > 1 else branch_inputs[0])
        inputs += branch_inputs
        outputs += output if isinstance(output, list) else [output]
        for shape in shapes:
            low = rng.uniform(-4, 1)
            high = low + rng.uniform(0.05, 8)
            if kernel == "HARD_SWISH":  # a range that hard-swish maps to ~0 is refused by TFLM's Prepare
                low, high = rng.uniform(-4, -0.5), rng.uniform(0.5, 6)
            if kernel == "DEQUANTIZE":  # scales over six orders of magnitude
                low, high = np.array([low, high]) * 10 ** rng.uniform(-3, 3)
            representative.append(rng.uniform(low, high, (16,) + shape).astype(np.float32))
    return keras.Model(inputs, outputs), representative


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_kernel_random_cases_are_bit_exact_with_tflm(kernel, tmp_path):
    expected_op = KERNELS[kernel][1]
    cases, chunk = 0, 0
    while cases < CASES_PER_KERNEL:
        seed = SEED_ORDER.index(kernel) * 1000 + chunk
        keras_model, representative = branch_model(kernel, seed)
        model = parse_model(to_int8_tflite(keras_model, representative, float_output=kernel == "DEQUANTIZE"),
                            f"{kernel}_{chunk}.tflite")
        ops = collections.Counter(op.op for op in model.operators)
        if expected_op == "QUANTIZE":  # nearly one per branch, besides its two concatenations
            assert ops["QUANTIZE"] > 0 and set(ops) == {"CONCATENATION", "QUANTIZE"}, ops
        elif expected_op == "DEQUANTIZE":  # see _dequantize; float32 outputs must be 4-byte aligned
            assert ops == {"RESHAPE": BRANCHES_PER_MODEL, "DEQUANTIZE": BRANCHES_PER_MODEL}, ops
            assert all(t.dtype == "float32" for t in model.output_tensors())
            assert all(arena_offsets(model)[0][i] % 4 == 0 for i in model.outputs)
        else:  # every branch is exactly one op of the kernel; the converter may add QUANTIZE
            assert ops[expected_op] == BRANCHES_PER_MODEL and set(ops) <= {expected_op, "QUANTIZE"}, ops
        folder = tmp_path / str(chunk)
        folder.mkdir()
        vectors = random_vectors(model, 8, seed)
        assert_bit_exact(model, vectors, folder)
        if kernel in DSP_KERNELS:  # the dsp variant too, its packed operations in plain C on the host
            assert_bit_exact(model, vectors, folder / "dsp", kernels="dsp")
        if kernel in MVE_KERNELS:  # the mve variant too, its Helium dot products in plain C on the host
            assert_bit_exact(model, vectors, folder / "mve", kernels="mve")
        if chunk == 0:  # the first BRANCHES_PER_MODEL cases also on an emulated Cortex-M7
            assert_bit_exact_on_qemu(model, vectors, folder)
            if kernel == "DEQUANTIZE":  # and its double arithmetic in software on a Cortex-M0+
                assert_bit_exact_on_qemu(model, vectors, folder, "rpi-pico")
            if kernel in DSP_KERNELS:  # and the dsp variant with the DSP instructions on a Cortex-M7, M4 and M33
                for board in ("mps2-an500", "nucleo-f446re", "nucleo-l552ze-q"):  # M7, M4, M33
                    assert_bit_exact_on_qemu(model, vectors, folder / f"dsp-{board}", board, kernels="dsp")
            if kernel in MVE_KERNELS:  # and the mve variant with the Helium instructions on a Cortex-M55
                assert_bit_exact_on_qemu(model, vectors, folder / "mve-mps3-an547", "mps3-an547", kernels="mve")
        cases += ops[expected_op]
        chunk += 1


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
