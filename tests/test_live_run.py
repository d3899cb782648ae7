"""RunRequest(save=False): a live-view run shows and counts frames, writes none."""

from __future__ import annotations

from helpers import HEIGHT, WIDTH

from mmapp.engine.controller import RunOutcome, RunRequest
from mmapp.engine.events import stream_event


def test_live_run_keeps_latest_frame_and_writes_nothing(controller, rig, tmp):
    controller.start(RunRequest([stream_event()], tmp, "live", save=False))
    assert controller.wait_frames(30, 20)
    frame = controller.latest_frame()
    assert frame is not None
    assert frame.image.shape == (HEIGHT, WIDTH)
    controller.stop()
    result = controller.wait(20)
    assert result is not None
    assert result.outcome is RunOutcome.STOPPED, result.message
    assert result.frames_acquired >= 30
    assert (result.frames_saved, result.frames_lost, result.dataset) == (0, 0, None)
    assert list(tmp.iterdir()) == []  # no dataset folder, no files
    assert not rig.core.isSequenceRunning()


def test_live_run_ends_at_frame_limit(controller, tmp):
    controller.start(RunRequest([stream_event(max_frames=25)], tmp, save=False))
    result = controller.wait(20)
    assert result is not None
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_acquired == 25
    snap = controller.stats()
    assert snap is not None and snap.frames_in == 25 and snap.queue_frames == 0
    assert list(tmp.iterdir()) == []


def test_a_new_run_does_not_report_the_last_ones_stats(controller, tmp):
    controller.start(RunRequest([stream_event(max_frames=5)], tmp, save=False))
    assert controller.wait(20) is not None
    assert controller.stats().frames_in == 5
    controller.start(RunRequest([stream_event()], tmp, save=False))
    snap = controller.stats()  # None until the new run's handler exists
    assert snap is None or snap.frames_in < 5 or controller.wait_frames(5, 20)
    controller.stop()
    assert controller.wait(20) is not None
