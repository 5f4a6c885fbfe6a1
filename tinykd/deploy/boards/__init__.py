"""Board profiles: one small TOML file per board (core, clock, flash, RAM, names in other ecosystems).

The built-in profiles live in `tinykd/boards/`; a `boards/` folder in the current directory (or the folder
in `$TINYKD_BOARDS`) adds or replaces profiles, so adding a board is adding a file.

The C backend's kernel variant is chosen by the compiler from the core's own macros
(`tinykd/runtime/tinykd_kernels.h`); a profile's `kernels` field says which one its core should get,
and `check_kernels` warns when its cflags compile another.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tinykd.core.config import build_dataclass
from tinykd.core.errors import TinykdError

BUILTIN_DIR = Path(__file__).resolve().parent
KERNEL_VARIANTS = ("portable", "dsp", "mve")
CORE_KERNELS = {
    "cortex-m0": ("portable",), "cortex-m0plus": ("portable",), "cortex-m1": ("portable",),
    "cortex-m3": ("portable",), "cortex-m23": ("portable",), "cortex-m4": ("portable", "dsp"),
    "cortex-m7": ("portable", "dsp"), "cortex-m33": ("portable", "dsp"), "cortex-m35p": ("portable", "dsp"),
    "cortex-m52": KERNEL_VARIANTS, "cortex-m55": KERNEL_VARIANTS, "cortex-m85": KERNEL_VARIANTS,
    "host": KERNEL_VARIANTS,
}
"""The cores a profile may name, and the kernel variants each can run: the DSP extension is in every
Armv7E-M core and optional in Armv8-M Mainline ones; Helium only in Armv8.1-M (the host runs every
variant as plain C)."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Board:
    """What tinykd needs to know about a board to size, build and run a model for it."""

    name: str
    description: str
    vendor: str
    cpu: str
    """cortex-m0plus, cortex-m3, cortex-m4, cortex-m7, cortex-m33, cortex-m55, or host."""
    fpu: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    ram_reserved_bytes: int
    """RAM kept for the stack, the heap and the RTOS: not available to the model."""
    pointer_bytes: int
    cflags: list[str]
    kernels: str
    """C-backend kernel variant the core can run: portable, dsp (Armv7E-M/Armv8-M DSP) or mve (Helium)."""
    qemu_machine: str
    """qemu-system-arm machine that emulates the core ("" for none)."""
    riot_board: str
    zephyr_board: str


def board_dirs() -> list[Path]:
    """Where profiles are looked for, later folders overriding earlier ones."""
    dirs = [BUILTIN_DIR, Path("boards")]
    if os.environ.get("TINYKD_BOARDS"):
        dirs.append(Path(os.environ["TINYKD_BOARDS"]))
    return dirs


def profile_files() -> dict[str, Path]:
    """Board name -> its profile file."""
    files = {}
    for folder in board_dirs():
        if folder.is_dir():
            files.update({path.stem: path for path in sorted(folder.glob("*.toml"))})
    return files


def load_board(name: str) -> Board:
    """The profile named `name`; an unknown name is an error listing the known ones."""
    files = profile_files()
    if name not in files:
        raise TinykdError(f"unknown board {name!r}; known boards: {', '.join(sorted(files))}")
    return read_profile(files[name])


def all_boards() -> tuple[list[Board], list[str]]:
    """Every profile that reads and checks, by name, and one line per profile that does not."""
    boards, problems = [], []
    for _, path in sorted(profile_files().items()):
        try:
            boards.append(read_profile(path))
        except TinykdError as exc:
            problems.append(str(exc))
    return boards, problems


@functools.cache
def _note_override(name: str, path: Path) -> None:
    log.warning("board %s comes from %s, which replaces the built-in profile", name, path)


def read_profile(path: Path) -> Board:
    """Read and check one profile file."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TinykdError(f"{path}: not a readable TOML board profile: {exc}") from None
    from tinykd.verify.runners.qemu import MACHINES

    board = build_dataclass(Board, raw, str(path))
    kernels = CORE_KERNELS.get(board.cpu, KERNEL_VARIANTS)
    checks = [
        (board.name == path.stem, f"name = {board.name!r} must match the file name {path.stem!r}"),
        (board.cpu in CORE_KERNELS, f"cpu = {board.cpu!r} is not a core tinykd knows; known: "
                                    f"{', '.join(CORE_KERNELS)}"),
        (board.kernels in kernels, f"kernels = {board.kernels!r}: a {board.cpu} runs only the "
                                   f"{' or '.join(kernels)} kernels" if board.kernels in KERNEL_VARIANTS else
                                   f"kernels = {board.kernels!r} must be one of {', '.join(KERNEL_VARIANTS)}"),
        (board.pointer_bytes in (4, 8), "pointer_bytes must be 4 or 8"),
        (board.flash_bytes > 0 and board.ram_bytes > 0, "flash_bytes and ram_bytes must be positive"),
        (0 <= board.ram_reserved_bytes < board.ram_bytes, "ram_reserved_bytes must be below ram_bytes"),
        (board.clock_hz >= 0, "clock_hz must not be negative"),
        (board.qemu_machine in ("", *MACHINES), f"qemu_machine = {board.qemu_machine!r} is not a machine tinykd "
                                                f"can run; known: {', '.join(MACHINES)} (or \"\" for none)"),
    ]
    for ok, message in checks:
        if not ok:
            raise TinykdError(f"{path}: {message}")
    if path.parent.resolve() != BUILTIN_DIR and (BUILTIN_DIR / path.name).is_file():
        _note_override(board.name, path)
    return board


def kernels_define(variant: str) -> str:
    """The compiler flag that forces a kernel variant instead of the one the core's macros choose."""
    return f"-DTK_KERNELS=TK_KERNELS_{variant.upper()}"


def forced_kernels(board: Board, variant: str) -> Board:
    """The board with its cflags forcing `variant` (on a core without its instructions, their plain C)."""
    return dataclasses.replace(board, cflags=[*board.cflags, kernels_define(variant)], kernels=variant)


@functools.cache
def _compiled_variant(compiler: str, cflags: tuple[str, ...]) -> str | None:
    from tinykd.deploy.cbackend.lower import RUNTIME_DIR

    if shutil.which(compiler) is None:
        return None
    result = subprocess.run([compiler, *cflags, "-dM", "-E", "-x", "c", str(RUNTIME_DIR / "tinykd_kernels.h")],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    match = re.search(r"^#define TK_KERNELS TK_KERNELS_(\w+)$", result.stdout, re.MULTILINE)
    return match.group(1).lower() if result.returncode == 0 and match else None


def compiled_variant(board: Board) -> str | None:
    """The kernel variant the board's cflags compile, as its compiler's preprocessor says (cached per flag
    set); None when the compiler is missing or refuses the flags."""
    compiler = "gcc" if board.cpu == "host" else "arm-none-eabi-gcc"
    return _compiled_variant(compiler, tuple(board.cflags))


def build_variant(board: Board) -> str:
    """The kernel variant the board's build runs: the compiler's answer, else the profile's `kernels`."""
    return compiled_variant(board) or board.kernels


def check_kernels(board: Board) -> str:
    """`build_variant(board)`, with a warning when it is not the variant the profile promises (the cflags
    lack the core's features, or name another core); a missing compiler gives no warning."""
    variant = build_variant(board)
    if variant != board.kernels:
        log.warning("board %s promises the %s kernels, but its cflags (%s) compile the %s "
                    "ones; fix its cflags (-mcpu) or its kernels field", board.name, board.kernels,
                    " ".join(board.cflags), variant)
    return variant
