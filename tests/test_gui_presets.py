"""File > Open / Save / Save As / Recent presets in the main window (pytest-qt).

Presets are written into tmp; the recent list lives in tmp (MMAPP_CONFIG_DIR).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH, read_all, run_mmapp
from test_gui import RUN_TIMEOUT_MS, _make_window

from mmapp.engine.controller import RunOutcome
from mmapp.engine.preset_run import preset_from_dataset
from mmapp.gui.acquisition_panel import MODE_FRAMES, MODE_LOOP, MODE_MDA
from mmapp.gui.main_window import MainWindow
from mmapp.gui.preset_bridge import window_preset
from mmapp.presets import RecentPresets, load_preset, save_preset
from mmapp.resources import default_rig_file, resources_dir

CAMERA = {"width": WIDTH, "height": HEIGHT, "exposure_ms": 1.0}


def preset_dict(**changes: object) -> dict:
    """A small stream preset for the simulated rig (64x48 frames)."""
    data = {
        "schema_version": 2,
        "name": "small stream",
        "description": "for the tests",
        "rig": {"kind": "simulated", "file": None, "camera": CAMERA},
        "devices": {
            "config_groups": {},
            "properties": [
                {"device": "Lasers", "property": "Laser 488 Power %", "value": 30.0}
            ],
        },
        "acquisition": {"mode": "stream", "frames": 7},
        "storage": {"directory": "data", "name_template": "{name}_{rig}"},
        "display": {
            "colormap": "green",
            "autoscale": False,
            "contrast_limits": [10, 900],
        },
    }
    data.update(changes)
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture
def window(qtbot, tmp) -> MainWindow:
    w = _make_window(qtbot, tmp, rig_path="", recent_presets=RecentPresets(tmp))
    yield w
    w.close()


def _state(w: MainWindow) -> tuple:
    a = w.acquisition
    return (
        a.mode.currentIndex(),
        a.frames.value(),
        a.save_dir.text(),
        a.name_template.text(),
        w.windowTitle(),
        w.rig.core.getProperty("Lasers", "Laser 488 Power %"),
        w.live_view.display_settings(),
    )


def test_open_shows_every_part_of_the_preset(window, tmp):
    path = write(tmp / "small.mmpreset", preset_dict())
    rig = window.rig
    assert window.preset_files.open(path), window.last_error
    assert window.rig is rig, "the same rig takes the settings"
    a = window.acquisition
    assert (a.mode.currentIndex(), a.frames.value()) == (MODE_FRAMES, 7)
    assert a.save_dir.text() == "data"
    assert a.name_template.text() == "{name}_{rig}"
    assert "small_stream_Simulated_OPM_rig_1" in a.preview.text()
    assert window.windowTitle() == "mmapp — Simulated OPM rig — small stream"
    assert float(rig.core.getProperty("Lasers", "Laser 488 Power %")) == 30.0
    display = window.live_view.display_settings()
    assert display["colormap"] == "green" and display["contrast_limits"] == [10, 900]
    assert not window.live_view.auto_continuous.isChecked()
    assert window.preset_files.recent.paths() == [path.resolve()]


def test_open_then_save_as_round_trips(window, tmp):
    path = write(tmp / "small.mmpreset", preset_dict())
    assert window.preset_files.open(path)
    copy = tmp / "copy.mmpreset"
    assert window.preset_files.save_as(copy), window.last_error
    assert load_preset(copy) == load_preset(path).model_copy(
        update={"rig": load_preset(copy).rig}  # the camera as the rig has it now
    )
    saved = load_preset(copy)
    assert saved.rig.camera.width == WIDTH and saved.rig.camera.height == HEIGHT
    assert window.preset_files.recent.paths()[:2] == [copy.resolve(), path.resolve()]


def test_an_mda_the_fields_cannot_show_runs_as_the_file_says(window, tmp):
    example = load_preset(resources_dir() / "presets" / "mda_z_stack.mmpreset")
    data = example.model_dump(mode="json")
    data["rig"]["camera"] = CAMERA
    path = write(tmp / "z.mmpreset", data)
    assert window.preset_files.open(path), window.last_error
    a = window.acquisition
    assert a.mode.currentIndex() == MODE_MDA
    assert a.custom_sequence == example.acquisition.sequence
    assert "22 events" in a.custom_label.text()
    assert window_preset(window).acquisition == example.acquisition
    a.timepoints.setValue(2)  # an edit replaces it with what the fields say
    assert a.custom_sequence is None
    assert window_preset(window).acquisition.sequence.time_plan.loops == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"storage": {"if_exists": "overwrite"}}, "storage.if_exists"),
        ({"acquisition": {"mode": "stream", "frames": -1}}, "acquisition.frames"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"schema_version": 9}, "schema_version"),
    ],
)
def test_a_bad_preset_changes_nothing_and_names_the_field(
    window, tmp, change, expected
):
    before = _state(window)
    rig = window.rig
    path = write(tmp / "bad.mmpreset", preset_dict(**change))
    assert window.preset_files.open(path) is False
    title, text = window.last_error
    assert title == "Could not open bad.mmpreset"
    assert expected in text
    assert window.rig is rig and _state(window) == before
    assert window.preset_files.recent.paths() == []


def test_a_refused_device_setting_changes_nothing(window, tmp):
    before = _state(window)
    data = preset_dict(
        devices={
            "config_groups": {},
            "properties": [
                {"device": "Lasers", "property": "Laser 488 Power %", "value": 30.0},
                {"device": "Lasers", "property": "Laser 561 Power %", "value": 500.0},
            ],
        }
    )
    path = write(tmp / "refused.mmpreset", data)
    assert window.preset_files.open(path) is False
    title, text = window.last_error
    assert title == "Could not open the preset 'small stream'"
    assert "Laser 561 Power %" in text
    assert _state(window) == before


def test_a_preset_on_another_rig_loads_that_rig(window, tmp):
    rig_file = tmp / "other_rig.json"
    spec = json.loads(default_rig_file().read_text())
    spec["name"] = "Other rig"
    rig_file.write_text(json.dumps(spec))
    data = preset_dict(
        rig={"kind": "simulated", "file": str(rig_file), "camera": CAMERA}
    )
    path = write(tmp / "other.mmpreset", data)
    assert window.preset_files.open(path), window.last_error
    assert window.rig.name == "Other rig"
    assert Path(window.rig.source) == rig_file
    assert window.settings.last_rig == str(rig_file)
    assert window.windowTitle() == "mmapp — Other rig — small stream"


def test_a_preset_whose_rig_file_is_missing_keeps_the_rig(window, tmp):
    rig = window.rig
    before = _state(window)
    data = preset_dict(rig={"kind": "simulated", "file": str(tmp / "gone.json")})
    path = write(tmp / "gone.mmpreset", data)
    assert window.preset_files.open(path) is False
    assert "gone.json does not exist" in window.last_error[1]
    assert window.rig is rig and _state(window) == before


def test_recent_menu_opens_and_forgets_missing_files(window, tmp):
    first = write(tmp / "first.mmpreset", preset_dict(name="first"))
    second = write(tmp / "second.mmpreset", preset_dict(name="second"))
    assert window.preset_files.open(first) and window.preset_files.open(second)
    menu = window.menus.recent_presets
    names = [a.text() for a in menu.actions() if a.text()]
    assert names[:2] == ["second.mmpreset", "first.mmpreset"]
    menu.actions()[1].trigger()  # first.mmpreset
    assert window.preset_name == "first"
    first.unlink()
    window.preset_files.refresh_recent()
    [action] = [a for a in menu.actions() if a.text() == "first.mmpreset"]
    action.trigger()
    assert "does not exist (removed from the recent presets)" in window.last_error[1]
    assert [p.name for p in window.preset_files.recent.paths()] == ["second.mmpreset"]


def test_save_without_a_file_asks_through_save_as(window, tmp, monkeypatch):
    target = tmp / "asked"
    monkeypatch.setattr(
        "mmapp.gui.preset_files.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(target), ""),
    )
    assert window.preset_files.save(), window.last_error
    saved = tmp / "asked.mmpreset"
    assert load_preset(saved).name == "asked"
    assert window.windowTitle().endswith("— asked")
    window.acquisition.mode.setCurrentIndex(MODE_LOOP)
    assert window.preset_files.save()  # now to the same file, no dialog
    assert load_preset(saved).acquisition.frames is None


def test_save_to_an_unwritable_place_says_why_and_keeps_the_old_file(window, tmp):
    path = tmp / "keep.mmpreset"
    assert window.preset_files.save_as(path)
    before = path.read_bytes()
    window.acquisition.name_template.setText("{nope}")
    assert window.preset_files.save() is False
    assert "storage.name_template" in window.last_error[1]
    assert path.read_bytes() == before
    blocked = tmp / "file"
    blocked.write_text("x")
    assert window.preset_files.save_as(blocked / "x.mmpreset") is False
    assert window.last_error[0] == "Could not save x.mmpreset"


def test_a_gui_dataset_recreates_its_preset_and_reruns_the_same(qtbot, window, tmp):
    path = write(tmp / "small.mmpreset", preset_dict())
    assert window.preset_files.open(path)
    window.acquisition.save_dir.setText(str(tmp / "gui"))
    window.acquisition.start_button.click()
    assert window.run_kind == "acquire", window.last_error
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    result = window.last_result
    assert result.outcome is RunOutcome.COMPLETED, result.message
    assert result.dataset.name == "small_stream_Simulated_OPM_rig_1"
    again = preset_from_dataset(result.dataset)
    assert again.acquisition.frames == 7 and again.name == "small stream"
    rerun = tmp / "rerun.mmpreset"
    save_preset(again, rerun)
    proc = run_mmapp("acquire", str(rerun), "--out", str(tmp / "cli"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    [cli_dataset] = (tmp / "cli").iterdir()
    gui_frames, cli_frames = read_all(result.dataset), read_all(cli_dataset)
    assert sorted(gui_frames) == sorted(cli_frames) == list(range(7))
    for t in gui_frames:
        assert np.array_equal(gui_frames[t], cli_frames[t]), f"frame {t}"
    shutil.rmtree(tmp / "cli")


def test_a_failed_open_on_another_rig_file_keeps_rig_and_program(window, tmp):
    core = window.rig.core
    core.setProperty("Lasers", "Laser 488 Power %", 42.0)
    core.setExposure(7.0)
    program = window.program.model_copy(update={"channels": ["488nm"]})
    window.set_program(program)
    rig = window.rig
    rig_file = tmp / "copy.json"
    rig_file.write_text(default_rig_file().read_text())
    data = preset_dict(
        rig={"kind": "simulated", "file": str(rig_file)},
        devices={
            "config_groups": {},
            "properties": [
                {"device": "Lasers", "property": "Laser 488 Power %", "value": 500.0}
            ],
        },
    )
    path = write(tmp / "refused.mmpreset", data)
    assert window.preset_files.open(path) is False
    assert "the loaded rig is as it was" in window.last_error[1]
    assert window.rig is rig
    assert float(core.getProperty("Lasers", "Laser 488 Power %")) == 42.0
    assert core.getExposure() == 7.0
    assert window.program == program == window.designer.program()


def test_a_frame_count_the_window_cannot_hold_is_refused_before_anything(window, tmp):
    before = _state(window)
    data = preset_dict(acquisition={"mode": "stream", "frames": 5_000_000_000})
    assert window.preset_files.open(write(tmp / "huge.mmpreset", data)) is False
    assert (
        "acquisition.frames: 5000000000 is more than the window"
        in (window.last_error[1])
    )
    assert _state(window) == before


def test_open_then_save_keeps_exact_values(window, tmp):
    data = preset_dict(
        acquisition={"mode": "stream", "frames": None, "duration_s": 20 * 86400.1234},
        display={
            "colormap": "magenta",
            "autoscale": True,
            "contrast_limits": [5, 100],
            "refresh_hz": 0.5,
        },
    )
    path = write(tmp / "exact.mmpreset", data)
    assert window.preset_files.open(path), window.last_error
    copy = tmp / "exact_copy.mmpreset"
    assert window.preset_files.save_as(copy)
    saved, loaded = load_preset(copy), load_preset(path)
    assert saved.acquisition == loaded.acquisition
    assert saved.display == loaded.display


def test_the_presets_exposure_is_the_cameras_and_is_saved_back(window, tmp):
    data = preset_dict(acquisition={"mode": "stream", "frames": 3, "exposure_ms": 3.0})
    assert window.preset_files.open(write(tmp / "exp.mmpreset", data))
    assert window.rig.core.getExposure() == 3.0
    assert window.device_panel.exposure.value() == 3.0
    copy = tmp / "exp_copy.mmpreset"
    assert window.preset_files.save_as(copy)
    saved = load_preset(copy)
    assert saved.acquisition.exposure_ms == 3.0
    assert saved.rig.camera.exposure_ms == 3.0


def test_if_exists_error_refuses_a_second_start(qtbot, window, tmp):
    data = preset_dict(
        storage={
            "directory": str(tmp / "d"),
            "name_template": "same",
            "if_exists": "error",
        }
    )
    assert window.preset_files.open(write(tmp / "once.mmpreset", data))
    window.acquisition.start_button.click()
    qtbot.waitUntil(lambda: window.run_kind is None, timeout=RUN_TIMEOUT_MS)
    assert window.last_result.dataset.name == "same_1"
    window.acquisition.start_button.click()
    assert window.run_kind is None
    title, text = window.last_error
    assert title == "Cannot start"
    assert "if_exists is 'error' and a dataset named 'same' is already" in text
    assert sorted(p.name for p in (tmp / "d").iterdir()) == ["same_1"]


def test_open_waits_for_a_snap(qtbot, window, tmp):
    window.rig.core.setExposure(800.0)
    path = write(tmp / "small.mmpreset", preset_dict())
    window.acquisition.snap_button.click()
    assert window.acquisition.state == "busy"
    assert window.preset_files.open(path) is False
    assert "let the snap finish" in window.last_error[1]
    qtbot.waitUntil(lambda: window.acquisition.state == "idle", timeout=10_000)
    assert window.preset_files.open(path), window.last_error
