"""The one place tinykd compiles C: the verification firmware (CMake, cached by content) and the exact
flash and RAM of a C backend (the compiler and `size`).

`build_firmware(bundle_c_dir, board, out_dir)` compiles `tinykd/firmware/app` (the verification app), the
bundle's `c/` sources and, for a Cortex-M board, `tinykd/firmware/startup` with a linker script generated from
the board profile; CMake builds in a folder under `out_dir`, never in the package. The linker script holds
the real board's flash and RAM, so a model that does not fit fails to link, and that failure is a one-line
TinykdError naming the board and the overflow. A build is kept in the cache folder under the hash of all
that went into it (sources, board flags and memory, target, tinykd's version), so building the same bundle
for the same board again copies the firmware instead of compiling it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tinykd import __version__
from tinykd.core.artifacts import write_tree
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment
from tinykd.deploy.boards import Board, build_variant, kernels_define

log = logging.getLogger(__name__)

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
"""The firmware's CMake project (package data, read-only in an installed package: builds go elsewhere)."""
TOOLCHAIN_FILE = FIRMWARE_DIR / "cmake" / "arm-none-eabi.cmake"
STACK_BYTES = 4096
"""The verification app's stack, inside the board's RAM budget (the model's buffers are static)."""
TARGETS = ("native", "qemu", "serial")
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def require(program: str, debian_packages: str) -> None:
    """A one-line error naming the Debian packages when a program is missing."""
    if shutil.which(program) is None:
        raise TinykdError(f"{program} not found: install the Debian packages {debian_packages} "
                          "(`make system-packages` does)")


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output, for one-line errors."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def default_target(board: Board) -> str:
    """qemu for every board with a QEMU machine, native for the others (the host profile)."""
    return "qemu" if board.qemu_machine else "native"


def render_linker_script(board: Board, machine, stack_bytes: int = STACK_BYTES) -> str:
    """The linker script: the board's flash and RAM budget at the QEMU machine's memory addresses."""
    return environment().get_template("firmware/linker.ld.j2").render(
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
    if target not in TARGETS:
        raise TinykdError(f"unknown firmware target {target!r}; use {', '.join(TARGETS)}")
    if not (bundle_c_dir / "tinykd_model.h").is_file():
        raise TinykdError(f"{bundle_c_dir}: no tinykd_model.h; build the bundle's C backend first (tinykd build)")
    require("cmake", "cmake")
    out_dir.mkdir(parents=True, exist_ok=True)
    options, product = _cmake_options(bundle_c_dir, board, out_dir, target)
    result = out_dir / product
    cached = _cache_folder(bundle_c_dir, options) / product
    try:
        os.utime(cached.parent)  # recently used: pruned last
        _copy(cached, result)
        log.debug("firmware for %s (%s) from the cache: %s", board.name, target, cached)
        return result
    except FileNotFoundError:  # not built yet, or pruned meanwhile by another tinykd
        pass
    build_dir = out_dir / "cmake-build"
    shutil.rmtree(build_dir, ignore_errors=True)
    configure = ["cmake", "-S", str(FIRMWARE_DIR), "-B", str(build_dir)] + [f"-D{k}={v}" for k, v in options.items()]
    log_path = out_dir / "build.log"
    with open(log_path, "w") as build_log:
        for step, command in (("configuring", configure), ("building", ["cmake", "--build", str(build_dir)])):
            _build_step(command, build_log, log_path, board, step)
    _copy(build_dir / product, result)
    _copy(result, cached)
    _prune_cache(cached.parent.parent)
    return result


def _cmake_options(bundle_c_dir: Path, board: Board, out_dir: Path, target: str) -> tuple[dict[str, str], str]:
    """The CMakeLists.txt variables for this board and target, and the file the build produces."""
    options = {"TINYKD_MODEL_DIR": str(bundle_c_dir)}
    if target == "native":
        require("gcc", "gcc")
        # another board's kernels natively: the variant its own flags compile, its instructions as plain C
        flags = board.cflags if board.cpu == "host" else [kernels_define(build_variant(board))]
        options.update(TINYKD_PLATFORM="host", TINYKD_TIMER="", CMAKE_C_COMPILER="gcc",
                       TINYKD_CPU_FLAGS=";".join(flags))
        return options, "firmware"
    if board.cpu == "host":
        raise TinykdError(f"board {board.name} is the host; run it with the native target")
    require("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    from tinykd.verify.runners.qemu import machine_for

    machine = machine_for(board)
    script = out_dir / "linker.ld"
    script.write_text(render_linker_script(board, machine))
    timer = f"CMSDK=0x{machine.timer_base:08x}u" if machine.timer_base is not None else ""
    options.update(TINYKD_PLATFORM="semihost" if target == "qemu" else "uart", TINYKD_TIMER=timer,
                   TINYKD_TIMER_HZ=str(machine.timer_hz), TINYKD_CPU_FLAGS=";".join(board.cflags),
                   TINYKD_LINKER_SCRIPT=str(script), CMAKE_TOOLCHAIN_FILE=str(TOOLCHAIN_FILE))
    return options, "firmware.elf"


FIRMWARE_CACHE_ENTRIES = 200
"""Firmware builds the cache keeps (the least recently used go first)."""


def _cache_folder(bundle_c_dir: Path, options: dict[str, str]) -> Path:
    """Where a build of exactly these inputs is kept: a hash of every file CMake compiles or reads (the
    bundle's sources, the firmware project, the linker script), the other options, the compiler and
    tinykd's version."""
    from tinykd.tflite.tflm_host import cache_dir

    digest = hashlib.sha256(__version__.encode())
    sources = [*bundle_c_dir.glob("*"), *(bundle_c_dir / "runtime").glob("*")]
    files = {f"c/{p.relative_to(bundle_c_dir)}": p for p in sources if p.suffix in (".c", ".h")}
    files.update({f"firmware/{p.relative_to(FIRMWARE_DIR)}": p for p in FIRMWARE_DIR.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts})
    if "TINYKD_LINKER_SCRIPT" in options:
        files["linker.ld"] = Path(options["TINYKD_LINKER_SCRIPT"])
    for name in sorted(files):
        data = files[name].read_bytes()
        digest.update(f"\0{name}\0{len(data)}\0".encode() + data)
    paths = ("TINYKD_MODEL_DIR", "TINYKD_LINKER_SCRIPT", "CMAKE_TOOLCHAIN_FILE")
    digest.update(repr(sorted((k, v) for k, v in options.items() if k not in paths)).encode())
    compiler = "gcc" if options.get("TINYKD_PLATFORM") == "host" else "arm-none-eabi-gcc"
    digest.update(subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.encode())
    return cache_dir() / "firmware" / digest.hexdigest()[:32]


def _copy(source: Path, destination: Path) -> None:
    """Copy atomically: a reader (another process sharing the cache) never sees half a file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.tmp{os.getpid()}")
    shutil.copy2(source, tmp)
    os.replace(tmp, destination)


def _prune_cache(folder: Path) -> None:
    """Keep the FIRMWARE_CACHE_ENTRIES most recently used builds."""
    entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[FIRMWARE_CACHE_ENTRIES:]:
        shutil.rmtree(stale, ignore_errors=True)


def compile_c(compiler: str, arguments: list[str], failure: str) -> None:
    """One compiler call; a failure is a one-line TinykdError: `failure`, then the compiler's last line."""
    result = subprocess.run([compiler, *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise TinykdError(f"{failure}: {last_line(result.stderr)}")


def c_backend_size(sources: dict[str, str], board: Board) -> dict[str, int]:
    """Exact flash and RAM of a C backend (relative path -> text) compiled for the board with the
    firmware's optimisation flags: flash = code + constants + initialised data, RAM = data + bss."""
    host = board.cpu == "host"
    compiler, size_tool = ("gcc", "size") if host else ("arm-none-eabi-gcc", "arm-none-eabi-size")
    require(compiler, "gcc" if host else "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    flags = ["-std=c99", "-O2", "-ffunction-sections", "-fdata-sections"] + ([] if host else board.cflags)
    with tempfile.TemporaryDirectory(prefix="tinykd-size-") as folder:
        root = Path(folder)
        write_tree(root, sources)
        objects = []
        for source in sorted(root.rglob("*.c")):
            objects.append(source.with_suffix(".o"))
            compile_c(compiler, [*flags, f"-I{root}", f"-I{root / 'runtime'}", "-c", str(source), "-o",
                                 str(objects[-1])], f"the C backend does not compile for {board.name}")
        table = subprocess.run([size_tool, "--totals", *map(str, objects)], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in table[-1].split()[:3])
    return {"flash_bytes": text + data, "ram_bytes": data + bss}


def build_trace(c_dir: Path, kernels: str | None, out_dir: Path) -> Path:
    """The C backend as a host program that writes every layer's output (tinykd/firmware/app/trace.c);
    `kernels` forces a kernel variant, as plain C."""
    require("gcc", "gcc")
    forced = [kernels_define(kernels)] if kernels else []
    runtime = sorted(str(p) for p in (c_dir / "runtime").glob("*.c"))
    program = out_dir / "trace"
    compile_c("gcc", ["-std=c99", "-O2", *forced, f"-I{c_dir}", f"-I{c_dir / 'runtime'}",
                      str(FIRMWARE_DIR / "app" / "trace.c"), *runtime, "-o", str(program)],
              f"{c_dir}: the C backend does not compile for tracing")
    return program


def _build_step(command: list[str], build_log, log_path: Path, board: Board, step: str) -> None:
    """Run one build step into the build log; a failure is a one-line TinykdError."""
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    build_log.write("$ " + " ".join(command) + "\n" + proc.stdout)
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
