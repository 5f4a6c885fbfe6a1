"""The `tinykd` command: argument parsing and printing only; the work is in the pipeline modules."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from tinykd.core.errors import TinykdError

EXIT_USAGE = 2
SMALL_DATA_BATCH = 16
"""Batch size of the counting recipe (at most): with a few hundred images, 128 would be one step an epoch."""


def _common(parser: argparse.ArgumentParser, training: bool = True) -> None:
    """Options that override the pipeline file (tinykd.toml in the current directory, if present)."""
    g = parser.add_argument_group("pipeline")
    g.add_argument("--config", metavar="FILE", help="pipeline file (default: ./tinykd.toml if it exists, "
                   "else the built-in Fashion-MNIST 48x48 pipeline)")
    g.add_argument("--name", help="run name: artifacts go to RUNS_DIR/NAME (default: fashion)")
    g.add_argument("--runs-dir", help="folder of runs (default: runs)")
    g.add_argument("--seed", type=int, help="random seed for splits, initialisation and shuffling (default: 0)")
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", help="fashion_mnist, mnist, cifar10, digits, folder:PATH or count:PATH")
    g.add_argument("--data-dir", metavar="DIR", help="look for dataset files here first "
                   "(then $TINYKD_DATA, /usr/share/datasets, ~/.keras/datasets)")
    g.add_argument("--image-size", type=int, metavar="PX", help="square image side the models see (default: 48)")
    g.add_argument("--channels", type=int, choices=(1, 3), help="1 = grayscale, 3 = RGB (default: 1)")
    g.add_argument("--limit", type=int, metavar="N", help="use at most N training images (quick runs)")
    if training:
        g = parser.add_argument_group("training")
        g.add_argument("--architecture", help="model architecture (see `tinykd models`)")
        g.add_argument("--width", type=float, help="width multiplier of the architecture (default: 1.0)")
        g.add_argument("--epochs", type=int, help="training epochs")
        g.add_argument("--batch-size", type=int, help="batch size (default: 128)")
        g.add_argument("--learning-rate", type=float, help="Adam learning rate")
        g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random pad+crop, brightness and contrast (teacher default: on; student: off)")
    parser.add_argument("--force", action="store_true", help="replace existing artifacts (build: also write into "
                        "a non-empty folder that tinykd did not make)")


def build_parser() -> argparse.ArgumentParser:
    from tinykd.verify.compare import CHECK_VECTORS

    parser = argparse.ArgumentParser(
        prog="tinykd",
        description="From a dataset to an INT8 model for a microcontroller: train a teacher CNN, "
                    "distill it into a small student, quantize the student to full-integer INT8 TFLite.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="the whole pipeline: teacher, student (KD and no-KD), INT8, evaluation",
                       description="Run every stage of the pipeline into runs/NAME/, skipping stages whose "
                                   "artifacts already exist (use --force to redo them).")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="pipeline file (same as --config)")
    _common(p, training=False)

    p = sub.add_parser("train", help="train the teacher -> runs/NAME/teacher.keras",
                       description="Train the teacher with label-smoothed cross-entropy, Adam, L2 and light "
                                   "augmentation; keep the epoch with the best validation accuracy.")
    _common(p)
    p.add_argument("--label-smoothing", type=float, help="label smoothing epsilon (default: 0.05)")

    p = sub.add_parser("distill", help="train the student by knowledge distillation -> runs/NAME/student.keras",
                       description="Train the student on alpha * CE + (1 - alpha) * T^2 * KL against the "
                                   "teacher's logits (several teachers are averaged).")
    _common(p)
    p.add_argument("--teacher", action="append", type=Path, metavar="MODEL",
                   help="teacher model, .keras or .onnx; repeat for an ensemble (default: the run's teacher "
                        "plus teacher.extra from the pipeline file)")
    p.add_argument("--alpha", type=float, help="weight of the label loss; 1 - alpha weighs KD (default: 0.5)")
    p.add_argument("--temperature", type=float, help="softmax temperature T (default: 3)")
    p.add_argument("--no-kd", action="store_true",
                   help="train the same student on labels alone -> runs/NAME/student_nokd.keras")

    p = sub.add_parser("quantize", help="Keras model -> full-integer INT8 .tflite (and float32 .tflite)",
                       description="Convert to full-integer INT8 (int8 input and output) with a representative "
                                   "set, and measure the INT8 model's test accuracy in the TFLite interpreter.")
    p.add_argument("model", nargs="?", type=Path, help="a .keras model (default: the run's student.keras)")
    p.add_argument("--samples", type=int, help="representative images, at most (default: 500)")
    _common(p, training=False)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy, confusion matrix and curves of a model",
                       description="Evaluate a .keras or .tflite model on the test split of its dataset (from "
                                   "the run's dataset.json, or --dataset). Writes summary.json and PNG plots.")
    p.add_argument("model", type=Path, help="a .keras or .tflite model")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: <model dir>/eval/<model>/)")
    _common(p, training=False)

    sub.add_parser("models", help="list the named architectures with their parameter counts")

    p = sub.add_parser("predict", help="class and probabilities of a .keras or .tflite model for image files",
                       description="Predict the class of each image with the model's own preprocessing (input "
                                   "size, channels, [0, 1] scaling, INT8 quantization for .tflite). An unreadable "
                                   "image is reported and skipped; the exit code is then 2.")
    p.add_argument("model", type=Path, help="a .keras or .tflite model")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to list per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("report", help="HTML and Markdown report of a run, with plots, fit and verification",
                       description="Write runs/NAME/report.html (self-contained: images embedded, opens offline) "
                                   "and report.md from the run's results, the bundles' manifests and verify.json.")
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR", help="a run folder (default: runs/NAME "
                   "of the pipeline file)")
    p.add_argument("--builds", type=Path, default=Path("build"), metavar="DIR",
                   help="folder of bundles to include (default: build)")
    _common(p, training=False)

    p = sub.add_parser("label", help="a local web page to count the people in unlabelled images (count.json)",
                       description="Serve a page on 127.0.0.1 that shows each image whose count in DIR/count.json "
                                   "is null and saves every answer at once (atomically, keeping count.json.bak). "
                                   "Stop it with Ctrl-C.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder with the images and count.json")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765)")

    p = sub.add_parser("count", help="people counting from few pictures: k-fold CV of the recipe, then the models",
                       description="Train the counting recipe on DIR (images + count.json; classes 0-3 people and "
                                   "4+): strong augmentation, teacher and distilled student, evaluated by k-fold "
                                   "cross-validation (exact-count accuracy, mean absolute error, against always "
                                   "predicting the mean count); then the teacher, student and INT8 student on all "
                                   "labelled images in runs/NAME/.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder with the images and count.json")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    _common(p, training=False)

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
                       description="Write a bundle of sources for one board: the model as an aligned C array, an "
                                   "op resolver with exactly the model's ops, the tensor arena size, RIOT and "
                                   "Zephyr glue and manifest.json. Exits 1 when the model does not fit the board.")
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
    p.add_argument("--no-check", action="store_true",
                   help="do not check the C backend before writing the bundle (by default it is compiled for "
                        "the host with the board's kernel variant and must give TFLM's bytes on "
                        f"{CHECK_VECTORS} seeded random vectors, or nothing is written)")
    p.add_argument("--measure", action="store_true",
                   help="also measure the smallest arena the host TFLM interpreter accepts (64-bit host; a "
                        "32-bit board needs somewhat less) and record it in manifest.json")
    _common(p, training=False)

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
    _common(p, training=False)
    return parser


def _config(args):
    """The pipeline file with the command line's overrides applied."""
    from tinykd.core.config import config_from_dict, load_config

    config = load_config(getattr(args, "config_file", None) or args.config)
    overrides = [
        (config, {"name": args.name, "runs_dir": args.runs_dir, "seed": args.seed}),
        (config.data, {"dataset": args.dataset, "data_dir": args.data_dir, "image_size": args.image_size,
                       "channels": args.channels, "limit": args.limit}),
    ]
    section = {"train": config.teacher, "distill": config.student}.get(args.command)
    if section is not None:
        overrides.append((section, {key: getattr(args, key, None) for key in
                                    ("architecture", "width", "epochs", "batch_size", "learning_rate",
                                     "augment", "label_smoothing", "alpha", "temperature")}))
    if args.command == "quantize":
        overrides.append((config.quantize, {"representative_samples": args.samples}))
    if args.command == "verify":
        overrides.append((config.verify, {"tflm": args.tflm}))
    for target, values in overrides:
        for key, value in values.items():
            if value is not None:
                setattr(target, key, value)
    return config_from_dict(dataclasses.asdict(config), "command line")  # re-validate the overrides


def cmd_run(args) -> int:
    from tinykd.train import pipeline

    pipeline.run(_config(args), args.force)
    return 0


def cmd_train(args) -> int:
    from tinykd.train import pipeline

    config = _config(args)
    pipeline.train_stage(config, pipeline.load_data(config), args.force)
    return 0


def cmd_distill(args) -> int:
    from tinykd.train import pipeline

    config = _config(args)
    pipeline.distill_stage(config, pipeline.load_data(config), args.force, kd=not args.no_kd,
                           teachers=args.teacher)
    return 0


def cmd_quantize(args) -> int:
    from tinykd.train import pipeline

    config = _config(args)
    model = args.model or pipeline.student_path(config)
    if model.suffix != ".keras":
        raise TinykdError(f"{model}: quantize takes a .keras model")
    config = pipeline.config_for_model(model, config, dataset_given=args.dataset is not None)
    pipeline.quantize_stage(config, pipeline.load_data(config, record=False), model, args.force)
    return 0


def cmd_evaluate(args) -> int:
    from tinykd.train import pipeline

    config = pipeline.config_for_model(args.model, _config(args), dataset_given=args.dataset is not None)
    pipeline.evaluate_stage(args.model, pipeline.load_data(config, record=False), args.out)
    return 0


def cmd_models(args) -> int:
    from tinykd.train.models import ARCHITECTURES, build_model

    print(f"{'name':<16} {'role':<8} {'input':<10} {'parameters':>10}  description")
    for arch in ARCHITECTURES.values():
        shape = (32, 32, 3) if arch.name.startswith("cifar") else (48, 48, 1)
        params = build_model(arch.name, shape, 10).count_params()
        print(f"{arch.name:<16} {arch.role:<8} {'x'.join(map(str, shape)):<10} {params:>10,}  {arch.summary}")
    return 0


def cmd_predict(args) -> int:
    from tinykd.train.predict import predict_images

    if args.top < 1:
        raise TinykdError(f"--top {args.top}: list at least one class")
    results = predict_images(args.model, args.images, args.top)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"tinykd: error: {r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" not in r:
                ranked = ", ".join(f"{name} {p:.1%}" for name, p in r["top"])
                print(f"{r['image']}: {r['class']} ({r['probability']:.1%})   [{ranked}]")
    return EXIT_USAGE if failed else 0


def cmd_report(args) -> int:
    from tinykd.ui.report import write_report

    html, markdown = write_report(args.run_dir or _config(args).run_dir, args.builds)
    print(f"tinykd: wrote {html} and {markdown}")
    return 0


def cmd_label(args) -> int:
    from tinykd.ui.label import make_server

    server = make_server(args.folder, args.port)
    host, port = server.server_address[:2]
    print(f"tinykd: labelling {args.folder}/count.json at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("tinykd: stopped; every answer is already saved")
    finally:
        server.server_close()
    return 0


def cmd_count(args) -> int:
    from tinykd.train import pipeline
    from tinykd.core.artifacts import write_json
    from tinykd.train.count import cross_validate

    if args.folds < 2:
        raise TinykdError(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    args.dataset = f"count:{args.folder}"
    config = _config(args)
    config.teacher.augment = config.student.augment = "strong"
    for section in (config.teacher, config.student):  # a few hundred images: small batches, more steps
        section.batch_size = min(section.batch_size, SMALL_DATA_BATCH)
    dataset = pipeline.load_data(config)
    result = cross_validate(config, dataset, args.folds)
    write_json(config.run_dir / "count_cv.json", result)
    print(f"\ntinykd: {args.folds}-fold cross-validation on {result['images']} labelled images "
          f"({config.run_dir / 'count_cv.json'})")
    print(f"  {'':<22} {'exact count':>11} {'MAE':>6}")
    for who, label in (("teacher", "teacher"), ("student", "distilled student"),
                       ("mean_baseline", "always the mean count")):
        m = result["mean"][who]
        print(f"  {label:<22} {m['exact_accuracy']:>11.1%} {m['mae']:>6.2f}")
    print(f"tinykd: INT8 student on all labelled images: {pipeline.int8_model(config)}")
    return 0


def cmd_inspect(args) -> int:
    from tinykd.tflite.reader import read_model

    summary = read_model(args.model).summary()
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

    boards = all_boards()
    if args.json:
        print(json.dumps([dataclasses.asdict(b) for b in boards], indent=2))
        return 0
    print(f"{'name':<20} {'cpu':<14} {'clock':>8} {'flash':>9} {'RAM':>9} {'kernels':<9} {'qemu':<11} description")
    for b in boards:
        clock = f"{b.clock_hz / 1e6:.0f} MHz" if b.clock_hz else "-"
        print(f"{b.name:<20} {b.cpu:<14} {clock:>8} {_kib(b.flash_bytes):>9} {_kib(b.ram_bytes):>9} "
              f"{b.kernels:<9} {b.qemu_machine or '-':<11} {b.description}")
    return 0


def _kib(n: int) -> str:
    return f"{n / 1048576:g} MB" if n >= 1048576 else f"{n / 1024:g} KB"


def cmd_build(args) -> int:
    from tinykd.deploy.boards import build_variant, load_board
    from tinykd.deploy.bundle import make_bundle, write_bundle
    from tinykd.deploy.tflm.codegen import Names, default_array_names
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import CHECK_VECTORS, describe_check_failure

    board = load_board(args.board)
    model_paths = args.model
    if model_paths is None:
        from tinykd.train import pipeline

        _quiet_tensorflow()
        model_paths = [pipeline.int8_model(_config(args))]
    if args.array_name and len(args.array_name) != len(model_paths):
        raise TinykdError(f"{len(args.array_name)} --array-name for {len(model_paths)} --model: give one per model")
    array_names = args.array_name or default_array_names([path.name for path in model_paths])
    names = Names(array_names[0], args.namespace, args.riot_module)
    names.check()
    model_path = model_paths[0]
    out_dir = args.out or Path("build") / board.name
    if args.measure:
        print("tinykd: measuring the smallest arena the host TFLM interpreter accepts "
              "(bisection, one child process per trial)")
    models = [read_model(path) for path in model_paths]
    if not args.no_check and len(models) == 1:
        print(f"tinykd: checking the C backend ({build_variant(board)} kernels) against TFLM on the host, "
              f"{CHECK_VECTORS} random vectors")
    bundle = make_bundle(models, board, names, measure=args.measure, check_c_backend=not args.no_check,
                         array_names=array_names)
    print(f"tinykd: {', '.join(map(str, model_paths))} on {board.name} ({board.cpu}"
          f"{f', {board.clock_hz / 1e6:.0f} MHz' if board.clock_hz else ''})")
    print(bundle.fit.table())
    c_backend = bundle.manifest["c_backend"]
    if c_backend["available"]:
        print(f"tinykd: C backend (c/): {c_backend['flash_bytes']:,} bytes of flash, {c_backend['ram_bytes']:,} "
              f"bytes of RAM, compiled for {board.name}")
    else:
        print(f"tinykd: no C backend in this bundle: {c_backend['reason']}")
    check = c_backend.get("check", {})
    if check.get("passed") is False:
        print(f"tinykd: error: {model_path.name}: {describe_check_failure(check)}; nothing written (a bug in "
              "tinykd's kernels: please report it with the model; --no-check writes the bundle anyway)",
              file=sys.stderr)
        return 1
    if check.get("passed"):
        print(f"tinykd: C backend checked: {check['vectors']} random vectors byte-equal with {check['reference']}")
    for rtos, pinned in bundle.manifest["tflm"]["pinned_by"].items():
        if pinned["problem"]:
            print(f"tinykd: warning: {pinned['pin']} {pinned['problem']}; quantize with one weight scale per "
                  "dense layer (the pipeline's default, quantize.per_channel_dense = false)", file=sys.stderr)
    arena = bundle.manifest["arena"]
    print(f"tinykd: tensor arena: {arena['target_bytes']:,} bytes with TFLM's reference kernels "
          f"(kTensorArenaSize), {arena['cmsis_nn']['target_bytes']:,} with CMSIS-NN's (kTensorArenaSizeCmsisNn)")
    if "tflm_measured_bytes" in arena:
        print(f"tinykd: on this 64-bit host the Python TFLM interpreter needs an arena of "
              f"{arena['tflm_measured_bytes']:,} bytes (a plain 64-bit TFLM build: {arena['host_estimated_bytes']:,})")
    if not bundle.fit.fits:
        over = [what for what, ok in (("flash", bundle.fit.fits_flash), ("RAM", bundle.fit.fits_ram)) if not ok]
        print(f"tinykd: error: {', '.join(p.name for p in model_paths)} does not fit {board.name}: not enough "
              f"{' and '.join(over)}; "
              "nothing written", file=sys.stderr)
        return 1
    write_bundle(bundle.files, out_dir, force=args.force)
    print(f"tinykd: wrote {len(bundle.files)} files to {out_dir}/ (manifest.json lists them)")
    return 0


def cmd_verify(args) -> int:
    from tinykd.tflite import tflm_host
    from tinykd.core.artifacts import write_json
    from tinykd.deploy.boards import load_board
    from tinykd.deploy.bundle import MODEL_FILE, make_bundle, read_manifest, write_bundle
    from tinykd.tflite.reader import read_model
    from tinykd.verify.compare import quantized_images, random_inputs, report_table, verify_bundle

    board = load_board(args.board)
    if args.vectors < 1:
        raise TinykdError(f"--vectors {args.vectors}: give at least one vector")
    if args.tflm:
        tflm_host.resolve(args.tflm)  # a bad name is the option's error, before any work
    tflm = _config(args).verify.tflm
    target = args.target or ("qemu" if board.qemu_machine else "native")
    if args.bundle:
        if "models" in read_manifest(args.bundle):
            raise TinykdError(f"{args.bundle}: a bundle of several models has no C backend to verify; verify each "
                              "model with --model")
        bundle_dir, model = args.bundle, read_model(args.bundle / MODEL_FILE)
        config = None
    else:
        model_path = args.model
        if model_path is None:
            from tinykd.train import pipeline

            _quiet_tensorflow()
            model_path = pipeline.int8_model(_config(args))
        model = read_model(model_path)
        bundle = make_bundle(model, board, check_c_backend=False)  # verify compares every output itself
        if not bundle.fit.fits:
            raise TinykdError(f"{model_path.name} does not fit {board.name} (see tinykd build --board {board.name})")
        bundle_dir = args.out or Path("build") / board.name
        write_bundle(bundle.files, bundle_dir, force=args.force)
        config = model_path.parent / "dataset.json"
    if config is not None and config.exists():
        from tinykd.train import pipeline

        _quiet_tensorflow()
        dataset = pipeline.load_data(pipeline.config_for_model(model.path, _config(args), False), record=False)
        inputs = quantized_images(model, dataset.x_test[:args.vectors])
        source = f"{dataset.name} test images"
    else:
        inputs, source = random_inputs(model, args.vectors), "seeded random int8 vectors"
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


COMMANDS = {"run": cmd_run, "train": cmd_train, "distill": cmd_distill, "quantize": cmd_quantize,
            "evaluate": cmd_evaluate, "models": cmd_models, "inspect": cmd_inspect, "boards": cmd_boards,
            "build": cmd_build, "verify": cmd_verify, "predict": cmd_predict, "report": cmd_report, "label": cmd_label, "count": cmd_count}
NEEDS_TENSORFLOW = {"run", "train", "distill", "quantize", "evaluate", "models", "predict", "count"}


def _quiet_tensorflow() -> None:
    """TensorFlow's start-up chatter (CUDA probing, CPU features, retracing notes) is noise for a CLI
    user: import it once with the C-level stderr silenced, and keep its Python logger to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from tinykd.core.console import quiet

    with quiet():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in NEEDS_TENSORFLOW:
            _quiet_tensorflow()
        return COMMANDS[args.command](args)
    except TinykdError as exc:
        if args.debug:
            raise
        print(f"tinykd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tinykd: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line unless --debug
        if args.debug:
            raise
        print(f"tinykd: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
