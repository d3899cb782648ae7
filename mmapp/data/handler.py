"""DataHandler: the thread-safe hand-off between the engine and storage.

The engine calls :meth:`DataHandler.put` (O(1), bounded by bytes); one writer
thread drains the queue into the storage; :meth:`get` answers from memory while
a frame waits and from disk after; :meth:`latest` is the one-slot view a UI
polls; :attr:`stats` are readable at any time.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from mmapp.data.coordinates import DataCoordinates
from mmapp.data.errors import (
    DataPathError,
    DuplicateCoordinatesError,
    HandlerClosedError,
    InvalidFrameError,
    StorageWriteError,
)
from mmapp.data.stats import RunStats
from mmapp.data.validation import validate_frame

DEFAULT_QUEUE_BYTES = 512 * 1024 * 1024
# A writer with nothing to do sleeps until a frame comes; then until a run's
# worth waits (RUN_FRAMES or RUN_BYTES) or RUN_WAIT_S has passed: about two
# wake-ups per run instead of one per frame (each a futex round trip and a GIL
# switch), and a frame waits in RAM at most RUN_WAIT_S for a slow camera.
RUN_WAIT_S = 0.002
# The writer takes the frames waiting in runs of up to this many frames and
# bytes, written with one call when the storage has `put_run` (ndtiff_sink):
# small frames share one system call; a 2048x2048 frame (8 MB) still goes
# alone, so ring slots come back to the camera frame by frame. A kill loses
# the index entries of the run being written, not its images (`mmapp
# recover` finds them in the .tif files).
RUN_FRAMES = 64
RUN_BYTES = 4 * 1024 * 1024


class Storage(Protocol):
    """What the handler needs of a storage backend."""

    path: Path

    def put(
        self, coords: Mapping[str, int | str], image: np.ndarray, metadata: Any
    ) -> None: ...
    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, dict]: ...
    # optional: put_run(frames) -> bool, frames [(coords, image, metadata) or
    # what prepare(coords, image, metadata) returned] written in one go, or
    # False with nothing written (then put() each). prepare() is called by
    # put(), in the producer's thread, so the writer thread does less.
    def has(self, coords: Mapping[str, int | str]) -> bool: ...
    def finish(self) -> None: ...


class Frame(NamedTuple):
    """One frame on its way to disk."""

    coords: DataCoordinates
    image: np.ndarray
    metadata: Mapping[str, Any]
    # called once the frame is written or dropped (frees a camera buffer slot)
    release: Callable[[], None] | None = None
    prepared: Any = None  # the storage's prepare() of it (None: not prepared)


class DataHandler:
    """Bounded, thread-safe queue from the engine to one storage writer thread."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        put_timeout_s: float | None = 30.0,
    ) -> None:
        if max_queue_bytes <= 0:
            raise ValueError(f"max_queue_bytes must be > 0, got {max_queue_bytes}")
        self.storage = storage
        self.max_queue_bytes = max_queue_bytes
        self.put_timeout_s = put_timeout_s
        self.stats = RunStats(max_queue_bytes)
        self._prepare: Callable[..., Any] | None = getattr(storage, "prepare", None)
        self._cond = threading.Condition()  # the writer waits here for frames
        # put() waits here for room; woken only below the low-water mark, so a
        # full queue costs one wake-up per batch of frames, not one per frame
        self._room = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
        self._low_water = max_queue_bytes * 3 // 4
        self._queue: deque[Frame] = deque()
        self._pending: dict[DataCoordinates, Frame] = {}
        self._closing = False
        self._no_wait = False  # Stop: put() queues at once (see stop_waiting)
        self._error: StorageWriteError | None = None
        self._latest: Frame | None = None
        self._finished = False
        # what the writer waits for: put() wakes it only then ("" when busy)
        self._writer_waits = ""  # "frame" (queue empty) or "run" (a run's worth)
        self._writer = threading.Thread(
            target=self._write_loop, name="mmapp-writer", daemon=True
        )
        self._writer.start()

    # --- engine side -----------------------------------------------------------
    def put(
        self,
        coords: Mapping[str, int | str],
        image: np.ndarray,
        metadata: Mapping[str, Any] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        """Queue one frame; waits (bounded) only while the queue is full.

        `release` is called once the frame is written or dropped (not when put
        raises: then the caller still owns the frame).
        """
        frame = self._checked(coords, image, metadata, release)
        with self._cond:
            self._enqueue(frame)

    def put_many(
        self,
        frames: Sequence[
            tuple[
                Mapping[str, int | str],
                np.ndarray,
                Mapping[str, Any] | None,
                Callable[[], None] | None,
            ]
        ],
    ) -> tuple[int, BaseException | None]:
        """Queue (coords, image, metadata, release) frames in order, as put()
        each, under one lock; stops at the first that cannot be queued.

        Returns how many were queued and, if one could not be, why (that frame
        and the ones after it are still the caller's).
        """
        ready: list[Frame] = []
        failure: BaseException | None = None
        for coords, image, metadata, release in frames:
            try:
                ready.append(self._checked(coords, image, metadata, release))
            except (InvalidFrameError, ValueError, TypeError) as exc:
                failure = exc  # bad axes: ValueError/TypeError
                break
        queued = 0
        with self._cond:
            try:
                for frame in ready:
                    self._enqueue(frame)
                    queued += 1
            except Exception as exc:
                failure = exc
        return queued, failure

    def _checked(
        self,
        coords: Mapping[str, int | str],
        image: np.ndarray,
        metadata: Mapping[str, Any] | None,
        release: Callable[[], None] | None,
    ) -> Frame:
        """The frame checked and, with a sink that prepares, encoded (no lock)."""
        key = coords if isinstance(coords, DataCoordinates) else DataCoordinates(coords)
        try:
            image = validate_frame(image)
        except InvalidFrameError:
            self.stats.add_rejected()
            raise
        metadata = metadata or {}
        prepared = None
        if self._prepare is not None:  # encoded here, while the writer writes
            try:
                prepared = self._prepare(key, image, metadata)
            except Exception:  # the writer's put() of it says why
                prepared = None
        return Frame(key, image, metadata, release, prepared)

    def _enqueue(self, frame: Frame) -> None:
        """Queue a checked frame (under the lock); waits only for room."""
        self._check_open()
        if frame.coords in self._pending:
            raise DuplicateCoordinatesError(
                f"coordinates {dict(frame.coords)} are already waiting to be written"
            )
        nbytes = frame.image.nbytes
        if not self._has_room(nbytes):
            if self._writer_waits:  # for a run's worth that may never fit: it
                self._writer_waits = ""  # frees the room, so it writes now
                self._cond.notify()
            self._wait_for_room(nbytes)
        self._queue.append(frame)
        self._pending[frame.coords] = frame
        self._latest = frame
        self.stats.add_in(nbytes)
        self._wake_writer()

    def _wake_writer(self) -> None:
        """Wake the writer if it waits for what the queue now holds (under the
        lock; see RUN_WAIT_S)."""
        waits = self._writer_waits
        if waits and (waits == "frame" or self._run_ready()):
            self._writer_waits = ""
            self._cond.notify()

    def _has_room(self, nbytes: int) -> bool:
        """Whether a frame of `nbytes` may be queued now (under the lock)."""
        return (
            self._closing
            or self._error is not None
            or self._no_wait
            or not self._queue
            or self.stats.queue_bytes + nbytes <= self.max_queue_bytes
        )

    def _wait_for_room(self, nbytes: int) -> None:
        """Wait (bounded) until the frame may be queued (under the lock)."""
        ok = self._room.wait_for(lambda: self._has_room(nbytes), self.put_timeout_s)
        self._check_open()
        if not ok:
            raise TimeoutError(
                f"the writer did not free queue space within "
                f"{self.put_timeout_s:g} s ({self.stats.queue_frames} frames, "
                f"{self.stats.queue_bytes / 1e6:.0f} MB waiting)"
            )

    def stop_waiting(self) -> None:
        """Stop was pressed: put() no longer waits for room, so the engine sees
        the Stop at once. The frames still to come are the camera's last few,
        already in RAM (its ring buffer); the writer saves every one."""
        with self._cond:
            self._no_wait = True
            self._room.notify_all()

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise HandlerClosedError("the data handler is finished; no more frames")

    # --- UI side -----------------------------------------------------------------
    def latest(self) -> Frame | None:
        """The most recent frame put, its image the display's own.

        A frame still waiting in the camera's ring buffer is copied under the
        lock, before the writer can release its slot to the camera (a view
        handed out without the lock could be overwritten while being drawn).
        """
        with self._cond:
            frame = self._latest
            if frame is not None and frame.release is not None:
                frame = frame._replace(image=frame.image.copy(), release=None)
                self._latest = frame
            return frame

    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, Mapping]:
        """Image and metadata: from memory if not yet written, else from disk."""
        key = coords if isinstance(coords, DataCoordinates) else DataCoordinates(coords)
        with self._cond:
            frame = self._pending.get(key)
            if frame is not None:  # a copy: the queued buffer is recycled later
                return frame.image.copy(), frame.metadata
        return self.storage.get(key)

    @property
    def error(self) -> StorageWriteError | None:
        """The storage error that stopped the writer, if any."""
        return self._error

    # --- writer thread -------------------------------------------------------------
    def _write_loop(self) -> None:
        put_run = getattr(self.storage, "put_run", None)
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._writer_waits = "frame"  # until the next frame comes
                    self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._closing and not self._run_ready():
                    self._writer_waits = "run"  # a run's worth, or RUN_WAIT_S
                    self._cond.wait_for(
                        lambda: self._closing or self._run_ready(), RUN_WAIT_S
                    )
                self._writer_waits = ""
                if not self._queue:
                    if self._closing:
                        return
                    continue
                run = self._next_run()
            if put_run is not None and (len(run) > 1 or run[0].prepared is not None):
                try:
                    written = put_run(
                        [
                            (f.coords, f.image, f.metadata)
                            if f.prepared is None
                            else f.prepared
                            for f in run
                        ]
                    )
                except Exception:  # put() of the first frame says why
                    written = False
                if written:
                    self._remove_run(run)
                    continue
            for frame in run:  # one by one: each frame's own outcome
                if not self._write_one(frame):
                    return

    def _run_ready(self) -> bool:
        """Whether a whole run waits (under the lock)."""
        return len(self._queue) >= RUN_FRAMES or self.stats.queue_bytes >= RUN_BYTES

    def _next_run(self) -> list[Frame]:
        """The frames waiting, oldest first, up to one run (under the lock)."""
        run: list[Frame] = []
        nbytes = 0
        for frame in self._queue:
            nbytes += frame.image.nbytes
            if run and (len(run) >= RUN_FRAMES or nbytes > RUN_BYTES):
                break
            run.append(frame)
        return run

    def _write_one(self, frame: Frame) -> bool:
        """Write one frame; False once the storage failed (the writer stops)."""
        try:
            self.storage.put(frame.coords, frame.image, frame.metadata)
        except (InvalidFrameError, DuplicateCoordinatesError):
            self._remove_head(frame, written=False, rejected=True)
            return True
        except DataPathError as exc:
            self._fail(
                exc
                if isinstance(exc, StorageWriteError)
                else StorageWriteError(str(exc))
            )
            return False
        except Exception as exc:
            self._fail(StorageWriteError(f"{type(exc).__name__}: {exc}"))
            return False
        self._remove_head(frame, written=True, rejected=False)
        return True

    def _remove_head(self, frame: Frame, *, written: bool, rejected: bool) -> None:
        with self._cond:
            self._queue.popleft()
            self._pending.pop(frame.coords, None)
            if written:
                self.stats.add_written(frame.image.nbytes)
            else:
                self.stats.add_dropped_from_queue(frame.image.nbytes, rejected=rejected)
            if self.stats.queue_bytes <= self._low_water:
                self._room.notify_all()
            if frame is self._latest and frame.release is not None:
                # the camera reuses the slot once released: the display keeps a copy
                self._latest = frame._replace(image=frame.image.copy(), release=None)
        if frame.release is not None:
            frame.release()

    def _remove_run(self, run: list[Frame]) -> None:
        """The run is written: out of the queue, counted, released (one lock)."""
        with self._cond:
            for frame in run:
                self._queue.popleft()
                self._pending.pop(frame.coords, None)
                self.stats.add_written(frame.image.nbytes)
                if frame is self._latest and frame.release is not None:
                    self._latest = frame._replace(
                        image=frame.image.copy(), release=None
                    )
            if self.stats.queue_bytes <= self._low_water:
                self._room.notify_all()
        for frame in run:
            if frame.release is not None:
                frame.release()

    def _fail(self, error: StorageWriteError) -> None:
        with self._cond:
            self._error = error
            dropped = list(self._queue)
            self._queue.clear()
            for frame in dropped:
                self._pending.pop(frame.coords, None)
                self.stats.add_dropped_from_queue(frame.image.nbytes, rejected=False)
            self._cond.notify_all()
            self._room.notify_all()
        for frame in dropped:
            if frame.release is not None:
                frame.release()

    # --- end -------------------------------------------------------------------------
    def finish(self, timeout: float | None = None) -> None:
        """Write what is queued, then finish the storage (always, also on error)."""
        with self._cond:
            if self._finished:
                return
            self._closing = True
            self._cond.notify_all()
            self._room.notify_all()
        self._writer.join(timeout)
        if self._writer.is_alive():
            raise TimeoutError(f"the writer did not drain within {timeout} s")
        self._finished = True
        self.stats.stop_clock()
        self.storage.finish()
