"""Every op description (tinykd/deploy/ops/) is complete: the C backend can lower it to a kernel its
runtime files define in every variant they name, the planner has its overlap rule for every variant,
the TFLM arena estimate replays its allocations exactly, and it names its resolver method and MACs.
Adding an op means adding its module there and its C file, which declares its parameter struct and
kernel at its top (the generated tinykd_params.h gathers them); these tests name what is missing."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from ai_edge_litert import schema_py_generated as schema

from singleop import KERNEL_OPS, SMALL, build_model
from tinykd.deploy.boards import KERNEL_VARIANTS
from harness import CFLAGS
from tinykd.deploy.cbackend import lower
from tinykd.deploy.cbackend.lower import PARAMS_HEADER, RUNTIME_DIR, params_header
from tinykd.deploy.ops import SPECS, model_macs, op_macs
from tinykd.deploy.tflm.memory import ABIS, TFLM_VERSIONS, TflmBuild, c_layout, estimate_arena, measure_arena
from tinykd.tflite.reader import parse_model, read_model

BUILTIN_OPS = {name for name in vars(schema.BuiltinOperator) if name.isupper()}
TFLM_BUILDS = [TflmBuild(ABIS[pointer_bytes], year, cmsis, for_speed)
               for pointer_bytes in ABIS for year in sorted(set(TFLM_VERSIONS.values()))
               for cmsis in (None, "none", "dsp", "mve") for for_speed in (True, False)]
PYTHON_INTERPRETER_EXTRA = range(232, 400)
"""What the host's Python TFLM interpreter needs above the 64-bit replay (see test_memory.py)."""


def kernel_of(name: str) -> str:
    """The single-op generator (tests/singleop.py) whose cases include this op."""
    kernels = [kernel for kernel, ops in KERNEL_OPS.items() if name in ops]
    assert kernels, f"{name}: tests/singleop.py has no generator of its cases"
    return kernels[0]


def case_model(name: str, cases: int = 12, path: str | None = None):
    """A model of single-op cases of `name`'s generator (RESHAPE, which has no code: a zoo model)."""
    if path:
        return read_model(path)
    kernel = kernel_of(name)
    data, _ = build_model([(kernel, 7, range(cases))], SMALL)
    return parse_model(data, f"{kernel}_cases.tflite")


def runtime_headers() -> str:
    """The runtime's headers, the generated one with every kernel's declarations too."""
    return "\n".join([params_header()] + [path.read_text() for path in sorted(RUNTIME_DIR.glob("*.h"))])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_op_description_is_complete(name, zoo):
    spec = SPECS[name]
    assert spec.name == name and name in BUILTIN_OPS
    assert re.fullmatch(r"Add[A-Z][A-Za-z0-9]*", spec.resolver)
    assert set(spec.variants) <= set(KERNEL_VARIANTS) - {"portable"}
    for file in spec.files + tuple(spec.variants.values()):
        assert (RUNTIME_DIR / file).is_file(), f"{name}: runtime file {file} is missing"
    model = case_model(name, path=zoo["mlp"] if name == "RESHAPE" else None)
    ops = [op for op in model.operators if op.op == name]
    assert ops, f"{name}: the cases hold no such op"
    headers = runtime_headers()
    for op in ops:
        layer = spec.lower(model, op)
        if name == "RESHAPE":
            assert layer.kernel == "memcpy" and spec.files == ()
        else:
            definition = re.compile(rf"\bvoid\s+{layer.kernel}\s*\(")
            for file in (spec.files[0], *spec.variants.values()):
                assert definition.search((RUNTIME_DIR / file).read_text()), f"{file} does not define {layer.kernel}"
            assert re.search(rf"\b{layer.struct}\b", headers), f"no runtime header declares {layer.struct}"
            assert set(layer.fields) <= set(re.findall(r"\w+", headers)), "fields the runtime does not have"
        for variant in KERNEL_VARIANTS:
            for position in range(len(op.inputs)):
                distance = spec.overlap(model, op, position, variant)
                assert distance is None or distance >= 0
        for build in TFLM_BUILDS:
            for layout in (spec.tflm.params, spec.tflm.op_data_layout(build)):
                assert layout is None or c_layout(layout, build.abi)[0] > 0
            steps = spec.tflm.prepare(model, op, build)
            assert steps and {kind for kind, _ in steps} <= {"tensor", "persistent", "scratch"}
            assert spec.tflm.uncertain(build) >= 0
        assert op_macs(model, op) == spec.macs(model, op) >= (1 if spec.weights else 0)


RELU6 = """/* RELU6, as a new kernel file would bring it. */
#include <stdint.h>

#ifndef TK_RELU6_DECLARATIONS
#define TK_RELU6_DECLARATIONS
typedef struct {
    int size;
    int8_t low, high;
} tk_relu6_params;

void tk_relu6(const tk_relu6_params *p, const int8_t *input, int8_t *output);
#endif /* TK_RELU6_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_relu6(const tk_relu6_params *p, const int8_t *input, int8_t *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)tk_clamp(input[i], p->low, p->high);
    }
}
"""

CALLER = """#include <stdio.h>
#include "tinykd_runtime.h"

int main(void)
{
    static const tk_relu6_params layer = {4, -10, 60};
    const int8_t input[4] = {-128, -3, 42, 127};
    int8_t output[4];
    tk_relu6(&layer, input, output);
    printf("%d %d %d %d", output[0], output[1], output[2], output[3]);
    return 0;
}
"""


def test_a_kernel_declares_itself_in_its_own_c_file(tmp_path, monkeypatch):
    """A new kernel's parameter struct and prototype live at the top of its C file only: the generated
    tinykd_params.h gathers them, so the file compiles and code that includes the runtime can call it."""
    structs = params_header().count("typedef struct {")
    runtime = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, runtime)
    (runtime / "relu6.c").write_text(RELU6)
    monkeypatch.setattr(lower, "RUNTIME_DIR", runtime)
    header = params_header()
    assert header.count("typedef struct {") == structs + 1 and "/* from relu6.c */" in header
    (runtime / PARAMS_HEADER).write_text(header)
    (tmp_path / "caller.c").write_text(CALLER)
    program = tmp_path / "relu6"
    subprocess.run(["gcc", *CFLAGS, f"-I{runtime}", str(tmp_path / "caller.c"), str(runtime / "relu6.c"),
                    "-o", str(program)], check=True)
    assert subprocess.run([program], capture_output=True, text=True, check=True).stdout == "-10 -3 42 60"


def test_the_arena_estimate_replays_every_op_as_the_host_tflm_allocates(tmp_path):
    """Exact, not guessed: on a model of every op's cases, the host interpreter needs what the 64-bit
    replay says plus its known extra, and the uncertain bytes are only what its newer build adds."""
    data, _ = build_model([(kernel, 11, range(3)) for kernel in sorted(KERNEL_OPS)], SMALL)
    path = tmp_path / "every_op.tflite"
    path.write_bytes(data)
    model = read_model(path)
    assert {op.op for op in model.operators} == set(SPECS) - {"RESHAPE"}
    estimate = estimate_arena(model, pointer_bytes=8, versions=("latest",))
    newer = {"FULLY_CONNECTED": 16, "CONCATENATION": 32}  # per op, in PyPI's newer build
    assert estimate.uncertain_bytes == sum(newer.get(op.op, 0) for op in model.operators)
    measured = measure_arena(path, start=estimate.total_bytes)
    assert measured - estimate.total_bytes - estimate.uncertain_bytes in PYTHON_INTERPRETER_EXTRA, (
        estimate.total_bytes, measured)


def test_macs_of_a_model_add_up_its_layers(zoo):
    model = read_model(zoo["plain_conv"])
    assert model_macs(model) == sum(op_macs(model, op) for op in model.operators) > 0
