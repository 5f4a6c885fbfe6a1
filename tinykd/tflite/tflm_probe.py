"""Find the smallest tensor arena the real TFLM interpreter (PyPI `tflite-micro`) accepts for a model.

Run as `python -m tinykd.tflite.tflm_probe MODEL.tflite`; prints the byte count, or exits non-zero.
For some too-small arenas that interpreter crashes or hangs instead of raising an error, so every trial
runs in a forked child with a time limit and an address-space limit; this module imports nothing heavy,
so forking it is cheap and safe.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

TRIAL_SECONDS = 20
TRIAL_ADDRESS_SPACE = 4 << 30
LARGEST_ARENA = 1 << 30


def _trial(model: bytes, arena_size: int) -> bool:
    """Whether the interpreter allocates its tensors in `arena_size` bytes, tried in a child process."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            signal.alarm(TRIAL_SECONDS)
            resource.setrlimit(resource.RLIMIT_AS, (TRIAL_ADDRESS_SPACE, TRIAL_ADDRESS_SPACE))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            from tflite_micro.python.tflite_micro import runtime

            runtime.Interpreter.from_bytes(model, arena_size=arena_size)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest_arena(model: bytes, start: int) -> int:
    """Bisect on arena_size, assuming larger arenas keep working once one does."""
    high = max(start, 1024)
    while not _trial(model, high):
        if high >= LARGEST_ARENA:
            raise RuntimeError(f"no arena up to {LARGEST_ARENA} bytes works")
        high *= 2
    low = 0  # an empty arena never works
    while high - low > 1:
        middle = (low + high) // 2
        if _trial(model, middle):
            high = middle
        else:
            low = middle
    return high


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m tinykd.tflite.tflm_probe MODEL.tflite [START_BYTES]", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        model = f.read()
    start = int(argv[1]) if len(argv) == 2 else 16 * len(model)
    try:
        print(smallest_arena(model, start))
    except RuntimeError as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
