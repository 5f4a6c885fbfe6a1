"""The counting command: k-fold cross-validation of the small-data recipe, then the models."""

from __future__ import annotations

from pathlib import Path

from tinykd.cli.common import config_from_args, pipeline_options
from tinykd.core.errors import TinykdError


def add_parsers(sub) -> None:
    p = sub.add_parser("count", help="people counting from few pictures: k-fold CV of the recipe, then the models",
                       description="Train the counting recipe on DIR (images + count.json; classes 0-3 people and "
                                   "4+): strong augmentation, teacher and distilled student, evaluated by k-fold "
                                   "cross-validation (exact-count accuracy, mean absolute error, against always "
                                   "predicting the mean count); then the teacher, student and INT8 student on all "
                                   "labelled images in runs/NAME/.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder with the images and count.json")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    pipeline_options(p, training=False)


def cmd_count(args) -> int:
    from tinykd.train import pipeline
    from tinykd.train.count import counting_recipe, cross_validate_run

    if args.folds < 2:
        raise TinykdError(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    args.dataset = f"count:{args.folder}"
    config = counting_recipe(config_from_args(args))
    result, path = cross_validate_run(config, args.folds)
    print(f"\ntinykd: {args.folds}-fold cross-validation on {result['images']} labelled images ({path})")
    print(f"  {'':<22} {'exact count':>11} {'MAE':>6}")
    for who, label in (("teacher", "teacher"), ("student", "distilled student"),
                       ("mean_baseline", "always the mean count")):
        m = result["mean"][who]
        print(f"  {label:<22} {m['exact_accuracy']:>11.1%} {m['mae']:>6.2f}")
    print(f"tinykd: INT8 student on all labelled images: {pipeline.int8_model(config)}")
    return 0


COMMANDS = {"count": cmd_count}
