"""The core every rig runs on: UniMMCore, with Micro-Manager's auto-shutter
honoured for Python cameras too.

MMCore opens the shutter around a snap when auto-shutter is on, but
UniMMCore's snap of a Python camera skips it, so every snap and every
non-sequenced MDA frame of the simulated rig came out dark.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymmcore_plus.experimental.unicore import UniMMCore

from mmapp.rig.buffer import buffer_size_problem, prefault, stop_prefault
from mmapp.rig.errors import RigError

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


@contextmanager
def _installed_modules_only() -> Iterator[None]:
    """Imports that do not look in the current folder (`''` on sys.path)."""
    cwd = {"", "."}
    with contextlib.suppress(OSError):
        cwd.add(os.getcwd())
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if p not in cwd]
    try:
        yield
    finally:
        sys.path[:] = saved


def set_buffer_mb(core: UniMMCore, size_mb: int) -> None:
    """Size the camera's circular buffer and fault its pages in up front.

    Raises RigError when this PC's RAM cannot hold it (before allocating)."""
    problem = buffer_size_problem(size_mb)
    if problem:
        raise RigError(problem)
    try:
        core.setCircularBufferMemoryFootprint(size_mb)
    except (MemoryError, RuntimeError) as exc:
        raise RigError(
            f"circular_buffer_mb {size_mb} MB could not be allocated: {exc}"
        ) from None
    prefault(core)


class PythonDeviceRefused(ImportError):
    """A .cfg line names a Python module the rig file does not allow."""


class RigCore(UniMMCore):
    """UniMMCore whose Python-camera snaps open and close the auto-shutter,
    and which loads Python devices named in a `.cfg` only from the installed
    modules its rig file allows (`python_device_modules`): UniMMCore would
    import any module a `.cfg` names, so a preset naming a `.cfg` could run
    code from the current folder."""

    allowed_python_modules: frozenset[str] = frozenset()

    def _get_py_device_instance(self, module_name: str, cls_name: str) -> Any:
        if module_name not in self.allowed_python_modules:
            raise PythonDeviceRefused(
                f"{module_name!r} is not a Micro-Manager device adapter here, and "
                "Python devices from a .cfg are loaded only from installed modules "
                "the rig file lists in python_device_modules"
            )
        with _installed_modules_only():
            return super()._get_py_device_instance(module_name, cls_name)

    def startSequenceAcquisition(self, *args: Any) -> None:
        """MMCore's, once nothing else writes the circular buffer (see prefault)."""
        stop_prefault(self)
        super().startSequenceAcquisition(*args)

    def startContinuousSequenceAcquisition(self, intervalMs: float = 0) -> None:
        """MMCore's, once nothing else writes the circular buffer (see prefault)."""
        stop_prefault(self)
        super().startContinuousSequenceAcquisition(intervalMs)

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
