"""Waveform reads and writes: samples the card read as the waveforms DAQmx
returns (timing of the first sample, channel name, units; per the attribute
mode), and the waveforms a client writes as rows of samples."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
from ni.protobuf.types.waveform_conversion import (
    digital_waveform_from_protobuf,
    digital_waveform_to_protobuf,
    float64_analog_waveform_from_protobuf,
    float64_analog_waveform_to_protobuf,
)
from nitypes.waveform import AnalogWaveform, DigitalWaveform, Timing

from mmapp.sim.daq.errors import (
    INVALID_NUM_SAMPS_TO_WRITE,
    NUM_LINES_MISMATCH_IN_READ_OR_WRITE,
    WRITE_BUFFER_TOO_SMALL,
    DaqmxError,
)

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


def _columns(ch: Channel) -> list[str]:
    return ch.columns if len(ch.columns) == len(ch.lines) else list(ch.lines)


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
        k, cols = len(ch.lines), _columns(ch)
        order = [ch.lines.index(c) for c in cols]
        data = np.ascontiguousarray(lines[row : row + k][order].T.astype(np.uint8))
        row += k
        props = _props(ch, mode, None)
        if props:
            props["NI_LineNames"] = ", ".join(cols)
        wfm = DigitalWaveform.from_lines(
            data, extended_properties=props, timing=_timing(task, t0, mode)
        )
        out.append(digital_waveform_to_protobuf(wfm))
    return out


def _check_counts(task: SimTask, counts: list[int]) -> int:
    if len(counts) != len(task.channels):
        raise DaqmxError(
            WRITE_BUFFER_TOO_SMALL,
            f"Number of Channels in Data: {len(counts)}\n"
            f"Number of Channels in Task: {len(task.channels)}\nTask Name: {task.name}",
        )
    if len(set(counts)) != 1 or counts[0] < 1:
        raise DaqmxError(
            INVALID_NUM_SAMPS_TO_WRITE,
            f"Samples per waveform: {counts}\nTask Name: {task.name}",
        )
    return counts[0]


def analog_rows(task: SimTask, protos: Any) -> np.ndarray:
    """Channels x samples (volts) from the analog waveforms a client wrote."""
    wfms = [float64_analog_waveform_from_protobuf(p) for p in protos]
    _check_counts(task, [w.sample_count for w in wfms])
    return np.array([w.scaled_data for w in wfms], dtype=np.float64)


def digital_rows(task: SimTask, protos: Any) -> np.ndarray:
    """A row per line (0/1) from the digital waveforms a client wrote; column
    k of a waveform drives the channel's k-th line."""
    wfms = [digital_waveform_from_protobuf(p) for p in protos]
    _check_counts(task, [w.sample_count for w in wfms])
    rows = []
    for ch, w in zip(task.channels, wfms, strict=True):
        data = np.asarray(w.data)
        if data.shape[1] != len(ch.lines):
            raise DaqmxError(
                NUM_LINES_MISMATCH_IN_READ_OR_WRITE,
                f"Waveform signals: {data.shape[1]}\nChannel lines: {len(ch.lines)}"
                f"\nChannel Name: {ch.name}",
            )
        cols = _columns(ch)
        rows += [data[:, cols.index(ln)] > 0 for ln in ch.lines]
    return np.array(rows, dtype=np.float64)
