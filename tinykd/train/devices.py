"""Where training runs: TensorFlow's default device, or every device at once with tf.distribute.

`mirrored` copies the model onto each GPU (each logical CPU device when there is no GPU, as in tests),
splits every batch between them and sums their gradients: the batch size stays the global one.
"""

from __future__ import annotations

import contextlib
import functools
import logging

from tinykd.core.errors import TinykdError

log = logging.getLogger(__name__)

STRATEGIES = ("", "mirrored")


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise TinykdError(f"unknown strategy {name!r}; known: \"\" (one device), mirrored")


@contextlib.contextmanager
def training_scope(name: str):
    """Build, compile and train the models made inside this block with the named strategy."""
    check_strategy(name)
    if not name:
        yield
        return
    import tensorflow as tf

    devices = tuple(d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    if len(devices) < 2:
        log.warning(f"mirrored training on one device ({devices[0]}) gains nothing; it needs several GPUs")
    log.info(f"training on {len(devices)} devices: {', '.join(devices)}")
    with _mirrored(devices).scope():
        yield


@functools.cache
def _mirrored(devices: tuple[str, ...]):
    """One strategy per process: a second MirroredStrategy's collective ops reuse the first one's
    instance keys, and the two clash (teacher then student in one `tinykd run`)."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices))
