"""The DAQ waveform designer docked in the main window: Apply, Start, Live, presets.

Pixels and card samples are checked; waiting is qtbot.waitUntil on real state.
"""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH
from PyQt6.QtCore import Qt
from test_daq_acquisition import (
    POWERS,
    assert_frames_match,
    assert_rig_safe,
    frames_in_order,
    opm_program,
)
from test_gui import RUN_TIMEOUT_MS, _frames_in, _make_window
from test_waveform_designer import field, type_into

from mmapp.daq.program import AnalogChannel, WaveformProgram
from mmapp.daq.render import render
from mmapp.engine.controller import RunOutcome
from mmapp.engine.preset_run import preset_from_dataset
from mmapp.gui.acquisition_panel import MODE_FRAMES, MODE_LOOP
from mmapp.gui.main_window import MainWindow
from mmapp.presets import RecentPresets, load_preset


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="", recent_presets=RecentPresets(tmp))
    for nm, power in POWERS.items():
        w.rig.core.setProperty("Lasers", f"Laser {nm} Power %", power)
    yield w
    w.close()


def _card_ao(window: MainWindow) -> np.ndarray:
    """The samples of the running AO task on the simulated card."""
    card = window.rig.daq_device
    (ao,) = [t for t in card.tasks.values() if t.kind == "ao" and t.running]
    return ao.buffers[-1].data[0]


def _frames(window: MainWindow, n: int) -> None:
    acq = window.acquisition
    acq.mode.setCurrentIndex(MODE_FRAMES)
    acq.frames.setValue(n)


def _wait_applied(qtbot, window: MainWindow) -> None:
    """A change during a run is written off the GUI thread: wait for its end."""
    qtbot.waitUntil(lambda: not window.designer.applying, timeout=10_000)


def test_the_designer_is_docked_with_the_rigs_program(window):
    dock = window.docks["daq"]
    assert dock.widget() is window.designer
    rig_program = window.rig.spec.program
    assert window.designer.program() == rig_program == window.program
    assert window.acquisition.use_daq.isEnabled()
    assert not window.acquisition.use_daq.isChecked()
    assert "50 frames per program cycle" in window.acquisition.daq_info.text()
    assert dock.toggleViewAction().text() == "DAQ program"


def test_apply_when_idle_checks_the_program_on_the_card_and_parks_it(qtbot, window):
    program = opm_program(positions=4)
    window.set_program(program)
    type_into(qtbot, field(window.designer, "analog", 0, "park_v"), "1.5")
    card = window.rig.daq_device
    card.calls.clear()
    qtbot.mouseClick(window.designer.apply_button, Qt.MouseButton.LeftButton)
    assert window.designer.status.text().startswith("Applied: checked on Dev1")
    assert window.program.analog[0].park_v == 1.5
    assert window.acquisition.use_daq.isChecked()
    # the card was programmed (real nidaqmx calls), then stopped, parked, cleared
    assert {"CreateTask", "CfgSampClkTiming", "WriteAnalogF64", "ClearTask"} <= set(
        card.calls
    )
    assert_rig_safe(window.rig, window.program)
    assert card.output_value("Dev1/ao0") == 1.5


def test_apply_refuses_a_program_the_rig_cannot_play(qtbot, window):
    program = opm_program(positions=4)
    bad = program.model_copy(
        update={
            "analog": [
                AnalogChannel(
                    name="galvo",
                    physical_channel="Dev2/ao0",
                    shape=program.analog[0].shape,
                )
            ]
        }
    )
    before = window.program
    window.designer.set_program(bad)
    assert window.designer.apply() is False
    assert "not on the rig's DAQ device 'Dev1'" in window.designer.status.text()
    assert window.program == before


def test_start_plays_the_program_and_every_frame_shows_its_slice(qtbot, window, tmp):
    program = opm_program(channels=("488nm", "561nm"), positions=4)
    window.set_program(program)
    window.acquisition.use_daq.setChecked(True)
    n = 3 * len(render(program).frames)
    _frames(window, n)
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    frames = frames_in_order(result.dataset)
    assert len(frames) == n
    assert_frames_match(frames, render(program))
    assert_rig_safe(window.rig, program)
    # the dataset keeps the preset it ran with, program included
    again = preset_from_dataset(result.dataset)
    assert again.program == program
    assert load_preset(result.dataset / "preset.mmpreset") == again


def test_a_frame_count_that_is_not_whole_cycles_is_refused(window):
    program = opm_program(positions=4)
    window.set_program(program)
    window.acquisition.use_daq.setChecked(True)
    _frames(window, 10)
    window.acquisition.start_button.click()
    assert window.run_kind is None
    title, text = window.last_error
    assert title == "Cannot start"
    assert "4 frames per cycle; 10 frames is not a whole number" in text


def test_apply_while_live_plays_from_the_next_volume(qtbot, window):
    before = opm_program(positions=4)
    window.set_program(before)
    window.acquisition.use_daq.setChecked(True)
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.live_button.click()
    assert window.run_kind == "live", window.last_error
    qtbot.waitUntil(lambda: _frames_in(window) >= 8, timeout=20_000)
    np.testing.assert_array_equal(_card_ao(window), render(before).analog["Dev1/ao0"])
    type_into(qtbot, field(window.designer, "analog", 0, "shape", "stop"), "5")
    qtbot.mouseClick(window.designer.apply_button, Qt.MouseButton.LeftButton)
    _wait_applied(qtbot, window)
    status = window.designer.status.text()
    said = re.fullmatch(
        r"Applied: the running acquisition plays it from volume (\d+) \(frame "
        r"(\d+)\)( \(or the one after: applied at its end\))?",  # Live: no dataset
        status,
    )
    assert said is not None, status
    assert int(said[2]) == 4 * int(said[1]) >= 8, "a whole volume, not yet played"
    after = window.program
    assert after.analog[0].shape.stop == 5.0
    np.testing.assert_array_equal(_card_ao(window), render(after).analog["Dev1/ao0"])
    # a change of timing needs a new start: refused, the running program stays
    type_into(qtbot, field(window.designer, "timing", "exposure_s"), "3")
    assert window.designer.apply() is False
    assert "can only take effect when the acquisition is started again" in (
        window.designer.status.text()
    )
    assert window.program == after
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    assert window.controller.wait(0).outcome is RunOutcome.STOPPED
    assert_rig_safe(window.rig, after)


def test_a_change_applied_during_a_loop_is_kept_with_the_dataset(qtbot, window):
    before = opm_program(positions=4)
    window.set_program(before)
    window.acquisition.use_daq.setChecked(True)
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: _frames_in(window) >= 8, timeout=20_000)
    type_into(qtbot, field(window.designer, "analog", 0, "shape", "stop"), "5")
    qtbot.mouseClick(window.designer.apply_button, Qt.MouseButton.LeftButton)
    _wait_applied(qtbot, window)
    after = window.program
    assert after.analog[0].shape.stop == 5.0
    qtbot.waitUntil(lambda: _frames_in(window) >= 40, timeout=20_000)
    window.acquisition.stop_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    result = window.last_result
    assert result.outcome is RunOutcome.STOPPED, result.message
    (change,) = result.program_changes
    assert change.program == after
    status = window.designer.status.text()
    assert f"from volume {change.from_volume} " in status
    assert status.endswith("; the dataset records it")
    # the preset holds the program the run started with, the file the change
    assert preset_from_dataset(result.dataset).program == before
    record = json.loads((result.dataset / "program_changes.json").read_text())
    assert [r["from_frame"] for r in record["changes"]] == [change.from_frame]
    assert WaveformProgram.model_validate(record["changes"][0]["program"]) == after


def test_the_program_is_saved_and_loaded_with_presets(qtbot, window, tmp):
    program = opm_program(positions=4)
    window.set_program(program)
    window.acquisition.use_daq.setChecked(True)
    path = tmp / "opm.mmpreset"
    assert window.preset_files.save_as(path), window.last_error
    assert load_preset(path).program == program
    window.set_program(opm_program(positions=6))
    window.acquisition.use_daq.setChecked(False)
    assert window.preset_files.open(path), window.last_error
    assert window.program == program == window.designer.program()
    assert window.acquisition.use_daq.isChecked()
    # a preset without a program: the DAQ is not played
    window.acquisition.use_daq.setChecked(False)
    plain = tmp / "plain.mmpreset"
    assert window.preset_files.save_as(plain)
    assert load_preset(plain).program is None


def _window_without_daq(qtbot, tmp) -> tuple:
    """A window on a rig file that has no 'daq' section."""
    rig_file = tmp / "nodaq.json"
    rig_file.write_text(
        json.dumps({"name": "no daq", "camera": {"width": WIDTH, "height": HEIGHT}})
    )
    w = _make_window(
        qtbot, tmp, rig_path=str(rig_file), recent_presets=RecentPresets(tmp)
    )
    return rig_file, w


def test_a_rig_without_a_daq_disables_the_program(qtbot, tmp):
    _, w = _window_without_daq(qtbot, tmp)
    try:
        assert w.rig.daq is None
        assert not w.acquisition.use_daq.isEnabled()
        assert "no DAQ card" in w.acquisition.daq_info.text()
        w.designer.set_program(WaveformProgram())
        assert w.designer.apply() is False
        assert "has no DAQ card" in w.designer.status.text()
    finally:
        w.close()


def test_an_invalid_or_unapplied_draft_cannot_be_started(qtbot, window):
    program = opm_program(positions=4)
    window.set_program(program)
    window.acquisition.use_daq.setChecked(True)
    _frames(window, 8)
    exposure = field(window.designer, "timing", "exposure_s")
    type_into(qtbot, exposure, "2x")
    window.acquisition.start_button.click()
    assert window.run_kind is None
    title, text = window.last_error
    assert title == "Cannot start"
    assert "not valid (timing.exposure_s:" in text
    window.acquisition.live_button.click()
    assert window.run_kind is None and not window.acquisition.live_button.isChecked()
    assert window.last_error[0] == "Cannot start Live"
    type_into(qtbot, exposure, "3")  # valid, but not applied
    window.acquisition.start_button.click()
    assert window.run_kind is None
    assert "changes that are not applied" in window.last_error[1]
    assert window.designer.apply(), window.designer.status.text()
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.frames_saved == 8


def test_apply_during_live_without_the_program_checks_it_on_the_card(qtbot, window):
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    window.acquisition.live_button.click()  # the DAQ box is not ticked
    assert window.run_kind == "live", window.last_error
    program = opm_program(positions=4)
    galvo = program.analog[0].model_copy(update={"physical_channel": "Dev1/ao9"})
    window.designer.set_program(program.model_copy(update={"analog": [galvo]}))
    before = window.program
    assert window.designer.apply() is False
    assert "Dev1/ao9" in window.designer.status.text()
    assert window.program == before
    window.designer.set_program(program)
    assert window.designer.apply()
    assert window.designer.status.text() == (
        "Applied: checked on the card; the next run plays it"
    )
    assert window.program == program
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)


def test_save_refuses_unapplied_program_changes(qtbot, window, tmp):
    window.set_program(opm_program(positions=4))
    window.acquisition.use_daq.setChecked(True)
    type_into(qtbot, field(window.designer, "analog", 0, "park_v"), "1")
    assert window.preset_files.save_as(tmp / "x.mmpreset") is False
    assert "changes that are not applied" in window.last_error[1]
    assert not (tmp / "x.mmpreset").exists()


def test_a_presets_program_is_kept_on_a_rig_without_a_daq(qtbot, tmp):
    rig_file, w = _window_without_daq(qtbot, tmp)
    try:
        program = opm_program(positions=4)
        data = {
            "schema_version": 2,
            "name": "opm",
            "rig": {"kind": "simulated", "file": str(rig_file)},
            "acquisition": {"mode": "stream", "frames": 8},
            "program": program.model_dump(mode="json"),
        }
        path = tmp / "opm.mmpreset"
        path.write_text(json.dumps(data))
        assert w.preset_files.open(path)
        assert w.last_error[0] == "opm.mmpreset: the DAQ program is not played"
        assert w.preset_files.save()
        assert load_preset(path).program == program
    finally:
        w.close()


def test_apply_during_live_of_a_change_of_cycle_length_is_refused(qtbot, window):
    """A sawtooth made a triangle plays two volumes per cycle: refused before the
    card is touched (it was a raw DAQmx error), said in the designer and the Log."""
    from mmapp.daq.program import Triangle

    before = opm_program(positions=4)
    window.set_program(before)
    window.acquisition.use_daq.setChecked(True)
    window.acquisition.live_button.click()
    assert window.run_kind == "live", window.last_error
    qtbot.waitUntil(lambda: _frames_in(window) >= 8, timeout=20_000)
    samples = _card_ao(window).copy()
    galvo = before.analog[0].model_copy(update={"shape": Triangle(start=-10, stop=10)})
    window.designer.set_program(before.model_copy(update={"analog": [galvo]}))
    assert window.designer.apply() is False
    status = window.designer.status.text()
    assert "alters the frames per cycle (from 4 to 8)" in status, status
    assert "started again" in status
    qtbot.waitUntil(
        lambda: "DAQ program not applied: " in window.log_panel.text(), timeout=2000
    )
    assert "frames per cycle (from 4 to 8)" in window.log_panel.text()
    np.testing.assert_array_equal(_card_ao(window), samples)  # nothing written
    assert window.program == before
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    assert window.controller.wait(0).outcome is RunOutcome.STOPPED
    assert_rig_safe(window.rig, before)


def test_apply_during_live_writes_off_the_gui_thread(qtbot, window, monkeypatch):
    """A card whose write blocks (a real card may for up to a volume): the
    window keeps drawing frames while Apply waits, then says where it plays."""
    import threading

    from mmapp.daq.tasks import DaqTasks

    gate = threading.Event()
    writing = threading.Event()
    real_write = DaqTasks._write

    def slow_write(self, task, data):
        if self._running:  # a change while the card plays (not the first write)
            writing.set()
            assert gate.wait(20), "the test never opened the gate"
        return real_write(task, data)

    monkeypatch.setattr(DaqTasks, "_write", slow_write)
    before = opm_program(positions=4)
    window.set_program(before)
    window.acquisition.use_daq.setChecked(True)
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: _frames_in(window) >= 8, timeout=20_000)
    type_into(qtbot, field(window.designer, "analog", 0, "shape", "stop"), "5")
    qtbot.mouseClick(window.designer.apply_button, Qt.MouseButton.LeftButton)
    assert window.designer.applying  # returned at once
    assert window.designer.status.text().startswith("Applying")
    assert not window.designer.apply_button.isEnabled()
    assert writing.wait(10)
    drawn = window.live_view.frames_drawn
    qtbot.waitUntil(  # the GUI thread draws while the card write is blocked
        lambda: window.live_view.frames_drawn >= drawn + 3, timeout=10_000
    )
    assert window.designer.applying
    gate.set()
    _wait_applied(qtbot, window)
    assert window.designer.status.text().startswith("Applied: the running")
    assert window.program.analog[0].shape.stop == 5.0
    window.acquisition.live_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    assert window.controller.wait(0).outcome is RunOutcome.STOPPED
