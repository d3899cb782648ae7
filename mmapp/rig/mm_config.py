"""Micro-Manager `.cfg` rigs: loaded into the same core class as the simulated
rig, with errors that name the line and the missing adapter."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

from pymmcore_plus.experimental.unicore import UniMMCore

from mmapp.daq.connection import DaqConnection
from mmapp.daq.tasks import park_outputs
from mmapp.rig.core import (
    PythonDeviceRefused,
    RigCore,
    quiet_adapter_search,
    set_buffer_mb,
)
from mmapp.rig.errors import RigError
from mmapp.rig.rig import Rig
from mmapp.rig.spec import SIMULATED, DaqSpec, RigSpec
from mmapp.rig.triggers import trigger_mapping

_AT_LINE = re.compile(r"at line (\d+):")
_WRAPPERS = ("Error in configuration file ", "Error executing command ")


def _config_line(path: Path, number: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return lines[number - 1].strip()
    except (OSError, IndexError):
        return ""


def adapter_search_description(core: UniMMCore) -> str:
    """Where device adapters were looked for (MICROMANAGER_PATH, search paths)."""
    env = os.environ.get("MICROMANAGER_PATH")
    where = f"MICROMANAGER_PATH={env}" if env else "MICROMANAGER_PATH is not set"
    try:
        paths = [str(p) for p in core.getDeviceAdapterSearchPaths()]
    except Exception:
        paths = []
    searched = ", ".join(paths) if paths else "none"
    return f"{where}; adapter search paths: {searched}"


def mm_config_error(path: Path, exc: BaseException, core: UniMMCore) -> str:
    """What is wrong with a Micro-Manager .cfg, in which line, in one sentence.

    A device adapter that is not installed is named with where mmapp looked
    for it (MICROMANAGER_PATH and the core's adapter search paths).
    """
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 20:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    first = str(exc).split("\n", 1)[0]
    reason = next(
        (str(e).strip() for e in chain if not str(e).startswith(_WRAPPERS)),
        first,
    )
    at = _AT_LINE.search(first)
    if at is None:
        return f"Micro-Manager config {path} failed to load: {reason}"
    number = int(at[1])
    line = _config_line(path, number)
    fields = [f.strip() for f in line.split(",")]
    if reason.startswith("Unknown configuration command"):
        reason = f"unknown command {fields[0]!r}"
    elif (
        fields[0] == "Device"
        and len(fields) >= 4
        and any(isinstance(e, ImportError) for e in chain)
    ):
        label, adapter, device = fields[1:4]
        reason = (
            f"device adapter {adapter!r} (for device {label!r}, {device!r}) is not "
            f"installed where mmapp looked ({adapter_search_description(core)})"
        )
        if any(isinstance(e, PythonDeviceRefused) for e in chain):
            reason += (
                "; Python devices are loaded from a .cfg only from installed "
                "modules the rig file lists in python_device_modules"
            )
    where = f"Micro-Manager config {path} failed to load at line {number}"
    return f"{where} ({line!r}): {reason}"


def load_mm_config(path: Path, name: str, spec: RigSpec | None = None) -> Rig:
    """Load a Micro-Manager .cfg (with its rig file, if any); RigError names
    the line and the reason, with nothing left loaded."""
    if not path.is_file():
        raise RigError(f"Micro-Manager config not found: {path}")
    with quiet_adapter_search():  # mmapp says what is missing (mm_config_error)
        core = RigCore()
    if spec is not None:
        core.allowed_python_modules = frozenset(spec.python_device_modules)
    try:
        with quiet_adapter_search():
            core.loadSystemConfiguration(str(path))
    except Exception as exc:
        message = mm_config_error(path, exc, core)
        with contextlib.suppress(Exception):  # what loaded before the bad line
            core.unloadAllDevices()
        raise RigError(message) from None
    rig = Rig(name=name, core=core, spec=spec, source=str(path))
    try:
        fit_rig(rig, spec)
    except Exception as exc:
        with contextlib.suppress(Exception):
            core.unloadAllDevices()
        raise RigError(f"{path}: {exc}") from None
    if spec is not None and spec.daq is not None:
        if spec.daq.server == SIMULATED:
            with contextlib.suppress(Exception):  # its hardware is free again
                core.unloadAllDevices()
            raise RigError(
                "daq.server: a Micro-Manager rig needs a real card: give the NI gRPC "
                "device server as host:port, or null for the local NI-DAQmx driver"
            )
        rig.daq = DaqConnection(spec.daq.device, spec.daq.server)
    return rig


def fit_rig(rig: Rig, spec: RigSpec | None) -> None:
    """What a real rig's file adds to its .cfg: the circular buffer's size, the
    camera's trigger mapping and readiness, and the steps of its safe state."""
    core = rig.core
    spec = spec if spec is not None else RigSpec()
    set_buffer_mb(core, spec.circular_buffer_mb)
    rig.trigger = trigger_mapping(core, spec.camera_trigger)
    rig.camera_ready = lambda timeout: wait_sequence_running(
        core, timeout, rig.trigger.arm_delay_ms / 1000.0
    )
    safety = spec.safety
    for setting in safety.properties:
        rig.safe_steps.append(
            (
                f"{setting.device}.{setting.property} not set to {setting.value!r}",
                lambda s=setting: core.setProperty(s.device, s.property, s.value),
            )
        )
    for shutter in safety.shutters:
        rig.safe_steps.append(
            (
                f"shutter {shutter!r} not closed",
                lambda s=shutter: core.setShutterOpen(s, False),
            )
        )
    if safety.park_daq and spec.daq is not None:
        daq = spec.daq
        rig.safe_steps.append(("DAQ lines not parked", lambda: _park_daq(rig, daq)))


def _park_daq(rig: Rig, daq: DaqSpec) -> None:
    """The rig's laser lines low and its galvo at park_v (no task running)."""
    if rig.daq is None:
        return
    galvo = {daq.galvo.line: (daq.galvo.park_v, -10.0, 10.0)}
    park_outputs(rig.daq, list(daq.laser_lines.values()), galvo)


def wait_sequence_running(core: UniMMCore, timeout: float, arm_delay_s: float) -> bool:
    """A started camera is armed: its sequence runs, then the rig file's arm
    delay has passed (a camera that arms after its start call returns)."""
    pause = threading.Event()
    deadline = time.perf_counter() + timeout
    while not core.isSequenceRunning():
        if time.perf_counter() > deadline:
            return False
        pause.wait(0.001)
    if arm_delay_s > 0:
        pause.wait(arm_delay_s)
    return True
