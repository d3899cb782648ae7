"""The DAQ through nidaqmx, coordinated with the camera, checked in pixels."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH, open_dataset
from numpy.typing import DTypeLike
from pymmcore_plus.experimental.unicore import CameraDevice
from useq import MDASequence

from mmapp.cli import main
from mmapp.daq.program import (
    AnalogChannel,
    Calibration,
    CameraTrigger,
    LaserLine,
    Sawtooth,
    Timing,
    Triangle,
    WaveformProgram,
)
from mmapp.daq.render import RenderedProgram, WaveformError, render
from mmapp.daq.tasks import DaqTasks
from mmapp.engine.controller import RunController, RunOutcome, RunRequest, RunResult
from mmapp.engine.daq_link import (
    PROGRAM_CHANGES_FILE,
    DaqProgramError,
    program_change_volumes,
)
from mmapp.engine.plans import build_events
from mmapp.rig import Rig, RigSpec, build_simulated_rig, load_rig
from mmapp.sim.daq_device import DeviceSpec, SimDaqDevice
from mmapp.sim.daq_server import SimDaqServer
from mmapp.sim.frames import is_dark, is_lit, read_stamp, unstamped
from mmapp.sim.sample import oblique_slice

POWERS = {488: 50.0, 561: 80.0}
LINES = {"488nm": "Dev1/port0/line1", "561nm": "Dev1/port0/line2"}
UM_PER_V = 10.0  # the simulated rig's galvo


def opm_program(
    *,
    channels: tuple[str, ...] = ("488nm",),
    positions: int = 8,
    start: float = -10.0,
    stop: float = 10.0,
    topology: str = "daq_master",
) -> WaveformProgram:
    """A small OPM volume: galvo sawtooth, laser blanking, camera triggers."""
    camera_master = topology == "camera_master"
    return WaveformProgram(
        timing=Timing(
            sample_rate_hz=50_000,
            exposure_s=0.002,
            readout_s=0.001,
            positions_per_volume=positions,
            flyback_s=0.0 if camera_master else 0.002,
        ),
        topology=topology,
        channels=list(channels),
        analog=[
            AnalogChannel(
                name="galvo",
                physical_channel="Dev1/ao0",
                shape=Sawtooth(start=start, stop=stop),
                calibration=Calibration(volts_per_unit=1 / UM_PER_V),
                min_v=-3,
                max_v=3,
                park_v=0.5,
            )
        ],
        lasers=[LaserLine(channel=c, physical_line=LINES[c]) for c in channels],
        camera_trigger=None
        if camera_master
        else CameraTrigger(physical_line="Dev1/port0/line7", pulse_s=1e-4),
    )


def lasers_on(rig: Rig) -> None:
    """Both laser lines enabled at different powers; blanking decides the light."""
    for nm, power in POWERS.items():
        rig.core.setProperty("Lasers", f"Laser {nm}", "On")
        rig.core.setProperty("Lasers", f"Laser {nm} Power %", power)


def run(
    controller: RunController, out: Path, program: WaveformProgram, **events: object
) -> RunResult:
    controller.start(
        RunRequest(
            events=build_events(**events),
            out_dir=out,
            program=program,
            first_frame_timeout_s=5,
            frame_timeout_s=2,
        )
    )
    result = controller.wait(60)
    assert result is not None
    return result


def expected_frame(rendered: RenderedProgram, k: int) -> np.ndarray:
    """What frame k of the cycle must show: galvo position and its laser only."""
    frame = rendered.frames[k % len(rendered.frames)]
    volts = rendered.analog["Dev1/ao0"][frame.start + rendered.exposure_samples // 2]
    light = POWERS[int(frame.channel[:3])]
    return oblique_slice((HEIGHT, WIDTH), np.uint16, volts * UM_PER_V, light)


def frames_in_order(path: Path) -> list[np.ndarray]:
    """Every frame of a dataset, in acquisition order (by the camera's stamp)."""
    ds = open_dataset(path)
    try:
        frames = [np.array(ds.read_image(**c)) for c in ds.get_image_coordinates_list()]
    finally:
        ds.close()
    return sorted(frames, key=read_stamp)


def assert_frames_match(frames: list[np.ndarray], rendered: RenderedProgram) -> None:
    for k, img in enumerate(frames):
        assert read_stamp(img) == k
        want = expected_frame(rendered, k)
        assert is_lit(want), f"frame {k}: its laser is on, the reference is dark"
        assert np.array_equal(unstamped(img, want), want), f"frame {k}"


def assert_rig_safe(rig: Rig, program: WaveformProgram) -> None:
    card = rig.daq_device
    assert card is not None
    assert card.tasks == {}, "every task stopped and cleared"
    for a in program.analog:
        assert card.output_value(a.physical_channel) == a.park_v
    for laser in program.lasers:
        assert card.output_value(laser.physical_line) == 0.0
    assert card.output_value("Dev1/port0/line7") == 0.0


def test_tasks_carry_the_rendered_samples_and_start_followers_first(rig: Rig) -> None:
    program = opm_program(channels=("488nm", "561nm"))
    rendered = render(program)
    card = rig.daq_device
    assert rig.daq is not None and card is not None
    with DaqTasks(rig.daq, program) as tasks:
        tasks.prepare(cycles=3)
        ao, do = (card.tasks[t.name] for t in (tasks._tasks["ao"], tasks._tasks["do"]))
        np.testing.assert_array_equal(
            ao.buffers[-1].data[0], rendered.analog["Dev1/ao0"]
        )
        want_do = np.vstack(
            [
                rendered.digital[LINES["488nm"]],
                rendered.digital[LINES["561nm"]],
                rendered.camera_trigger,
            ]
        )
        np.testing.assert_array_equal(do.buffers[-1].data, want_do.astype(float))
        assert (ao.rate, do.rate) == (50_000, 50_000)
        assert ao.clock_source == "" and do.clock_source == "/Dev1/ao/SampleClock"
        assert ao.finite and ao.samps_per_chan == 3 * rendered.samples_per_cycle
        card.calls.clear()
        tasks.start()
        starts = [c for c in card.calls if c == "StartTask"]
        assert len(starts) == 2
        assert do.origin == 0, "the DO follower was armed before the AO master"
        assert do.running and ao.running
    assert_rig_safe(rig, program)


def test_volume_pixels_prove_galvo_position_and_laser_per_frame(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    rig.core.setPosition(2.5)
    rig.core.setExposure(7.0)  # the program plays 2 ms; 7 ms comes back after
    program = opm_program(channels=("488nm", "561nm"), positions=6)
    rendered = render(program)
    n = 2 * len(rendered.frames)  # two volumes, channels interleaved per frame
    result = run(controller, tmp, program, frames=n)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == n
    frames = frames_in_order(result.dataset)
    assert len(frames) == n
    assert_frames_match(frames, rendered)
    # the frames differ: each position and each laser shows something else
    assert len({f[4:].tobytes() for f in frames[: len(rendered.frames)]}) == 12
    ds = open_dataset(result.dataset)
    try:
        assert set(ds.axes) == {"time", "z", "channel"}
        assert sorted(ds.axes["channel"]) == ["488nm", "561nm"]
        assert (
            ds.summary_metadata["mmapp"]["daq_program"]["timing"][
                "positions_per_volume"
            ]
            == 6
        )
    finally:
        ds.close()
    assert_rig_safe(rig, program)
    assert rig.core.getPosition() == pytest.approx(2.5)  # Z where it was
    assert rig.core.getExposure() == pytest.approx(7.0)  # the operator's exposure


def test_a_blanked_laser_gives_dark_frames(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    program = opm_program(channels=("488nm", "561nm"), positions=2)
    only_488 = program.model_copy(update={"lasers": program.lasers[:1]})
    result = run(controller, tmp, only_488, frames=4)  # 561's line stays low
    assert result.outcome is RunOutcome.COMPLETED, result.message
    frames = frames_in_order(result.dataset)
    dark = oblique_slice((HEIGHT, WIDTH), np.uint16, 0.0, 0.0)
    for k in (1, 3):  # the 561 nm frames
        assert np.array_equal(unstamped(frames[k], dark), dark)
        assert is_dark(frames[k])
    for k in (0, 2):
        assert is_lit(frames[k]), f"frame {k}: 488 nm is on"


def test_wrong_start_order_is_detected_not_saved_silently(
    controller: RunController, rig: Rig, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lasers_on(rig)

    def master_first(self: DaqTasks) -> None:
        self._tasks["ao"].start()
        self._tasks["do"].start()
        self._running = True

    monkeypatch.setattr(DaqTasks, "start", master_first)
    program = opm_program(positions=8)
    result = run(controller, tmp, program, loop=True, duration_s=0.3)
    assert result.outcome is RunOutcome.ERROR
    assert "started after its master" in result.message
    assert result.frames_saved > 0  # what was acquired is kept, flagged as bad
    assert_rig_safe(rig, program)


def test_missed_camera_trigger_is_detected(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    card = rig.daq_device
    assert card is not None
    (wire,) = card._edge_listeners["Dev1/port0/line7"]
    calls = {"n": 0}

    def flaky_cable(probe: object, at: float) -> None:
        calls["n"] += 1
        if calls["n"] != 5:  # the fifth edge never reaches the camera
            wire(probe, at)

    card._edge_listeners["Dev1/port0/line7"] = [flaky_cable]
    program = opm_program(positions=8)
    result = run(controller, tmp, program, frames=16)
    assert result.outcome is RunOutcome.ERROR
    assert "the DAQ triggered 16 frames but the camera delivered 15" in result.message
    assert result.frames_saved == 15
    assert_rig_safe(rig, program)


def test_frame_count_must_be_whole_cycles_before_anything_starts(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    program = opm_program(positions=8)
    result = run(controller, tmp, program, frames=12)
    assert result.outcome is RunOutcome.ERROR
    assert "8 frames per cycle; 12 frames is not a whole number of cycles" in (
        result.message
    )
    assert result.frames_acquired == 0
    assert rig.camera is not None and rig.camera.frames_emitted == 0
    assert rig.daq_device is not None and rig.daq_device.tasks == {}


def test_loop_until_stop_regenerates_then_parks(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    program = opm_program(positions=8)
    controller.start(
        RunRequest(events=build_events(loop=True), out_dir=tmp, program=program)
    )
    assert controller.wait_frames(40, timeout=20)  # five volumes: regenerated
    controller.stop()
    result = controller.wait(20)
    assert result is not None
    assert result.outcome is RunOutcome.STOPPED, result.message
    frames = frames_in_order(result.dataset)
    assert len(frames) >= 40
    assert_frames_match(frames, render(program))
    assert_rig_safe(rig, program)


def test_program_change_while_looping_applies_at_a_volume_boundary(
    controller: RunController, rig: Rig, tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    lasers_on(rig)
    before = opm_program(positions=8, start=-10, stop=10)
    after = opm_program(positions=8, start=0, stop=20)
    controller.start(
        RunRequest(events=build_events(loop=True), out_dir=tmp, program=before)
    )
    assert controller.wait_frames(12, timeout=20)
    with pytest.raises(DaqProgramError, match="only take effect when the acquisition"):
        controller.update_program(opm_program(positions=6))  # other frame count
    change = controller.update_program(after)
    assert change is not None and change.program == after
    assert controller.wait_frames(60, timeout=20)
    controller.stop()
    result = controller.wait(20)
    assert result is not None and result.outcome is RunOutcome.STOPPED
    assert result.program_changes == (change,)
    frames = frames_in_order(result.dataset)
    old, new = render(before), render(after)
    shows_new = []
    for k, img in enumerate(frames):
        want_old, want_new = expected_frame(old, k), expected_frame(new, k)
        is_old = np.array_equal(unstamped(img, want_old), want_old)
        is_new = np.array_equal(unstamped(img, want_new), want_new)
        assert is_old != is_new, f"frame {k} matches neither program"
        shows_new.append(is_new)
    switch = shows_new.index(True)
    assert switch % 8 == 0, "the change took effect mid-volume"
    assert switch >= 16 and all(shows_new[switch:]), "applied once, then kept"
    # the dataset records from which frame (volume) the new program played
    if change.exact:
        assert change.from_frame == switch
    else:  # written as a volume ended: that one or the next
        assert switch in (change.from_frame, change.from_frame + 8)
    assert change.from_volume == change.from_frame // 8
    assert result.dataset is not None
    record = json.loads((result.dataset / PROGRAM_CHANGES_FILE).read_text())
    assert record["changes"] == [change.as_json()]
    assert WaveformProgram.model_validate(record["changes"][0]["program"]) == after
    assert program_change_volumes(result.dataset) == [change.from_volume]
    capsys.readouterr()
    assert main(["info", str(result.dataset)]) == 0
    err = capsys.readouterr().err
    assert f"changed during this run (from volume {change.from_volume})" in err
    (result.dataset / PROGRAM_CHANGES_FILE).write_text("{not json")
    assert main(["info", str(result.dataset)]) == 0  # the images are still there
    err = capsys.readouterr().err
    assert f"{PROGRAM_CHANGES_FILE} cannot be read: JSONDecodeError" in err


def _slower(p: WaveformProgram) -> WaveformProgram:
    """Same samples per cycle at half the rate: every time doubled."""
    t = p.timing
    timing = t.model_copy(
        update={
            "sample_rate_hz": t.sample_rate_hz / 2,
            "exposure_s": t.exposure_s * 2,
            "readout_s": t.readout_s * 2,
            "flyback_s": t.flyback_s * 2,
        }
    )
    return p.model_copy(update={"timing": timing})


def _wider_galvo(p: WaveformProgram) -> WaveformProgram:
    galvo = p.analog[0].model_copy(
        update={"max_v": 8.0, "park_v": 7.0, "shape": Sawtooth(start=-10, stop=60)}
    )
    return p.model_copy(update={"analog": [galvo]})


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (_slower, "timing"),
        (
            lambda p: p.model_copy(
                update={
                    "camera_trigger": CameraTrigger(physical_line="Dev1/port0/line6")
                }
            ),
            "camera trigger",
        ),
        (_wider_galvo, "voltage ranges"),
        (  # only the shape changes, yet a triangle plays two volumes per cycle
            lambda p: p.model_copy(
                update={
                    "analog": [
                        p.analog[0].model_copy(
                            update={"shape": Triangle(start=-10.0, stop=10.0)}
                        )
                    ]
                }
            ),
            r"frames per cycle \(from 4 to 8\)",
        ),
        (
            lambda p: p.model_copy(
                update={
                    "timing": p.timing.model_copy(
                        update={"exposure_s": 0.0025, "readout_s": 0.0005}
                    )
                }
            ),
            "timing",
        ),
    ],
)
def test_a_change_the_running_card_cannot_take_changes_nothing(
    controller: RunController, rig: Rig, tmp: Path, change, what: str
) -> None:
    lasers_on(rig)
    before = opm_program(positions=4)
    controller.start(
        RunRequest(events=build_events(loop=True), out_dir=tmp, program=before)
    )
    assert controller.wait_frames(8, timeout=20)
    card = rig.daq_device
    assert card is not None
    (ao,) = [t for t in card.tasks.values() if t.kind == "ao"]
    buffers = list(ao.buffers)
    with pytest.raises(DaqProgramError, match=f"alters the .*{what}.*started again"):
        controller.update_program(change(before))
    assert ao.buffers == buffers, "nothing was written to the card"
    controller.stop()
    result = controller.wait(20)
    assert result is not None and result.outcome is RunOutcome.STOPPED
    assert_rig_safe(rig, before)  # parked where the running program says


def test_camera_as_master_triggers_the_daq_per_frame(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    assert rig.camera is not None
    rig.camera.set_readout_time(2.0)  # frame period 4 ms; the card plays 3 ms
    program = opm_program(positions=8, topology="camera_master")
    result = run(controller, tmp, program, frames=16)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    rendered = render(program)
    frames = frames_in_order(result.dataset)
    for k, img in enumerate(frames):  # each exposure-out edge played one frame
        frame = rendered.frames[k % 8]
        volts = rendered.analog["Dev1/ao0"][frame.start]
        want = oblique_slice((HEIGHT, WIDTH), np.uint16, volts * UM_PER_V, 50.0)
        assert np.array_equal(unstamped(img, want), want), f"frame {k}"
    assert rig.core.getProperty("Camera", "TriggerMode") == "Internal"
    assert_rig_safe(rig, program)


def test_a_program_on_a_rig_without_daq_is_refused(tmp: Path) -> None:
    rig = build_simulated_rig(RigSpec(camera={"width": WIDTH, "height": HEIGHT}))
    try:
        with pytest.raises(DaqProgramError, match="has no DAQ"):
            RunController(rig).start(
                RunRequest(
                    events=build_events(frames=8), out_dir=tmp, program=opm_program()
                )
            )
    finally:
        rig.close()


def test_a_bad_channel_ends_the_run_cleanly_with_the_driver_error(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    program = opm_program(positions=8)
    bad = program.model_copy(
        update={
            "analog": [
                program.analog[0].model_copy(update={"physical_channel": "Dev1/ao9"})
            ]
        }
    )
    result = run(controller, tmp, bad, frames=8)
    assert result.outcome is RunOutcome.ERROR
    assert "Physical channel specified does not exist" in result.message
    assert "Dev1/ao9" in result.message
    assert result.frames_acquired == 0
    assert rig.daq_device is not None and rig.daq_device.tasks == {}


def test_channels_must_be_on_the_rig_device(rig: Rig) -> None:
    program = opm_program()
    other = program.model_copy(
        update={
            "lasers": [LaserLine(channel="488nm", physical_line="Dev2/port0/line1")]
        }
    )
    assert rig.daq is not None
    with pytest.raises(WaveformError) as exc:
        DaqTasks(rig.daq, other)
    assert str(exc.value) == (
        "lasers[0].physical_line: 'Dev2/port0/line1' is not on the rig's DAQ "
        "device 'Dev1'"
    )
    assert rig.daq_device is not None and rig.daq_device.tasks == {}


def test_a_rig_file_can_point_at_a_device_server(tmp: Path) -> None:
    card = SimDaqDevice(DeviceSpec(name="PXI1Slot2"))
    server = SimDaqServer(card).start()
    rig_file = tmp / "rig.json"
    rig_file.write_text(
        json.dumps(
            {
                "name": "remote card",
                "camera": {"width": WIDTH, "height": HEIGHT},
                "daq": {"device": "PXI1Slot2", "server": server.address},
            }
        )
    )
    rig = load_rig(rig_file)
    try:
        assert rig.daq_device is None, "no card simulated inside the app"
        assert rig.daq is not None and rig.daq.server == server.address
        program = opm_program()
        moved = program.model_copy(
            update={
                "analog": [
                    program.analog[0].model_copy(
                        update={"physical_channel": "PXI1Slot2/ao0"}
                    )
                ],
                "lasers": [],
                "camera_trigger": CameraTrigger(physical_line="PXI1Slot2/port0/line7"),
            }
        )
        with DaqTasks(rig.daq, moved) as tasks:
            tasks.prepare(cycles=1)
            tasks.start()
            assert card.output_value("PXI1Slot2/port0/line7") in (0.0, 1.0)
        assert card.tasks == {}
        assert card.output_value("PXI1Slot2/ao0") == 0.5  # parked
    finally:
        rig.close()
        server.stop()


def test_a_counter_can_clock_the_camera(tmp: Path) -> None:
    spec = RigSpec(
        camera={"width": WIDTH, "height": HEIGHT},
        lasers={"wavelengths_nm": [488, 561]},
        daq={
            "camera_trigger_line": "Dev1/ctr0",
            "laser_lines": {"488": LINES["488nm"], "561": LINES["561nm"]},
        },
    )
    rig = build_simulated_rig(spec)
    try:
        lasers_on(rig)
        program = opm_program(positions=8).model_copy(
            update={
                "timing": Timing(
                    sample_rate_hz=50_000,
                    exposure_s=0.002,
                    readout_s=0.001,
                    positions_per_volume=8,
                ),
                "camera_trigger": CameraTrigger(physical_line="Dev1/ctr0"),
            }
        )
        result = run(RunController(rig), tmp, program, frames=16)
        assert result.outcome is RunOutcome.COMPLETED, result.message
        assert_frames_match(frames_in_order(result.dataset), render(program))
        assert rig.daq_device is not None and rig.daq_device.tasks == {}
    finally:
        rig.close()


def test_a_counter_cannot_skip_the_flyback(rig: Rig) -> None:
    program = opm_program(positions=8).model_copy(
        update={"camera_trigger": CameraTrigger(physical_line="Dev1/ctr0")}
    )
    assert rig.daq is not None
    with pytest.raises(WaveformError, match="a counter gives evenly spaced pulses"):
        DaqTasks(rig.daq, program)


def test_park_turns_the_lasers_off_even_when_the_galvo_write_fails(rig: Rig) -> None:
    import nidaqmx
    from nidaqmx.constants import LineGrouping

    from mmapp.daq.tasks import park

    card, connection = rig.daq_device, rig.daq
    assert card is not None and connection is not None
    program = opm_program(channels=("488nm", "561nm"))
    lines = [LINES["488nm"], LINES["561nm"], "Dev1/port0/line7"]
    with nidaqmx.Task(grpc_options=connection.grpc_options()) as do:
        for line in lines:
            do.do_channels.add_do_chan(line, line_grouping=LineGrouping.CHAN_PER_LINE)
        do.write([True, True, True], auto_start=True)
    assert [card.output_value(line) for line in lines] == [1.0, 1.0, 1.0]
    missing_galvo = program.model_copy(
        update={
            "analog": [
                program.analog[0].model_copy(update={"physical_channel": "Dev1/ao9"})
            ]
        }
    )
    with pytest.raises(nidaqmx.DaqError) as exc:
        park(connection, missing_galvo)
    assert exc.value.error_code == -200170 and "Dev1/ao9" in str(exc.value)
    assert [card.output_value(line) for line in lines] == [0.0, 0.0, 0.0]
    assert card.tasks == {}, "the failed park task was cleared too"


class _CameraWithoutTriggerMode(CameraDevice):
    """A sequencing camera that only free-runs: no TriggerMode property."""

    def get_exposure(self) -> float:
        return 1.0

    def set_exposure(self, exposure: float) -> None:
        pass

    def shape(self) -> tuple[int, int]:
        return (HEIGHT, WIDTH)

    def dtype(self) -> DTypeLike:
        return np.uint16

    def start_sequence(self, n: int | None, get_buffer: Any) -> Iterator[Mapping]:
        raise AssertionError("the run must be refused before the camera starts")


@pytest.mark.parametrize(
    ("topology", "needs"),
    [("daq_master", "'External'"), ("camera_master", "'Internal'")],
)
def test_a_camera_without_trigger_mode_is_refused_before_anything_starts(
    controller: RunController, rig: Rig, tmp: Path, topology: str, needs: str
) -> None:
    rig.core.loadPyDevice("PlainCam", _CameraWithoutTriggerMode())
    rig.core.initializeDevice("PlainCam")
    rig.core.setCameraDevice("PlainCam")
    card = rig.daq_device
    assert card is not None
    card.calls.clear()
    result = run(controller, tmp, opm_program(topology=topology), frames=8)
    assert result.outcome is RunOutcome.ERROR
    assert isinstance(result.error, DaqProgramError)
    assert "the camera 'PlainCam' has no 'TriggerMode' property" in result.message
    assert f"cannot be set to {needs}" in result.message
    assert topology in result.message
    assert result.frames_acquired == 0
    assert "CreateTask" not in card.calls, "the card was not even programmed"
    assert card.tasks == {}


def test_an_mda_time_series_with_a_program_carries_the_program_axes(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    program = opm_program(channels=("488nm", "561nm"), positions=4)
    rendered = render(program)  # 8 frames per cycle (volume)
    result = run(controller, tmp, program, timepoints=16)  # interval 0: one sequence
    assert result.outcome is RunOutcome.COMPLETED, result.message
    ds = open_dataset(result.dataset)
    try:
        assert set(ds.axes) == {"time", "z", "channel"}
        assert sorted(ds.axes["time"]) == [0, 1]  # 16 frames = 2 volumes
        assert sorted(ds.axes["z"]) == [0, 1, 2, 3]
        coords = ds.get_image_coordinates_list()
        assert len(coords) == 16
        for c in coords:  # each image is where the program's axes say it is
            k = next(
                i
                for i, f in enumerate(rendered.frames)
                if (f.position, f.channel) == (c["z"], c["channel"])
            )
            img = np.array(ds.read_image(**c))
            assert read_stamp(img) == c["time"] * len(rendered.frames) + k
            want = expected_frame(rendered, k)
            assert np.array_equal(unstamped(img, want), want), c
    finally:
        ds.close()
    assert_rig_safe(rig, program)


@pytest.mark.parametrize(
    ("events", "planned"),
    [
        (build_events(timepoints=2, z_range_um=3, z_step_um=1), "z positions"),
        (
            MDASequence(time_plan={"interval": 0, "loops": 8}, channels=["488nm"]),
            "channels",
        ),
    ],
)
def test_an_mda_planning_z_or_channels_with_a_program_is_refused(
    controller: RunController, rig: Rig, tmp: Path, events: object, planned: str
) -> None:
    card = rig.daq_device
    assert card is not None and rig.camera is not None
    card.calls.clear()
    controller.start(
        RunRequest(events=events, out_dir=tmp, program=opm_program(positions=4))
    )
    result = controller.wait(20)
    assert result is not None and result.outcome is RunOutcome.ERROR
    assert isinstance(result.error, DaqProgramError)
    assert "the DAQ waveform program sets the frames' z" in result.message
    assert f"this acquisition also plans {planned}: remove them" in result.message
    assert result.frames_acquired == 0 and rig.camera.frames_emitted == 0
    assert "CreateTask" not in card.calls, "refused before the card was programmed"


def test_camera_faster_than_the_program_frame_is_an_error(
    controller: RunController, rig: Rig, tmp: Path
) -> None:
    lasers_on(rig)
    program = opm_program(positions=8, topology="camera_master")
    slow = program.model_copy(  # 6 ms of samples per frame; the camera takes 2 ms
        update={"timing": program.timing.model_copy(update={"readout_s": 0.004})}
    )
    result = run(controller, tmp, slow, frames=16)
    assert result.outcome is RunOutcome.ERROR
    assert "the camera took 16 frames but the DAQ played only" in result.message
    assert (
        "ignores an exposure-out edge while it still plays the previous frame (6 ms)"
        in (result.message)
    )
    assert result.frames_saved == 16  # kept, flagged as bad
    assert_rig_safe(rig, slow)
