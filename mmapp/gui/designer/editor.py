"""Form widgets that edit a draft waveform program (a JSON-like dict).

Every field knows its path in the draft. Typing writes the value at that path
(text that is not a number is kept as text, so validation can say so), and the
panel marks the field with the reason when the draft is invalid there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mmapp.gui.designer.validation import Path
from mmapp.gui.wheel import guard_wheel

ERROR_STYLE = "border: 2px solid #d62728; background: #fff0f0;"
# physical units shown in the form -> model units
SCALE = {"s->ms": 1e3, "s->us": 1e6}
COMBO_MIN_CHARS = 10  # characters a choice box shows at least


def get_at(draft: Any, path: Path) -> Any:
    """The value at a path (None if missing)."""
    node = draft
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def set_at(draft: Any, path: Path, value: Any) -> None:
    """Write a value at a path (intermediate dicts are created)."""
    node = draft
    for part in path[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def parse_number(text: str, scale: float = 1.0) -> float | str:
    """A float in model units, or the text itself (validation names it)."""
    try:
        return float(text.strip()) / scale
    except ValueError:
        return text


def format_number(value: Any, scale: float = 1.0) -> str:
    """Model value -> the text shown in the form."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * scale:.10g}"
    return "" if value is None else str(value)


def _form(group: QGroupBox) -> QFormLayout:
    """A form whose labels go above their fields when the form is narrow."""
    form = QFormLayout(group)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


class FieldRegistry:
    """Path -> widget, to show validation errors where they belong."""

    def __init__(self) -> None:
        self.widgets: dict[Path, QWidget] = {}

    def add(self, path: Path, widget: QWidget) -> QWidget:
        """Remember a widget for a path."""
        self.widgets[path] = widget
        widget.setObjectName("field:" + ".".join(map(str, path)))
        return widget

    def clear(self) -> None:
        """Forget every widget (the form is being rebuilt)."""
        self.widgets.clear()

    def mark(self, errors: dict[Path, str]) -> None:
        """Red border and the reason as tooltip on each field with an error."""
        for path, widget in self.widgets.items():
            text = errors.get(path)
            if text is None:  # a group-level error (a whole channel) marks its box
                text = next(
                    (
                        msg
                        for p, msg in errors.items()
                        if p
                        and len(p) < len(path)
                        and path[: len(p)] == p
                        and isinstance(widget, QGroupBox)
                    ),
                    None,
                )
            widget.setStyleSheet(
                (
                    "QGroupBox { " + ERROR_STYLE + " }"
                    if isinstance(widget, QGroupBox)
                    else ERROR_STYLE
                )
                if text
                else ""
            )
            widget.setToolTip(text or "")
            widget.setProperty("error", text or "")


class DraftForm(QWidget):
    """The whole program as a form; `edited(path, value, structural)` on changes."""

    def __init__(
        self,
        edited: Callable[[Path, Any, bool], None],
        choices: dict[str, list[str]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._edited = edited
        self.choices = choices
        self.fields = FieldRegistry()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._content: QWidget | None = None

    # --- building -----------------------------------------------------------------
    def build(self, draft: dict[str, Any]) -> None:
        """(Re)build every widget from the draft."""
        self.fields.clear()
        if self._content is not None:
            self._content.setParent(None)
            self._content.deleteLater()
        content = QWidget()
        box = QVBoxLayout(content)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self._timing_box(draft))
        for i, analog in enumerate(draft.get("analog", [])):
            box.addWidget(self._analog_box(i, analog, len(draft["analog"])))
        add = QPushButton("Add analog channel")
        add.setObjectName("addAnalog")
        add.clicked.connect(lambda: self._edited(("analog", "+"), None, True))
        box.addWidget(add)
        box.addWidget(self._digital_box(draft))
        box.addStretch(1)
        guard_wheel(content)  # the wheel scrolls the form, never a field under it
        self._layout.addWidget(content)
        self._content = content

    def _number(self, path: Path, value: Any, scale: float = 1.0) -> QLineEdit:
        edit = QLineEdit(format_number(value, scale))
        edit.textEdited.connect(
            lambda text: self._edited(path, parse_number(text, scale), False)
        )
        self.fields.add(path, edit)
        return edit

    def _text(self, path: Path, value: Any) -> QLineEdit:
        edit = QLineEdit("" if value is None else str(value))
        edit.textEdited.connect(lambda text: self._edited(path, text, False))
        self.fields.add(path, edit)
        return edit

    def _combo(
        self,
        path: Path,
        value: Any,
        items: list[str],
        *,
        editable: bool = False,
        structural: bool = False,
    ) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(editable)
        # as wide as the form allows, not as the longest choice ("Dev1/port0/line31")
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        combo.setMinimumContentsLength(COMBO_MIN_CHARS)
        combo.addItems(items)
        combo.setCurrentText("" if value is None else str(value))
        signal = combo.currentTextChanged
        signal.connect(lambda text: self._edited(path, text, structural))
        self.fields.add(path, combo)
        return combo

    def _timing_box(self, draft: dict[str, Any]) -> QGroupBox:
        group = QGroupBox("Timing and topology")
        form = _form(group)
        t = draft.get("timing", {})
        form.addRow(
            "Sample rate (Hz)",
            self._number(("timing", "sample_rate_hz"), t.get("sample_rate_hz")),
        )
        ms = SCALE["s->ms"]
        form.addRow(
            "Exposure (ms)",
            self._number(("timing", "exposure_s"), t.get("exposure_s"), ms),
        )
        form.addRow(
            "Readout (ms)",
            self._number(("timing", "readout_s"), t.get("readout_s"), ms),
        )
        form.addRow(
            "Positions per volume",
            self._number(
                ("timing", "positions_per_volume"), t.get("positions_per_volume")
            ),
        )
        form.addRow(
            "Flyback (ms)",
            self._number(("timing", "flyback_s"), t.get("flyback_s"), ms),
        )
        form.addRow(
            "Trigger topology",
            self._combo(
                ("topology",), draft.get("topology"), ["daq_master", "camera_master"]
            ),
        )
        form.addRow(
            "Channel interleave",
            self._combo(("interleave",), draft.get("interleave"), ["frame", "volume"]),
        )
        channels = QLineEdit(", ".join(draft.get("channels", [])))
        channels.textEdited.connect(
            lambda text: self._edited(
                ("channels",), [c.strip() for c in text.split(",") if c.strip()], False
            )
        )
        self.fields.add(("channels",), channels)
        form.addRow("Imaging channels", channels)
        return group

    def _analog_box(self, i: int, a: dict[str, Any], count: int) -> QGroupBox:
        group = QGroupBox(f"Analog {i + 1}: {a.get('name', '')}")
        self.fields.add(("analog", i), group)
        form = _form(group)
        base: Path = ("analog", i)
        form.addRow("Name", self._text((*base, "name"), a.get("name")))
        form.addRow(
            "Physical channel",
            self._combo(
                (*base, "physical_channel"),
                a.get("physical_channel"),
                self.choices.get("ao", []),
                editable=True,
            ),
        )
        shape = a.get("shape", {})
        kind = shape.get("kind", "sawtooth")
        form.addRow(
            "Shape",
            self._combo(
                (*base, "shape", "kind"),
                kind,
                ["sawtooth", "triangle", "constant", "per_channel", "custom"],
                structural=True,
            ),
        )
        unit = a.get("calibration", {}).get("unit", "um")
        if kind in ("sawtooth", "triangle"):
            form.addRow(
                f"Start ({unit})",
                self._number((*base, "shape", "start"), shape.get("start")),
            )
            form.addRow(
                f"Stop ({unit})",
                self._number((*base, "shape", "stop"), shape.get("stop")),
            )
        elif kind == "constant":
            form.addRow(
                f"Value ({unit})",
                self._number((*base, "shape", "value"), shape.get("value")),
            )
        elif kind == "per_channel":
            for channel, value in shape.get("values", {}).items():
                form.addRow(
                    f"{channel} ({unit})",
                    self._number((*base, "shape", "values", channel), value),
                )
        else:
            values = QLineEdit(
                ", ".join(format_number(v) for v in shape.get("values", []))
            )
            values.textEdited.connect(
                lambda text: self._edited(
                    (*base, "shape", "values"),
                    [parse_number(v) for v in text.split(",") if v.strip()],
                    False,
                )
            )
            self.fields.add((*base, "shape", "values"), values)
            form.addRow(f"Values ({unit}, one per position)", values)
        cal = a.get("calibration", {})
        form.addRow("Unit", self._text((*base, "calibration", "unit"), cal.get("unit")))
        form.addRow(
            f"Volts per {unit}",
            self._number(
                (*base, "calibration", "volts_per_unit"), cal.get("volts_per_unit")
            ),
        )
        form.addRow(
            "Offset (V)",
            self._number((*base, "calibration", "offset_v"), cal.get("offset_v")),
        )
        form.addRow("Min (V)", self._number((*base, "min_v"), a.get("min_v")))
        form.addRow("Max (V)", self._number((*base, "max_v"), a.get("max_v")))
        form.addRow("Park (V)", self._number((*base, "park_v"), a.get("park_v")))
        buttons = QHBoxLayout()
        for label, op, enabled in (
            ("Up", "up", i > 0),
            ("Down", "down", i < count - 1),
            ("Remove", "remove", True),
        ):
            button = QPushButton(label)
            button.setObjectName(f"analog{i}:{op}")
            button.setEnabled(enabled)
            button.clicked.connect(
                lambda _c=False, op=op: self._edited((*base, op), None, True)
            )
            buttons.addWidget(button)
        form.addRow(buttons)
        return group

    def _digital_box(self, draft: dict[str, Any]) -> QGroupBox:
        group = QGroupBox("Digital lines")
        form = _form(group)
        for i, laser in enumerate(draft.get("lasers", [])):
            row = QHBoxLayout()
            row.addWidget(
                self._combo(
                    ("lasers", i, "channel"),
                    laser.get("channel"),
                    list(draft.get("channels", [])),
                    editable=True,
                )
            )
            row.addWidget(
                self._combo(
                    ("lasers", i, "physical_line"),
                    laser.get("physical_line"),
                    self.choices.get("do", []),
                    editable=True,
                )
            )
            remove = QPushButton("Remove")
            remove.setObjectName(f"laser{i}:remove")
            remove.clicked.connect(
                lambda _c=False, i=i: self._edited(("lasers", i, "remove"), None, True)
            )
            row.addWidget(remove)
            form.addRow(f"Laser blanking {i + 1}", row)
        add = QPushButton("Add laser line")
        add.setObjectName("addLaser")
        add.clicked.connect(lambda: self._edited(("lasers", "+"), None, True))
        form.addRow(add)
        trig = draft.get("camera_trigger")
        if trig is None:
            button = QPushButton("Add camera trigger")
            button.setObjectName("addTrigger")
            button.clicked.connect(
                lambda: self._edited(("camera_trigger", "+"), None, True)
            )
            form.addRow(button)
        else:
            row = QHBoxLayout()
            row.addWidget(
                self._combo(
                    ("camera_trigger", "physical_line"),
                    trig.get("physical_line"),
                    self.choices.get("do", []) + self.choices.get("ctr", []),
                    editable=True,
                )
            )
            row.addWidget(
                self._number(
                    ("camera_trigger", "pulse_s"), trig.get("pulse_s"), SCALE["s->us"]
                )
            )
            remove = QPushButton("Remove")
            remove.setObjectName("trigger:remove")
            remove.clicked.connect(
                lambda: self._edited(("camera_trigger", "remove"), None, True)
            )
            row.addWidget(remove)
            form.addRow("Camera trigger (line, pulse µs)", row)
        return group
