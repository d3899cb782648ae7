"""NDTiff storage in `ndstorage`'s format, made safe for streaming.

ndstorage's writer is fast but unforgiving (see DESIGN.md): this sink drives
its file writer itself, validates every frame first, flushes the index after
every image (a crash loses at most the frame being written), rolls a failed
write back so earlier frames stay readable, always finishes the dataset, and
keeps memory and open files bounded however long the run (ndstorage's
dataset keeps every image's index entry in RAM and every file open).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydantic_core
from ndstorage.ndtiff_file import MAX_FILE_SIZE, SingleNDTiffWriter

from mmapp.data import file_io
from mmapp.data.coordinate_set import CoordinateSet
from mmapp.data.datasets import INDEX_FILE, create_dataset_folder
from mmapp.data.errors import (
    DuplicateCoordinatesError,
    InvalidFrameError,
    StorageWriteError,
)
from mmapp.data.ndtiff_ifd import IFD_BYTES, ImagePlace, pack_ifd
from mmapp.data.ndtiff_index import (
    EIGHT_BIT,
    SIXTEEN_BIT,
    IndexEntry,
    axes_json,
    find_entry,
    pack_entry_numbers,
    pack_length_prefixed,
)
from mmapp.data.validation import validate_frame

# Every image's axes in one order: tifffile compares each index entry's axes
# with the first one's and warns per image when the order differs.
AXIS_ORDER = ("position", "time", "grid", "z", "channel")


_RANK = {name: i for i, name in enumerate(AXIS_ORDER)}


def _axis_rank(axis: str) -> tuple[int, str]:
    return _RANK.get(axis, len(_RANK)), axis


_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}  # axis names -> their order


def ordered_axes(coords: Mapping[str, int | str]) -> dict[str, int | str]:
    """The coordinates in the dataset's one axis order (others after, by name)."""
    names = tuple(coords)
    order = _ORDERS.get(names)
    if order is None:
        order = tuple(sorted(names, key=_axis_rank))
        if len(_ORDERS) < 256:  # a run has a handful of axis combinations
            _ORDERS[names] = order
    return {k: coords[k] for k in order}


class _AxesKey(frozenset):
    """ndstorage's index key (a frozenset of (axis, value)) iterating in the
    dataset's axis order: ndstorage writes each index entry's axes in the key's
    iteration order, which for a plain frozenset varies from image to image."""

    def __iter__(self) -> Any:
        return iter(sorted(super().__iter__(), key=lambda item: _axis_rank(item[0])))


def json_safe(obj: Any) -> Any:
    """Make metadata JSON-serialisable (unknown objects become strings)."""
    return json.loads(json.dumps(obj, default=_json_default))


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    """An image's metadata as JSON bytes (pydantic-core's encoder: a third of
    the json module's time; numpy values and models as json_safe makes them)."""
    return pydantic_core.to_json(metadata, fallback=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_unset=True)
    return str(obj)


def write_gathered(fd: int, chunks: list[memoryview], offset: int) -> None:
    """Write every chunk at `offset` (pwritev, or seek + writes on Windows)."""
    file_io.write_gathered(fd, chunks, offset)


class _PositionedFile:
    """The writer's file with its position kept in Python: no lseek per call.

    ndstorage asks `tell()` several times per image; on a buffered file each
    is a system call. Every write here is at an offset this object keeps
    (`pwrite`/`pwritev`, or a seek and writes where the OS has no pwrite).
    """

    def __init__(self, file: Any) -> None:
        file.flush()
        self._file = file
        self._fd = file.fileno()
        self._pos = file.tell()

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks are supported")
        self._pos = pos
        return pos

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")  # header, summary, last IFD's null pointer
        done = file_io.write_at(self._fd, view, self._pos)
        self._pos += done
        return done

    def flush(self) -> None:
        """Nothing is buffered."""

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        os.ftruncate(self._fd, size)
        return size

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        self._file.close()


class GatheredWriter(SingleNDTiffWriter):
    """ndstorage's file writer, writing images with one gathered write.

    The stock writer issues three writes and a flush per image; each releases
    and re-takes the GIL, which the engine thread holds much of the time at
    high frame rates. It also tags 8-bit frames as 16 bits per sample, which
    tifffile then cannot read, keeps an index entry of every image of its
    file in RAM and a reader of the file open for ever. Here only a count of
    the file's images is kept, and the file is closed once finished. A run
    of images goes out with one gathered write. Layout and offsets stay
    ndstorage's own (:mod:`mmapp.data.ndtiff_ifd`).
    """

    def __init__(self, directory: str, filename: str, summary_md: Any) -> None:
        super().__init__(directory, filename, summary_md)
        self.reader.close()  # never read through: one descriptor per file, not two
        self.file = _PositionedFile(self.file)
        self.basename = os.path.basename(self.filename)
        self.index_name = pack_length_prefixed(self.basename.encode("utf-8"))
        self.images = 0

    def has_room(self, nbytes: int) -> bool:
        """Whether `nbytes` more (images, IFDs, metadata) fit in this file."""
        return self.file.tell() + nbytes + FILE_PADDING < MAX_FILE_SIZE

    def write_run(self, images: Sequence[tuple[np.ndarray, bytes]]) -> list[ImagePlace]:
        """Write images (IFD, pixels, metadata each) at the end of the file,
        with one gathered write; returns where each one went."""
        start = position = self.file.tell()
        start += start & 1  # IFDs start on a word (the byte skipped, as ndstorage)
        chunks: list[Any] = []
        places = []
        for pixels, metadata in images:
            pad = position & 1  # between images of the run: a zero byte
            position += pad
            height, width = pixels.shape
            place = pack_ifd(
                position,
                height,
                width,
                pixels.itemsize,
                len(metadata),
                (self.res_numerator, self.res_denominator),
            )
            ifd = b"\0" + place.ifd if pad and places else place.ifd
            chunks += (ifd, memoryview(pixels).cast("B"), metadata)
            position = place.metadata_offset + len(metadata)
            places.append(place)
        write_gathered(self.file.fileno(), chunks, start)
        self.file.seek(position)
        self.next_ifd_offset_location = places[-1].next_ifd_offset_location
        self.first_ifd = False
        self.images += len(places)
        return places


FILE_PADDING = 5_000_000  # ndstorage's margin before a file's 4 GiB limit


class PreparedFrame(NamedTuple):
    """A frame checked and encoded, ready to be written (:meth:`NDTiffSink.prepare`)."""

    axes: dict[str, int | str]
    key: frozenset
    image: np.ndarray
    metadata: bytes
    index_axes: bytes  # the index entry's length-prefixed axes JSON


# Index entries of the most recent images kept for get(); older ones are read
# back from NDTiff.index on disk.
RECENT_ENTRIES = 1024
TIFF_SUFFIX = "NDTiffStack"  # ndstorage's file names: NAME_NDTiffStack[_N].tif


class NDTiffSink:
    """One NDTiff dataset; every call from one writer thread (or under its lock).

    Files and index are ndstorage's format, written here so that memory and
    open files stay bounded however long the run: a finished .tif file is
    closed, the coordinates written are kept as runs of integers
    (:class:`CoordinateSet`), and only the latest index entries stay in RAM.
    `start_files` ({name: text}) are written into the dataset folder at once,
    each atomically (e.g. the run's preset), before any image.
    """

    def __init__(
        self,
        directory: str | Path,
        name: str,
        summary_metadata: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
        start_files: Mapping[str, str] | None = None,
    ) -> None:
        """A new dataset `directory/name_N` (ndstorage's next free N), or with
        `exact` the new folder `directory/name` itself (refused if it exists)."""
        directory = Path(directory)
        self._lock = threading.RLock()
        self._summary: dict[str, Any] = json_safe(dict(summary_metadata or {}))
        self.name = name
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageWriteError(
                f"cannot create the save directory {directory}: {exc.strerror}"
            ) from exc
        self._start_files = tuple(start_files or {})
        try:
            # the folder appears with its index and start files: a run killed
            # before its first image leaves a folder that opens (empty)
            self.path = create_dataset_folder(directory, name, start_files, exact=exact)
            self._index_file: Any = open(self.path / INDEX_FILE, "wb")  # noqa: SIM115
        except OSError as exc:
            raise _storage_error(exc, directory / name, 0) from exc
        self._writer: GatheredWriter | None = None
        self._file_index = 0
        self._written = CoordinateSet()
        # the fields of an IndexEntry (built only when one is read back)
        self._recent: OrderedDict[frozenset, tuple] = OrderedDict()
        self._index_length = 0  # bytes of NDTiff.index written (no tell() per image)
        self.images_written = 0
        self.failed: StorageWriteError | None = None
        self.finished = False

    def set_summary_metadata(self, summary: Mapping[str, Any]) -> None:
        """Replace the summary metadata (only before the first image)."""
        with self._lock:
            if self.images_written:
                raise RuntimeError("summary metadata is fixed once images are written")
            self._summary = json_safe(dict(summary))

    def _new_writer(self) -> GatheredWriter:
        """The next .tif file (ndstorage's names: NAME_NDTiffStack.tif, then _1...)."""
        suffix = f"_{self._file_index}" if self._file_index else ""
        filename = f"{self.name}_{TIFF_SUFFIX}{suffix}.tif"
        self._file_index += 1
        self._writer = GatheredWriter(str(self.path), filename, self._summary)
        return self._writer

    def prepare(
        self,
        coords: Mapping[str, int | str],
        image: np.ndarray,
        metadata: Mapping[str, Any] | str,
    ) -> PreparedFrame:
        """Check and encode a frame for :meth:`put_run` (any thread, no lock):
        the queue's producer does this while the writer is in a write."""
        image = validate_frame(image)
        axes = ordered_axes(coords)
        md = (
            metadata.encode("utf-8")
            if isinstance(metadata, str)
            else encode_metadata({**metadata, "Axes": axes})
        )
        index_axes = pack_length_prefixed(axes_json(axes))
        return PreparedFrame(axes, frozenset(axes.items()), image, md, index_axes)

    def _check_writable(self) -> None:
        if self.failed is not None:
            raise self.failed
        if self.finished:
            raise StorageWriteError(f"dataset {self.path} is already finished")

    def put(
        self,
        coords: Mapping[str, int | str],
        image: np.ndarray,
        metadata: Mapping[str, Any] | str,
    ) -> None:
        """Validate and write one frame; on failure nothing later is corrupted."""
        frame = self.prepare(coords, image, metadata)
        with self._lock:
            self._check_writable()
            if frame.axes in self._written:
                raise DuplicateCoordinatesError(
                    f"an image with coordinates {frame.axes} is already in {self.path}"
                )
            self._write((frame,), strict=True)

    def put_run(
        self,
        frames: Sequence[
            PreparedFrame | tuple[Mapping[str, int | str], np.ndarray, Any]
        ],
    ) -> bool:
        """Write consecutive frames with one gathered write and one index append.

        False, with nothing written, when the run cannot go in one piece (a
        frame invalid or already written, a new file needed, a write that
        failed and was rolled back): then put() each frame, which says why.
        """
        try:
            run = [
                frame if isinstance(frame, PreparedFrame) else self.prepare(*frame)
                for frame in frames
            ]
        except InvalidFrameError:
            return False
        with self._lock:
            self._check_writable()
            keys = {frame.key for frame in run}
            if len(keys) < len(run) or any(f.axes in self._written for f in run):
                return False
            nbytes = sum(IFD_BYTES + 1 + f.image.nbytes + len(f.metadata) for f in run)
            if self._writer is not None and not self._writer.has_room(nbytes):
                return False
            return self._write(run, strict=False)

    def _write(self, run: Sequence[PreparedFrame], *, strict: bool) -> bool:
        """Write the run and its index entries (under the lock); on failure roll
        back, then raise (strict) or return False."""
        writer = self._writer
        rollback = (
            (writer, writer.file.tell(), writer.next_ifd_offset_location)
            if writer is not None
            else None
        )
        index_length = self._index_length
        try:
            if writer is None:
                writer = self._new_writer()
            elif not writer.has_space_to_write(run[0].image, run[0].metadata):
                writer.finished_writing()  # the full file is closed
                writer = self._new_writer()
            places = writer.write_run([(f.image, f.metadata) for f in run])
            name, name_part = writer.basename, writer.index_name
            parts: list[bytes] = []
            recent_entries = []
            for f, place in zip(run, places, strict=True):
                height, width = f.image.shape
                pixel_type = EIGHT_BIT if f.image.itemsize == 1 else SIXTEEN_BIT
                numbers = (
                    place.pixel_offset,
                    width,
                    height,
                    pixel_type,
                    place.metadata_offset,
                    len(f.metadata),
                )
                parts += (f.index_axes, name_part, pack_entry_numbers(*numbers))
                recent_entries.append((f.axes, name, *numbers))
            packed = b"".join(parts)
            self._index_file.write(packed)
            self._index_file.flush()
        except Exception as exc:
            with contextlib.suppress(OSError):  # the original error matters
                self._roll_back(rollback, index_length)
            if not strict:
                return False
            self.failed = _storage_error(exc, self.path, self.images_written)
            raise self.failed from exc
        self._index_length = index_length + len(packed)
        recent, written = self._recent, self._written
        for frame, entry in zip(run, recent_entries, strict=True):
            written.add(frame.axes)
            recent[frame.key] = entry
        while len(recent) > RECENT_ENTRIES:
            recent.popitem(last=False)
        self.images_written += len(run)
        return True

    def _roll_back(self, rollback: tuple | None, index_length: int) -> None:
        """Forget a half-written image: files end at the last good one."""
        current = self._writer
        self._truncate_index(index_length)
        if current is None:
            return
        if rollback is not None and current is rollback[0]:
            _, position, next_ifd_location = rollback
            current.file.seek(position)  # finish() truncates here
            current.next_ifd_offset_location = next_ifd_location
        elif current.images == 0:
            # the first image of a new file failed: that file holds no image
            current.file.close()
            Path(current.filename).unlink(missing_ok=True)
            self._writer = None

    def _truncate_index(self, length: int) -> None:
        """Cut NDTiff.index back to `length` bytes, dropping unwritten entries."""
        index_file = self._index_file
        # Closing the descriptor first drops the entry still in Python's buffer
        # (flushing it could fail again, or write an entry without its image).
        with contextlib.suppress(OSError):
            os.close(index_file.fileno())
        with contextlib.suppress(OSError, ValueError):
            index_file.close()
        path = self.path / INDEX_FILE
        os.truncate(path, length)
        self._index_file = open(path, "ab")  # noqa: SIM115 - closed by finish()
        self._index_length = length

    def has(self, coords: Mapping[str, int | str]) -> bool:
        """Whether an image with these coordinates is on disk."""
        with self._lock:
            return dict(coords) in self._written

    def _entry(self, axes: dict[str, int | str]) -> IndexEntry | None:
        """Where the image lies: a recent one from RAM, older ones from the index."""
        recent = self._recent.get(frozenset(axes.items()))
        if recent is not None:
            return IndexEntry(*recent)
        if axes not in self._written:
            return None
        self._index_file.flush()
        return find_entry(self.path / INDEX_FILE, ordered_axes(axes))

    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, dict]:
        """Read one image and its metadata back from disk (also while writing).

        The file is opened for this read only (finished files stay closed).
        """
        with self._lock:
            axes = dict(coords)
            entry = self._entry(axes)
            if entry is None:
                raise KeyError(f"no image with coordinates {axes} in {self.path}")
            depth, width, height = entry.byte_depth, entry.width, entry.height
            n_bytes = width * height * depth
            with open(self.path / entry.filename, "rb") as f:
                fd = f.fileno()
                pixels = file_io.read_at(fd, n_bytes, entry.pix_offset)
                md = file_io.read_at(fd, entry.md_length, entry.md_offset)
            image = np.frombuffer(pixels, np.uint8 if depth == 1 else np.uint16)
            return image.reshape(height, width).copy(), json.loads(md)

    def open_files(self) -> int:
        """How many of the dataset's files this sink holds open (at most 2)."""
        writer_open = self._writer is not None and not self._writer.file._file.closed
        index_open = not self._index_file.closed
        return int(writer_open) + int(index_open)

    def finish(self) -> None:
        """Finish the dataset: last file truncated, index closed. Idempotent."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            try:
                if self._writer is not None:
                    self._writer.finished_writing()
            except OSError as exc:
                raise _storage_error(exc, self.path, self.images_written) from exc
            finally:
                self._writer = None
                try:
                    self._index_file.close()
                except OSError as exc:
                    raise _storage_error(exc, self.path, self.images_written) from exc
                finally:
                    if self.images_written == 0:
                        self._remove_if_empty()

    def _remove_if_empty(self) -> None:
        """A run that saved nothing leaves no empty dataset folder behind."""
        index = self.path / INDEX_FILE
        with contextlib.suppress(OSError):
            if index.is_file() and index.stat().st_size == 0:
                index.unlink()
            for name in self._start_files:
                (self.path / name).unlink(missing_ok=True)
            self.path.rmdir()


def _storage_error(exc: BaseException, path: Path, written: int) -> StorageWriteError:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return StorageWriteError(
        f"writing to {path} failed after {written} images: {reason}; "
        f"the {written} images already written are kept"
    )
