"""Arena sizes: the greedy planner, the replay against real TFLM (Cortex-M7 calibration figures and the
host interpreter), CMSIS-NN's scratch buffers, and the margin."""

import dataclasses
import json
from pathlib import Path

import pytest

from tinykd.deploy.boards import load_board
from tinykd.deploy.bundle import make_bundle
from tinykd.deploy.tflm.memory import (ABIS, Buffer, arena_estimates, arena_target, c_layout, estimate_arena,
                                       greedy_plan, measure_arena, tensor_buffers)
from tinykd.tflite.reader import read_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_MODELS = SHARED / "models"
CALIBRATION = Path(__file__).resolve().parents[1] / "bench" / "tflm_m7_reference.json"
"""Real TFLM built for a Cortex-M7 and run on QEMU: the smallest arenas, reference and CMSIS-NN kernels."""
MLPERF = ["kws_ref_model", "pretrainedResnet_quant"]


def test_buffers_alive_at_different_times_share_memory():
    plan = greedy_plan([Buffer("a", 64, 0, 1), Buffer("b", 64, 2, 3), Buffer("c", 32, 1, 2)])
    # a and b never live together, so they share offset 0; c overlaps both and goes above them.
    assert plan.offsets == [0, 0, 64] and plan.size == 96


def test_the_largest_buffer_is_placed_first_and_small_ones_fill_gaps():
    buffers = [Buffer("small", 16, 0, 0), Buffer("big", 128, 1, 2), Buffer("mid", 48, 0, 1)]
    plan = greedy_plan(buffers)
    assert plan.offsets[1] == 0  # big first, at 0
    assert plan.offsets[2] == 128  # mid overlaps big in time
    assert plan.offsets[0] == 0  # small lives before big: reuses its bytes
    assert plan.size == 176


def test_tensor_lifetimes_follow_operator_order(zoo):
    model = read_model(zoo["plain_conv"])
    buffers = tensor_buffers(model)
    assert all(b.size % 16 == 0 for b in buffers)
    graph_input = next(b for b in buffers if b.first == 0)
    assert graph_input.last == 1  # read by the first layer only
    graph_output = max(buffers, key=lambda b: b.last)
    assert graph_output.last == len(model.operators)
    assert len(buffers) == sum(1 for t in model.tensors if not t.is_constant)


def test_struct_sizes_follow_the_target_abi():
    # TfLiteTensor (TF_LITE_STATIC_MEMORY): 32 bytes with a Cortex-M's 1-byte enums, 64 on a 64-bit host.
    tensor = "(ep) ii p p p eeb"
    assert c_layout(tensor, ABIS[4]) == (32, 4) and c_layout(tensor, ABIS[8]) == (64, 8)
    # TfLiteFullyConnectedParams: five enums and bools, 5 bytes on a Cortex-M.
    assert c_layout("ee bb e", ABIS[4]) == (5, 1) and c_layout("ee bb e", ABIS[8]) == (16, 4)
    # A nested struct keeps its own padding: OpDataConv and an int, as CMSIS-NN's conv OpData.
    assert c_layout("(4i 5i pp 2i i) i", ABIS[4])[0] == 60 and c_layout("(4i 5i pp 2i i) i", ABIS[8])[0] == 80


def calibration() -> dict:
    return json.loads(CALIBRATION.read_text())["models"]


def check_against_cortex_m7(path: Path, figures: dict) -> None:
    """kTensorArenaSize and kTensorArenaSizeCmsisNn for a Cortex-M7 board are at least the real minimum
    and at most 5% above it; the replay of TFLM latest is the real minimum itself."""
    estimates = arena_estimates(read_model(path), load_board("nucleo-f767zi"))
    for kernels, key in (("reference", "m7_min_ref"), ("cmsis_nn", "m7_min_cmsis")):
        estimate, real = estimates[kernels], figures[key]
        assert estimate.versions["latest"] == real, (path.stem, kernels, estimate.versions, real)
        assert 1.00 <= arena_target(estimate) / real <= 1.05, (path.stem, kernels, arena_target(estimate), real)


def test_targets_are_within_5_percent_of_real_tflm_on_a_cortex_m7_for_every_zoo_model(zoo):
    figures = calibration()
    names = [name for name in figures if name.startswith("zoo_")]
    assert len(names) >= 8 and {name.removeprefix("zoo_") for name in names} <= set(zoo)
    for name in names:
        check_against_cortex_m7(zoo[name.removeprefix("zoo_")], figures[name])


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")
@pytest.mark.parametrize("name", MLPERF)
def test_targets_are_within_5_percent_of_real_tflm_on_a_cortex_m7_for_mlperf_tiny(name):
    check_against_cortex_m7(SHARED_MODELS / f"{name}.tflite", calibration()[name])


PYTHON_INTERPRETER_EXTRA = range(232, 400)
"""What the host's Python TFLM interpreter (PyPI tflite-micro, upstream 8f6596d) needs above a plain
64-bit build of upstream 2026 (which the 64-bit replay matches to the byte): 232 bytes more of allocator
objects (a RecordingMicroAllocator), the fields of a USE_TFLM_COMPRESSION build, and a newer commit's
(280 to 336 bytes on the zoo and MLPerf Tiny models)."""


def check_host(path):
    model = read_model(path)
    estimate = estimate_arena(model, pointer_bytes=8, versions=("latest",))
    measured = measure_arena(path, start=estimate.total_bytes)
    assert measured - estimate.total_bytes in PYTHON_INTERPRETER_EXTRA, (path.name, estimate.total_bytes, measured)
    return estimate, measured


def test_64_bit_replay_tracks_the_host_interpreter_on_every_zoo_model(zoo):
    assert len(zoo) >= 8
    for path in zoo.values():
        check_host(path)


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")
@pytest.mark.parametrize("name", MLPERF)
def test_estimate_on_mlperf_tiny_models(name):
    estimate, measured = check_host(SHARED_MODELS / f"{name}.tflite")
    assert estimate.planned_bytes > estimate.persistent_bytes  # activations dominate these models


def test_cmsis_nn_scratch_buffers_depend_on_the_core(zoo):
    model = read_model(zoo["pooling_variants"])  # 3x3 convolutions of 2 and 12 channels, average pooling

    def scratch(kernels="cmsis-nn", isa="dsp"):
        return {b.name.removeprefix("scratch of "): b.size for b in estimate_arena(model, 4, kernels, isa).plan.buffers
                if b.tensor is None}

    # im2col: two columns of int16 (3x3x2 = 18, rounded up to 20) or, on Helium, four rows of int8 in 16-lane
    # blocks; the average pooling's int32 row sum only on DSP cores.
    assert scratch() == {"layer 0 (CONV_2D)": 80, "layer 1 (AVERAGE_POOL_2D)": 48, "layer 2 (CONV_2D)": 432,
                         "layer 4 (AVERAGE_POOL_2D)": 48}
    assert scratch(isa="none") == {"layer 0 (CONV_2D)": 80, "layer 2 (CONV_2D)": 432}
    assert scratch(isa="mve") == {"layer 0 (CONV_2D)": 128, "layer 2 (CONV_2D)": 448}
    assert scratch("reference") == {}


def test_32_bit_boards_need_less_and_the_margin_covers_what_is_uncertain(zoo):
    model = read_model(zoo["residual_add"])
    host, device = estimate_arena(model, 8), estimate_arena(model, 4)
    assert device.planned_bytes == host.planned_bytes  # activations do not depend on the pointer size
    assert device.persistent_bytes < host.persistent_bytes
    target, margin = arena_target(device), 0.02 * device.persistent_bytes + device.uncertain_bytes
    assert device.uncertain_bytes == 16  # its FULLY_CONNECTED in PyPI's newer build of TFLM latest
    assert target % 16 == 0 and device.total_bytes + margin <= target <= device.total_bytes + margin + 16
    assert set(device.versions) == {"latest", "riot", "zephyr"} and device.total_bytes == max(device.versions.values())


def test_ops_tinykd_does_not_replay_are_guessed_and_the_guess_is_added_to_the_margin(zoo):
    model = read_model(zoo["concat_mul"])
    unknown = dataclasses.replace(model, operators=[dataclasses.replace(op, op="SQUARED_DIFFERENCE")
                                                    if op.op == "MUL" else op for op in model.operators])
    known, guessed = estimate_arena(model, 4), estimate_arena(unknown, 4)
    assert guessed.uncertain_bytes > known.uncertain_bytes
    assert guessed.total_bytes > known.total_bytes
    assert arena_target(guessed) >= guessed.total_bytes + guessed.uncertain_bytes


def test_breakdown_adds_up_to_the_estimate(zoo):
    for name in ("depthwise_separable", "mlp"):  # limited by the final layout; by a set-up peak
        estimate = estimate_arena(read_model(zoo[name]), 4)
        assert sum(estimate.breakdown.values()) == estimate.total_bytes
        assert estimate.breakdown["per-channel and kernel arrays"] > 0
    assert estimate.limit == "memory planning" and estimate.breakdown["set-up peak above the final layout"] > 0


def test_bundle_header_and_manifest_carry_both_arenas(zoo):
    board = load_board("nucleo-f767zi")
    bundle = make_bundle(read_model(zoo["plain_conv"]), board, size_c_backend=False, check_c_backend=False)
    arena = bundle.manifest["arena"]
    header = bundle.files["tinykd_arena.h"].decode()
    assert f"constexpr size_t kTensorArenaSize = {arena['target_bytes']};" in header
    assert f"constexpr size_t kTensorArenaSizeCmsisNn = {arena['cmsis_nn']['target_bytes']};" in header
    assert arena["cmsis_nn"]["target_bytes"] > arena["target_bytes"] == dict(bundle.fits["tflm"].ram)["tensor arena"]
    assert arena["cmsis_nn"]["isa"] == "dsp" and set(arena["tflm_versions"]) == {"latest", "riot", "zephyr"}


def test_a_measured_arena_is_kept_so_the_same_model_is_bisected_once(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYKD_CACHE", str(tmp_path))
    measured = measure_arena(zoo["mlp"])
    kept = list((tmp_path / "arena").iterdir())
    assert len(kept) == 1 and int(kept[0].read_text()) == measured
    kept[0].write_text(str(measured + 8))  # what a second call answers comes from the cache, not a bisection
    assert measure_arena(zoo["mlp"]) == measured + 8
    assert measure_arena(zoo["plain_conv"]) != measured + 8 and len(list((tmp_path / "arena").iterdir())) == 2
