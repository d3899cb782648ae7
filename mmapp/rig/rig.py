"""A loaded rig: its core and the hooks that keep it coordinated and safe.

The same class serves real and simulated hardware: what differs is filled in
by whoever loads the rig (`mmapp.rig.loader`), as hooks and safe-state steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymmcore_plus.experimental.unicore import UniMMCore

from mmapp.daq.connection import DaqConnection
from mmapp.daq.program import WaveformProgram
from mmapp.rig.buffer import stop_prefault
from mmapp.rig.errors import RigSafetyError
from mmapp.rig.spec import RigSpec
from mmapp.rig.triggers import GENERIC as GENERIC_TRIGGER
from mmapp.rig.triggers import CameraTriggerSpec


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


SafeStep = tuple[str, Callable[[], None]]  # (what failed, if it raises; the step)


@dataclass
class Rig:
    """A loaded rig: the core plus what the engine needs to keep it safe."""

    name: str
    core: UniMMCore
    spec: RigSpec | None = None
    source: str = ""
    daq: DaqConnection | None = None
    # Stop: unblock a camera waiting for a trigger (never wait on it)
    abort_hooks: list[Callable[[], None]] = field(default_factory=list)
    # before a DAQ run plays a program (e.g. enable the lasers it blanks)
    program_hooks: list[Callable[[WaveformProgram], None]] = field(default_factory=list)
    # the safe state, in order, before the shutter closes: every step is tried
    safe_steps: list[SafeStep] = field(default_factory=list)
    # after the devices are unloaded (e.g. stop the simulated card's server)
    close_hooks: list[Callable[[], None]] = field(default_factory=list)
    # the camera's trigger property and values (engine, checks, device panel)
    trigger: CameraTriggerSpec = GENERIC_TRIGGER
    camera_ready: Callable[[float], bool] | None = None  # armed within timeout?
    camera_fault: Callable[[], str | None] = lambda: None  # the camera's last error
    # whether any light would reach the sample now (None: the rig cannot tell)
    light_check: Callable[[], bool] | None = None
    # the simulated parts, for tests and benchmarks (None on a real rig)
    state: Any = None
    camera: Any = None
    lasers: Any = None
    daq_device: Any = None
    daq_server: Any = None

    @property
    def exposure_out(self) -> str | None:
        """The card terminal the camera's exposure-out is wired to."""
        return (
            self.spec.daq.camera_exposure_out if self.spec and self.spec.daq else None
        )

    def prepare_for_program(self, program: WaveformProgram) -> None:
        """Before a DAQ run: what the rig needs to play it (lasers enabled...)."""
        for hook in self.program_hooks:
            hook(program)

    def wait_camera_ready(self, timeout: float) -> bool:
        """Block until a started camera is armed (False: not within timeout)."""
        if self.camera_ready is None:
            return True  # a camera armed when its start call returns
        return self.camera_ready(timeout)

    def abort_camera(self) -> None:
        """Unblock the camera now (Stop must never wait on a trigger)."""
        for hook in self.abort_hooks:
            hook()

    def make_safe(self) -> None:
        """Lasers off and shutter closed (runs on stop, error and exit).

        Every step is tried; if any failed, RigSafetyError names each one (a
        rig that may still emit light is never reported as safe).
        """
        failed: list[str] = []
        for what, step in self.safe_steps:
            try:
                step()
            except Exception as exc:
                failed.append(f"{what} ({_reason(exc)})")
        try:
            if self.core.getShutterDevice():
                self.core.setShutterOpen(False)
        except Exception as exc:
            failed.append(f"shutter not closed ({_reason(exc)})")
        if failed:
            raise RigSafetyError("; ".join(failed))

    def close(self) -> None:
        """Make safe and unload every device (unloaded even if a safe-state step
        failed; that failure is raised afterwards)."""
        try:
            self.make_safe()
        finally:
            self._unload()

    def _unload(self) -> None:
        try:
            if self.core.isSequenceRunning():
                self.abort_camera()
                self.core.stopSequenceAcquisition()
            if self.camera is not None:  # give the ring buffer's memory back now
                stop_prefault(self.core)  # else its thread keeps the pool alive
                self.core.setCircularBufferMemoryFootprint(16)
        finally:
            self.core.unloadAllDevices()
            if self.daq is not None:
                self.daq.close()  # its gRPC channel
            for hook in self.close_hooks:
                hook()
            self.close_hooks.clear()
