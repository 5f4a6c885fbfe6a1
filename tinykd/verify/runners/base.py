"""What every runner shares: the Runner interface, the registry, and the vectors-file protocol the native
and QEMU firmware speak (inputs in as a file, outputs back as a file plus one summary line)."""

from __future__ import annotations

import binascii
import re
import signal
import struct
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from tinykd.core.errors import TinykdError
from tinykd.verify.toolchain import last_line

INPUTS_FILE, OUTPUTS_FILE = "tinykd_inputs.bin", "tinykd_outputs.bin"
EXIT_MESSAGES = {
    2: "could not read the inputs or write the outputs",
    3: "crashed with a fault exception",
    4: "tinykd_invoke returned an error",
    5: "the input vectors do not have the size the model takes",
}
PROGRESS_STEPS = 20
"""With a progress callback, a file runner runs the vectors in this many parts (one process each)."""
_SUMMARY = re.compile(r"tinykd-fw: summary (.*)")
_FW_ERROR = re.compile(r"tinykd-fw: error: (.*)")


class Runner(ABC):
    """Runs the verification firmware on one target."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, inputs: np.ndarray, progress: Callable[[int], None] | None = None
            ) -> tuple[np.ndarray, int | None]:
        """int8 [N, input_bytes] -> (int8 [N, output_bytes], instructions per inference or None);
        `progress(done)` hears how many vectors are done as they finish."""


RUNNERS: dict[str, type[Runner]] = {}


def register(cls: type[Runner]) -> type[Runner]:
    RUNNERS[cls.name] = cls
    return cls


def check_inputs(inputs: np.ndarray) -> np.ndarray:
    if not isinstance(inputs, np.ndarray) or inputs.dtype != np.int8 or inputs.ndim != 2:
        raise ValueError("inputs must be an int8 numpy array of shape [N, input_bytes]")
    return np.ascontiguousarray(inputs)


def parse_summary(text: str) -> dict[str, int] | None:
    """The last `tinykd-fw: summary k=v ...` line of the firmware's console, or None."""
    match = None
    for match in _SUMMARY.finditer(text):
        pass
    if match is None:
        return None
    fields = dict(item.split("=", 1) for item in match.group(1).split())
    return {key: int(value, 16 if key == "checksum" else 10) for key, value in fields.items()}


class FileRunner(Runner):
    """A firmware run as one process that reads the inputs file and writes the outputs file."""

    def __init__(self, firmware: str | Path, timeout: float = 600.0):
        self.firmware = Path(firmware).resolve()
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.last_summary: dict[str, int] = {}

    @abstractmethod
    def _command(self, inputs_file: Path, outputs_file: Path) -> list[str]: ...

    @abstractmethod
    def _describe(self) -> str: ...

    def _instructions(self, summary: dict[str, int]) -> int | None:
        return None

    def run(self, inputs: np.ndarray, progress: Callable[[int], None] | None = None
            ) -> tuple[np.ndarray, int | None]:
        inputs = check_inputs(inputs)
        steps = PROGRESS_STEPS if progress and len(inputs) >= 2 * PROGRESS_STEPS else 1
        size = max(1, -(-len(inputs) // steps))
        parts, summary = [], {}
        for start in range(0, max(len(inputs), 1), size):
            outputs, part = self._run_part(inputs[start:start + size])
            parts.append(outputs)
            summary = _combined(summary, part)
            if progress:
                progress(start + len(outputs))
        outputs = np.concatenate(parts)
        self.last_summary = summary | {"checksum": binascii.crc32(outputs.tobytes())}
        return outputs, self._instructions(self.last_summary)

    def _run_part(self, inputs: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        """One process over `inputs`: the outputs and the firmware's summary."""
        with tempfile.TemporaryDirectory(prefix="tinykd-run-") as tmp:
            folder = Path(tmp)
            header = b"TKDI" + struct.pack("<II", inputs.shape[0], inputs.shape[1])
            (folder / INPUTS_FILE).write_bytes(header + inputs.tobytes())
            command = self._command(folder / INPUTS_FILE, folder / OUTPUTS_FILE)
            try:
                proc = subprocess.run(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise TinykdError(f"{self._describe()} did not finish within {self.timeout:g} s "
                                  "(the firmware hangs, or raise the timeout)") from None
            text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
            self._check_exit(proc.returncode, text)
            summary = parse_summary(text)
            if summary is None:
                raise TinykdError(f"{self._describe()} ended without its summary line: {last_line(text)}")
            data = (folder / OUTPUTS_FILE).read_bytes()
        return self._outputs(data, summary, inputs), summary

    def _check_exit(self, code: int, text: str) -> None:
        if code == 0:
            return
        if code < 0:
            raise TinykdError(f"{self._describe()} crashed with signal {signal.Signals(-code).name}")
        error = _FW_ERROR.search(text)
        detail = error.group(1) if error else EXIT_MESSAGES.get(code, last_line(text))
        raise TinykdError(f"{self._describe()} failed (exit code {code}): {detail}")

    def _outputs(self, data: bytes, summary: dict[str, int], inputs: np.ndarray) -> np.ndarray:
        count, width = summary["vectors"], summary["output_bytes"]
        if summary["input_bytes"] != inputs.shape[1]:
            raise TinykdError(f"{self._describe()}: the model takes {summary['input_bytes']} input bytes, "
                              f"the vectors have {inputs.shape[1]}")
        if count != inputs.shape[0] or len(data) != count * width:
            raise TinykdError(f"{self._describe()} returned {len(data)} output bytes for {inputs.shape[0]} "
                              f"vectors of {width}")
        if binascii.crc32(data) != summary["checksum"]:
            raise TinykdError(f"{self._describe()}: the outputs file does not match the firmware's checksum")
        return np.frombuffer(data, np.int8).reshape(count, width).copy()


def _combined(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    """The summary of two runs of the same firmware, as if it were one."""
    if not total:
        return dict(part)
    return total | {"vectors": total["vectors"] + part["vectors"],
                    "ticks_total": total["ticks_total"] + part["ticks_total"],
                    "ticks_min": min(total["ticks_min"], part["ticks_min"]) if part["vectors"] else total["ticks_min"],
                    "ticks_max": max(total["ticks_max"], part["ticks_max"])}
