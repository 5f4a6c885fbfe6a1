"""What an op description holds (`OpSpec`), and the helpers the op modules share.

An op module describes one TFLite builtin op (or two that share a kernel) for every part of tinykd:
how the C backend lowers it to one kernel call (`lower`), the runtime files that define that kernel in
each variant, how far the C backend's arena plan may let its output overlap an input (`overlap`), what
TFLM's kernel for it allocates in the arena (`tflm`), its multiply-accumulates and the TFLM resolver
method that registers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from tinykd.core.errors import TinykdError
from tinykd.tflite.reader import Model, Operator, Tensor

if TYPE_CHECKING:
    from tinykd.deploy.tflm.memory import TflmBuild

Steps = list[tuple[str, int]]
"""What a TFLM Prepare does, in order: ("tensor", index) fetches a temporary TfLiteTensor,
("persistent", bytes) allocates in the arena's tail, ("scratch", bytes) requests a scratch buffer."""


@dataclass
class Layer:
    """One kernel call: its parameter struct (fields and the const arrays they point to) and arguments."""

    op: Operator
    kernel: str
    struct: str | None
    detail: str
    args: list[str] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)
    arrays: list[tuple[str, str, list]] = field(default_factory=list)
    """(name suffix, C element type, values): a field of the same name points at the array."""


@dataclass(frozen=True)
class TflmKernel:
    """What TFLM's int8 kernel for the op allocates, for the arena estimate (`tinykd.deploy.tflm.memory`).

    Layouts are struct member strings (`memory.c_layout`): the builtin options the flatbuffer parser
    allocates (`params`, None for ops without options) and Init's OpData (a layout, or a function of the
    TFLM build, since versions and CMSIS-NN differ); `prepare` lists what Prepare does (see `Steps`)."""

    params: str | None
    op_data: str | Callable[[TflmBuild], str | None] | None
    prepare: Callable[[Model, Operator, TflmBuild], Steps]
    uncertain: Callable[[TflmBuild], int] = lambda build: 0
    """Bytes it may need beyond the above (a newer build than the sources replayed)."""

    def op_data_layout(self, build: TflmBuild) -> str | None:
        return self.op_data(build) if callable(self.op_data) else self.op_data


def never_overlaps(model: Model, op: Operator, position: int, kernels: str) -> int | None:
    return None


def no_macs(model: Model, op: Operator) -> int:
    return 0


@dataclass(frozen=True)
class OpSpec:
    """Everything tinykd knows about one TFLite builtin op."""

    name: str
    """The builtin op's name, as in the flatbuffer schema (CONV_2D)."""
    resolver: str
    """TFLM's MicroMutableOpResolver method that registers it."""
    lower: Callable[[Model, Operator], Layer]
    """The C backend's kernel call for one operator; a TinykdError when the C backend cannot run it."""
    files: tuple[str, ...]
    """The runtime files (tinykd/deploy/runtime/) its portable kernel needs; the first defines it."""
    tflm: TflmKernel
    overlap: Callable[[Model, Operator, int, str], int | None] = never_overlaps
    """How far below input `position` its output may start with kernel variant `kernels`, from the
    kernel's loop order (see `tinykd.deploy.cbackend.overlap`); None: no overlap."""
    variants: Mapping[str, str] = field(default_factory=dict)
    """Kernel variant (dsp, mve) -> its own file, which replaces the first of `files` in that variant."""
    macs: Callable[[Model, Operator], int] = no_macs
    weights: bool = False
    """Whether input 1 holds weights (which the C backend needs in int8)."""


# ---- helpers of the op modules ----------------------------------------------------------------------


def where(model: Model, op: Operator) -> str:
    """The start of an error message about one layer."""
    return f"{model.path}: layer {op.index} ({op.op})"


def quant(tensor: Tensor) -> tuple[float, int]:
    """A per-tensor quantized tensor's scale and zero point."""
    return tensor.scale[0], tensor.zero_point[0]


def dims4(shape) -> list[int]:
    """A shape of rank <= 4 as four dimensions, padded with leading 1s."""
    return [1] * (4 - len(shape)) + list(shape)


def io(model: Model, op: Operator) -> tuple[list[Tensor | None], Tensor]:
    """An operator's inputs (None for absent optional ones) and its first output."""
    return model.op_inputs(op), model.tensors[op.outputs[0]]


def fetch(*indices: int) -> Steps:
    """Prepare steps fetching temporary TfLiteTensors for these tensors (absent inputs, -1, skipped)."""
    return [("tensor", index) for index in indices if index >= 0]


def optional_input(op: Operator, position: int) -> int:
    """The tensor index of input `position`, -1 when the operator has fewer inputs."""
    return op.inputs[position] if position < len(op.inputs) else -1


def fetch_operands(model: Model, op: Operator, build: TflmBuild) -> Steps:
    """The Prepare of kernels that fetch each input (constant ones too) and each output once."""
    return fetch(*op.inputs, *op.outputs)


def broadcast_fields(model: Model, op: Operator, first: Tensor, second: Tensor, out: Tensor) -> dict:
    """The output's four dimensions and each input's strides over them (0 where it is broadcast)."""
    if len(out.shape) > 4:
        raise TinykdError(f"{where(model, op)}: the C backend broadcasts up to rank 4")
    dims = dims4(out.shape)

    def strides(tensor: Tensor) -> list[int]:
        shape = dims4(tensor.shape)
        result = [math.prod(shape[a + 1:]) for a in range(4)]
        return [0 if shape[a] == 1 and dims[a] > 1 else result[a] for a in range(4)]

    return dict(dims=dims, strides1=strides(first), strides2=strides(second))
