"""Rebuild a finished NDTiff dataset from what a killed run left on disk.

A run killed at any moment leaves its .tif files, each image written as one
sequential write of its TIFF directory (IFD), pixels and metadata JSON, and
an index flushed after each image. What may be wrong: the last file is still
preallocated to 4 GiB (sparse), its IFD chain ends in unwritten space, the
last image may be half-written, the index may lag by one image or be
missing. The TIFF structure alone says where every image is; an image counts
as whole when its IFD is consistent and its metadata (written last) parses
as JSON. Recovery then writes the index anew (atomically), ends each file's
IFD chain after its last whole image, trims the file there (as ndstorage's
finish() does), and records what it did in recovery.json.

Memory does not grow with the number of images: images are streamed from
the files to the new index one by one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mmapp.data.coordinate_set import CoordinateSet
from mmapp.data.datasets import INDEX_FILE, PRESET_COPY, write_text_atomically
from mmapp.data.errors import NotADatasetError
from mmapp.data.ndtiff_index import EIGHT_BIT, SIXTEEN_BIT, IndexEntry, read_entries
from mmapp.data.ndtiff_sink import ordered_axes

RECOVERY_FILE = "recovery.json"
PREALLOCATED_SIZE = 4 * 1024**3  # ndstorage's MAX_FILE_SIZE: every new .tif
_NDTIFF_MAGIC = 483729
_SUMMARY_MD_HEADER = 2355492
_ENTRIES = 13
_IFD_BYTES = 2 + _ENTRIES * 12 + 4 + 16  # + two resolution rationals
_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 282, 283, 296, 51123)
_TIF_NAME = re.compile(r"^(?P<name>.*)_NDTiffStack(?:_(?P<n>\d+))?\.tif$")


# --- what is on disk -------------------------------------------------------------
def tif_files(path: Path) -> list[Path]:
    """The dataset's .tif files in the order they were written."""
    found = []
    for entry in os.listdir(path):
        match = _TIF_NAME.match(entry)
        if match and (path / entry).is_file():
            found.append((int(match.group("n") or 0), entry))
    return [path / name for _, name in sorted(found)]


def _file_rank(filename: str) -> int:
    match = _TIF_NAME.match(filename)
    return int(match.group("n") or 0) if match else -1


def _read_header(f: BinaryIO) -> tuple[int, dict] | None:
    """(first IFD offset, summary metadata) of an NDTiff file, None if not whole."""
    f.seek(0)
    head = f.read(28)
    if len(head) < 28 or head[:4] != b"II*\x00":
        return None
    first_ifd, magic, _, _, md_header, md_length = struct.unpack_from("<6I", head, 4)
    if magic != _NDTIFF_MAGIC or md_header != _SUMMARY_MD_HEADER:
        return None
    try:
        summary = json.loads(f.read(md_length))
    except ValueError:
        return None
    return first_ifd, summary if isinstance(summary, dict) else {}


@dataclass
class DatasetStatus:
    """Whether a folder is a dataset and whether its run finished it."""

    path: Path
    is_dataset: bool
    finished: bool
    problems: list[str] = field(default_factory=list)  # why it is unfinished


def dataset_status(path: str | Path) -> DatasetStatus:
    """Finished, unfinished (with the reasons) or not a dataset; cheap (no
    image is read: file sizes and headers only)."""
    path = Path(path)
    if not path.is_dir():
        return DatasetStatus(path, False, False, [f"{path} is not a folder"])
    tifs = tif_files(path)
    has_index = (path / INDEX_FILE).is_file()
    if not (tifs or has_index or (path / PRESET_COPY).is_file()):
        return DatasetStatus(path, False, False, [f"{path} holds no dataset files"])
    problems = []
    for tif in tifs:
        if tif.stat().st_size >= PREALLOCATED_SIZE:
            problems.append(f"{tif.name} is still preallocated (4 GiB)")
            continue
        with open(tif, "rb") as f:
            if _read_header(f) is None:
                problems.append(f"{tif.name} has no complete NDTiff header")
    if tifs and not has_index:
        problems.append(f"there is no {INDEX_FILE}")
    if not tifs and not (path / RECOVERY_FILE).is_file():
        problems.append("no image file: the run ended before its first image")
    return DatasetStatus(path, True, not problems, problems)


def find_unfinished(directory: str | Path) -> list[Path]:
    """Datasets left unfinished in `directory` (itself or its sub-folders), the
    ones a GUI offers to recover. Reads file sizes and headers only."""
    directory = Path(directory)
    candidates = [directory]
    with contextlib.suppress(OSError):
        candidates += sorted(p for p in directory.iterdir() if p.is_dir())
    found = []
    for candidate in candidates:
        with contextlib.suppress(OSError):
            status = dataset_status(candidate)
            if status.is_dataset and not status.finished:
                found.append(candidate)
    return found


# --- walking one file's images -----------------------------------------------------
@dataclass
class _Image:
    """A whole image found in a file."""

    ifd_offset: int
    entry: IndexEntry
    next_ifd: int

    @property
    def end(self) -> int:
        return self.entry.md_offset + self.entry.md_length


@dataclass
class LeftOut:
    """An image (or part of one) found on disk and not recovered, and why."""

    file: str
    offset: int
    reason: str
    zero_pixels: float | None = None  # share of zero pixels, when readable


def _zero_share(f: BinaryIO, offset: int, n_bytes: int, depth: int) -> float | None:
    """The share of zero pixels (unwritten space in a sparse file reads zero)."""
    f.seek(offset)
    data = f.read(n_bytes)
    if not data or len(data) % depth:
        return None
    pixels = np.frombuffer(data, np.uint8 if depth == 1 else np.uint16)
    return round(float(np.count_nonzero(pixels == 0)) / pixels.size, 4)


def _walk(f: BinaryIO, filename: str, size: int, first_ifd: int) -> Iterator[Any]:
    """Yield each whole image (_Image) or LeftOut, following the IFD chain."""
    offset = first_ifd
    while 0 < offset < size:  # each IFD points forward: the walk always ends
        f.seek(offset)
        raw = f.read(_IFD_BYTES)
        if not raw.strip(b"\0"):
            return  # nothing was written here: the chain ends cleanly
        parsed = _parse_ifd(raw, offset, size)
        if isinstance(parsed, str):
            yield LeftOut(filename, offset, f"half-written image: {parsed}")
            return
        width, height, bits, pix, md_offset, md_length, next_ifd = parsed
        depth = bits // 8
        f.seek(md_offset)
        try:
            metadata = json.loads(f.read(md_length))
            if not isinstance(metadata, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            share = _zero_share(f, pix, width * height * depth, depth)
            yield LeftOut(
                filename,
                offset,
                "half-written image: its metadata (written after the pixels) "
                "is incomplete",
                share,
            )
        else:
            axes = metadata.get("Axes")
            entry = IndexEntry(
                axes if isinstance(axes, dict) else {},
                filename,
                pix,
                width,
                height,
                EIGHT_BIT if bits == 8 else SIXTEEN_BIT,
                md_offset,
                md_length,
            )
            yield _Image(offset, entry, next_ifd)
        if next_ifd == 0:
            return
        offset = next_ifd


def _parse_ifd(raw: bytes, offset: int, size: int) -> tuple | str:
    """The image an ndstorage IFD describes, or what is wrong with it."""
    if len(raw) < _IFD_BYTES:
        return "its header runs past the end of the file"
    (count,) = struct.unpack_from("<H", raw, 0)
    if count != _ENTRIES:
        return f"its header has {count} entries, not {_ENTRIES}"
    fields = {}
    for i in range(_ENTRIES):
        tag, _, n, value = struct.unpack_from("<HHII", raw, 2 + 12 * i)
        if tag != _TAGS[i]:
            return "its header is incomplete"
        fields[tag] = (n, value)
    (next_ifd,) = struct.unpack_from("<I", raw, 2 + 12 * _ENTRIES)
    width, height = fields[256][1], fields[257][1]
    bits, pix, n_bytes = fields[258][1], fields[273][1], fields[279][1]
    md_length, md_offset = fields[51123]
    if bits not in (8, 16) or fields[277][1] != 1:
        return f"unsupported pixels ({bits} bits, {fields[277][1]} samples)"
    if width <= 0 or height <= 0 or n_bytes != width * height * bits // 8:
        return "its header is incomplete"
    if pix != offset + _IFD_BYTES or md_offset != pix + n_bytes or md_length <= 0:
        return "its header is incomplete"
    if md_offset + md_length > size:
        return "it runs past the end of the file"
    if next_ifd != 0 and not md_offset + md_length <= next_ifd < size:
        return "its header is incomplete"
    return width, height, bits, pix, md_offset, md_length, next_ifd


# --- recovery ------------------------------------------------------------------------
@dataclass
class FileResult:
    """What recovery did to one .tif file."""

    file: str
    images: int
    size_before: int
    size_after: int  # 0: removed (no whole image in it)


@dataclass
class RecoveryReport:
    """What recovery found and did (also saved as recovery.json)."""

    dataset: str
    already_finished: bool = False
    frames_in_index_before: int = 0
    frames_found_on_disk: int = 0
    frames_recovered: int = 0
    left_out: list[LeftOut] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why it was unfinished
    recovered_at: str = ""

    @property
    def frames_left_out(self) -> int:
        return len(self.left_out)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["frames_left_out"] = self.frames_left_out
        return data

    def summary(self) -> str:
        """One line for the operator."""
        if self.already_finished:
            return f"{self.dataset} is already finished; nothing to recover"
        lines = [
            f"recovered {self.frames_recovered} of {self.frames_found_on_disk} "
            f"frames found on disk ({self.frames_in_index_before} were indexed, "
            f"{self.frames_left_out} left out)"
        ]
        for out in self.left_out:
            zeros = (
                f" ({out.zero_pixels:.0%} of its pixels read zero)"
                if out.zero_pixels is not None
                else ""
            )
            where = f"{out.file} at byte {out.offset}"
            lines.append(f"  left out: {where}: {out.reason}{zeros}")
        return "\n".join(lines)


@dataclass
class _Finish:
    """How one file is to be finished: relinks, the last image, the size."""

    path: Path
    relinks: list[tuple[int, int]]  # (pointer location, new value)
    size: int  # 0: remove the file
    size_before: int
    images: int


class _IndexCursor:
    """The old index entries in write order, consumed alongside the files."""

    def __init__(self, path: Path) -> None:
        self._entries = read_entries(path)
        self._next: IndexEntry | None = next(self._entries, None)
        self.count = int(self._next is not None)

    def axes_at(self, filename: str, pix_offset: int) -> dict | None:
        """The indexed axes of the image at (file, offset), skipping older entries."""
        here = (_file_rank(filename), pix_offset)
        while self._next is not None:
            entry = self._next
            at = (_file_rank(entry.filename), entry.pix_offset)
            if at > here:
                return None
            self._advance()
            if at == here:
                return entry.axes
        return None

    def _advance(self) -> None:
        self._next = next(self._entries, None)
        self.count += int(self._next is not None)

    def drain(self) -> int:
        while self._next is not None:
            self._advance()
        return self.count


def recover_dataset(path: str | Path) -> RecoveryReport:
    """Rebuild a finished dataset from what reached the disk (idempotent).

    Raises NotADatasetError for a folder that is not a dataset and OSError if
    the disk refuses a write; a finished dataset is left as it is
    (`already_finished`).
    """
    path = Path(path)
    status = dataset_status(path)
    if not status.is_dataset:
        raise NotADatasetError(f"{path} is not a dataset: {'; '.join(status.problems)}")
    report = RecoveryReport(str(path), problems=list(status.problems))
    if status.finished:
        report.already_finished = True
        return report
    report.recovered_at = datetime.now().isoformat(timespec="seconds")
    cursor = _IndexCursor(path / INDEX_FILE)
    written = CoordinateSet()
    finishes: list[_Finish] = []
    new_index = path / f".{INDEX_FILE}.recovering"
    with open(new_index, "wb") as out:
        for tif in tif_files(path):
            finishes.append(_scan_file(tif, cursor, written, out, report))
        out.flush()
        os.fsync(out.fileno())
    report.frames_in_index_before = cursor.drain()
    os.replace(new_index, path / INDEX_FILE)  # first: it names only whole images
    for finish in finishes:
        _finish_file(finish)
        report.files.append(
            FileResult(finish.path.name, finish.images, finish.size_before, finish.size)
        )
    write_text_atomically(
        path / RECOVERY_FILE, json.dumps(report.as_json(), indent=2) + "\n"
    )
    return report


def _scan_file(
    tif: Path,
    cursor: _IndexCursor,
    written: CoordinateSet,
    out: BinaryIO,
    report: RecoveryReport,
) -> _Finish:
    """Append the file's whole images to the new index; say how to finish it."""
    size = tif.stat().st_size
    finish = _Finish(tif, [], 0, size, 0)
    with open(tif, "rb") as f:
        header = _read_header(f)
        if header is None:
            if size:
                report.left_out.append(
                    LeftOut(tif.name, 0, "the file's NDTiff header is incomplete")
                )
            return finish
        pointer = 4  # where the pointer to the next whole image's IFD lies
        last: _Image | None = None
        skipped = False
        for found in _walk(f, tif.name, size, header[0]):
            report.frames_found_on_disk += 1
            if isinstance(found, LeftOut):
                report.left_out.append(found)
                skipped = True
                continue
            entry = found.entry
            indexed = cursor.axes_at(tif.name, entry.pix_offset)
            axes = indexed if indexed is not None else entry.axes
            if not axes:
                reason = "no coordinates: not indexed, its metadata has no Axes"
                report.left_out.append(LeftOut(tif.name, found.ifd_offset, reason))
                skipped = True
                continue
            if not written.add(axes):
                report.left_out.append(
                    LeftOut(tif.name, found.ifd_offset, f"duplicate coordinates {axes}")
                )
                skipped = True
                continue
            if skipped:  # the chain must skip what was left out
                finish.relinks.append((pointer, found.ifd_offset))
                skipped = False
            entry = replace(entry, axes=ordered_axes(axes))
            out.write(entry.pack())
            report.frames_recovered += 1
            finish.images += 1
            pointer = found.ifd_offset + 2 + 12 * _ENTRIES
            last = found
    if last is not None:
        finish.relinks.append((pointer, 0))  # the chain ends after the last one
        finish.size = last.end
    return finish


def _finish_file(finish: _Finish) -> None:
    """End the file's IFD chain after its last whole image and trim it there
    (a file without a whole image is removed)."""
    if finish.size == 0:
        finish.path.unlink(missing_ok=True)
        return
    with open(finish.path, "r+b") as f:
        for location, value in finish.relinks:
            f.seek(location)
            f.write(struct.pack("<I", value))
        f.truncate(finish.size)
        f.flush()
        os.fsync(f.fileno())
