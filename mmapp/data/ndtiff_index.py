"""The NDTiff.index file: one binary entry per image, read and written in
bounded memory (a long run's index never has to fit in RAM).

An entry is: u32 length + the image's axes as JSON, u32 length + the .tif
file's name, then eight u32: pixel offset, width, height, pixel type, pixel
compression, metadata offset, metadata length, metadata compression (little
endian, as ndstorage writes them on every platform mmapp runs on).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_U32 = struct.Struct("<I")
_NUMBERS = struct.Struct("<8I")
CHUNK_BYTES = 1 << 20
_MAX_AXES_BYTES = 1 << 16  # longer: not an entry (garbage or unwritten space)
_MAX_NAME_BYTES = 4096

EIGHT_BIT, SIXTEEN_BIT = 0, 1  # ndstorage's pixel types for uint8 / uint16
# axis names -> the JSON text before each value ('{"time": ', ', "z": ', ...)
_AXES_PREFIXES: dict[tuple, tuple[str, ...]] = {}


def axes_json(axes: Mapping[str, int | str]) -> bytes:
    """The axes as json.dumps writes them (same bytes), in a fraction of its time."""
    names = tuple(axes)
    prefixes = _AXES_PREFIXES.get(names)
    if prefixes is None:
        if not all(type(name) is str for name in names):
            return json.dumps(dict(axes)).encode("utf-8")
        prefixes = tuple(
            ("{" if i == 0 else ", ") + json.dumps(name) + ": "
            for i, name in enumerate(names)
        )
        if len(_AXES_PREFIXES) < 256:  # a run has a handful of axis combinations
            _AXES_PREFIXES[names] = prefixes
    parts = [
        prefix + (str(value) if type(value) is int else json.dumps(value))
        for prefix, value in zip(prefixes, axes.values(), strict=True)
    ]
    return ("".join(parts) + "}").encode("utf-8") if parts else b"{}"


def pack_length_prefixed(data: bytes) -> bytes:
    """u32 length + the bytes (an index entry's axes and file name)."""
    return _U32.pack(len(data)) + data


def pack_entry_numbers(
    pix_offset: int,
    width: int,
    height: int,
    pixel_type: int,
    md_offset: int,
    md_length: int,
) -> bytes:
    """The eight u32 that end an index entry (no compression)."""
    return _NUMBERS.pack(
        pix_offset, width, height, pixel_type, 0, md_offset, md_length, 0
    )


@dataclass(frozen=True)
class IndexEntry:
    """Where one image lives: its axes, file, pixels and metadata."""

    axes: dict[str, int | str]
    filename: str
    pix_offset: int
    width: int
    height: int
    pixel_type: int
    md_offset: int
    md_length: int

    @property
    def byte_depth(self) -> int:
        """Bytes per pixel (ndstorage: 8-bit types 1, every deeper type 2)."""
        return 1 if self.pixel_type in (EIGHT_BIT, 2) else 2

    def pack(self) -> bytes:
        """The entry's bytes in NDTiff.index (axes in the given order)."""
        axes = axes_json(self.axes)
        name = self.filename.encode("utf-8")
        return b"".join(
            (
                _U32.pack(len(axes)),
                axes,
                _U32.pack(len(name)),
                name,
                _NUMBERS.pack(
                    self.pix_offset,
                    self.width,
                    self.height,
                    self.pixel_type,
                    0,
                    self.md_offset,
                    self.md_length,
                    0,
                ),
            )
        )


class _End(Exception):
    """No entry starts here: a terminating zero, unwritten space or garbage."""


def _parse(data: bytes | memoryview, pos: int) -> tuple[IndexEntry, int] | None:
    """The entry at `pos` and the position after it (None: not all read yet).

    Raises _End where no entry can start.
    """
    end = len(data)
    if pos + 4 > end:
        return None
    (n_axes,) = _U32.unpack_from(data, pos)
    if not 0 < n_axes <= _MAX_AXES_BYTES:
        raise _End
    name_at = pos + 4 + n_axes
    if name_at + 4 > end:
        return None
    (n_name,) = _U32.unpack_from(data, name_at)
    if n_name > _MAX_NAME_BYTES:
        raise _End
    numbers_at = name_at + 4 + n_name
    if numbers_at + _NUMBERS.size > end:
        return None
    try:
        axes = json.loads(bytes(data[pos + 4 : name_at]))
        name = bytes(data[name_at + 4 : numbers_at]).decode("utf-8")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _End from exc
    if not isinstance(axes, dict):
        raise _End
    pix, width, height, ptype, _, md_offset, md_length, _ = _NUMBERS.unpack_from(
        data, numbers_at
    )
    entry = IndexEntry(axes, name, pix, width, height, ptype, md_offset, md_length)
    return entry, numbers_at + _NUMBERS.size


def iter_entries(source: BinaryIO) -> Iterator[IndexEntry]:
    """Every whole entry of an index file, read a chunk at a time.

    A torn last entry (a crash while it was written) or one that does not
    parse ends the iteration: what came before it is returned.
    """
    pending = b""
    while True:
        chunk = source.read(CHUNK_BYTES)
        data = pending + chunk if pending else chunk
        pos = 0
        while True:
            try:
                parsed = _parse(data, pos)
            except _End:
                return
            if parsed is None:
                break
            entry, pos = parsed
            yield entry
        pending = data[pos:]
        if not chunk:
            return


def read_entries(path: str | Path) -> Iterator[IndexEntry]:
    """Every whole entry of the index file at `path` (none if it is missing)."""
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with source:
        yield from iter_entries(source)


def find_entry(path: str | Path, axes: Mapping[str, int | str]) -> IndexEntry | None:
    """The last entry with these axes in the index at `path` (a linear scan)."""
    wanted = dict(axes)
    found = None
    for entry in read_entries(path):
        if entry.axes == wanted:
            found = entry
    return found
