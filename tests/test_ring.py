"""RingLease: zero-copy views of the camera ring, freed oldest first."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pymmcore_plus.experimental.unicore.core._sequence_buffer import SequenceBuffer

from mmapp.engine.ring import RingLease
from mmapp.rig.buffer import on_slots_freed

SHAPE = (4, 8)


def _fill(ring: SequenceBuffer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ring.insert_data(np.full(SHAPE, i, np.uint16), {"i": i})


def test_views_are_the_ring_slots_without_copy() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    _fill(ring, 3)
    lease = RingLease(ring)
    assert lease.remaining() == 3
    view, meta, release = lease.take()
    assert np.shares_memory(view, ring._slots[0].array)
    assert not view.flags.writeable
    assert view[0, 0] == 0 and meta == {"i": 0}
    assert lease.remaining() == 2 and len(ring) == 3  # still held in the ring
    release()
    assert len(ring) == 2 and lease.outstanding == 0


def test_release_out_of_order_frees_only_the_oldest_run() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    _fill(ring, 4)
    lease = RingLease(ring)
    taken = [lease.take() for _ in range(4)]
    used = ring.used_bytes
    taken[2][2]()  # the third: nothing can be freed yet
    taken[1][2]()
    assert len(ring) == 4 and ring.used_bytes == used
    taken[0][2]()  # now the first three go, in order
    assert len(ring) == 1 and lease.outstanding == 1
    assert ring._slots[0].array[0, 0] == 3
    taken[0][2]()  # idempotent
    assert len(ring) == 1
    taken[3][2]()
    assert len(ring) == 0 and ring.used_bytes == 0


def test_camera_cannot_overwrite_a_leased_frame() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    frame_bytes = np.prod(SHAPE) * 2
    capacity = ring.size_bytes // frame_bytes
    _fill(ring, capacity)
    lease = RingLease(ring)
    view, _, release = lease.take()
    with pytest.raises(BufferError):
        _fill(ring, 1, start=capacity)
    assert view[0, 0] == 0  # intact
    release()
    _fill(ring, 1, start=capacity)  # room again


def test_wait_all_released() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    _fill(ring, 2)
    lease = RingLease(ring)
    releases = [lease.take()[2] for _ in range(2)]
    assert not lease.wait_all_released(0.01)
    done = threading.Event()

    def waiter() -> None:
        if lease.wait_all_released(5):
            done.set()

    t = threading.Thread(target=waiter)
    t.start()
    releases[1]()
    assert lease.outstanding == 2 and not done.is_set()  # the oldest still held
    releases[0]()
    t.join(5)
    assert done.is_set()


def test_take_many_hands_out_the_oldest_frames_once() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    _fill(ring, 5)
    lease = RingLease(ring)
    first = lease.take_many(3)
    assert [int(view[0, 0]) for view, _, _ in first] == [0, 1, 2]
    assert [meta["i"] for _, meta, _ in first] == [0, 1, 2]
    assert all(not view.flags.writeable for view, _, _ in first)
    rest = lease.take_many(10)  # only what is there
    assert [int(view[0, 0]) for view, _, _ in rest] == [3, 4]
    assert lease.take_many(10) == [] and lease.remaining() == 0
    for _, _, release in first + rest:
        release()
    assert len(ring) == 0 and lease.outstanding == 0


def test_wait_is_woken_by_a_published_frame() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    lease = RingLease(ring)
    assert lease.wait(0.0) is False  # nothing there
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(lease.wait(30.0)))
    thread.start()
    while not lease._waiting and thread.is_alive():  # blocked in wait()
        thread.join(0.001)
    _fill(ring, 1)  # finalize_slot, through the lease's hook
    thread.join(10)
    assert woke == [True]  # long before the 30 s timeout
    lease.close()
    assert "finalize_slot" not in ring.__dict__  # the ring's own method again


def test_wake_ends_a_wait_without_a_frame() -> None:
    ring = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)
    lease = RingLease(ring)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(lease.wait(30.0)))
    thread.start()
    while not lease._waiting and thread.is_alive():
        thread.join(0.001)
    lease.wake()
    thread.join(10)
    assert result == [False] and not thread.is_alive()


def test_on_slots_freed_tells_of_every_freed_slot_until_undone() -> None:
    class Core:
        _seq_buffer = SequenceBuffer(size_mb=1, overwrite_on_overflow=False)

    ring = Core._seq_buffer
    _fill(ring, 3)
    freed: list[int] = []
    undo = on_slots_freed(Core(), lambda: freed.append(len(ring)))
    lease = RingLease(ring)
    taken = lease.take_many(3)
    taken[1][2]()
    assert freed == []  # the oldest is still held: nothing freed
    taken[0][2]()
    assert len(freed) == 2 and len(ring) == 1
    undo()
    taken[2][2]()
    assert len(freed) == 2 and len(ring) == 0
    assert "_evict_slot" not in ring.__dict__
    assert on_slots_freed(object(), lambda: None)() is None  # no ring: a no-op
