"""NDTiff storage on `ndstorage`, made safe for streaming.

ndstorage's writer is fast but unforgiving (see DESIGN.md): this wrapper
validates every frame first, flushes the index after every image (a crash
loses at most the frame being written), rolls a failed write back so earlier
frames stay readable, and always finishes the dataset.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ndstorage import NDTiffDataset

from mmapp.data.errors import DuplicateCoordinatesError, StorageWriteError
from mmapp.data.validation import validate_frame


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


class NDTiffSink:
    """One NDTiff dataset; every call from one writer thread (or under its lock)."""

    def __init__(
        self,
        directory: str | Path,
        name: str,
        summary_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageWriteError(
                f"cannot create the save directory {directory}: {exc.strerror}"
            ) from exc
        self._lock = threading.RLock()
        self._summary: dict[str, Any] = json_safe(dict(summary_metadata or {}))
        self._dataset = NDTiffDataset(
            str(directory), name=name, writable=True, summary_metadata=self._summary
        )
        self.path = Path(self._dataset.path)
        self.images_written = 0
        self.failed: StorageWriteError | None = None
        self._read_only: NDTiffDataset | None = None
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
        axes = dict(coords)
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
            try:
                ds.put_image(axes, image, md)
                index_file = getattr(ds, "_index_file", None)
                if index_file is not None:
                    index_file.flush()
            except Exception as exc:
                self._roll_back(rollback, axes)
                self.failed = _storage_error(exc, self.path, self.images_written)
                raise self.failed from exc
            self.images_written += 1

    def _roll_back(self, rollback: tuple | None, axes: dict) -> None:
        """Forget a half-written image so the file ends at the last good one."""
        ds = self._dataset
        ds._write_pending_images.pop(frozenset(axes.items()), None)
        if rollback is None:
            return
        writer, position, next_ifd_location = rollback
        if ds.current_writer is writer:
            try:
                writer.file.seek(position)
                writer.next_ifd_offset_location = next_ifd_location
            except OSError:
                pass

    def has(self, coords: Mapping[str, int | str]) -> bool:
        """Whether an image with these coordinates is on disk."""
        with self._lock:
            return frozenset(dict(coords).items()) in self._dataset.index

    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, dict]:
        """Read one image and its metadata back from disk."""
        with self._lock:
            axes = dict(coords)
            if not self.has(axes):
                raise KeyError(f"no image with coordinates {axes} in {self.path}")
            source = self._reader() if self.finished else self._dataset
            image = np.array(source.read_image(**axes))
            metadata = source.read_metadata(**axes)
            return image, metadata

    def _reader(self) -> NDTiffDataset:
        """A read-only view of the finished dataset (opened once, quietly)."""
        if self._read_only is None:
            with contextlib.redirect_stdout(io.StringIO()):
                self._read_only = NDTiffDataset(str(self.path))
        return self._read_only

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
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def close(self) -> None:
        """Release file handles of the read-only view."""
        with self._lock:
            if self._read_only is not None:
                self._read_only.close()
                self._read_only = None


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
