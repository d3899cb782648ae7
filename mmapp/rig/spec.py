"""Rig files (JSON): the simulated rig, or a Micro-Manager `.cfg` with what is
wired to it (DAQ card, lasers), validated with every bad field named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)

from mmapp.daq.program import WaveformProgram
from mmapp.presets.errors import issues_from
from mmapp.rig.errors import RigError
from mmapp.rig.triggers import CameraTriggerSpec

MAX_RIG_FILE_BYTES = 10 * 1024 * 1024  # a rig file is a page of JSON
MAX_EXPOSURE_MS = 3_600_000.0  # an hour


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CameraSpec(_Model):
    """The simulated camera."""

    label: str = "Camera"
    width: StrictInt = Field(2048, ge=1, le=16384)
    height: StrictInt = Field(2048, ge=1, le=16384)
    bit_depth: Literal[8, 10, 12, 14, 16] = 16
    exposure_ms: float = Field(10.0, ge=0, le=MAX_EXPOSURE_MS)
    readout_ms: float = Field(0.0, ge=0, le=MAX_EXPOSURE_MS)
    trigger_mode: Literal["Internal", "External"] = "Internal"


class DeviceSpec(_Model):
    """A device that only needs a label."""

    label: str


class LasersSpec(_Model):
    """The laser bank."""

    label: str = "Lasers"
    wavelengths_nm: list[Annotated[StrictInt, Field(ge=200, le=2000)]] = Field(
        default_factory=lambda: [488], min_length=1, max_length=64
    )

    @model_validator(mode="after")
    def _distinct(self) -> LasersSpec:
        if len(set(self.wavelengths_nm)) != len(self.wavelengths_nm):
            raise ValueError(f"wavelengths_nm repeat: {self.wavelengths_nm}")
        return self


class GalvoSpec(_Model):
    """The AO channel that scans the light sheet (simulation: um per volt)."""

    line: str = "Dev1/ao0"
    um_per_volt: float = Field(10.0, gt=0)
    park_v: float = Field(0.0, ge=-10, le=10)  # where the safe state leaves it


class OpmSpec(_Model):
    """The oblique plane microscope's optics: what deskew needs besides the scan.

    `pixel_um` is the camera pixel size in the sample; `sheet_angle_deg` the
    light sheet's tilt from the coverslip (the scan step comes from the
    waveform program's galvo channel).
    """

    pixel_um: float = Field(gt=0, allow_inf_nan=False)
    sheet_angle_deg: float = Field(gt=0, lt=90, allow_inf_nan=False)


class PropertySetting(_Model):
    """One device property and the value that makes it safe."""

    device: str = Field(min_length=1)
    property: str = Field(min_length=1)
    value: str


class SafetySpec(_Model):
    """What makes this rig safe, besides the core's shutter (closed always).

    Runs on Stop, error and exit, and from Rig > Make safe, in this order:
    `properties` (e.g. each laser's enable Off, its power 0), then every
    shutter in `shutters` closed, then (`park_daq`) the DAQ's laser lines low
    and the galvo at its park_v. Every step is tried; any that fails is named.
    """

    properties: list[PropertySetting] = Field(default_factory=list)
    shutters: list[str] = Field(default_factory=list)
    park_daq: bool = False


SIMULATED = "simulated"
MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


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
    # the camera's trigger property and values (default: by its device adapter)
    camera_trigger: CameraTriggerSpec | None = None
    safety: SafetySpec = SafetySpec()
    opm: OpmSpec | None = None  # the OPM optics (deskew); none: no deskew
    # installed Python modules whose devices a .cfg may load (UniMMCore imports
    # `Device,<label>,<module>,<class>` lines as Python); none by default
    python_device_modules: list[Annotated[str, Field(pattern=MODULE_NAME)]] = Field(
        default_factory=list, max_length=64
    )

    @model_validator(mode="after")
    def _labels_distinct(self) -> RigSpec:
        labels = [
            self.camera.label,
            self.z_stage.label,
            self.xy_stage.label,
            self.shutter.label,
            self.lasers.label,
        ]
        seen: set[str] = set()
        for label in labels:
            if label in seen:
                raise ValueError(f"two devices share the label {label!r}")
            seen.add(label)
        return self


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a rig can use")


def read_rig_spec(path: Path) -> RigSpec:
    """Parse and validate a rig file, naming the bad field on error."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RIG_FILE_BYTES + 1)
    except FileNotFoundError:
        raise RigError(f"rig file not found: {path}") from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise RigError(f"rig file {path} cannot be read: {reason}") from None
    if len(data) > MAX_RIG_FILE_BYTES:
        raise RigError(
            f"rig file {path} is larger than {MAX_RIG_FILE_BYTES // (1024 * 1024)} MB; "
            "a rig file is a short JSON document"
        )
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise RigError(
            f"rig file {path} is not UTF-8 text (byte {exc.start}): is it a rig file?"
        ) from None
    except json.JSONDecodeError as exc:
        raise RigError(f"rig file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RigError(f"rig file {path} is nested too deeply for a rig file") from None
    except ValueError as exc:
        raise RigError(f"rig file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise RigError(
            f"rig file {path} must hold a JSON object, not {type(raw).__name__}"
        )
    try:
        return RigSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(map(str, issues_from(exc, raw)))
        raise RigError(f"rig file {path}: {problems}") from None
