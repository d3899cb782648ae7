"""The waveform designer with pytest-qt: edits, samples, validation, undo, apply."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QLineEdit, QPushButton

from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import render
from mmapp.gui.designer import WaveformDesigner
from mmapp.resources import default_rig_file
from mmapp.rig import read_rig_spec


@pytest.fixture
def program() -> WaveformProgram:
    """The simulated rig's program, with 10 positions per volume."""
    p = read_rig_spec(default_rig_file()).program
    assert p is not None
    timing = p.timing.model_copy(update={"positions_per_volume": 10})
    return p.model_copy(update={"timing": timing})


@pytest.fixture
def designer(qtbot, program: WaveformProgram) -> WaveformDesigner:
    d = WaveformDesigner(program)
    qtbot.addWidget(d)
    d.resize(1200, 800)
    d.show()
    return d


def field(d: WaveformDesigner, *path: object) -> QLineEdit | QComboBox:
    widget = d.form.fields.widgets[tuple(path)]
    assert isinstance(widget, QLineEdit | QComboBox)
    return widget


def type_into(qtbot, edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, text)


def button(d: WaveformDesigner, name: str) -> QPushButton:
    found = d.findChild(QPushButton, name)
    assert found is not None, name
    return found


def test_editing_a_parameter_changes_the_samples_exactly(
    qtbot,
    designer: WaveformDesigner,
    program: WaveformProgram,
) -> None:
    type_into(qtbot, field(designer, "analog", 0, "shape", "start"), "-5")
    type_into(qtbot, field(designer, "timing", "exposure_s"), "3")  # ms in the form
    galvo = program.analog[0]
    want = program.model_copy(
        update={
            "analog": [
                galvo.model_copy(
                    update={"shape": galvo.shape.model_copy(update={"start": -5.0})}
                )
            ],
            "timing": program.timing.model_copy(update={"exposure_s": 0.003}),
        }
    )
    assert designer.program() == want
    rendered = render(want)
    traces = designer.preview.traces()
    np.testing.assert_array_equal(traces["galvo"], rendered.analog["Dev1/ao0"])
    np.testing.assert_array_equal(
        traces["laser 488nm"], rendered.digital["Dev1/port0/line1"].astype(float)
    )
    assert rendered.camera_trigger is not None
    np.testing.assert_array_equal(
        traces["camera trigger"], rendered.camera_trigger.astype(float)
    )
    assert designer.apply_button.isEnabled()


def test_invalid_text_is_marked_at_its_field_and_blocks_apply(
    qtbot,
    designer: WaveformDesigner,
) -> None:
    applied: list[WaveformProgram] = []
    designer.applied.connect(applied.append)
    exposure = field(designer, "timing", "exposure_s")
    type_into(qtbot, exposure, "2x")
    assert "valid number" in exposure.property("error")
    assert exposure.toolTip() == exposure.property("error")
    assert not designer.apply_button.isEnabled()
    assert designer.program() is None
    assert designer.status.text().startswith("Cannot apply: timing.exposure_s:")
    qtbot.mouseClick(designer.apply_button, Qt.MouseButton.LeftButton)
    assert applied == []
    assert designer.apply() is False
    type_into(qtbot, exposure, "2")
    assert exposure.property("error") == ""
    assert designer.apply_button.isEnabled()


def test_a_voltage_beyond_the_limits_marks_the_channel(
    qtbot,
    designer: WaveformDesigner,
) -> None:
    type_into(qtbot, field(designer, "analog", 0, "shape", "stop"), "80")
    box = designer.form.fields.widgets[("analog", 0)]
    assert "8 V is beyond its limits [-5, 5] V" in box.property("error")
    assert not designer.apply_button.isEnabled()
    type_into(qtbot, field(designer, "analog", 0, "max_v"), "9")
    assert box.property("error") == ""
    assert designer.program() is not None
    assert designer.program().analog[0].max_v == 9.0


def test_undo_and_redo_walk_through_the_edits(
    qtbot,
    designer: WaveformDesigner,
    program: WaveformProgram,
) -> None:
    type_into(qtbot, field(designer, "analog", 0, "shape", "stop"), "20")
    qtbot.mouseClick(button(designer, "addAnalog"), Qt.MouseButton.LeftButton)
    edited = designer.program()
    assert edited is not None and len(edited.analog) == 2
    assert edited.analog[1].physical_channel == "Dev1/ao1"
    designer.undo_stack.undo()
    assert len(designer.program().analog) == 1
    assert designer.program().analog[0].shape.stop == 20.0  # typing was one step
    designer.undo_stack.undo()
    assert designer.program() == program
    designer.undo_stack.redo()
    designer.undo_stack.redo()
    assert designer.program() == edited


def test_channels_are_added_reordered_removed_and_remapped(
    qtbot,
    designer: WaveformDesigner,
) -> None:
    qtbot.mouseClick(button(designer, "addAnalog"), Qt.MouseButton.LeftButton)
    field(designer, "analog", 1, "shape", "kind").setCurrentText("sawtooth")
    field(designer, "analog", 1, "physical_channel").setCurrentText("Dev1/ao3")
    qtbot.mouseClick(button(designer, "analog1:up"), Qt.MouseButton.LeftButton)
    p = designer.program()
    assert p is not None
    assert [a.physical_channel for a in p.analog] == ["Dev1/ao3", "Dev1/ao0"]
    assert p.analog[0].shape.kind == "sawtooth"
    qtbot.mouseClick(button(designer, "addLaser"), Qt.MouseButton.LeftButton)
    field(designer, "lasers", 1, "physical_line").setCurrentText("Dev1/port0/line2")
    assert [x.physical_line for x in designer.program().lasers] == [
        "Dev1/port0/line1",
        "Dev1/port0/line2",
    ]
    qtbot.mouseClick(button(designer, "analog0:remove"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(button(designer, "laser1:remove"), Qt.MouseButton.LeftButton)
    p = designer.program()
    assert [a.physical_channel for a in p.analog] == ["Dev1/ao0"]
    assert len(p.lasers) == 1


def test_apply_hands_the_program_over_and_shows_a_refusal(
    qtbot,
    program: WaveformProgram,
) -> None:
    got: list[WaveformProgram] = []

    def handler(p: WaveformProgram) -> str:
        got.append(p)
        if len(got) > 1:
            raise RuntimeError("this change needs a new start")
        return "applied: the next run plays it"

    d = WaveformDesigner(program, apply_handler=handler)
    qtbot.addWidget(d)
    assert d.apply() is True
    assert d.status.text() == "applied: the next run plays it"
    assert d.apply() is False
    assert d.status.text() == "Not applied: this change needs a new start"
    assert got == [program, program]


def test_preview_spans_and_cursor_readout(designer: WaveformDesigner) -> None:
    r = render(designer.program())
    preview = designer.preview
    frame_len = int(r.frames[1].start - r.frames[0].start)
    preview.span.setCurrentText("One frame")
    assert len(preview.traces()["galvo"]) == frame_len
    preview.span.setCurrentText("Three volumes")
    galvo = preview.traces()["galvo"]
    np.testing.assert_array_equal(galvo, np.tile(r.analog["Dev1/ao0"], 3))
    t = (r.frames[3].start + 50) / r.sample_rate_hz
    text = preview.readout_at(t)
    volts = r.analog["Dev1/ao0"][r.frames[3].start + 50]
    assert text.startswith(f"t = {t * 1e3:.3f} ms")
    assert f"galvo {volts:.4g} V" in text
    assert "laser 488nm high" in text and "camera trigger low" in text


def test_screenshot_shows_galvo_lasers_and_triggers(
    designer: WaveformDesigner, tmp_path: Path
) -> None:
    path = tmp_path / "designer.png"
    assert designer.grab().save(str(path))
    image = designer.grab().toImage()
    plot = designer.preview.plots.grab().toImage()
    assert image.width() >= 1000 and plot.height() > 300
    colors = {
        plot.pixelColor(x, y).name()
        for x in range(0, plot.width(), 3)
        for y in range(0, plot.height(), 3)
    }
    assert "#1f77b4" in colors  # the galvo trace
    assert any(c.startswith("#000000") for c in colors)  # trigger lane / markers
