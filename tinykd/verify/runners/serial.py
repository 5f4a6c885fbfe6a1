"""A flashed board on a serial line (pyserial), speaking tinykd's framed protocol: one frame per vector."""

from __future__ import annotations

import binascii
import struct
import time
from typing import Callable

import numpy as np

from tinykd.core.errors import TinykdError
from tinykd.verify.runners.base import Runner, check_inputs, register

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

    def run(self, inputs: np.ndarray, progress: Callable[[int], None] | None = None
            ) -> tuple[np.ndarray, int | None]:
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
                if progress:
                    progress(index + 1)
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
