"""Where a kernel's output may start in the C backend's arena, relative to an input it reads.

Each kernel reads its input and writes its output in a fixed loop order. Put the output at the input's
offset minus d: a write of output byte w then lands on input byte w - d, which is harmless when every
read still to come is of an input byte above it. So d must exceed (w - next read) for every write, where
"next read" is the lowest input byte any later read of the kernel touches. The op modules
(`tinykd.deploy.ops`) compute that maximum for their kernels' loops with the helpers below; None means
the output must not overlap that input (the kernel rereads or reorders too much to bother).
"""

from __future__ import annotations

import numpy as np

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.tflite.reader import Model, Operator


def window_starts(in_size: int, out_size: int, kernel: int, stride: int, dilation: int, pad: int) -> np.ndarray:
    """Per output row (or column): the first input row the kernel's window reads, -1 if none."""
    starts = np.full(out_size, -1, dtype=np.int64)
    for o in range(out_size):
        for k in range(kernel):
            i = o * stride - pad + k * dilation
            if 0 <= i < in_size:
                starts[o] = i
                break
    return starts


def spatial_distance(batches, in_h, in_w, in_c, out_h, out_w, out_c, windows, per_pixel: int | None) -> int:
    """d for the loops `for b, oy, ox: for each output channel: read a window, write one byte`.

    `windows` are the first rows and columns each output row and column reads. Within one output
    pixel, every write but the last is followed by more reads of the same window: from input channel
    0 for a convolution (each output channel reads all input channels), from the next input channel
    for pooling and depthwise (output channel oc reads input channel oc // multiplier only).
    `per_pixel` is the largest (write's channel - next read's channel) over those writes, None if a
    pixel has one write. After a pixel's last write, the next reads are of the later pixels' windows."""
    rows, cols = windows
    oy, ox = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    empty = (rows[oy] < 0) | (cols[ox] < 0)
    pixel = np.arange(batches * out_h * out_w, dtype=np.int64)
    b = pixel // (out_h * out_w)
    start = ((b * in_h + np.tile(rows[oy].ravel(), batches)) * in_w + np.tile(cols[ox].ravel(), batches)) * in_c
    empty = np.tile(empty.ravel(), batches)
    infinite = np.iinfo(np.int64).max // 4
    start = np.where(empty, infinite, start)
    # lowest byte read by any later pixel (channel 0 of its window's first pixel)
    later = np.minimum.accumulate(start[::-1])[::-1]
    later = np.append(later[1:], infinite)
    needs = [np.zeros(1, dtype=np.int64)]
    if per_pixel is not None:  # writes inside a pixel, before its window is read again
        inside = pixel * out_c + per_pixel - start + 1
        needs.append(np.where(empty, 0, inside))
    crossing = pixel * out_c + out_c - 1 - later + 1
    needs.append(np.where(later >= infinite, 0, crossing))
    return int(max(n.max() for n in needs))


def inside_pixel(in_c: int, multiplier: int) -> int | None:
    """Largest (write - next read) within one pixel of a depthwise/pooling loop: writes go to channel
    ic * multiplier + m, the next read is of channel ic (while m < multiplier - 1) or ic + 1."""
    best = None
    for ic in range(in_c):
        for m in range(multiplier):
            if ic == in_c - 1 and m == multiplier - 1:
                continue  # the pixel's last write: no read of this window follows
            following = ic if m < multiplier - 1 else ic + 1
            value = ic * multiplier + m - following
            best = value if best is None else max(best, value)
    return best


def sliding_windows(in_shape, out_shape, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int] = (1, 1)) -> list[np.ndarray]:
    """The first input row of each output row and the first input column of each output column of a
    window sliding over an NHWC input with TFLM's padding (see `window_starts`)."""
    return [window_starts(size, out_size, k, s, d, cquant.same_padding(size, out_size, k, s, d))
            for size, out_size, k, s, d in zip(in_shape[1:3], out_shape[1:3], kernel, stride, dilation)]


def elementwise_distance(model: Model, op: Operator, position: int, kernels: str) -> int | None:
    """Element-wise kernels: element i of the output is written after element i of the input is read,
    and later reads are of elements above i. With e-byte output elements, the last write's top byte
    e*i + e - 1 must stay below the next read i + 1. A broadcast input (of a binary op) is read again
    and again: no overlap."""
    inp = model.tensors[op.inputs[position]]
    out = model.tensors[op.outputs[0]]
    if inp.elements != out.elements or (len(op.inputs) > 1 and tuple(inp.shape) != tuple(out.shape)):
        return None
    element = out.nbytes // max(out.elements, 1)
    return (element - 1) * max(out.elements - 1, 0)
