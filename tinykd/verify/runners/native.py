"""The firmware built for the host with gcc, run as a process."""

from __future__ import annotations

from pathlib import Path

from tinykd.verify.runners.base import FileRunner, register


@register
class NativeRunner(FileRunner):
    """A process reading the inputs file and writing the outputs file; it counts no instructions."""

    name = "native"

    def _command(self, inputs_file: Path, outputs_file: Path) -> list[str]:
        return [str(self.firmware), str(inputs_file), str(outputs_file)]

    def _describe(self) -> str:
        return f"native firmware {self.firmware.name}"
