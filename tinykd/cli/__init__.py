"""The `tinykd` command: argument parsing and printing only; the work is in the library's subpackages."""

from __future__ import annotations

import argparse
import logging
import sys

from tinykd.cli import count, deploy, train, tune, ui, verify
from tinykd.cli.common import EXIT_USAGE
from tinykd.core.console import configure_logging, quiet_tensorflow
from tinykd.core.errors import TinykdError

GROUPS = (train, tune, ui, count, deploy, verify)
"""The command modules, in the order their commands are listed by --help."""
COMMANDS = {name: command for group in GROUPS for name, command in group.COMMANDS.items()}
NEEDS_TENSORFLOW = {"run", "train", "distill", "quantize", "evaluate", "models", "predict", "export", "count",
                    "tune"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinykd",
        description="From a dataset to an INT8 model for a microcontroller: train a teacher CNN, "
                    "distill it into a small student, quantize the student to full-integer INT8 TFLite.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true", help="also show detail lines (debug level)")
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="show only warnings and errors, not progress (results are still printed)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        if args.command in NEEDS_TENSORFLOW:
            quiet_tensorflow()
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

