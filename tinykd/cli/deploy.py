"""Commands about models and boards: inspect, boards, build."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from tinykd.cli.common import config_from_args, pipeline_options
from tinykd.core.console import quiet_tensorflow
from tinykd.core.errors import TinykdError


def add_parsers(sub) -> None:
    from tinykd.verify.compare import CHECK_VECTORS

    p = sub.add_parser("inspect", help="per-layer table of a .tflite model: op, shape, MACs, bytes",
                       description="Read a .tflite model and print its inputs, outputs and one row per layer: "
                                   "op, output shape, multiply-accumulates, weight bytes, activation bytes.")
    p.add_argument("model", type=Path, help="a .tflite model")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("boards", help="list the board profiles",
                       description="List the board profiles: built-in, ./boards/*.toml and $TINYKD_BOARDS/*.toml "
                                   "(later folders override earlier ones).")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("build", help="INT8 model -> TFLM sources for a board (RIOT, Zephyr), with a fit check",
                       description="Write a bundle of sources for one board: for TFLM the model as an aligned C "
                                   "array, an op resolver with exactly the model's ops, the tensor arena size, RIOT "
                                   "and Zephyr glue; the C backend (c/) and an Arduino library; manifest.json with "
                                   "each runtime's fit. Exits 1 when no runtime asked for fits the board.")
    p.add_argument("--board", required=True, help="board profile name (see `tinykd boards`)")
    p.add_argument("--model", type=Path, action="append",
                   help="INT8 .tflite model (default: the pipeline's student_int8.tflite; missing pipeline stages "
                        "are run first); repeat it for one bundle of several models: one op resolver for all, "
                        "an array and an arena figure each (TFLM sources only)")
    p.add_argument("--out", type=Path, metavar="DIR", help="bundle folder (default: build/BOARD)")
    p.add_argument("--array-name", action="append",
                   help="C name of the model array, once per --model (default: g_model; with several models "
                        "g_<file stem>_model); include guards derive from it and --namespace, so bundles with "
                        "different names can be included in one application")
    p.add_argument("--namespace", default="", help="C++ namespace of the generated names, e.g. tinykd or "
                   "a::b (default: none)")
    p.add_argument("--riot-module", default="tinykd_model", help="RIOT module name (default: tinykd_model)")
    p.add_argument("--runtime", choices=["all", "tflm", "c"], default="all",
                   help="which sources to write: TFLM's, the C backend's (with its Arduino library), or all "
                        "(default); the bundle is written when at least one of them fits the board")
    p.add_argument("--no-check", action="store_true",
                   help="do not check the C backend before writing the bundle (by default it is compiled for "
                        "the host with the board's kernel variant and must give TFLM's bytes on "
                        f"{CHECK_VECTORS} seeded random vectors, or nothing is written)")
    p.add_argument("--measure", action="store_true",
                   help="also measure the smallest arena the host TFLM interpreter accepts (64-bit host; a "
                        "32-bit board needs somewhat less) and record it in manifest.json")
    pipeline_options(p, training=False)


def cmd_inspect(args) -> int:
    from tinykd.deploy.ops import op_macs
    from tinykd.tflite.reader import read_model

    model = read_model(args.model)
    summary = model.summary(macs=lambda op: op_macs(model, op))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0

    def tensors(items):
        return ", ".join(f"{t['name'] or '?'} {'x'.join(map(str, t['shape']))} {t['dtype']}"
                         + (f" (scale {t['scale'][0]:.6g}, zero point {t['zero_point'][0]})" if t["scale"] else "")
                         for t in items)

    print(f"{summary['file']}: {summary['bytes']:,} bytes, sha256 {summary['sha256']}")
    print(f"inputs:  {tensors(summary['inputs'])}")
    print(f"outputs: {tensors(summary['outputs'])}")
    print(f"ops:     {', '.join(summary['ops'])}\n")
    print(f"{'#':>3}  {'op':<20} {'output shape':<16} {'MACs':>12} {'weights':>10} {'activations':>12}")
    for layer in summary["layers"]:
        shape = "x".join(map(str, layer["output_shape"])) or "scalar"
        print(f"{layer['index']:>3}  {layer['op']:<20} {shape:<16} {layer['macs']:>12,} "
              f"{layer['weight_bytes']:>10,} {layer['activation_bytes']:>12,}")
    print(f"{'':>3}  {'total':<20} {'':<16} {summary['macs']:>12,} {summary['weight_bytes']:>10,}")
    return 0


def cmd_boards(args) -> int:
    from tinykd.deploy.boards import all_boards

    boards, problems = all_boards()
    if args.json:
        print(json.dumps([dataclasses.asdict(b) for b in boards], indent=2))
    else:
        print(f"{'name':<20} {'cpu':<14} {'clock':>8} {'flash':>9} {'RAM':>9} {'kernels':<9} {'qemu':<11} "
              "description")
        for b in boards:
            clock = f"{b.clock_hz / 1e6:.0f} MHz" if b.clock_hz else "-"
            print(f"{b.name:<20} {b.cpu:<14} {clock:>8} {_kib(b.flash_bytes):>9} {_kib(b.ram_bytes):>9} "
                  f"{b.kernels:<9} {b.qemu_machine or '-':<11} {b.description}")
    for problem in problems:  # the boards that load are listed all the same
        print(f"tinykd: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def cmd_build(args) -> int:
    from tinykd.deploy.boards import build_variant, load_board
    from tinykd.deploy.bundle import RUNTIMES, check_bundle_folder, fit_table, make_bundle, write_bundle
    from tinykd.deploy.tflm.codegen import Names, default_array_names
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import CHECK_VECTORS, describe_check_failure

    board = load_board(args.board)
    model_paths = args.model
    if model_paths is None:
        from tinykd.train import pipeline

        quiet_tensorflow()
        model_paths = [pipeline.int8_model(config_from_args(args))]
    if args.array_name and len(args.array_name) != len(model_paths):
        raise TinykdError(f"{len(args.array_name)} --array-name for {len(model_paths)} --model: give one per model")
    array_names = args.array_name or default_array_names([path.name for path in model_paths])
    names = Names(array_names[0], args.namespace, args.riot_module)
    names.check()
    model_path = model_paths[0]
    out_dir = args.out or Path("build") / board.name
    check_bundle_folder(out_dir, args.force)
    if args.measure:
        print("tinykd: measuring the smallest arena the host TFLM interpreter accepts "
              "(bisection, one child process per trial)")
    models = [read_model(path) for path in model_paths]
    if not args.no_check and len(models) == 1:
        print(f"tinykd: checking the C backend ({build_variant(board)} kernels) against TFLM on the host, "
              f"{CHECK_VECTORS} random vectors")
    runtimes = tuple(RUNTIMES) if args.runtime == "all" else (args.runtime,)
    bundle = make_bundle(models, board, names, measure=args.measure, check_c_backend=not args.no_check,
                         array_names=array_names, runtimes=runtimes)
    print(f"tinykd: {', '.join(map(str, model_paths))} on {board.name} ({board.cpu}"
          f"{f', {board.clock_hz / 1e6:.0f} MHz' if board.clock_hz else ''})")
    print(fit_table(list(bundle.fits.values())))
    c_backend = bundle.manifest["c_backend"]
    if not c_backend["available"] and "c" in runtimes:
        print(f"tinykd: no C backend in this bundle: {c_backend['reason']}")
    check = c_backend.get("check", {})
    if check.get("passed") is False:
        print(f"tinykd: error: {model_path.name}: {describe_check_failure(check)}; nothing written (a bug in "
              "tinykd's kernels: please report it with the model; --no-check writes the bundle anyway)",
              file=sys.stderr)
        return 1
    if check.get("passed"):
        print(f"tinykd: C backend checked: {check['vectors']} random vectors byte-equal with {check['reference']}")
    if "tflm" in runtimes:
        for rtos, pinned in bundle.manifest["tflm"]["pinned_by"].items():
            if pinned["problem"]:
                print(f"tinykd: warning: {pinned['pin']} {pinned['problem']}; quantize with one weight scale per "
                      "dense layer (the pipeline's default, quantize.per_channel_dense = false)", file=sys.stderr)
        arena = bundle.manifest["arena"]
        print(f"tinykd: tensor arena: {arena['target_bytes']:,} bytes with TFLM's reference kernels "
              f"(kTensorArenaSize), {arena['cmsis_nn']['target_bytes']:,} with CMSIS-NN's (kTensorArenaSizeCmsisNn)")
        if "tflm_measured_bytes" in arena:
            print(f"tinykd: on this 64-bit host the Python TFLM interpreter needs an arena of "
                  f"{arena['tflm_measured_bytes']:,} bytes (a plain 64-bit TFLM build: "
                  f"{arena['host_estimated_bytes']:,})")
    names_of_models = ", ".join(p.name for p in model_paths)
    misfits = [fit for fit in bundle.fits.values() if not fit.fits]
    if misfits and len(misfits) == len(bundle.fits):
        print(f"tinykd: error: {names_of_models} does not fit {board.name}: "
              + "; ".join(f"{RUNTIMES[fit.runtime]} needs more {fit.shortfall()}" for fit in misfits)
              + "; nothing written", file=sys.stderr)
        return 1
    for fit in misfits:
        fitting = [RUNTIMES[runtime] for runtime, other in bundle.fits.items() if other.fits]
        print(f"tinykd: warning: {RUNTIMES[fit.runtime]} does not fit {board.name} (not enough {fit.shortfall()}); "
              f"the {' and '.join(fitting)} does (--runtime {'c' if fit.runtime == 'tflm' else 'tflm'} writes "
              "it alone)", file=sys.stderr)
    write_bundle(bundle.files, out_dir, force=args.force)
    print(f"tinykd: wrote {len(bundle.files)} files to {out_dir}/ (manifest.json lists them)")
    return 0


def _kib(n: int) -> str:
    return f"{n / 1048576:g} MB" if n >= 1048576 else f"{n / 1024:g} KB"


COMMANDS = {"inspect": cmd_inspect, "boards": cmd_boards, "build": cmd_build}
