"""Frames on their way to disk: coordinates, the bounded DataHandler (camera
thread -> writer thread -> NDTiff), the NDTiff sink with its two write paths
(positional where the OS has it, portable seek + write elsewhere), run
statistics, the dataset folders ndstorage makes, and recovering a dataset a
killed run left unfinished. Qt-free and engine-free.
"""

from mmapp.data.coordinates import (
    AxisValue,
    CoordinateValueError,
    DataCoordinates,
    DataCoordinatesIterator,
)
from mmapp.data.datasets import (
    existing_datasets,
    next_dataset_path,
    open_dataset_quietly,
)
from mmapp.data.errors import (
    DataPathError,
    DuplicateCoordinatesError,
    HandlerClosedError,
    InvalidFrameError,
    NotADatasetError,
    StorageWriteError,
)
from mmapp.data.file_io import HAS_POSITIONAL_IO, io_path, use_portable_io
from mmapp.data.handler import DataHandler
from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.data.recover import (
    RecoveryReport,
    dataset_status,
    find_unfinished,
    recover_dataset,
)
from mmapp.data.stats import ProcessingSnapshot, RunStats, StatsSnapshot
from mmapp.data.validation import validate_frame

__all__ = [
    "HAS_POSITIONAL_IO",
    "AxisValue",
    "CoordinateValueError",
    "DataCoordinates",
    "DataCoordinatesIterator",
    "DataHandler",
    "DataPathError",
    "DuplicateCoordinatesError",
    "HandlerClosedError",
    "InvalidFrameError",
    "NDTiffSink",
    "NotADatasetError",
    "ProcessingSnapshot",
    "RecoveryReport",
    "RunStats",
    "StatsSnapshot",
    "StorageWriteError",
    "dataset_status",
    "existing_datasets",
    "find_unfinished",
    "io_path",
    "next_dataset_path",
    "open_dataset_quietly",
    "recover_dataset",
    "use_portable_io",
    "validate_frame",
]
