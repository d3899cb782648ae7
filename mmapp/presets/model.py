"""The experiment preset: one versioned, validated, frozen model.

A preset is data only: nothing in it is ever executed. Every model forbids
unknown fields, including inside the `useq.MDASequence` (which by itself
ignores them): a misspelt key is an error, never silently dropped.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from useq import Channel, MDASequence

from mmapp.daq.program import WaveformProgram
from mmapp.presets.errors import NESTED_ERRORS, UNKNOWN_FIELD, error_reasons
from mmapp.presets.naming import check_template
from mmapp.processing.spec import ProcessingChain

SCHEMA_VERSION = 3
PRESET_SUFFIX = ".mmpreset"
MAX_MDA_EVENTS = 10**8


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NonEmpty = Annotated[str, Field(min_length=1, max_length=1000)]


# --- the rig ------------------------------------------------------------------
class CameraSettings(_Model):
    """Simulated camera settings; null keeps the rig file's value."""

    width: StrictInt | None = Field(None, ge=1, le=16384)  # not `true`
    height: StrictInt | None = Field(None, ge=1, le=16384)
    bit_depth: Literal[8, 10, 12, 14, 16] | None = None
    exposure_ms: float | None = Field(None, ge=0, le=3_600_000, allow_inf_nan=False)
    trigger_mode: Literal["Internal", "External"] | None = None

    def overrides(self) -> dict[str, Any]:
        """The settings that are set, as `load_rig(**camera_overrides)` takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SimulatedRig(_Model):
    """The simulated rig: the bundled one (file null) or a rig `.json` file."""

    kind: Literal["simulated"] = "simulated"
    file: NonEmpty | None = None
    camera: CameraSettings = CameraSettings()


class ConfigRig(_Model):
    """A real rig: a Micro-Manager `.cfg` file."""

    kind: Literal["mm_config"] = "mm_config"
    path: NonEmpty

    @field_validator("path")
    @classmethod
    def _cfg(cls, value: str) -> str:
        if not value.lower().endswith(".cfg"):
            raise ValueError(f"{value!r} is not a Micro-Manager .cfg file")
        return value


RigRef = Annotated[SimulatedRig | ConfigRig, Field(discriminator="kind")]


# --- device settings ----------------------------------------------------------
PropertyValue = Annotated[
    StrictStr | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(union_mode="left_to_right"),
]


class PropertySetting(_Model):
    """One device property value."""

    device: NonEmpty
    property: NonEmpty
    value: PropertyValue


class DeviceSettings(_Model):
    """Applied to the core before a run: config-group presets first (in file
    order), then properties (in file order)."""

    config_groups: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    properties: list[PropertySetting] = Field(default_factory=list)


# --- the acquisition ----------------------------------------------------------
FirstFrameTimeout = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]


class StreamAcquisition(_Model):
    """A hardware-sequenced stream: `frames` frames, or until Stop (frames null),
    optionally for at most `duration_s` seconds."""

    mode: Literal["stream"] = "stream"
    frames: int | None = Field(None, ge=1, le=10**10)
    duration_s: float | None = Field(None, gt=0, le=30 * 86400, allow_inf_nan=False)
    exposure_ms: float | None = Field(None, gt=0, le=3_600_000, allow_inf_nan=False)
    first_frame_timeout_s: FirstFrameTimeout = 20.0  # a triggered camera waits

    @model_validator(mode="after")
    def _duration_with_loop(self) -> StreamAcquisition:
        if self.duration_s is not None and self.frames is not None:
            raise ValueError(
                "duration_s limits a loop-until-stop stream: set frames to null "
                "or remove duration_s"
            )
        return self

    @property
    def loop(self) -> bool:
        """Whether this streams until Stop (or the duration)."""
        return self.frames is None


class MDAAcquisition(_Model):
    """A useq multi-dimensional acquisition."""

    mode: Literal["mda"] = "mda"
    sequence: MDASequence
    first_frame_timeout_s: FirstFrameTimeout = 20.0

    @field_validator("sequence", mode="wrap")
    @classmethod
    def _no_unknown_keys(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> MDASequence:
        if bad_channels := _channel_errors(value):
            raise PydanticCustomError(
                NESTED_ERRORS, "invalid channels", {"errors": bad_channels}
            )
        sequence = handler(value)
        unknown = _unknown_keys(value, sequence)
        if unknown:
            raise PydanticCustomError(
                UNKNOWN_FIELD, "unknown field", {"keys": unknown[0]}
            )
        return sequence

    @field_validator("sequence")
    @classmethod
    def _bounded(cls, sequence: MDASequence) -> MDASequence:
        count = _event_count(sequence)
        if count > MAX_MDA_EVENTS:
            raise ValueError(
                f"about {count:.3g} events; at most {MAX_MDA_EVENTS:.0e} are allowed"
            )
        return sequence

    @field_serializer("sequence")
    def _compact(self, sequence: MDASequence) -> dict[str, Any]:
        return sequence.model_dump(mode="json", exclude_defaults=True)


Acquisition = Annotated[StreamAcquisition | MDAAcquisition, Field(discriminator="mode")]


def _channel_errors(raw: Any) -> list[tuple[tuple[Any, ...], str]]:
    """What is wrong with each channel of a sequence, by index.

    useq validates the channel list as a whole, so its own errors name the
    list (`sequence.channels`) but not the channel (`channels[1].config`).
    """
    channels = raw.get("channels") if isinstance(raw, dict) else None
    if not isinstance(channels, list | tuple):
        return []
    found: list[tuple[tuple[Any, ...], str]] = []
    for i, item in enumerate(channels):
        if isinstance(item, str | Channel):
            continue
        if not isinstance(item, dict):
            kind = type(item).__name__
            reason = f"expected a channel (an object or a config name), got {kind}"
            found.append((("channels", i), reason))
            continue
        try:
            Channel.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                for loc, reason in error_reasons(err):
                    found.append((("channels", i, *loc), reason))
    return found


def _event_count(sequence: MDASequence) -> float:
    """How many events the sequence makes (sub-sequences not counted), cheaply."""
    count = float(max(1, len(sequence.channels)))
    count *= max(1, len(sequence.stage_positions))
    plans = (
        (sequence.z_plan, "num_positions"),
        (sequence.time_plan, "num_timepoints"),
        (sequence.grid_plan, "num_positions"),
    )
    for plan, method in plans:
        if plan is None:
            continue
        try:
            count *= float(getattr(plan, method)())
        except ArithmeticError:
            count = math.inf  # too many to count
        except Exception:  # e.g. a grid that needs the field of view: not counted
            continue
    return count


def _unknown_keys(raw: Any, model: Any, path: tuple = ()) -> list[tuple]:
    """Keys (as paths) of `raw` that the validated `model` has no field for."""
    found: list[tuple] = []
    if isinstance(model, BaseModel) and isinstance(raw, dict):
        fields = type(model).model_fields
        for key, sub in raw.items():
            if key not in fields:
                found.append((*path, key))
            else:
                found += _unknown_keys(sub, getattr(model, key), (*path, key))
    elif isinstance(raw, list | tuple) and isinstance(model, list | tuple):
        if len(raw) == len(model):
            for i, (r, m) in enumerate(zip(raw, model, strict=True)):
                found += _unknown_keys(r, m, (*path, i))
    elif isinstance(raw, dict) and isinstance(model, dict):
        for key, sub in raw.items():
            if key in model:
                found += _unknown_keys(sub, model[key], (*path, key))
    return found


# --- storage, display, processing ---------------------------------------------
class Storage(_Model):
    """Where datasets go. `if_exists`: "increment" gives the dataset the next
    free `_N` suffix; "error" refuses to start when a dataset of that name is
    already in the directory. Nothing is ever overwritten."""

    directory: NonEmpty = "~/mmapp-data"
    name_template: Annotated[str, Field(min_length=1, max_length=200)] = "{name}"
    if_exists: Literal["increment", "error"] = "increment"
    queue_mb: int = Field(512, ge=1, le=1_048_576)  # RAM between camera and disk

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        check_template(value)
        return value


Colormap = Literal["gray", "green", "magenta", "cyan", "red", "blue", "yellow"]


class Display(_Model):
    """How the live view shows frames."""

    colormap: Colormap = "gray"
    autoscale: bool = True
    contrast_limits: tuple[Annotated[int, Field(ge=0, le=65535)], ...] | None = Field(
        None, min_length=2, max_length=2
    )
    refresh_hz: float = Field(30.0, gt=0, le=60, allow_inf_nan=False)

    @field_validator("contrast_limits")
    @classmethod
    def _ordered(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and value[0] >= value[1]:
            raise ValueError(f"low ({value[0]}) must be below high ({value[1]})")
        return value


# --- the preset ---------------------------------------------------------------
class Preset(_Model):
    """An experiment: rig, device settings, acquisition, waveform program
    (with its trigger topology), storage, display and the on-the-fly
    processing chain (processors named with their parameters, never code;
    see mmapp.processing.spec).
    """

    schema_version: Literal[3] = SCHEMA_VERSION
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    rig: RigRef = SimulatedRig()
    devices: DeviceSettings = DeviceSettings()
    acquisition: Acquisition
    program: WaveformProgram | None = None
    storage: Storage = Storage()
    display: Display = Display()
    processing: ProcessingChain = ProcessingChain()
