"""Tensor-arena sizes: TFLM's allocations replayed for a board, and the host TFLM measured.

TFLM splits its arena in two. The head holds the non-persistent tensors (activations and kernel scratch
buffers), placed by a greedy-by-size planner that lets tensors with disjoint lifetimes share bytes. The
tail grows down from the arena's end and holds what lives as long as the interpreter: the allocator
objects, per-tensor and per-op structs, op parameters, each kernel's OpData and per-channel arrays, the
input and output TfLiteTensors. While the kernels prepare, the head also holds the scratch-buffer
requests and, above them, the temporary TfLiteTensors each Prepare fetches; while planning, the
planner's bookkeeping. For models with small activations those temporaries set the minimum.

`estimate_arena` replays AllocateTensors() allocation by allocation as TFLM's sources do it (per TFLM
version, kernel set and C ABI) and finds the smallest arena in which every allocation succeeds. For the
ops described in `tinykd.deploy.ops` it is exact: checked allocation by allocation against real TFLM builds, reference and
CMSIS-NN kernels (upstream 2026 on Cortex-M3, M7 and M55 under QEMU and on a 64-bit host; the 2024 pins
on a Cortex-M7). Other ops get generous guesses, counted as uncertain (as is what the newer build of
PyPI's TFLM adds per FULLY_CONNECTED) and added to the margin. `measure_arena` asks the host's
Python TFLM interpreter, which needs a few hundred bytes more than a plain build (a recording allocator).
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tinykd.core.artifacts import write_bytes
from tinykd.core.errors import TinykdError
from tinykd.deploy.ops import SPECS
from tinykd.deploy.ops.spec import fetch
from tinykd.tflite.reader import Model

ALIGNMENT = 16
"""TFLM aligns every planned buffer (offset and size) and every kernel's persistent buffer to 16 bytes."""


def align(size: int, alignment: int = ALIGNMENT) -> int:
    return (size + alignment - 1) // alignment * alignment


# ------------------------------------------------------------------------------------------ memory plan

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
    graph outputs live until the last operator; a tensor no operator touches gets -1 to -1, as in TFLM.
    """
    first: dict[int, int] = {index: 0 for index in model.inputs}
    last: dict[int, int] = {index: 0 for index in model.inputs}
    for time, op in enumerate(model.operators, start=1):
        for index in op.outputs:
            first.setdefault(index, time)
        for index in list(op.inputs) + list(op.outputs):
            if index >= 0:
                last[index] = time
    end = len(model.operators)
    for index in model.outputs:
        first.setdefault(index, end)
        last[index] = end
    return [Buffer(tensor.name or f"tensor {tensor.index}", align(tensor.nbytes), first.get(tensor.index, -1),
                   last.get(tensor.index, -1), tensor.index)
            for tensor in model.tensors if not (tensor.is_constant or tensor.is_variable or tensor.nbytes == 0)]


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


# --------------------------------------------------------------------------------------- C struct sizes

@dataclass(frozen=True)
class Abi:
    """What the size of TFLM's structs depends on: bytes of a pointer (and size_t), and of an enum."""

    pointer: int
    enum: int


ABIS = {4: Abi(pointer=4, enum=1), 8: Abi(pointer=8, enum=4)}
"""By pointer size. 32-bit: Cortex-M with GCC's bare-metal AAPCS (arm-none-eabi, arm-zephyr-eabi), where
an enum takes the smallest integer type that holds its values; 64-bit: an LP64 host (x86-64, AArch64)."""

_SCALAR_BYTES = {"b": 1, "h": 2, "i": 4, "d": 8}


def c_layout(members: str, abi: Abi) -> tuple[int, int]:
    """(sizeof, alignof) of a C struct whose members are spelled one letter each (b: bool or int8,
    h: int16, i: int32 or float, d: double, e: enum, p: pointer or size_t), a count before a letter
    repeating it and parentheses enclosing a nested struct; spaces only group letters for the eye."""

    def parse(position: int) -> tuple[int, int, int]:
        offset, alignment, count = 0, 1, 0
        while position < len(members) and members[position] != ")":
            char = members[position]
            position += 1
            if char.isdigit():
                count = count * 10 + int(char)
                continue
            if char == " ":
                continue
            if char == "(":
                size, member_alignment, position = parse(position)
                position += 1
            else:
                size = abi.pointer if char == "p" else abi.enum if char == "e" else _SCALAR_BYTES[char]
                member_alignment = size
            for _ in range(count or 1):
                offset = align(offset, member_alignment) + size
            alignment, count = max(alignment, member_alignment), 0
        return align(offset, alignment), alignment, position

    size, alignment, _ = parse(0)
    return size, alignment


# TFLM's structs (tensorflow/lite/micro, tensorflow/lite/core/c/common.h with TF_LITE_STATIC_MEMORY),
# the same in every version tinykd names.
_STRUCTS = {
    "SingleArenaBufferAllocator": "pp 5p p i",  # two vtables, five arena pointers, temp checksum and count
    "GreedyMemoryPlanner": "p ii 4p ii p b",
    "MicroAllocator": "p 4p b p p p",
    "MicroBuiltinDataAllocator": "pp",
    "SubgraphAllocations": "pp",
    "TfLiteEvalTensor": "pp e",
    "NodeAndRegistration": "6p i p",  # TfLiteNode, then the registration pointer
    "TfLiteTensor": "(ep) ii p p p eeb",
    "TfLiteAffineQuantization": "pp i",
    "ScratchBufferRequest": "p ii",
    "ScratchBufferHandle": "p",
    "AllocationInfo": "pp iii b",
}
_SCRATCH_REQUESTS_PER_OP = 12
"""TFLM reserves room in the head for this many more scratch-buffer requests before each Prepare."""
_PLANNER_BYTES_PER_BUFFER = 40
"""The greedy planner's bookkeeping per buffer: requirements, two sort arrays, a list entry, an offset."""


# ----------------------------------------------------------------------------------------- the kernels

TFLM_VERSIONS = {"latest": 2026, "riot": 2024, "zephyr": 2024}
"""The TFLM versions tinykd names -> the generation of sources their allocations follow. latest: the
PyPI tflite-micro (upstream 2026); riot: upstream 8e22946 (2024-05-20); zephyr: upstream 71fba59
(2024-05-29), which differs from 8e22946 only in refusing per-channel FULLY_CONNECTED."""
KERNELS = ("reference", "cmsis-nn")
CMSIS_NN_ISAS = {"portable": "none", "dsp": "dsp", "mve": "mve"}
"""A board's kernel variant -> the CMSIS-NN code its core compiles (ARM_MATH_DSP, ARM_MATH_MVEI or
neither); CMSIS-NN's scratch buffers depend on it."""


@dataclass(frozen=True)
class TflmBuild:
    """One TFLM build: the C ABI, the source generation, CMSIS-NN's ISA (None: reference kernels), and
    whether it defines KERNELS_OPTIMIZED_FOR_SPEED (TFLM's Makefile does; other builds may not)."""

    abi: Abi
    year: int
    cmsis: str | None
    for_speed: bool = True

    def size(self, members: str) -> int:
        return c_layout(members, self.abi)[0]


@dataclass
class _Kernel:
    """What one op allocates: its parameters (from the flatbuffer), its OpData (Init) and what its
    Prepare does, in order: ("tensor", index) fetches a temporary TfLiteTensor, ("persistent", bytes)
    allocates in the tail, ("scratch", bytes) requests a scratch buffer in the plan."""

    params: tuple[int, int] | None
    op_data: int
    prepare: list[tuple[str, int]]
    uncertain: int = 0
    """Bytes it may need beyond the above (guesses for ops tinykd does not know, newer kernels)."""


_UNKNOWN_PARAMS, _UNKNOWN_OP_DATA = (64, 8), 128
"""Guesses for ops without a description (`tinykd.deploy.ops`), whose inputs and outputs are also
fetched twice each."""


def _kernel(model: Model, op, build: TflmBuild) -> _Kernel:
    """What `op` allocates in `build`: from its op description for int8 kernels, guessed otherwise."""
    spec = SPECS.get(op.op)
    if spec is None or model.tensors[op.inputs[0]].dtype != "int8":
        steps = fetch(*op.inputs, *op.outputs) * 2
        guessed = _UNKNOWN_PARAMS[0] + _UNKNOWN_OP_DATA + len(steps) // 2 * build.size(_STRUCTS["TfLiteTensor"])
        return _Kernel(_UNKNOWN_PARAMS, _UNKNOWN_OP_DATA, steps, guessed)
    tflm = spec.tflm
    params = c_layout(tflm.params, build.abi) if tflm.params else None
    op_data = tflm.op_data_layout(build)
    return _Kernel(params, build.size(op_data) if op_data else 0, tflm.prepare(model, op, build),
                   tflm.uncertain(build))


# -------------------------------------------------------------------------------------------- replay

@dataclass(frozen=True)
class _Step:
    """One allocation of AllocateTensors(): `persistent` (tail), `temp` (above the head's top), `head`
    (resizes the head, after `reset` drops the temporaries), or `plan` (the planner's bookkeeping for
    `size` buffers, in all the memory left)."""

    kind: str
    phase: str
    """Where in AllocateTensors() it happens: what needs the byte when it does not fit."""
    size: int = 0
    alignment: int = 1
    part: str = ""
    """The breakdown line of a persistent allocation."""


class _Arena:
    """TFLM's SingleArenaBufferAllocator on an arena of `size` bytes starting 16-byte aligned. A
    persistent allocation may not land on live temporaries (TFLM does not check it, but would overwrite
    them); `failed` is the phase of the first allocation that does not fit."""

    def __init__(self, size: int):
        self.head = self.temp = 0
        self.tail = size
        self.parts: dict[str, int] = {}
        self.failed: str | None = None

    def run(self, steps: list[_Step]) -> _Arena:
        for step in steps:
            if not self._fits(step):
                self.failed = step.phase
                break
        return self

    def _fits(self, step: _Step) -> bool:
        if step.kind == "persistent":
            self.tail = (self.tail - step.size) // step.alignment * step.alignment
            self.parts[step.part] = self.parts.get(step.part, 0) + step.size
            return self.tail >= self.temp
        if step.kind == "temp":
            self.temp = align(self.temp, step.alignment) + step.size
            return self.temp <= self.tail
        if step.kind == "reset":
            self.temp = self.head
            return True
        if step.kind == "head":
            self.head = self.temp = step.size  # from the arena's start, which is 16-byte aligned
            return self.head <= self.tail
        available = self.tail // ALIGNMENT * ALIGNMENT - align(self.temp)  # plan
        self.temp = self.tail
        return available >= _PLANNER_BYTES_PER_BUFFER * step.size


def _steps(model: Model, build: TflmBuild) -> tuple[list[_Step], Plan, int]:
    """AllocateTensors() as a list of allocations, the memory plan, and the bytes guessed."""
    structs = {name: c_layout(members, build.abi) for name, members in _STRUCTS.items()}
    pointer, request = build.abi.pointer, structs["ScratchBufferRequest"]
    steps: list[_Step] = []
    phase = "start-up"

    def persistent(part: str, size: int, alignment: int = ALIGNMENT) -> None:
        if size > 0:
            steps.append(_Step("persistent", phase, size, alignment, part))

    def tensor(kind: str, index: int, part: str = "") -> None:
        """A TfLiteTensor with its quantization (the zero points copied into an int array)."""
        t = model.tensors[index]
        allocations = [structs["TfLiteTensor"]]
        if t.scale and t.zero_point:
            allocations += [structs["TfLiteAffineQuantization"], (4 + 4 * len(t.scale), 4)]
        steps.extend(_Step(kind, phase, size, alignment, part) for size, alignment in allocations)

    def head(scratch_requests: int) -> None:
        steps.append(_Step("head", phase, request[0] * (scratch_requests + _SCRATCH_REQUESTS_PER_OP), request[1]))

    for name in ("SingleArenaBufferAllocator", "GreedyMemoryPlanner", "MicroAllocator", "MicroBuiltinDataAllocator"):
        persistent("allocator objects", *structs[name])
    head(0)
    persistent("allocator objects", structs["SubgraphAllocations"][0] * model.subgraph_count, pointer)
    persistent("tensor structs (TfLiteEvalTensor)", structs["TfLiteEvalTensor"][0] * len(model.tensors), pointer)
    persistent("op structs (node and registration)", structs["NodeAndRegistration"][0] * len(model.operators),
               pointer)
    kernels = [_kernel(model, op, build) for op in model.operators]
    for kernel in kernels:
        if kernel.params:
            persistent("op parameters", *kernel.params)
    for kernel in kernels:
        persistent("kernel data (OpData)", kernel.op_data)
    scratch: list[Buffer] = []
    for time, (op, kernel) in enumerate(zip(model.operators, kernels), start=1):
        phase = f"the Prepare of layer {op.index} ({op.op})"
        for kind, value in kernel.prepare:
            if kind == "tensor":
                tensor("temp", value)
            elif kind == "persistent":
                persistent("per-channel and kernel arrays", value)
            else:
                scratch.append(Buffer(f"scratch of layer {op.index} ({op.op})", align(value), time, time))
        steps.append(_Step("reset", phase))
        head(len(scratch))

    phase = "memory planning"
    plan = greedy_plan(tensor_buffers(model) + scratch)
    persistent("allocator objects", structs["ScratchBufferHandle"][0] * len(scratch), pointer)
    steps.append(_Step("temp", phase, pointer * model.subgraph_count, pointer))
    steps.append(_Step("temp", phase, structs["AllocationInfo"][0] * (len(model.tensors) + len(scratch)),
                       structs["AllocationInfo"][1]))
    for t in model.tensors:
        if t.is_variable:
            persistent("variable tensors", t.nbytes)
    steps += [_Step("plan", phase, len(plan.buffers)), _Step("reset", phase), _Step("head", phase)]
    phase = "the final layout"
    steps.append(_Step("head", phase, plan.size, ALIGNMENT))
    for indices in (model.inputs, model.outputs):
        persistent("input and output tensors", pointer * len(indices))
        for index in indices:
            tensor("persistent", index, "input and output tensors")
    return steps, plan, sum(kernel.uncertain for kernel in kernels)


def _smallest_arena(steps: list[_Step]) -> int:
    """The smallest arena in which every step fits (a larger arena only moves the tail up)."""
    low, high = 0, ALIGNMENT
    while _Arena(high).run(steps).failed:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _Arena(middle).run(steps).failed else (low, middle)
    return high


# -------------------------------------------------------------------------------------------- estimate

@dataclass
class ArenaEstimate:
    """TFLM's smallest arena for one model, kernel set and pointer size: the largest over the TFLM
    versions replayed, with that version's final layout and what limits it."""

    total_bytes: int
    planned_bytes: int
    persistent_bytes: int
    limit: str
    """What needs the last byte: the final layout, or the Prepare or memory planning whose temporaries peak."""
    uncertain_bytes: int = 0
    """Bytes TFLM may need beyond the replay: guesses for ops it does not know, newer kernels."""
    versions: dict[str, int] = field(default_factory=dict)
    """The smallest arena per TFLM version."""
    breakdown: dict[str, int] = field(default_factory=dict)
    """The final layout's parts; with the set-up peak (or alignment) above it they add up to total_bytes."""
    plan: Plan | None = None

    def describe(self, target: int, name: str) -> list[str]:
        """Lines for the generated header: the breakdown, and the target `name` with its margin."""
        width = max(len(key) for key in [*self.breakdown, name])
        lines = [f"{key:<{width}}  {value:>9,} bytes" for key, value in self.breakdown.items()]
        lines.append(f"{'smallest arena':<{width}}  {self.total_bytes:>9,} bytes, limited by {self.limit}")
        if target != self.total_bytes:
            lines.append(f"{'margin':<{width}}  {target - self.total_bytes:>9,} bytes")
        lines.append(f"{name:<{width}}  {target:>9,} bytes")
        return lines

    def summary(self, target: int) -> dict:
        """The manifest's entry: target, estimate, margin, parts, and the smallest arena per TFLM version."""
        return {"target_bytes": target, "estimated_bytes": self.total_bytes,
                "safety_margin_bytes": target - self.total_bytes, "planned_bytes": self.planned_bytes,
                "persistent_bytes": self.persistent_bytes, "limited_by": self.limit,
                "uncertain_bytes": self.uncertain_bytes, "breakdown": self.breakdown,
                "tflm_versions": self.versions}


def estimate_arena(model: Model, pointer_bytes: int, kernels: str = "reference", isa: str = "dsp",
                   versions: tuple[str, ...] = tuple(TFLM_VERSIONS)) -> ArenaEstimate:
    """TFLM's smallest arena for `model` on a target with `pointer_bytes`-byte pointers, with the
    reference or the CMSIS-NN kernels (`isa`: CMSIS-NN's "dsp", "mve" or "none" code): the largest
    over the TFLM `versions` (and, for Helium, over KERNELS_OPTIMIZED_FOR_SPEED or not)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, not {kernels!r}")
    cmsis = isa if kernels == "cmsis-nn" else None
    by_year: dict[int, ArenaEstimate] = {}
    for year in sorted({TFLM_VERSIONS[version] for version in versions}, reverse=True):  # ties show the newest
        by_year[year] = max((_estimate(model, TflmBuild(ABIS[pointer_bytes], year, cmsis, for_speed))
                             for for_speed in ((True, False) if cmsis == "mve" else (True,))),
                            key=lambda estimate: estimate.total_bytes)
    largest = max(by_year.values(), key=lambda estimate: estimate.total_bytes + estimate.uncertain_bytes)
    largest.versions = {version: by_year[TFLM_VERSIONS[version]].total_bytes for version in versions}
    return largest


def _estimate(model: Model, build: TflmBuild) -> ArenaEstimate:
    """The smallest arena for one build, its final layout's parts, and what needs the last byte."""
    steps, plan, uncertain = _steps(model, build)
    total = _smallest_arena(steps)
    final = _Arena(total).run(steps)
    limit = _Arena(total - 1).run(steps).failed
    tail = total - final.tail
    padding, peak = tail - sum(final.parts.values()), total - plan.size - tail
    if limit == "the final layout":
        padding, peak = padding + peak, 0
    breakdown = {"planned tensors and scratch (head)": plan.size, **final.parts, "alignment padding": padding,
                 "set-up peak above the final layout": peak}
    return ArenaEstimate(total, plan.size, tail, limit, uncertain, plan=plan,
                         breakdown={key: value for key, value in breakdown.items() if value})


def arena_estimates(model: Model, board) -> dict[str, ArenaEstimate]:
    """The board's estimates with the reference kernels and with CMSIS-NN's (for its core's ISA)."""
    return {"reference": estimate_arena(model, board.pointer_bytes),
            "cmsis_nn": estimate_arena(model, board.pointer_bytes, "cmsis-nn", CMSIS_NN_ISAS[board.kernels])}


STRUCT_DRIFT = 0.02
"""Margin on the persistent part, for TFLM builds other than those replayed (a newer version, flags such
as USE_TFLM_COMPRESSION that add fields): TFLM's sizes change in its structs. The planned head needs
none: the greedy planner is replayed exactly, and is the same in every version tinykd names."""


def arena_target(estimate: ArenaEstimate) -> int:
    """kTensorArenaSize: the estimate, plus the struct drift and the uncertain bytes (for an op tinykd
    does not replay, its guess a second time: a guess may be off by its own size), rounded up to 16."""
    margin = math.ceil(STRUCT_DRIFT * estimate.persistent_bytes) + estimate.uncertain_bytes
    return align(estimate.total_bytes + margin)


def measure_arena(path, start: int = 0, timeout: float = 600) -> int:
    """The smallest arena_size the host TFLM interpreter accepts for the model at `path` (64-bit host).

    Bisects in a separate worker that forks one child per trial, because too-small arenas can crash
    or hang that interpreter. The answer is kept in the cache folder under a hash of the model, the
    probe's code and the TFLM version, so the same model is bisected once.
    """
    from tinykd.tflite import tflm_probe
    from tinykd.tflite.tflm_host import cache_dir, installed_version

    probe = Path(tflm_probe.__file__).read_bytes()
    key = hashlib.sha256(Path(path).read_bytes() + probe + installed_version().encode()).hexdigest()
    cached = cache_dir() / "arena" / f"{key[:32]}.txt"
    if cached.is_file():
        return int(cached.read_text())
    command = [sys.executable, "-m", "tinykd.tflite.tflm_probe", str(path)] + ([str(start)] if start else [])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise TinykdError(f"{path}: measuring the TFLM arena took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise TinykdError(f"{path}: the TFLM interpreter accepts no arena: {reason[0]}")
    write_bytes(cached, result.stdout.strip().encode())
    return int(result.stdout.strip())
