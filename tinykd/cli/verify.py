"""The verify command: the C backend and firmware against TFLM, byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

from tinykd.cli.common import config_from_args, pipeline_options
from tinykd.core.console import quiet_tensorflow
from tinykd.core.errors import TinykdError

MAX_VECTORS = 100_000
"""--vectors at most: 100,000 vectors of a 96x96x3 image are 2.8 GB in memory."""


def add_parsers(sub) -> None:
    p = sub.add_parser("verify", help="prove the C backend and firmware give TFLM's int8 outputs, byte for byte",
                       description="Run golden inputs (the dataset's test split when the model comes from a "
                                   "pipeline run, else seeded random int8 vectors) through TFLM on the host (the "
                                   "reference), the C backend compiled for the host, and the firmware on the "
                                   "target. Writes verify.json into the bundle; exits 1 unless every output byte "
                                   "equals TFLM's.")
    p.add_argument("--board", required=True, help="board profile name (see `tinykd boards`)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="INT8 .tflite model (default: the pipeline's student_int8.tflite); "
                        "its bundle is (re)built first")
    source.add_argument("--bundle", type=Path, metavar="DIR", help="an existing bundle from tinykd build")
    p.add_argument("--out", type=Path, metavar="DIR", help="bundle folder when building one (default: build/BOARD)")
    p.add_argument("--target", help="qemu, native or serial:PORT (default: qemu when the board's core has a QEMU "
                   "machine, else native)")
    p.add_argument("--vectors", type=int, default=1000, metavar="N", help="how many inputs (default: 1000)")
    p.add_argument("--tflm", metavar="VERSION",
                   help="the TFLM that is the reference: latest (installed with tinykd), riot or zephyr (the "
                        "2024 versions those RTOSes build; they compute other bytes on some models) or a "
                        "tflite-micro nightly such as 0.dev20240520175645; an older one is installed once into "
                        "its own environment under ~/.cache/tinykd (default: the pipeline file's verify.tflm, "
                        "latest)")
    pipeline_options(p, training=False)


def cmd_verify(args) -> int:
    from tinykd.tflite import tflm_host
    from tinykd.core.artifacts import write_json
    from tinykd.deploy.boards import load_board
    from tinykd.deploy.bundle import MODEL_FILE, make_bundle, read_manifest, write_bundle
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import golden_inputs, report_table, verify_bundle
    from tinykd.verify.runners import check_target, default_target

    board = load_board(args.board)
    if not 1 <= args.vectors <= MAX_VECTORS:
        raise TinykdError(f"--vectors {args.vectors}: give between 1 and {MAX_VECTORS:,} vectors")
    if args.tflm:
        tflm_host.resolve(args.tflm)  # a bad name is the option's error, before any work
    tflm = config_from_args(args).verify.tflm
    target = args.target or default_target(board)
    check_target(target, board)
    if args.bundle:
        manifest = read_manifest(args.bundle)
        if "models" in manifest:
            raise TinykdError(f"{args.bundle}: a bundle of several models has no C backend to verify; verify each "
                              "model with --model")
        built_for = manifest.get("board", {}).get("name")
        if built_for != board.name:
            raise TinykdError(f"{args.bundle}: the bundle was built for board {built_for}, not {board.name}; "
                              f"verify it with --board {built_for}, or build one for {board.name}")
        bundle_dir, model = args.bundle, read_model(args.bundle / MODEL_FILE)
        config = None  # a bundle's model: random vectors
    else:
        model_path = args.model
        if model_path is None:
            from tinykd.train import pipeline

            quiet_tensorflow()
            model_path = pipeline.int8_model(config_from_args(args))
        model = read_model(model_path)
        bundle = make_bundle(model, board, check_c_backend=False)  # verify compares every output itself
        fit = bundle.fits.get("c")  # what verify runs
        if fit and not fit.fits:
            print(f"tinykd: error: {model_path.name} does not fit {board.name}: the C backend needs more "
                  f"{fit.shortfall()} (tinykd build --board {board.name} --model {model_path} shows the fit); "
                  "nothing verified", file=sys.stderr)
            return 1
        bundle_dir = args.out or Path("build") / board.name
        write_bundle(bundle.files, bundle_dir, force=args.force)
        config = config_from_args(args)
    inputs, source = golden_inputs(model, args.vectors, config)
    report = verify_bundle(model, bundle_dir, board, target, inputs, source, tflm=tflm)
    write_json(bundle_dir / "verify.json", report)
    print(report_table(report))
    print(f"tinykd: wrote {bundle_dir / 'verify.json'}")
    versions = report.get("tflm_versions")
    if versions:
        agree = f"agree on {versions['byte_equal']:,} of {versions['vectors']:,} vectors"
        layer = versions.get("first_divergent_layer")
        where = f"; they first differ at layer {layer['layer']} ({layer['op']})" if layer else ""
        print(f"tinykd: TFLM {versions['reference']} (the reference) and TFLM {versions['latest']} (latest) "
              f"{agree}{where}")
    if report["bit_exact"]:
        print(f"tinykd: bit-exact: every output byte of {len(inputs):,} vectors equals {report['reference']}'s")
        return 0
    failed = next(r for r in report["runtimes"] if not r["cross_check"] and r["byte_equal"] != r["vectors"])
    first = failed.get("first_mismatch", {})
    print(f"tinykd: error: {failed['runtime']} differs from {report['reference']} on "
          f"{failed['vectors'] - failed['byte_equal']:,} "
          f"vectors; first: vector {first.get('vector')}, output {first.get('output_index')} "
          f"(TFLM {first.get('expected')}, got {first.get('got')})", file=sys.stderr)
    layer = report.get("first_divergent_layer")
    if layer:
        print(f"tinykd: the C backend first differs at layer {layer['layer']} ({layer['op']}), output byte "
              f"{layer['output_index']}: TFLM {layer['expected']}, C {layer['got']}", file=sys.stderr)
    else:
        print("tinykd: the C backend on the host agrees with TFLM layer by layer on that vector: the target's "
              "build differs", file=sys.stderr)
    return 1


COMMANDS = {"verify": cmd_verify}
