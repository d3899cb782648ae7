"""A counter camera clock on the AO sample clock: exact frames, clean Stop."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH
from test_daq_acquisition import (
    LINES,
    assert_frames_match,
    assert_rig_safe,
    frames_in_order,
    lasers_on,
    opm_program,
    run,
)

from mmapp.daq.program import CameraTrigger, Timing, WaveformProgram
from mmapp.daq.render import WaveformError, render
from mmapp.daq.tasks import COUNTER_LEAD_TICKS, DaqTasks
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.plans import build_events
from mmapp.rig import Rig, RigSpec, build_simulated_rig


@pytest.fixture
def counter_rig() -> Iterator[Rig]:
    """The simulated rig with the camera's trigger input wired to Dev1/ctr0."""
    spec = RigSpec(
        camera={"width": WIDTH, "height": HEIGHT, "exposure_ms": 1.0},
        lasers={"wavelengths_nm": [488, 561]},
        daq={
            "camera_trigger_line": "Dev1/ctr0",
            "laser_lines": {"488": LINES["488nm"], "561": LINES["561nm"]},
        },
    )
    rig = build_simulated_rig(spec)
    yield rig
    rig.close()


def counter_program(
    channels: tuple[str, ...] = ("488nm",), positions: int = 8
) -> WaveformProgram:
    """Evenly spaced frames (no flyback), the camera clocked by ctr0."""
    return opm_program(channels=channels, positions=positions).model_copy(
        update={
            "timing": Timing(
                sample_rate_hz=50_000,
                exposure_s=0.002,
                readout_s=0.001,
                positions_per_volume=positions,
            ),
            "camera_trigger": CameraTrigger(physical_line="Dev1/ctr0", pulse_s=1e-4),
        }
    )


def test_the_counter_counts_ao_sample_clock_ticks(counter_rig: Rig) -> None:
    card, connection = counter_rig.daq_device, counter_rig.daq
    assert card is not None and connection is not None
    program = counter_program()
    rendered = render(program)
    with DaqTasks(connection, program) as tasks:
        tasks.prepare(cycles=2)
        co = tasks._tasks["co"].co_channels[0]  # read back through nidaqmx
        assert co.co_ctr_timebase_src == "/Dev1/ao/SampleClock"
        assert (co.co_pulse_ticks_initial_delay, co.co_pulse_high_ticks) == (2, 5)
        assert co.co_pulse_low_ticks == 150 - 5  # 3 ms frames at 50 kHz
        ao = card.tasks[tasks._tasks["ao"].name]
        assert ao.samps_per_chan == 2 * rendered.samples_per_cycle + 2
        np.testing.assert_array_equal(  # played COUNTER_LEAD_TICKS samples late
            ao.buffers[-1].data[0],
            np.roll(rendered.analog["Dev1/ao0"], COUNTER_LEAD_TICKS),
        )
        sim_co = card.tasks[tasks._tasks["co"].name]
        assert (sim_co.finite, sim_co.samps_per_chan) == (True, 16)
        assert sim_co.trigger_source is None, "armed by its source clock"
        assert tasks.frames_triggered(2) == 0 and tasks.frames_triggered(3) == 1
    assert "CreateCOPulseChanTicks" in card.calls
    assert "CreateCOPulseChanFreq" not in card.calls


def test_a_completed_counter_clocked_run_is_exact_pixel_by_pixel(
    counter_rig: Rig, tmp: Path
) -> None:
    lasers_on(counter_rig)
    program = counter_program(channels=("488nm", "561nm"), positions=4)
    rendered = render(program)
    n = 3 * len(rendered.frames)
    result = run(RunController(counter_rig), tmp, program, frames=n)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    frames = frames_in_order(result.dataset)
    assert len(frames) == n
    assert_frames_match(frames, rendered)
    assert counter_rig.camera is not None
    assert counter_rig.camera.missed_triggers == 0
    assert_rig_safe(counter_rig, program)


def test_stop_during_a_counter_clocked_loop_ends_stopped_every_time(
    counter_rig: Rig, tmp: Path
) -> None:
    lasers_on(counter_rig)
    program = counter_program()
    rendered = render(program)
    controller = RunController(counter_rig)
    latencies = []
    for i in range(8):
        out = tmp / f"run{i}"
        controller.start(
            RunRequest(events=build_events(loop=True), out_dir=out, program=program)
        )
        assert controller.wait_camera_armed(10)
        assert controller.wait_frames(12 + 5 * i, timeout=20)  # stops mid-volume
        controller.stop()
        result = controller.wait(20)
        assert result is not None
        assert result.outcome is RunOutcome.STOPPED, f"run {i}: {result.message}"
        frames = frames_in_order(result.dataset)
        assert len(frames) == result.frames_saved >= 12 + 5 * i
        assert_frames_match(frames, rendered)
        assert_rig_safe(counter_rig, program)
        assert result.stop_latency_s is not None
        latencies.append(result.stop_latency_s)
    print(
        f"counter loop stop latency over 8 runs: median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max "
        f"{max(latencies) * 1000:.1f} ms"
    )


def test_a_counter_pulse_must_leave_two_low_ticks(counter_rig: Rig) -> None:
    assert counter_rig.daq is not None
    program = counter_program().model_copy(
        update={
            "timing": Timing(sample_rate_hz=2_000, exposure_s=0.002, readout_s=0.0),
            "camera_trigger": CameraTrigger(physical_line="Dev1/ctr0", pulse_s=1.5e-3),
        }
    )
    with pytest.raises(
        WaveformError, match="3 ticks leaves 1 low ticks in a frame of 4 samples"
    ):
        DaqTasks(counter_rig.daq, program)
    assert counter_rig.daq_device is not None and counter_rig.daq_device.tasks == {}
