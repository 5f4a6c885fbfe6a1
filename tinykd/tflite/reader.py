"""Read a `.tflite` flatbuffer into plain dataclasses: tensors, operators, buffers, quantization, MACs.

Parsing goes through the maintained schema binding that ships with `ai-edge-litert`; nothing here
decodes flatbuffer bytes by hand. Every defect of a file surfaces as a TinykdError naming the file.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tinykd.core.artifacts import check_model_file
from tinykd.core.errors import TinykdError


def _enum_names(enum_class) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items()
            if not name.startswith("_") and isinstance(value, int)}


OP_NAMES = _enum_names(schema.BuiltinOperator)
DTYPE_NAMES = {code: name.lower() for code, name in _enum_names(schema.TensorType).items()}
PADDING_NAMES = _enum_names(schema.Padding)
ACTIVATION_NAMES = _enum_names(schema.ActivationFunctionType)
ITEM_BYTES = {"float32": 4, "float16": 2, "float64": 8, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
              "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1, "complex64": 8, "complex128": 16}
_OPTION_ENUMS = {"padding": PADDING_NAMES, "fusedActivationFunction": ACTIVATION_NAMES}


@dataclass
class Tensor:
    """One tensor of the model's main subgraph."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: bytes | None
    """The constant contents (weights, biases, shapes), or None for activations."""
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0
    is_variable: bool = False

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * ITEM_BYTES.get(self.dtype, 1)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def describe(self) -> dict:
        """Name, shape, dtype and quantization as plain JSON-ready values."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "scale": list(self.scale),
                "zero_point": list(self.zero_point)}

    def array(self) -> np.ndarray:
        """The constant contents as a numpy array of the tensor's shape."""
        return np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape)


@dataclass
class Operator:
    """One operator (layer) of the main subgraph, in execution order."""

    index: int
    op: str
    """Builtin operator name as in the TFLite schema, e.g. CONV_2D."""
    version: int
    inputs: tuple[int, ...]
    """Tensor indices; -1 marks an optional input that is absent."""
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass
class Model:
    """A TFLite model's main subgraph, with the bytes it came from."""

    path: Path
    data: bytes
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_count: int = 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def ops(self) -> list[str]:
        """The distinct operator names, sorted."""
        return sorted({op.op for op in self.operators})

    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    def op_inputs(self, op: Operator) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def weight_bytes(self, op: Operator) -> int:
        """Bytes of the constant inputs (weights, biases) of one operator."""
        return sum(len(t.data) for t in self.op_inputs(op) if t is not None and t.is_constant)

    def activation_bytes(self, op: Operator) -> int:
        """Bytes of the operator's outputs."""
        return sum(self.tensors[i].nbytes for i in op.outputs)

    def summary(self, macs: Callable[[Operator], int]) -> dict:
        """Inputs, outputs, ops and one entry per layer (with its `macs`), as plain JSON-ready values."""
        layers = [{"index": op.index, "op": op.op, "version": op.version,
                   "output_shape": list(self.tensors[op.outputs[0]].shape), "macs": macs(op),
                   "weight_bytes": self.weight_bytes(op), "activation_bytes": self.activation_bytes(op),
                   "options": {k: v for k, v in sorted(op.options.items())}}
                  for op in self.operators]
        return {"file": str(self.path), "bytes": len(self.data), "sha256": self.sha256,
                "subgraphs": self.subgraph_count, "tensors": len(self.tensors),
                "inputs": [t.describe() for t in self.input_tensors()],
                "outputs": [t.describe() for t in self.output_tensors()], "ops": self.ops,
                "macs": sum(l["macs"] for l in layers), "weight_bytes": sum(l["weight_bytes"] for l in layers),
                "layers": layers}

    def require_int8(self) -> None:
        """Raise unless the model is full-integer INT8: int8 input/output and no float activations."""
        for t in self.input_tensors() + self.output_tensors():
            if t.dtype != "int8":
                raise TinykdError(f"{self.path}: {t.dtype} {'input' if t.index in self.inputs else 'output'} "
                                  f"tensor {t.name!r}: not a full-integer INT8 model "
                                  "(convert it with `tinykd quantize`)")
        for op in self.operators:
            for i in op.outputs:
                if self.tensors[i].dtype.startswith("float"):
                    raise TinykdError(f"{self.path}: layer {op.index} ({op.op}) computes in "
                                      f"{self.tensors[i].dtype}: not a full-integer INT8 model")


def read_model(path: str | Path) -> Model:
    """Read and check a .tflite file."""
    path = check_model_file(path, "TFLite model")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TinykdError(f"{path}: cannot read the model: {exc.strerror}") from None
    return parse_model(data, path)


def parse_model(data: bytes, path: str | Path = "<model>") -> Model:
    """Parse .tflite bytes; anything that is not a well-formed TFLite model is a TinykdError."""
    path = Path(path)
    if len(data) == 0:
        raise TinykdError(f"{path}: the file is empty")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TinykdError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        raw = schema.ModelT.InitFromPackedBuf(data, 0)
        model = _convert(raw, data, path)
    except TinykdError:
        raise
    except Exception:  # the binding raises whatever a damaged buffer provokes
        raise TinykdError(f"{path}: damaged or truncated TFLite flatbuffer: it cannot be decoded") from None
    _check_operators(model)
    return model


def _convert(raw, data: bytes, path: Path) -> Model:
    if not raw.subgraphs:
        raise TinykdError(f"{path}: the model has no subgraph")
    graph = raw.subgraphs[0]
    buffers = raw.buffers or []
    opcodes = raw.operatorCodes or []
    tensors = []
    for index, t in enumerate(graph.tensors or []):
        if not 0 <= t.buffer < max(1, len(buffers)):
            raise TinykdError(f"{path}: tensor {index} refers to buffer {t.buffer}, which does not exist")
        if t.type not in DTYPE_NAMES:
            raise TinykdError(f"{path}: tensor {index} has unknown type code {t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise TinykdError(f"{path}: tensor {index} has a dynamic or negative shape {list(shape)}")
        q = t.quantization
        tensors.append(Tensor(
            index=index, name=_text(t.name), shape=shape, dtype=DTYPE_NAMES[t.type],
            data=_buffer_bytes(buffers[t.buffer], data) if buffers else None,
            scale=tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else ())),
            zero_point=tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ())),
            quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
            is_variable=bool(t.isVariable)))
    operators = []
    for index, op in enumerate(graph.operators or []):
        if not 0 <= op.opcodeIndex < len(opcodes):
            raise TinykdError(f"{path}: layer {index} refers to operator code {op.opcodeIndex}, which does not exist")
        code = opcodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = OP_NAMES.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_text(code.customCode)}"
        operators.append(Operator(
            index=index, op=name, version=int(code.version),
            inputs=tuple(int(i) for i in (op.inputs if op.inputs is not None else ())),
            outputs=tuple(int(i) for i in (op.outputs if op.outputs is not None else ())),
            options=_options(op.builtinOptions)))
    model = Model(path=path, data=data, tensors=tensors, operators=operators,
                  inputs=tuple(int(i) for i in (graph.inputs if graph.inputs is not None else ())),
                  outputs=tuple(int(i) for i in (graph.outputs if graph.outputs is not None else ())),
                  subgraph_count=len(raw.subgraphs))
    return model


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _buffer_bytes(buffer, data: bytes) -> bytes | None:
    if buffer.offset > 1:  # large models keep buffers after the flatbuffer
        chunk = data[buffer.offset:buffer.offset + buffer.size]
        if len(chunk) != buffer.size:
            raise ValueError("buffer outside the file")
        return chunk
    if buffer.data is None or len(buffer.data) == 0:
        return None
    return bytes(np.asarray(buffer.data, dtype=np.uint8))


def _options(options) -> dict:
    """An operator's builtin options as a plain dict with enum values by name."""
    if options is None:
        return {}
    result = {}
    for key, value in vars(options).items():
        if key in _OPTION_ENUMS:
            value = _OPTION_ENUMS[key].get(value, value)
        elif isinstance(value, (list, np.ndarray)):
            value = [int(v) for v in value]
        result[key] = value
    return result


def _check_operators(model: Model) -> None:
    """Every index points at something, and every layer has the tensor ranks its op needs."""
    count = len(model.tensors)
    for i in model.inputs + model.outputs:
        if not 0 <= i < count:
            raise TinykdError(f"{model.path}: model input/output refers to tensor {i}, which does not exist")
    for op in model.operators:
        for i in op.inputs + op.outputs:
            if not -1 <= i < count or (i == -1 and i in op.outputs):
                raise TinykdError(f"{model.path}: layer {op.index} ({op.op}) refers to tensor {i}, "
                                  "which does not exist")
        if not op.outputs:
            raise TinykdError(f"{model.path}: layer {op.index} ({op.op}) has no output")
        needs = _RANKS.get(op.op)
        if needs:
            tensors = model.op_inputs(op)
            for position, rank in needs.items():
                t = tensors[position] if position < len(tensors) else None
                if t is None or len(t.shape) != rank:
                    raise TinykdError(f"{model.path}: layer {op.index} ({op.op}) needs a rank-{rank} input "
                                      f"{position}")


# Ranks of the inputs tinykd relies on: input position -> rank.
_RANKS = {"CONV_2D": {0: 4, 1: 4}, "DEPTHWISE_CONV_2D": {0: 4, 1: 4}, "FULLY_CONNECTED": {1: 2}}
