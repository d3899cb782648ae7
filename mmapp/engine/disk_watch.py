"""Stop a run before its disk fills (issue 15).

A thread looks at the free space of the dataset's disk every
:data:`CHECK_INTERVAL_S`. It asks the run to stop once what is left would not
hold what is still to come before the camera stops: the frames waiting to be
written, the data of one more check interval plus :data:`STOP_ALLOWANCE_S` at
the rate of the last interval, and the reserve kept free on every disk
(``capacity.reserve_bytes``: the index, run.json, the OS). A full disk that
comes anyway (another program filling it) still ends the run cleanly through
the writer's "the disk is full".
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mmapp.engine.capacity import reserve_bytes

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.25
# from the stop request until the camera has stopped and the queue is closed
STOP_ALLOWANCE_S = 1.0
MB = 1_000_000


def _mb(nbytes: float) -> str:
    return f"{nbytes / MB:.1f} MB"


class DiskWatch:
    """Calls `on_low(message)` once when the disk of `directory` runs low."""

    def __init__(
        self,
        directory: Path,
        on_low: Callable[[str], None],
        *,
        bytes_in: Callable[[], int],
        pending_bytes: Callable[[], int],
        interval_s: float = CHECK_INTERVAL_S,
        usage: Callable[[Path], tuple[int, int]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._on_low = on_low
        self._bytes_in = bytes_in
        self._pending = pending_bytes
        self.interval_s = interval_s
        self._usage = usage or _disk_usage
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.message: str | None = None  # set when the run was asked to stop

    def start(self) -> None:
        """Start watching (a daemon thread)."""
        self._thread = threading.Thread(
            target=self._loop, name="mmapp-disk-watch", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def _loop(self) -> None:
        last_t, last_in = time.monotonic(), self._bytes_in()
        while not self._stop.wait(self.interval_s):
            now, taken = time.monotonic(), self._bytes_in()
            rate = max(0.0, (taken - last_in) / max(now - last_t, 1e-3))
            last_t, last_in = now, taken
            try:
                message = self.check(rate)
            except OSError as exc:  # the disk vanished: the writer will say so
                logger.warning("no free space of %s: %s", self.directory, exc)
                continue
            if message is not None:
                self.message = message
                logger.error("%s", message)
                self._on_low(message)
                return

    def check(self, bytes_per_s: float) -> str | None:
        """The stop message if the disk is too full to go on, else None."""
        free, total = self._usage(self.directory)
        keep = reserve_bytes(total)
        coming = self._pending() + bytes_per_s * (self.interval_s + STOP_ALLOWANCE_S)
        if free - coming >= keep:
            return None
        return (
            f"the disk is nearly full: {_mb(free)} free on {self.directory}, "
            f"{_mb(keep)} is kept free; the run was stopped before it filled "
            f"and every frame it took is saved"
        )


def _disk_usage(directory: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(directory)
    return usage.free, usage.total
