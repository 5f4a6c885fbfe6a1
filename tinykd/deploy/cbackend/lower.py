"""The C backend: an INT8 TFLite model as plain C99 calls into tinykd's runtime
(`tinykd/deploy/runtime/`); the only float32 tensors it allows are the outputs of DEQUANTIZE (int8 ->
float32) layers.

No interpreter and no flatbuffer on the device: weights become const arrays, each layer a const
parameter struct and one kernel call (as its op description, `tinykd.deploy.ops`, lowers it), and
activations live in one static arena placed by the C backend's own planner (`plan.py`: aliases and
in-place outputs where the kernels allow), so RAM is exact. Parameters come from `quantize.py`, which
derives them as TFLM's Prepare does; outputs are meant to be byte-equal to TFLM's.

The same sources build for any core: the runtime carries every kernel variant the model's layers have
(portable, dsp, mve), and the compiler keeps the one the core's macros choose
(`runtime/tinykd_kernels.h`; `boards.kernels_define` forces one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from tinykd import __version__
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment
from tinykd.deploy.cbackend import fuse
from tinykd.deploy.cbackend.plan import plan_variants
from tinykd.deploy.ops import SPECS
from tinykd.deploy.ops.conv_2d import DSP_CHANNEL_BLOCK
from tinykd.deploy.ops.spec import Layer, where
from tinykd.deploy.tflm.codegen import comment_text
from tinykd.tflite.reader import Model, Operator

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
PARAMS_HEADER = "tinykd_params.h"
"""The runtime header the C backend generates: every kernel's declarations, from its own file."""
_DECLARATIONS = re.compile(r"^#ifndef (TK_\w+_DECLARATIONS)\b.*?^#endif /\* \1 \*/$", re.DOTALL | re.MULTILINE)


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


SUPPORTED_OPS = list(SPECS)


def _check_graph_io(model: Model) -> None:
    """int8 graph inputs; int8 or float32 graph outputs (a float32 one can only come from DEQUANTIZE,
    which _check_types ensures)."""
    for t in model.input_tensors() + model.output_tensors():
        if t.dtype != "int8" and (t.index in model.inputs or t.dtype != "float32"):
            raise TinykdError(f"{model.path}: {t.dtype} {'input' if t.index in model.inputs else 'output'} "
                              f"tensor {t.name!r}: the C backend needs int8 inputs and int8 outputs (or float32 "
                              "ones from DEQUANTIZE); convert with `tinykd quantize`")


def _check_types(model: Model, op: Operator) -> None:
    """int8 activations and weights only (int16 activations and int4 weights are refused); only
    DEQUANTIZE writes float32."""
    activations = [model.tensors[i] for i in op.inputs if i >= 0 and not model.tensors[i].is_constant]
    weights = [t for t in model.op_inputs(op)[1:2] if t is not None and SPECS[op.op].weights]
    output = model.tensors[op.outputs[0]].dtype
    if any(t.dtype != "int8" for t in activations + weights) or output != (
            "float32" if op.op == "DEQUANTIZE" else "int8"):
        types = ", ".join(t.dtype for t in activations + weights)
        raise TinykdError(f"{where(model, op)}: the C backend runs int8 kernels only (inputs {types}, "
                          f"output {output}); convert with `tinykd quantize`")


MAX_TENSOR_BYTES = 1 << 26
"""64 MB: a tensor larger than this cannot be meant for a microcontroller."""


def build_layers(model: Model) -> list[Layer]:
    """One Layer per operator; an op without a C kernel is a TinykdError naming it and its layer."""
    layers = []
    for op in model.operators:
        spec = SPECS.get(op.op)
        if spec is None:
            raise TinykdError(f"{where(model, op)}: the C backend has no kernel for {op.op} "
                              f"(it supports {', '.join(SUPPORTED_OPS)}); use the TFLM bundle instead")
        _check_types(model, op)
        largest = max((t for t in model.op_inputs(op) + [model.tensors[i] for i in op.outputs] if t is not None),
                      key=lambda t: t.nbytes)
        if largest.nbytes > MAX_TENSOR_BYTES:
            raise TinykdError(f"{where(model, op)}: tensor {largest.name!r} has {largest.nbytes:,} bytes, more "
                              "than any microcontroller holds (a damaged file?)")
        try:
            layers.append(spec.lower(model, op))
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            # A damaged or unusual file: tensors, quantization or options are not what the op needs.
            raise TinykdError(f"{where(model, op)}: its tensors, quantization or options are not what the "
                              f"C backend expects ({type(exc).__name__}: {exc})") from None
    return layers


class ArenaPlan(NamedTuple):
    """The arena of the kernel variants that share it: every planned tensor's offset, and its size."""

    variants: tuple[str, ...]
    offsets: dict[int, int]
    size: int
    fused: tuple[fuse.ConvPool, ...] = ()
    """The convolution-pooling pairs the plan runs as one call (the same in every plan of a model)."""


def arena_plans(model: Model, in_place: bool = True, fusion: bool | None = None) -> list[ArenaPlan]:
    """The C backend's own arena plans (`tinykd.cplan.plan_variants`), one per group of kernel variants
    that share one. RESHAPE outputs alias their inputs and, with `in_place`, an output may overlap an
    input that dies at its op as far as the variant's loop order allows. Convolution-pooling pairs run
    band by band (`fuse.py`): all of them with `fusion` True, none with False, and with None all of them
    if that makes the largest plan smaller."""
    def plans(pairs: tuple[fuse.ConvPool, ...]) -> list[ArenaPlan]:
        return [ArenaPlan(variants, plan.tensor_offsets(), plan.size, pairs)
                for variants, plan in plan_variants(model, in_place, pairs)]

    pairs = tuple(fuse.conv_pools(model)) if fusion is not False else ()
    banded = plans(pairs)
    if fusion or not pairs:
        return banded
    apart = plans(())
    return banded if max(plan.size for plan in banded) < max(plan.size for plan in apart) else apart


def arena_offsets(model: Model, in_place: bool = True, kernels: str = "portable") -> tuple[dict[int, int], int]:
    """The offsets and arena size of the plan the `kernels` variant's build uses."""
    plan = next(plan for plan in arena_plans(model, in_place) if kernels in plan.variants)
    return plan.offsets, plan.size


VARIANT_FILES = {variant: {spec.files[0]: spec.variants[variant] for spec in SPECS.values()
                           if variant in spec.variants} for variant in ("dsp", "mve")}
"""Per kernel variant (from the op descriptions): the portable runtime files it replaces with its own,
which define the same functions (same results, byte for byte), written for its cores. Each file keeps
its code inside `#if TK_KERNELS == ...`, so all of them are compiled and one definition remains."""
VARIANT_HEADERS = {"dsp": "tinykd_dsp.h", "mve": "tinykd_mve.h"}


def common_headers() -> set[str]:
    """The runtime headers every build includes: all but the variants' own, and the generated one."""
    return {path.name for path in RUNTIME_DIR.glob("*.h")} - set(VARIANT_HEADERS.values()) | {PARAMS_HEADER}


def params_header() -> str:
    """tinykd_params.h: the declaration block (parameter struct and prototypes, inside
    `#ifndef TK_..._DECLARATIONS`) at the top of each kernel file, gathered, so that a kernel's
    declarations live in its own C file only."""
    blocks = [(path.name, match.group(0)) for path in sorted(RUNTIME_DIR.glob("*.c"))
              for match in _DECLARATIONS.finditer(path.read_text())]
    return environment(compact=True).get_template(f"c/{PARAMS_HEADER}.j2").render(blocks=blocks)


def runtime_source(name: str) -> str:
    """The text of one runtime file of a bundle."""
    return params_header() if name == PARAMS_HEADER else (RUNTIME_DIR / name).read_text()


def runtime_files(layers: list[Layer], fused: bool = False) -> list[str]:
    """The runtime files the layers need, in every kernel variant (with each variant's header, if one of
    its files is used), the common headers, and with `fused` pairs the file that runs them, sorted."""
    names = {name for layer in layers for name in SPECS[layer.op.op].files} | common_headers()
    names |= {fuse.RUNTIME_FILE} if fused else set()
    for variant, replaced in VARIANT_FILES.items():
        own = {replaced[name] for name in names if name in replaced}
        names |= own | ({VARIANT_HEADERS[variant]} if own else set())
    return sorted(names)


def variant_sources(files: list[str], variant: str) -> list[str]:
    """Of the runtime's files, the .c files whose code a `variant` build compiles, sorted."""
    others = {name for other, replaced in VARIANT_FILES.items() if other != variant for name in replaced.values()}
    inactive = others | set(VARIANT_FILES.get(variant, {}))
    return sorted(name for name in files if name.endswith(".c") and name not in inactive)


def _c_values(ctype: str, values: list) -> str:
    per_line = 16 if ctype == "int8_t" else 8
    rows = [", ".join(str(v) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return ",\n".join("    " + row for row in rows)


def _finish(model: Model, layer: Layer, pointer) -> None:
    """Fill in a layer's call arguments and its pointer fields."""
    op = layer.op
    inputs = [i for i in op.inputs if i >= 0 and not model.tensors[i].is_constant]
    out = model.tensors[op.outputs[0]]
    name = f"layer{op.index}"
    if layer.kernel == "memcpy":
        layer.args = [pointer(op.outputs[0]), pointer(inputs[0]), str(out.nbytes)]
        if layer.args[0] == layer.args[1]:  # an alias: no call (the template writes a comment)
            layer.kernel, layer.args = "", []
        return
    for suffix, _, values in layer.arrays:
        layer.fields[suffix] = f"{name}_{suffix}" if values is not None else "NULL"
    if layer.kernel == "tk_concatenation":
        layer.arrays.append(("inputs", "int8_t *const", [pointer(i) for i in inputs]))
        layer.args = [f"&{name}", f"{name}_inputs", pointer(op.outputs[0])]
    else:
        layer.args = [f"&{name}"] + [pointer(i) for i in inputs] + [pointer(op.outputs[0])]
    layer.arrays = [(suffix, ctype, values) for suffix, ctype, values in layer.arrays if values is not None]


def _field_text(value) -> str:
    if isinstance(value, list):
        return "{" + ", ".join(str(v) for v in value) + "}"
    return str(value)


def _plan_directives(plans: list[ArenaPlan]) -> list[str]:
    """The #if / #elif / #else lines that pick each plan's group of variants."""
    lines = []
    for position, plan in enumerate(plans):
        if position == len(plans) - 1:
            lines.append(f"#else /* {', '.join(plan.variants)} */")
        else:
            test = " || ".join(f"TK_KERNELS == TK_KERNELS_{v.upper()}" for v in plan.variants)
            lines.append(f"{'#if' if position == 0 else '#elif'} {test}")
    return lines


def generate_c_backend(model: Model, fusion: bool | None = None) -> dict[str, str]:
    """The C backend's sources for `model`: relative path -> text.

    `tinykd_model.h` / `tinykd_model.c` (entry point `tinykd_invoke`) and, under `runtime/`, the
    runtime headers and the kernels the model uses, in every variant (see VARIANT_FILES). Graph inputs
    (outputs) are read (written) back to back, in the model's order (a float32 output as its raw
    bytes). Where the variants' arena plans differ, both headers pick the build's plan by TK_KERNELS.
    `fusion` runs convolution-pooling pairs band by band always (True), never (False), or where that
    saves RAM (None). The same model gives the same bytes, whatever core it is built for.
    """
    _check_graph_io(model)
    layers = build_layers(model)
    plans = arena_plans(model, fusion=fusion)
    differing: dict[tuple[int, ...], str] = {}  # offsets in each plan -> the macro that names them
    for index in sorted(plans[0].offsets):
        where = tuple(plan.offsets[index] for plan in plans)
        if len(set(where)) > 1:
            differing.setdefault(where, f"TINYKD_OFFSET_{index}")

    def pointer(index: int) -> str:
        # the planner's offsets are 4-aligned, so a float32 tensor is suitably aligned
        where = tuple(plan.offsets[index] for plan in plans)
        text = f"arena + {differing.get(where, where[0])}"
        return f"(float *)({text})" if model.tensors[index].dtype == "float32" else text

    for layer in layers:
        _finish(model, layer, pointer)
    for pair in plans[0].fused:
        conv, pool = layers[pair.conv.index], layers[pair.pool.index]
        pool.kernel, pool.args = fuse.fused_call(pair, conv.kernel, pool.kernel, pointer)
        conv.kernel, conv.args = "", []
    fused_into = {pair.conv.index: pair.pool.index for pair in plans[0].fused}
    files = runtime_files(layers, bool(fused_into))

    def tensor_io(indices) -> list[dict]:
        result, position = [], 0
        for index in indices:
            t = model.tensors[index]
            result.append(dict(index=len(result), name=comment_text(t.name), shape=_shape(t.shape), dtype=t.dtype,
                               bytes=t.nbytes, position=position, pointer=pointer(index)))
            position += t.nbytes
        return result

    inputs, outputs = tensor_io(model.inputs), tensor_io(model.outputs)
    directives = _plan_directives(plans)
    values = dict(
        version=__version__, model=dict(file=comment_text(model.path.name), sha256=model.sha256, ops=model.ops),
        plans=[dict(directive=directive, arena_bytes=plan.size) for directive, plan in zip(directives, plans)],
        offsets=[dict(directive=directive, defines=[(name, where[position]) for where, name in differing.items()])
                 for position, directive in enumerate(directives)],
        rq_block=DSP_CHANNEL_BLOCK, input_bytes=sum(t["bytes"] for t in inputs),
        output_bytes=sum(t["bytes"] for t in outputs), inputs=inputs, outputs=outputs,
        float_outputs=[t for t in outputs if t["dtype"] == "float32"],
        runtime_files=files,
        layers=[dict(index=l.op.index, op=l.op.op, detail=l.detail, kernel=l.kernel, struct=l.struct,
                     fused_into=fused_into.get(l.op.index),
                     out_pointer=pointer(l.op.outputs[0]), out_bytes=model.tensors[l.op.outputs[0]].nbytes,
                     args=l.args, fields={k: _field_text(v) for k, v in l.fields.items()},
                     arrays=[(suffix, ctype, len(v), _c_values(ctype, v)) for suffix, ctype, v in l.arrays],
                     shapes=" + ".join(_shape(model.tensors[i].shape) for i in l.op.inputs
                                       if i >= 0 and not model.tensors[i].is_constant)
                     + " -> " + _shape(model.tensors[l.op.outputs[0]].shape))
                for l in layers])
    env = environment(compact=True)
    sources = {name: env.get_template(f"c/{name}.j2").render(values) for name in ("tinykd_model.h", "tinykd_model.c")}
    for name in files:
        sources[f"runtime/{name}"] = runtime_source(name)
    return sources
