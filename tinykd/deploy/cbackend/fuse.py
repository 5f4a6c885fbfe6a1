"""A convolution whose output only a pooling reads may run band by band with it (runtime/pooling_conv.c).

For each row of the pooling's output, the convolution computes the rows of its output that the pooling
window reads and the band does not hold yet; rows shared with the previous window move to the band's
top. The arena then holds a band of at most the pooling window's height in rows instead of the
convolution's whole output, while the convolution's input and the pooling's output both live through
the pair. Every byte is what the two kernels compute apart, so the outputs stay TFLM's. Whether that
saves RAM depends on the graph: the C backend plans both ways and keeps the smaller arena
(`tinykd.deploy.cbackend.lower.arena_plans`).
"""

from __future__ import annotations

from typing import NamedTuple

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.tflite.reader import Model, Operator

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")
POOLINGS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")
RUNTIME_FILE = "pooling_conv.c"


class ConvPool(NamedTuple):
    """A convolution and the pooling right after it that alone reads its output."""

    conv: Operator
    pool: Operator
    band_bytes: int
    """The convolution's output rows one pooling window reads, at most."""


def band_rows(model: Model, pool: Operator) -> int:
    """The most rows of its input one output row of the pooling reads (its window inside the input)."""
    _, in_h, _, _ = model.tensors[pool.inputs[0]].shape
    out_h = model.tensors[pool.outputs[0]].shape[1]
    k_h, stride = pool.options["filterHeight"], pool.options["strideH"]
    pad = cquant.same_padding(in_h, out_h, k_h, stride, 1)
    return max(min(y0 + k_h, in_h) - max(y0, 0) for y0 in (oy * stride - pad for oy in range(out_h)))


def conv_pools(model: Model) -> list[ConvPool]:
    """The model's convolution-pooling pairs that can run band by band: adjacent in execution order,
    the convolution's output read by the pooling only and not a graph output, batch 1."""
    readers: dict[int, int] = {}
    for op in model.operators:
        for index in set(op.inputs):
            readers[index] = readers.get(index, 0) + 1
    pairs = []
    for conv, pool in zip(model.operators, model.operators[1:]):
        middle = conv.outputs[0]
        if (conv.op in CONVOLUTIONS and pool.op in POOLINGS and pool.inputs[0] == middle
                and readers.get(middle) == 1 and middle not in model.outputs
                and model.tensors[middle].shape[0] == 1):
            _, _, out_w, channels = model.tensors[middle].shape
            pairs.append(ConvPool(conv, pool, band_rows(model, pool) * out_w * channels))
    return pairs


def fused_call(pair: ConvPool, conv_kernel: str, pool_kernel: str, pointer) -> tuple[str, list[str]]:
    """The call that runs both layers, with their kernels (`pointer` gives a tensor's place in the arena;
    the convolution's output tensor is the band)."""
    conv, pool = pair.conv, pair.pool
    return "tk_conv_pool", [f"&layer{conv.index}", conv_kernel, f"&layer{pool.index}", pool_kernel,
                            pointer(conv.inputs[0]), pointer(conv.outputs[0]), pointer(pool.outputs[0])]
