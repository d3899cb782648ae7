"""Run statistics, readable at any time by a UI or the command line."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ProcessingSnapshot:
    """The processing pipeline's counters at one moment (see mmapp.processing).

    `frames_not_processed` counts frames the pipeline refused because its
    bounded queue was full (the processors fell behind; the raw frames are
    saved all the same); `batches_dropped` counts held batches (e.g. a volume)
    dropped because a frame of theirs was not processed or the run ended first.
    """

    frames_submitted: int  # accepted into the pipeline
    frames_processed: int  # through the whole chain
    frames_not_processed: int  # refused: the pipeline was full
    outputs_produced: int  # images the chain returned
    outputs_written: int  # of those, written to the processed dataset
    batches_dropped: int
    queue_frames: int  # accepted, not yet through the chain and handed on
    queue_bytes: int
    queue_capacity_bytes: int
    workers: int
    error: str | None = None  # a processor raised and the run stops
    disabled: str | None = None  # a processor raised and processing was disabled

    @property
    def behind(self) -> bool:
        """Whether the processors have fallen behind (frames not processed)."""
        return self.frames_not_processed > 0

    def as_dict(self) -> dict:
        """Plain dict (for JSON and the UI)."""
        return asdict(self)

    def summary(self, where: object = None) -> str:
        """One line for the operator (`where`: the processed dataset)."""
        images = "image" if self.outputs_written == 1 else "images"
        text = (
            f"processing: {self.frames_processed} frames in, "
            f"{self.outputs_written} processed {images} saved"
        )
        if where is not None:
            text += f" (in {where})"
        if self.frames_not_processed:
            text += (
                f"; processing fell behind: {self.frames_not_processed} frames "
                f"not processed"
            )
        if self.batches_dropped:
            volumes = "volume" if self.batches_dropped == 1 else "volumes"
            text += (
                f"; {self.batches_dropped} incomplete {volumes} left out (frames "
                "still missing when the run ended)"
            )
        if self.disabled:
            text += f"; processing disabled: {self.disabled}"
        return text


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    elapsed_s: float
    frames_in: int
    frames_written: int
    frames_rejected: int
    frames_lost: int
    queue_frames: int
    queue_bytes: int
    queue_capacity_bytes: int
    bytes_written: int
    write_mb_s: float
    buffer_fill: float  # camera circular buffer, 0..1 (-1 unknown)
    processing: ProcessingSnapshot | None = None  # None: the run has no chain

    def as_dict(self) -> dict:
        """Plain dict (for JSON and the UI)."""
        return asdict(self)


class RunStats:
    """Counters updated by the engine and writer threads."""

    def __init__(self, queue_capacity_bytes: int) -> None:
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._t_end: float | None = None
        self.frames_in = 0
        self.frames_written = 0
        self.frames_rejected = 0
        self.frames_lost = 0
        self.queue_frames = 0
        self.queue_bytes = 0
        self.queue_capacity_bytes = queue_capacity_bytes
        self.bytes_written = 0
        self.buffer_fill = -1.0
        self.first_frame_at: float | None = None  # perf_counter of the first frame
        self.last_frame_at: float | None = None  # and of the newest

    def add_in(self, nbytes: int) -> None:
        """A frame entered the queue."""
        with self._lock:
            now = time.perf_counter()
            if not self.frames_in:
                self.first_frame_at = now
            self.last_frame_at = now
            self.frames_in += 1
            self.queue_frames += 1
            self.queue_bytes += nbytes

    def add_written(self, nbytes: int) -> None:
        """A frame reached the disk."""
        with self._lock:
            self.frames_written += 1
            self.bytes_written += nbytes
            self.queue_frames -= 1
            self.queue_bytes -= nbytes

    def add_dropped_from_queue(self, nbytes: int, *, rejected: bool) -> None:
        """A queued frame will never be written (rejected or lost)."""
        with self._lock:
            self.queue_frames -= 1
            self.queue_bytes -= nbytes
            if rejected:
                self.frames_rejected += 1
            else:
                self.frames_lost += 1

    def add_rejected(self) -> None:
        """A frame refused before it was queued."""
        with self._lock:
            self.frames_rejected += 1

    def add_lost(self, n: int) -> None:
        """Frames that never reached the handler (e.g. camera buffer overflow)."""
        with self._lock:
            self.frames_lost += n

    def stop_clock(self) -> None:
        """Freeze the elapsed time (the run ended)."""
        with self._lock:
            self._t_end = time.perf_counter()

    def snapshot(self) -> StatsSnapshot:
        """Read every counter at once."""
        with self._lock:
            now = self._t_end if self._t_end is not None else time.perf_counter()
            elapsed = max(now - self._t0, 1e-9)
            return StatsSnapshot(
                elapsed_s=elapsed,
                frames_in=self.frames_in,
                frames_written=self.frames_written,
                frames_rejected=self.frames_rejected,
                frames_lost=self.frames_lost,
                queue_frames=self.queue_frames,
                queue_bytes=self.queue_bytes,
                queue_capacity_bytes=self.queue_capacity_bytes,
                bytes_written=self.bytes_written,
                write_mb_s=self.bytes_written / 1e6 / elapsed,
                buffer_fill=self.buffer_fill,
            )
