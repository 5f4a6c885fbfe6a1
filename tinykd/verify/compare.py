"""`tinykd verify`: the same golden inputs through every runtime, compared byte for byte with TFLM.

The golden reference is the real TFLM interpreter on the host (PyPI `tflite-micro`): the kernels a RIOT
or Zephyr device runs. The C backend (native) and the firmware on the target must give equal int8
outputs for every vector. The TFLite interpreter's reference kernels are listed as a cross-check only:
they round FULLY_CONNECTED differently, so they are not expected to agree.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd.core.console import Progress
from tinykd.tflite import tflm_host
from tinykd.core.artifacts import RunLayout
from tinykd.core.errors import TinykdError
from tinykd.tflite.reader import Model

log = logging.getLogger(__name__)

@dataclass
class RuntimeRun:
    """One runtime's outputs for all vectors, compared with the reference."""

    label: str
    outputs: np.ndarray
    instructions: int | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    cross_check: bool = False
    comparison: dict = field(default_factory=dict)


def random_inputs(model: Model, count: int, seed: int = 0) -> np.ndarray:
    """Seeded random int8 vectors, one row of all input bytes per vector."""
    size = sum(t.nbytes for t in model.input_tensors())
    return np.random.default_rng(seed).integers(-128, 128, (count, size), dtype=np.int8)


def quantized_images(model: Model, images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> int8 rows with the model's input quantization, as a device does it."""
    from tinykd.train.evaluate import quantize_input

    (tensor,) = model.input_tensors()
    rows = quantize_input(images, tensor.scale[0], tensor.zero_point[0])
    return rows.reshape(len(rows), -1)


def golden_inputs(model: Model, count: int, config=None) -> tuple[np.ndarray, str]:
    """The inputs to verify with, and what they are: given the pipeline config, the first `count` test images
    of the dataset the model was trained on when the model comes from a pipeline run (dataset.json beside
    it); else `count` seeded random int8 vectors."""
    if config is not None and RunLayout.of_model(model.path).dataset.exists():
        from tinykd.core.console import quiet_tensorflow
        from tinykd.train import pipeline

        quiet_tensorflow()
        dataset = pipeline.load_data(pipeline.config_for_model(Path(model.path), config, False), record=False)
        return quantized_images(model, dataset.x_test[:count]), f"{dataset.name} test images"
    return random_inputs(model, count), "seeded random int8 vectors"


def tflm_outputs(model: Model, inputs: np.ndarray, version: str | None = None) -> np.ndarray:
    """The host TFLM interpreter's output bytes (as int8): the golden reference (run in a child process;
    `version` a tflite-micro version, None the installed one)."""
    return tflm_host.outputs(model, inputs, version)


def tflite_outputs(model: Model, inputs: np.ndarray) -> np.ndarray:
    """The TFLite interpreter with its reference kernels: a cross-check, not the reference."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tinykd.core.console import quiet

    with quiet():
        interpreter = Interpreter(model_content=model.data,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
    inputs_detail, outputs_detail = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    for row in inputs:
        position = 0
        for detail in inputs_detail:
            size = int(np.prod(detail["shape"]))
            interpreter.set_tensor(detail["index"], row[position:position + size].reshape(detail["shape"]))
            position += size
        interpreter.invoke()
        outputs = [tflm_host.raw_bytes(interpreter.get_tensor(d["index"])) for d in outputs_detail]
        results.append(np.concatenate(outputs))
    return np.stack(results)


def compare(reference: np.ndarray, outputs: np.ndarray) -> dict:
    """Byte-equal vectors, the largest difference, and the first mismatching vector and output index."""
    if outputs.shape != reference.shape:
        return {"vectors": len(reference), "byte_equal": 0, "max_abs_diff": None,
                "error": f"output shape {outputs.shape} instead of {reference.shape}"}
    diff = np.abs(outputs.astype(np.int16) - reference.astype(np.int16))
    equal = ~diff.any(axis=1)
    result = {"vectors": len(reference), "byte_equal": int(equal.sum()), "max_abs_diff": int(diff.max(initial=0))}
    if not equal.all():
        vector = int(np.argmin(equal))
        index = int(np.argmax(diff[vector] > 0))
        result["first_mismatch"] = {"vector": vector, "output_index": index,
                                    "expected": int(reference[vector, index]), "got": int(outputs[vector, index])}
    return result


def first_divergent_layer(model: Model, c_dir: Path, row: np.ndarray, version: str | None = None,
                          kernels: str | None = None) -> dict | None:
    """Run one vector through the C backend (native, tracing every layer's output; `kernels` forces a
    kernel variant, as plain C) and through TFLM with all tensors kept; the first layer whose output
    bytes differ, or None when all layers agree."""
    from tinykd.verify.toolchain import build_trace

    with tempfile.TemporaryDirectory(prefix="tinykd-trace-") as folder:
        folder = Path(folder)
        (folder / "input.bin").write_bytes(row.tobytes())
        program = build_trace(c_dir, kernels, folder)
        subprocess.run([str(program), str(folder / "input.bin"), str(folder / "trace.bin")], check=True)
        trace = (folder / "trace.bin").read_bytes()
    ours = {}
    position = 0
    while position < len(trace):
        layer, size = np.frombuffer(trace[position:position + 8], dtype=np.int32)
        ours[int(layer)] = np.frombuffer(trace[position + 8:position + 8 + size], dtype=np.int8)
        position += 8 + int(size)
    return _first_difference(model, tflm_host.layer_outputs(model, row, version), ours)


def tflm_versions_first_divergent_layer(model: Model, row: np.ndarray, reference: str, other: str) -> dict | None:
    """The first layer whose output differs between two TFLM versions on one vector, or None."""
    theirs = tflm_host.layer_outputs(model, row, other)
    return _first_difference(model, tflm_host.layer_outputs(model, row, reference), dict(enumerate(theirs)))


def _first_difference(model: Model, expected: list[np.ndarray], got: dict[int, np.ndarray]) -> dict | None:
    """The first layer (in execution order) whose bytes in `got` differ from `expected`'s."""
    for layer in sorted(got):
        ours, theirs = got[layer], expected[layer][:len(got[layer])]
        if not np.array_equal(ours, theirs):
            index = int(np.argmax(ours != theirs))
            return {"layer": layer, "op": model.operators[layer].op, "output_index": index,
                    "expected": int(theirs[index]), "got": int(ours[index])}
    return None


CHECK_VECTORS = 16
"""Seeded random vectors `tinykd build` runs through its C backend and TFLM before it writes a bundle."""


def check_c_backend(model: Model, sources: dict[str, str], board, vectors: int = CHECK_VECTORS,
                    seed: int = 0) -> dict:
    """Compile the C backend (relative path -> text) for the host as the board would build it (its
    kernel variant, the core's instructions as plain C), run `vectors` seeded random inputs through it
    and through the host TFLM, and compare every byte. The record `manifest.json` keeps; on a
    difference it names the first vector, output byte and layer that differ."""
    from tinykd.core.artifacts import write_tree
    from tinykd.deploy.boards import build_variant
    from tinykd.verify.runners import make_runner
    from tinykd.verify.toolchain import build_firmware

    kernels = build_variant(board)
    inputs = random_inputs(model, vectors, seed)
    try:
        reference = tflm_outputs(model, inputs)
    except TinykdError as exc:
        raise TinykdError(f"{exc}; tinykd build --no-check writes the bundle without checking it") from None
    with tempfile.TemporaryDirectory(prefix="tinykd-check-") as folder:
        c_dir = Path(folder) / "c"
        write_tree(c_dir, sources)
        firmware = build_firmware(c_dir, board, Path(folder) / "fw", target="native")
        outputs, _ = make_runner("native", firmware, board).run(inputs)
        comparison = compare(reference, outputs)
        record = {"vectors": vectors, "seed": seed, "inputs": "seeded random int8 vectors",
                  "kernels": kernels, "reference": reference_name(tflm_host.installed_version()),
                  "byte_equal": comparison["byte_equal"], "max_abs_diff": comparison["max_abs_diff"]}
        if comparison["byte_equal"] != vectors:
            mismatch = comparison["first_mismatch"]
            record["first_mismatch"] = mismatch
            record["first_divergent_layer"] = first_divergent_layer(model, c_dir, inputs[mismatch["vector"]],
                                                                    kernels=kernels)
    record["passed"] = record["byte_equal"] == vectors
    record["result"] = "byte-equal" if record["passed"] else "differs"
    return record


def describe_check_failure(record: dict) -> str:
    """One line: where the C backend first differs from TFLM in a failed check."""
    first, layer = record["first_mismatch"], record.get("first_divergent_layer")
    where = (f"first at layer {layer['layer']} ({layer['op']}), output byte {layer['output_index']}: TFLM "
             f"{layer['expected']}, C {layer['got']}" if layer else
             f"vector {first['vector']}, output {first['output_index']}: TFLM {first['expected']}, C {first['got']}")
    return (f"the C backend ({record['kernels']} kernels) differs from {record['reference']} on "
            f"{record['vectors'] - record['byte_equal']} of {record['vectors']} random vectors, {where}")


def reference_name(version: str) -> str:
    """How reports name the reference."""
    return f"TFLM (tflite-micro {version}, host)"


def verify_bundle(model: Model, bundle_dir: Path, board, target: str, inputs: np.ndarray,
                  inputs_source: str, tflm: str = "latest") -> dict:
    """Run `inputs` through TFLM `tflm` (the reference: latest, riot, zephyr or a version), the
    TFLite interpreter (cross-check), the C backend on the host and the firmware on `target`; with an
    older TFLM, also the latest one (compared, not required to agree). Returns verify.json's report."""
    from tinykd.deploy.boards import build_variant
    from tinykd.deploy.bundle import read_manifest
    from tinykd.verify.runners import make_runner
    from tinykd.verify.toolchain import build_firmware

    c_dir = bundle_dir / "c"
    manifest = read_manifest(bundle_dir)
    if not manifest["c_backend"]["available"]:
        raise TinykdError(f"{bundle_dir}: no C backend to verify: {manifest['c_backend']['reason']}")
    version, latest = tflm_host.resolve(tflm), tflm_host.installed_version()
    pinned = f": {tflm_host.PINNED[tflm][1]}" if tflm in tflm_host.PINNED else ""
    log.info(f"{len(inputs):,} vectors ({inputs_source}) through TFLM {version} on the host (the reference{pinned})")
    reference = tflm_outputs(model, inputs, version)
    runs = [RuntimeRun("TFLite interpreter, reference kernels (cross-check)", tflite_outputs(model, inputs),
                       cross_check=True)]
    if version != latest:
        runs.append(RuntimeRun(f"TFLM {latest} (latest; compared)", tflm_outputs(model, inputs), cross_check=True))
    targets = ["native"] if target == "native" else ["native", target]
    for name in targets:
        label = "C backend, host gcc (native)" if name == "native" else f"firmware on {name} ({board.cpu})"
        log.info(f"building the firmware for {name}")
        firmware = build_firmware(c_dir, board, bundle_dir / "fw" / name.split(":")[0], target=name.split(":")[0])
        counter = Progress(label, len(inputs), "vectors", log)
        outputs, instructions = make_runner(name, firmware, board).run(inputs, counter.update)
        sizes = manifest["c_backend"] if name != "native" else {}
        runs.append(RuntimeRun(label, outputs, instructions, sizes.get("flash_bytes"), sizes.get("ram_bytes")))
    for run in runs:
        run.comparison = compare(reference, run.outputs)
    report = {"board": board.name, "model": {"file": model.path.name, "sha256": model.sha256},
              "inputs": inputs_source, "vectors": len(inputs), "reference": reference_name(version),
              "tflm": {"name": tflm, "version": version, "pin": tflm_host.PINNED.get(tflm, (None, None))[1]},
              "runtimes": [{"runtime": r.label, "cross_check": r.cross_check, "instructions_per_inference":
                            r.instructions, "flash_bytes": r.flash_bytes, "ram_bytes": r.ram_bytes, **r.comparison}
                           for r in runs]}
    failed = [r for r in runs if not r.cross_check and r.comparison["byte_equal"] != len(inputs)]
    report["bit_exact"] = not failed
    if failed:
        vector = failed[0].comparison.get("first_mismatch", {}).get("vector", 0)
        report["first_divergent_layer"] = first_divergent_layer(model, c_dir, inputs[vector], version,
                                                                build_variant(board))
    if version != latest:
        versions = compare(reference, runs[1].outputs)
        if "first_mismatch" in versions:
            versions["first_divergent_layer"] = tflm_versions_first_divergent_layer(
                model, inputs[versions["first_mismatch"]["vector"]], version, latest)
        report["tflm_versions"] = {"reference": version, "latest": latest, **versions}
    return report


def report_table(report: dict) -> str:
    """The report as the table `tinykd verify` prints."""
    lines = [f"{'runtime':<52} {'vectors':>7} {'byte-equal':>10} {'max|diff|':>9} {'instr/inference':>15} "
             f"{'flash':>8} {'RAM':>8}"]
    for r in report["runtimes"]:
        number = (lambda v: f"{v:,}" if v is not None else "-")
        lines.append(f"{r['runtime']:<52} {r['vectors']:>7,} {r['byte_equal']:>10,} "
                     f"{number(r['max_abs_diff']):>9} {number(r['instructions_per_inference']):>15} "
                     f"{number(r['flash_bytes']):>8} {number(r['ram_bytes']):>8}")
    return "\n".join(lines)
