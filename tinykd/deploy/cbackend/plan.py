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
* A convolution and the pooling that alone reads it may run as one call, band by band (`fuse.py`): its
  output is then a band of rows alive through the pair, and its input and the pooling's output live
  through both ops.

Lifetimes are TFLM's (`tensor_buffers`): time 0 is before the first op, op k runs at time k + 1, graph
inputs are born at 0 and graph outputs live to the end (they are copied out after the last op).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from tinykd.deploy.boards import KERNEL_VARIANTS
from tinykd.deploy.cbackend.fuse import ConvPool
from tinykd.deploy.ops import SPECS
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


def overlap_distance(model: Model, op: Operator, position: int, kernels: str = "portable") -> int | None:
    """How far below input `position` of `op` its output may start with the `kernels` variant (its op
    description's rule, `tinykd.deploy.ops`), or None."""
    spec = SPECS.get(op.op)
    return spec.overlap(model, op, position, kernels) if spec else None


# ---- Blocks, overlaps, placement -----------------------------------------------------------------


def arena_blocks(model: Model, in_place: bool = True, kernels: str = "portable",
                 fused: list[ConvPool] = ()) -> tuple[list[Block], dict[tuple[int, int], int]]:
    """The model's planned tensors grouped into blocks (RESHAPE aliases), with TFLM's lifetimes and
    exact sizes, and the allowed (output block, input block) overlaps (none without `in_place`).
    The `fused` convolution-pooling pairs run as one call: the convolution's output is a band, and
    everything either op touches lives through both (none of them overlaps another)."""
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
    for pair in fused:
        conv_time, pool_time = pair.conv.index + 1, pair.pool.index + 1
        band = block_of[pair.conv.outputs[0]]
        blocks[band] = dataclasses.replace(blocks[band], size=pair.band_bytes)
        source, target = block_of[pair.conv.inputs[0]], block_of[pair.pool.outputs[0]]
        blocks[source] = dataclasses.replace(blocks[source], last=max(blocks[source].last, pool_time))
        blocks[target] = dataclasses.replace(blocks[target], first=min(blocks[target].first, conv_time))
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


def plan_arena(model: Model, in_place: bool = True, alignment: int = ALIGNMENT, kernels: str = "portable",
               fused: list[ConvPool] = ()) -> CPlan:
    """The C backend's arena plan for `model` with the `kernels` variant's overlaps (and the `fused`
    pairs): the smallest over several placement orders (sizes, births, deaths, lifetimes, and seeded
    random orders for small graphs). Deterministic."""
    return _smallest(*arena_blocks(model, in_place, kernels, fused), alignment)


def plan_variants(model: Model, in_place: bool = True,
                  fused: list[ConvPool] = ()) -> list[tuple[tuple[str, ...], CPlan]]:
    """(variants, plan) for every kernel variant, the variants that share a plan together, in
    KERNEL_VARIANTS order. Each variant's own plan is made once per distinct set of overlaps; a variant
    then takes the smallest of those plans that is valid under its own overlaps (the first on a tie), so
    variants share a plan wherever that costs no RAM."""
    allowed = {variant: arena_blocks(model, in_place, variant, fused) for variant in KERNEL_VARIANTS}
    plans: list[CPlan] = []
    for blocks, overlaps in allowed.values():
        if all(plan.overlaps != overlaps for plan in plans):
            plans.append(_smallest(blocks, overlaps, ALIGNMENT))
    groups: dict[int, list[str]] = {}
    for variant, (blocks, overlaps) in allowed.items():
        valid = [i for i, plan in enumerate(plans) if not CPlan(blocks, plan.offsets, overlaps).violations()]
        groups.setdefault(min(valid, key=lambda i: (plans[i].size, i)), []).append(variant)
    return [(tuple(variants), plans[i]) for i, variants in groups.items()]
