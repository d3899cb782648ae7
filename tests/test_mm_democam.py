"""The C++ camera path: Micro-Manager's DemoCamera adapter in MMCore.

The simulated rig's devices are Python; here the camera, stages, shutter and
filter wheel are Micro-Manager's own C++ DemoCamera adapter (built from
../shared/vendor by `mm_adapters.py`), loaded from a `.cfg` through mmapp's
rig loader. Frames therefore come out of MMCore's circular buffer through
`popNextImageAndMD` (the engine's copying source), loops use
`startContinuousSequenceAcquisition`, and lost frames are found from the
`ImageNumber` MMCore stamps on each frame. Each acquisition mode of the
simulated-rig tests runs here too.
"""

from __future__ import annotations

import glob
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mm_adapters
import numpy as np
import pymmcore
import pytest
import tifffile
from helpers import HEIGHT, WIDTH, open_dataset, read_all, run_mmapp
from useq import MDASequence

from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.engine.controller import (
    RUN_RECORD_FILE,
    RunController,
    RunOutcome,
    RunRequest,
    RunResult,
)
from mmapp.engine.engine import RUN_KEY, _CopyingSource
from mmapp.engine.events import stream_event
from mmapp.rig import Rig

SHAPE = (HEIGHT, WIDTH)


class Popped:
    """A copy of every frame the engine hands the runner (a frameReady listener
    connected before the run's own), with the rig's state at that moment."""

    def __init__(self, rig: Rig) -> None:
        self.core = rig.core
        self.frames: list[np.ndarray] = []
        self.numbers: list[int | None] = []
        self.states: list[tuple[str, float]] = []
        self.shutter_open: list[bool] = []  # ... while the camera still ran
        self.core.mda.events.frameReady.connect(self._on_frame)

    def _on_frame(self, img: np.ndarray, event, meta) -> None:
        # frames the engine took together come as one run (RUN_KEY)
        for img_, _event, meta_ in meta.get(RUN_KEY) or [(img, event, meta)]:
            self.frames.append(np.array(img_, copy=True))
            number = (meta_.get("camera_metadata") or {}).get("ImageNumber")
            self.numbers.append(None if number is None else int(number))
            self.states.append(
                (self.core.getCurrentConfig("Channel"), self.core.getPosition())
            )
            if self.core.isSequenceRunning():
                self.shutter_open.append(self.core.getShutterOpen())

    def close(self) -> None:
        self.core.mda.events.frameReady.disconnect(self._on_frame)


@pytest.fixture
def popped(democam_rig: Rig) -> Iterator[Popped]:
    p = Popped(democam_rig)
    yield p
    p.close()


def _run(controller: RunController, events, out: Path, **kw) -> RunResult:
    controller.start(RunRequest(events, out, "run", **kw))
    result = controller.wait(60)
    assert result is not None, "the run did not end"
    return result


def _assert_counts(result: RunResult) -> None:
    """acquired == saved + lost (+ rejected), in the result and in run.json."""
    assert result.frames_acquired == (
        result.frames_saved + result.frames_lost + result.frames_rejected
    ), result.summary()
    assert result.dataset is not None
    record = json.loads((result.dataset / RUN_RECORD_FILE).read_text())
    assert (
        record["outcome"],
        record["frames_acquired"],
        record["frames_saved"],
        record["frames_lost"],
    ) == (
        result.outcome.value,
        result.frames_acquired,
        result.frames_saved,
        result.frames_lost,
    )


def _assert_safe(rig: Rig) -> None:
    core = rig.core
    assert not core.isSequenceRunning()
    assert not core.getShutterOpen()


def _tiff_stack(dataset: Path) -> np.ndarray:
    tif = glob.glob(str(dataset / "*.tif"))
    assert len(tif) == 1
    with tifffile.TiffFile(tif[0]) as tf:
        assert tf.is_ndtiff
        return tf.asarray(key=range(len(tf.pages)))


def _assert_saved_as_popped(dataset: Path, popped: Popped, n: int) -> None:
    """The dataset holds exactly the first n popped frames, in order, read back
    through ndstorage and through tifffile."""
    frames = read_all(dataset)
    assert sorted(frames) == list(range(n))
    stack = _tiff_stack(dataset)
    assert stack.shape == (n, *SHAPE)
    for t in range(n):
        np.testing.assert_array_equal(frames[t], popped.frames[t])
        np.testing.assert_array_equal(stack[t], popped.frames[t])


def test_adapter_built_outside_the_checkout(mm_adapter_path):
    assert (mm_adapter_path / mm_adapters.library_name("DemoCamera")).is_file()
    assert (mm_adapter_path / mm_adapters.DONE).is_file()  # finished, not half
    assert not mm_adapter_path.resolve().is_relative_to(mm_adapters.REPO)


def test_no_compiler_skips_with_the_reason(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.skip.Exception, match="no C\\+\\+ compiler"):
        mm_adapters.adapter_dir()


def test_rig_is_the_cpp_democamera(democam_rig):
    core = democam_rig.core
    camera = core.getCameraDevice()
    assert camera == "Camera"
    assert not core.isPyDevice(camera)
    assert core.getDeviceLibrary(camera) == "DemoCamera"
    assert (core.getImageWidth(), core.getImageHeight()) == (WIDTH, HEIGHT)
    assert core.getBytesPerPixel() == 2
    assert (core.getFocusDevice(), core.getShutterDevice()) == ("Z", "Shutter")
    assert core.getAvailableConfigs("Channel") == ("Blue", "Green")


def test_stream_frames_saved_pixel_exact(
    democam_controller, democam_rig, popped, tmp_path, monkeypatch
):
    sources: list[str] = []
    real_init = _CopyingSource.__init__

    def spy(self, core):  # the frames must come through the core's own pop
        sources.append("copying")
        real_init(self, core)

    monkeypatch.setattr(_CopyingSource, "__init__", spy)
    result = _run(democam_controller, [stream_event(max_frames=40)], tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert (result.frames_acquired, result.frames_saved, result.frames_lost) == (
        40,
        40,
        0,
    )
    _assert_counts(result)
    assert sources == ["copying"]
    assert len(popped.frames) == 40
    # MMCore numbers the frames of a sequence one by one: none skipped
    first = popped.numbers[0]
    assert popped.numbers == list(range(first, first + 40))
    _assert_saved_as_popped(result.dataset, popped, 40)
    stack = np.stack(popped.frames)
    assert stack.dtype == np.uint16
    assert int(stack.max()) > int(stack.min())  # not one value
    assert int(stack.max()) > 100  # not dark
    # "Artificial Waves" moves with time: the frames are not copies of one frame
    assert len({f.tobytes() for f in popped.frames}) > 1
    # MMCore's auto-shutter is open while the sequence runs
    assert popped.shutter_open and all(popped.shutter_open)
    _assert_safe(democam_rig)


def test_stream_equals_the_cameras_own_snap(
    democam_controller, democam_rig, popped, tmp_path
):
    core = democam_rig.core
    core.setProperty("Camera", "Mode", "Color Test Pattern")  # deterministic
    core.snapImage()
    snap = core.getImage()
    assert int(snap.max()) > int(snap.min())
    result = _run(democam_controller, [stream_event(max_frames=10)], tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    frames = read_all(result.dataset)
    stack = _tiff_stack(result.dataset)
    assert sorted(frames) == list(range(10))
    for t in range(10):
        np.testing.assert_array_equal(frames[t], snap)
        np.testing.assert_array_equal(stack[t], snap)


def test_frame_metadata_saved(democam_controller, democam_rig, tmp_path):
    result = _run(
        democam_controller, [stream_event(max_frames=3)], tmp_path, settings={"a": 1}
    )
    assert result.outcome is RunOutcome.COMPLETED, result.message
    ds = open_dataset(result.dataset)
    try:
        assert ds.summary_metadata["mmapp"] == {"a": 1, "circular_buffer_mb": 1024}
        numbers = []
        for t in range(3):
            md = ds.read_metadata(time=t)
            assert md["Axes"] == {"time": t}
            cam = md["camera_metadata"]
            assert cam["Camera"] == "Camera"
            assert (int(cam["Width"]), int(cam["Height"])) == (WIDTH, HEIGHT)
            assert cam["PixelType"] == "GRAY16"
            assert "ElapsedTime-ms" in cam
            numbers.append(int(cam["ImageNumber"]))
            assert md["camera_device"] == "Camera"
            assert md["exposure_ms"] == pytest.approx(2.0)
            assert md["hardware_triggered"] is True
        assert numbers == list(range(numbers[0], numbers[0] + 3))
    finally:
        ds.close()


def test_loop_until_stop(democam_controller, democam_rig, popped, tmp_path):
    core = democam_rig.core
    calls: list[str] = []
    real = core.startContinuousSequenceAcquisition

    def spy(*args):
        calls.append("continuous")
        return real(*args)

    core.startContinuousSequenceAcquisition = spy  # type: ignore[method-assign]
    try:
        democam_controller.start(RunRequest([stream_event()], tmp_path, "loop"))
        assert democam_controller.wait_frames(30, 20), "fewer than 30 frames arrived"
        t0 = time.perf_counter()
        democam_controller.stop()
        result = democam_controller.wait(10)
        ended_s = time.perf_counter() - t0
    finally:
        del core.startContinuousSequenceAcquisition
    assert calls == ["continuous"]
    assert result is not None
    assert result.outcome is RunOutcome.STOPPED, result.message
    assert result.stop_latency_s is not None and result.stop_latency_s < 0.5
    assert ended_s < 2.0  # the dataset is finished within that too
    assert result.frames_acquired >= 30
    assert result.frames_saved == result.frames_acquired
    assert result.frames_lost == 0
    _assert_counts(result)
    n = result.frames_saved
    assert len(popped.frames) == n
    first = popped.numbers[0]
    assert popped.numbers == list(range(first, first + n))
    _assert_saved_as_popped(result.dataset, popped, n)
    _assert_safe(democam_rig)


def test_loop_with_duration_completes(democam_controller, democam_rig, tmp_path):
    result = _run(democam_controller, [stream_event(max_duration_s=0.3)], tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved > 5
    assert result.frames_lost == 0
    _assert_counts(result)
    assert sorted(read_all(result.dataset)) == list(range(result.frames_saved))
    _assert_safe(democam_rig)


def test_mda_z_and_channels(democam_controller, democam_rig, popped, tmp_path):
    core = democam_rig.core
    core.setPosition(10.0)
    core.waitForDevice("Z")
    seq = MDASequence(
        time_plan={"interval": 0, "loops": 2},
        z_plan={"range": 4, "step": 1},
        channels=["Blue", "Green"],
        axis_order="tczp",
    )
    result = _run(democam_controller, seq, tmp_path)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == result.frames_acquired == 2 * 2 * 5
    _assert_counts(result)
    expected = [
        {"time": t, "channel": c, "z": z}
        for t in range(2)
        for c in ("Blue", "Green")
        for z in range(5)
    ]
    # each frame was taken with its channel's preset set and Z at its plane
    # (useq plans a relative z range around 0 when the sequence has no
    # positions: the planes are absolute -2..2 um, wherever Z started)
    for (channel, z_um), e in zip(popped.states, expected, strict=True):
        assert channel == e["channel"]
        assert z_um == pytest.approx(-2.0 + e["z"])
    # MMCore opens the auto-shutter around each snap; by the time the runner
    # hands the frame on, it has closed it again (nothing for the engine to do)
    ds = open_dataset(result.dataset)
    try:
        coords = ds.get_image_coordinates_list()
        assert sorted(sorted(c.items()) for c in coords) == sorted(
            sorted(e.items()) for e in expected
        )
        for i, e in enumerate(expected):
            img = np.array(ds.read_image(**e))
            np.testing.assert_array_equal(img, popped.frames[i])
            md = ds.read_metadata(**e)
            assert md["channel"] == {"group": "Channel", "config": e["channel"]}
            assert md["z_um"] == pytest.approx(-2.0 + e["z"])
    finally:
        ds.close()
    assert core.getPosition() == pytest.approx(10.0)  # Z back where it started
    _assert_safe(democam_rig)


def test_stop_right_after_start(democam_controller, democam_rig, tmp_path):
    democam_controller.start(RunRequest([stream_event()], tmp_path, "early"))
    democam_controller.stop()
    result = democam_controller.wait(5)
    assert result is not None
    assert result.outcome is RunOutcome.STOPPED, result.message
    assert result.frames_saved == result.frames_acquired
    assert result.frames_lost == 0
    _assert_safe(democam_rig)


def test_stop_between_time_points(democam_controller, democam_rig, tmp_path):
    seq = MDASequence(time_plan={"interval": 2.0, "loops": 3})
    democam_controller.start(RunRequest(seq, tmp_path, "between"))
    assert democam_controller.wait_frames(1, 20)
    t0 = time.perf_counter()
    democam_controller.stop()
    result = democam_controller.wait(5)
    assert time.perf_counter() - t0 < 1.0  # not the 2 s interval
    assert result.outcome is RunOutcome.STOPPED, result.message
    assert result.frames_saved == 1
    assert len(read_all(result.dataset)) == 1
    _assert_safe(democam_rig)


def _slow_first_write(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """A disk that stalls on the first image (the writer falls behind)."""
    real_write = NDTiffSink._write  # every image goes through it (put, put_run)
    stalled = threading.Event()

    def write(self, run, *, strict):
        if not stalled.is_set():
            stalled.set()
            threading.Event().wait(seconds)
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", write)


@pytest.mark.parametrize("finite", [True, False], ids=["frames", "loop"])
def test_small_buffer_overflow_is_an_error_with_counts(
    democam_controller, democam_rig, popped, tmp_path, monkeypatch, finite
):
    core = democam_rig.core
    core.setProperty("Camera", "OnCameraCCDXSize", 256)
    core.setProperty("Camera", "OnCameraCCDYSize", 256)
    core.setExposure(0.0)
    core.setCircularBufferMemoryFootprint(4)  # 32 frames of 128 kB
    _slow_first_write(monkeypatch, 1.0)
    event = stream_event(max_frames=2000) if finite else stream_event()
    result = _run(democam_controller, [event], tmp_path, queue_bytes=4 * 256 * 256 * 2)
    assert result.outcome is RunOutcome.ERROR, result.summary()
    assert "overflow" in result.message
    assert result.frames_lost > 0
    _assert_counts(result)
    summary = result.summary()
    assert f"{result.frames_acquired} frames acquired" in summary
    assert f"{result.frames_lost} lost" in summary
    frames = read_all(result.dataset)
    assert sorted(frames) == list(range(result.frames_saved))
    for t, img in frames.items():  # what was saved is what was popped, in order
        np.testing.assert_array_equal(img, popped.frames[t])
    _assert_safe(democam_rig)


def test_cli_acquire_frames_on_the_cfg(democam_cfg, tmp_path):
    out = tmp_path / "out"
    proc = run_mmapp(
        "acquire", "--rig", str(democam_cfg), "--out", str(out), "--frames", "25"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "completed: 25 frames acquired, 25 saved, 0 lost" in proc.stdout
    (dataset,) = [p for p in out.iterdir() if p.is_dir()]
    frames = read_all(dataset)
    assert sorted(frames) == list(range(25))
    stack = _tiff_stack(dataset)
    for t in range(25):
        np.testing.assert_array_equal(stack[t], frames[t])
    assert int(stack.max()) > int(stack.min())
    ds = open_dataset(dataset)
    try:
        numbers = [
            int(ds.read_metadata(time=t)["camera_metadata"]["ImageNumber"])
            for t in range(25)
        ]
    finally:
        ds.close()
    assert numbers == list(range(numbers[0], numbers[0] + 25))


def test_cli_loop_with_duration_and_mda_on_the_cfg(democam_cfg, tmp_path):
    out = tmp_path / "out"
    loop = run_mmapp(
        "acquire", "--rig", str(democam_cfg), "--out", str(out), "--loop",
        "--duration", "0.5", "--name", "loop",
    )  # fmt: skip
    assert loop.returncode == 0, loop.stdout + loop.stderr
    assert "completed:" in loop.stdout and " 0 lost" in loop.stdout
    mda = run_mmapp(
        "acquire", "--rig", str(democam_cfg), "--out", str(out), "--timepoints",
        "2", "--z-range", "2", "--z-step", "1", "--name", "mda",
    )  # fmt: skip
    assert mda.returncode == 0, mda.stdout + mda.stderr
    assert "completed: 6 frames acquired, 6 saved, 0 lost" in mda.stdout
    (mda_dir,) = out.glob("mda*")
    ds = open_dataset(mda_dir)
    try:
        coords = ds.get_image_coordinates_list()
        assert sorted((c["time"], c["z"]) for c in coords) == [
            (t, z) for t in range(2) for z in range(3)
        ]
    finally:
        ds.close()


def _newest_image_number(core) -> int:
    """ImageNumber of the newest frame in MMCore's buffer (-1: none right now;
    the camera may be between clearing a full buffer and its next frame)."""
    md = pymmcore.Metadata()
    try:
        core.getLastImageMD(md)
        return int(md.GetSingleTag("ImageNumber").GetValue())
    except Exception:
        return -1


def test_overflow_before_the_first_pop_is_counted(
    democam_controller, democam_rig, popped, tmp_path, monkeypatch
):
    """A loop whose camera wraps MMCore's buffer before the engine pops its
    first frame (e.g. a slow arm check): MMCore numbers every sequence from 0,
    so a first frame numbered N means N frames were lost, not a fresh count."""
    core = democam_rig.core
    core.setProperty("Camera", "OnCameraCCDXSize", 256)
    core.setProperty("Camera", "OnCameraCCDYSize", 256)
    core.setCircularBufferMemoryFootprint(1)  # 8 frames of 128 kB
    wrapped = threading.Event()

    def slow_arm_check(timeout: float) -> bool:
        # hold the engine until the camera has delivered more frames than
        # the buffer holds (MMCore's continuous mode then drops them)
        capacity = core.getBufferTotalCapacity()
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            if _newest_image_number(core) >= capacity + 2:
                wrapped.set()
                return True
            threading.Event().wait(0.001)
        return True

    monkeypatch.setattr(democam_rig, "wait_camera_ready", slow_arm_check)
    democam_controller.start(RunRequest([stream_event()], tmp_path, "wrap"))
    result = democam_controller.wait(5)
    if result is None:  # the engine did not see the loss: stop the loop
        democam_controller.stop()
        result = democam_controller.wait(10)
    assert wrapped.is_set()
    assert result.outcome is RunOutcome.ERROR, result.summary()
    assert "overflow" in result.message
    assert popped.numbers and popped.numbers[0] > 0
    assert result.frames_lost >= popped.numbers[0]
    _assert_counts(result)
    _assert_safe(democam_rig)


def test_a_listener_that_raises_costs_one_frame_not_the_run(
    democam_controller, democam_rig, tmp_path
):
    calls = []

    def bad_listener(img, event, meta):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("a viewer crashed")

    core = democam_rig.core
    core.mda.events.frameReady.connect(bad_listener)  # called before the relay
    try:
        result = _run(democam_controller, [stream_event(max_frames=20)], tmp_path)
    finally:
        core.mda.events.frameReady.disconnect(bad_listener)
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    assert (result.frames_acquired, result.frames_saved, result.frames_lost) == (
        20,
        19,
        1,
    )
    _assert_counts(result)


def test_losses_are_counted_per_sequence(
    democam_controller, democam_rig, popped, tmp_path, monkeypatch
):
    """Two hardware sequences in one run: a frame no one stored in the first,
    then a buffer that wraps before the first pop of the second. MMCore numbers
    each sequence from 0, so every frame the camera exposed is accounted for."""
    core = democam_rig.core
    core.setProperty("Camera", "OnCameraCCDXSize", 256)
    core.setProperty("Camera", "OnCameraCCDYSize", 256)
    core.setCircularBufferMemoryFootprint(1)  # 8 frames of 128 kB
    calls = []

    def bad_listener(img, event, meta):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a viewer crashed")

    arms = []

    def slow_second_arm(timeout: float) -> bool:
        arms.append(1)
        if len(arms) == 2:  # hold the second sequence until the buffer wrapped
            capacity = core.getBufferTotalCapacity()
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                if core.getRemainingImageCount() and (
                    _newest_image_number(core) >= capacity + 2
                ):
                    break
                threading.Event().wait(0.001)
        return True

    monkeypatch.setattr(democam_rig, "wait_camera_ready", slow_second_arm)
    core.mda.events.frameReady.connect(bad_listener)
    try:
        events = [stream_event(max_frames=5), stream_event()]
        democam_controller.start(RunRequest(events, tmp_path, "two"))
        result = democam_controller.wait(5)
        if result is None:  # the loss went unseen: stop the loop
            democam_controller.stop()
            result = democam_controller.wait(10)
    finally:
        core.mda.events.frameReady.disconnect(bad_listener)
    assert result.outcome is RunOutcome.ERROR, result.summary()
    assert "overflow" in result.message
    assert len(arms) == 2
    assert popped.numbers[:5] == [0, 1, 2, 3, 4]  # popped listens before the bad one
    dropped = popped.numbers[5]  # the first number of the second sequence
    assert dropped > 0
    assert result.frames_lost == 1 + dropped
    assert result.frames_acquired == 5 + dropped + (len(popped.numbers) - 5)
    _assert_counts(result)
