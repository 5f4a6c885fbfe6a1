"""The C backend's own arena plan: smaller than TFLM's because the generated code knows its kernels.

TFLM's greedy planner (`tinykd.memory.greedy_plan`) gives every tensor its own bytes while it lives,
with sizes and offsets rounded to 16. The C backend calls kernels whose loop order is fixed (the
reference kernels in `tinykd/runtime/`), so it can do more, without changing a single output byte:

* A RESHAPE is an alias: its output is its input's bytes (the op generates no code).
* An output may overlap an input that dies at its op (its last reader) when the kernel never writes a
  byte it still has to read: element-wise kernels work in place, and a convolution or pooling window
  moves forward through its input faster than its output grows, so its output may start a few rows
  below its input (`overlap_distance` computes how far, from the kernel's loop order).
* Offsets and sizes are exact (offsets aligned to 4 bytes, enough for the float32 outputs of
  DEQUANTIZE and for word loads), and several placement orders are tried, keeping the smallest arena.
* The kernel variants (portable, dsp, mve; the compiler picks one per core) do not all allow the same
  overlaps, so each gets its own plan where that saves RAM (`plan_variants`).

Lifetimes are TFLM's (`tensor_buffers`): time 0 is before the first op, op k runs at time k + 1, graph
inputs are born at 0 and graph outputs live to the end (they are copied out after the last op).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from tinykd.deploy.cbackend import quantize as cquant
from tinykd.deploy.boards import KERNEL_VARIANTS
from tinykd.deploy.tflm.memory import tensor_buffers
from tinykd.tflite.reader import Model, Operator

ALIGNMENT = 4
"""Offset alignment of every tensor in the C backend's arena (the arena itself is 16-byte aligned)."""

RANDOM_ORDERS = 200
"""Extra seeded random placement orders tried on small graphs (see `plan_arena`)."""
RANDOM_ORDER_BUDGET = 400_000
"""... as long as orders x blocks^2 stays below this, so large graphs are planned quickly."""


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class Block:
    """Bytes of the arena shared by tensors that alias (a RESHAPE chain), alive from first to last."""

    tensors: tuple[int, ...]
    size: int
    first: int
    last: int

    def meets(self, other: "Block") -> bool:
        """Whether both are alive at some time (then they need disjoint bytes, or an allowed overlap)."""
        return self.first <= other.last and other.first <= self.last


@dataclass
class CPlan:
    """The arena: blocks, their offsets, and the allowed overlaps between an op's output and input."""

    blocks: list[Block]
    offsets: list[int]
    overlaps: dict[tuple[int, int], int]
    """(output block, input block) -> distance: the output may start at most at the input's offset
    minus the distance (or lie wholly above the input)."""
    order: str = ""
    """Which placement order gave this plan (for the curious)."""

    @property
    def size(self) -> int:
        return max((o + b.size for b, o in zip(self.blocks, self.offsets)), default=0)

    def tensor_offsets(self) -> dict[int, int]:
        return {t: o for b, o in zip(self.blocks, self.offsets) for t in b.tensors}

    def violations(self) -> list[str]:
        """Pairs of blocks alive at the same time whose bytes overlap without being allowed to (empty
        for a valid plan); also misaligned offsets."""
        problems = []
        for i, (a, oa) in enumerate(zip(self.blocks, self.offsets)):
            if oa % ALIGNMENT or oa < 0:
                problems.append(f"block {a.tensors} at offset {oa} is not aligned to {ALIGNMENT}")
            for j in range(i + 1, len(self.blocks)):
                b, ob = self.blocks[j], self.offsets[j]
                if not a.meets(b) or oa + a.size <= ob or ob + b.size <= oa:
                    continue
                if (i, j) in self.overlaps and oa <= ob - self.overlaps[i, j]:
                    continue
                if (j, i) in self.overlaps and ob <= oa - self.overlaps[j, i]:
                    continue
                problems.append(f"blocks {a.tensors} at {oa} and {b.tensors} at {ob} overlap")
        return problems


# ---- Where a kernel's output may start relative to an input it reads ---------------------------------
#
# Each kernel reads its input and writes its output in a fixed loop order. Put the output at the
# input's offset minus d: a write of output byte w then lands on input byte w - d, which is harmless
# when every read still to come is of an input byte above it. So d must exceed (w - next read) for
# every write, where "next read" is the lowest input byte any later read of the kernel touches.
# The functions below compute that maximum for the loops in tinykd/runtime/*.c; None means the
# output must not overlap that input (the kernel rereads or reorders too much to bother).


def _window_starts(in_size: int, out_size: int, kernel: int, stride: int, dilation: int, pad: int) -> np.ndarray:
    """Per output row (or column): the first input row the kernel's window reads, -1 if none."""
    starts = np.full(out_size, -1, dtype=np.int64)
    for o in range(out_size):
        for k in range(kernel):
            i = o * stride - pad + k * dilation
            if 0 <= i < in_size:
                starts[o] = i
                break
    return starts


def _spatial_distance(batches, in_h, in_w, in_c, out_h, out_w, out_c, windows, per_pixel: int | None) -> int:
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


def _inside_pixel(in_c: int, multiplier: int) -> int | None:
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


def _conv_distance(model: Model, op: Operator) -> int:
    inp, weights = model.op_inputs(op)[:2]
    out = model.tensors[op.outputs[0]]
    o = op.options
    batches, in_h, in_w, in_c = inp.shape
    _, out_h, out_w, out_c = out.shape
    k_h, k_w = weights.shape[1], weights.shape[2]
    windows = [_window_starts(size, out_size, k, o[f"stride{axis}"], o[f"dilation{axis}Factor"],
                              cquant.same_padding(size, out_size, k, o[f"stride{axis}"], o[f"dilation{axis}Factor"]))
               for size, out_size, k, axis in ((in_h, out_h, k_h, "H"), (in_w, out_w, k_w, "W"))]
    if op.op == "CONV_2D":
        # tk_conv_2d: every output channel reads the whole window again, from its channel 0
        per_pixel = out_c - 2 if out_c > 1 else None
        return _spatial_distance(batches, in_h, in_w, in_c, out_h, out_w, out_c, windows, per_pixel)
    per_pixel = _inside_pixel(in_c, out_c // in_c)
    return _spatial_distance(batches, in_h, in_w, in_c, out_h, out_w, out_c, windows, per_pixel)


def _pool_distance(model: Model, op: Operator) -> int:
    (inp,) = model.op_inputs(op)
    out = model.tensors[op.outputs[0]]
    o = op.options
    batches, in_h, in_w, channels = inp.shape
    _, out_h, out_w, _ = out.shape
    windows = [_window_starts(size, out_size, k, stride, 1, cquant.same_padding(size, out_size, k, stride, 1))
               for size, out_size, k, stride in ((in_h, out_h, o["filterHeight"], o["strideH"]),
                                                 (in_w, out_w, o["filterWidth"], o["strideW"]))]
    return _spatial_distance(batches, in_h, in_w, channels, out_h, out_w, channels, windows,
                             _inside_pixel(channels, 1))


def _elementwise_distance(model: Model, op: Operator, position: int) -> int | None:
    """Element i of the output is written after element i of the input is read, and later reads are
    of elements above i. With e-byte output elements, the last write's top byte e*i + e - 1 must stay
    below the next read i + 1."""
    inp = model.tensors[op.inputs[position]]
    out = model.tensors[op.outputs[0]]
    if inp.elements != out.elements or (op.op in ("ADD", "MUL") and tuple(inp.shape) != tuple(out.shape)):
        return None  # a broadcast input is read again and again
    element = out.nbytes // max(out.elements, 1)
    return (element - 1) * max(out.elements - 1, 0)


DSP_CONV_CHANNEL_BLOCK = 32
"""The runtime's TK_RQ_BLOCK (tinykd_kernels.h): conv_dsp.c sweeps the whole image once per block of
that many output channels. The generated tinykd_model.c refuses to build with another value."""


def overlap_distance(model: Model, op: Operator, position: int, kernels: str = "portable") -> int | None:
    """How far below input `position` of `op` its output may start (see above), or None."""
    if kernels == "dsp" and op.op == "CONV_2D" and model.tensors[op.outputs[0]].shape[-1] > DSP_CONV_CHANNEL_BLOCK:
        return None  # a second channel block reads the input again after the first wrote its outputs
    if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and position == 0:
        return _conv_distance(model, op)
    if op.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return _pool_distance(model, op)
    if op.op in ("ADD", "MUL", "LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE"):
        return _elementwise_distance(model, op, position)
    if op.op == "SOFTMAX":
        # tk_softmax reads a whole row twice, then writes out[c] right after reading in[c]
        return 0
    return None


# ---- Blocks, overlaps, placement -----------------------------------------------------------------


def arena_blocks(model: Model, in_place: bool = True,
                 kernels: str = "portable") -> tuple[list[Block], dict[tuple[int, int], int]]:
    """The model's planned tensors grouped into blocks (RESHAPE aliases), with TFLM's lifetimes and
    exact sizes, and the allowed (output block, input block) overlaps (none without `in_place`)."""
    buffers = {b.tensor: b for b in tensor_buffers(model)}
    group = {t: t for t in buffers}

    def root(t: int) -> int:
        while group[t] != t:
            t = group[t]
        return t

    for op in model.operators:
        if op.op == "RESHAPE" and op.inputs[0] in buffers and op.outputs[0] in buffers:
            source, target = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
            if source.nbytes == target.nbytes:
                group[root(op.outputs[0])] = root(op.inputs[0])
    members: dict[int, list[int]] = {}
    for t in buffers:
        members.setdefault(root(t), []).append(t)
    blocks, block_of = [], {}
    for tensors in sorted(members.values()):
        for t in tensors:
            block_of[t] = len(blocks)
        blocks.append(Block(tuple(tensors), max(model.tensors[t].nbytes for t in tensors),
                            min(buffers[t].first for t in tensors), max(buffers[t].last for t in tensors)))
    overlaps: dict[tuple[int, int], int] = {}
    if not in_place:
        return blocks, overlaps
    outputs = set(model.outputs)
    for time, op in enumerate(model.operators, start=1):
        if op.op == "RESHAPE" or len(op.outputs) != 1 or op.outputs[0] not in block_of:
            continue
        out = block_of[op.outputs[0]]
        if blocks[out].first != time:
            continue
        distances: dict[int, list[int | None]] = {}
        for position, index in enumerate(op.inputs):
            if index in block_of and block_of[index] != out:
                distances.setdefault(block_of[index], []).append(overlap_distance(model, op, position, kernels))
        for source, values in distances.items():
            if blocks[source].last != time or outputs & set(blocks[source].tensors):
                continue  # read later, or copied out at the end
            if None not in values:  # (an input read at two positions must allow it at both)
                overlaps[out, source] = max(values)
    return blocks, overlaps


def place(blocks: list[Block], overlaps: dict[tuple[int, int], int], order: list[int],
          alignment: int = ALIGNMENT) -> list[int]:
    """Place blocks in `order`, each at the lowest aligned offset that keeps it off every placed
    block alive at the same time, except where an allowed overlap lets it lie lower."""
    offsets: list[int | None] = [None] * len(blocks)
    placed: list[int] = []
    for i in order:
        size = blocks[i].size
        forbidden = []  # open intervals (low, high) of offsets i cannot take
        for j in placed:
            if not blocks[i].meets(blocks[j]):
                continue
            at, other = offsets[j], blocks[j].size
            if (i, j) in overlaps:  # i is the output: at most at j's offset - distance
                forbidden.append((max(at - size, at - overlaps[i, j]), at + other))
            elif (j, i) in overlaps:  # i is the input: at least at j's offset + distance
                forbidden.append((at - size, min(at + other, at + overlaps[j, i])))
            else:
                forbidden.append((at - size, at + other))
        # Sweep by low end: a candidate inside an interval moves to its (aligned) high end, which is
        # above every interval seen before, since those do not contain the lower candidate.
        candidate = 0
        for low, high in sorted(forbidden):
            if low >= candidate:
                break
            if candidate < high:
                candidate = _align(high, alignment)
        offsets[i] = candidate
        placed.append(i)
    return offsets


def _orders(blocks: list[Block]) -> list[tuple[str, list[int]]]:
    n = len(blocks)
    indices = range(n)
    length = [b.last - b.first for b in blocks]
    orders = [
        ("size", sorted(indices, key=lambda i: (-blocks[i].size, i))),
        ("birth", sorted(indices, key=lambda i: (blocks[i].first, -blocks[i].size, i))),
        ("death", sorted(indices, key=lambda i: (-blocks[i].last, -blocks[i].size, i))),
        ("lifetime", sorted(indices, key=lambda i: (-length[i], -blocks[i].size, i))),
        ("area", sorted(indices, key=lambda i: (-blocks[i].size * (length[i] + 1), i))),
        ("birth, reversed", sorted(indices, key=lambda i: (-blocks[i].first, -blocks[i].size, i))),
    ]
    rng = random.Random(0)
    for k in range(min(RANDOM_ORDERS, RANDOM_ORDER_BUDGET // max(n * n, 1))):
        order = list(indices)
        rng.shuffle(order)
        orders.append((f"random {k}", order))
    return orders


def _smallest(blocks: list[Block], overlaps: dict[tuple[int, int], int], alignment: int) -> CPlan:
    best = None
    for name, order in _orders(blocks):
        plan = CPlan(blocks, place(blocks, overlaps, order, alignment), overlaps, name)
        if best is None or plan.size < best.size:
            best = plan
    return best if best is not None else CPlan(blocks, [], overlaps, "empty")


def plan_arena(model: Model, in_place: bool = True, alignment: int = ALIGNMENT, kernels: str = "portable") -> CPlan:
    """The C backend's arena plan for `model` with the `kernels` variant's overlaps: the smallest over
    several placement orders (sizes, births, deaths, lifetimes, and seeded random orders for small
    graphs). Deterministic."""
    return _smallest(*arena_blocks(model, in_place, kernels), alignment)


def plan_variants(model: Model, in_place: bool = True) -> list[tuple[tuple[str, ...], CPlan]]:
    """(variants, plan) for every kernel variant, the variants that share a plan together, in
    KERNEL_VARIANTS order. Each variant's own plan is made once per distinct set of overlaps; a variant
    then takes the smallest of those plans that is valid under its own overlaps (the first on a tie), so
    variants share a plan wherever that costs no RAM."""
    allowed = {variant: arena_blocks(model, in_place, variant) for variant in KERNEL_VARIANTS}
    plans: list[CPlan] = []
    for blocks, overlaps in allowed.values():
        if all(plan.overlaps != overlaps for plan in plans):
            plans.append(_smallest(blocks, overlaps, ALIGNMENT))
    groups: dict[int, list[str]] = {}
    for variant, (blocks, overlaps) in allowed.items():
        valid = [i for i, plan in enumerate(plans) if not CPlan(blocks, plan.offsets, overlaps).violations()]
        groups.setdefault(min(valid, key=lambda i: (plans[i].size, i)), []).append(variant)
    return [(tuple(variants), plans[i]) for i, variants in groups.items()]
