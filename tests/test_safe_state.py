"""A rig that could not be made safe is never reported as a success.

Each step of the safe state (lasers off, shutter closed, DAQ lines low and
galvos parked, tasks cleared) is made to fail in turn: the run ends with the
outcome UNSAFE naming the step, and the frames already acquired are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import open_dataset
from test_daq_acquisition import lasers_on, opm_program, run

from mmapp.daq import tasks as daq_tasks
from mmapp.engine import daq_link
from mmapp.engine.controller import RunController, RunOutcome, RunRequest, RunResult
from mmapp.engine.errors import UnsafeRigError
from mmapp.engine.events import stream_event
from mmapp.rig import Rig


def _stream(controller: RunController, out: Path, frames: int = 10) -> RunResult:
    controller.start(RunRequest([stream_event(max_frames=frames)], out, "run"))
    result = controller.wait(60)
    assert result is not None
    return result


def _assert_kept(result: RunResult, frames: int) -> None:
    """The data survived: every frame saved, the dataset finished and readable."""
    assert result.frames_saved == frames
    ds = open_dataset(result.dataset)
    try:
        assert len(ds.get_image_coordinates_list()) == frames
    finally:
        ds.close()
    record = json.loads((result.dataset / "run.json").read_text())
    assert record["outcome"] == "unsafe"


def test_lasers_that_do_not_switch_off_make_the_run_unsafe(
    controller, rig: Rig, tmp, monkeypatch
):
    def broken() -> None:
        raise OSError("laser controller not answering")

    monkeypatch.setattr(rig.lasers, "all_off", broken)
    result = _stream(controller, tmp)
    assert result.outcome is RunOutcome.UNSAFE
    assert result.message.startswith("THE RIG WAS NOT MADE SAFE: ")
    assert "lasers not switched off (laser controller not answering)" in result.message
    assert isinstance(result.error, UnsafeRigError)
    assert result.summary().startswith("unsafe: 10 frames acquired, 10 saved")
    _assert_kept(result, 10)
    monkeypatch.undo()  # the fixture's close makes the rig safe for real


def test_a_shutter_that_does_not_close_makes_the_run_unsafe(
    controller, rig: Rig, tmp, monkeypatch
):
    core = rig.core
    real = core.setShutterOpen

    def sticky(*args: object) -> None:
        if args and args[-1] is False:
            raise RuntimeError("shutter stuck open")
        real(*args)

    monkeypatch.setattr(core, "setShutterOpen", sticky)
    result = _stream(controller, tmp)
    assert result.outcome is RunOutcome.UNSAFE
    assert "shutter not closed (shutter stuck open)" in result.message
    _assert_kept(result, 10)
    monkeypatch.undo()


def test_closing_a_rig_unloads_it_even_if_it_cannot_be_made_safe(monkeypatch):
    from mmapp.rig import RigSafetyError, load_rig

    rig = load_rig(width=32, height=32)
    monkeypatch.setattr(rig.lasers, "all_off", lambda: 1 / 0)
    with pytest.raises(RigSafetyError, match="lasers not switched off"):
        rig.close()
    assert list(rig.core.getLoadedDevices()) == ["Core"]


def test_a_step_that_fails_once_and_then_works_ends_safe(
    controller, rig: Rig, tmp, monkeypatch
):
    """Teardown's attempt fails, the controller's second attempt succeeds: the
    rig is safe in the end, and the run says what it did."""
    real = rig.lasers.all_off
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("timeout")
        real()

    monkeypatch.setattr(rig.lasers, "all_off", flaky)
    result = _stream(controller, tmp)
    assert len(calls) >= 2
    assert result.outcome is RunOutcome.COMPLETED, result.message


@pytest.mark.parametrize("step", ["park", "task close"])
def test_a_daq_that_is_not_parked_makes_the_run_unsafe(
    controller, rig: Rig, tmp, monkeypatch, step
):
    lasers_on(rig)
    program = opm_program(positions=4)
    if step == "park":

        def no_park(*args: object, **kw: object) -> None:
            raise OSError("card removed")

        monkeypatch.setattr(daq_tasks, "park", no_park)
        monkeypatch.setattr(daq_link, "park", no_park)
        said = "card removed"
    else:

        def no_close(self: object) -> None:
            raise OSError("task handle lost")

        monkeypatch.setattr(daq_tasks.DaqTasks, "close", no_close)
        monkeypatch.setattr(daq_link, "park", no_close)
        said = "task handle lost"
    result = run(controller, tmp, program, frames=8)
    assert result.outcome is RunOutcome.UNSAFE, result.message
    assert "the DAQ card was not parked" in result.message
    assert said in result.message
    _assert_kept(result, 8)
