"""Quitting never cuts a dataset short or unloads a core still in use."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

import threading

import pytest
from helpers import open_dataset
from PyQt6.QtWidgets import QMessageBox

from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.engine.controller import RunOutcome
from mmapp.gui import main_window as main_window_module
from mmapp.gui.acquisition_panel import MODE_LOOP
from mmapp.gui.main_window import MainWindow

from test_gui import _make_window  # isort: skip


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="")
    yield w
    w.shutdown()


def _slow_disk(monkeypatch) -> threading.Event:
    gate = threading.Event()
    real_write = NDTiffSink._write  # every image goes through it (put, put_run)

    def write(self, run, *, strict):
        assert gate.wait(60)
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", write)
    return gate


def _start_loop(qtbot, window: MainWindow) -> None:
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(
        lambda: (s := window.controller.stats()) is not None and s.frames_in >= 5,
        timeout=10_000,
    )


def test_quitting_the_app_with_a_slow_disk_finishes_the_dataset_first(
    qtbot, window, monkeypatch
):
    """The app's close stops the run and waits, responsive, for the dataset:
    it used to unload the core after 15 s and exit under the writer."""
    gate = _slow_disk(monkeypatch)
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes
    )
    window.confirm_close = True  # as the app sets it
    _start_loop(qtbot, window)
    controller, rig = window.controller, window.rig
    window.close()
    assert window.isVisible()  # not yet: the writer is still busy
    assert window.rig is rig and "quitting" in window.acquisition.status.text()
    assert controller.running
    gate.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20_000)
    result = controller.wait(0)
    assert result.outcome is RunOutcome.STOPPED, result.message
    assert result.frames_lost == 0 and result.frames_saved == result.frames_acquired
    ds = open_dataset(result.dataset)
    try:
        assert len(ds.get_image_coordinates_list()) == result.frames_saved
    finally:
        ds.close()
    assert window.rig is None  # unloaded only after the run ended


def test_shutdown_waits_for_the_run_however_long_it_takes(qtbot, window, monkeypatch):
    gate = _slow_disk(monkeypatch)
    monkeypatch.setattr(main_window_module, "CLOSE_WAIT_S", 0.05)
    _start_loop(qtbot, window)
    controller = window.controller
    waited: list[str] = []

    class OpenAfterTwoWarnings:  # the disk gets going after two warnings
        def __call__(self, record) -> bool:
            if "has not ended" in record.getMessage():
                waited.append(record.getMessage())
                if len(waited) == 2:
                    gate.set()
            return True

    log = main_window_module.logger
    watcher = OpenAfterTwoWarnings()
    log.addFilter(watcher)
    try:
        window.shutdown()
    finally:
        log.removeFilter(watcher)
    assert len(waited) >= 2
    result = controller.wait(0)
    assert result is not None and result.outcome is RunOutcome.STOPPED
    assert result.frames_saved == result.frames_acquired


def test_shutdown_waits_for_a_snap_in_progress(qtbot, window, monkeypatch):
    camera = window.rig.camera
    entered, gate = threading.Event(), threading.Event()
    real_start = camera.start_sequence
    done: list[str] = []

    def slow_start(n, get_buffer):
        entered.set()
        assert gate.wait(10)
        for item in real_start(n, get_buffer):
            done.append("frame")  # a frame was taken (a snap takes one, then stops)
            yield item

    monkeypatch.setattr(camera, "start_sequence", slow_start)
    rig = window.rig
    real_close = rig.close

    def close() -> None:
        done.append("rig closed")
        real_close()

    monkeypatch.setattr(rig, "close", close)
    window.acquisition.snap_button.click()
    assert entered.wait(5)
    threading.Timer(0.5, gate.set).start()  # the camera answers a bit later
    window.shutdown()
    assert done == ["frame", "rig closed"]  # the snap ended before the unload
