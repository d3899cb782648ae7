"""Rig files: describe the simulated rig, or point at a Micro-Manager `.cfg`.

`load_rig()` returns a :class:`Rig` whose `core` is a `UniMMCore` either way,
so every acquisition runs the same code on the simulation and on hardware.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymmcore_plus.experimental.unicore import UniMMCore

from mmapp.daq.connection import DaqConnection
from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import render
from mmapp.presets.errors import issues_from
from mmapp.resources import default_rig_file
from mmapp.sim.buffer import prefault
from mmapp.sim.camera import SimCamera
from mmapp.sim.core import RigCore
from mmapp.sim.daq_device import DeviceSpec as DaqDeviceSpec
from mmapp.sim.daq_device import SimDaqDevice
from mmapp.sim.daq_server import SimDaqServer
from mmapp.sim.devices import SimLasers, SimShutter, SimXYStage, SimZStage
from mmapp.sim.state import SimRigState


class RigError(ValueError):
    """A rig file or Micro-Manager config that cannot be loaded."""


class RigSafetyError(RuntimeError):
    """A step of the rig's safe state failed (the message names each)."""


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSpec(_Model):
    """The simulated camera."""

    label: str = "Camera"
    width: int = Field(2048, ge=1, le=16384)
    height: int = Field(2048, ge=1, le=16384)
    bit_depth: Literal[8, 10, 12, 14, 16] = 16
    exposure_ms: float = Field(10.0, ge=0)
    readout_ms: float = Field(0.0, ge=0)
    trigger_mode: Literal["Internal", "External"] = "Internal"


class DeviceSpec(_Model):
    """A device that only needs a label."""

    label: str


class LasersSpec(_Model):
    """The laser bank."""

    label: str = "Lasers"
    wavelengths_nm: list[int] = Field(default_factory=lambda: [488], min_length=1)


class GalvoSpec(_Model):
    """The AO channel that scans the light sheet (simulation: um per volt)."""

    line: str = "Dev1/ao0"
    um_per_volt: float = Field(10.0, gt=0)


SIMULATED = "simulated"


class DaqSpec(_Model):
    """The NI-DAQ card and what is wired to it.

    `server` is "simulated" (a simulated card served in the app), "host:port"
    of an NI gRPC device server, or null for the local NI-DAQmx driver.
    """

    device: str = Field("Dev1", min_length=1)
    server: str | None = SIMULATED
    camera_trigger_line: str = "Dev1/port0/line7"  # DO line into the camera
    camera_exposure_out: str = "/Dev1/PFI0"  # camera exposure-out into the card
    galvo: GalvoSpec = GalvoSpec()
    laser_lines: dict[int, str] = Field(default_factory=dict)  # nm -> blanking line


class RigSpec(_Model):
    """Contents of a rig file (JSON)."""

    schema_version: Literal[1] = 1
    name: str = "Simulated rig"
    mm_config: str | None = None  # a Micro-Manager .cfg loads a real rig instead
    camera: CameraSpec = CameraSpec()
    z_stage: DeviceSpec = DeviceSpec(label="Z")
    xy_stage: DeviceSpec = DeviceSpec(label="XY")
    shutter: DeviceSpec = DeviceSpec(label="LaserShutter")
    lasers: LasersSpec = LasersSpec()
    channel_group: str = "Channel"
    circular_buffer_mb: int = Field(1024, ge=16, le=65536)
    daq: DaqSpec | None = None
    program: WaveformProgram | None = None  # the rig's default waveform program


@dataclass
class Rig:
    """A loaded rig: the core plus what the engine needs to keep it safe."""

    name: str
    core: UniMMCore
    spec: RigSpec | None = None
    state: SimRigState | None = None
    camera: SimCamera | None = None
    lasers: SimLasers | None = None
    source: str = ""
    abort_hooks: list[Callable[[], None]] = field(default_factory=list)
    daq: DaqConnection | None = None
    daq_device: SimDaqDevice | None = None  # the simulated card, if simulated
    daq_server: SimDaqServer | None = None

    @property
    def exposure_out(self) -> str | None:
        """The card terminal the camera's exposure-out is wired to."""
        return (
            self.spec.daq.camera_exposure_out if self.spec and self.spec.daq else None
        )

    def enable_lasers(self, channels: list[str]) -> None:
        """Turn on the laser lines of these imaging channels ("488nm" -> 488).

        With a DAQ program the blanking lines decide when each laser emits, so
        every line the program uses is enabled for the run (make_safe turns them
        off again). A Micro-Manager rig sets its lasers through its own config.
        """
        if self.lasers is None or self.spec is None:
            return
        label = self.spec.lasers.label
        for nm in self.spec.lasers.wavelengths_nm:
            if any(str(nm) in channel for channel in channels):
                self.core.setProperty(label, f"Laser {nm}", "On")

    def prepare_for_program(self, program: WaveformProgram) -> None:
        """Before a DAQ run: lasers on; the simulated camera renders ahead.

        The simulation renders each oblique slice once and then reuses it; doing
        it here keeps the first volume as fast as the rest.
        """
        self.enable_lasers(list(program.channels))
        if self.camera is not None and self.daq_device is not None:
            self.camera.prime(lines_during_exposures(program, self.camera))

    def wait_camera_ready(self, timeout: float) -> bool:
        """Block until a started camera is armed (simulated: its thread runs)."""
        if self.camera is None:
            return True  # a real camera is armed when its start call returns
        return self.camera.armed.wait(timeout)

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
        if self.lasers is not None:
            try:
                self.lasers.all_off()
            except Exception as exc:
                failed.append(f"lasers not switched off ({_reason(exc)})")
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
                self.core.setCircularBufferMemoryFootprint(16)
        finally:
            self.core.unloadAllDevices()
            if self.daq is not None:
                self.daq.close()  # its gRPC channel
            if self.daq_server is not None:
                self.daq_server.stop()
                self.daq_server = None


@contextmanager
def _quiet_adapter_search() -> Iterator[None]:
    """The simulated rig needs no Micro-Manager install: do not log its absence."""
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


def read_rig_spec(path: Path) -> RigSpec:
    """Parse and validate a rig file, naming the bad field on error."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RigError(f"rig file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise RigError(f"rig file {path} is not valid JSON: {exc}") from None
    try:
        return RigSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(map(str, issues_from(exc, raw)))
        raise RigError(f"rig file {path}: {problems}") from None


def load_rig(path: str | Path | None = None, **camera_overrides: object) -> Rig:
    """Load a rig file (default: the simulated rig) or a Micro-Manager `.cfg`."""
    path = Path(path) if path is not None else default_rig_file()
    if path.suffix.lower() == ".cfg":
        return _load_mm_config(path, name=path.stem)
    spec = read_rig_spec(path)
    if camera_overrides:
        try:
            camera = CameraSpec.model_validate(
                {**spec.camera.model_dump(), **camera_overrides}
            )
        except ValidationError as exc:
            problems = "; ".join(map(str, issues_from(exc, camera_overrides)))
            raise RigError(f"camera settings: {problems}") from None
        spec = spec.model_copy(update={"camera": camera})
    if spec.mm_config:
        cfg = Path(spec.mm_config)
        if not cfg.is_absolute():
            cfg = path.parent / cfg
        return _load_mm_config(cfg, name=spec.name, spec=spec)
    return build_simulated_rig(spec, source=str(path))


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
    where = f"Micro-Manager config {path} failed to load at line {number}"
    return f"{where} ({line!r}): {reason}"


def _load_mm_config(path: Path, name: str, spec: RigSpec | None = None) -> Rig:
    if not path.is_file():
        raise RigError(f"Micro-Manager config not found: {path}")
    with _quiet_adapter_search():  # mmapp says what is missing (mm_config_error)
        core = RigCore()
    try:
        with _quiet_adapter_search():
            core.loadSystemConfiguration(str(path))
    except Exception as exc:
        message = mm_config_error(path, exc, core)
        with contextlib.suppress(Exception):  # what loaded before the bad line
            core.unloadAllDevices()
        raise RigError(message) from None
    rig = Rig(name=name, core=core, spec=spec, source=str(path))
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


def build_simulated_rig(spec: RigSpec, source: str = "") -> Rig:
    """Load the Python devices of the simulated rig into a fresh core."""
    state = SimRigState()
    c = spec.camera
    camera = SimCamera(
        state,
        width=c.width,
        height=c.height,
        bit_depth=c.bit_depth,
        exposure_ms=c.exposure_ms,
        readout_ms=c.readout_ms,
    )
    camera._trigger_mode = c.trigger_mode
    lasers = SimLasers(state, list(spec.lasers.wavelengths_nm))
    with _quiet_adapter_search():
        core = RigCore()
    devices = [
        (c.label, camera),
        (spec.z_stage.label, SimZStage(state)),
        (spec.xy_stage.label, SimXYStage(state)),
        (spec.shutter.label, SimShutter(state)),
        (spec.lasers.label, lasers),
    ]
    for label, device in devices:
        core.loadPyDevice(label, device)
    core.initializeAllDevices()
    core.setCameraDevice(c.label)
    core.setFocusDevice(spec.z_stage.label)
    core.setXYStageDevice(spec.xy_stage.label)
    core.setShutterDevice(spec.shutter.label)
    set_buffer_mb(core, spec.circular_buffer_mb)
    for nm in spec.lasers.wavelengths_nm:
        for other in spec.lasers.wavelengths_nm:
            core.defineConfig(
                spec.channel_group,
                f"{nm}nm",
                spec.lasers.label,
                f"Laser {other}",
                "On" if other == nm else "Off",
            )
    rig = Rig(
        name=spec.name,
        core=core,
        spec=spec,
        state=state,
        camera=camera,
        lasers=lasers,
        source=source,
    )
    rig.abort_hooks.append(camera.abort)
    if spec.daq is not None:
        _connect_daq(rig, spec.daq, state, camera)
    return rig


def lines_during_exposures(
    program: WaveformProgram, camera: SimCamera
) -> list[dict[str, float]]:
    """What every line plays in the middle of each frame's exposure."""
    r = render(program)
    mid = round(camera.get_exposure() / 2000.0 * r.sample_rate_hz)
    samples = {**r.analog, **{k: v.astype(float) for k, v in r.digital.items()}}
    return [
        {
            line: float(v[min(f.start + mid, r.samples_per_cycle - 1)])
            for line, v in samples.items()
        }
        for f in r.frames
    ]


def _connect_daq(rig: Rig, daq: DaqSpec, state: SimRigState, camera: SimCamera) -> None:
    """Serve the simulated card and wire it to the camera and the lasers."""
    if daq.server != SIMULATED:
        rig.daq = DaqConnection(daq.device, daq.server)
        return
    device = SimDaqDevice(DaqDeviceSpec(name=daq.device))
    try:
        device.connect_edges(
            daq.camera_trigger_line,
            lambda probe, at: camera.trigger.fire(payload=probe, at=at),
        )
        for terminal in (daq.camera_exposure_out,):
            if "/" + terminal.lstrip("/") not in device.spec.terminals():
                raise RigError(f"daq.camera_exposure_out: no terminal {terminal}")
    except RigError:
        raise
    except Exception as exc:
        raise RigError(f"daq.camera_trigger_line: {exc}") from None
    state.add_exposure_listener(lambda _i: device.input_edge(daq.camera_exposure_out))
    state.galvo_line = daq.galvo.line
    state.galvo_um_per_v = daq.galvo.um_per_volt
    state.blanking_lines = dict(daq.laser_lines)
    server = SimDaqServer(device).start()
    rig.daq_device, rig.daq_server = device, server
    rig.daq = DaqConnection(daq.device, server.address)
