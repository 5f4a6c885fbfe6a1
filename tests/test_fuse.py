"""A convolution and the pooling that alone reads it, run band by band (tinykd/deploy/cbackend/fuse.py,
runtime/pooling_conv.c): byte-equal with TFLM in every kernel variant, natively and on QEMU, on random
pairs (tests/singleop.py's convolution cases, with a pooling window over their output), and chosen by
the planner where it makes the arena smaller."""

import pytest

from harness import differing_bytes, random_vectors, rows_of, run_c, run_on_qemu, run_tflm
from singleop import LARGE, SMALL, build_model
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import KERNEL_VARIANTS, load_board
from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.cbackend.fuse import conv_pools
from tinykd.deploy.cbackend.lower import arena_plans, generate_c_backend
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.tflite.reader import parse_model, read_model
from tinykd.verify.runners import make_runner
from tinykd.verify.toolchain import build_firmware

SEED = 2026
SMALL_CASES = 240
LARGE_CASES = 48
VECTORS = 6
QEMU_BOARDS = ["mps2-an500", "rpi-pico", "mps3-an547"]
"""The Cortex-M7 (dsp), M0+ (portable) and M55 (mve), each with the kernels its flags pick."""
REQUIRED = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "windows share rows",
            "windows skip rows", "pooling pads the top", "convolution pads the top", "dilated convolution",
            "several DSP channel blocks", "batch 2 (not fused)"}


def pairs_model(indices: range, limits):
    data, cases = build_model([("CONV_POOL", SEED, indices)], limits)
    return parse_model(data, f"conv_pool_{indices.start}.tflite"), cases


def what_pairs_contain(model) -> set[str]:
    found = set()
    for conv, pool in zip(model.operators[::2], model.operators[1::2]):
        middle = model.tensors[conv.outputs[0]]
        found |= {conv.op, pool.op}
        k, stride = pool.options["filterHeight"], pool.options["strideH"]
        found |= {"windows share rows"} if stride < k else {"windows skip rows"} if stride > k else set()
        pool_pad = cquant.same_padding(middle.shape[1], model.tensors[pool.outputs[0]].shape[1], k, stride, 1)
        found |= {"pooling pads the top"} if pool_pad > 0 else set()
        o = conv.options
        conv_pad = cquant.same_padding(model.tensors[conv.inputs[0]].shape[1], middle.shape[1],
                                       model.tensors[conv.inputs[1]].shape[1], o["strideH"], o["dilationHFactor"])
        found |= {"convolution pads the top"} if conv_pad > 0 else set()
        found |= {"dilated convolution"} if o["dilationHFactor"] > 1 else set()
        found |= {"several DSP channel blocks"} if conv.op == "CONV_2D" and middle.shape[3] > DSP_CHANNEL_BLOCK else set()
        found |= {"batch 2 (not fused)"} if middle.shape[0] > 1 else set()
    return found


def mismatches(model, cases, ours: bytes, golden: bytes, where: str) -> list[str]:
    return [f"{where}: {case}: {count} output bytes differ"
            for case, count in zip(cases, differing_bytes(model, ours, golden)) if count]


@pytest.mark.parametrize("indices, limits", [(range(SMALL_CASES), SMALL),
                                             (range(SMALL_CASES, SMALL_CASES + LARGE_CASES), LARGE)],
                         ids=["small", "large"])
def test_random_pairs_band_by_band_are_byte_equal_in_every_variant(indices, limits, tmp_path):
    model, cases = pairs_model(indices, limits)
    pairs = conv_pools(model)
    assert len(pairs) == sum(model.tensors[op.outputs[0]].shape[0] == 1 for op in model.operators[::2])
    assert generate_c_backend(model, fusion=True)["tinykd_model.c"].count("tk_conv_pool(") == len(pairs)
    vectors = random_vectors(model, VECTORS, seed=indices.start)
    golden = run_tflm(model, vectors)
    failures = []
    for variant in KERNEL_VARIANTS:
        ours = run_c(model, vectors, tmp_path / variant, variant, fusion=True)
        failures += mismatches(model, cases, ours, golden, variant)
    assert not failures, "\n".join(failures[:20])
    if limits is SMALL:
        assert REQUIRED <= what_pairs_contain(model), sorted(REQUIRED - what_pairs_contain(model))


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_random_pairs_band_by_band_are_byte_equal_on_qemu(board, tmp_path):
    model, cases = pairs_model(range(60), SMALL)
    vectors = random_vectors(model, VECTORS, seed=1)
    ours = run_on_qemu(model, vectors, tmp_path, board, fusion=True)
    failures = mismatches(model, cases, ours, run_tflm(model, vectors), board)
    assert not failures, "\n".join(failures[:20])


def test_the_planner_runs_pairs_band_by_band_where_the_arena_shrinks(zoo):
    """pooling_variants: a 3x3 convolution of its 30x30x2 input to 28x28x12, then a 3x3 average pooling
    with stride 2. Band by band the arena holds the input (1,800 B), three rows of the convolution's
    output (1,008 B) and the pooling's output (13x13x12, 2,028 B) instead of that whole output (9,408 B)."""
    model = read_model(zoo["pooling_variants"])
    (plan,) = arena_plans(model)
    assert len(plan.fused) == 2 and plan.size == 1800 + 3 * 28 * 12 + 2028
    assert max(p.size for p in arena_plans(model, fusion=False)) == 9536
    assert "tk_conv_pool(" in generate_c_backend(model)["tinykd_model.c"]
    # the default student's pair would not save RAM: it runs layer by layer
    student = read_model(zoo["tiny_student"])
    assert conv_pools(student) and not any(plan.fused for plan in arena_plans(student))
    assert "tk_conv_pool(" not in generate_c_backend(student)["tinykd_model.c"]


def test_band_by_band_computes_each_row_once_on_cortex_m7(zoo, tmp_path):
    """QEMU's exact instruction counts for pooling_variants on nucleo-f767zi, band by band and layer by
    layer: a few percent apart (its stride-2 pooling would cost half of the 3x3 convolution again if the
    rows two windows share were computed twice), both byte-equal with TFLM."""
    model = read_model(zoo["pooling_variants"])
    board = load_board("nucleo-f767zi")
    vectors = random_vectors(model, 2, seed=5)
    counts = {}
    for fusion in (True, False):
        c_dir = tmp_path / f"fusion_{fusion}" / "c"
        write_tree(c_dir, generate_c_backend(model, fusion))
        firmware = build_firmware(c_dir, board, c_dir.parent / "fw", target="qemu")
        outputs, counts[fusion] = make_runner("qemu", firmware, board).run(rows_of(vectors))
        assert outputs.tobytes() == run_tflm(model, vectors), f"fusion {fusion}"
    assert counts[True] <= 1.05 * counts[False], counts
