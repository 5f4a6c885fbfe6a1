"""What the commands share: the pipeline options and the pipeline file with the command line's overrides."""

from __future__ import annotations

import argparse
import dataclasses

EXIT_USAGE = 2


def pipeline_options(parser: argparse.ArgumentParser, training: bool = True) -> None:
    """Options that override the pipeline file (tinykd.toml in the current directory, if present)."""
    g = parser.add_argument_group("pipeline")
    g.add_argument("--config", metavar="FILE", help="pipeline file (default: ./tinykd.toml if it exists, "
                   "else the built-in Fashion-MNIST 48x48 pipeline)")
    g.add_argument("--name", help="run name: artifacts go to RUNS_DIR/NAME (default: fashion)")
    g.add_argument("--runs-dir", help="folder of runs (default: runs)")
    g.add_argument("--seed", type=int, help="random seed for splits, initialisation and shuffling (default: 0)")
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", help="fashion_mnist, mnist, cifar10, digits, folder:PATH, count:PATH "
                   "or npz:PATH (features of any shape; --image-size and --channels do not apply)")
    g.add_argument("--data-dir", metavar="DIR", help="look for dataset files here first "
                   "(then $TINYKD_DATA, /usr/share/datasets, ~/.keras/datasets)")
    g.add_argument("--image-size", type=int, metavar="PX", help="square image side the models see (default: 48)")
    g.add_argument("--channels", type=int, choices=(1, 3), help="1 = grayscale, 3 = RGB (default: 1)")
    g.add_argument("--limit", type=int, metavar="N", help="use at most N training images (quick runs)")
    if training:
        g = parser.add_argument_group("training")
        distribute_option(g)
        g.add_argument("--architecture", help="model architecture (see `tinykd models`)")
        g.add_argument("--width", type=float, help="width multiplier of the architecture (default: 1.0)")
        g.add_argument("--epochs", type=int, help="training epochs")
        g.add_argument("--batch-size", type=int, help="batch size (default: 128)")
        g.add_argument("--learning-rate", type=float, help="Adam learning rate")
        g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random pad+crop, brightness and contrast (teacher default: on; student: off)")
    parser.add_argument("--force", action="store_true", help="replace existing artifacts (build: also write into "
                        "a non-empty folder that tinykd did not make)")


def distribute_option(group) -> None:
    group.add_argument("--distribute", metavar="STRATEGY",
                       help="mirrored: train on all GPUs at once, each batch split between them (default: one device)")


def config_from_args(args):
    """The pipeline file with the command line's overrides applied."""
    from tinykd.core.config import config_from_dict, load_config

    config = load_config(getattr(args, "config_file", None) or args.config)
    overrides = [
        (config, {"name": args.name, "runs_dir": args.runs_dir, "seed": args.seed,
                  "distribute": getattr(args, "distribute", None)}),
        (config.data, {"dataset": args.dataset, "data_dir": args.data_dir, "image_size": args.image_size,
                       "channels": args.channels, "limit": args.limit}),
    ]
    section = {"train": config.teacher, "distill": config.student}.get(args.command)
    if section is not None:
        overrides.append((section, {key: getattr(args, key, None) for key in
                                    ("architecture", "width", "epochs", "batch_size", "learning_rate",
                                     "augment", "label_smoothing", "depth", "alpha", "temperature")}))
    if args.command == "quantize":
        overrides.append((config.quantize, {"representative_samples": args.samples}))
    if args.command == "tune":
        overrides.append((config.tune, {"trials": args.trials, "max_ms": args.max_ms}))
    if args.command == "verify":
        overrides.append((config.verify, {"tflm": args.tflm}))
    for target, values in overrides:
        for key, value in values.items():
            if value is not None:
                setattr(target, key, value)
    return config_from_dict(dataclasses.asdict(config), "command line")  # re-validate the overrides
