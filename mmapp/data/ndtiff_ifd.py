"""One NDTiff image's TIFF directory (IFD), packed with one precompiled struct.

The bytes are ndstorage's (its writer's 13 entries, next-IFD pointer and X/Y
resolution; 8-bit frames tagged 8 bits per sample): ndstorage packs each field
with its own call, which at thousands of frames per second cost more CPU than
writing the frame.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ndstorage import ndtiff_file as nd

ENTRIES = 13
_ENTRY = "HHII"  # tag, type, count, value (SHORT values too, as ndstorage)
_IFD = struct.Struct("<H" + _ENTRY * ENTRIES + "I" + "IIII")
IFD_BYTES = _IFD.size  # 2 + 13 * 12 + 4 + 16
_SHORT, _LONG, _RATIONAL, _ASCII = 3, 4, 5, 2


class ImagePlace(NamedTuple):
    """Where an image's parts go in its file (all offsets absolute)."""

    ifd: bytes
    pixel_offset: int
    metadata_offset: int
    next_ifd_offset: int  # where the following image's IFD starts (even)
    next_ifd_offset_location: int  # where this IFD's next-IFD pointer is


def pack_ifd(
    position: int,
    height: int,
    width: int,
    byte_depth: int,
    metadata_length: int,
    resolution: tuple[int, int] = (1, 1),
) -> ImagePlace:
    """The IFD of one image whose IFD starts at `position` (an even offset)."""
    next_ifd_location = position + 2 + ENTRIES * 12
    x_resolution = next_ifd_location + 4
    y_resolution = x_resolution + 8
    pixel_offset = y_resolution + 8
    pixel_bytes = height * width * byte_depth
    metadata_offset = pixel_offset + pixel_bytes
    next_ifd = metadata_offset + metadata_length
    next_ifd += next_ifd & 1  # IFDs start on a word
    numerator, denominator = resolution
    ifd = _IFD.pack(
        ENTRIES,
        nd.WIDTH, _LONG, 1, width,
        nd.HEIGHT, _LONG, 1, height,
        nd.BITS_PER_SAMPLE, _SHORT, 1, byte_depth * 8,
        nd.COMPRESSION, _SHORT, 1, 1,
        nd.PHOTOMETRIC_INTERPRETATION, _SHORT, 1, 1,
        nd.STRIP_OFFSETS, _LONG, 1, pixel_offset,
        nd.SAMPLES_PER_PIXEL, _SHORT, 1, 1,
        nd.ROWS_PER_STRIP, _SHORT, 1, height,
        nd.STRIP_BYTE_COUNTS, _LONG, 1, pixel_bytes,
        nd.X_RESOLUTION, _RATIONAL, 1, x_resolution,
        nd.Y_RESOLUTION, _RATIONAL, 1, y_resolution,
        nd.RESOLUTION_UNIT, _SHORT, 1, 3,
        nd.MM_METADATA, _ASCII, metadata_length, metadata_offset,
        next_ifd,
        numerator, denominator, numerator, denominator,
    )  # fmt: skip
    return ImagePlace(ifd, pixel_offset, metadata_offset, next_ifd, next_ifd_location)
