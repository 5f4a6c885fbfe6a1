"""Build the verification firmware for a board from a bundle's C backend, and run it on a target.

`build_firmware(bundle_c_dir, board, out_dir)` compiles `tinykd/firmware/app` (the verification app), the
bundle's `c/` sources and, for a Cortex-M board, `tinykd/firmware/startup` with a linker script generated from
the board profile; CMake builds in a folder under `out_dir`, never in the package. The linker script holds
the real board's flash and RAM, so a model that does not fit fails to link, and that failure is a one-line
TinykdError naming the board and the overflow.

Runners (mlonmcu style: one class per target, registered by name) take int8 input vectors and give the
int8 outputs and, where the target can count them, the instructions per inference:

    native        the same sources compiled with the host gcc, run as a process
    qemu          the ELF in qemu-system-arm, files through semihosting, -icount shift=0 for counting
    serial:PORT   a flashed board speaking the framed protocol below over a serial line (pyserial)

    runner = make_runner("qemu", build_firmware(bundle / "c", board, bundle / "fw"), board)
    outputs, instructions = runner.run(inputs)      # int8 [N, in_bytes] -> int8 [N, out_bytes], int | None
"""

from __future__ import annotations

import binascii
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from tinykd import __version__
from tinykd.core.artifacts import write_tree
from tinykd.deploy.boards import Board, build_variant, kernels_define
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
"""The firmware's CMake project (package data, read-only in an installed package: builds go elsewhere)."""
TOOLCHAIN_FILE = FIRMWARE_DIR / "cmake" / "arm-none-eabi.cmake"
STACK_BYTES = 4096
"""The verification app's stack, inside the board's RAM budget (the model's buffers are static)."""
INPUTS_FILE, OUTPUTS_FILE = "tinykd_inputs.bin", "tinykd_outputs.bin"
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

EXIT_MESSAGES = {
    2: "could not read the inputs or write the outputs",
    3: "crashed with a fault exception",
    4: "tinykd_invoke returned an error",
    5: "the input vectors do not have the size the model takes",
}
_SUMMARY = re.compile(r"tinykd-fw: summary (.*)")
_FW_ERROR = re.compile(r"tinykd-fw: error: (.*)")
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


# ----------------------------------------------------------------------------------------------- build

def default_target(board: Board) -> str:
    """native for the host profile, qemu for every board with a QEMU machine."""
    return "native" if board.cpu == "host" else "qemu"


def machine_for(board: Board) -> Machine:
    if board.qemu_machine not in MACHINES:
        known = ", ".join(sorted(MACHINES))
        raise TinykdError(f"board {board.name}: qemu_machine {board.qemu_machine!r} is not one tinykd can run "
                          f"(known: {known})")
    return MACHINES[board.qemu_machine]


def render_linker_script(board: Board, machine: Machine, stack_bytes: int = STACK_BYTES) -> str:
    """The linker script: the board's flash and RAM budget at the machine's memory addresses."""
    env = environment()
    return env.get_template("firmware/linker.ld.j2").render(
        board=board, machine=machine, version=__version__, stack_bytes=stack_bytes,
        flash_origin=machine.flash_origin, flash_length=min(board.flash_bytes, machine.flash_bytes),
        ram_origin=machine.ram_origin, ram_length=min(board.ram_bytes, machine.ram_bytes))


def build_firmware(bundle_c_dir: str | Path, board: Board, out_dir: str | Path, target: str | None = None) -> Path:
    """Compile the verification firmware; returns `out_dir/firmware.elf` (or `out_dir/firmware` natively).

    `target` is native, qemu or serial (default: `default_target(board)`). qemu and serial build for the
    board's core with its flags; serial speaks the framed protocol on the CMSDK UART0 of the mps2 machines
    (a real board needs its own `tinykd_uart_*` functions, see tinykd/firmware/app/platform_uart.c).
    """
    bundle_c_dir, out_dir = Path(bundle_c_dir).resolve(), Path(out_dir).resolve()
    target = (target or default_target(board)).split(":")[0]
    if target not in ("native", "qemu", "serial"):
        raise TinykdError(f"unknown firmware target {target!r}; use native, qemu or serial")
    if not (bundle_c_dir / "tinykd_model.h").is_file():
        raise TinykdError(f"{bundle_c_dir}: no tinykd_model.h; build the bundle's C backend first (tinykd build)")
    _require("cmake", "cmake")
    out_dir.mkdir(parents=True, exist_ok=True)
    options, product = _cmake_options(bundle_c_dir, board, out_dir, target)
    build_dir = out_dir / "cmake-build"
    shutil.rmtree(build_dir, ignore_errors=True)
    configure = ["cmake", "-S", str(FIRMWARE_DIR), "-B", str(build_dir)] + [f"-D{k}={v}" for k, v in options.items()]
    log_path = out_dir / "build.log"
    with open(log_path, "w") as log:
        for step, command in (("configuring", configure), ("building", ["cmake", "--build", str(build_dir)])):
            _build_step(command, log, log_path, board, step)
    result = out_dir / product
    tmp = result.with_name(result.name + ".tmp")
    shutil.copy2(build_dir / product, tmp)
    os.replace(tmp, result)
    return result


def _cmake_options(bundle_c_dir: Path, board: Board, out_dir: Path, target: str) -> tuple[dict[str, str], str]:
    """The CMakeLists.txt variables for this board and target, and the file the build produces."""
    options = {"TINYKD_MODEL_DIR": str(bundle_c_dir)}
    if target == "native":
        _require("gcc", "gcc")
        # another board's kernels natively: the variant its own flags compile, its instructions as plain C
        flags = board.cflags if board.cpu == "host" else [kernels_define(build_variant(board))]
        options.update(TINYKD_PLATFORM="host", TINYKD_TIMER="", CMAKE_C_COMPILER="gcc",
                       TINYKD_CPU_FLAGS=";".join(flags))
        return options, "firmware"
    if board.cpu == "host":
        raise TinykdError(f"board {board.name} is the host; run it with the native target")
    _require("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    machine = machine_for(board)
    script = out_dir / "linker.ld"
    script.write_text(render_linker_script(board, machine))
    timer = f"CMSDK=0x{machine.timer_base:08x}u" if machine.timer_base is not None else ""
    options.update(TINYKD_PLATFORM="semihost" if target == "qemu" else "uart", TINYKD_TIMER=timer,
                   TINYKD_TIMER_HZ=str(machine.timer_hz), TINYKD_CPU_FLAGS=";".join(board.cflags),
                   TINYKD_LINKER_SCRIPT=str(script), CMAKE_TOOLCHAIN_FILE=str(TOOLCHAIN_FILE))
    return options, "firmware.elf"


def c_backend_size(sources: dict[str, str], board: Board) -> dict[str, int]:
    """Exact flash and RAM of a C backend (relative path -> text) compiled for the board with the
    firmware's optimisation flags: flash = code + constants + initialised data, RAM = data + bss."""
    host = board.cpu == "host"
    compiler, size_tool = ("gcc", "size") if host else ("arm-none-eabi-gcc", "arm-none-eabi-size")
    _require(compiler, "gcc" if host else "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    flags = ["-std=c99", "-O2", "-ffunction-sections", "-fdata-sections"] + ([] if host else board.cflags)
    with tempfile.TemporaryDirectory(prefix="tinykd-size-") as folder:
        root = Path(folder)
        write_tree(root, sources)
        objects = []
        for source in sorted(root.rglob("*.c")):
            objects.append(source.with_suffix(".o"))
            result = subprocess.run([compiler, *flags, f"-I{root}", f"-I{root / 'runtime'}", "-c", str(source),
                                     "-o", str(objects[-1])], capture_output=True, text=True)
            if result.returncode != 0:
                raise TinykdError(f"the C backend does not compile for {board.name}: {_last_line(result.stderr)}")
        table = subprocess.run([size_tool, "--totals", *map(str, objects)], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in table[-1].split()[:3])
    return {"flash_bytes": text + data, "ram_bytes": data + bss}


def _require(program: str, debian_packages: str) -> None:
    if shutil.which(program) is None:
        raise TinykdError(f"{program} not found: install the Debian packages {debian_packages} "
                          "(`make system-packages` does)")


def _build_step(command: list[str], log, log_path: Path, board: Board, step: str) -> None:
    """Run one build step into the build log; a failure is a one-line TinykdError."""
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    log.write("$ " + " ".join(command) + "\n" + proc.stdout)
    if proc.returncode == 0:
        return
    overflows = _OVERFLOW.findall(proc.stdout)
    if overflows:
        raise TinykdError(overflow_message(board, overflows))
    first_error = next((line.strip() for line in proc.stdout.splitlines() if "error" in line.lower()),
                       f"exit code {proc.returncode}")
    raise TinykdError(f"firmware for {board.name} failed {step}: {first_error} (full log: {log_path})")


def overflow_message(board: Board, overflows: list[tuple[str, str]]) -> str:
    """`region `FLASH' overflowed by N bytes` from the linker, as one line about the board."""
    budgets = {"FLASH": ("flash", board.flash_bytes), "RAM": ("RAM", board.ram_bytes)}
    parts = []
    for region, excess in dict(overflows).items():
        what, budget = budgets.get(region, (region, 0))
        parts.append(f"{what} overflowed by {int(excess):,} bytes (the board has {budget:,})")
    return (f"the firmware does not fit board {board.name}: {' and '.join(parts)}; "
            "use a smaller model or a board with more memory")


# ---------------------------------------------------------------------------------------------- runners

class Runner(ABC):
    """Runs the verification firmware on one target."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, int | None]:
        """int8 [N, input_bytes] -> (int8 [N, output_bytes], instructions per inference or None)."""


RUNNERS: dict[str, type[Runner]] = {}


def register(cls: type[Runner]) -> type[Runner]:
    RUNNERS[cls.name] = cls
    return cls


def make_runner(target: str, firmware: str | Path | None, board: Board, timeout: float | None = None) -> Runner:
    """The runner for `target` ("native", "qemu" or "serial:PORT") and the firmware built for it."""
    name, _, argument = target.partition(":")
    if name not in RUNNERS:
        raise TinykdError(f"unknown target {target!r}; known targets: {', '.join(sorted(RUNNERS))} "
                          "(serial as serial:PORT)")
    limits = {"timeout": timeout} if timeout else {}
    if name == "serial":
        if not argument:
            raise TinykdError("target serial needs a port, as in serial:/dev/ttyACM0")
        return SerialRunner(argument, **limits)
    if firmware is None or not Path(firmware).is_file():
        raise TinykdError(f"no firmware at {firmware}; build it first (build_firmware, as tinykd verify does)")
    if name == "qemu":
        return QemuRunner(firmware, machine_for(board), **limits)
    return RUNNERS[name](firmware, **limits)


def check_inputs(inputs: np.ndarray) -> np.ndarray:
    if not isinstance(inputs, np.ndarray) or inputs.dtype != np.int8 or inputs.ndim != 2:
        raise ValueError("inputs must be an int8 numpy array of shape [N, input_bytes]")
    return np.ascontiguousarray(inputs)


def _parse_summary(text: str) -> dict[str, int] | None:
    match = None
    for match in _SUMMARY.finditer(text):
        pass
    if match is None:
        return None
    fields = dict(item.split("=", 1) for item in match.group(1).split())
    return {key: int(value, 16 if key == "checksum" else 10) for key, value in fields.items()}


class _FileRunner(Runner):
    """Shared by native and qemu: inputs go in as a file, outputs come back as a file plus a summary line."""

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

    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, int | None]:
        inputs = check_inputs(inputs)
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
            summary = _parse_summary(text)
            if summary is None:
                raise TinykdError(f"{self._describe()} ended without its summary line: {_last_line(text)}")
            data = (folder / OUTPUTS_FILE).read_bytes()
        return self._outputs(data, summary, inputs), self._instructions(summary)

    def _check_exit(self, code: int, text: str) -> None:
        if code == 0:
            return
        if code < 0:
            raise TinykdError(f"{self._describe()} crashed with signal {signal.Signals(-code).name}")
        error = _FW_ERROR.search(text)
        detail = error.group(1) if error else EXIT_MESSAGES.get(code, _last_line(text))
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
        self.last_summary = summary
        return np.frombuffer(data, np.int8).reshape(count, width).copy()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@register
class NativeRunner(_FileRunner):
    """The firmware built for the host: a process reading the inputs file and writing the outputs file."""

    name = "native"

    def _command(self, inputs_file: Path, outputs_file: Path) -> list[str]:
        return [str(self.firmware), str(inputs_file), str(outputs_file)]

    def _describe(self) -> str:
        return f"native firmware {self.firmware.name}"


@register
class QemuRunner(_FileRunner):
    """The ELF in qemu-system-arm with semihosting; `-icount shift=0` makes time count instructions."""

    name = "qemu"

    def __init__(self, firmware: str | Path, machine: Machine, timeout: float = 600.0):
        super().__init__(firmware, timeout)
        self.machine = machine
        _require("qemu-system-arm", "qemu-system-arm")

    def _command(self, inputs_file: Path, outputs_file: Path) -> list[str]:
        # The firmware opens tinykd_inputs.bin / tinykd_outputs.bin in QEMU's working directory.
        return ["qemu-system-arm", "-M", self.machine.name, "-nographic", "-monitor", "none", "-serial", "null",
                "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
                "-kernel", str(self.firmware)]

    def _describe(self) -> str:
        return f"QEMU {self.machine.name} running {self.firmware.name}"

    def _instructions(self, summary: dict[str, int]) -> int | None:
        if self.machine.timer_base is None or summary["vectors"] == 0:
            return None
        return round(summary["ticks_total"] * self.machine.instructions_per_tick / summary["vectors"])


# ------------------------------------------------------------------------------------------------ serial

FRAME_MAGIC = b"TK"
FRAME_HEADER = struct.Struct("<2sBI")
"""A frame: b"TK" | type u8 | payload length u32 | payload | CRC-32 (zlib) u32 of type+length+payload.
Host -> board: h hello (empty), i one input vector, q quit (empty).
Board -> host: H hello reply (u32 input bytes, u32 output bytes, u32 timer kind: 0 none, 1 QEMU
instruction ticks, 2 cycles; u32 timer Hz), o one result (u32 ticks, then the output bytes),
Q bye (u32 vectors, u32 CRC-32 of all outputs), E an error (text)."""
MAX_PAYLOAD = 1 << 24
TIMER_NONE, TIMER_QEMU_TICKS, TIMER_CYCLES = 0, 1, 2


def encode_frame(kind: bytes, payload: bytes = b"") -> bytes:
    head = FRAME_HEADER.pack(FRAME_MAGIC, kind[0], len(payload))
    return head + payload + struct.pack("<I", binascii.crc32(head[2:] + payload))


class FrameReader:
    """Reads frames from a pyserial-like port (read(n), timeout attribute), skipping bytes before a frame."""

    def __init__(self, port, where: str, timeout: float):
        self.port, self.where, self.timeout = port, where, timeout

    def read(self) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + self.timeout
        window = b""
        while window != FRAME_MAGIC:       # resynchronise: boot messages may come first
            window = (window + self._exact(1, deadline))[-2:]
        kind, length = self._exact(1, deadline), struct.unpack("<I", self._exact(4, deadline))[0]
        if length > MAX_PAYLOAD:
            raise TinykdError(f"{self.where} sent a frame of {length} bytes: not the tinykd protocol")
        payload = self._exact(length, deadline)
        (crc,) = struct.unpack("<I", self._exact(4, deadline))
        if crc != binascii.crc32(kind + struct.pack("<I", length) + payload):
            raise TinykdError(f"{self.where} sent a corrupted frame (checksum mismatch); check the baud rate "
                              "and the cable")
        return kind, payload

    def _exact(self, count: int, deadline: float) -> bytes:
        data = b""
        while len(data) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TinykdError(f"{self.where} did not answer within {self.timeout:g} s; is the tinykd "
                                  "firmware flashed and running, and the port right?")
            self.port.timeout = left
            data += self.port.read(count - len(data))
        return data


@register
class SerialRunner(Runner):
    """A flashed board on a serial port; each vector is one frame out and one frame back."""

    name = "serial"

    def __init__(self, port: str, baudrate: int = 115_200, timeout: float = 10.0,
                 open_port: Callable[..., object] | None = None):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.port_name, self.baudrate, self.timeout = port, baudrate, timeout
        self.open_port = open_port or _open_serial
        self.cycles_per_inference: int | None = None

    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, int | None]:
        inputs = check_inputs(inputs)
        where = f"the board on {self.port_name}"
        port = self.open_port(self.port_name, self.baudrate)
        try:
            reader = FrameReader(port, where, self.timeout)
            in_bytes, out_bytes, timer_kind, timer_hz = self._hello(port, reader, where)
            if in_bytes != inputs.shape[1]:
                raise TinykdError(f"{where} runs a model with {in_bytes} input bytes, the vectors have "
                                  f"{inputs.shape[1]}")
            outputs = np.empty((inputs.shape[0], out_bytes), np.int8)
            ticks = 0
            for index, vector in enumerate(inputs):
                port.write(encode_frame(b"i", vector.tobytes()))
                payload = self._expect(reader, b"o", where, 4 + out_bytes)
                ticks += struct.unpack_from("<I", payload)[0]
                outputs[index] = np.frombuffer(payload, np.int8, offset=4)
            port.write(encode_frame(b"q"))
            bye = self._expect(reader, b"Q", where, 8)
            vectors, checksum = struct.unpack("<II", bye)
            if vectors != len(inputs) or checksum != binascii.crc32(outputs.tobytes()):
                raise TinykdError(f"{where} reports {vectors} vectors with another checksum than received")
        finally:
            port.close()
        count = max(len(inputs), 1)
        self.cycles_per_inference = round(ticks / count) if timer_kind == TIMER_CYCLES else None
        if timer_kind == TIMER_QEMU_TICKS and timer_hz:
            return outputs, round(ticks * 1e9 / timer_hz / count)
        return outputs, None

    def _hello(self, port, reader: FrameReader, where: str) -> tuple[int, int, int, int]:
        port.write(encode_frame(b"h"))
        return struct.unpack("<IIII", self._expect(reader, b"H", where, 16))

    @staticmethod
    def _expect(reader: FrameReader, kind: bytes, where: str, length: int) -> bytes:
        got, payload = reader.read()
        if got == b"E":
            raise TinykdError(f"{where} reports an error: {payload.decode(errors='replace')}")
        if got != kind or len(payload) != length:
            raise TinykdError(f"{where} sent frame {got!r} of {len(payload)} bytes, expected {kind!r} of {length}")
        return payload


def _open_serial(port: str, baudrate: int):
    import serial

    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=1.0)
    except (serial.SerialException, ValueError) as exc:
        raise TinykdError(f"cannot open serial port {port}: {exc}") from None
