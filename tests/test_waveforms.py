"""The waveform program renders to exact, deterministic samples."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from mmapp.daq.program import (
    AnalogChannel,
    Calibration,
    CameraTrigger,
    Constant,
    Custom,
    LaserLine,
    PerChannel,
    Sawtooth,
    Timing,
    Triangle,
    WaveformProgram,
)
from mmapp.daq.render import WaveformError, render

RATE = 10_000.0  # 0.1 ms per sample: easy numbers


def program(**kw) -> WaveformProgram:
    base = dict(
        timing=Timing(
            sample_rate_hz=RATE,
            exposure_s=0.002,
            readout_s=0.001,
            positions_per_volume=4,
            flyback_s=0.0005,
        ),
        channels=["488nm", "561nm"],
        analog=[
            AnalogChannel(
                name="galvo",
                physical_channel="Dev1/ao0",
                shape=Sawtooth(start=-3.0, stop=3.0),
                calibration=Calibration(unit="um", volts_per_unit=0.5, offset_v=0.1),
                min_v=-2.0,
                max_v=2.0,
            )
        ],
        lasers=[
            LaserLine(channel="488nm", physical_line="Dev1/port0/line0"),
            LaserLine(channel="561nm", physical_line="Dev1/port0/line1"),
        ],
        camera_trigger=CameraTrigger(physical_line="Dev1/port0/line7", pulse_s=2e-4),
    )
    base.update(kw)
    return WaveformProgram(**base)


def edges(line: np.ndarray) -> tuple[list[int], list[int]]:
    d = np.diff(line.astype(np.int8), prepend=0, append=0)
    return list(np.flatnonzero(d == 1)), list(np.flatnonzero(d == -1))


def test_frame_interleave_layout_and_counts() -> None:
    r = render(program())
    # 4 positions x 2 channels x (20 + 10) samples + 5 flyback
    assert r.samples_per_cycle == 8 * 30 + 5
    assert [f.start for f in r.frames] == [i * 30 for i in range(8)]
    assert [f.channel for f in r.frames] == ["488nm", "561nm"] * 4
    assert [f.position for f in r.frames] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_camera_trigger_pulses_exact() -> None:
    r = render(program())
    rises, falls = edges(r.camera_trigger)
    assert rises == [i * 30 for i in range(8)]
    assert falls == [i * 30 + 2 for i in range(8)]  # 0.2 ms pulse = 2 samples
    assert r.camera_trigger.sum() == 16


def test_lasers_on_only_during_their_exposures() -> None:
    r = render(program())
    blue = r.digital["Dev1/port0/line0"]
    green = r.digital["Dev1/port0/line1"]
    assert edges(blue) == ([0, 60, 120, 180], [20, 80, 140, 200])
    assert edges(green) == ([30, 90, 150, 210], [50, 110, 170, 230])
    assert not (blue & green).any()
    assert blue.sum() == green.sum() == 4 * 20


def test_galvo_staircase_with_calibration_and_flyback() -> None:
    r = render(program())
    galvo = r.analog["Dev1/ao0"]
    # positions -3, -1, 1, 3 um -> 0.1 + 0.5 * um volts, held for both channels
    expected_steps = [-1.4, -0.4, 0.6, 1.6]
    for i, volts in enumerate(expected_steps):
        seg = galvo[i * 60 : (i + 1) * 60]
        np.testing.assert_array_equal(seg, np.full(60, volts))
    # flyback: 5 samples stepping linearly from the last back to the first level
    np.testing.assert_allclose(galvo[240:], np.linspace(1.6, -1.4, 7)[1:-1])


def test_volume_interleave_and_triangle() -> None:
    p = program(
        interleave="volume",
        analog=[
            AnalogChannel(
                name="piezo",
                physical_channel="Dev1/ao1",
                shape=Triangle(start=0.0, stop=3.0),
            )
        ],
    )
    r = render(p)
    # 2 channels -> 2 volumes per cycle (even, so the triangle closes)
    assert r.samples_per_cycle == 2 * (4 * 30 + 5)
    assert [f.channel for f in r.frames] == ["488nm"] * 4 + ["561nm"] * 4
    piezo = r.analog["Dev1/ao1"]
    starts = r.frame_starts
    assert [piezo[s] for s in starts] == [0, 1, 2, 3, 3, 2, 1, 0]


def test_odd_volumes_double_for_triangle() -> None:
    p = program(
        channels=["488nm"],
        lasers=[],
        analog=[
            AnalogChannel(
                name="piezo",
                physical_channel="Dev1/ao1",
                shape=Triangle(start=0.0, stop=1.0),
            )
        ],
    )
    r = render(p)
    assert len(r.frames) == 8 and {f.volume for f in r.frames} == {0, 1}


def test_constant_per_channel_and_custom() -> None:
    p = program(
        analog=[
            AnalogChannel(
                name="etl",
                physical_channel="Dev1/ao2",
                shape=PerChannel(values={"488nm": 1.0, "561nm": -1.0}),
            ),
            AnalogChannel(
                name="bias", physical_channel="Dev1/ao3", shape=Constant(value=0.25)
            ),
            AnalogChannel(
                name="z",
                physical_channel="Dev1/ao1",
                shape=Custom(values=[0.0, 0.5, 0.25, 1.0]),
            ),
        ]
    )
    r = render(p)
    starts = r.frame_starts
    assert [r.analog["Dev1/ao2"][s] for s in starts] == [1.0, -1.0] * 4
    assert set(np.unique(r.analog["Dev1/ao3"])) == {0.25}
    assert [r.analog["Dev1/ao1"][s] for s in starts[::2]] == [0.0, 0.5, 0.25, 1.0]


def test_rendering_is_deterministic() -> None:
    a, b = render(program()), render(program())
    for k in a.analog:
        np.testing.assert_array_equal(a.analog[k], b.analog[k])
    for k in a.digital:
        np.testing.assert_array_equal(a.digital[k], b.digital[k])


def test_voltage_beyond_limits_names_channel_and_limit() -> None:
    p = program(
        analog=[
            AnalogChannel(
                name="galvo",
                physical_channel="Dev1/ao0",
                shape=Sawtooth(start=-10.0, stop=10.0),
                calibration=Calibration(volts_per_unit=0.5),
                min_v=-2.0,
                max_v=2.0,
            )
        ]
    )
    with pytest.raises(
        WaveformError,
        match=r"analog 'galvo' \(Dev1/ao0\): -5 V is "
        r"beyond its limits \[-2, 2\] V",
    ):
        render(p)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate_hz": 5e6}, "outside what the card can do"),
        ({"exposure_s": 0.0}, "greater than 0"),
    ],
)
def test_timing_validation(kwargs, message) -> None:
    with pytest.raises(ValidationError, match=message):
        Timing(**kwargs)


def test_program_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="'405nm' is not one of the channels"):
        program(lasers=[LaserLine(channel="405nm", physical_line="Dev1/port0/line2")])
    with pytest.raises(ValidationError, match="custom has 2 values"):
        program(
            analog=[
                AnalogChannel(
                    name="z",
                    physical_channel="Dev1/ao1",
                    shape=Custom(values=[0.0, 1.0]),
                )
            ]
        )
    with pytest.raises(ValidationError, match=r"values missing for \['561nm'\]"):
        program(
            analog=[
                AnalogChannel(
                    name="etl",
                    physical_channel="Dev1/ao1",
                    shape=PerChannel(values={"488nm": 1.0}),
                )
            ]
        )
    with pytest.raises(ValidationError, match="share a physical channel"):
        program(
            analog=[
                AnalogChannel(
                    name="a", physical_channel="Dev1/ao1", shape=Constant(value=0)
                ),
                AnalogChannel(
                    name="b", physical_channel="Dev1/ao1", shape=Constant(value=0)
                ),
            ]
        )
    with pytest.raises(ValidationError, match=r"park_v 5\.0 V is outside"):
        AnalogChannel(
            name="g",
            physical_channel="Dev1/ao0",
            shape=Constant(value=0),
            min_v=-1,
            max_v=1,
            park_v=5,
        )


def test_too_short_exposure_pulse_and_buffer() -> None:
    with pytest.raises(WaveformError, match="shorter than one sample"):
        render(program(timing=Timing(sample_rate_hz=RATE, exposure_s=1e-5)))
    with pytest.raises(WaveformError, match="longer than a frame"):
        render(program(camera_trigger=CameraTrigger(physical_line="x", pulse_s=1.0)))
    huge = Timing(sample_rate_hz=2e6, exposure_s=1.0, positions_per_volume=10)
    with pytest.raises(WaveformError, match="more than the 8000000 the buffer takes"):
        render(program(timing=huge))
