"""NDTiff storage on `ndstorage`, made safe for streaming.

ndstorage's writer is fast but unforgiving (see DESIGN.md): this wrapper
validates every frame first, flushes the index after every image (a crash
loses at most the frame being written), rolls a failed write back so earlier
frames stay readable, and always finishes the dataset.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ndstorage import NDTiffDataset, ndtiff_dataset
from ndstorage.ndtiff_file import SingleNDTiffWriter

from mmapp.data import file_io
from mmapp.data.errors import DuplicateCoordinatesError, StorageWriteError
from mmapp.data.validation import validate_frame

# Every image's axes in one order: tifffile compares each index entry's axes
# with the first one's and warns per image when the order differs.
AXIS_ORDER = ("position", "time", "grid", "z", "channel")


_RANK = {name: i for i, name in enumerate(AXIS_ORDER)}


def _axis_rank(axis: str) -> tuple[int, str]:
    return _RANK.get(axis, len(_RANK)), axis


def ordered_axes(coords: Mapping[str, int | str]) -> dict[str, int | str]:
    """The coordinates in the dataset's one axis order (others after, by name)."""
    return {k: coords[k] for k in sorted(coords, key=_axis_rank)}


class _AxesKey(frozenset):
    """ndstorage's index key (a frozenset of (axis, value)) iterating in the
    dataset's axis order: ndstorage writes each index entry's axes in the key's
    iteration order, which for a plain frozenset varies from image to image."""

    def __iter__(self) -> Any:
        return iter(sorted(super().__iter__(), key=lambda item: _axis_rank(item[0])))


def json_safe(obj: Any) -> Any:
    """Make metadata JSON-serialisable (unknown objects become strings)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_unset=True)
    return str(obj)


def write_gathered(fd: int, chunks: list[memoryview], offset: int) -> None:
    """Write every chunk at `offset` (pwritev, or seek + one write on Windows)."""
    file_io.write_gathered(fd, chunks, offset)


_BITS_PER_SAMPLE_VALUE = 2 + 2 * 12 + 8  # third IFD entry's value field


class _PositionedFile:
    """The writer's file with its position kept in Python: no lseek per call.

    ndstorage asks `tell()` several times per image; on a buffered file each
    is a system call. Every write here is at an offset this object keeps
    (`pwrite`/`pwritev`, or a seek and one write where the OS has no pwrite).
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
    """ndstorage's file writer, writing each image with one gathered write.

    The stock writer issues three writes and a flush per image; each releases
    and re-takes the GIL, which the engine thread holds much of the time at
    high frame rates. It also tags 8-bit frames as 16 bits per sample, which
    tifffile then cannot read. Layout and offsets stay ndstorage's own.
    """

    def __init__(self, directory: str, filename: str, summary_md: Any) -> None:
        super().__init__(directory, filename, summary_md)
        self.file = _PositionedFile(self.file)

    def write_image(
        self,
        index_key: frozenset,
        pixels: np.ndarray,
        metadata: bytes,
        bit_depth: int | str = "auto",
    ) -> Any:
        """Write one image (IFD, pixels, metadata) at the end of the file."""
        index_key = _AxesKey(index_key)  # equal and hashed as the plain key
        height, width = pixels.shape
        if bit_depth == "auto":
            bit_depth = 8 if pixels.dtype == np.uint8 else 16
        entry = self._write_ifd(
            index_key, pixels, metadata, False, height, width, bit_depth
        )
        if pixels.dtype == np.uint8:
            struct.pack_into("<I", self.buffers[0], _BITS_PER_SAMPLE_VALUE, 8)
        position = self.file.tell()
        chunks = [memoryview(b).cast("B") for b in self.buffers]
        self.buffers.clear()
        total = sum(len(c) for c in chunks)
        write_gathered(self.file.fileno(), chunks, position)
        self.file.seek(position + total)
        self.index_map[index_key] = entry
        return entry


# ndstorage creates its file writers by this module-level name: give it ours.
ndtiff_dataset.SingleNDTiffWriter = GatheredWriter


class NDTiffSink:
    """One NDTiff dataset; every call from one writer thread (or under its lock)."""

    def __init__(
        self,
        directory: str | Path,
        name: str,
        summary_metadata: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        """A new dataset `directory/name_N` (ndstorage's next free N), or with
        `exact` the new folder `directory/name` itself (refused if it exists)."""
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if exact:
                (directory / name).mkdir()
        except OSError as exc:
            raise StorageWriteError(
                f"cannot create the save directory {directory}: {exc.strerror}"
            ) from exc
        self._lock = threading.RLock()
        self._summary: dict[str, Any] = json_safe(dict(summary_metadata or {}))
        if exact:
            self._dataset = NDTiffDataset(
                str(directory / name), writable=True, summary_metadata=self._summary
            )
        else:
            self._dataset = NDTiffDataset(
                str(directory), name=name, writable=True, summary_metadata=self._summary
            )
        self.path = Path(self._dataset.path)
        self.images_written = 0
        self.failed: StorageWriteError | None = None
        self.finished = False

    def set_summary_metadata(self, summary: Mapping[str, Any]) -> None:
        """Replace the summary metadata (only before the first image)."""
        with self._lock:
            if self.images_written:
                raise RuntimeError("summary metadata is fixed once images are written")
            self._summary = json_safe(dict(summary))
            self._dataset.initialize(self._summary)

    def put(
        self,
        coords: Mapping[str, int | str],
        image: np.ndarray,
        metadata: Mapping[str, Any] | str,
    ) -> None:
        """Validate and write one frame; on failure nothing later is corrupted."""
        image = validate_frame(image)
        axes = ordered_axes(coords)
        md = (
            metadata
            if isinstance(metadata, str)
            else json.dumps({**metadata, "Axes": axes}, default=_json_default)
        ).encode("utf-8")
        with self._lock:
            if self.failed is not None:
                raise self.failed
            if self.finished:
                raise StorageWriteError(f"dataset {self.path} is already finished")
            ds = self._dataset
            if frozenset(axes.items()) in ds.index:
                raise DuplicateCoordinatesError(
                    f"an image with coordinates {axes} is already in {self.path}"
                )
            writer = ds.current_writer
            rollback = (
                (writer, writer.file.tell(), writer.next_ifd_offset_location)
                if writer is not None
                else None
            )
            index_file = ds._index_file
            index_length = index_file.tell() if index_file is not None else 0
            try:
                ds.put_image(axes, image, md)
                index_file = getattr(ds, "_index_file", None)
                if index_file is not None:
                    index_file.flush()
            except Exception as exc:
                with contextlib.suppress(OSError):  # the original error matters
                    self._roll_back(rollback, axes, index_length)
                self.failed = _storage_error(exc, self.path, self.images_written)
                raise self.failed from exc
            self.images_written += 1

    def _roll_back(self, rollback: tuple | None, axes: dict, index_length: int) -> None:
        """Forget a half-written image: files end at the last good one."""
        ds = self._dataset
        key = frozenset(axes.items())
        ds._write_pending_images.pop(key, None)
        ds.index.pop(key, None)
        current = ds.current_writer
        if current is not None:
            current.index_map.pop(key, None)
        self._truncate_index(index_length)
        if rollback is not None and current is rollback[0]:
            _, position, next_ifd_location = rollback
            current.file.seek(position)  # finish() truncates here
            current.next_ifd_offset_location = next_ifd_location
        elif current is not None and not current.index_map:
            # the first image of a new file failed: that file holds no image
            current.reader.close()
            current.file.close()
            Path(current.filename).unlink(missing_ok=True)
            ds.current_writer = None

    def _truncate_index(self, length: int) -> None:
        """Cut NDTiff.index back to `length` bytes, dropping unwritten entries."""
        ds = self._dataset
        index_file = ds._index_file
        if index_file is None:
            return
        # Closing the descriptor first drops the entry still in Python's buffer
        # (flushing it could fail again, or write an entry without its image).
        with contextlib.suppress(OSError):
            os.close(index_file.fileno())
        with contextlib.suppress(OSError, ValueError):
            index_file.close()
        path = self.path / "NDTiff.index"
        os.truncate(path, length)
        ds._index_file = open(path, "ab")  # noqa: SIM115 - ndstorage closes it

    def has(self, coords: Mapping[str, int | str]) -> bool:
        """Whether an image with these coordinates is on disk."""
        with self._lock:
            return frozenset(dict(coords).items()) in self._dataset.index

    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, dict]:
        """Read one image and its metadata back from disk (also while writing)."""
        with self._lock:
            axes = dict(coords)
            entry = self._dataset.index.get(frozenset(axes.items()))
            if entry is None:
                raise KeyError(f"no image with coordinates {axes} in {self.path}")
            depth = entry.get_byte_depth()
            n_bytes = entry.image_width * entry.image_height * depth
            with open(self.path / entry.filename, "rb") as f:
                fd = f.fileno()
                pixels = file_io.read_at(fd, n_bytes, entry.pix_offset)
                md = file_io.read_at(fd, entry.metadata_length, entry.metadata_offset)
            image = np.frombuffer(pixels, np.uint8 if depth == 1 else np.uint16)
            image = image.reshape(entry.image_height, entry.image_width).copy()
            return image, json.loads(md)

    def finish(self) -> None:
        """Finish the dataset: last file truncated, index closed. Idempotent."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            try:
                self._dataset.finish()
            except OSError as exc:
                raise _storage_error(exc, self.path, self.images_written) from exc
            finally:
                self._dataset.close()
                if self.images_written == 0:
                    self._remove_if_empty()

    def _remove_if_empty(self) -> None:
        """A run that saved nothing leaves no empty dataset folder behind."""
        index = self.path / "NDTiff.index"
        with contextlib.suppress(OSError):
            if index.is_file() and index.stat().st_size == 0:
                index.unlink()
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
