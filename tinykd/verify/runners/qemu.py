"""The ELF in qemu-system-arm: files through Arm semihosting, `-icount shift=0` so time counts instructions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinykd.core.errors import TinykdError
from tinykd.deploy.boards import Board
from tinykd.verify.runners.base import FileRunner, register
from tinykd.verify.toolchain import require

QEMU_NS_PER_INSTRUCTION = 1
"""-icount shift=0: each instruction advances virtual time by 2**0 ns."""


@dataclass(frozen=True)
class Machine:
    """A QEMU machine: where it has memory and which timer counts (virtual) time."""

    name: str
    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int
    timer_base: int | None
    timer_hz: int

    @property
    def instructions_per_tick(self) -> float:
        return 1e9 / (self.timer_hz * QEMU_NS_PER_INSTRUCTION)


_MPS2 = dict(flash_origin=0x0, flash_bytes=4 << 20, ram_origin=0x2000_0000, ram_bytes=4 << 20,
             timer_base=0x4000_0000, timer_hz=25_000_000)
MACHINES = {
    "mps2-an385": Machine("mps2-an385", **_MPS2),
    "mps2-an386": Machine("mps2-an386", **_MPS2),
    "mps2-an500": Machine("mps2-an500", **_MPS2),
    # Armv8-M images: the timer's secure alias (the code runs secure); SSE-200's timers run at the 20 MHz
    # main clock. mps3-an547 (SSE-300) has only a 32 kHz CMSDK timer: no instruction count there.
    "mps2-an505": Machine("mps2-an505", 0x1000_0000, 4 << 20, 0x3800_0000, 4 << 20, 0x5000_0000, 20_000_000),
    "mps3-an547": Machine("mps3-an547", 0x1000_0000, 512 << 10, 0x3000_0000, 512 << 10, None, 0),
}
"""Memory per ARCHITECTURE.md; the timer (a CMSDK APB timer) counts instructions / (1e9 / timer_hz)
under -icount shift=0: 40 on mps2 (25 MHz), 50 on mps2-an505."""


def machine_for(board: Board) -> Machine:
    if board.qemu_machine not in MACHINES:
        known = ", ".join(sorted(MACHINES))
        raise TinykdError(f"board {board.name}: qemu_machine {board.qemu_machine!r} is not one tinykd can run "
                          f"(known: {known})")
    return MACHINES[board.qemu_machine]


@register
class QemuRunner(FileRunner):
    """The ELF on the board's QEMU machine; the firmware reads and writes files in QEMU's working folder."""

    name = "qemu"

    def __init__(self, firmware: str | Path, machine: Machine, timeout: float = 600.0):
        super().__init__(firmware, timeout)
        self.machine = machine
        require("qemu-system-arm", "qemu-system-arm")

    def _command(self, inputs_file: Path, outputs_file: Path) -> list[str]:
        return ["qemu-system-arm", "-M", self.machine.name, "-nographic", "-monitor", "none", "-serial", "null",
                "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
                "-kernel", str(self.firmware)]

    def _describe(self) -> str:
        return f"QEMU {self.machine.name} running {self.firmware.name}"

    def _instructions(self, summary: dict[str, int]) -> int | None:
        if self.machine.timer_base is None or summary["vectors"] == 0:
            return None
        return round(summary["ticks_total"] * self.machine.instructions_per_tick / summary["vectors"])
