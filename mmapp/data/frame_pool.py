"""Recycled frame buffers: no allocation (and no page faults) per frame.

Popping a frame out of the camera's ring buffer needs a copy; copying into a
fresh 8 MB array costs more than the copy itself (the kernel zeroes new pages).
The pool hands out arrays the writer has finished with instead, and holds at
most `max_bytes` of them, so memory stays bounded by configuration.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict, deque

import numpy as np


class FramePool:
    """Thread-safe free list of frame arrays, keyed by shape and dtype."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._free: dict[tuple, deque[np.ndarray]] = defaultdict(deque)
        self._bytes = 0
        self._free_ids: set[int] = set()  # arrays waiting in a free list
        self._lock = threading.Lock()
        # only arrays this pool handed out are ever recycled
        self._owned: weakref.WeakValueDictionary[int, np.ndarray] = (
            weakref.WeakValueDictionary()
        )
        self.reused = 0
        self.allocated = 0

    def acquire(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A writable array of this shape and dtype (contents undefined)."""
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                arr = free.pop()
                self._free_ids.discard(id(arr))
                self._bytes -= arr.nbytes
                self.reused += 1
                return arr
            self.allocated += 1
        arr = np.empty(shape, dtype)
        with self._lock:
            self._owned[id(arr)] = arr
        return arr

    def release(self, arr: np.ndarray) -> None:
        """Give an array back once nothing reads it any more."""
        with self._lock:
            if self._owned.get(id(arr)) is not arr or id(arr) in self._free_ids:
                return
            if self._bytes + arr.nbytes > self.max_bytes:
                return
            self._free[(arr.shape, arr.dtype.str)].append(arr)
            self._free_ids.add(id(arr))
            self._bytes += arr.nbytes

    @property
    def pooled_bytes(self) -> int:
        """Bytes currently held for reuse."""
        return self._bytes
