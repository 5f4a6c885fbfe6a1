"""The tune command: search for the best student on a board, or pick one of its trials."""

from __future__ import annotations

from tinykd.cli.common import config_from_args, pipeline_options
from tinykd.core.errors import TinykdError


def add_parsers(sub) -> None:
    p = sub.add_parser("tune", help="search for the best student on a board (KD, exact on-target costs)",
                       description="Multi-objective search (Optuna) over the students of the [tune] section: "
                                   "each trial trains a student by KD on the run teacher's cached logits, "
                                   "converts it to INT8, sizes its C backend for the board and counts its "
                                   "instructions per inference on the board's core in QEMU. Maximizes INT8 "
                                   "validation accuracy, minimizes instructions and RAM; keeps to the board's "
                                   "flash and RAM (and --max-ms). Artifacts in runs/NAME/tune/TRIAL/. The same "
                                   "command again resumes the search.")
    p.add_argument("--board", help="board profile the students must fit and are measured on (see tinykd boards)")
    p.add_argument("--trials", type=int, metavar="N", help="finished trials the study should have (default: "
                   "tune.trials, 20)")
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes on this machine (default: 1)")
    p.add_argument("--max-ms", type=float, metavar="T", help="time budget per inference at the board's clock, "
                   "as instructions / clock (default: tune.max_ms; 0: none)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage: default an SQLite file "
                   "runs/NAME/tune/study.db; postgresql://USER:PASSWORD@HOST/DB lets several machines share the study")
    p.add_argument("--study", metavar="NAME", help="study name in the storage (default: the run's name)")
    p.add_argument("--pick", nargs="+", metavar="TRIAL", help="make a finished trial's INT8 model the run's "
                   "student (for tinykd build and verify): a trial number, or best-under MS")
    pipeline_options(p, training=False)


def cmd_tune(args) -> int:
    from tinykd.train.tune import results
    from tinykd.train.tune.trial import size_text

    config = config_from_args(args)
    layout = config.layout
    if args.pick:
        trial = results.choose(layout, args.pick)
        path = results.pick(layout, trial)
        m = trial["metrics"]
        print(f"tinykd: trial {trial['trial']} ({trial['params']['architecture']}, {size_text(trial['params']['image_size'])} px) "
              f"is the run's student now: {path}; validation accuracy {m['accuracy']:.2%}, {m['instructions']:,} "
              f"instructions ({m['ms']:.3f} ms on {trial['board']}), RAM {m['ram_bytes']:,} B, flash "
              f"{m['flash_bytes']:,} B")
        return 0
    if not args.board:
        raise TinykdError("tune needs --board B (or --pick TRIAL to choose a finished trial)")
    if args.jobs < 1:
        raise TinykdError(f"--jobs {args.jobs}: run at least one worker")
    from tinykd.deploy.boards import load_board
    from tinykd.train.tune import search, study

    run = search.Search(config, load_board(args.board), args.storage or study.default_storage(layout),
                        args.study or config.name, config.tune.trials, args.jobs, config.tune.max_ms)
    record = search.run_search(run)
    print(results.front_table(record))
    print(f"tinykd: wrote {layout.tune / results.FRONT_FILE}; `tinykd tune --pick TRIAL` makes a trial the "
          "run's student")
    return 0


COMMANDS = {"tune": cmd_tune}
