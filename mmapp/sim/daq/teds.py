"""Virtual TEDS (IEEE 1451.4): what a client configures on an AI physical
channel from a .ted file, read back as the physical channel's TEDS attributes.

A .ted file holds one bit per byte (0 or 1): a 40-bit file header, then the
TEDS bit stream, least significant bit of each byte first. The basic TEDS (64
bits: manufacturer, model, version letter and number, serial number) is
followed by a 2-bit selector and the 8-bit id of the first template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmapp.sim.daq.errors import (
    TEDS_SENSOR_DATA_ERROR,
    TEDS_SENSOR_NOT_DETECTED,
    DaqmxError,
)

FILE_HEADER_BITS = 40
BASIC_TEDS_BITS = 64
TEMPLATE_ID_AT = BASIC_TEDS_BITS + 2  # after the 2-bit selector


@dataclass(frozen=True)
class Teds:
    """A TEDS bit stream and the fields a client reads from it."""

    bits: tuple[int, ...]

    def field(self, start: int, width: int) -> int:
        """An unsigned field of `width` bits at bit `start` (LSB first)."""
        return sum(b << k for k, b in enumerate(self.bits[start : start + width]))

    @property
    def bit_stream(self) -> bytes:
        """The stream as bytes (the last byte zero-padded)."""
        padded = self.bits + (0,) * (-len(self.bits) % 8)
        return bytes(
            sum(b << k for k, b in enumerate(padded[i : i + 8]))
            for i in range(0, len(padded), 8)
        )

    @property
    def mfg_id(self) -> int:
        """Manufacturer id (14 bits)."""
        return self.field(0, 14)

    @property
    def model_num(self) -> int:
        """Model number (15 bits)."""
        return self.field(14, 15)

    @property
    def version_letter(self) -> str:
        """Version letter (5 bits, 1 = 'A')."""
        value = self.field(29, 5)
        return chr(64 + value) if value else ""

    @property
    def version_num(self) -> int:
        """Version number (6 bits)."""
        return self.field(34, 6)

    @property
    def serial_num(self) -> int:
        """Serial number (24 bits)."""
        return self.field(40, 24)

    @property
    def template_ids(self) -> list[int]:
        """The first template's id (none if the stream is only basic TEDS)."""
        if len(self.bits) < TEMPLATE_ID_AT + 8:
            return []
        return [self.field(TEMPLATE_ID_AT, 8)]


def load(path: str) -> Teds:
    """Parse a .ted file (DAQmx's TEDS data error if it is not one)."""
    try:
        raw = Path(path).read_bytes() if path else b""
    except OSError:
        raw = b""
    bits = tuple(raw[FILE_HEADER_BITS:])
    if len(bits) < BASIC_TEDS_BITS or any(b > 1 for b in raw):
        raise DaqmxError(TEDS_SENSOR_DATA_ERROR, f"File Path: {path}")
    return Teds(bits)


def from_bytes(stream: bytes) -> Teds:
    """A bit stream as bytes (DAQmx's TEDS data error if shorter than basic
    TEDS)."""
    bits = tuple((byte >> k) & 1 for byte in stream for k in range(8))
    if len(bits) < BASIC_TEDS_BITS:
        raise DaqmxError(TEDS_SENSOR_DATA_ERROR, f"Bit stream: {len(stream)} bytes")
    return Teds(bits)


def write(stream_or_path: bytes | str, channel: str) -> None:
    """Writing TEDS to a sensor: the stream must be valid TEDS, and no sensor
    memory is wired to the simulated card's terminals."""
    if isinstance(stream_or_path, str):
        load(stream_or_path)
    else:
        from_bytes(stream_or_path)
    raise DaqmxError(TEDS_SENSOR_NOT_DETECTED, f"Physical Channel: {channel}")
