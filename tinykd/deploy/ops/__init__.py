"""What tinykd knows about each TFLite op, one module per op (`spec.OpSpec`).

Every module in this package but `spec` describes one op, or two that share a kernel, in a list
`SPECS`; they are found by name, so adding an op means adding its module here and its kernel's C file
in tinykd/deploy/runtime/. The C backend, its arena planner, the TFLM arena estimate, the op resolver
and the MAC counts all read these descriptions.
"""

from __future__ import annotations

import importlib
import pkgutil

from tinykd.deploy.ops.spec import OpSpec
from tinykd.tflite.reader import Model, Operator


def _load() -> dict[str, OpSpec]:
    specs: dict[str, OpSpec] = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name != "spec"):
        for spec in importlib.import_module(f"{__name__}.{module}").SPECS:
            if spec.name in specs:
                raise ValueError(f"{spec.name} is described twice (tinykd/deploy/ops/{module}.py)")
            specs[spec.name] = spec
    return dict(sorted(specs.items()))


SPECS = _load()
"""Op name -> its description, sorted by name."""


def op_macs(model: Model, op: Operator) -> int:
    """Multiply-accumulates of one operator (0 for ops that only move, compare or add, and for ops
    tinykd has no description of)."""
    spec = SPECS.get(op.op)
    return spec.macs(model, op) if spec else 0


def model_macs(model: Model) -> int:
    """Multiply-accumulates of one inference."""
    return sum(op_macs(model, op) for op in model.operators)
