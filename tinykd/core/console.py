"""Keeping native libraries' chatter (TensorFlow, the TFLite converter and interpreter) off the terminal."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings


@contextlib.contextmanager
def quiet():
    """Silence Python warnings, stdout and the C-level stderr (fd 2) for the duration of the block.

    Errors still surface as Python exceptions; only informational printing is dropped.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull, warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow() -> None:
    """TensorFlow's start-up chatter (CUDA probing, CPU features, retracing notes) is noise for a CLI
    user: import it once with the C-level stderr silenced, and keep its Python logger to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with quiet():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
