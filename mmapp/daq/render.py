"""Render a waveform program to the exact samples the card plays (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmapp.daq.program import (
    MAX_BUFFER_SAMPLES,
    AnalogChannel,
    Constant,
    Custom,
    PerChannel,
    Triangle,
    WaveformProgram,
)


class WaveformError(ValueError):
    """A program that cannot be played, naming the field and the reason."""


@dataclass(frozen=True)
class Frame:
    """One camera frame of the cycle."""

    start: int  # sample index of the trigger edge
    channel: str
    position: int  # scan position index within its volume
    volume: int  # volume index within the cycle


@dataclass(frozen=True)
class RenderedProgram:
    """One cycle of samples: what is written to the card's buffers."""

    sample_rate_hz: float
    samples_per_cycle: int
    exposure_samples: int
    frames: tuple[Frame, ...]
    analog: dict[str, np.ndarray]  # physical channel -> volts (float64)
    digital: dict[str, np.ndarray]  # physical line -> bool
    camera_trigger: np.ndarray | None  # bool, high at each frame start

    @property
    def frame_starts(self) -> np.ndarray:
        """Sample index of every trigger edge."""
        return np.array([f.start for f in self.frames], dtype=np.int64)

    def time_s(self) -> np.ndarray:
        """Time of every sample (for plots)."""
        return np.arange(self.samples_per_cycle) / self.sample_rate_hz


def _samples(seconds: float, rate: float) -> int:
    return round(seconds * rate)


def _volumes_per_cycle(program: WaveformProgram) -> int:
    base = 1 if program.interleave == "frame" else len(program.channels)
    triangle = any(isinstance(a.shape, Triangle) for a in program.analog)
    return base * 2 if triangle and base % 2 else base


def _frame_order(program: WaveformProgram, volumes: int) -> list[tuple[int, str, int]]:
    """(volume, channel, position) of every frame, in the order they are taken."""
    positions = range(program.timing.positions_per_volume)
    channels = program.channels
    order: list[tuple[int, str, int]] = []
    for v in range(volumes):
        if program.interleave == "frame":
            order += [(v, c, p) for p in positions for c in channels]
        else:
            c = channels[v % len(channels)]
            order += [(v, c, p) for p in positions]
    return order


def _value(a: AnalogChannel, channel: str, position: int, volume: int, n: int) -> float:
    """Physical value of an analog channel for one frame."""
    shape = a.shape
    if isinstance(shape, Constant):
        return shape.value
    if isinstance(shape, PerChannel):
        return shape.values[channel]
    if isinstance(shape, Custom):
        return shape.values[position]
    start, stop = shape.start, shape.stop
    if isinstance(shape, Triangle) and volume % 2:
        start, stop = stop, start
    if n == 1:
        return start
    return start + (stop - start) * position / (n - 1)


def render(program: WaveformProgram) -> RenderedProgram:
    """The samples of one cycle; raises WaveformError naming what is wrong."""
    t = program.timing
    rate = t.sample_rate_hz
    exposure = _samples(t.exposure_s, rate)
    readout = _samples(t.readout_s, rate)
    flyback = _samples(t.flyback_s, rate)
    if exposure < 1:
        raise WaveformError(
            f"timing.exposure_s: {t.exposure_s:g} s is shorter than one sample at "
            f"{rate:g} Hz"
        )
    frame_len = exposure + readout
    volumes = _volumes_per_cycle(program)
    order = _frame_order(program, volumes)
    frames_per_volume = len(order) // volumes
    volume_len = frames_per_volume * frame_len + flyback
    total = volumes * volume_len
    if total > MAX_BUFFER_SAMPLES:
        raise WaveformError(
            f"timing: one cycle is {total} samples per channel, more than the "
            f"{MAX_BUFFER_SAMPLES} the buffer takes (lower sample_rate_hz or "
            f"shorten the volume)"
        )
    trigger = None
    pulse = 0
    if program.camera_trigger is not None:
        pulse = max(1, _samples(program.camera_trigger.pulse_s, rate))
        if pulse > frame_len:
            raise WaveformError(
                f"camera_trigger.pulse_s: {program.camera_trigger.pulse_s:g} s is "
                f"longer than a frame ({frame_len / rate:g} s)"
            )
        trigger = np.zeros(total, dtype=bool)

    frames: list[Frame] = []
    for i, (v, c, p) in enumerate(order):
        start = v * volume_len + (i % frames_per_volume) * frame_len
        frames.append(Frame(start, c, p, v))
        if trigger is not None:
            trigger[start : start + pulse] = True

    digital: dict[str, np.ndarray] = {}
    for laser in program.lasers:
        line = np.zeros(total, dtype=bool)
        for f in frames:
            if f.channel == laser.channel:
                line[f.start : f.start + exposure] = True
        digital[laser.physical_line] = line

    analog = {
        a.physical_channel: _render_analog(
            a, frames, frames_per_volume, volume_len, frame_len, flyback, total
        )
        for a in program.analog
    }
    return RenderedProgram(
        sample_rate_hz=rate,
        samples_per_cycle=total,
        exposure_samples=exposure,
        frames=tuple(frames),
        analog=analog,
        digital=digital,
        camera_trigger=trigger,
    )


def _render_analog(
    a: AnalogChannel,
    frames: list[Frame],
    frames_per_volume: int,
    volume_len: int,
    frame_len: int,
    flyback: int,
    total: int,
) -> np.ndarray:
    """Held value per frame, a linear return during each flyback, in volts."""
    n_positions = max(f.position for f in frames) + 1
    values = np.array(
        [
            a.calibration.to_volts(
                _value(a, f.channel, f.position, f.volume, n_positions)
            )
            for f in frames
        ]
    )
    out = np.empty(total, dtype=np.float64)
    for f, volts in zip(frames, values, strict=True):
        out[f.start : f.start + frame_len] = volts
    if flyback:
        volumes = total // volume_len
        for v in range(volumes):
            last = values[(v + 1) * frames_per_volume - 1]
            first = values[((v + 1) % volumes) * frames_per_volume]
            begin = (v + 1) * volume_len - flyback
            out[begin : begin + flyback] = np.linspace(last, first, flyback + 2)[1:-1]
    low, high = float(out.min()), float(out.max())
    if low < a.min_v or high > a.max_v:
        bad = low if low < a.min_v else high
        raise WaveformError(
            f"analog {a.name!r} ({a.physical_channel}): {bad:.4g} V is beyond its "
            f"limits [{a.min_v:g}, {a.max_v:g}] V (check shape and calibration)"
        )
    return out
