"""Every acquisition mode saves lit frames where the rig's light is on and dark
frames only where it is off, counts them consistently and returns the stages.

A run that saves dark frames and says "completed" is the worst bug an
acquisition app can have: each mode is checked here in the saved pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH, open_dataset
from useq import MDASequence

from mmapp.engine.controller import (
    RUN_RECORD_FILE,
    RunController,
    RunOutcome,
    RunRequest,
    RunResult,
)
from mmapp.engine.events import stream_event
from mmapp.engine.plans import build_events
from mmapp.rig import Rig
from mmapp.sim.frames import (
    expected_pattern,
    is_dark,
    is_lit,
    read_stamp,
    unstamped,
)

SHAPE = (HEIGHT, WIDTH)
POWERS = {488: 30.0, 561: 70.0}


def _lasers(rig: Rig, on: dict[int, bool]) -> None:
    for nm, state in on.items():
        rig.core.setProperty("Lasers", f"Laser {nm}", "On" if state else "Off")


def _powers(rig: Rig, powers: dict[int, float] = POWERS) -> None:
    for nm, power in powers.items():
        rig.core.setProperty("Lasers", f"Laser {nm} Power %", power)


def _run(controller: RunController, events, out: Path, **kw) -> RunResult:
    controller.start(RunRequest(events, out, "run", **kw))
    result = controller.wait(60)
    assert result is not None, "the run did not end"
    return result


def _images(path: Path) -> list[tuple[dict, np.ndarray]]:
    ds = open_dataset(path)
    try:
        return [
            (dict(c), np.array(ds.read_image(**c)))
            for c in ds.get_image_coordinates_list()
        ]
    finally:
        ds.close()


def _assert_counts(result: RunResult) -> None:
    """acquired == saved + lost (+ rejected), in the result and in run.json."""
    assert result.frames_acquired == (
        result.frames_saved + result.frames_lost + result.frames_rejected
    ), result.summary()
    assert result.dataset is not None
    record = json.loads((result.dataset / RUN_RECORD_FILE).read_text())
    assert record["outcome"] == result.outcome.value
    assert (
        record["frames_acquired"],
        record["frames_saved"],
        record["frames_lost"],
    ) == (result.frames_acquired, result.frames_saved, result.frames_lost)
    assert len(_images(result.dataset)) == result.frames_saved


def test_the_lit_and_dark_checks_tell_light_from_dark():
    lit = expected_pattern(SHAPE, np.uint16, 0.0, 10.0).copy()
    dark = expected_pattern(SHAPE, np.uint16, 0.0, 0.0).copy()
    assert is_lit(lit) and not is_dark(lit)
    assert is_dark(dark) and not is_lit(dark)


def test_snapped_mda_frames_are_lit_and_counted(controller, rig, tmp):
    """Time points with an interval are single snaps, not a hardware sequence:
    the auto-shutter must open for each (they were all dark)."""
    _powers(rig)
    rig.core.setConfig("Channel", "488nm")
    seq = MDASequence(time_plan={"interval": 0.01, "loops": 3})
    result = _run(controller, seq, tmp)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert (result.frames_acquired, result.frames_saved) == (3, 3)
    _assert_counts(result)
    ref = expected_pattern(SHAPE, np.uint16, 0.0, POWERS[488])
    for coords, img in _images(result.dataset):
        assert is_lit(img), coords
        np.testing.assert_array_equal(unstamped(img, ref), ref)
    assert not rig.core.getShutterOpen()


def test_snaps_are_dark_when_the_lasers_are_off(controller, rig, tmp):
    _lasers(rig, {488: False, 561: False})
    seq = MDASequence(time_plan={"interval": 0.01, "loops": 2})
    result = _run(controller, seq, tmp)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    images = _images(result.dataset)
    assert len(images) == 2
    assert all(is_dark(img) for _c, img in images)


def test_a_core_snap_opens_the_auto_shutter_and_closes_it(rig):
    core = rig.core
    _powers(rig)
    core.setConfig("Channel", "561nm")
    assert not core.getShutterOpen()
    core.snapImage()
    img = core.getImage()
    assert is_lit(img)
    ref = expected_pattern(SHAPE, np.uint16, 0.0, POWERS[561])
    np.testing.assert_array_equal(unstamped(img, ref), ref)
    assert not core.getShutterOpen()
    core.setAutoShutter(False)  # the operator's manual shutter: closed stays dark
    core.snapImage()
    assert is_dark(core.getImage())


@pytest.mark.parametrize("loop", [False, True], ids=["n_frames", "until_stop"])
def test_streamed_frames_are_lit(controller, rig, tmp, loop):
    _powers(rig)
    rig.core.setConfig("Channel", "488nm")
    if loop:
        controller.start(RunRequest([stream_event()], tmp, "run"))
        assert controller.wait_frames(30, 20)
        controller.stop()
        result = controller.wait(20)
        assert result.outcome is RunOutcome.STOPPED, result.message
    else:
        result = _run(controller, [stream_event(max_frames=30)], tmp)
        assert result.outcome is RunOutcome.COMPLETED, result.message
    _assert_counts(result)
    images = _images(result.dataset)
    assert len(images) >= 30
    ref = expected_pattern(SHAPE, np.uint16, 0.0, POWERS[488])
    for coords, img in images:
        assert is_lit(img), coords
        np.testing.assert_array_equal(unstamped(img, ref), ref)


def test_live_frames_are_lit(controller, rig, tmp):
    _powers(rig)
    rig.core.setConfig("Channel", "561nm")
    controller.start(RunRequest([stream_event()], tmp, "live", save=False))
    assert controller.wait_frames(10, 20)
    frame = controller.latest_frame()
    controller.stop()
    result = controller.wait(20)
    assert result.outcome is RunOutcome.STOPPED
    assert frame is not None and is_lit(frame.image)
    assert not any(tmp.iterdir())  # Live saves nothing


def test_mda_z_and_channels_lit_per_channel_dark_where_off(controller, rig, tmp):
    """Each channel lights with its own laser; a laser at 0 % gives dark frames
    for its channel only; the Z stage returns to where it started."""
    _powers(rig, {488: 30.0, 561: 0.0})
    core = rig.core
    core.setPosition(3.0)
    seq = MDASequence(
        channels=["488nm", "561nm"],
        z_plan={"range": 4.0, "step": 1.0},
        axis_order="zc",
    )
    result = _run(controller, seq, tmp)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == 10
    _assert_counts(result)
    for coords, img in _images(result.dataset):
        z_um = -2.0 + coords["z"]  # useq: a range around 0 without a position
        if coords["channel"] == "488nm":
            ref = expected_pattern(SHAPE, np.uint16, z_um, 30.0)
            assert is_lit(img), coords
            np.testing.assert_array_equal(unstamped(img, ref), ref)
        else:
            assert is_dark(img), coords
    assert core.getPosition() == pytest.approx(3.0)


def test_a_z_stack_returns_the_stage_after_stop_and_error(controller, rig, tmp):
    core = rig.core
    core.setPosition(-2.0)
    seq = MDASequence(z_plan={"range": 200.0, "step": 1.0})  # 201 planes
    controller.start(RunRequest(seq, tmp, "run"))
    assert controller.wait_frames(5, 20)
    controller.stop()
    result = controller.wait(20)
    assert result.outcome is RunOutcome.STOPPED
    assert core.getPosition() == pytest.approx(-2.0)


def test_sequenced_time_points_are_lit_and_counted(controller, rig, tmp):
    _powers(rig)
    rig.core.setConfig("Channel", "488nm")
    result = _run(controller, build_events(timepoints=20), tmp)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    _assert_counts(result)
    images = _images(result.dataset)
    assert len(images) == 20
    for coords, img in images:
        assert is_lit(img), coords
        assert read_stamp(img) == coords["time"]


def test_tifffile_reads_an_mda_dataset_without_warnings(controller, rig, tmp, caplog):
    """Every image's axes are written in one order (tifffile warned per image)."""
    import logging

    import tifffile

    _powers(rig)
    seq = MDASequence(
        channels=["488nm", "561nm"], z_plan={"range": 2.0, "step": 1.0}, axis_order="zc"
    )
    result = _run(controller, seq, tmp)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    index = result.dataset / "NDTiff.index"
    assert index.is_file()
    caplog.set_level(logging.WARNING)
    (tif,) = sorted(result.dataset.glob("*.tif"))
    with tifffile.TiffFile(tif) as tf:
        data = tf.asarray()
    assert data.size == 6 * HEIGHT * WIDTH
    warnings = [r.getMessage() for r in caplog.records if r.name == "tifffile"]
    assert warnings == []
