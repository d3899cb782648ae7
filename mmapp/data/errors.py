"""Errors of the data path, each naming what went wrong."""

from __future__ import annotations


class DataPathError(RuntimeError):
    """Base class for storage and hand-off errors."""


class InvalidFrameError(DataPathError, ValueError):
    """A frame that must not be written (wrong type, dtype, shape or layout)."""


class DuplicateCoordinatesError(DataPathError, ValueError):
    """Two frames with the same coordinates in one dataset."""


class StorageWriteError(DataPathError):
    """Writing to disk failed (e.g. the disk is full); earlier frames are safe."""


class HandlerClosedError(DataPathError):
    """The data handler was finished or its writer died."""


class NotADatasetError(DataPathError, ValueError):
    """A folder that holds no dataset (nothing mmapp or ndstorage wrote)."""
