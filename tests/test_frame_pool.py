"""Tests for mmapp.data.frame_pool.FramePool and how DataHandler recycles frames."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmapp.data.frame_pool import FramePool
from mmapp.data.handler import DataHandler

H, W = 16, 24
SHAPE = (H, W)
U16 = np.dtype(np.uint16)
FRAME_BYTES = H * W * 2
TIMEOUT_S = 10.0  # safety net only


# --------------------------------------------------------------------------
# FramePool on its own
# --------------------------------------------------------------------------


def test_acquire_allocates_a_writable_array_of_the_requested_kind():
    pool = FramePool(10 * FRAME_BYTES)
    a = pool.acquire(SHAPE, np.uint16)
    assert a.shape == SHAPE
    assert a.dtype == U16
    assert a.flags.c_contiguous
    assert a.flags.writeable
    b = pool.acquire(SHAPE, np.uint16)
    assert b is not a
    assert not np.shares_memory(a, b)
    assert (pool.allocated, pool.reused, pool.pooled_bytes) == (2, 0, 0)


def test_released_arrays_are_reused():
    pool = FramePool(10 * FRAME_BYTES)
    a = pool.acquire(SHAPE, U16)
    pool.release(a)
    assert pool.pooled_bytes == FRAME_BYTES
    b = pool.acquire(SHAPE, "uint16")  # the same dtype, spelled differently
    assert b is a
    assert (pool.allocated, pool.reused, pool.pooled_bytes) == (1, 1, 0)
    c = pool.acquire(SHAPE, U16)  # the free list is empty again
    assert c is not a
    assert pool.allocated == 2


def test_only_arrays_the_pool_allocated_are_recycled():
    pool = FramePool(10 * FRAME_BYTES)
    foreign = np.zeros(SHAPE, U16)
    pool.release(foreign)
    owned = pool.acquire(SHAPE, U16)
    pool.release(owned[:])  # a view of an owned array is not the array
    pool.release(owned.copy())
    assert pool.pooled_bytes == 0
    got = pool.acquire(SHAPE, U16)
    assert got is not foreign
    assert got is not owned
    assert pool.reused == 0


def test_a_dead_pool_array_id_reused_by_a_foreign_array_is_not_recycled():
    pool = FramePool(10 * FRAME_BYTES)
    owned = pool.acquire(SHAPE, U16)
    owned_id = id(owned)
    del owned
    gc.collect()
    keep = []  # keep candidates alive so ids are not recycled among them
    for _ in range(1000):
        candidate = np.zeros(SHAPE, U16)
        keep.append(candidate)
        if id(candidate) == owned_id:
            break
    else:
        pytest.skip("the interpreter did not reuse the object id")
    pool.release(candidate)
    assert pool.pooled_bytes == 0
    assert pool.acquire(SHAPE, U16) is not candidate


def test_an_array_released_twice_is_pooled_once():
    pool = FramePool(10 * FRAME_BYTES)
    a = pool.acquire(SHAPE, U16)
    pool.release(a)
    pool.release(a)
    assert pool.pooled_bytes == FRAME_BYTES
    first = pool.acquire(SHAPE, U16)
    second = pool.acquire(SHAPE, U16)
    assert first is a
    assert second is not a
    assert not np.shares_memory(first, second)
    assert (pool.reused, pool.allocated) == (1, 2)
    # once handed out again, it may be released (once) again
    pool.release(first)
    pool.release(first)
    assert pool.pooled_bytes == FRAME_BYTES


def test_free_lists_are_keyed_by_shape_and_dtype():
    pool = FramePool(10 * FRAME_BYTES)
    a = pool.acquire(SHAPE, U16)
    pool.release(a)
    assert pool.acquire(SHAPE, np.uint8) is not a
    assert pool.acquire((W, H), U16) is not a
    assert pool.acquire((H * W,), U16) is not a
    assert pool.acquire(SHAPE, ">u2") is not a  # byte order is part of the dtype
    assert pool.pooled_bytes == FRAME_BYTES
    assert pool.acquire([H, W], U16) is a  # shape as a list is the same key


def test_pool_holds_at_most_max_bytes():
    pool = FramePool(2 * FRAME_BYTES)
    arrays = [pool.acquire(SHAPE, U16) for _ in range(3)]
    for arr in arrays:
        pool.release(arr)
    assert pool.pooled_bytes == 2 * FRAME_BYTES
    again = [pool.acquire(SHAPE, U16) for _ in range(3)]
    assert {id(a) for a in again[:2]} == {id(a) for a in arrays[:2]}
    assert all(again[2] is not a for a in arrays)
    assert pool.reused == 2
    assert pool.allocated == 4

    # small arrays still fit next to big ones until the byte budget is used
    small = pool.acquire((4, 4), np.uint8)
    for arr in again:
        pool.release(arr)
    pool.release(small)
    assert pool.pooled_bytes == 2 * FRAME_BYTES
    mixed = FramePool(FRAME_BYTES + 16)
    big, tiny = mixed.acquire(SHAPE, U16), mixed.acquire((4, 4), np.uint8)
    mixed.release(big)
    mixed.release(tiny)
    assert mixed.pooled_bytes == FRAME_BYTES + 16


def test_concurrent_acquire_release_never_hands_one_array_to_two_holders():
    pool = FramePool(4 * FRAME_BYTES)
    in_use: set[int] = set()
    lock = threading.Lock()
    problems: list[str] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for _ in range(300):
            arr = pool.acquire(SHAPE, U16)
            with lock:
                if id(arr) in in_use:
                    problems.append("array handed out twice")
                in_use.add(id(arr))
            arr.fill(n)
            if not (arr == n).all():
                problems.append("array written by another holder")
            with lock:
                in_use.discard(id(arr))
            pool.release(arr)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    assert pool.reused > 0
    assert pool.pooled_bytes <= 4 * FRAME_BYTES


# --------------------------------------------------------------------------
# DataHandler and the pool
# --------------------------------------------------------------------------


class GatedStorage:
    """Storage whose put waits at a gate; keeps a copy of every written frame."""

    path = Path("gated")

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entries = threading.Semaphore(0)
        self.written: list[tuple[dict, np.ndarray]] = []
        self.finish_calls = 0

    def put(self, coords: Mapping, image: np.ndarray, metadata: Any) -> None:
        self.entries.release()
        if not self.gate.wait(TIMEOUT_S):
            raise RuntimeError("test gate was never opened")
        self.written.append((dict(coords), image.copy()))

    def get(self, coords: Mapping) -> tuple[np.ndarray, dict]:
        for c, image in self.written:
            if c == dict(coords):
                return image, {}
        raise KeyError(dict(coords))

    def has(self, coords: Mapping) -> bool:
        return any(c == dict(coords) for c, _ in self.written)

    def finish(self) -> None:
        self.finish_calls += 1

    def wait_entered(self, n: int = 1) -> None:
        for _ in range(n):
            assert self.entries.acquire(timeout=TIMEOUT_S), "writer never came"


@pytest.fixture
def handler_factory() -> Iterator[Callable[..., tuple[DataHandler, GatedStorage]]]:
    created: list[tuple[DataHandler, GatedStorage]] = []

    def make(**kwargs: Any) -> tuple[DataHandler, GatedStorage]:
        storage = GatedStorage()
        handler = DataHandler(storage, **kwargs)
        created.append((handler, storage))
        return handler, storage

    yield make
    for handler, storage in created:
        storage.gate.set()
        handler.finish(timeout=TIMEOUT_S)
        assert not handler._writer.is_alive()


def pooled_frame(handler: DataHandler, value: int) -> np.ndarray:
    arr = handler.pool.acquire(SHAPE, U16)
    arr.fill(value)
    return arr


def test_handler_recycles_written_pool_frames_but_not_the_latest(handler_factory):
    handler, storage = handler_factory()
    a = pooled_frame(handler, 1)
    b = pooled_frame(handler, 2)
    handler.put({"time": 0}, a)
    handler.put({"time": 1}, b)
    storage.gate.set()
    handler.finish()

    assert handler.latest().image is b
    assert handler.pool.pooled_bytes == FRAME_BYTES  # a only
    again = handler.pool.acquire(SHAPE, U16)
    assert again is a  # written and not shown any more: recycled
    fresh = handler.pool.acquire(SHAPE, U16)
    assert fresh is not b  # still the latest frame: never handed out
    assert (b == 2).all()
    assert [c["time"] for c, _ in storage.written] == [0, 1]
    assert (storage.written[0][1] == 1).all()
    assert (storage.written[1][1] == 2).all()


def test_handler_never_recycles_caller_arrays(handler_factory):
    handler, storage = handler_factory()
    caller = np.arange(H * W, dtype=np.uint16).reshape(SHAPE)
    original = caller.copy()
    p1 = pooled_frame(handler, 11)
    p2 = pooled_frame(handler, 12)
    handler.put({"time": 0}, caller)  # caller-owned, not the latest
    handler.put({"time": 1}, p1)
    handler.put({"time": 2}, p2)
    storage.gate.set()
    storage.wait_entered(3)  # frames 0 and 1 are written and released

    reused = handler.pool.acquire(SHAPE, U16)
    assert reused is p1  # the pool's own frame comes back ...
    reused.fill(0xFFFF)
    handler.put({"time": 3}, reused)
    another = handler.pool.acquire(SHAPE, U16)
    assert another is not caller  # ... the caller's never does
    another.fill(0xEEEE)
    handler.put({"time": 4}, another)
    handler.finish()

    np.testing.assert_array_equal(caller, original)
    for _ in range(4):
        assert handler.pool.acquire(SHAPE, U16) is not caller
    written = {c["time"]: image for c, image in storage.written}
    np.testing.assert_array_equal(written[0], original)
    assert (written[1] == 11).all()  # recycled only after it was written
    assert (written[2] == 12).all()
    assert (written[3] == 0xFFFF).all()
    assert (written[4] == 0xEEEE).all()


def test_handler_pool_is_bounded_by_the_queue_size(handler_factory):
    handler, storage = handler_factory(max_queue_bytes=2 * FRAME_BYTES)
    storage.gate.set()
    for i in range(6):
        handler.put({"time": i}, pooled_frame(handler, i))
    handler.finish()
    assert handler.pool.pooled_bytes <= 2 * FRAME_BYTES
    assert [c["time"] for c, _ in storage.written] == list(range(6))
    for i, (_, image) in enumerate(storage.written):
        assert (image == i).all()


class _CondSpy:
    """Wraps DataHandler._cond to pause the engine thread right after put()
    releases the lock, until the writer has written the frame and gone back to
    waiting for the next one (the interleaving a busy machine produces)."""

    def __init__(self, handler: DataHandler) -> None:
        self._cond = handler._cond
        self._handler = handler
        self.armed = False
        self.writer_idle = threading.Event()

    def __enter__(self) -> bool:
        return self._cond.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._cond.__exit__(*exc)
        if self.armed and threading.current_thread() is not self._handler._writer:
            self.armed = False
            assert self.writer_idle.wait(TIMEOUT_S), "writer never went idle"

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None):
        if (
            threading.current_thread() is self._handler._writer
            and self._handler.stats.frames_written >= 1
        ):
            self.writer_idle.set()
        return self._cond.wait_for(predicate, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cond, name)


def test_latest_frame_is_not_recycled_even_if_written_at_once(handler_factory):
    handler, storage = handler_factory()
    storage.gate.set()
    spy = _CondSpy(handler)
    handler._cond = spy
    image = pooled_frame(handler, 42)
    spy.armed = True
    handler.put({"time": 0}, image)
    assert spy.writer_idle.is_set()
    assert handler.latest().image is image
    nxt = handler.pool.acquire(SHAPE, U16)
    assert nxt is not image, "latest() frame's buffer was handed out again"


def test_a_pool_array_put_twice_is_handed_out_once(handler_factory):
    handler, storage = handler_factory()
    shared = pooled_frame(handler, 5)
    handler.put({"time": 0, "channel": "A"}, shared)
    handler.put({"time": 0, "channel": "B"}, shared)
    handler.put({"time": 1, "channel": "A"}, pooled_frame(handler, 6))  # latest
    storage.gate.set()
    handler.finish()
    assert [(c["channel"], (img == 5).all()) for c, img in storage.written[:2]] == [
        ("A", True),
        ("B", True),
    ]
    first = handler.pool.acquire(SHAPE, U16)
    second = handler.pool.acquire(SHAPE, U16)
    assert first is not second
