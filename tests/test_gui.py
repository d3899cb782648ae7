"""The main window on the simulated rig, clicked through with pytest-qt (offscreen).

Every test points QSettings at tmp files and saves under tmp: nothing is left
behind. Waiting is qtbot.waitUntil on real state, never a fixed sleep.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH, open_dataset, read_all, run_mmapp
from PyQt6.QtCore import Qt

from mmapp.engine.controller import RunOutcome
from mmapp.gui.acquisition_panel import MODE_FRAMES, MODE_LOOP, MODE_MDA
from mmapp.gui.main_window import MainWindow
from mmapp.gui.settings import AppSettings
from mmapp.sim.frames import read_stamp

SIM = {"width": WIDTH, "height": HEIGHT, "exposure_ms": 1.0}
RUN_TIMEOUT_MS = 20_000


def _make_window(qtbot, tmp: Path, **kw) -> MainWindow:
    settings = AppSettings.at(tmp / "settings.ini")
    if not (tmp / "settings.ini").exists():
        settings.save_dir = tmp / "data"
    window = MainWindow(settings, sim_camera=SIM, restore_layout=False, **kw)
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="")
    yield w
    w.close()


def _run_and_wait(qtbot, window: MainWindow) -> None:
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)


def _frames_written(window: MainWindow) -> int:
    snap = window.controller.stats()
    return snap.frames_written if snap is not None else 0


def _frames_in(window: MainWindow) -> int:
    snap = window.controller.stats()
    return snap.frames_in if snap is not None else 0


def _assert_safe(window: MainWindow) -> None:
    core = window.rig.core
    assert not core.isSequenceRunning()
    assert not core.getShutterOpen()
    for nm in (405, 488, 561, 640):
        assert core.getProperty("Lasers", f"Laser {nm}") == "Off"


def test_title_and_hook(window):
    assert window.windowTitle() == "mmapp — Simulated OPM rig — untitled"
    window.set_preset_name("opm-488")
    assert window.windowTitle() == "mmapp — Simulated OPM rig — opm-488"
    assert all(a.isEnabled() for a in window.preset_actions.values())


def test_snap_shows_one_frame(qtbot, window):
    window.acquisition.snap_button.click()
    qtbot.waitUntil(lambda: window.live_view.image is not None, timeout=5000)
    qtbot.waitUntil(lambda: window.acquisition.state == "idle", timeout=5000)
    assert window.live_view.image.shape == (HEIGHT, WIDTH)
    assert window.acquisition.snap_button.isEnabled()
    assert window.last_error is None
    # the cursor readout names the pixel under it
    image = window.live_view.image
    assert window.live_view.pixel_text_at(5, 7) == f"x 5, y 7: {image[7, 5]}"


def test_live_displays_frames_and_writes_nothing(qtbot, window, tmp):
    view = window.live_view
    window.acquisition.live_button.click()
    assert window.run_kind == "live"
    assert window.acquisition.stop_button.isEnabled()
    qtbot.waitUntil(lambda: view.frames_drawn >= 10, timeout=RUN_TIMEOUT_MS)
    assert view.image.shape == (HEIGHT, WIDTH)
    window.acquisition.live_button.click()  # Live off
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    assert "live stopped" in window.acquisition.status.text()
    assert not (tmp / "data").exists() or not any((tmp / "data").iterdir())
    _assert_safe(window)


def test_live_keeps_up_at_1000_frames_per_second(qtbot, window):
    """The frame on screen is at most a few display ticks behind the camera."""
    window.rig.core.setExposure(1.0)  # about 1000 frames/s from the simulated camera
    view = window.live_view
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: view.camera_fps > 500, timeout=RUN_TIMEOUT_MS)
    lags = []
    for _ in range(5):
        drawn = view.frames_drawn
        qtbot.waitUntil(lambda d=drawn: view.frames_drawn > d, timeout=2000)
        received = window.controller.stats().frames_in
        lags.append(received - 1 - read_stamp(view.image))
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    # 1000 frames/s and a 60 Hz display: ~17 frames per tick; allow a few ticks
    assert max(lags) < 200, lags


def test_a_camera_setting_changed_during_live_restarts_live(qtbot, window):
    view, panel = window.live_view, window.device_panel
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: view.frames_drawn >= 3, timeout=5000)
    first = window.controller.handler
    assert panel.exposure.isEnabled()
    panel.exposure.setValue(2.5)
    qtbot.waitUntil(
        lambda: window.run_kind == "live" and window.controller.handler is not first,
        timeout=5000,
    )
    assert window.rig.core.getExposure() == 2.5
    qtbot.waitUntil(lambda: _frames_in(window) >= 3, timeout=5000)
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    assert window.last_error is None


def test_start_n_frames_writes_the_dataset(qtbot, window):
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_FRAMES)
    acq.frames.setValue(40)
    _run_and_wait(qtbot, window)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert (result.frames_acquired, result.frames_saved, result.frames_lost) == (
        40,
        40,
        0,
    )
    frames = read_all(result.dataset)
    assert sorted(frames) == list(range(40))
    assert all(read_stamp(img) == t for t, img in frames.items())
    ds = open_dataset(result.dataset)
    try:
        assert ds.summary_metadata["mmapp"]["command"] == "gui"
        assert ds.summary_metadata["mmapp"]["frames"] == 40
    finally:
        ds.close()
    assert acq.readouts["frames"].text() == "40 / 40"
    assert "completed" in acq.status.text()
    _assert_safe(window)


def test_stop_ends_a_loop_run_and_keeps_its_frames(qtbot, window):
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_LOOP)
    acq.start_button.click()
    qtbot.waitUntil(
        lambda: (
            window.controller.stats() is not None
            and window.controller.stats().frames_written >= 20
        ),
        timeout=RUN_TIMEOUT_MS,
    )
    assert acq.progress.maximum() == 0  # busy bar: runs until Stop
    acq.stop_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    result = window.last_result
    assert result.outcome is RunOutcome.STOPPED
    assert result.stop_latency_s is not None and result.stop_latency_s < 1.0
    assert result.frames_lost == 0
    assert len(read_all(result.dataset)) == result.frames_saved >= 20
    _assert_safe(window)


def test_escape_and_menu_shortcuts(qtbot, window):
    actions = window.actions_by_name
    assert {k: a.shortcut().toString() for k, a in actions.items()} == {
        "snap": "F5",
        "live": "F6",
        "start": "F9",
        "stop": "Esc",
    }
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    actions["start"].trigger()
    assert window.run_kind == "acquire"
    qtbot.waitUntil(lambda: _frames_written(window) >= 5, timeout=5000)
    actions["stop"].trigger()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    assert window.last_result.outcome is RunOutcome.STOPPED


def test_keys_start_and_stop(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.run_kind == "acquire"
    qtbot.waitUntil(lambda: _frames_written(window) >= 5, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    assert window.last_result.outcome is RunOutcome.STOPPED


def test_stop_while_the_camera_waits_for_a_trigger(qtbot, window):
    panel = window.device_panel
    panel.trigger.setCurrentText("External")  # through the device panel
    assert window.rig.core.getProperty("Camera", "TriggerMode") == "External"
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.start_button.click()
    assert window.controller.wait_camera_armed(10)
    window.acquisition.stop_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=3000)
    result = window.last_result
    assert result.outcome is RunOutcome.STOPPED
    assert result.frames_saved == 0 and result.dataset is None
    assert result.stop_latency_s is not None and result.stop_latency_s < 0.5
    _assert_safe(window)


def test_start_during_live_stops_live_then_acquires(qtbot, window):
    acq = window.acquisition
    acq.live_button.click()
    qtbot.waitUntil(lambda: window.live_view.frames_drawn >= 3, timeout=5000)
    acq.mode.setCurrentIndex(MODE_FRAMES)
    acq.frames.setValue(15)
    acq.start_button.click()
    qtbot.waitUntil(
        lambda: window.last_result is not None and window.run_kind is None,
        timeout=RUN_TIMEOUT_MS,
    )
    assert window.last_result.outcome is RunOutcome.COMPLETED
    assert window.last_result.frames_saved == 15


def test_channel_preset_is_switched_back_on_for_the_next_run(qtbot, window):
    panel = window.device_panel
    panel.group_boxes["Channel"].setCurrentText("488nm")
    panel._set_config("Channel", "488nm")  # what choosing it in the combo does
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_FRAMES)
    acq.frames.setValue(3)
    _run_and_wait(qtbot, window)
    _assert_safe(window)  # the run ended with lasers off ...
    _run_and_wait(qtbot, window)  # ... and the next one lit the sample again
    frames = read_all(window.last_result.dataset)
    assert all(img.max() > 200 for img in frames.values())


def test_mda_time_z_channels(qtbot, window):
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_MDA)
    acq.timepoints.setValue(2)
    acq.z_enabled.setChecked(True)
    acq.z_range.setValue(2.0)
    acq.z_step.setValue(1.0)
    for i in (1, 2):  # 488nm, 561nm
        acq.channels.item(i).setCheckState(Qt.CheckState.Checked)
    _run_and_wait(qtbot, window)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    ds = open_dataset(result.dataset)
    try:
        coords = ds.get_image_coordinates_list()
        assert len(coords) == 2 * 3 * 2 == result.frames_saved
        assert {c["channel"] for c in coords} == {"488nm", "561nm"}
        assert {c["z"] for c in coords} == {0, 1, 2}
    finally:
        ds.close()


def test_a_second_run_never_overwrites(qtbot, window, tmp):
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_FRAMES)
    acq.frames.setValue(3)
    acq.name_template.setText("same")
    assert acq.preview.text().startswith(f"Next dataset: {tmp / 'data' / 'same_1'}")
    _run_and_wait(qtbot, window)
    first = window.last_result.dataset
    assert acq.preview.text().startswith(f"Next dataset: {tmp / 'data' / 'same_2'}")
    _run_and_wait(qtbot, window)
    second = window.last_result.dataset
    assert (first.name, second.name) == ("same_1", "same_2")
    assert len(read_all(first)) == len(read_all(second)) == 3


@pytest.mark.parametrize(
    ("template", "folder_is_file", "expected"),
    [
        ("{nope}_x", False, "not valid"),
        ("a/b", False, "a folder name cannot"),
        ("ok", True, "is a file"),
    ],
)
def test_bad_save_settings_are_refused_with_a_message(
    qtbot, window, tmp, template, folder_is_file, expected
):
    acq = window.acquisition
    acq.name_template.setText(template)
    if folder_is_file:
        (tmp / "afile").write_text("x")
        acq.save_dir.setText(str(tmp / "afile"))
    acq.start_button.click()
    assert window.run_kind is None
    title, text = window.last_error
    assert title == "Cannot start" and expected in text
    assert expected in window.log_panel.text()
    assert window.acquisition.start_button.isEnabled()


def test_bad_cfg_gives_a_message_and_the_rig_stays(qtbot, window, tmp):
    bad = tmp / "broken.cfg"
    bad.write_text("Device,Nope,NoSuchAdapter,Nope\nthis is not a config\n")
    rig = window.rig
    assert window.open_rig(str(bad)) is False
    title, text = window.last_error
    assert title == f"Could not load {bad}"
    assert "failed to load" in text
    assert window.rig is rig and window.windowTitle().startswith("mmapp — Simulated")
    window.acquisition.snap_button.click()  # still usable
    qtbot.waitUntil(lambda: window.live_view.image is not None, timeout=5000)


def test_a_cfg_without_a_camera_loads_and_says_what_it_cannot_do(qtbot, window, tmp):
    cfg = tmp / "no_camera.cfg"
    cfg.write_text("# no devices\nProperty,Core,Initialize,1\n")
    assert window.open_rig(str(cfg)) is True
    assert window.windowTitle() == "mmapp — no_camera — untitled"
    assert window.device_panel.camera_label.text() == "none"
    window.acquisition.snap_button.click()
    assert window.last_error == ("Cannot snap", "this rig has no camera device")
    window.acquisition.live_button.click()
    assert window.last_error[0] == "Cannot start Live"
    window.acquisition.start_button.click()
    assert window.last_error[0] == "Cannot start"
    assert window.run_kind is None and window.acquisition.state == "idle"
    assert not window.acquisition.live_button.isChecked()


def test_camera_fault_is_a_message_not_a_crash(qtbot, window):
    window.rig.core.setProperty("Camera", "FaultAfterFrames", 10)
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    _run_and_wait(qtbot, window)
    assert window.last_result.outcome is RunOutcome.ERROR
    title, text = window.last_error
    assert title == "Acquisition ended with an error"
    assert "simulated sensor fault" in text
    _assert_safe(window)


def test_property_browser_filters_and_edits(qtbot, window):
    table = window.device_panel.properties
    table.filter.setText("laser 488")
    assert table.visible_rows() == [
        ("Lasers", "Laser 488"),
        ("Lasers", "Laser 488 Power %"),
    ]
    row = table._rows.index(("Lasers", "Laser 488 Power %"))
    table.table.item(row, 2).setText("12.5")
    assert float(window.rig.core.getProperty("Lasers", "Laser 488 Power %")) == 12.5
    table.table.item(row, 2).setText("250")  # outside 0..100
    assert window.last_error[0] == "Setting Lasers.Laser 488 Power % to '250' failed"
    assert float(window.rig.core.getProperty("Lasers", "Laser 488 Power %")) == 12.5
    assert table.table.item(row, 2).text() == "12.5"  # shows the device's value


def test_device_panel_drives_the_core(qtbot, window):
    panel, core = window.device_panel, window.rig.core
    panel.exposure.setValue(3.5)
    assert core.getExposure() == 3.5
    panel.z_step.setValue(2.0)
    panel._jog_z(+1)
    assert core.getPosition() == pytest.approx(2.0)
    panel._jog_xy(1, -1)
    assert core.getXYPosition() == pytest.approx((10.0, -10.0))
    check, power = panel.laser_controls["Laser 561"][1:]
    check.setChecked(True)
    power.setValue(30.0)
    assert core.getProperty("Lasers", "Laser 561") == "On"
    assert float(core.getProperty("Lasers", "Laser 561 Power %")) == 30.0
    panel._set_roi()  # the simulated camera has no ROI: a message, values unchanged
    assert window.last_error[0] == "Setting the ROI failed"
    assert "does not support setting ROI" in window.last_error[1]


def test_settings_remember_rig_layout_and_folder(qtbot, tmp):
    rig_file = tmp / "small.json"
    rig_file.write_text(
        json.dumps({"name": "Bench rig", "camera": SIM, "circular_buffer_mb": 64})
    )
    first = _make_window(qtbot, tmp, rig_path=str(rig_file))
    assert first.windowTitle() == "mmapp — Bench rig — untitled"
    first.docks["log"].hide()
    first.acquisition.name_template.setText("{rig}_{date}")
    first.close()
    again = _make_window(qtbot, tmp)  # no rig given: the last one reopens
    again._restore_layout()
    try:
        assert again.rig.name == "Bench rig"
        assert again.docks["log"].isHidden()
        assert again.acquisition.save_dir.text() == str(tmp / "data")
        assert again.acquisition.name_template.text() == "{rig}_{date}"
    finally:
        again.close()


def test_a_last_rig_that_fails_falls_back_to_the_simulated_one(qtbot, tmp):
    settings = AppSettings.at(tmp / "settings.ini")
    settings.save_dir = tmp / "data"
    settings.last_rig = str(tmp / "gone.cfg")
    settings.sync()
    window = _make_window(qtbot, tmp)
    try:
        assert window.rig is not None and window.rig.name == "Simulated OPM rig"
        assert window.last_error == (
            f"Could not load {tmp / 'gone.cfg'}",
            f"Micro-Manager config not found: {tmp / 'gone.cfg'}",
        )
        assert window.settings.last_rig == ""  # the simulated rig next time
    finally:
        window.close()


def test_closing_during_an_acquisition_asks_first(qtbot, window, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    window.confirm_close = True
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.start_button.click()
    qtbot.waitUntil(lambda: _frames_written(window) >= 5, timeout=5000)
    window.close()  # No: the run goes on
    assert window.isVisible() and window.run_kind == "acquire"
    window.close()  # Yes: stopped; it quits once the dataset is finished
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert window.rig is None
    assert answers == []
    datasets = list((window.settings.save_dir).iterdir())
    assert len(datasets) == 1 and len(read_all(datasets[0])) >= 5


def test_about_lists_versions(window):
    box = window.show_about()
    for name in ("mmapp", "Qt", "pymmcore-plus", "ndstorage", "pyqtgraph"):
        assert name in box.text()
    box.close()


def test_live_view_draws_only_new_frames(qtbot, tmp):
    from mmapp.gui.live_view import LiveView

    frames = [None]

    class F:
        def __init__(self, i: int) -> None:
            self.image = np.full((HEIGHT, WIDTH), i, dtype=np.uint16)

    view = LiveView(lambda: frames[0], lambda: None)
    qtbot.addWidget(view)
    with qtbot.waitExposed(view):  # nothing is drawn into a window not on screen
        view.show()
    view.timer.stop()  # ticks by hand
    view.poll()
    assert view.frames_drawn == 0
    frames[0] = F(1)
    view.poll()
    view.poll()  # the same frame is not drawn twice
    assert view.frames_drawn == 1
    for i in range(2, 1000):  # a thousand frames between two ticks: one draw
        frames[0] = F(i)
    view.poll()
    assert view.frames_drawn == 2
    assert view.image[0, 0] == 999
    # a frame that owns its pixels (DataHandler.latest()'s copy) is kept as
    # it is; a view into a ring buffer is copied before the slot is reused
    assert view.image is frames[0].image
    ring = np.zeros((2, HEIGHT, WIDTH), np.uint16)
    slot = F(0)
    slot.image = ring[1]
    ring[1] = 7
    frames[0] = slot
    view.poll()
    ring[1] = 8  # the camera reuses the slot
    assert view.frames_drawn == 3 and view.image[5, 5] == 7


def test_selftest_command_exits_zero():
    proc = run_mmapp("--selftest", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mmapp selftest: ok" in proc.stdout


def test_selftest_reports_the_reason_on_failure(qtbot, monkeypatch, capsys):
    from mmapp.gui import selftest

    monkeypatch.setattr(selftest, "check_dataset", lambda *a: "index is broken")
    assert selftest.run_selftest() == 1
    assert "FAILED: index is broken" in capsys.readouterr().err


def test_gui_without_a_display_says_so():
    env = {k: v for k, v in os.environ.items()}
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mmapp"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 1
    assert "no display" in proc.stderr


def test_live_view_yields_when_the_pipeline_is_behind(qtbot):
    from mmapp.gui.live_view import LiveView

    class F:
        def __init__(self) -> None:
            self.image = np.zeros((HEIGHT, WIDTH), dtype=np.uint16)

    info = [(0, 0.0)]
    view = LiveView(F, lambda: info[0])  # a new frame at every tick
    qtbot.addWidget(view)
    with qtbot.waitExposed(view):
        view.show()
    view.timer.stop()
    view.poll()
    view.poll()
    assert view.frames_drawn == 2  # no pressure: every tick draws
    info[0] = (100, 0.9)  # queue 90 % full
    view.poll()
    view.poll()  # within 1 / BUSY_DISPLAY_HZ of the last draw: skipped
    assert view.frames_drawn == 2
    assert view.pressure == 0.9
    info[0] = None  # the run ended: no pressure
    view.poll()
    assert view.frames_drawn == 3


def test_bench_gui_runs_and_reports_json(qtbot, tmp, capsys):
    from mmapp.cli import main

    args = "bench gui --size 64 --pairs 1 --seconds 0.5 --rate 500 --json --dir"
    code = main([*args.split(), str(tmp)])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {r["live_view"] for r in out["runs"]} == {"shown", "hidden"}
    assert out["frames_lost"] == 0 and out["ratio"] > 0
    assert all(r["frames"] > 0 for r in out["runs"])
    # the camera's own rate, first frame to last: near the pace asked
    for run in out["runs"]:
        assert 0.5 * 500 < run["camera_fps"] < 1.5 * 500
    assert set(out["pace_kept"]) == {"shown", "hidden"}
    assert list(tmp.iterdir()) == []  # its datasets and settings are removed
