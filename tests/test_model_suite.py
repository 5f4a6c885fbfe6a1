"""The C backend on real-scale models with pruned channels, against TFLM: equal output bytes with every
kernel variant on the host (forced with -DTK_KERNELS), and on QEMU with each variant as a core's own flags
pick it: dsp on Cortex-M7, portable on Cortex-M0+ (QEMU's M3 machine), Helium on Cortex-M55.

The models are those of tests/model_suite.py, plus MLPerf Tiny's own INT8 keyword spotting and image
classification models when ../shared/models holds them. A mismatch is reported with the first vector
and the first layer that differ.
"""

from pathlib import Path

import numpy as np
import pytest

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.boards import KERNEL_VARIANTS, build_variant, load_board
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.tflite.reader import read_model
from tinykd.verify.compare import first_divergent_layer

from harness import assert_bit_exact_on_qemu, random_vectors, rows_of, run_c, run_tflm
from model_suite import BUILDERS, dead_channels

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MLPERF_MODELS = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]
NATIVE_VECTORS, QEMU_VECTORS = 8, 3
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def difference(model, vectors, c_dir, kernels, ours: bytes, golden: bytes) -> str:
    """How the C backend's outputs differ from TFLM's: the count, the first vector and its first layer."""
    ours, golden = (np.frombuffer(b, np.int8).reshape(len(vectors), -1) for b in (ours, golden))
    vector = int(np.argmax((ours != golden).any(axis=1)))
    text = (f"{model.path}: {kernels} kernels: {np.count_nonzero(ours != golden)} of {ours.size} output bytes "
            f"differ from TFLM, first in vector {vector}")
    layer = first_divergent_layer(model, c_dir, rows_of(vectors)[vector], kernels=kernels)
    if layer:
        text += (f", first at layer {layer['layer']} ({layer['op']}), output byte {layer['output_index']}: "
                 f"{layer['got']} instead of {layer['expected']}")
    return text


def assert_every_variant_bit_exact(model, folder, seed):
    vectors = random_vectors(model, NATIVE_VECTORS, seed)
    golden = run_tflm(model, vectors)
    differences = []
    for kernels in KERNEL_VARIANTS:
        ours = run_c(model, vectors, folder / kernels, kernels)
        if ours != golden:
            differences.append(difference(model, vectors, folder / kernels, kernels, ours, golden))
    assert not differences, "\n".join(differences)


QEMU_CORES = {"mps2-an500": "dsp", "rpi-pico": "portable", "mps3-an547": "mve"}
"""A board per kernel variant, each compiling its variant by its own flags: Cortex-M7, Cortex-M0+ (on
QEMU's M3 machine), Cortex-M55."""


def assert_bit_exact_on_qemu_core(model, folder, seed, board):
    assert build_variant(load_board(board)) == QEMU_CORES[board]
    vectors = random_vectors(model, QEMU_VECTORS, seed)
    assert_bit_exact_on_qemu(model, vectors, folder, board)


@pytest.mark.parametrize("name", BUILDERS)
def test_every_weighted_layer_has_dead_and_live_channels(suite_models, name):
    """Each conv, depthwise and dense layer has a dead channel (an all-zero filter) and live ones whose
    scales vary; across the suite dead channels come with scale 0 (multiplier 0) and with the
    converter's tiny nonzero scale."""
    model = read_model(suite_models[name])
    layers = [op for op in model.operators if op.op in WEIGHTED_OPS]
    assert layers
    for op in layers:
        scales = np.array(model.op_inputs(op)[1].scale)
        dead = dead_channels(model, op)
        live = np.setdiff1d(np.arange(len(scales)), dead)
        assert len(dead) and len(live), f"{name}: layer {op.index} ({op.op}): {len(dead)} dead channels"
        if len(live) > 2:
            assert scales[live].max() > 1.5 * scales[live].min(), f"{name}: layer {op.index}: equal scales"


def test_suite_has_both_kinds_of_dead_channel(suite_models):
    scales = []
    for path in suite_models.values():
        model = read_model(path)
        for op in model.operators:
            if op.op in WEIGHTED_OPS:
                scales.extend(np.array(model.op_inputs(op)[1].scale)[dead_channels(model, op)])
    assert 0.0 in scales and max(scales) > 0


def test_mobilenet_v1_has_a_dsp_channel_block_mixing_dead_and_live_channels(suite_models):
    """A block of the DSP conv kernel that holds a channel with multiplier 0 (which sends the block to the
    slow path) and live channels that alone would take the fast path: the situation in which the slow
    path once read the fast path's shift."""
    model = read_model(suite_models["mobilenet_v1"])
    mixed = []
    for op in model.operators:
        if op.op != "CONV_2D":
            continue
        inputs = model.op_inputs(op)
        output = model.tensors[op.outputs[0]]
        channels = output.shape[-1]
        multipliers, shifts = cquant.channel_multipliers(inputs[0].scale[0], inputs[1].scale, output.scale[0],
                                                         channels)
        for start in range(0, channels - DSP_CHANNEL_BLOCK + 1, DSP_CHANNEL_BLOCK):
            block = range(start, start + DSP_CHANNEL_BLOCK)
            if any(multipliers[c] == 0 for c in block) and any(multipliers[c] > 0 and -22 <= shifts[c] <= -1
                                                                for c in block):
                mixed.append((op.index, start))
    assert mixed


@pytest.mark.parametrize("name", BUILDERS)
def test_suite_model_is_bit_exact_with_every_kernel_variant(suite_models, tmp_path, name):
    model = read_model(suite_models[name])
    assert_every_variant_bit_exact(model, tmp_path, seed=list(BUILDERS).index(name))


@pytest.mark.parametrize("board", QEMU_CORES)
@pytest.mark.parametrize("name", BUILDERS)
def test_suite_model_is_bit_exact_on_qemu_with_each_variant(suite_models, tmp_path, name, board):
    model = read_model(suite_models[name])
    assert_bit_exact_on_qemu_core(model, tmp_path, list(BUILDERS).index(name), board)


mlperf = pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")


@mlperf
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_mlperf_tiny_model_is_bit_exact_with_every_kernel_variant(tmp_path, name):
    assert_every_variant_bit_exact(read_model(SHARED_MODELS / name), tmp_path, seed=0)


@mlperf
@pytest.mark.parametrize("board", QEMU_CORES)
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_mlperf_tiny_model_is_bit_exact_on_qemu_with_each_variant(tmp_path, name, board):
    assert_bit_exact_on_qemu_core(read_model(SHARED_MODELS / name), tmp_path, 0, board)
