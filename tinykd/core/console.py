"""What reaches the terminal: tinykd's own log lines (configured once, by the command line), and native
libraries' chatter (TensorFlow, the TFLite converter and interpreter) kept off it."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import warnings

LOGGER = "tinykd"
"""The library logs under tinykd.<module> (logging.getLogger(__name__)); this is their parent."""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (so redirections and test captures see it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _PlainLines(logging.Formatter):
    """`tinykd: message`, with the level named unless it is INFO: `tinykd: warning: message`."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{LOGGER}: {level}{super().format(record)}"


def configure_logging(level: int = logging.INFO) -> None:
    """Show tinykd's log lines from `level` up on stderr, as plain lines. Calling it again replaces the
    previous setting (the command line calls it on every run)."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_PlainLines("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


@contextlib.contextmanager
def quiet():
    """Silence Python warnings, stdout and the C-level stderr (fd 2) for the duration of the block, and
    undo handlers it adds to the root logger (TensorFlow's converter adds one, which would print every
    tinykd line a second time).

    Errors still surface as Python exceptions; only informational printing is dropped.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    root_handlers = list(logging.root.handlers)
    try:
        with open(os.devnull, "wb") as devnull, warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        logging.root.handlers[:] = root_handlers


def quiet_tensorflow() -> None:
    """TensorFlow's start-up chatter (CUDA probing, CPU features, retracing notes) is noise for a CLI
    user: import it once with the C-level stderr silenced, and keep its Python logger to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with quiet():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")


def duration(seconds: float) -> str:
    """4 s, 2.5 min, 1.2 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class Progress:
    """Long work counted in steps: a line redrawn in place on a terminal, else a log line per tenth (logs
    and CI), each with the time left at the rate so far. Silent when INFO lines are not shown (-q)."""

    def __init__(self, what: str, total: int, unit: str, logger: logging.Logger):
        self.what, self.total, self.unit, self.log = what, total, unit, logger
        self.started, self.reported = time.perf_counter(), 0
        self.terminal = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self.log.isEnabledFor(logging.INFO) or self.total <= 0:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - done) if done else 0.0
        line = f"{self.what}: {done:,}/{self.total:,} {self.unit}, {duration(left)} left"
        if done >= self.total:
            line = f"{self.what}: {self.total:,} {self.unit} in {duration(elapsed)}"
        if self.terminal:
            sys.stderr.write(f"\r{LOGGER}: {line}\033[K" + ("\n" if done >= self.total else ""))
            sys.stderr.flush()
        elif done >= self.total or done * 10 // self.total > self.reported * 10 // self.total:
            self.log.info(line)
        self.reported = done
