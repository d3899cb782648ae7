"""The simulated rig behaves like hardware: pixels depend on device state."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH

from mmapp.rig import Rig, RigError, load_rig
from mmapp.sim.frames import DARK_LEVEL, expected_pattern, read_stamp, unstamped


def _snap(rig: Rig) -> np.ndarray:
    rig.core.snapImage()
    return np.array(rig.core.getImage())


def test_default_rig_loads_devices(rig: Rig) -> None:
    core = rig.core
    assert core.getCameraDevice() == "Camera"
    assert (core.getImageWidth(), core.getImageHeight()) == (WIDTH, HEIGHT)
    assert core.getFocusDevice() == "Z"
    assert core.getXYStageDevice() == "XY"
    assert core.getShutterDevice() == "LaserShutter"
    assert set(core.getAvailableConfigs("Channel")) == {
        "405nm",
        "488nm",
        "561nm",
        "640nm",
    }


def test_dark_frame_when_no_light(rig: Rig) -> None:
    img = _snap(rig)
    assert img.dtype == np.uint16
    ref = np.full((HEIGHT, WIDTH), DARK_LEVEL, np.uint16)
    np.testing.assert_array_equal(unstamped(img, ref), ref)


def test_pattern_depends_on_laser_and_z(rig: Rig) -> None:
    core = rig.core
    core.setConfig("Channel", "488nm")
    core.setShutterOpen(True)
    core.setPosition("Z", 3.0)
    img = _snap(rig)
    ref = expected_pattern((HEIGHT, WIDTH), np.uint16, 3.0, 50.0)
    np.testing.assert_array_equal(unstamped(img, ref), ref)
    core.setPosition("Z", 4.0)
    other = _snap(rig)
    assert not np.array_equal(unstamped(other, ref), ref)
    core.setProperty("Lasers", "Laser 488 Power %", 100.0)
    brighter = _snap(rig)
    ref100 = expected_pattern((HEIGHT, WIDTH), np.uint16, 4.0, 100.0)
    np.testing.assert_array_equal(unstamped(brighter, ref100), ref100)


def test_sequence_frames_are_numbered(rig: Rig) -> None:
    core = rig.core
    core.startSequenceAcquisition(5, 0, True)
    numbers = []
    done = threading.Event()
    while len(numbers) < 5:
        if core.getRemainingImageCount():
            numbers.append(read_stamp(core.popNextImage()))
        else:
            done.wait(0.001)
    assert numbers == [0, 1, 2, 3, 4]


def test_external_trigger_one_frame_per_edge(rig: Rig) -> None:
    core = rig.core
    camera = rig.camera
    assert camera is not None
    core.setProperty("Camera", "TriggerMode", "External")
    core.startContinuousSequenceAcquisition(0)
    try:
        assert not threading.Event().wait(0.1)  # no edge: no frame
        assert core.getRemainingImageCount() == 0
        now = time.monotonic()  # three edges 10 ms apart (exposure is 1 ms)
        for k in range(3):
            camera.trigger.fire(at=now + 0.01 * k)
        got = []
        waiter = threading.Event()
        for _ in range(2000):
            while core.getRemainingImageCount():
                got.append(read_stamp(core.popNextImage()))
            if len(got) == 3:
                break
            waiter.wait(0.001)
        assert got == [0, 1, 2]
    finally:
        camera.abort()
        core.stopSequenceAcquisition()


def test_edges_while_exposing_are_missed_and_counted(rig: Rig) -> None:
    core = rig.core
    camera = rig.camera
    assert camera is not None
    core.setProperty("Camera", "TriggerMode", "External")
    core.setExposure(5.0)
    core.startContinuousSequenceAcquisition(0)
    try:
        assert rig.wait_camera_ready(2.0)
        now = time.monotonic()
        for dt in (0.0, 0.002, 0.004, 0.010):  # two edges land inside the 5 ms
            camera.trigger.fire(at=now + dt)
        waiter = threading.Event()
        for _ in range(2000):
            if core.getRemainingImageCount() == 2 and camera.missed_triggers == 2:
                break
            waiter.wait(0.001)
        assert core.getRemainingImageCount() == 2
        assert camera.missed_triggers == 2
    finally:
        camera.abort()
        core.stopSequenceAcquisition()


def test_make_safe_turns_lasers_off_and_closes_shutter(rig: Rig) -> None:
    core = rig.core
    core.setConfig("Channel", "561nm")
    core.setShutterOpen(True)
    rig.make_safe()
    assert core.getProperty("Lasers", "Laser 561") == "Off"
    assert not core.getShutterOpen()


def test_bad_rig_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "rig.json"
    bad.write_text(json.dumps({"camera": {"width": -5}, "lasers": {"colour": 1}}))
    with pytest.raises(RigError, match=r"camera\.width") as info:
        load_rig(bad)
    assert "lasers.colour" in str(info.value)


def test_rig_file_errors_are_worded_as_preset_errors(tmp_path: Path) -> None:
    """One wording for every file mmapp reads: "unknown field", indices in []."""
    bad = tmp_path / "rig.json"
    data = {"camera": {"bogus": 1}, "lasers": {"wavelengths_nm": [488, "x"]}}
    bad.write_text(json.dumps(data))
    with pytest.raises(RigError) as info:
        load_rig(bad)
    assert str(info.value) == (
        f"rig file {bad}: camera.bogus: unknown field; lasers.wavelengths_nm[1]: "
        "Input should be a valid integer"
    )
    assert "Extra inputs" not in str(info.value)


def test_rig_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="rig file not found"):
        load_rig(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RigError, match="not valid JSON"):
        load_rig(broken)
    with pytest.raises(RigError, match="Micro-Manager config not found"):
        load_rig(tmp_path / "scope.cfg")


def test_garbage_cfg_names_the_line_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    cfg = tmp_path / "scope.cfg"
    cfg.write_text("# a Micro-Manager config\n\ngarbage line here\n")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RigError) as info:
        load_rig(cfg)
    assert str(info.value) == (
        f"Micro-Manager config {cfg} failed to load at line 3 ('garbage line here'): "
        "unknown command 'garbage line here'"
    )
    said = caplog.text + capsys.readouterr().err
    assert "mmcore install" not in said and "compatible Micro-Manager" not in said


def test_missing_device_adapter_is_named_with_where_mmapp_looked(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = tmp_path / "scope.cfg"
    cfg.write_text("Device,Cam,NoSuchAdapter,Foo\n")
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("MICROMANAGER_PATH", raising=False)
    with pytest.raises(RigError) as info:
        load_rig(cfg)
    message = str(info.value)
    assert message.startswith(
        f"Micro-Manager config {cfg} failed to load at line 1 "
        "('Device,Cam,NoSuchAdapter,Foo'): "
        "device adapter 'NoSuchAdapter' (for device 'Cam', 'Foo') is not installed "
        "where mmapp looked (MICROMANAGER_PATH is not set; adapter search paths: "
    ), message
    assert "mmcore install" not in caplog.text
    monkeypatch.setenv("MICROMANAGER_PATH", str(tmp_path / "mm"))
    with pytest.raises(RigError, match="is not installed where mmapp looked") as info:
        load_rig(cfg)
    assert f"(MICROMANAGER_PATH={tmp_path / 'mm'}; adapter search paths: " in str(
        info.value
    )


def test_camera_override_validated() -> None:
    with pytest.raises(RigError, match="camera settings"):
        load_rig(width=0)


def test_the_simulated_buffer_size_comes_from_the_environment_unless_the_rig_sets_it(
    monkeypatch, tmp_path
):
    from mmapp.rig.spec import RigSpec
    from mmapp.sim.simulated_rig import SIM_BUFFER_ENV, simulated_buffer_mb

    monkeypatch.setenv(SIM_BUFFER_ENV, "64")
    assert simulated_buffer_mb(RigSpec()) == 64
    assert simulated_buffer_mb(RigSpec(circular_buffer_mb=512)) == 512
    monkeypatch.delenv(SIM_BUFFER_ENV)
    assert simulated_buffer_mb(RigSpec()) == 1024  # the rig file's default
    for bad, message in (("lots", "not a whole number"), ("8", "16 MB minimum")):
        monkeypatch.setenv(SIM_BUFFER_ENV, bad)
        with pytest.raises(RigError, match=message) as info:
            simulated_buffer_mb(RigSpec())
        assert SIM_BUFFER_ENV in str(info.value)


def test_the_ring_is_faulted_in_behind_the_rig_load_and_stopped_by_the_camera(
    monkeypatch,
):
    """Loading a rig does not wait for its ring's pages, and neither does the
    first sequence: it stops the faulting first (the zeroing must not run
    over frames; on a cold virtual machine waiting for it held Start for
    seconds), and its frames are intact."""
    from mmapp.rig import buffer

    def fill(job, pool) -> None:  # slower than any test: until cancelled
        pool.reshape(-1)[:4096].fill(0)
        assert job.cancelled.wait(30), "the prefault was not stopped"

    monkeypatch.setattr(buffer._Prefault, "_fill", fill)
    monkeypatch.setenv("MMAPP_SIM_BUFFER_MB", "64")
    rig = load_rig(width=64, height=48, exposure_ms=0.0)
    try:
        core = rig.core
        ring = core._seq_buffer
        job = buffer._FILLING[id(core)]  # its pages are being faulted in
        assert job.pool() is ring._pool and job.thread.is_alive()
        started = time.monotonic()
        core.startSequenceAcquisition(20, 0, True)
        assert time.monotonic() - started < 5  # not the 30 s the fill would take
        assert job.cancelled.is_set() and not job.thread.is_alive()
        assert id(core) not in buffer._FILLING
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 20:
            assert time.monotonic() < deadline, "frames did not come"
            if core.getRemainingImageCount():
                got.append(core.popNextImage())
            else:
                time.sleep(0.001)
        assert [read_stamp(img) for img in got] == list(range(20))
    finally:
        rig.close()


def test_a_replaced_ring_is_let_go_by_its_prefault(monkeypatch):
    """Sizing the buffer again (a rig file's size after the default) stops
    touching the old pool: its thread ends within a chunk."""
    from mmapp.rig import buffer, set_buffer_mb

    real_fill = buffer._Prefault._fill

    def fill(job, pool) -> None:  # the first (512 MB) pool: slow, until cancelled
        if pool.nbytes > 100 * 2**20:
            assert job.cancelled.wait(30), "the old pool's prefault was not cancelled"
            return
        real_fill(job, pool)

    monkeypatch.setattr(buffer._Prefault, "_fill", fill)
    monkeypatch.setenv("MMAPP_SIM_BUFFER_MB", "512")
    rig = load_rig(width=64, height=48, exposure_ms=0.0)
    try:
        first = buffer._FILLING[id(rig.core)]
        set_buffer_mb(rig.core, 32)
        assert first.cancelled.is_set()
        first.thread.join(10)
        assert not first.thread.is_alive()
        ring = rig.core._seq_buffer
        second = buffer._FILLING[id(rig.core)]
        assert second is not first and second.pool() is ring._pool
        assert buffer.wait_prefaulted(rig.core, 30)
        assert not ring._pool.any()  # every page touched (zeroed)
    finally:
        rig.close()


def test_closing_a_rig_stops_its_ring_prefault(monkeypatch):
    """A rig closed before any Start stops the thread touching its ring's
    pages (else it keeps the big pool alive and zeroes all of it)."""
    from mmapp.rig import buffer

    def fill(job, pool) -> None:  # slower than any test: until cancelled
        assert job.cancelled.wait(30), "the prefault was not stopped"

    monkeypatch.setattr(buffer._Prefault, "_fill", fill)
    monkeypatch.setenv("MMAPP_SIM_BUFFER_MB", "64")
    rig = load_rig(width=64, height=48, exposure_ms=0.0)
    core = rig.core
    job = buffer._FILLING[id(core)]
    assert job.thread.is_alive()
    rig.close()
    assert job.cancelled.is_set() and not job.thread.is_alive()
    assert id(core) not in buffer._FILLING
