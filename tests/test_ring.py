"""RingLease: zero-copy views of the camera ring, freed oldest first."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pymmcore_plus.experimental.unicore.core._sequence_buffer import SequenceBuffer

from mmapp.engine.ring import RingLease

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
