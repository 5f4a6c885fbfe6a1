"""Commands of the training pipeline: run, train, distill, quantize, evaluate, models, predict, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinykd.cli.common import EXIT_USAGE, config_from_args, distribute_option, pipeline_options
from tinykd.core.errors import TinykdError


def add_parsers(sub) -> None:
    p = sub.add_parser("run", help="the whole pipeline: teacher, student (KD and no-KD), INT8, evaluation",
                       description="Run every stage of the pipeline into runs/NAME/, skipping stages whose "
                                   "artifacts already exist (use --force to redo them).")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="pipeline file (same as --config)")
    pipeline_options(p, training=False)
    distribute_option(p)

    p = sub.add_parser("train", help="train the teacher -> runs/NAME/teacher.keras",
                       description="Train the teacher with label-smoothed cross-entropy, Adam, L2 and light "
                                   "augmentation; keep the epoch with the best validation accuracy.")
    pipeline_options(p)
    p.add_argument("--label-smoothing", type=float, help="label smoothing epsilon (default: 0.05)")

    p = sub.add_parser("distill", help="train the student by knowledge distillation -> runs/NAME/student.keras",
                       description="Train the student on alpha * CE + (1 - alpha) * T^2 * KL against the "
                                   "teacher's logits (several teachers are averaged).")
    pipeline_options(p)
    p.add_argument("--teacher", action="append", type=Path, metavar="MODEL",
                   help="teacher model, .keras or .onnx; repeat for an ensemble (default: the run's teacher "
                        "plus teacher.extra from the pipeline file)")
    p.add_argument("--depth", type=int, help="extra blocks at the student's last resolution (default: 0; see "
                   "tinykd models)")
    p.add_argument("--alpha", type=float, help="weight of the label loss; 1 - alpha weighs KD (default: 0.5)")
    p.add_argument("--temperature", type=float, help="softmax temperature T (default: 3)")
    p.add_argument("--no-kd", action="store_true",
                   help="train the same student on labels alone -> runs/NAME/student_nokd.keras")

    p = sub.add_parser("quantize", help="Keras model -> full-integer INT8 .tflite (and float32 .tflite)",
                       description="Convert to full-integer INT8 (int8 input and output) with a representative "
                                   "set, and measure the INT8 model's test accuracy in the TFLite interpreter.")
    p.add_argument("model", nargs="?", type=Path, help="a .keras model (default: the run's student.keras)")
    p.add_argument("--samples", type=int, help="representative images, at most (default: 500)")
    pipeline_options(p, training=False)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy, confusion matrix and curves of a model",
                       description="Evaluate a .keras or .tflite model on the test split of its dataset (from "
                                   "the run's dataset.json, or --dataset). Writes summary.json and PNG plots.")
    p.add_argument("model", type=Path, help="a .keras or .tflite model")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: <model dir>/eval/<model>/)")
    pipeline_options(p, training=False)

    sub.add_parser("models", help="list the named architectures with their parameter counts")

    p = sub.add_parser("predict", help="class and probabilities of a .keras or .tflite model for image files",
                       description="Predict the class of each image with the model's own preprocessing (input "
                                   "size, channels, [0, 1] scaling, INT8 quantization for .tflite). An unreadable "
                                   "image is reported and skipped; the exit code is then 2.")
    p.add_argument("model", type=Path, help="a .keras or .tflite model")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to list per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("export", help="a .keras model as ONNX (float32, or INT8 with --int8)",
                       description="Convert a .keras teacher or student to ONNX for onnxruntime: NHWC float "
                                   "images in, logits out, any batch size. --int8 quantizes it dynamically "
                                   "(int8 weights, activations quantized at run time).")
    p.add_argument("model", type=Path, help="a .keras model")
    p.add_argument("--format", default="onnx", metavar="FORMAT", help="output format: onnx (the default)")
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="output file (default: <model>.onnx, or <model>_int8.onnx, beside the model)")
    p.add_argument("--int8", action="store_true", help="INT8 ONNX through onnxruntime's dynamic quantization")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def cmd_run(args) -> int:
    from tinykd.train import pipeline

    config = config_from_args(args)
    summary = pipeline.run(config, args.force)
    print(f"\ntinykd: run {summary['name']} finished in {summary['total_seconds'] / 60:.1f} min; "
          f"results in {config.layout.summary}")
    print(f"  teacher                    test accuracy {summary['teacher_test_accuracy']:.2%}")
    kd, plain = config.layout.student_stem(True), config.layout.student_stem(False)
    for label in (kd, plain):
        if label in summary:
            r = summary[label]
            print(f"  {label:<13} INT8 {r['int8_bytes']:>7,} B  test accuracy {r['int8_test_accuracy']:.2%} "
                  f"(float {r['keras_test_accuracy']:.2%})")
    if "kd_gain_int8" in summary:
        print(f"  KD gain (INT8)             {summary['kd_gain_int8'] * 100:+.2f} points; a KD epoch took "
              f"{summary[kd]['seconds_per_epoch'] / summary[plain]['seconds_per_epoch']:.2f}x a plain one")
    return 0


def cmd_train(args) -> int:
    from tinykd.train import pipeline

    config = config_from_args(args)
    pipeline.train_stage(config, pipeline.lazy_data(config), args.force)
    return 0


def cmd_distill(args) -> int:
    from tinykd.train import pipeline

    config = config_from_args(args)
    pipeline.distill_stage(config, pipeline.lazy_data(config), args.force, kd=not args.no_kd,
                           teachers=args.teacher)
    return 0


def cmd_quantize(args) -> int:
    from tinykd.train import pipeline

    config = config_from_args(args)
    model = args.model or config.layout.student()
    if model.suffix != ".keras":
        raise TinykdError(f"{model}: quantize takes a .keras model")
    config = pipeline.config_for_model(model, config, dataset_given=args.dataset is not None)
    pipeline.quantize_stage(config, pipeline.lazy_data(config, record=False), model, args.force)
    return 0


def cmd_evaluate(args) -> int:
    from tinykd.train import pipeline

    config = pipeline.config_for_model(args.model, config_from_args(args), dataset_given=args.dataset is not None)
    summary = pipeline.evaluate_stage(args.model, pipeline.load_data(config, record=False), args.out)
    print(f"tinykd: {pipeline.describe_evaluation(summary)}")
    return 0


def cmd_models(args) -> int:
    from tinykd.train.models import ARCHITECTURES, build_model

    print(f"{'name':<16} {'role':<8} {'input':<10} {'parameters':>10}  description")
    for arch in ARCHITECTURES.values():
        shape = arch.example_input
        params = build_model(arch.name, shape, 10).count_params()
        deepens = f"; each depth adds {arch.deepens}" if arch.deepens else ""
        print(f"{arch.name:<16} {arch.role:<8} {'x'.join(map(str, shape)):<10} {params:>10,}  {arch.summary}{deepens}")
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


def cmd_export(args) -> int:
    from tinykd.train.export import export_model

    path = export_model(args.model, args.format, args.out, args.int8, args.force)
    print(f"tinykd: wrote {path} ({'INT8' if args.int8 else 'float32'} ONNX, {path.stat().st_size:,} bytes)")
    return 0


COMMANDS = {"run": cmd_run, "train": cmd_train, "distill": cmd_distill, "quantize": cmd_quantize, "evaluate": cmd_evaluate, "models": cmd_models, "predict": cmd_predict,
            "export": cmd_export}
