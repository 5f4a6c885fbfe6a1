"""Tensor-arena sizes: TFLM's memory plan estimated for a board, and measured on the host.

TFLM splits its arena in two. The head holds the non-persistent tensors (activations and kernel scratch
buffers), placed by a greedy-by-size planner that lets tensors with disjoint lifetimes share bytes.
The tail holds what lives as long as the interpreter: its per-tensor and per-op structures (whose size
depends on the pointer size), quantization data, and what each kernel keeps from Prepare (per-channel
multipliers, OpData). `estimate_arena` models both; `measure_arena` asks the real interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

from .errors import TinykdError
from .tflite import Model

ALIGNMENT = 16
"""TFLM aligns every planned buffer (offset and size) to 16 bytes."""


def align(size: int, alignment: int = ALIGNMENT) -> int:
    return (size + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Buffer:
    """One non-persistent allocation: a tensor or a kernel's scratch buffer, alive from first to last."""

    name: str
    size: int
    first: int
    last: int
    tensor: int | None = None
    """The model's tensor index, or None for a kernel's scratch buffer."""


@dataclass
class Plan:
    """Offsets of the planned buffers in the arena's head, and the head's size."""

    buffers: list[Buffer]
    offsets: list[int]

    @property
    def size(self) -> int:
        return max((o + b.size for b, o in zip(self.buffers, self.offsets)), default=0)


def tensor_buffers(model: Model) -> list[Buffer]:
    """The model's non-constant tensors with TFLM's lifetimes, in tensor order.

    Time 0 is before the first operator, operator i runs at time i + 1; graph inputs are born at 0 and
    graph outputs live until the last operator.
    """
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def touch(index: int, time: int, created: bool) -> None:
        if created:
            first.setdefault(index, time)
        last[index] = time

    for index in model.inputs:
        touch(index, 0, True)
    for time, op in enumerate(model.operators, start=1):
        for index in op.outputs:
            first.setdefault(index, time)
        for index in list(op.inputs) + list(op.outputs):
            if index >= 0:
                last[index] = time
    end = len(model.operators)
    for index in model.outputs:
        touch(index, end, True)
    buffers = []
    for tensor in model.tensors:
        if tensor.is_constant or tensor.is_variable or tensor.nbytes == 0 or tensor.index not in first:
            continue
        buffers.append(Buffer(tensor.name or f"tensor {tensor.index}", align(tensor.nbytes),
                              first[tensor.index], last.get(tensor.index, first[tensor.index]), tensor.index))
    return buffers


def greedy_plan(buffers: list[Buffer]) -> Plan:
    """Place buffers the way TFLM's GreedyMemoryPlanner does: largest first (ties: the later-added
    buffer first), each at the lowest offset where it overlaps no placed buffer alive at the same time."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))
    offsets = [0] * len(buffers)
    placed: list[int] = []  # buffer indices sorted by offset
    for i in order:
        wanted = buffers[i]
        offset = 0
        for j in placed:
            other = buffers[j]
            if other.first > wanted.last or wanted.first > other.last:
                continue
            if offsets[j] - offset >= wanted.size:
                break
            offset = max(offset, offsets[j] + other.size)
        offsets[i] = offset
        position = len(placed)
        while position > 0 and offsets[placed[position - 1]] > offset:
            position -= 1
        placed.insert(position, i)
    return Plan(buffers, offsets)


# Sizes in TFLM's arena, from its sources (tensorflow/lite/micro), for 64-bit hosts and 32-bit Cortex-M:
# (bytes, alignment). Where a newer TFLM grew a struct (tensor compression), the larger size is used.
_STRUCTS = {
    8: {"allocators": [(104, 8), (72, 8), (272, 8)], "data_allocator": (16, 8), "subgraph": (24, 8),
        "eval_tensor": (24, 8), "node": (64, 8), "tensor": (64, 8), "quantization": (24, 8),
        "scratch_request": 16, "scratch_handle": (8, 8), "allocation_info": 32, "pointer": 8},
    4: {"allocators": [(52, 4), (44, 4), (124, 4)], "data_allocator": (8, 4), "subgraph": (8, 4),
        "eval_tensor": (12, 4), "node": (32, 4), "tensor": (40, 4), "quantization": (12, 4),
        "scratch_request": 12, "scratch_handle": (4, 4), "allocation_info": 24, "pointer": 4},
}
_SCRATCH_REQUESTS_PER_OP = 12
_PLANNER_BYTES_PER_BUFFER = 40

# Per op of the reference kernels: builtin params (bytes, alignment), OpData bytes (64-bit, 32-bit),
# and how often Prepare fetches each input and the output as a temporary TfLiteTensor.
_BUILTIN_PARAMS = {"CONV_2D": (28, 4), "DEPTHWISE_CONV_2D": (28, 4), "AVERAGE_POOL_2D": (40, 4),
                   "MAX_POOL_2D": (40, 4), "RESHAPE": (36, 4), "FULLY_CONNECTED": (32, 8), "SOFTMAX": (4, 4),
                   "ADD": (8, 4), "MUL": (4, 4), "CONCATENATION": (8, 4), "MEAN": (1, 1), "PAD": (0, 1),
                   "LOGISTIC": (0, 1), "HARD_SWISH": (0, 1), "QUANTIZE": (0, 1), "DEQUANTIZE": (0, 1)}
_OP_DATA = {"CONV_2D": (80, 56), "DEPTHWISE_CONV_2D": (80, 56), "FULLY_CONNECTED": (72, 48),
            "MAX_POOL_2D": (32, 32), "AVERAGE_POOL_2D": (32, 32), "MEAN": (44, 44), "RESHAPE": (0, 0),
            "SOFTMAX": (80, 56), "ADD": (60, 60), "MUL": (36, 36), "CONCATENATION": (80, 24), "PAD": (56, 56),
            "LOGISTIC": (16, 16), "HARD_SWISH": (20, 20), "QUANTIZE": (32, 32), "DEQUANTIZE": (32, 32)}
_FETCHES = {"CONV_2D": ((2, 2, 1), 2), "DEPTHWISE_CONV_2D": ((2, 2, 1), 2), "MEAN": ((2, 2), 2),
            "CONCATENATION": (None, 2)}
# Ops outside these tables get conservative guesses: large params and OpData, every tensor fetched twice.
_UNKNOWN_PARAMS, _UNKNOWN_OP_DATA, _UNKNOWN_FETCHES = (64, 8), (128, 128), 2


@dataclass
class ArenaEstimate:
    """TFLM's arena for one model and pointer size: the planned head, the persistent tail, and the
    peak during set-up when that is larger than both (models with tiny activations)."""

    planned_bytes: int
    persistent_bytes: int
    setup_peak_bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)
    plan: Plan | None = None

    @property
    def total_bytes(self) -> int:
        return align(max(self.planned_bytes + self.persistent_bytes, self.setup_peak_bytes))

    def describe(self, target: int) -> list[str]:
        """Lines for the generated header: the breakdown and the target with its margin."""
        width = max(len(k) for k in self.breakdown)
        lines = [f"{key:<{width}}  {value:>9,} bytes" for key, value in self.breakdown.items()]
        lines.append(f"{'estimated arena':<{width}}  {self.total_bytes:>9,} bytes")
        if target != self.total_bytes:
            lines.append(f"{'safety margin':<{width}}  {target - self.total_bytes:>9,} bytes")
        lines.append(f"{'kTensorArenaSize':<{width}}  {target:>9,} bytes")
        return lines


class _Tail:
    """TFLM's persistent allocator: allocations grow down from the arena's end, each aligned."""

    def __init__(self):
        self.position = 0
        self.parts: dict[str, int] = {}

    def allocate(self, part: str, size: int, alignment: int = ALIGNMENT) -> None:
        if size <= 0:
            return
        before = self.position
        self.position = (self.position - size) // alignment * alignment
        self.parts[part] = self.parts.get(part, 0) + before - self.position

    @property
    def used(self) -> int:
        return -self.position


def _quantization_bytes(tensor, structs) -> list[tuple[int, int]]:
    """What a TfLiteTensor's quantization costs when TFLM materialises it: the affine struct and an
    int32 zero-point array (the scales are read from the flatbuffer in place)."""
    if not tensor.scale:
        return []
    return [structs["quantization"], (4 + 4 * max(len(tensor.zero_point), len(tensor.scale)), 4)]


def _tensor_allocations(tensor, structs) -> list[tuple[int, int]]:
    return [structs["tensor"]] + _quantization_bytes(tensor, structs)


def _scratch_buffers(model: Model, op) -> list[int]:
    """Bytes of the scratch buffers a reference kernel requests for `op`."""
    if op.op == "MEAN" and model.tensors[op.outputs[0]].dtype in ("int8", "int16"):
        inputs = model.op_inputs(op)
        axes = inputs[1].elements if len(inputs) > 1 and inputs[1] is not None else 1
        return [4 * model.tensors[op.outputs[0]].elements, 4 * len(inputs[0].shape), 4 * axes]
    return []


def _per_channel_arrays(model: Model, op) -> int:
    """Channels of the per-channel multiplier and shift arrays a kernel keeps (two int32 arrays)."""
    inputs = model.op_inputs(op)
    if op.op == "CONV_2D":
        return inputs[1].shape[0]
    if op.op == "DEPTHWISE_CONV_2D":
        return inputs[1].shape[3]
    if op.op == "FULLY_CONNECTED" and len(inputs[1].scale) > 1:
        return len(inputs[1].scale)
    return 0


def _temp_bytes(allocations: list[tuple[int, int]], start: int) -> int:
    """End of a run of temporary allocations (each aligned up) starting at `start`."""
    position = start
    for size, alignment in allocations:
        position = align(position, alignment) + size
    return position


def estimate_arena(model: Model, pointer_bytes: int) -> ArenaEstimate:
    """Estimate TFLM's arena for `model` on a target with `pointer_bytes`-byte pointers, following the
    order in which the interpreter allocates (reference kernels; see the module docstring)."""
    structs = _STRUCTS[pointer_bytes]
    column = 0 if pointer_bytes == 8 else 1
    tail = _Tail()
    for size, alignment in structs["allocators"]:
        tail.allocate("allocator objects", size, alignment)
    tail.allocate("allocator objects", *structs["data_allocator"])
    tail.allocate("allocator objects", structs["subgraph"][0] * model.subgraph_count, structs["subgraph"][1])
    tail.allocate("tensor structs (TfLiteEvalTensor)", structs["eval_tensor"][0] * len(model.tensors),
                  structs["eval_tensor"][1])
    tail.allocate("op structs (node and registration)", structs["node"][0] * len(model.operators),
                  structs["node"][1])
    for op in model.operators:
        tail.allocate("op parameters", *_BUILTIN_PARAMS.get(op.op, _UNKNOWN_PARAMS))
    for op in model.operators:
        tail.allocate("kernel data (OpData)", _OP_DATA.get(op.op, _UNKNOWN_OP_DATA)[column])

    request_bytes = structs["scratch_request"]
    scratch: list[Buffer] = []
    setup_peak = 0
    for time, op in enumerate(model.operators, start=1):
        channels = _per_channel_arrays(model, op)
        for _ in range(2 if channels else 0):
            tail.allocate("per-channel quantization", 4 * channels)
        if op.op == "SOFTMAX" and model.tensors[op.inputs[0]].dtype == "int16":
            for _ in range(2):
                tail.allocate("kernel data (OpData)", 1026 * 2)
        head = request_bytes * (len(scratch) + _SCRATCH_REQUESTS_PER_OP)
        setup_peak = max(setup_peak, _temp_bytes(_fetched(model, op, structs), head) + tail.used)
        scratch += [Buffer(f"scratch of layer {op.index} ({op.op})", align(size), time, time)
                    for size in _scratch_buffers(model, op)]

    tensors = tensor_buffers(model)
    plan = greedy_plan(tensors + scratch)
    if scratch:
        tail.allocate("allocator objects", structs["scratch_handle"][0] * len(scratch), structs["scratch_handle"][1])
    for tensor in model.tensors:
        if tensor.is_variable:
            tail.allocate("variable tensors", tensor.nbytes)
    planning = align(request_bytes * (len(scratch) + _SCRATCH_REQUESTS_PER_OP) + structs["pointer"]
                     * model.subgraph_count + structs["allocation_info"] * (len(model.tensors) + len(scratch)))
    setup_peak = max(setup_peak, planning + _PLANNER_BYTES_PER_BUFFER * len(plan.buffers) + align(tail.used))
    for indices in (model.inputs, model.outputs):
        tail.allocate("input and output tensors", structs["pointer"] * len(indices))
        for index in indices:
            for size, alignment in _tensor_allocations(model.tensors[index], structs):
                tail.allocate("input and output tensors", size, alignment)

    breakdown = {"planned tensors and scratch (head)": plan.size, **tail.parts}
    return ArenaEstimate(plan.size, tail.used, setup_peak, breakdown, plan)


def _fetched(model: Model, op, structs) -> list[tuple[int, int]]:
    """The temporary TfLiteTensors (with their quantization) a kernel's Prepare creates."""
    inputs, output_times = _FETCHES.get(op.op, (None, 1 if op.op in _OP_DATA else _UNKNOWN_FETCHES))
    default = 1 if op.op in _OP_DATA else _UNKNOWN_FETCHES
    allocations = []
    for position, tensor in enumerate(model.op_inputs(op)):
        times = inputs[position] if inputs and position < len(inputs) else default
        if tensor is not None:
            allocations += _tensor_allocations(tensor, structs) * times
    for index in op.outputs:
        allocations += _tensor_allocations(model.tensors[index], structs) * output_times
    return allocations


SAFETY_MARGIN = 0.05
"""Added to the estimate for boards whose arena cannot be measured here (32-bit targets): 5%, at least
256 bytes. On the 64-bit host the estimate is checked against the real interpreter instead."""


def arena_target(estimate: ArenaEstimate, board) -> int:
    """kTensorArenaSize for the board: the estimate, plus the safety margin on 32-bit targets."""
    if board.pointer_bytes == 8:
        return estimate.total_bytes
    return align(estimate.total_bytes + max(256, int(estimate.total_bytes * SAFETY_MARGIN)))


def measure_arena(path, start: int = 0, timeout: float = 600) -> int:
    """The smallest arena_size the host TFLM interpreter accepts for the model at `path` (64-bit host).

    Bisects in a separate worker that forks one child per trial, because too-small arenas can crash
    or hang that interpreter.
    """
    command = [sys.executable, "-m", "tinykd.tflm_probe", str(path)] + ([str(start)] if start else [])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise TinykdError(f"{path}: measuring the TFLM arena took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise TinykdError(f"{path}: the TFLM interpreter accepts no arena: {reason[0]}")
    return int(result.stdout.strip())
