"""The Processing dock and the Processed view, clicked through with pytest-qt.

Waiting is qtbot.waitUntil on real state, never a fixed sleep; settings and
data go to tmp.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH, open_dataset
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication
from test_gui import RUN_TIMEOUT_MS, _make_window

from mmapp.gui.main_window import MainWindow
from mmapp.gui.preset_bridge import window_preset
from mmapp.processing import ProcessingChain, geometry_for
from mmapp.resources import resources_dir
from mmapp.rig.simulated import is_lit

PRESET = resources_dir() / "presets" / "opm_deskew_daq.mmpreset"
SCREENSHOT = Path(__file__).resolve().parents[1] / "resources" / "screenshots"
POSITIONS = 8


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="")
    yield w
    w.close()


def _names(w: MainWindow) -> list[tuple[str, bool]]:
    return [(s.name, s.enabled) for s in w.preset_extras.processing.steps]


def _small_preset(tmp: Path) -> Path:
    """The bundled OPM deskew preset on small frames, short volumes, saving to tmp."""
    data = json.loads(PRESET.read_text())
    data["rig"]["camera"].update(width=WIDTH, height=HEIGHT)
    data["program"]["timing"]["positions_per_volume"] = POSITIONS
    data["storage"]["directory"] = str(tmp / "data")
    path = tmp / "opm_small.mmpreset"
    path.write_text(json.dumps(data))
    return path


def test_add_order_enable_and_params_edit_the_chain(window):
    panel = window.processing_panel
    # a tab beside Devices (the whole height for its form)
    assert window.docks["processing"] in window.tabifiedDockWidgets(
        window.docks["devices"]
    )
    assert window.preset_extras.processing == ProcessingChain()
    assert panel.add_step("bin")
    assert panel.add_step("background")  # defaults refused: starts with value 0
    assert _names(window) == [("bin", True), ("background", True)]
    assert window.preset_extras.processing.steps[1].params == {"value": 0}

    panel.steps.setCurrentRow(1)
    panel.up_button.click()
    assert _names(window) == [("background", True), ("bin", True)]
    assert panel.steps.currentRow() == 0

    item = panel.steps.item(1)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert _names(window) == [("background", True), ("bin", False)]
    assert not window.preset_extras.processing.active_steps[1:]

    panel.steps.setCurrentRow(1)
    (factor,) = panel.fields
    factor.editor.setValue(4)
    assert window.preset_extras.processing.steps[1].params == {"factor": 4}

    panel.steps.setCurrentRow(0)
    value = next(f for f in panel.fields if f.name == "value")
    value.editor.setValue(100.0)
    assert window.preset_extras.processing.steps[0].params == {"value": 100.0}

    panel.save_raw.setChecked(False)
    panel.on_error.setCurrentText("disable")
    chain = window.preset_extras.processing
    assert (chain.save_raw, chain.on_error) == (False, "disable")
    assert window_preset(window).processing == chain  # what Save writes

    panel.remove_selected()  # save_raw off and no step enabled: refused
    assert "nothing would be saved" in panel.message.text()
    assert _names(window) == [("background", True), ("bin", False)]
    assert panel.steps.count() == 2
    panel.save_raw.setChecked(True)
    panel.steps.setCurrentRow(0)
    panel.remove_selected()
    assert panel.message.text() == ""
    assert _names(window) == [("bin", False)]


def test_a_refused_parameter_shows_the_processors_message_and_is_not_applied(window):
    panel = window.processing_panel
    panel.add_step("background")
    fields = {f.name: f for f in panel.fields}
    assert fields["value"].enabled_box is not None
    fields["dark_frame"].enabled_box.setChecked(True)  # both given: refused
    fields["dark_frame"].editor.setText("dark.tif")
    fields["dark_frame"].editor.editingFinished.emit()
    assert "give exactly one of value or dark_frame" in panel.message.text()
    assert window.preset_extras.processing.steps[0].params == {"value": 0}
    fields["value"].enabled_box.setChecked(False)
    assert panel.message.text() == ""
    assert window.preset_extras.processing.steps[0].params == {"dark_frame": "dark.tif"}


def test_an_unloadable_processor_is_greyed_with_its_error(window, monkeypatch):
    from mmapp.gui import processing_panel as module
    from mmapp.processing import ProcessorInfo

    broken = ProcessorInfo("broken", "", "pkg", False, {}, "ImportError: no numpy")
    real = module.available_processors
    monkeypatch.setattr(module, "available_processors", lambda: [*real(), broken])
    panel = window.processing_panel
    panel.refresh_processors()
    row = panel.add_combo.findData("broken")
    item = panel.add_combo.model().item(row)
    assert not item.isEnabled()
    assert "ImportError: no numpy" in item.toolTip()
    assert not panel.add_step("broken")
    assert _names(window) == []


def test_opening_the_deskew_preset_fills_the_panel(window):
    assert window.preset_files.open(PRESET), window.last_error
    panel = window.processing_panel
    shown = [panel.steps.item(i).text() for i in range(panel.steps.count())]
    assert shown == ["background (value=100)", "deskew", "mip"]
    assert all(
        panel.steps.item(i).checkState() == Qt.CheckState.Checked for i in range(3)
    )
    assert panel.save_raw.isChecked()
    assert panel.on_error.currentText() == "stop"
    assert window.preset_extras.processing == ProcessingChain(
        **json.loads(PRESET.read_text())["processing"]
    )


def test_start_with_deskew_shows_the_mip_of_each_volume(qtbot, window, tmp):
    assert window.preset_files.open(_small_preset(tmp)), window.last_error
    qtbot.waitUntil(lambda: not window.designer.applying, timeout=10_000)
    assert window.acquisition.use_daq.isChecked()
    view = window.live_view
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    assert window.processing_panel.isEnabled() is False  # locked while acquiring
    view.mode.setCurrentIndex(1)
    assert view.mode.currentText() == "Processed"
    geometry = geometry_for(window.rig.spec, window.program)
    mip_shape = geometry.output_shape(HEIGHT, WIDTH)[1:]
    qtbot.waitUntil(
        lambda: view.image is not None and view.image.shape == mip_shape,
        timeout=RUN_TIMEOUT_MS,
    )
    assert is_lit(view.image)
    window.acquisition.stop_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    assert window.processing_panel.isEnabled()
    latest = window.controller.latest_processed()
    qtbot.waitUntil(lambda: np.array_equal(view.image, latest.image), timeout=5_000)
    result = window.last_result
    assert result.processed_dataset is not None and result.processed_dataset.is_dir()
    ds = open_dataset(result.processed_dataset)
    try:
        coords = ds.get_image_coordinates_list()
        assert coords and all(set(c) == {"time"} for c in coords)
        last = max(coords, key=lambda c: c["time"])
        np.testing.assert_array_equal(np.array(ds.read_image(**last)), view.image)
    finally:
        ds.close()
    if os.environ.get("MMAPP_SCREENSHOTS"):  # refresh the README's picture
        window.resizeDocks([window.docks["log"]], [110], Qt.Orientation.Vertical)
        window.docks["processing"].raise_()
        QApplication.processEvents()  # the docks take their new sizes
        SCREENSHOT.mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(SCREENSHOT / "processing.png"))


def test_dragging_a_step_reorders_the_chain(window):
    from PyQt6.QtCore import QModelIndex

    panel = window.processing_panel
    panel.add_step("bin")
    panel.add_step("mip")
    model = panel.steps.model()
    assert model.moveRow(QModelIndex(), 1, QModelIndex(), 0)  # what a drop does
    assert _names(window) == [("mip", True), ("bin", True)]
    assert [panel.steps.item(i).text() for i in range(2)] == ["mip", "bin"]
