"""The circular buffer of a `UniMMCore` with a Python camera."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

# the camera buffer may take at most this share of the PC's RAM (the OS, the
# app, the write queue and the processing need the rest)
MAX_BUFFER_SHARE = 0.6


def physical_memory_mb() -> int | None:
    """The PC's RAM in MB, or None where it cannot be read."""
    if sys.platform == "win32":

        class _Status(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = _Status()
        status.dwLength = ctypes.sizeof(_Status)
        if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return None
        return int(status.ullTotalPhys // (1024 * 1024))
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return int(pages * page // (1024 * 1024)) if pages > 0 and page > 0 else None


def buffer_size_problem(size_mb: int, total_mb: int | None = None) -> str | None:
    """Why a circular buffer of `size_mb` cannot be allocated here, or None."""
    total_mb = physical_memory_mb() if total_mb is None else total_mb
    if total_mb is None:
        return None
    limit = int(total_mb * MAX_BUFFER_SHARE)
    if size_mb > limit:
        return (
            f"circular_buffer_mb {size_mb} MB is more than this PC can give the "
            f"camera ({limit} MB: {MAX_BUFFER_SHARE:.0%} of its {total_mb} MB of RAM)"
        )
    return None


def on_slots_freed(core: Any, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` whenever the Python circular buffer frees a slot.

    For a camera that waits for room (benchmarks' flow control): it is told
    at once instead of looking again after a sleep. Returns the undo; a
    no-op where the core has no Python circular buffer.
    """
    ring = getattr(core, "_seq_buffer", None)
    evict = getattr(ring, "_evict_slot", None)
    if evict is None:
        return lambda: None

    def evict_and_tell(slot: Any) -> None:
        evict(slot)
        callback()

    ring._evict_slot = evict_and_tell

    def undo() -> None:
        if ring.__dict__.get("_evict_slot") is evict_and_tell:
            del ring._evict_slot

    return undo


# a replaced pool, or one whose camera starts, is let go within one chunk (16
# MB: 0.05 s at the 300 MB/s of a slow virtual machine's first touch)
PREFAULT_CHUNK_BYTES = 16 * 1024 * 1024


class _Prefault:
    """A thread faulting a pool's pages in, chunk by chunk, until done or
    cancelled (its ring got a new pool)."""

    def __init__(self, pool: np.ndarray) -> None:
        self.pool = weakref.ref(pool)
        self.cancelled = threading.Event()
        self.thread = threading.Thread(
            target=self._fill, args=(pool,), name="mmapp-prefault", daemon=True
        )

    def _fill(self, pool: np.ndarray) -> None:
        flat = pool.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, PREFAULT_CHUNK_BYTES):
            if self.cancelled.is_set():
                return
            flat[start : start + PREFAULT_CHUNK_BYTES].fill(0)


# id(core) -> its buffer pool's prefault (see prefault), changed under _FILLING_LOCK
_FILLING: dict[int, _Prefault] = {}
_FILLING_LOCK = threading.Lock()


def prefault(core: Any) -> bool:
    """Touch every page of the Python circular buffer now, not while streaming.

    A fresh buffer is only address space: each page costs a page fault and a
    zeroing the first time the camera writes it. For a 1 GiB buffer that was
    a third of the time of a 300-frame 2048x2048 run; paid up front, streaming
    runs at the speed of the disk from the first frame. The pages are touched
    by a thread (numpy lets go of the GIL), so loading a rig does not wait for
    them (seconds per GiB on some virtual machines). A sequence that starts
    before it is done stops it first (:func:`stop_prefault`: the zeroing must
    not run over frames, and Start must not wait seconds for it); the camera
    then faults the rest in as it fills the ring the first time. Benchmarks
    wait for it (:func:`wait_prefaulted`). Returns whether a buffer is being
    touched (C++ cameras keep MMCore's own buffer).
    """
    ring = getattr(core, "_seq_buffer", None)
    pool = getattr(ring, "_pool", None)
    if not isinstance(pool, np.ndarray) or not core.getCameraDevice():
        return False
    if not core.isPyDevice(core.getCameraDevice()):
        return False
    with _FILLING_LOCK:
        for key, filling in list(_FILLING.items()):  # forget finished ones
            if filling.pool() is None or not filling.thread.is_alive():
                _FILLING.pop(key, None)
        if (previous := _FILLING.get(id(core))) is not None:
            previous.cancelled.set()  # that pool is replaced: stop touching it
            previous.thread.join()  # within a chunk; one pool faulted in at a time
        job = _FILLING[id(core)] = _Prefault(pool)
        job.thread.start()
    return True


def wait_prefaulted(core: Any, timeout: float | None = None) -> bool:
    """Block until the circular buffer's pages are in (before the camera
    writes into it: the zeroing must not overwrite frames). False on timeout."""
    pool = getattr(getattr(core, "_seq_buffer", None), "_pool", None)
    job = _FILLING.get(id(core))
    if job is None or job.pool() is not pool:
        return True
    job.thread.join(timeout)
    if job.thread.is_alive():
        return False
    with _FILLING_LOCK:
        if _FILLING.get(id(core)) is job:  # not a newer pool's
            _FILLING.pop(id(core))
    return True


def stop_prefault(core: Any) -> None:
    """Stop touching the circular buffer's pages now, before the camera writes
    into it (returns within a chunk; the camera faults in what is left)."""
    with _FILLING_LOCK:
        job = _FILLING.pop(id(core), None)
        if job is not None:
            job.cancelled.set()
            job.thread.join()
