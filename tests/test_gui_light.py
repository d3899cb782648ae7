"""In the window: what the operator sees lit is what Snap, Live and Start acquire.

The operator's light choice (a channel preset, lasers ticked in the device
panel) survives the safe state a run ends in, and comes back for the next
Snap, Live or Start; the saved pixels prove it.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

from pathlib import Path

import pytest
from helpers import open_dataset

from mmapp.engine.controller import RunOutcome
from mmapp.gui.acquisition_panel import MODE_FRAMES
from mmapp.gui.main_window import MainWindow
from mmapp.sim.frames import is_dark, is_lit

from test_gui import RUN_TIMEOUT_MS, _make_window  # isort: skip


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="")
    yield w
    w.close()


def _snap(qtbot, window: MainWindow):
    before = window.live_view.image
    window.acquisition.snap_button.click()
    qtbot.waitUntil(lambda: window.acquisition.state == "idle", timeout=5000)
    assert window.live_view.image is not before, window.last_error
    return window.live_view.image


def _saved_images(path: Path) -> list:
    ds = open_dataset(path)
    try:
        return [ds.read_image(**c) for c in ds.get_image_coordinates_list()]
    finally:
        ds.close()


def _laser_check(window: MainWindow, nm: int):
    return window.device_panel.laser_controls[f"Laser {nm}"][1]


def _count_frames(window: MainWindow, frames: int) -> None:
    """Start acquires this many frames."""
    window.acquisition.mode.setCurrentIndex(MODE_FRAMES)
    window.acquisition.frames.setValue(frames)


def _saved_last(window: MainWindow) -> list:
    """The images of the last run's dataset."""
    return _saved_images(window.last_result.dataset)


def _start_and_wait(qtbot, window: MainWindow) -> None:
    """Start, as the operator clicks it, and wait until the run has ended."""
    window.acquisition.start_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)


DARK_WARNING = "no light is on (no laser line ticked, no channel chosen)"


def _dark_warnings(window: MainWindow) -> int:
    return window.log_panel.text().count(DARK_WARNING)


def test_snap_is_lit_with_the_laser_ticked_and_dark_without(qtbot, window):
    check = _laser_check(window, 488)
    check.setChecked(True)  # as the operator clicks it
    assert window.rig.core.getProperty("Lasers", "Laser 488") == "On"
    assert is_lit(_snap(qtbot, window))
    assert not window.rig.core.getShutterOpen()  # auto-shutter closed again
    check.setChecked(False)
    assert is_dark(_snap(qtbot, window))


def test_snap_with_a_channel_preset_chosen_is_lit(qtbot, window):
    combo = window.device_panel.group_boxes["Channel"]
    combo.setCurrentText("561nm")
    combo.activated.emit(combo.currentIndex())
    assert window.rig.core.getCurrentConfig("Channel") == "561nm"
    assert is_lit(_snap(qtbot, window))


def test_a_laser_ticked_during_live_is_on_for_start(qtbot, window):
    """F6, tick 488 nm, Esc, F9: the acquisition is lit (it was all dark)."""
    view, acq = window.live_view, window.acquisition
    acq.live_button.click()
    qtbot.waitUntil(lambda: view.frames_drawn >= 2, timeout=RUN_TIMEOUT_MS)
    check = _laser_check(window, 488)
    check.setChecked(True)
    drawn = view.frames_drawn
    qtbot.waitUntil(
        lambda: view.frames_drawn > drawn + 2 and is_lit(view.image),
        timeout=RUN_TIMEOUT_MS,
    )
    window.stop()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=5000)
    # the run ended safe; the panel still shows the operator's choice
    assert window.rig.core.getProperty("Lasers", "Laser 488") == "Off"
    assert check.isChecked() and "off after the run" in check.text()
    _count_frames(window, 20)
    _start_and_wait(qtbot, window)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    images = _saved_images(result.dataset)
    assert len(images) == 20
    assert all(is_lit(img) for img in images)
    assert _dark_warnings(window) == 0  # lit: no warning
    assert window.rig.core.getProperty("Lasers", "Laser 488") == "Off"  # safe again


def test_a_laser_unticked_after_a_run_stays_off(qtbot, window):
    check = _laser_check(window, 488)
    check.setChecked(True)
    _count_frames(window, 5)
    _start_and_wait(qtbot, window)
    assert all(is_lit(img) for img in _saved_last(window))
    assert _dark_warnings(window) == 0
    check.setChecked(False)  # the operator's new choice: no light
    assert check.text() == "488 nm"
    _start_and_wait(qtbot, window)
    assert all(is_dark(img) for img in _saved_last(window))
    # dark frames may be wanted (a background): saved, but said in the log
    assert window.last_result.outcome is RunOutcome.COMPLETED
    assert _dark_warnings(window) == 1
    assert "the frames will be dark" in window.log_panel.text()


def test_selftest_fails_when_frames_come_out_dark(qtbot, monkeypatch, capsys):
    """A rig whose light never reaches the sample must fail the self-test."""
    from mmapp.gui import selftest
    from mmapp.sim.state import SimRigState

    monkeypatch.setattr(SimRigState, "light_level", lambda self, *a, **k: 0.0)
    assert selftest.run_selftest() == 1
    err = capsys.readouterr().err
    assert "FAILED: dark frames with 488 nm on in: Snap, Live" in err


def test_a_run_that_leaves_the_rig_unsafe_is_shown_as_such(qtbot, window, monkeypatch):
    rig = window.rig

    def broken() -> None:
        raise OSError("laser controller not answering")

    monkeypatch.setattr(rig.lasers, "all_off", broken)
    acq = window.acquisition
    _count_frames(window, 5)
    _start_and_wait(qtbot, window)
    assert window.last_result.outcome is RunOutcome.UNSAFE
    title, text = window.last_error
    assert title == "THE RIG IS NOT SAFE"
    assert "lasers not switched off (laser controller not answering)" in text
    assert "#c62828" in acq.status.styleSheet()
    assert acq.status.text().startswith("THE RIG WAS NOT MADE SAFE")
    monkeypatch.undo()
    window.make_safe()  # Rig > Make safe: works again, the alarm stays until a run
    _start_and_wait(qtbot, window)
    assert window.last_result.outcome is RunOutcome.COMPLETED
    assert acq.status.styleSheet() == ""


def test_a_dataset_keeps_the_lasers_ticked_and_a_rerun_lights_the_same(
    qtbot, window, tmp
):
    """Channel 488nm plus 561 nm ticked: the dataset's preset holds both, and
    `preset from-dataset` + acquire give the same pixels (it gave 488 only)."""
    import numpy as np

    from mmapp.cli import main
    from mmapp.engine.preset_run import preset_from_dataset
    from mmapp.presets import save_preset

    combo = window.device_panel.group_boxes["Channel"]
    combo.setCurrentText("488nm")
    combo.activated.emit(combo.currentIndex())
    _laser_check(window, 561).setChecked(True)
    _count_frames(window, 3)
    _start_and_wait(qtbot, window)
    first = _saved_last(window)
    assert len(first) == 3 and all(is_lit(img) for img in first)
    preset = preset_from_dataset(window.last_result.dataset)
    props = {(p.device, p.property): p.value for p in preset.devices.properties}
    assert props[("Lasers", "Laser 561")] == "On"  # 488 nm: the Channel preset
    assert preset.devices.config_groups == {"Channel": "488nm"}
    again = tmp / "again.mmpreset"
    save_preset(preset, again)
    out = tmp / "rerun"
    assert main(["acquire", str(again), "--out", str(out)]) == 0
    (dataset,) = out.iterdir()
    second = _saved_images(dataset)
    assert len(second) == 3
    for a, b in zip(first, second, strict=True):  # stamps aside, the same light
        np.testing.assert_array_equal(np.asarray(a)[1:], np.asarray(b)[1:])


def test_the_dark_warning_reads_the_laser_ticks_where_the_rig_cannot_tell(
    qtbot, window
):
    """A real rig has no light check of its own: the window goes by the laser
    lines ticked in the device panel (and the channel preset chosen)."""
    window.rig.light_check = None  # as a rig file's rig
    _count_frames(window, 3)
    _start_and_wait(qtbot, window)
    assert all(is_dark(img) for img in _saved_last(window))
    assert _dark_warnings(window) == 1
    _laser_check(window, 561).setChecked(True)
    _start_and_wait(qtbot, window)
    assert all(is_lit(img) for img in _saved_last(window))
    assert _dark_warnings(window) == 1  # ticked: no second warning
