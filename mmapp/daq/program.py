"""The waveform program: what the DAQ plays, as a validated model (no Qt, no I/O).

One *cycle* of the program is what the card regenerates in loop mode: with
per-frame interleave, one volume in which every scan position is imaged in each
channel before the galvo steps on; with per-volume interleave, one volume per
channel. Every frame is a camera trigger followed by an exposure (lasers of
that frame's channel on) and a readout; each volume ends with a flyback.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_SAMPLE_RATE_HZ = 2_000_000  # X-series AO: 2 MS/s for up to 4 channels
MIN_SAMPLE_RATE_HZ = 1.0
MAX_BUFFER_SAMPLES = 8_000_000  # per channel and cycle (host buffer we accept)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Calibration(_Model):
    """Physical units to volts: volts = offset_v + volts_per_unit * value."""

    unit: str = "um"
    volts_per_unit: float = Field(1.0, allow_inf_nan=False)
    offset_v: float = Field(0.0, allow_inf_nan=False)

    def to_volts(self, value: float) -> float:
        """Volts for a value in physical units."""
        return self.offset_v + self.volts_per_unit * value


class Sawtooth(_Model):
    """One step per scan position from `start` to `stop`, flyback to `start`."""

    kind: Literal["sawtooth"] = "sawtooth"
    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)


class Triangle(_Model):
    """Steps from `start` to `stop` in even volumes and back in odd ones."""

    kind: Literal["triangle"] = "triangle"
    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)


class Constant(_Model):
    """The same value throughout."""

    kind: Literal["constant"] = "constant"
    value: float = Field(allow_inf_nan=False)


class PerChannel(_Model):
    """A value for each imaging channel (e.g. an ETL focus per wavelength)."""

    kind: Literal["per_channel"] = "per_channel"
    values: dict[str, float]


class Custom(_Model):
    """One value per scan position (physical units)."""

    kind: Literal["custom"] = "custom"
    values: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)


Shape = Annotated[
    Sawtooth | Triangle | Constant | PerChannel | Custom, Field(discriminator="kind")
]


class AnalogChannel(_Model):
    """An AO line (galvo, piezo, ETL...) with calibration and hard limits."""

    name: str = Field(min_length=1)
    physical_channel: str = Field(min_length=1)  # e.g. "Dev1/ao0"
    shape: Shape
    calibration: Calibration = Calibration()
    min_v: float = Field(-10.0, ge=-10.0, le=10.0)
    max_v: float = Field(10.0, ge=-10.0, le=10.0)
    park_v: float = Field(0.0, ge=-10.0, le=10.0)  # where it rests when stopped

    @model_validator(mode="after")
    def _limits(self) -> AnalogChannel:
        if self.min_v >= self.max_v:
            raise ValueError(f"min_v ({self.min_v}) must be below max_v ({self.max_v})")
        if not self.min_v <= self.park_v <= self.max_v:
            raise ValueError(
                f"park_v {self.park_v} V is outside [{self.min_v}, {self.max_v}] V"
            )
        return self


class LaserLine(_Model):
    """A DO line that blanks one laser: on only while its channel exposes."""

    channel: str = Field(min_length=1)  # imaging channel name, e.g. "488nm"
    physical_line: str = Field(min_length=1)  # e.g. "Dev1/port0/line0"


class CameraTrigger(_Model):
    """The DO (or counter) line that starts each camera frame."""

    physical_line: str = Field(min_length=1)
    pulse_s: float = Field(10e-6, gt=0)


class Timing(_Model):
    """Frame and volume timing."""

    sample_rate_hz: float = Field(100_000.0, allow_inf_nan=False)
    exposure_s: float = Field(0.010, gt=0, allow_inf_nan=False)
    readout_s: float = Field(0.0, ge=0, allow_inf_nan=False)
    positions_per_volume: int = Field(1, ge=1)  # galvo / z steps
    flyback_s: float = Field(0.0, ge=0, allow_inf_nan=False)

    @field_validator("sample_rate_hz")
    @classmethod
    def _rate(cls, value: float) -> float:
        if not MIN_SAMPLE_RATE_HZ <= value <= MAX_SAMPLE_RATE_HZ:
            raise ValueError(
                f"sample_rate_hz {value:g} is outside what the card can do "
                f"({MIN_SAMPLE_RATE_HZ:g} to {MAX_SAMPLE_RATE_HZ:g} Hz)"
            )
        return value


Topology = Literal["daq_master", "camera_master"]


class WaveformProgram(_Model):
    """Everything the DAQ plays for one acquisition.

    `topology` says who clocks whom: with "daq_master" the card's sample clock
    paces everything and the camera trigger line starts each frame; with
    "camera_master" the camera's exposure-out edge triggers one frame of the
    program at a time.
    """

    timing: Timing = Timing()
    topology: Topology = "daq_master"
    channels: list[str] = Field(default_factory=lambda: ["488nm"], min_length=1)
    interleave: Literal["frame", "volume"] = "frame"
    analog: list[AnalogChannel] = Field(default_factory=list)
    lasers: list[LaserLine] = Field(default_factory=list)
    camera_trigger: CameraTrigger | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WaveformProgram:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels has duplicates: {self.channels}")
        names = [a.name for a in self.analog]
        if len(set(names)) != len(names):
            raise ValueError(f"analog channel names repeat: {names}")
        lines = [a.physical_channel for a in self.analog]
        if len(set(lines)) != len(lines):
            raise ValueError(f"two analog channels share a physical channel: {lines}")
        for laser in self.lasers:
            if laser.channel not in self.channels:
                raise ValueError(
                    f"lasers: {laser.channel!r} is not one of the channels "
                    f"{self.channels}"
                )
        for a in self.analog:
            if isinstance(a.shape, PerChannel):
                missing = set(self.channels) - set(a.shape.values)
                if missing:
                    raise ValueError(
                        f"analog {a.name!r}: per_channel values missing for "
                        f"{sorted(missing)}"
                    )
            if isinstance(a.shape, Custom) and len(a.shape.values) != (
                self.timing.positions_per_volume
            ):
                raise ValueError(
                    f"analog {a.name!r}: custom has {len(a.shape.values)} values, "
                    f"positions_per_volume is {self.timing.positions_per_volume}"
                )
        return self

    @property
    def frames_per_cycle(self) -> int:
        """Camera frames in one cycle of the program."""
        return self.timing.positions_per_volume * len(self.channels)
