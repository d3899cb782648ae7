"""Samples the card read, as the waveforms DAQmx's waveform reads return
(timing of the first sample, channel name, units; per the attribute mode)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
from ni.protobuf.types.waveform_conversion import (
    digital_waveform_to_protobuf,
    float64_analog_waveform_to_protobuf,
)
from nitypes.waveform import AnalogWaveform, DigitalWaveform, Timing

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask

TIMING, EXTENDED_PROPERTIES = 1, 2  # WaveformAttributeMode flags


def _timing(task: SimTask, t0: float | None, mode: int) -> Timing | None:
    if not mode & TIMING or t0 is None:
        return None
    stamp = dt.datetime.fromtimestamp(t0, tz=dt.UTC)
    if task.rate is None or task.on_demand:
        return Timing.create_with_no_interval(stamp)
    return Timing.create_with_regular_interval(
        dt.timedelta(seconds=1 / task.rate), stamp
    )


def _props(ch: Channel, mode: int, units: str | None) -> dict[str, Any]:
    if not mode & EXTENDED_PROPERTIES:
        return {}
    props: dict[str, Any] = {"NI_ChannelName": ch.name}
    if units is not None:
        props["NI_UnitDescription"] = units
    return props


def analog(task: SimTask, data: np.ndarray, t0: float | None, mode: int) -> list[Any]:
    """One protobuf analog waveform per channel (rows of `data`, volts)."""
    out = []
    for ch, row in zip(task.channels, data, strict=True):
        wfm = AnalogWaveform.from_array_1d(
            np.asarray(row, dtype=np.float64),
            extended_properties=_props(ch, mode, "Volts"),
            timing=_timing(task, t0, mode),
        )
        out.append(float64_analog_waveform_to_protobuf(wfm))
    return out


def digital(task: SimTask, lines: np.ndarray, t0: float | None, mode: int) -> list[Any]:
    """One protobuf digital waveform per channel (`lines`: a row per line);
    column k holds the channel's k-th line, as DAQmx orders them."""
    out, row = [], 0
    for ch in task.channels:
        k = len(ch.lines)
        data = np.ascontiguousarray(lines[row : row + k].T.astype(np.uint8))
        row += k
        props = _props(ch, mode, None)
        if props:
            props["NI_LineNames"] = ", ".join(ch.lines)
        wfm = DigitalWaveform.from_lines(
            data, extended_properties=props, timing=_timing(task, t0, mode)
        )
        out.append(digital_waveform_to_protobuf(wfm))
    return out
