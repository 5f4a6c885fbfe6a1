"""Runners (mlonmcu style: one class per target, registered by name) take int8 input vectors and give the
int8 outputs and, where the target can count them, the instructions per inference:

    native        the firmware compiled with the host gcc, run as a process (runners/native.py)
    qemu          the ELF in qemu-system-arm, files through semihosting, -icount shift=0 (runners/qemu.py)
    serial:PORT   a flashed board speaking the framed protocol over a serial line (runners/serial.py)

    runner = make_runner("qemu", build_firmware(bundle / "c", board, bundle / "fw"), board)
    outputs, instructions = runner.run(inputs)      # int8 [N, in_bytes] -> int8 [N, out_bytes], int | None
"""

from __future__ import annotations

from pathlib import Path

from tinykd.core.errors import TinykdError
from tinykd.deploy.boards import Board
from tinykd.verify.runners.base import RUNNERS, Runner
from tinykd.verify.runners.native import NativeRunner
from tinykd.verify.runners.qemu import MACHINES, Machine, QemuRunner, machine_for
from tinykd.verify.runners.serial import SerialRunner
from tinykd.verify.toolchain import default_target

__all__ = ["MACHINES", "Machine", "NativeRunner", "QemuRunner", "RUNNERS", "Runner", "SerialRunner",
           "check_target", "default_target", "machine_for", "make_runner"]


def check_target(target: str, board: Board) -> None:
    """Refuse an unknown target, a serial target without a port, or a board QEMU cannot run, before any
    work is done."""
    name, _, argument = target.partition(":")
    if name not in RUNNERS:
        raise TinykdError(f"unknown target {target!r}; known targets: {', '.join(sorted(RUNNERS))} "
                          "(serial as serial:PORT)")
    if name == "serial" and not argument:
        raise TinykdError("target serial needs a port, as in serial:/dev/ttyACM0")
    if name != "native" and board.cpu == "host":
        raise TinykdError(f"board {board.name} is the host; run it with the native target")
    if name == "qemu":
        machine_for(board)


def make_runner(target: str, firmware: str | Path | None, board: Board, timeout: float | None = None) -> Runner:
    """The runner for `target` ("native", "qemu" or "serial:PORT") and the firmware built for it."""
    check_target(target, board)
    name, _, argument = target.partition(":")
    limits = {"timeout": timeout} if timeout else {}
    if name == "serial":
        return SerialRunner(argument, **limits)
    if firmware is None or not Path(firmware).is_file():
        raise TinykdError(f"no firmware at {firmware}; build it first (build_firmware, as tinykd verify does)")
    if name == "qemu":
        return QemuRunner(firmware, machine_for(board), **limits)
    return NativeRunner(firmware, **limits)
