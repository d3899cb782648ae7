"""The core every rig runs on: UniMMCore, with Micro-Manager's auto-shutter
honoured for Python cameras too.

MMCore opens the shutter around a snap when auto-shutter is on, but
UniMMCore's snap of a Python camera skips it, so every snap and every
non-sequenced MDA frame of the simulated rig came out dark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pymmcore_plus.experimental.unicore import UniMMCore

from mmapp.rig.buffer import prefault

logger = logging.getLogger(__name__)


@contextmanager
def quiet_adapter_search() -> Iterator[None]:
    """No Micro-Manager install is needed to build a core: mmapp itself says
    what is missing (pymmcore-plus would log 'run mmcore install')."""
    log = logging.getLogger("pymmcore-plus")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def set_buffer_mb(core: UniMMCore, size_mb: int) -> None:
    """Size the camera's circular buffer and fault its pages in up front."""
    core.setCircularBufferMemoryFootprint(size_mb)
    prefault(core)


class RigCore(UniMMCore):
    """UniMMCore whose Python-camera snaps open and close the auto-shutter."""

    def _do_snap_image(self) -> None:
        if self._py_camera() is None:  # C++ camera: MMCore does it already
            super()._do_snap_image()
            return
        opened = self._open_auto_shutter()
        try:
            super()._do_snap_image()
        finally:
            if opened:
                self.setShutterOpen(False)

    def _open_auto_shutter(self) -> bool:
        """Open the shutter if auto-shutter is on and it is closed (True: opened)."""
        if not (self.getAutoShutter() and self.getShutterDevice()):
            return False
        if self.getShutterOpen():
            return False
        self.setShutterOpen(True)
        return True
