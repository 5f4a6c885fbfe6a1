"""Arena sizes: the greedy planner, the estimate against the real TFLM interpreter, the board margin."""

from pathlib import Path

import pytest

from tinykd.boards import load_board
from tinykd.memory import Buffer, arena_target, estimate_arena, greedy_plan, measure_arena, tensor_buffers
from tinykd.tflite import read_model

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


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


def check_estimate(path):
    model = read_model(path)
    estimate = estimate_arena(model, pointer_bytes=8)
    measured = measure_arena(path, start=estimate.total_bytes)
    assert measured <= estimate.total_bytes <= 1.10 * measured, (path.name, estimate.total_bytes, measured)
    return estimate, measured


def test_estimate_is_never_below_and_at_most_10_percent_above_tflm_on_every_zoo_model(zoo):
    assert len(zoo) >= 8
    for path in zoo.values():
        check_estimate(path)


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")
@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def test_estimate_on_mlperf_tiny_models(name):
    estimate, measured = check_estimate(SHARED_MODELS / name)
    assert estimate.planned_bytes > estimate.persistent_bytes  # activations dominate these models


def test_32_bit_boards_get_a_smaller_estimate_plus_a_safety_margin(zoo):
    model = read_model(zoo["residual_add"])
    host, device = estimate_arena(model, 8), estimate_arena(model, 4)
    assert device.planned_bytes == host.planned_bytes  # activations do not depend on the pointer size
    assert device.persistent_bytes < host.persistent_bytes
    target = arena_target(device, load_board("nucleo-f767zi"))
    assert target % 16 == 0 and target >= device.total_bytes + max(256, device.total_bytes * 0.05)
    assert arena_target(host, load_board("native")) == host.total_bytes


def test_breakdown_adds_up(zoo):
    estimate = estimate_arena(read_model(zoo["depthwise_separable"]), 8)
    assert sum(estimate.breakdown.values()) == estimate.planned_bytes + estimate.persistent_bytes
    assert estimate.breakdown["per-channel quantization"] > 0
