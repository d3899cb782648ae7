"""Frames straight out of the camera's circular buffer, without a copy.

For Python cameras in `UniMMCore` the circular buffer is a `SequenceBuffer`
(pymmcore-plus 0.18): a byte pool with a FIFO of slots. `popNextImage` copies
each frame out and frees its slot at once; at 2048x2048 that copy costs as much
memory bandwidth as writing the frame to disk. A :class:`RingLease` hands out
read-only views of the slots instead and frees them, oldest first, only when
the writer is done with them. The camera therefore never overwrites a frame
that is still queued: a writer that falls behind fills the ring, and the
camera stops with a buffer overflow (the sequence must stop on overflow).

The lease also tells the consumer when a frame arrives (:meth:`RingLease.wait`,
woken by the ring's `finalize_slot`), so an idle engine blocks instead of
polling, and :meth:`RingLease.take_many` hands out every waiting frame under
one lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import numpy as np


class _PlainMetadata:
    """Frame metadata with plain str keys and values where the core put enums.

    UniMMCore keys each frame's metadata by `Keyword` enum members (and the
    pixel type is a `PixelType`): JSON encoders take such keys through Python
    per key, which cost more than the rest of a small frame's encoding. The
    keys come in the same order frame after frame, so their names are looked
    up once per sequence.
    """

    __slots__ = ("_enum_values", "_keys", "_names")

    def __init__(self) -> None:
        self._keys: tuple = ()
        self._names: tuple[str, ...] = ()
        self._enum_values: tuple[int, ...] = ()

    def __call__(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        if not metadata:
            return {}
        keys = tuple(metadata)
        values = list(metadata.values())
        if keys != self._keys:
            self._keys = keys
            self._names = tuple(_plain(k) for k in keys)
            self._enum_values = tuple(
                i for i, v in enumerate(values) if isinstance(v, Enum)
            )
        for i in self._enum_values:
            if isinstance(value := values[i], Enum):
                values[i] = value.value
        return dict(zip(self._names, values, strict=True))


def _plain(key: Any) -> str:
    return key.value if isinstance(key, Enum) else str(key)


class _Token:
    """One handed-out slot; released once."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


class _Release:
    """Callable that frees one leased slot (FIFO-safe, idempotent)."""

    __slots__ = ("_lease", "_token")

    def __init__(self, lease: RingLease, token: _Token) -> None:
        self._lease, self._token = lease, token

    def __call__(self) -> None:
        self._lease._release(self._token)


class RingLease:
    """Zero-copy consumer of a pymmcore-plus `SequenceBuffer` (FIFO release)."""

    def __init__(self, ring: Any) -> None:
        self.ring = ring
        self._ring = ring
        self._lock: threading.Lock = ring._lock
        self._tokens: deque[_Token] = deque()  # handed out, oldest first
        self._all_released = threading.Condition(threading.Lock())
        # set by the camera's thread when a frame is published while the
        # consumer waits (only then: no wake-up per frame while it is busy)
        self._arrived = threading.Event()
        self._waiting = False
        self._plain = _PlainMetadata()
        self._publish = ring.finalize_slot
        ring.finalize_slot = self._finalize_slot  # the core calls the instance's

    def _finalize_slot(self, metadata: Any = None) -> None:
        self._publish(metadata)
        if self._waiting:
            self._arrived.set()

    def close(self) -> None:
        """Give the ring its own `finalize_slot` back (the lease is not used again)."""
        if self.ring.__dict__.get("finalize_slot") == self._finalize_slot:
            del self.ring.finalize_slot
        self.wake()

    def wait(self, timeout: float) -> bool:
        """Block until a frame not yet handed out is waiting, :meth:`wake` is
        called, or `timeout` passes; returns whether a frame is waiting."""
        self._arrived.clear()
        self._waiting = True
        try:
            if self.remaining():
                return True
            self._arrived.wait(timeout)
        finally:
            self._waiting = False
        return self.remaining() > 0

    def wake(self) -> None:
        """End a :meth:`wait` now (Stop)."""
        self._arrived.set()

    @staticmethod
    def supported(core: Any) -> bool:
        """Whether the core's current camera uses a `SequenceBuffer` we can lease."""
        ring = getattr(core, "_seq_buffer", None)
        return (
            ring is not None
            and all(hasattr(ring, a) for a in ("_lock", "_slots", "_evict_slot"))
            and core.isPyDevice(core.getCameraDevice())
        )

    def remaining(self) -> int:
        """Frames in the ring that have not been handed out yet."""
        with self._lock:
            return len(self._ring._slots) - len(self._tokens)

    def take(self) -> tuple[np.ndarray, Mapping[str, Any], Callable[[], None]]:
        """The oldest frame not yet handed out: (view, metadata, release)."""
        with self._lock:
            slot = self._ring._slots[len(self._tokens)]
            token = _Token()
            self._tokens.append(token)
        view = slot.array.view()
        view.flags.writeable = False
        return view, self._plain(slot.metadata), _Release(self, token)

    def take_many(
        self, limit: int
    ) -> list[tuple[np.ndarray, Mapping[str, Any], Callable[[], None]]]:
        """Up to `limit` of the oldest frames not yet handed out, under one lock."""
        with self._lock:
            slots = self._ring._slots
            start = len(self._tokens)
            count = min(limit, len(slots) - start)
            tokens = [_Token() for _ in range(count)]
            self._tokens.extend(tokens)
            taken = [slots[start + k] for k in range(count)]
        out = []
        for slot, token in zip(taken, tokens, strict=True):
            view = slot.array.view()
            view.flags.writeable = False
            out.append((view, self._plain(slot.metadata), _Release(self, token)))
        return out

    def _release(self, token: _Token) -> None:
        with self._lock:
            if token.released:
                return
            token.released = True
            ring = self._ring
            while self._tokens and self._tokens[0].released:
                self._tokens.popleft()
                ring._evict_slot(ring._slots.popleft())
            empty = not self._tokens
        if empty:
            with self._all_released:
                self._all_released.notify_all()

    @property
    def outstanding(self) -> int:
        """Frames handed out and not yet released."""
        with self._lock:
            return len(self._tokens)

    def wait_all_released(self, timeout: float | None = None) -> bool:
        """Block until every handed-out frame is released (before the ring is reset)."""
        with self._all_released:
            return self._all_released.wait_for(lambda: self.outstanding == 0, timeout)


def fit_ring_to_frames(ring: Any, frame_bytes: int) -> bool:
    """Make the ring a whole number of frames long (before a sequence starts).

    With overwrite off, pymmcore-plus's SequenceBuffer only wraps to the start
    of its pool when the oldest slot is free; a leased slot usually is not, so
    a pool that is not a whole number of frames "overflows" once per cycle with
    most of it free. Exactly k frames long, the write position wraps by itself.
    Returns False when fewer than two frames fit (then leasing is not used).
    """
    frames = ring._pool.nbytes // frame_bytes if frame_bytes > 0 else 0
    if frames < 2:
        return False
    size = frames * frame_bytes
    if ring._size_bytes != size:
        ring.clear()
        ring._size_bytes = size
    return True
