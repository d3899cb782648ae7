"""The streaming engine on the simulated rig: data, Stop in every state, errors."""

from __future__ import annotations

import glob
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import HEIGHT, WIDTH, open_dataset, read_all
from useq import MDASequence

from mmapp.data.errors import StorageWriteError
from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.engine import RUN_KEY
from mmapp.engine.events import stream_event
from mmapp.rig import Rig
from mmapp.sim.frames import DARK_LEVEL, expected_pattern, read_stamp, unstamped

SHAPE = (HEIGHT, WIDTH)


def _run(controller: RunController, events, tmp_path: Path, **kw) -> object:
    controller.start(RunRequest(events, tmp_path, "run", **kw))
    result = controller.wait(60)
    assert result is not None, "the run did not end"
    return result


def _wait_for_frames(controller: RunController, n: int) -> None:
    """Block until the handler has seen n frames (no fixed sleeps)."""
    assert controller.wait_frames(n, 20), f"fewer than {n} frames arrived"


def _assert_safe(rig: Rig) -> None:
    core = rig.core
    assert not core.isSequenceRunning()
    assert not core.getShutterOpen()
    for nm in (405, 488, 561, 640):
        assert core.getProperty("Lasers", f"Laser {nm}") == "Off"


def test_stream_frames_round_trip_pixel_exact(controller, rig, tmp_path):
    rig.core.setConfig("Channel", "488nm")
    result = _run(controller, [stream_event(max_frames=40)], tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert (result.frames_acquired, result.frames_saved, result.frames_lost) == (
        40,
        40,
        0,
    )
    frames = read_all(result.dataset)
    assert sorted(frames) == list(range(40))
    ref = expected_pattern(SHAPE, np.uint16, 0.0, 50.0)  # autoshutter opened
    for t, img in frames.items():
        assert read_stamp(img) == t
        np.testing.assert_array_equal(unstamped(img, ref), ref)
    tif = glob.glob(str(result.dataset / "*.tif"))
    assert len(tif) == 1
    with tifffile.TiffFile(tif[0]) as tf:
        assert tf.is_ndtiff
        stack = tf.asarray(key=range(len(tf.pages)))
    assert stack.shape == (40, *SHAPE)
    for t in range(40):
        np.testing.assert_array_equal(stack[t], frames[t])
    _assert_safe(rig)


def test_metadata_summary_and_per_frame(controller, rig, tmp_path):
    result = _run(
        controller, [stream_event(max_frames=3)], tmp_path, settings={"who": "test"}
    )
    ds = open_dataset(result.dataset)
    try:
        assert ds.summary_metadata["mmapp"] == {
            "who": "test",
            "circular_buffer_mb": 1024,
        }
        assert "pymmcore_plus" in ds.summary_metadata
        md = ds.read_metadata(time=2)
        assert md["Axes"] == {"time": 2}
        assert md["camera_metadata"]["mmapp-frame"] == "2"
        assert md["hardware_triggered"] is True
    finally:
        ds.close()


def test_frames_waiting_together_go_out_as_one_run_each_with_its_own_metadata(
    controller, rig, tmp_path
):
    """The frames the engine takes from the ring in one go reach the relay as
    one frameReady (RUN_KEY); every frame still gets its own coordinates,
    metadata (plain keys: the core's Keyword enums as names) and pixels."""
    core = rig.core
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    core.setExposure(0.0)
    runs: list[int] = []
    backlog = threading.Event()

    def first_listener(img, event, meta) -> None:
        runs.append(len(meta.get(RUN_KEY) or [meta]))
        if len(runs) == 1:  # hold the engine until frames wait in the ring
            deadline = time.monotonic() + 10
            while core.getRemainingImageCount() < 12:
                assert time.monotonic() < deadline, "the camera gave no backlog"
                backlog.wait(0.001)

    core.mda.events.frameReady.connect(first_listener)  # before the relay
    try:
        result = _run(controller, [stream_event(max_frames=200)], tmp_path)
    finally:
        core.mda.events.frameReady.disconnect(first_listener)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == 200 and result.frames_lost == 0
    assert sum(runs) == 200
    assert max(runs) >= 11  # the backlog went out as one run
    assert len(runs) < 200
    ds = open_dataset(result.dataset)
    try:
        for t in range(200):
            md = ds.read_metadata(time=t)
            assert md["Axes"] == {"time": t}
            assert md["event_index"] == {"t": t}
            camera = md["camera_metadata"]
            assert camera["ImageNumber"] == str(t)
            assert camera["mmapp-frame"] == str(t)
            assert camera["PixelType"] == "GRAY16"
            assert camera["Camera"] == "Camera"
            assert read_stamp(np.array(ds.read_image(time=t))) == t
    finally:
        ds.close()


def test_mda_sequence_z_and_channels_hardware_sequenced(controller, rig, tmp_path):
    core = rig.core
    core.setProperty("Lasers", "Laser 561 Power %", 100.0)
    seq = MDASequence(
        time_plan={"interval": 0, "loops": 2},
        z_plan={"range": 4, "step": 1},
        channels=["488nm", "561nm"],
        axis_order="tczp",
    )
    result = _run(controller, seq, tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == 2 * 2 * 5
    ds = open_dataset(result.dataset)
    try:
        coords = ds.get_image_coordinates_list()
        assert len(coords) == 20
        for c in coords:
            img = np.array(ds.read_image(**c))
            z_um = -2.0 + c["z"]
            light = 50.0 if c["channel"] == "488nm" else 100.0
            ref = expected_pattern(SHAPE, np.uint16, z_um, light)
            np.testing.assert_array_equal(unstamped(img, ref), ref)
    finally:
        ds.close()
    _assert_safe(rig)


def test_stop_while_frames_flow(controller, rig, tmp_path):
    controller.start(RunRequest([stream_event()], tmp_path, "loop"))
    _wait_for_frames(controller, 20)
    controller.stop()
    result = controller.wait(10)
    assert result.outcome is RunOutcome.STOPPED
    assert result.stop_latency_s is not None and result.stop_latency_s < 0.5
    assert result.frames_acquired >= 20
    assert result.frames_saved == result.frames_acquired
    assert result.frames_lost == 0
    assert len(read_all(result.dataset)) == result.frames_saved
    _assert_safe(rig)


def test_stop_while_camera_waits_for_trigger(controller, rig, tmp_path):
    rig.core.setProperty("Camera", "TriggerMode", "External")
    controller.start(RunRequest([stream_event()], tmp_path, "waiting"))
    assert controller.wait_camera_armed(5)  # armed, waiting for an edge
    t0 = time.perf_counter()
    controller.stop()
    result = controller.wait(5)
    elapsed = time.perf_counter() - t0
    assert result.outcome is RunOutcome.STOPPED
    assert result.stop_latency_s is not None and result.stop_latency_s < 0.5
    assert elapsed < 2.0  # not the 20 s first-frame timeout
    assert result.frames_acquired == 0 and result.dataset is None
    assert list(tmp_path.iterdir()) == []  # no empty dataset left behind
    _assert_safe(rig)


def test_stop_between_sequences(controller, rig, tmp_path):
    seq = MDASequence(time_plan={"interval": 2.0, "loops": 3})
    controller.start(RunRequest(seq, tmp_path, "between"))
    _wait_for_frames(controller, 1)
    t0 = time.perf_counter()
    controller.stop()
    result = controller.wait(5)
    assert time.perf_counter() - t0 < 1.0  # not the 2 s interval
    assert result.outcome is RunOutcome.STOPPED
    assert result.frames_saved == 1
    assert len(read_all(result.dataset)) == 1
    _assert_safe(rig)


def test_stop_right_after_start(controller, rig, tmp_path):
    controller.start(RunRequest([stream_event()], tmp_path, "early"))
    controller.stop()
    result = controller.wait(5)
    assert result.outcome is RunOutcome.STOPPED
    assert result.frames_saved == result.frames_acquired
    _assert_safe(rig)


def test_loop_with_duration_completes(controller, rig, tmp_path):
    result = _run(controller, [stream_event(max_duration_s=0.3)], tmp_path)
    assert result.outcome is RunOutcome.COMPLETED
    assert result.frames_saved > 5
    assert sorted(read_all(result.dataset)) == list(range(result.frames_saved))


def _slow_first_write(monkeypatch, seconds: float) -> None:
    """A disk that stalls on the first image (the writer falls behind)."""
    real_write = NDTiffSink._write  # every image goes through it (put, put_run)
    stalled = threading.Event()

    def write(self, run, *, strict):
        if not stalled.is_set():
            stalled.set()
            threading.Event().wait(seconds)
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", write)


@pytest.mark.parametrize("finite", [True, False])
def test_buffer_overflow_is_an_error_with_counts(
    controller, rig, tmp_path, monkeypatch, finite
):
    core = rig.core
    core.setProperty("Camera", "SensorWidth", 256)
    core.setProperty("Camera", "SensorHeight", 256)
    core.setExposure(0.0)
    core.setCircularBufferMemoryFootprint(16)  # 128 frames of 128 kB
    _slow_first_write(monkeypatch, 1.0)
    event = stream_event(max_frames=2000) if finite else stream_event()
    result = _run(controller, [event], tmp_path, queue_bytes=4 * 256 * 256 * 2)
    assert result.outcome is RunOutcome.ERROR
    assert "overflow" in result.message
    assert result.frames_lost > 0
    # the overwritten frames (or the one that found the buffer full) were
    # acquired by the camera and lost: acquired = saved + lost
    assert result.frames_acquired == result.frames_saved + result.frames_lost
    summary = result.summary()
    assert f"{result.frames_acquired} frames acquired" in summary
    assert f"{result.frames_lost} lost" in summary
    frames = read_all(result.dataset)
    assert sorted(frames) == list(range(result.frames_saved))
    for t, img in frames.items():
        assert read_stamp(img) == t  # what was saved is in order and intact
    _assert_safe(rig)


def test_a_camera_that_overflows_before_its_arming_is_checked(
    controller, rig, tmp_path, monkeypatch
):
    """The race CI hit: at exposure 0 the camera can fill its buffer and stop
    before the engine looks whether it armed; that run is a buffer overflow
    with its frames saved, not "the camera did not arm"."""
    core = rig.core
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    core.setExposure(0.0)
    core.setCircularBufferMemoryFootprint(1)  # 128 frames of 8 kB
    camera = rig.camera

    def armed_too_late(timeout: float) -> bool:
        # the camera's thread ends (overflowed) before the engine looks
        camera.armed.wait(timeout)
        while core.isSequenceRunning() and camera.armed.is_set():
            camera.armed.wait(0.001)
        return camera.armed.is_set()

    monkeypatch.setattr(rig, "camera_ready", armed_too_late)
    _slow_first_write(monkeypatch, 1.0)
    result = _run(controller, [stream_event()], tmp_path, queue_bytes=4 * 64 * 64 * 2)
    assert result.outcome is RunOutcome.ERROR
    assert "overflow" in result.message, result.message
    assert result.frames_acquired == result.frames_saved + result.frames_lost
    frames = read_all(result.dataset)
    assert sorted(frames) == list(range(result.frames_saved)) and frames
    assert all(read_stamp(img) == t for t, img in frames.items())
    _assert_safe(rig)


def test_camera_timeout_is_an_error(controller, rig, tmp_path):
    rig.core.setProperty("Camera", "TriggerMode", "External")
    result = _run(
        controller, [stream_event(max_frames=10)], tmp_path, first_frame_timeout_s=0.3
    )
    assert result.outcome is RunOutcome.ERROR
    assert "no frame for 0.3 s after 0 frames" in result.message
    _assert_safe(rig)


def test_camera_fault_is_an_error_and_keeps_frames(controller, rig, tmp_path):
    rig.core.setProperty("Camera", "FaultAfterFrames", 5)
    result = _run(controller, [stream_event(max_frames=20)], tmp_path)
    assert result.outcome is RunOutcome.ERROR
    assert "simulated sensor fault after 5 frames" in result.message
    assert (result.frames_acquired, result.frames_saved) == (5, 5)
    assert sorted(read_all(result.dataset)) == [0, 1, 2, 3, 4]
    _assert_safe(rig)


def test_disk_error_stops_the_run_and_keeps_written_frames(
    controller, rig, tmp_path, monkeypatch
):
    real_write = NDTiffSink._write

    def write(self, run, *, strict):  # put() and put_run() both write here
        if self.images_written + len(run) > 3:
            if not strict:  # a run: refused, then put() frame by frame
                return False
            raise StorageWriteError("writing failed after 3 images: the disk is full")
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", write)
    result = _run(controller, [stream_event()], tmp_path)
    assert result.outcome is RunOutcome.ERROR
    assert "the disk is full" in result.message
    assert result.frames_saved == 3
    assert sorted(read_all(result.dataset)) == [0, 1, 2]
    _assert_safe(rig)


def test_unwritable_directory_is_a_clear_error(controller, rig, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run(controller, [stream_event(max_frames=2)], blocker / "sub")
    assert result.outcome is RunOutcome.ERROR
    assert "cannot create the save directory" in result.message
    assert result.frames_acquired == 0
    _assert_safe(rig)


def test_second_start_while_running_is_refused(controller, rig, tmp_path):
    controller.start(RunRequest([stream_event()], tmp_path, "a"))
    with pytest.raises(RuntimeError, match="already running"):
        controller.start(RunRequest([stream_event()], tmp_path, "b"))
    controller.stop()
    assert controller.wait(5).outcome is RunOutcome.STOPPED


def test_dark_frames_when_shutter_stays_closed(controller, rig, tmp_path):
    rig.core.setAutoShutter(False)
    rig.core.setConfig("Channel", "488nm")
    result = _run(controller, [stream_event(max_frames=3)], tmp_path)
    ref = np.full(SHAPE, DARK_LEVEL, np.uint16)
    for img in read_all(result.dataset).values():
        np.testing.assert_array_equal(unstamped(img, ref), ref)


def test_time_points_keep_their_interval(controller, rig, tmp_path):
    seq = MDASequence(time_plan={"interval": 0.2, "loops": 3})
    t0 = time.perf_counter()
    result = _run(controller, seq, tmp_path)
    assert result.outcome is RunOutcome.COMPLETED
    assert time.perf_counter() - t0 >= 0.4  # two intervals between three points
    ds = open_dataset(result.dataset)
    try:
        times = [ds.read_metadata(time=t)["runner_time_ms"] for t in range(3)]
    finally:
        ds.close()
    # useq's interval schedules point t at t * interval after the start (a late
    # point does not push the next one back); no point comes early
    assert all(at >= 200 * t - 10 for t, at in enumerate(times)), times


def test_ring_not_a_whole_number_of_frames_streams_on(controller, rig, tmp_path):
    # 64x48 uint16 frames do not divide 16 MiB: the write position must still
    # wrap while leased frames are waiting to be written (no false overflow).
    core = rig.core
    core.setExposure(0.0)
    core.setCircularBufferMemoryFootprint(16)
    capacity = core.getBufferTotalCapacity()
    assert (16 * 2**20) % (WIDTH * HEIGHT * 2) != 0
    camera = rig.camera
    camera.flow_control = lambda: core.getRemainingImageCount() >= capacity - 2
    n = 3 * capacity
    result = _run(controller, [stream_event(max_frames=n)], tmp_path)
    camera.flow_control = None
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == n
    frames = read_all(result.dataset)
    assert all(read_stamp(frames[t]) == t for t in (0, capacity, n - 1))


def test_a_listener_that_raises_costs_one_frame_not_the_run(controller, rig, tmp_path):
    calls = []

    def bad_listener(img, event, meta):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("a viewer crashed")

    rig.core.mda.events.frameReady.connect(bad_listener)  # called before the relay
    seq = MDASequence(
        channels=["488nm", "561nm"],
        time_plan={"interval": 0, "loops": 10},
        axis_order="ct",
    )
    try:
        t0 = time.perf_counter()
        result = _run(controller, seq, tmp_path)
    finally:
        rig.core.mda.events.frameReady.disconnect(bad_listener)
    assert time.perf_counter() - t0 < 10  # no wait for a frame nobody stores
    assert result.outcome is RunOutcome.COMPLETED
    assert (result.frames_acquired, result.frames_saved, result.frames_lost) == (
        20,
        19,
        1,
    )


def test_frames_refused_by_the_handler_are_counted(
    controller, rig, tmp_path, monkeypatch
):
    from mmapp.data.handler import DataHandler

    real_enqueue = DataHandler._enqueue

    # the step put() and put_many() share (frames come alone or in runs)
    def enqueue(self, frame):
        if self.stats.frames_in == 10:
            raise TimeoutError("the writer did not free queue space")
        return real_enqueue(self, frame)

    monkeypatch.setattr(DataHandler, "_enqueue", enqueue)
    result = _run(controller, [stream_event(max_frames=50)], tmp_path)
    assert result.outcome is RunOutcome.ERROR
    assert result.frames_saved == 10
    assert result.frames_acquired == (
        result.frames_saved + result.frames_lost + result.frames_rejected
    )


def _slow_writes(monkeypatch, seconds: float) -> None:
    real_write = NDTiffSink._write
    pause = threading.Event()

    def write(self, run, *, strict):  # put() and put_run() both write here
        pause.wait(seconds * len(run))  # a disk slower than the camera
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", write)


def test_stop_keeps_every_frame_the_camera_delivered(
    controller, rig, tmp_path, monkeypatch
):
    _slow_writes(monkeypatch, 0.002)
    rig.core.setExposure(0.5)
    controller.start(RunRequest([stream_event()], tmp_path, "drain"))
    _wait_for_frames(controller, 30)
    controller.stop()
    result = controller.wait(60)
    assert result.outcome is RunOutcome.STOPPED
    assert result.frames_lost == 0
    assert rig.camera.frames_emitted == result.frames_acquired == result.frames_saved
    assert sorted(read_all(result.dataset)) == list(range(result.frames_saved))


def test_stop_while_the_next_sequence_waits_for_the_writer(
    controller, rig, tmp_path, monkeypatch
):
    _slow_writes(monkeypatch, 0.01)
    rig.core.setExposure(0.0)
    seq = MDASequence(
        channels=["488nm", "561nm"],
        time_plan={"interval": 0, "loops": 20},
        axis_order="ct",
    )
    controller.start(RunRequest(seq, tmp_path, "waiting-writer"))
    _wait_for_frames(controller, 20)  # first sequence acquired, writer behind
    controller.stop()
    result = controller.wait(30)
    assert result.outcome is RunOutcome.STOPPED
    assert rig.camera.frames_emitted == 20  # the second sequence never started
    assert result.frames_saved == 20
    _assert_safe(rig)


def test_gil_switch_interval_follows_the_frame_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small frames get the longer interval, large ones the short one; never
    longer than the process had before its first run."""
    from mmapp.engine import controller

    before = sys.getswitchinterval()
    monkeypatch.setattr(controller, "_switch_interval_before", 0.005)
    try:
        controller.tune_gil_for_streaming(256 * 256 * 2)
        assert sys.getswitchinterval() == pytest.approx(0.002)
        controller.tune_gil_for_streaming(2048 * 2048 * 2)
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        controller.tune_gil_for_streaming(0)  # size unknown: the short one
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        monkeypatch.setattr(controller, "_switch_interval_before", 0.001)
        controller.tune_gil_for_streaming(256 * 256 * 2)
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)
