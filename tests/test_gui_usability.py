"""Usability of the main window (issue 11): wheel, contrast, log, panels, layout.

pytest-qt, offscreen, real widgets; waiting is qtbot.waitUntil on real state.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

from datetime import datetime, timedelta

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH

from mmapp.gui.live_view import LiveView
from mmapp.sim.frames import DARK_LEVEL


def _stamped(image: np.ndarray, value: int = 60000) -> np.ndarray:
    """`image` with a huge value in its first 4 pixels (the simulated camera's
    frame stamp; a hot pixel on a real camera)."""
    image.reshape(-1)[:4] = value
    return image


@pytest.fixture
def live_view(qtbot) -> LiveView:
    view = LiveView(lambda: None, lambda: None)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.timer.stop()  # frames are shown by hand
    return view


@pytest.fixture
def window(qtbot, tmp):
    from mmapp.gui.main_window import MainWindow
    from mmapp.gui.settings import AppSettings

    settings = AppSettings.at(tmp / "settings.ini")
    settings.save_dir = tmp / "data"
    w = MainWindow(
        settings,
        sim_camera={"width": WIDTH, "height": HEIGHT, "exposure_ms": 1.0},
        restore_layout=False,
        rig_path="",
    )
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


@pytest.mark.parametrize("shape", [(512, 512), (HEIGHT, WIDTH), (2048, 2048)])
def test_auto_contrast_of_a_dark_frame_ignores_the_stamp(live_view, shape):
    dark = _stamped(np.full(shape, DARK_LEVEL, np.uint16))
    live_view.show_image(dark)  # the first frame (as a Snap)
    lo, hi = live_view.levels
    assert lo == DARK_LEVEL and hi <= DARK_LEVEL + 1
    assert live_view.histogram.getLevels() == pytest.approx((lo, hi))
    # the dark frame shows dark, not white
    shown = live_view._shown
    assert shown[shown.shape[0] // 2, shown.shape[1] // 2] == 0xFF000000  # black
    h_lo, h_hi = live_view.histogram_view_range
    assert h_lo >= 0 and h_hi < 200  # the stamp does not stretch the histogram


def test_histogram_follows_the_levels_not_the_stamp(qtbot, live_view):
    rng = np.random.default_rng(1)
    for _ in range(3):  # as in Live: frame after frame
        image = rng.integers(100, 301, (512, 512)).astype(np.uint16)
        live_view.show_image(_stamped(image))
    live_view._refresh_histogram()
    lo, hi = live_view.levels
    assert 100 <= lo < 102 and 298 < hi <= 300
    assert live_view.histogram.getLevels() == pytest.approx((lo, hi))
    h_lo, h_hi = live_view.histogram_view_range
    assert h_lo <= lo and hi <= h_hi < 400  # around the levels, not 0-60000
    x, counts = live_view.histogram.plot.getData()
    assert x.max() < 400 and counts.sum() > 0
    # auto contrast once after fixed levels: the same robust levels
    live_view.auto_continuous.setChecked(False)
    live_view.histogram.setLevels(0, 60000)
    assert live_view.levels == (0, 60000)
    live_view.auto_contrast()
    assert live_view.levels == pytest.approx((lo, hi), abs=2)
    assert live_view.histogram_view_range[1] < 400


# --- 10: the wheel scrolls forms, a field changes only with focus ---------------------


def _wheel(widget, steps: int = -1) -> None:
    """One wheel notch (down by default) over `widget`, delivered as Qt delivers
    the mouse's: to the widget, then to each parent in turn while it is ignored
    (QApplication propagates only spontaneous wheel events, which a test cannot
    make, so the loop is here)."""
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    centre = QPoint(widget.width() // 2, widget.height() // 2)
    glob = widget.mapToGlobal(centre)
    target = widget
    while target is not None:
        event = QWheelEvent(
            QPointF(target.mapFromGlobal(glob)),
            QPointF(glob),
            QPoint(0, 0),
            QPoint(0, 120 * steps),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(target, event)
        if event.isAccepted() or target.isWindow():
            return
        target = target.parentWidget()


@pytest.fixture
def designer(qtbot):
    from mmapp.daq.program import WaveformProgram
    from mmapp.gui.designer import WaveformDesigner
    from mmapp.resources import default_rig_file
    from mmapp.rig import read_rig_spec

    program = read_rig_spec(default_rig_file()).program
    d = WaveformDesigner(program or WaveformProgram())
    qtbot.addWidget(d)
    d.resize(1000, 300)  # short: the form scrolls
    d.show()
    qtbot.waitExposed(d)
    return d


def test_wheel_over_an_unfocused_designer_combo_scrolls_the_form(qtbot, designer):
    from PyQt6.QtWidgets import QScrollArea

    shape = designer.form.fields.widgets[("analog", 0, "shape", "kind")]
    assert shape.currentText() == "sawtooth"
    scroll = designer.findChild(QScrollArea)
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the form is taller than the dock
    bar.setValue(0)
    designer.apply_button.setFocus()
    assert not shape.hasFocus()
    _wheel(shape)
    assert shape.currentText() == "sawtooth"  # not a triangle by itself
    assert designer.draft["analog"][0]["shape"]["kind"] == "sawtooth"
    assert not designer.undo_stack.canUndo()
    assert bar.value() > 0  # the form scrolled instead
    # with focus (clicked or tabbed into) the wheel edits the field, as in Qt
    shape = designer.form.fields.widgets[("analog", 0, "shape", "kind")]
    shape.setFocus()
    qtbot.waitUntil(shape.hasFocus)
    _wheel(shape)
    assert designer.draft["analog"][0]["shape"]["kind"] == "triangle"


def test_every_spin_and_combo_box_in_the_panels_ignores_an_unfocused_wheel(
    qtbot, window
):
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox

    window.acquisition.mode.setCurrentIndex(2)  # the MDA page: more spin boxes
    window.acquisition.z_enabled.setChecked(True)
    panels = (
        window.device_panel.controls,
        window.device_panel.properties.table,
        window.acquisition,
        window.designer.form,
    )
    fields = [
        w
        for panel in panels
        for w in panel.findChildren(QAbstractSpinBox) + panel.findChildren(QComboBox)
        if w.isEnabled()
    ]
    assert len(fields) > 15
    window.live_view.setFocus()
    for w in fields:
        assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus, w.objectName()
        before = w.value() if isinstance(w, QAbstractSpinBox) else w.currentText()
        for steps in (-1, 1):
            _wheel(w, steps)
        after = w.value() if isinstance(w, QAbstractSpinBox) else w.currentText()
        assert after == before, (w.objectName(), before, after)


# --- 13: log, next dataset, statistics, progress ------------------------------------


def test_the_log_follows_new_lines_unless_scrolled_up(qtbot):
    import logging

    from mmapp.gui import log_panel
    from mmapp.gui.log_panel import LogPanel

    panel = LogPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 150)
    panel.show()
    bar = panel.view.verticalScrollBar()
    for i in range(100):
        panel.append(f"line {i}")
    assert bar.maximum() > 50
    assert bar.value() == bar.maximum()  # the newest line is in view
    assert panel.following()
    bar.setValue(10)  # the operator scrolls up to read
    for i in range(100, 150):
        panel.append(f"line {i}", logging.WARNING)
    assert bar.value() == 10 and not panel.following()  # it stays put
    bar.setValue(bar.maximum())  # back at the bottom: it follows again
    panel.append("newest")
    assert bar.value() == bar.maximum() and panel.following()
    # through the logger, from another thread, as the app logs
    import threading

    panel.attach()
    try:
        worker = threading.Thread(
            target=lambda: logging.getLogger("mmapp.test").info("from a thread")
        )
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: panel.text().endswith("from a thread"))
        assert bar.value() == bar.maximum()
    finally:
        panel.detach()
    # a full log drops its oldest line: a reader's place moves with the text
    panel.view.clear()
    for i in range(log_panel.MAX_LINES):
        panel.append(f"old {i}")
    bar.setValue(100)
    first = panel.view.cursorForPosition(panel.view.rect().topLeft()).block().text()
    panel.append("one more")
    assert panel.view.document().blockCount() == log_panel.MAX_LINES
    assert bar.value() == 99
    assert (
        panel.view.cursorForPosition(panel.view.rect().topLeft()).block().text()
        == first
    )


@pytest.fixture
def clock(monkeypatch) -> list[datetime]:
    """The acquisition panel's datetime.now(): set clock[0] to move time."""
    from mmapp.gui import acquisition_panel

    now = [datetime(2026, 12, 2, 12, 0, 0)]

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return now[0]

    monkeypatch.setattr(acquisition_panel, "datetime", FakeDatetime)
    return now


def test_next_dataset_with_the_time_follows_the_clock(qtbot, tmp, clock):
    from mmapp.gui.acquisition_panel import AcquisitionPanel

    panel = AcquisitionPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.save_dir.setText(str(tmp))
    panel.name_template.setText("scan_{time}")
    assert f"{tmp / 'scan_120000_1'}" in panel.preview.text()
    assert "time are those of pressing Start" in panel.preview.text()
    clock[0] += timedelta(seconds=5)
    # no edit, no run: the preview catches up with the clock by itself
    qtbot.waitUntil(lambda: "scan_120005_1" in panel.preview.text(), timeout=3000)
    assert panel.plan().name == "scan_120005"  # what Start would create now
    # a name without the time says nothing about it and stays as it is
    panel.name_template.setText("scan_{rig}")
    assert "scan_rig_1" in panel.preview.text()
    assert "pressing Start" not in panel.preview.text()


def test_a_snap_replaces_the_last_runs_statistics(qtbot, window):
    from mmapp.gui.acquisition_panel import MODE_FRAMES

    panel = window.acquisition
    panel.mode.setCurrentIndex(MODE_FRAMES)
    panel.frames.setValue(20)
    panel.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=20_000)
    assert panel.readouts["frames"].text() == "20 / 20"
    assert panel.progress.value() == panel.progress.maximum() == 20  # 100 %
    panel.snap_button.click()
    qtbot.waitUntil(lambda: panel.status.text().startswith("snapped"))
    assert panel.state == "idle"
    assert panel.readouts["frames"].text() == "1 (snap)"
    for name in ("MB/s", "buffer", "dropped", "ETA"):
        assert panel.readouts[name].text() == "\N{EN DASH}", name
    assert panel.progress.value() < panel.progress.minimum()  # empty
    assert panel.progress.text() == ""


def test_the_progress_bar_is_empty_after_live(qtbot, window):
    panel = window.acquisition
    panel.live_button.click()
    assert window.run_kind == "live", window.last_error
    qtbot.waitUntil(lambda: window.live_view.frames_drawn > 3, timeout=10_000)
    assert panel.progress.maximum() == 0  # busy while Live runs
    panel.stop_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=20_000)
    assert panel.status.text().startswith("live stopped")
    assert panel.progress.value() < panel.progress.minimum()  # not 100 %
    assert panel.progress.text() == ""


# --- 14: layout at 1366x768 and at the default size ---------------------------------


def _slivers(root) -> list[str]:
    """Visible widgets under `root` smaller than they need (their minimum size hint,
    or the minimum set on them; widgets that may be cut by design are skipped:
    an Ignored size policy, the parts inside a spin box or combo box)."""
    from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox, QSizePolicy, QWidget

    ignored = QSizePolicy.Policy.Ignored
    found = []
    for w in root.findChildren(QWidget):
        if not w.isVisible() or isinstance(
            w.parentWidget(), QAbstractSpinBox | QComboBox
        ):
            continue
        hint, explicit, policy = w.minimumSizeHint(), w.minimumSize(), w.sizePolicy()
        need_w = explicit.width() or (
            0 if policy.horizontalPolicy() == ignored else hint.width()
        )
        need_h = explicit.height() or (
            0 if policy.verticalPolicy() == ignored else hint.height()
        )
        need_w, need_h = min(need_w, w.maximumWidth()), min(need_h, w.maximumHeight())
        if w.width() < need_w or w.height() < need_h:
            found.append(
                f"{type(w).__name__} {w.objectName()!r} {w.width()}x{w.height()} "
                f"< {need_w}x{need_h}"
            )
    return found


def _inside(widget, area) -> bool:
    """Whether `widget` is wholly in view in the scroll area."""
    from PyQt6.QtCore import QRect

    viewport = area.viewport()
    top_left = widget.mapTo(viewport, widget.rect().topLeft())
    return viewport.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", [(1366, 768), (1400, 900)])
def test_every_dock_is_usable_at_1366x768_and_the_default_size(qtbot, window, size):
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QScrollArea

    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() <= size[0] and window.height() <= size[1])
    assert window.size().width() == size[0]  # the window fits the screen
    for bottom in ("log", "daq"):  # the two tabs of the bottom dock
        window.docks[bottom].raise_()
        qtbot.waitUntil(lambda b=bottom: window.docks[b].widget().isVisible())
        for name, dock in window.docks.items():
            if dock.widget().isVisible():
                assert not _slivers(dock), (name, _slivers(dock))
        assert not _slivers(window.live_view)
    # the run's status is in view without scrolling
    area = window.docks["acquisition"].widget()
    assert isinstance(area, QScrollArea)
    area.verticalScrollBar().setValue(0)
    panel = window.acquisition
    for w in (panel.start_button, panel.stop_button, panel.progress, panel.status):
        assert _inside(w, area), w
    # a taller bottom dock: the panels scroll, their fields keep their size
    window.resizeDocks([window.docks["log"]], [size[1]], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: area.height() < 300)
    assert area.verticalScrollBar().maximum() > 0
    for name, dock in window.docks.items():
        if dock.widget().isVisible():
            assert not _slivers(dock), (name, _slivers(dock))
    # the DAQ program's lane names never overlap
    window.docks["daq"].raise_()
    preview = window.designer.preview
    qtbot.waitUntil(preview.isVisible)
    assert len(preview._lane_ticks) >= 3
    assert preview.lane_label_gap() >= 16


def test_the_designer_form_never_scrolls_sideways(qtbot, window):
    from PyQt6.QtWidgets import QLabel, QScrollArea

    window.resize(1366, 768)
    window.docks["daq"].raise_()
    designer = window.designer
    qtbot.waitUntil(designer.form.isVisible)
    scroll = designer.findChild(QScrollArea)
    bar = scroll.horizontalScrollBar()
    assert bar.maximum() == 0  # the form fits across
    # an error marked at a field, then every field visited with Tab
    rate = designer.form.fields.widgets[("timing", "sample_rate_hz")]
    rate.setFocus()
    qtbot.keyClicks(rate, "x")
    assert ("timing", "sample_rate_hz") in designer.errors()
    for _ in range(60):
        designer.focusNextChild()
        assert bar.value() == 0
    # a structural edit rebuilds the form: it starts at its left edge again
    designer.form.fields.widgets[("analog", 0, "shape", "kind")].setCurrentText(
        "triangle"
    )
    designer.apply_button.click()  # refused: the draft is invalid
    assert bar.value() == 0 and bar.maximum() == 0
    # every label of the form is whole, from its first letter
    viewport = scroll.viewport()
    for label in designer.form.findChildren(QLabel):
        if label.isVisible() and label.text():
            left = label.mapTo(viewport, label.rect().topLeft()).x()
            assert left >= 0, label.text()
            assert left + label.width() <= viewport.width(), label.text()


def test_start_keeps_the_run_buttons_in_view(qtbot, window):
    """Found running the app: with a short Acquisition dock, Start scrolled it
    down to the plan, so Stop was out of view for the whole run (the focus
    left the disabled Start for a field lower in the form); and the end of
    the run must not scroll away from Start either."""
    from PyQt6.QtCore import Qt

    window.resize(1400, 900)
    area = window.docks["acquisition"].widget()
    panel = window.acquisition
    # a tall log dock: the Acquisition dock about 200 pixels high
    window.resizeDocks([window.docks["log"]], [900], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: 0 < area.height() < 300)
    area.verticalScrollBar().setValue(0)
    assert area.verticalScrollBar().maximum() > 0  # the form scrolls here
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    panel.start_button.setFocus()  # as a click leaves it
    qtbot.waitUntil(panel.start_button.hasFocus)
    panel.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    try:
        qtbot.waitUntil(lambda: panel.state == "acquiring")
        stats = window.controller.stats
        qtbot.waitUntil(lambda: (s := stats()) is not None and s.frames_written >= 20)
        assert area.verticalScrollBar().value() == 0  # where the operator left it
        for w in (panel.stop_button, panel.progress):
            assert _inside(w, area), w
        assert panel.stop_button.isEnabled()
        assert panel.stop_button.hasFocus()  # Space or Enter stops, as Esc
    finally:
        panel.stop_button.click()
        qtbot.waitUntil(lambda: window.run_kind is None, timeout=20_000)
    assert area.verticalScrollBar().value() == 0
    assert _inside(panel.start_button, area) and panel.start_button.hasFocus()
