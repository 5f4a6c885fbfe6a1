"""The verification firmware with a stand-in model: native, QEMU on three cores, link overflow, serial framing,
and the kernel variant a board's host build compiles."""

import binascii
import os
import pty
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import tty

import numpy as np
import pytest

from tinykd.deploy.boards import BUILTIN_DIR, load_board
from tinykd.deploy.cbackend.lower import RUNTIME_DIR
from tinykd.core.errors import TinykdError
from tinykd.verify.runners import MACHINES, SerialRunner, check_target, make_runner
from tinykd.verify.runners.serial import FrameReader, encode_frame
from tinykd.verify.toolchain import build_firmware, render_linker_script

IN_BYTES, OUT_BYTES = 2304, 10

HEADER = f"""#ifndef TINYKD_MODEL_H
#define TINYKD_MODEL_H
#include <stdint.h>
#define TINYKD_INPUT_BYTES {IN_BYTES}
#define TINYKD_OUTPUT_BYTES {OUT_BYTES}
int tinykd_invoke(const int8_t *input, int8_t *output);
#endif
"""
# A stand-in for the C backend: each output is a clamped, shifted weighted sum of all inputs.
SOURCE = """#include "tinykd_model.h"
{extra}
int tinykd_invoke(const int8_t *input, int8_t *output)
{{
    for (int j = 0; j < TINYKD_OUTPUT_BYTES; j++) {{
        int32_t acc = j * 31;
        for (int i = 0; i < TINYKD_INPUT_BYTES; i++)
            acc += input[i] * (((i + 3 * j) % 11) - 5);
        acc >>= 4;
        output[j] = (int8_t)(acc > 127 ? 127 : acc < -128 ? -128 : acc);
    }}
    {body}
    return 0;
}}
"""


def stand_in(inputs: np.ndarray) -> np.ndarray:
    i, j = np.arange(IN_BYTES), np.arange(OUT_BYTES)
    weights = ((i[None, :] + 3 * j[:, None]) % 11) - 5
    acc = j * 31 + inputs.astype(np.int64) @ weights.T
    return np.clip(acc >> 4, -128, 127).astype(np.int8)


def write_model(folder, extra="", body=""):
    folder.mkdir(parents=True)
    (folder / "tinykd_model.h").write_text(HEADER)
    (folder / "tinykd_model.c").write_text(SOURCE.format(extra=extra, body=body))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("fw") / "c")


@pytest.fixture(scope="module")
def golden():
    return np.random.default_rng(0).integers(-128, 128, (1000, IN_BYTES), dtype=np.int8)


def test_native_runs_1000_vectors(model_dir, golden, tmp_path):
    board = load_board("native")
    runner = make_runner("native", build_firmware(model_dir, board, tmp_path), board)
    outputs, instructions = runner.run(golden)
    np.testing.assert_array_equal(outputs, stand_in(golden))
    assert instructions is None


def test_native_build_for_a_board_compiles_the_kernels_its_flags_pick(golden, tmp_path):
    """Natively, a Cortex-M board's firmware runs the kernel variant its own build compiles (as plain C),
    which is how `tinykd build` checks a bundle; the host profile keeps the host's (portable)."""
    model = write_model(tmp_path / "c", extra='#include "runtime/tinykd_kernels.h"', body="output[0] = TK_KERNELS;")
    (model / "runtime").mkdir()
    shutil.copy(RUNTIME_DIR / "tinykd_kernels.h", model / "runtime")
    numbers = {"portable": 1, "dsp": 2, "mve": 3}  # TK_KERNELS_PORTABLE, _DSP and _MVE
    for name, variant in (("native", "portable"), ("rpi-pico", "portable"), ("nucleo-f446re", "dsp"),
                          ("mps3-an547", "mve")):
        board = load_board(name)
        outputs, _ = make_runner("native", build_firmware(model, board, tmp_path / name, "native"), board).run(
            golden[:1])
        assert outputs[0, 0] == numbers[variant], name


@pytest.mark.parametrize("board_name", ["nucleo-f767zi", "nucleo-f446re", "rpi-pico"])
def test_qemu_outputs_and_repeatable_instruction_count(board_name, model_dir, golden, tmp_path):
    board = load_board(board_name)
    elf = build_firmware(model_dir, board, tmp_path)
    runner = make_runner("qemu", elf, board, timeout=120)
    outputs, instructions = runner.run(golden)
    np.testing.assert_array_equal(outputs, stand_in(golden))
    ticks = runner.last_summary["ticks_total"]
    again, instructions_again = runner.run(golden)
    np.testing.assert_array_equal(again, outputs)
    # ~23k multiply-adds with a `% 11` each: ~12 instructions per step, ~64 where % calls a library
    # division (Cortex-M0+ has no divide instruction).
    assert 5 * IN_BYTES * OUT_BYTES < instructions < 100 * IN_BYTES * OUT_BYTES
    assert instructions_again == instructions and runner.last_summary["ticks_total"] == ticks
    summary = runner.last_summary
    assert summary["ticks_max"] - summary["ticks_min"] <= 1   # data-independent code, 40-instruction ticks


def test_progress_runs_the_vectors_in_parts_with_the_same_results(model_dir, golden, tmp_path):
    """With a progress callback the vectors go through in 20 processes: the same outputs, the same
    instruction count to within the timer's resolution, and a count of finished vectors that only grows."""
    board = load_board("nucleo-f446re")
    runner = make_runner("qemu", build_firmware(model_dir, board, tmp_path), board, timeout=120)
    whole, instructions = runner.run(golden[:100])
    whole_summary = dict(runner.last_summary)
    done = []
    parts, instructions_in_parts = runner.run(golden[:100], done.append)
    np.testing.assert_array_equal(parts, whole)
    # each process starts the 40-instruction timer ticks at another phase: equal to within one tick
    assert abs(instructions_in_parts - instructions) <= 40 and runner.last_summary["vectors"] == 100
    assert runner.last_summary["checksum"] == whole_summary["checksum"]
    assert done == sorted(done) and len(done) == 20 and done[-1] == 100

def test_model_too_big_for_the_board_fails_to_link(tmp_path):
    big = write_model(tmp_path / "c", extra="const int8_t big_table[80000] = {1};",
                      body="output[0] += big_table[input[0] & 0xFF];")
    with pytest.raises(TinykdError, match=r"does not fit board bluepill: flash overflowed by [\d,]+ bytes "
                                          r"\(the board has 65,536\)") as error:
        build_firmware(big, load_board("bluepill"), tmp_path / "fw")
    assert "\n" not in str(error.value)


def test_buffers_too_big_for_the_ram_fail_to_link(tmp_path):
    big = write_model(tmp_path / "c", extra="static int8_t scratch[24000];",
                      body="scratch[input[1] & 0xFF] = 1; output[1] += scratch[input[2] & 0xFF];")
    with pytest.raises(TinykdError, match=r"does not fit board bluepill: RAM overflowed by [\d,]+ bytes"):
        build_firmware(big, load_board("bluepill"), tmp_path / "fw")


def test_fault_hang_and_wrong_input_size_are_one_line_errors(tmp_path, golden):
    faulty = write_model(tmp_path / "c", body="if (input[0] == 42) *(volatile int *)0xFFFFFFF0u = 1;\n"
                                              "    while (input[0] == 7) { __asm__ volatile(\"\"); }")
    board = load_board("nucleo-f446re")
    runner = make_runner("qemu", build_firmware(faulty, board, tmp_path / "fw"), board, timeout=60)
    vectors = golden[:3].copy()
    vectors[:, 0] = 0
    vectors[1, 0] = 42
    with pytest.raises(TinykdError, match=r"failed \(exit code 3\): fault exception 3 at pc=0x"):
        runner.run(vectors)
    with pytest.raises(TinykdError, match="do not have the byte count the model takes"):
        runner.run(golden[:2, :100])
    vectors[1, 0] = 7
    runner.timeout = 2
    with pytest.raises(TinykdError, match=r"QEMU mps2-an386 running firmware.elf did not finish within 2 s"):
        runner.run(vectors)


def test_linker_script_uses_the_machine_addresses_and_the_board_budget():
    pico = render_linker_script(load_board("rpi-pico"), MACHINES["mps2-an385"])
    assert "ORIGIN = 0x00000000, LENGTH = 2097152" in pico and "ORIGIN = 0x20000000, LENGTH = 270336" in pico
    an547 = render_linker_script(load_board("mps3-an547"), MACHINES["mps3-an547"])
    assert "ORIGIN = 0x10000000, LENGTH = 524288" in an547 and "ORIGIN = 0x30000000, LENGTH = 524288" in an547


def test_missing_toolchain_is_a_one_line_error(monkeypatch, model_dir, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "arm-none-eabi-gcc" else "/usr/bin/" + name)
    with pytest.raises(TinykdError, match="arm-none-eabi-gcc not found: install the Debian packages gcc-arm"):
        build_firmware(model_dir, load_board("nucleo-f446re"), tmp_path)



def test_the_same_sources_for_the_same_board_come_from_the_cache(tmp_path, monkeypatch, golden):
    """A build is kept under the hash of what went into it: the same bundle again is a copy, not a
    compilation; another source byte or other board flags compile anew."""
    monkeypatch.setenv("TINYKD_CACHE", str(tmp_path / "cache"))
    source, board = write_model(tmp_path / "c"), load_board("nucleo-f446re")
    first = build_firmware(source, board, tmp_path / "first")
    again = build_firmware(source, board, tmp_path / "again")
    assert again.read_bytes() == first.read_bytes() and not (tmp_path / "again" / "cmake-build").exists()
    other_flags = build_firmware(source, load_board("nucleo-f767zi"), tmp_path / "f767")
    assert (tmp_path / "f767" / "cmake-build").is_dir() and other_flags.read_bytes() != first.read_bytes()
    changed = write_model(tmp_path / "changed", body="output[0] ^= 1;")
    flipped = make_runner("qemu", build_firmware(changed, board, tmp_path / "changed-fw"), board).run(golden[:4])[0]
    expected = stand_in(golden[:4])
    expected[:, 0] ^= 1
    np.testing.assert_array_equal(flipped, expected)
    assert len(list((tmp_path / "cache" / "firmware").iterdir())) == 3


@pytest.mark.parametrize("target, board_name, message", [
    ("bogus", "nucleo-f446re", "unknown target 'bogus'; known targets: native, qemu, serial"),
    ("serial", "nucleo-f446re", "target serial needs a port, as in serial:/dev/ttyACM0"),
    ("qemu", "native", "board native is the host; run it with the native target"),
])
def test_a_target_that_cannot_run_is_refused_before_any_work(target, board_name, message):
    with pytest.raises(TinykdError, match=re.escape(message)):
        check_target(target, load_board(board_name))


def test_a_board_profile_with_an_unknown_qemu_machine_is_refused_when_read(tmp_path, monkeypatch):
    profile = (BUILTIN_DIR / "nucleo-f446re.toml").read_text()
    (tmp_path / "odd.toml").write_text(profile.replace('"mps2-an386"', '"mps2-an999"')
                                       .replace('name = "nucleo-f446re"', 'name = "odd"'))
    monkeypatch.setenv("TINYKD_BOARDS", str(tmp_path))
    with pytest.raises(TinykdError, match=r"odd.toml: qemu_machine = 'mps2-an999' is not a machine tinykd can run; "
                                          r"known: mps2-an385"):
        load_board("odd")

# ------------------------------------------------------------------------------ serial framing, no hardware

class FakeBoard:
    """A pyserial-like port with the stand-in model behind it, speaking the board side of the protocol."""

    def __init__(self, silent=False, corrupt=False, banner=b"boot v1\r\n"):
        self.pending, self.received = bytearray(banner), bytearray()
        self.silent, self.corrupt, self.timeout, self.closed = silent, corrupt, 1.0, False
        self.vectors, self.crc = 0, 0

    def write(self, data):
        self.received += data
        while len(self.received) >= 7:
            length = struct.unpack_from("<I", self.received, 3)[0]
            if len(self.received) < 11 + length:
                return
            kind, payload = self.received[2:3], bytes(self.received[7:7 + length])
            del self.received[:11 + length]
            if not self.silent:
                self.answer(bytes(kind), payload)

    def answer(self, kind, payload):
        if kind == b"h":
            self.pending += encode_frame(b"H", struct.pack("<IIII", IN_BYTES, OUT_BYTES, 1, 25_000_000))
        elif kind == b"i":
            out = stand_in(np.frombuffer(payload, np.int8)[None])[0].tobytes()
            self.vectors, self.crc = self.vectors + 1, binascii.crc32(out, self.crc)
            frame = bytearray(encode_frame(b"o", struct.pack("<I", 100) + out))
            if self.corrupt:
                frame[8] ^= 0xFF
            self.pending += frame
        elif kind == b"q":
            self.pending += encode_frame(b"Q", struct.pack("<II", self.vectors, self.crc))

    def read(self, count):
        data = bytes(self.pending[:count])
        del self.pending[:count]
        if not data:
            time.sleep(min(self.timeout, 0.05))
        return data

    def close(self):
        self.closed = True


def serial_runner(board, timeout=2.0):
    return SerialRunner("/dev/fake", timeout=timeout, open_port=lambda port, baud: board)


def test_serial_round_trip_with_a_fake_board(golden):
    board = FakeBoard()
    outputs, instructions = serial_runner(board).run(golden[:20])
    np.testing.assert_array_equal(outputs, stand_in(golden[:20]))
    assert instructions == 4000 and board.closed


def test_serial_silent_board_times_out_with_a_clear_error(golden):
    start = time.monotonic()
    with pytest.raises(TinykdError, match=r"the board on /dev/fake did not answer within 0.3 s"):
        serial_runner(FakeBoard(silent=True), timeout=0.3).run(golden[:2])
    assert time.monotonic() - start < 2


def test_serial_corrupted_frame_is_detected(golden):
    with pytest.raises(TinykdError, match="corrupted frame \\(checksum mismatch\\)"):
        serial_runner(FakeBoard(corrupt=True)).run(golden[:2])


def test_frame_encoding_and_resynchronisation():
    frame = encode_frame(b"o", b"\x01\x02")
    assert frame[:7] == b"TKo\x02\x00\x00\x00"
    assert struct.unpack("<I", frame[-4:])[0] == binascii.crc32(b"o\x02\x00\x00\x00\x01\x02")
    port = FakeBoard(banner=b"T garbage TT" + frame)
    assert FrameReader(port, "port", 1.0).read() == (b"o", b"\x01\x02")


def test_serial_over_a_pty_with_pyserial(golden):
    """The host side through a real tty: pyserial on a pty's follower end, a fake board on its leader end."""
    leader, follower = pty.openpty()
    tty.setraw(follower)
    board = FakeBoard(banner=b"")

    def serve():
        while True:
            try:
                board.write(os.read(leader, 4096))
                if board.pending:
                    os.write(leader, bytes(board.pending))
                    board.pending.clear()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        target = f"serial:{os.ttyname(follower)}"
        outputs, _ = make_runner(target, None, load_board("nucleo-f446re"), timeout=5).run(golden[:5])
        np.testing.assert_array_equal(outputs, stand_in(golden[:5]))
    finally:
        os.close(follower)
        os.close(leader)


def test_serial_firmware_on_qemu_uart(model_dir, golden, tmp_path):
    """The board side in C: the uart firmware on QEMU's CMSDK UART0, reached through a TCP socket."""
    board = load_board("nucleo-f446re")
    elf = build_firmware(model_dir, board, tmp_path, target="serial")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    qemu = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                             "-icount", "shift=0", "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
                             "-kernel", str(elf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def connect(url, baud):
            import serial

            for _ in range(100):
                try:
                    return serial.serial_for_url(url, baudrate=baud, timeout=1.0)
                except serial.SerialException:
                    time.sleep(0.05)
            raise AssertionError("QEMU did not listen")

        runner = SerialRunner(f"socket://127.0.0.1:{port}", timeout=20, open_port=connect)
        outputs, instructions = runner.run(golden[:4])   # ~5 KB/s through QEMU's UART model
        np.testing.assert_array_equal(outputs, stand_in(golden[:4]))
        assert instructions and instructions > 5 * IN_BYTES * OUT_BYTES
    finally:
        qemu.kill()
        qemu.wait()
