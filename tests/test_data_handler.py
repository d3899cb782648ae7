"""Tests for mmapp.data.handler.DataHandler: ordering, memory bounds, errors.

Storage is either a fake (optionally gated: its put waits on an Event the test
controls) or a real NDTiffSink behind the same gate. Threads are synchronised
with Events, semaphores and the handler's own finish(); nothing sleeps to wait.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ndstorage
import numpy as np
import pytest
import tifffile

from mmapp.data import file_io, ndtiff_sink
from mmapp.data import handler as handler_module
from mmapp.data.coordinates import DataCoordinates
from mmapp.data.errors import (
    DuplicateCoordinatesError,
    HandlerClosedError,
    InvalidFrameError,
    StorageWriteError,
)
from mmapp.data.handler import DataHandler, Frame
from mmapp.data.ndtiff_sink import NDTiffSink

REAL_WRITE_GATHERED = ndtiff_sink.write_gathered
H, W = 16, 24
FRAME_BYTES = H * W * 2  # one uint16 frame
GATE_TIMEOUT_S = 10.0  # safety net only: a correct test releases gates itself


def frame(i: int, dtype: Any = np.uint16) -> np.ndarray:
    info = np.iinfo(dtype)
    values = (np.arange(H * W, dtype=np.uint64) * 40503 + i * 977 + 1) % (
        int(info.max) + 1
    )
    return values.astype(dtype).reshape(H, W)


def key(coords: Mapping[str, Any]) -> frozenset:
    return frozenset(dict(coords).items())


class FakeStorage:
    """In-memory Storage; put can be gated and can fail.

    `entries` is released once per put call (before the gate), so a test can
    wait until the writer thread is inside put for the n-th frame.
    """

    def __init__(
        self,
        *,
        gated: bool = False,
        fail_at: int | None = None,
        error: BaseException | None = None,
        inner: Any = None,
    ) -> None:
        self.path = Path(inner.path) if inner is not None else Path("fake")
        self.inner = inner
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entries = threading.Semaphore(0)
        self.calls: list[dict] = []
        self.written: list[tuple[dict, np.ndarray, Any]] = []
        self.fail_at = fail_at
        self.error = error
        self.finish_calls = 0
        self.on_enter: Callable[[dict], None] | None = None

    def put(self, coords: Mapping, image: np.ndarray, metadata: Any) -> None:
        c = dict(coords)
        index = len(self.calls)
        self.calls.append(c)
        if self.on_enter is not None:
            self.on_enter(c)
        self.entries.release()
        if not self.gate.wait(GATE_TIMEOUT_S):
            raise RuntimeError("test gate was never opened")
        if self.fail_at is not None and index >= self.fail_at:
            assert self.error is not None
            raise self.error
        if self.inner is not None:
            self.inner.put(coords, image, metadata)
        elif any(w[0] == c for w in self.written):
            raise DuplicateCoordinatesError(f"{c} already written")
        self.written.append((c, image.copy(), metadata))

    def get(self, coords: Mapping) -> tuple[np.ndarray, dict]:
        if self.inner is not None:
            return self.inner.get(coords)
        for c, image, md in self.written:
            if c == dict(coords):
                return image.copy(), md
        raise KeyError(f"no image at {dict(coords)}")

    def has(self, coords: Mapping) -> bool:
        if self.inner is not None:
            return self.inner.has(coords)
        return any(c == dict(coords) for c, _, _ in self.written)

    def finish(self) -> None:
        self.finish_calls += 1
        if self.inner is not None:
            self.inner.finish()

    def wait_entered(self, n: int = 1) -> None:
        """Block until the writer has entered put n more times."""
        for _ in range(n):
            assert self.entries.acquire(timeout=GATE_TIMEOUT_S), "writer never came"


@pytest.fixture
def make_handler() -> Iterator[Callable[..., DataHandler]]:
    """DataHandler factory; every handler is drained and finished afterwards."""
    created: list[tuple[DataHandler, FakeStorage | Any]] = []

    def make(storage: Any, **kwargs: Any) -> DataHandler:
        handler = DataHandler(storage, **kwargs)
        created.append((handler, storage))
        return handler

    yield make
    for handler, storage in created:
        gate = getattr(storage, "gate", None)
        if gate is not None:
            gate.set()
        with contextlib.suppress(Exception):  # errors were asserted in the test
            handler.finish(timeout=GATE_TIMEOUT_S)
        assert not handler._writer.is_alive()
        inner = getattr(storage, "inner", storage)
        if isinstance(inner, NDTiffSink):
            inner.finish()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll a condition (with a deadline) that has no event to wait on."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.0005)


def waiting_on_queue(handler: DataHandler) -> int:
    """Threads blocked in put() waiting for room (CPython Condition._waiters)."""
    return len(handler._room._waiters)


def read_ndstorage(path: Path) -> dict[frozenset, tuple[np.ndarray, dict]]:
    ds = ndstorage.Dataset(str(path))
    try:
        return {
            key(c): (np.array(ds.read_image(**c)), ds.read_metadata(**c))
            for c in ds.get_image_coordinates_list()
        }
    finally:
        ds.close()


def tif_pages(path: Path) -> list[np.ndarray]:
    (tif,) = sorted(Path(path).glob("*.tif"))
    with tifffile.TiffFile(tif) as tf:
        assert tf.is_ndtiff
        return [page.asarray() for page in tf.pages]


# --------------------------------------------------------------------------
# writing in order, stats
# --------------------------------------------------------------------------


def test_rejects_a_non_positive_queue_size():
    with pytest.raises(ValueError, match="max_queue_bytes"):
        DataHandler(FakeStorage(), max_queue_bytes=0)


def test_put_finish_writes_every_frame_in_order(make_handler):
    storage = FakeStorage()
    handler = make_handler(storage)
    coords = [{"time": t, "channel": ch} for t in range(10) for ch in ("DAPI", "GFP")]
    for i, c in enumerate(coords):
        handler.put(c, frame(i), {"i": i})
    handler.finish()

    assert [c for c, _, _ in storage.written] == coords
    for i, (_, image, md) in enumerate(storage.written):
        np.testing.assert_array_equal(image, frame(i))
        assert md == {"i": i}
    assert storage.finish_calls == 1
    s = handler.stats.snapshot()
    assert s.frames_in == s.frames_written == len(coords)
    assert (s.queue_frames, s.queue_bytes) == (0, 0)
    assert s.bytes_written == len(coords) * FRAME_BYTES
    assert (s.frames_rejected, s.frames_lost) == (0, 0)
    assert s.write_mb_s > 0
    assert handler.error is None

    handler.finish()  # idempotent: storage finished once
    assert storage.finish_calls == 1
    assert handler.stats.snapshot().elapsed_s == s.elapsed_s  # clock stopped


def test_round_trip_through_ndtiff_sink(make_handler, tmp):
    sink = NDTiffSink(tmp, "run", {"Prefix": "run"})
    handler = make_handler(sink)
    coords = [
        {"time": t, "channel": ch, "z": z}
        for t in range(2)
        for ch in ("DAPI", "GFP")
        for z in range(3)
    ]
    for i, c in enumerate(coords):
        handler.put(DataCoordinates(c), frame(i), {"i": i})
    handler.finish()
    assert sink.finished

    images = read_ndstorage(sink.path)
    assert set(images) == {key(c) for c in coords}
    for i, c in enumerate(coords):
        image, md = images[key(c)]
        np.testing.assert_array_equal(image, frame(i))
        assert md == {"i": i, "Axes": c}
    pages = tif_pages(sink.path)  # file order == put order
    assert len(pages) == len(coords)
    for i, page in enumerate(pages):
        np.testing.assert_array_equal(page, frame(i))

    # get after finish comes from disk
    image, md = handler.get(coords[4])
    np.testing.assert_array_equal(image, frame(4))
    assert md["Axes"] == coords[4]


def test_stats_while_frames_wait(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage, max_queue_bytes=10 * FRAME_BYTES)
    for i in range(3):
        handler.put({"time": i}, frame(i))
    storage.wait_entered()
    s = handler.stats.snapshot()
    assert (s.frames_in, s.frames_written) == (3, 0)
    assert (s.queue_frames, s.queue_bytes) == (3, 3 * FRAME_BYTES)
    assert s.queue_capacity_bytes == 10 * FRAME_BYTES
    assert s.bytes_written == 0

    storage.gate.set()
    handler.finish()
    s = handler.stats.snapshot()
    assert (s.frames_in, s.frames_written) == (3, 3)
    assert (s.queue_frames, s.queue_bytes) == (0, 0)
    assert s.bytes_written == 3 * FRAME_BYTES
    assert s.as_dict()["frames_written"] == 3


# --------------------------------------------------------------------------
# get / latest
# --------------------------------------------------------------------------


def test_get_from_memory_while_pending_then_from_disk(make_handler, tmp):
    sink = NDTiffSink(tmp, "run")
    storage = FakeStorage(gated=True, inner=sink)
    handler = make_handler(storage)
    image = frame(7)
    handler.put({"time": 0}, image, {"exposure": 5})
    storage.wait_entered()

    got, md = handler.get({"time": 0})
    # from the queue, but a copy: the queued buffer is recycled once written
    assert got is not image
    assert not np.shares_memory(got, image)
    np.testing.assert_array_equal(got, frame(7))
    assert md == {"exposure": 5}
    image.fill(0)  # what recycling the buffer does to it
    np.testing.assert_array_equal(got, frame(7))
    image[...] = frame(7)
    again, _ = handler.get(DataCoordinates(time=0))  # any mapping type
    assert again is not got
    np.testing.assert_array_equal(again, frame(7))
    assert not sink.has({"time": 0})
    with pytest.raises(KeyError):
        handler.get({"time": 1})

    storage.gate.set()
    handler.finish()
    got, md = handler.get({"time": 0})
    assert got is not image
    np.testing.assert_array_equal(got, frame(7))
    assert md == {"exposure": 5, "Axes": {"time": 0}}


def test_latest_is_the_last_frame_put(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage)
    assert handler.latest() is None
    images = [frame(i) for i in range(3)]
    for i, image in enumerate(images):
        handler.put({"time": i}, image, {"i": i})
        latest = handler.latest()
        assert isinstance(latest, Frame)
        assert latest.coords == DataCoordinates(time=i)
        assert latest.image is image
        assert latest.metadata == {"i": i}
    storage.gate.set()
    handler.finish()
    assert handler.latest().image is images[-1]
    assert handler.latest().coords == {"time": 2}


# --------------------------------------------------------------------------
# bounded queue
# --------------------------------------------------------------------------


def _fill_queue(handler: DataHandler, storage: FakeStorage, n: int = 3) -> None:
    for i in range(n):
        handler.put({"time": i}, frame(i))
    storage.wait_entered()  # the writer holds frame 0 (still queued)
    s = handler.stats.snapshot()
    assert (s.queue_frames, s.queue_bytes) == (n, n * FRAME_BYTES)


def test_put_blocks_while_the_queue_is_full(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(
        storage, max_queue_bytes=3 * FRAME_BYTES, put_timeout_s=GATE_TIMEOUT_S
    )
    _fill_queue(handler, storage)

    returned = threading.Event()
    errors: list[BaseException] = []

    def fourth() -> None:
        try:
            handler.put({"time": 3}, frame(3))
        except BaseException as exc:
            errors.append(exc)
        returned.set()

    thread = threading.Thread(target=fourth)
    thread.start()
    # the 4th put is parked on the queue's condition (the writer is in the gate)
    wait_until(lambda: waiting_on_queue(handler) == 1, "the 4th put to block")
    assert not returned.is_set()
    assert handler.stats.snapshot().frames_in == 3

    storage.gate.set()  # frame 0 gets written -> space for one more
    assert returned.wait(GATE_TIMEOUT_S)
    thread.join()
    assert errors == []
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2, 3]
    assert handler.stats.snapshot().frames_written == 4


def test_queue_is_bounded_by_bytes_not_frames(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage, max_queue_bytes=FRAME_BYTES, put_timeout_s=0.05)
    half = H * W  # a uint8 frame is half a uint16 frame
    handler.put({"time": 0}, frame(0, np.uint8))
    handler.put({"time": 1}, frame(1, np.uint8))  # exactly full now
    storage.wait_entered()
    assert handler.stats.snapshot().queue_bytes == 2 * half
    with pytest.raises(TimeoutError, match="queue"):
        handler.put({"time": 2}, frame(2, np.uint8))
    storage.gate.set()
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1]


def test_a_frame_larger_than_the_queue_still_passes_alone(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage, max_queue_bytes=100, put_timeout_s=0.05)
    handler.put({"time": 0}, frame(0))  # 768 bytes > 100, queue empty: accepted
    storage.wait_entered()
    with pytest.raises(TimeoutError):
        handler.put({"time": 1}, frame(1))
    storage.gate.set()
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0]


def test_put_times_out_naming_the_queue(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage, max_queue_bytes=3 * FRAME_BYTES, put_timeout_s=0.05)
    _fill_queue(handler, storage)
    with pytest.raises(TimeoutError, match="queue") as exc:
        handler.put({"time": 3}, frame(3))
    assert "within 0.05 s" in str(exc.value)
    assert "3 frames" in str(exc.value)
    s = handler.stats.snapshot()
    assert (s.frames_in, s.queue_frames) == (3, 3)
    with pytest.raises(KeyError):  # the refused frame is not pending
        handler.get({"time": 3})
    assert handler.error is None

    storage.gate.set()
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2]


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_writer_error_stops_puts_counts_lost_frames_and_finishes(make_handler):
    error = StorageWriteError("writing failed after 0 images: the disk is full")
    storage = FakeStorage(gated=True, fail_at=0, error=error)
    handler = make_handler(
        storage, max_queue_bytes=4 * FRAME_BYTES, put_timeout_s=GATE_TIMEOUT_S
    )
    _fill_queue(handler, storage, n=4)

    returned = threading.Event()
    raised: list[BaseException] = []

    def fifth() -> None:
        try:
            handler.put({"time": 4}, frame(4))
        except BaseException as exc:
            raised.append(exc)
        returned.set()

    thread = threading.Thread(target=fifth)
    thread.start()
    wait_until(lambda: waiting_on_queue(handler) == 1, "the 5th put to block")
    storage.gate.set()  # the writer fails on frame 0
    assert returned.wait(GATE_TIMEOUT_S)
    thread.join()
    assert raised == [error]  # the waiting put wakes up with the writer's error
    assert handler.error is error

    with pytest.raises(StorageWriteError) as later:
        handler.put({"time": 5}, frame(5))
    assert later.value is error
    s = handler.stats.snapshot()
    assert s.frames_written == 0
    assert s.frames_lost == 4  # the failed frame and the three queued behind it
    assert (s.queue_frames, s.queue_bytes) == (0, 0)
    assert s.frames_in == 4
    with pytest.raises(KeyError):  # nothing pending any more
        handler.get({"time": 1})

    handler.finish()  # does not raise; storage is still finished
    assert storage.finish_calls == 1
    assert storage.calls == [{"time": 0}]
    with pytest.raises(StorageWriteError):
        handler.put({"time": 6}, frame(6))


def test_unexpected_writer_exception_becomes_storage_write_error(make_handler):
    storage = FakeStorage(
        gated=True, fail_at=2, error=OSError(errno.EIO, "Input/output error")
    )
    handler = make_handler(storage)
    for i in range(5):
        handler.put({"time": i}, frame(i))
    storage.gate.set()
    handler.finish()
    assert isinstance(handler.error, StorageWriteError)
    assert "OSError" in str(handler.error)
    assert "Input/output error" in str(handler.error)
    s = handler.stats.snapshot()
    assert (s.frames_written, s.frames_lost, s.frames_in) == (2, 3, 5)
    assert (s.queue_frames, s.queue_bytes) == (0, 0)
    assert s.bytes_written == 2 * FRAME_BYTES
    assert storage.finish_calls == 1
    with pytest.raises(StorageWriteError):
        handler.put({"time": 9}, frame(9))


def test_put_after_finish_raises_handler_closed(make_handler):
    storage = FakeStorage()
    handler = make_handler(storage)
    handler.put({"time": 0}, frame(0))
    handler.finish()
    with pytest.raises(HandlerClosedError, match="finished"):
        handler.put({"time": 1}, frame(1))
    assert handler.stats.snapshot().frames_in == 1
    assert len(storage.written) == 1


def test_finish_timeout_then_finish_again(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage)
    handler.put({"time": 0}, frame(0))
    storage.wait_entered()
    with pytest.raises(TimeoutError, match="did not drain"):
        handler.finish(timeout=0.01)
    assert storage.finish_calls == 0
    with pytest.raises(HandlerClosedError):
        handler.put({"time": 1}, frame(1))
    storage.gate.set()
    handler.finish()
    assert storage.finish_calls == 1
    assert [c for c, _, _ in storage.written] == [{"time": 0}]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((H, W), np.float64), "float64"),
        (np.zeros((2, H, W), np.uint16), "2-D"),
        (np.zeros((0, W), np.uint16), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
    ids=["float64", "3-D", "empty", "list"],
)
def test_invalid_frame_is_rejected_at_put(make_handler, bad, message):
    storage = FakeStorage()
    handler = make_handler(storage)
    handler.put({"time": 0}, frame(0))
    with pytest.raises(InvalidFrameError, match=message):
        handler.put({"time": 1}, bad)
    s = handler.stats.snapshot()
    assert (s.frames_rejected, s.frames_in) == (1, 1)
    assert handler.latest().coords == {"time": 0}
    handler.put({"time": 1}, frame(1))  # same coordinates are still free
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1]
    np.testing.assert_array_equal(storage.written[1][1], frame(1))
    assert handler.stats.snapshot().frames_rejected == 1


def test_non_contiguous_frame_is_copied(make_handler):
    storage = FakeStorage()
    handler = make_handler(storage)
    wide = np.arange(H * 2 * W, dtype=np.uint16).reshape(H, 2 * W)
    view = wide[:, ::2]
    handler.put({"time": 0}, view)
    assert handler.latest().image.flags.c_contiguous
    handler.finish()
    np.testing.assert_array_equal(storage.written[0][1], view)
    assert handler.stats.snapshot().bytes_written == FRAME_BYTES


def test_duplicate_coordinates_while_pending(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage)
    handler.put({"time": 0, "channel": "DAPI"}, frame(0))
    with pytest.raises(DuplicateCoordinatesError, match="already waiting"):
        handler.put({"channel": "DAPI", "time": 0}, frame(1))
    with pytest.raises(DuplicateCoordinatesError):
        handler.put(DataCoordinates(time=0, channel="DAPI"), frame(2))
    assert handler.stats.snapshot().frames_in == 1
    assert handler.latest().image is not None
    np.testing.assert_array_equal(handler.latest().image, frame(0))
    storage.gate.set()
    handler.finish()
    assert len(storage.written) == 1
    np.testing.assert_array_equal(storage.written[0][1], frame(0))


def test_duplicate_of_a_written_frame_is_rejected_by_the_writer(make_handler, tmp):
    sink = NDTiffSink(tmp, "run")
    storage = FakeStorage(gated=True, inner=sink)
    handler = make_handler(storage)
    handler.put({"time": 0}, frame(0), {"n": 0})
    handler.put({"time": 1}, frame(1), {"n": 1})
    storage.gate.set()
    storage.wait_entered(2)  # frame 0 is written and no longer pending
    handler.put({"time": 0}, frame(2), {"n": 2})  # only the sink knows it
    storage.gate.set()
    handler.finish()

    s = handler.stats.snapshot()
    assert (s.frames_in, s.frames_written, s.frames_rejected) == (3, 2, 1)
    assert (s.frames_lost, s.queue_frames) == (0, 0)
    assert handler.error is None
    images = read_ndstorage(sink.path)
    assert set(images) == {key({"time": 0}), key({"time": 1})}
    np.testing.assert_array_equal(images[key({"time": 0})][0], frame(0))
    assert images[key({"time": 0})][1]["n"] == 0


class DiskFullWrites:
    """Stand-in for ndtiff_sink.write_gathered (one call per image): from image
    `fail_at` on the disk is full; the first failing call stores half the image
    (a partial write) before raising ENOSPC."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.calls = 0
        self.failures = 0
        self.full = threading.Event()

    def __call__(self, fd: int, chunks: list[memoryview], offset: int) -> None:
        call = self.calls
        self.calls += 1
        if call < self.fail_at:
            return REAL_WRITE_GATHERED(fd, chunks, offset)
        if self.failures == 0:
            data = b"".join(chunks)
            file_io.write_at(fd, memoryview(data[: len(data) // 2]), offset)
        self.failures += 1
        self.full.set()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_through_the_handler(make_handler, tmp, monkeypatch):
    sink = NDTiffSink(tmp, "run")
    storage = FakeStorage(inner=sink)
    disk = DiskFullWrites(fail_at=2)  # frame 2 fills the disk
    monkeypatch.setattr(ndtiff_sink, "write_gathered", disk)
    handler = make_handler(storage)
    refused = 0
    for i in range(5):
        try:  # once the writer has hit the full disk, put() refuses at once
            handler.put({"time": i}, frame(i), {"i": i})
        except StorageWriteError:
            refused += 1
    handler.finish()

    assert disk.full.is_set()
    assert disk.failures == 1
    assert disk.calls == 3  # frames 3 and 4 never written
    error = handler.error
    assert isinstance(error, StorageWriteError)
    assert "the disk is full" in str(error)
    assert "after 2 images" in str(error)
    with pytest.raises(StorageWriteError, match="the disk is full"):
        handler.put({"time": 9}, frame(9))
    s = handler.stats.snapshot()
    assert s.frames_written == 2
    assert s.frames_in + refused == 5
    assert s.frames_lost == s.frames_in - 2
    assert sink.finished

    images = read_ndstorage(sink.path)
    assert set(images) == {key({"time": 0}), key({"time": 1})}
    for i in range(2):
        np.testing.assert_array_equal(images[key({"time": i})][0], frame(i))
    pages = tif_pages(sink.path)
    assert len(pages) == 2
    for i, page in enumerate(pages):
        np.testing.assert_array_equal(page, frame(i))

    # the half-written frame is rolled back: the same bytes as a clean run
    monkeypatch.undo()
    reference = NDTiffSink(tmp / "reference", "run")
    for i in range(2):
        reference.put({"time": i}, frame(i), {"i": i})
    reference.finish()
    for name in ("run_NDTiffStack.tif", "NDTiff.index"):
        assert (sink.path / name).read_bytes() == (reference.path / name).read_bytes()


def test_get_of_a_written_frame_during_the_run(make_handler, tmp):
    sink = NDTiffSink(tmp, "run")
    storage = FakeStorage(gated=True, inner=sink)
    handler = make_handler(storage)
    for i in range(3):
        handler.put({"time": i}, frame(i), {"i": i})
    storage.gate.set()
    storage.wait_entered(3)  # frames 0 and 1 are on disk, no longer pending
    for i in range(2):
        assert sink.has({"time": i})  # so get() reads it from the open dataset
        image, md = handler.get({"time": i})
        np.testing.assert_array_equal(image, frame(i))
        assert md == {"i": i, "Axes": {"time": i}}
    storage.gate.set()
    handler.finish()


# --------------------------------------------------------------------------
# with the real sink: many frames, producer thread
# --------------------------------------------------------------------------


def test_producer_thread_and_small_queue_keep_every_frame(make_handler, tmp):
    sink = NDTiffSink(tmp, "run")
    handler = make_handler(sink, max_queue_bytes=2 * FRAME_BYTES)
    n = 200
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(n):
                handler.put({"time": i}, frame(i))
        except BaseException as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    handler.finish()
    assert errors == []
    s = handler.stats.snapshot()
    assert (s.frames_in, s.frames_written, s.frames_lost) == (n, n, 0)
    pages = tif_pages(sink.path)
    assert len(pages) == n
    for i, page in enumerate(pages):
        np.testing.assert_array_equal(page, frame(i))


def test_latest_frame_outlives_the_release_of_its_buffer(tmp):
    """A released camera slot is reused: the display keeps a copy of the latest."""
    sink = NDTiffSink(tmp / "data", "run")
    handler = DataHandler(sink)
    slot = np.full((8, 8), 7, np.uint16)  # stands for a ring-buffer slot
    released = threading.Event()
    handler.put({"time": 0}, slot, {}, release=released.set)
    handler.finish()
    assert released.is_set()
    slot[:] = 99  # the camera writes the next frame into the slot
    latest = handler.latest()
    assert latest is not None and latest.release is None
    assert not np.shares_memory(latest.image, slot)
    np.testing.assert_array_equal(latest.image, np.full((8, 8), 7, np.uint16))


class RunStorage(FakeStorage):
    """FakeStorage that also takes runs (refusing them while `refuse`)."""

    def __init__(self, *, refuse: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.refuse = refuse
        self.runs: list[list[dict]] = []

    def put_run(self, frames: list) -> bool:
        self.runs.append([dict(c) for c, _, _ in frames])
        if self.refuse:
            return False
        for c, image, md in frames:
            self.written.append((dict(c), image.copy(), md))
        return True


@pytest.mark.parametrize("refuse", [False, True])
def test_waiting_frames_go_to_the_storage_as_runs(refuse):
    storage = RunStorage(refuse=refuse, gated=True)
    handler = DataHandler(storage)
    released: list[int] = []
    handler.put({"time": 0}, np.full((4, 4), 0, np.uint16), {"t": 0})
    assert storage.entries.acquire(timeout=GATE_TIMEOUT_S)  # the writer holds frame 0
    for t in range(1, 9):
        handler.put({"time": t}, np.full((4, 4), t, np.uint16), {"t": t},
                    release=lambda t=t: released.append(t))  # fmt: skip
    storage.gate.set()
    handler.finish(timeout=10)
    assert storage.runs == [[{"time": t} for t in range(1, 9)]]
    assert [c["time"] for c, _, _ in storage.written] == list(range(9))
    for c, image, md in storage.written:
        assert md == {"t": c["time"]}
        np.testing.assert_array_equal(image, np.full((4, 4), c["time"], np.uint16))
    # refused: each frame was put by itself, in order
    assert [c["time"] for c in storage.calls] == ([0] if not refuse else list(range(9)))
    assert released == list(range(1, 9))
    assert handler.stats.frames_written == 9


def test_a_lone_frame_is_written_without_waiting_for_a_run(make_handler):
    """The writer sleeps until a frame comes, then waits at most RUN_WAIT_S
    for a run's worth: one frame alone is still written (no finish needed)."""
    storage = FakeStorage()
    handler = make_handler(storage)
    wait_until(lambda: handler._writer_waits == "frame", "the idle writer")
    handler.put({"time": 0}, frame(0))
    storage.wait_entered(1)
    wait_until(lambda: handler.stats.frames_written == 1, "the frame written")
    assert handler._writer_waits == "frame"  # asleep again, no polling
    np.testing.assert_array_equal(storage.written[0][1], frame(0))


def test_a_runs_worth_of_frames_wakes_the_writer_at_once(make_handler, monkeypatch):
    monkeypatch.setattr(handler_module, "RUN_WAIT_S", 10 * GATE_TIMEOUT_S)
    storage = FakeStorage()
    handler = make_handler(storage)
    wait_until(lambda: handler._writer_waits == "frame", "the idle writer")
    handler.put({"time": 0}, frame(0))
    wait_until(lambda: handler._writer_waits == "run", "the writer waiting for a run")
    for i in range(1, handler_module.RUN_FRAMES):
        handler.put({"time": i}, frame(i))
    # not RUN_WAIT_S (here the gate timeout) later: the last put woke it
    storage.wait_entered(handler_module.RUN_FRAMES)
    wait_until(
        lambda: handler.stats.frames_written == handler_module.RUN_FRAMES,
        "the run written",
    )


class RunRecorder:
    """Storage with prepare() and put_run(): records what the writer gets."""

    path = Path("recorder")

    def __init__(self) -> None:
        self.prepared_in: list[str] = []
        self.runs: list[list[Any]] = []

    def prepare(self, coords: Mapping, image: np.ndarray, metadata: Any) -> tuple:
        self.prepared_in.append(threading.current_thread().name)
        return ("prepared", dict(coords), image)

    def put_run(self, frames: list[Any]) -> bool:
        self.runs.append(list(frames))
        return True

    def put(self, coords: Mapping, image: np.ndarray, metadata: Any) -> None:
        raise AssertionError("every run goes in one piece here")

    def get(self, coords: Mapping) -> tuple[np.ndarray, dict]:
        raise KeyError(dict(coords))

    def has(self, coords: Mapping) -> bool:
        return False

    def finish(self) -> None:
        pass


def test_frames_are_prepared_by_the_producer_and_written_uncopied(make_handler):
    """put() encodes each frame in the caller's thread (storage.prepare); the
    writer hands that to put_run, and the pixels are the caller's array."""
    storage = RunRecorder()
    handler = make_handler(storage)
    images = [frame(i) for i in range(3)]
    for i, image in enumerate(images):
        handler.put({"time": i}, image)
    handler.finish(timeout=GATE_TIMEOUT_S)
    assert storage.prepared_in == [threading.current_thread().name] * 3
    written = [item for run in storage.runs for item in run]
    expected = [("prepared", {"time": i}) for i in range(3)]
    assert [item[:2] for item in written] == expected
    assert all(item[2] is image for item, image in zip(written, images, strict=True))


# --------------------------------------------------------------------------
# put_many: a run of frames from the engine under one lock
# --------------------------------------------------------------------------


def test_put_many_larger_than_the_queue_wakes_the_writer_and_keeps_every_frame(
    make_handler, tmp
):
    """The bug the engine's overflow test found: a run bigger than the queue
    waited for room while the writer slept, never told of the frames already
    queued (30 s, then a timeout). Every frame must arrive, in order."""
    sink = NDTiffSink(tmp, "many", {})
    handler = make_handler(
        sink, max_queue_bytes=3 * FRAME_BYTES, put_timeout_s=GATE_TIMEOUT_S
    )
    released: list[int] = []
    frames = [
        ({"time": t}, frame(t), {"t": t}, lambda t=t: released.append(t))
        for t in range(40)
    ]
    assert handler.put_many(frames) == (40, None)
    handler.finish()
    assert released == list(range(40))  # each slot freed once, oldest first
    images = read_ndstorage(sink.path)
    assert len(images) == 40
    for t in range(40):
        image, md = images[key({"time": t})]
        np.testing.assert_array_equal(image, frame(t))
        assert md == {"t": t, "Axes": {"time": t}}
    assert handler.stats.snapshot().frames_written == 40


def test_put_many_stops_at_an_invalid_frame_and_says_why(make_handler):
    storage = FakeStorage()
    handler = make_handler(storage)
    bad = np.zeros((H, W), np.float32)
    frames = [({"time": t}, frame(t), None, None) for t in range(3)]
    frames.insert(2, ({"time": 9}, bad, None, None))
    queued, error = handler.put_many(frames)
    assert queued == 2
    assert isinstance(error, InvalidFrameError)
    assert "uint8 or uint16" in str(error) and "float32" in str(error)
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1]  # the rest: caller's
    snap = handler.stats.snapshot()
    assert (snap.frames_written, snap.frames_rejected) == (2, 1)


def test_put_many_refuses_coordinates_already_waiting(make_handler):
    storage = FakeStorage(gated=True)
    handler = make_handler(storage, put_timeout_s=GATE_TIMEOUT_S)
    handler.put({"time": 0}, frame(0))
    storage.wait_entered()  # frame 0 is in the writer's hands (gated)
    handler.put({"time": 1}, frame(1))
    queued, error = handler.put_many(
        [({"time": 2}, frame(2), None, None), ({"time": 1}, frame(5), None, None)]
    )
    assert queued == 1
    assert isinstance(error, DuplicateCoordinatesError)
    assert "{'time': 1}" in str(error) and "already waiting" in str(error)
    storage.gate.set()
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2]
    np.testing.assert_array_equal(storage.written[1][1], frame(1))  # not frame 5


def test_put_many_stops_at_bad_coordinates_and_says_which(make_handler):
    storage = FakeStorage()
    handler = make_handler(storage)
    frames = [
        ({"time": 0}, frame(0), None, None),
        ({"time": 1, "_private": 2}, frame(1), None, None),
        ({"time": 2}, frame(2), None, None),
    ]
    queued, error = handler.put_many(frames)
    assert queued == 1
    assert isinstance(error, ValueError) and "'_private'" in str(error)
    handler.finish()
    assert [c["time"] for c, _, _ in storage.written] == [0]  # the rest: caller's
