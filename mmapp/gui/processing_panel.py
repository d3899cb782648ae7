"""The Processing dock: the run's processing chain, edited as a list of steps.

Steps are listed in order (checkbox: enabled; drag or Up/Down to reorder;
Remove), Add offers every available processor (one that cannot be loaded is
greyed out, its error as tooltip), and the selected step's parameters are a
form built from its JSON schema. A value its processor refuses is shown with
the processor's message and not applied. Every accepted edit replaces the
chain (a frozen model) and emits `chain_changed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QStandardItemModel
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mmapp.gui.wheel import guard_wheel
from mmapp.processing import (
    ProcessingChain,
    ProcessingStep,
    ProcessorInfo,
    available_processors,
    check_params,
)

STEP_ROLE = Qt.ItemDataRole.UserRole
ON_ERROR = ("stop", "disable")
INT_LIMIT = 2_147_483_647
NUMBER_LIMIT = 1e12


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with `$ref` / single `allOf` followed."""
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {
            **schema["allOf"][0],
            **{k: v for k, v in schema.items() if k != "allOf"},
        }
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.rsplit("/", 1)[1], {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _unwrap_nullable(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict, bool]:
    """(the non-null schema, whether null is allowed)."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(options):
            return _resolve({**kept[0], "title": schema.get("title")}, root), True
    return _resolve(schema, root), False


class ParamField:
    """One parameter's editor: reads and shows its value (None: not set)."""

    def __init__(self, name: str, schema: dict[str, Any], root: dict[str, Any]) -> None:
        self.name = name
        inner, self.nullable = _unwrap_nullable(schema, root)
        self.editor = self._editor(inner)
        self.enabled_box: QCheckBox | None = None
        if self.nullable:
            self.enabled_box = QCheckBox()
            self.enabled_box.setToolTip(f"set {name} (unticked: not given)")
            self.enabled_box.toggled.connect(self.editor.setEnabled)
            self.editor.setEnabled(False)
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        if self.enabled_box is not None:
            row.addWidget(self.enabled_box)
        row.addWidget(self.editor, 1)
        if description := schema.get("description") or inner.get("description"):
            self.widget.setToolTip(str(description))

    def _editor(self, s: dict[str, Any]) -> QWidget:
        kind = s.get("type")
        if "enum" in s:
            box = QComboBox()
            self.choices = list(s["enum"])
            box.addItems([str(c) for c in self.choices])
            return box
        if kind == "integer":
            spin = QSpinBox()
            spin.setRange(
                int(s.get("minimum", s.get("exclusiveMinimum", -INT_LIMIT - 1) + 1)),
                int(s.get("maximum", s.get("exclusiveMaximum", INT_LIMIT + 1) - 1)),
            )
            return spin
        if kind == "number":
            dspin = QDoubleSpinBox()
            dspin.setDecimals(3)
            dspin.setRange(
                float(s.get("minimum", s.get("exclusiveMinimum", -NUMBER_LIMIT))),
                float(s.get("maximum", s.get("exclusiveMaximum", NUMBER_LIMIT))),
            )
            return dspin
        if kind == "boolean":
            return QCheckBox()
        return QLineEdit()

    def set_value(self, value: Any) -> None:
        """Show `value` (None: not set)."""
        if self.enabled_box is not None:
            self.enabled_box.setChecked(value is not None)
        if value is None:
            return
        e = self.editor
        if isinstance(e, QComboBox):
            if value in self.choices:
                e.setCurrentIndex(self.choices.index(value))
        elif isinstance(e, QSpinBox):
            e.setValue(int(value))
        elif isinstance(e, QDoubleSpinBox):
            e.setValue(float(value))
        elif isinstance(e, QCheckBox):
            e.setChecked(bool(value))
        elif isinstance(e, QLineEdit):
            e.setText(str(value))

    def value(self) -> Any:
        """The value shown (None: not set)."""
        if self.enabled_box is not None and not self.enabled_box.isChecked():
            return None
        e = self.editor
        if isinstance(e, QComboBox):
            return self.choices[e.currentIndex()]
        if isinstance(e, QSpinBox | QDoubleSpinBox):
            return e.value()
        if isinstance(e, QCheckBox):
            return e.isChecked()
        assert isinstance(e, QLineEdit)
        return e.text()

    def connect(self, slot: Callable[[], None]) -> None:
        """Call `slot` when the operator changes the value."""
        e = self.editor
        if isinstance(e, QComboBox):
            e.currentIndexChanged.connect(slot)
        elif isinstance(e, QSpinBox | QDoubleSpinBox):
            e.valueChanged.connect(slot)
        elif isinstance(e, QCheckBox):
            e.toggled.connect(slot)
        elif isinstance(e, QLineEdit):
            e.editingFinished.connect(slot)
        if self.enabled_box is not None:
            self.enabled_box.toggled.connect(slot)


def starting_params(info: ProcessorInfo) -> dict[str, Any]:
    """Parameters a newly added step starts with: its defaults, or (when they
    are refused, e.g. "give exactly one of ...") the first optional number set
    to its smallest value."""
    candidates: list[dict[str, Any]] = [{}]
    root = info.param_schema
    for name, schema in root.get("properties", {}).items():
        inner, nullable = _unwrap_nullable(schema, root)
        if nullable and inner.get("type") in ("number", "integer"):
            candidates.append({name: inner.get("minimum", 0)})
    for params in candidates:
        try:
            check_params(info.name, params)
        except ValueError:
            continue
        return params
    return {}


class ProcessingPanel(QWidget):
    """Edits a ProcessingChain; `chain_changed(chain)` after each accepted edit."""

    chain_changed = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chain = ProcessingChain()
        self._showing = False
        self.infos: dict[str, ProcessorInfo] = {}
        self.fields: list[ParamField] = []
        layout = QVBoxLayout(self)

        steps_box = QGroupBox("Steps (in order; ticked: enabled)")
        steps = QVBoxLayout(steps_box)
        self.steps = QListWidget()
        self.steps.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.steps.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.steps.setMinimumHeight(90)
        steps.addWidget(self.steps)
        buttons = QHBoxLayout()
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.remove_button = QPushButton("Remove")
        for b in (self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(b)
        steps.addLayout(buttons)
        add_row = QHBoxLayout()
        self.add_combo = QComboBox()
        self.add_button = QPushButton("Add")
        add_row.addWidget(self.add_combo, 1)
        add_row.addWidget(self.add_button)
        steps.addLayout(add_row)
        layout.addWidget(steps_box)

        self.params_box = QGroupBox("Parameters")
        self.params_form = QFormLayout(self.params_box)
        layout.addWidget(self.params_box)

        options = QGroupBox("Options")
        form = QFormLayout(options)
        self.save_raw = QCheckBox("also save the raw frames")
        self.on_error = QComboBox()
        self.on_error.addItems(list(ON_ERROR))
        self.on_error.setToolTip(
            "a processor that fails: stop the run, or disable processing "
            "for the rest of it (raw frames go on being saved)"
        )
        form.addRow("Save raw frames", self.save_raw)
        form.addRow("On error", self.on_error)
        layout.addWidget(options)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c62828;")
        layout.addWidget(self.message)
        layout.addStretch(1)

        self.steps.currentRowChanged.connect(self._show_params)
        self.steps.itemChanged.connect(self._on_item_changed)
        model = self.steps.model()
        assert model is not None
        model.rowsMoved.connect(self._from_list)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.remove_button.clicked.connect(self.remove_selected)
        self.add_button.clicked.connect(lambda: self.add_step(self._chosen()))
        self.save_raw.toggled.connect(self._on_options)
        self.on_error.currentIndexChanged.connect(self._on_options)
        self.refresh_processors()
        self.show_chain(self.chain)
        guard_wheel(self)

    # --- processors ------------------------------------------------------------------
    def refresh_processors(self) -> None:
        """Fill Add with the available processors (unloadable ones disabled)."""
        self.infos = {i.name: i for i in available_processors()}
        self.add_combo.clear()
        model = self.add_combo.model()
        assert isinstance(model, QStandardItemModel)
        for i, info in enumerate(self.infos.values()):
            self.add_combo.addItem(info.name, info.name)
            item = model.item(i)
            assert item is not None
            if info.error:
                item.setEnabled(False)
                item.setToolTip(f"cannot be loaded: {info.error}")
            else:
                item.setToolTip(f"{info.description} ({info.source})")

    def _chosen(self) -> str:
        return str(self.add_combo.currentData() or "")

    # --- chain -> widgets ------------------------------------------------------------
    def show_chain(self, chain: ProcessingChain) -> None:
        """Show `chain` (e.g. a loaded preset's); emits nothing."""
        self.chain = chain
        row = max(self.steps.currentRow(), 0)
        self._showing = True
        try:
            self.steps.clear()
            for step in chain.steps:
                item = QListWidgetItem(self._label(step))
                item.setData(STEP_ROLE, step)
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsUserCheckable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                item.setCheckState(
                    Qt.CheckState.Checked if step.enabled else Qt.CheckState.Unchecked
                )
                self.steps.addItem(item)
            self.save_raw.setChecked(chain.save_raw)
            self.on_error.setCurrentIndex(ON_ERROR.index(chain.on_error))
        finally:
            self._showing = False
        if chain.steps:
            self.steps.setCurrentRow(min(row, len(chain.steps) - 1))
        self._show_params(self.steps.currentRow())

    def _label(self, step: ProcessingStep) -> str:
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        return f"{step.name} ({params})" if params else step.name

    def _show_params(self, row: int) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.fields = []
        item = self.steps.item(row) if row >= 0 else None
        if item is None:
            self.params_box.setTitle("Parameters")
            return
        step: ProcessingStep = item.data(STEP_ROLE)
        self.params_box.setTitle(f"Parameters of {step.name}")
        info = self.infos.get(step.name)
        root = info.param_schema if info is not None else {}
        properties = root.get("properties", {})
        if not properties:
            self.params_form.addRow(QLabel("(no parameters)"))
            return
        for name, schema in properties.items():
            f = ParamField(name, schema, root)
            f.set_value(step.params.get(name, schema.get("default")))
            f.connect(self._on_param_edited)
            self.fields.append(f)
            self.params_form.addRow(str(schema.get("title") or name), f.widget)
        guard_wheel(self)

    # --- widgets -> chain ------------------------------------------------------------
    def _apply(self, chain_data: dict[str, Any]) -> bool:
        """Replace the chain (validated); False and a message if refused."""
        try:
            chain = ProcessingChain(**chain_data)
        except ValueError as exc:
            self.message.setText(_first_line(exc))
            self.show_chain(self.chain)  # the refused edit is undone
            return False
        self.message.clear()
        self.chain = chain
        self.chain_changed.emit(chain)
        return True

    def _data(self, steps: list[ProcessingStep] | None = None) -> dict[str, Any]:
        return {
            **{k: getattr(self.chain, k) for k in ("workers", "queue_mb")},
            "steps": list(self.chain.steps) if steps is None else steps,
            "save_raw": self.save_raw.isChecked(),
            "on_error": self.on_error.currentText(),
        }

    def _listed_steps(self) -> list[ProcessingStep]:
        steps = []
        for i in range(self.steps.count()):
            item = self.steps.item(i)
            assert item is not None
            step: ProcessingStep = item.data(STEP_ROLE)
            enabled = item.checkState() == Qt.CheckState.Checked
            if step.enabled != enabled:
                step = step.model_copy(update={"enabled": enabled})
            steps.append(step)
        return steps

    def _from_list(self, *_: object) -> None:
        if not self._showing:
            self._apply(self._data(self._listed_steps()))

    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        self._from_list()

    def _on_options(self) -> None:
        if not self._showing:
            self._apply(self._data())

    def _on_param_edited(self) -> None:
        row = self.steps.currentRow()
        if self._showing or row < 0:
            return
        step = self.chain.steps[row]
        params = {f.name: v for f in self.fields if (v := f.value()) is not None}
        try:
            check_params(step.name, params)
        except ValueError as exc:
            self.message.setText(_first_line(exc))
            return  # not applied: the field keeps the value so it can be fixed
        new = ProcessingStep(
            name=step.name, params=params, enabled=step.enabled, on_error=step.on_error
        )
        steps = list(self.chain.steps)
        steps[row] = new
        if self._apply(self._data(steps)):
            item = self.steps.item(row)
            assert item is not None
            self._showing = True
            item.setData(STEP_ROLE, new)
            item.setText(self._label(new))
            self._showing = False

    # --- actions ---------------------------------------------------------------------
    def add_step(self, name: str) -> bool:
        """Append processor `name` (its starting parameters) and select it."""
        info = self.infos.get(name)
        if info is None or info.error:
            self.message.setText(f"{name}: not available")
            return False
        try:
            step = ProcessingStep(name=name, params=starting_params(info))
        except ValueError as exc:
            self.message.setText(_first_line(exc))
            return False
        if self._apply(self._data([*self.chain.steps, step])):
            self.show_chain(self.chain)
            self.steps.setCurrentRow(len(self.chain.steps) - 1)
            return True
        return False

    def move_selected(self, by: int) -> None:
        """Move the selected step up (-1) or down (+1)."""
        row = self.steps.currentRow()
        to = row + by
        if row < 0 or not 0 <= to < self.steps.count():
            return
        steps = list(self.chain.steps)
        steps.insert(to, steps.pop(row))
        if self._apply(self._data(steps)):
            self.show_chain(self.chain)
            self.steps.setCurrentRow(to)

    def remove_selected(self) -> None:
        """Remove the selected step."""
        row = self.steps.currentRow()
        if row < 0:
            return
        steps = list(self.chain.steps)
        del steps[row]
        if self._apply(self._data(steps)):
            self.show_chain(self.chain)

    def set_run_state(self, state: str) -> None:
        """Editable when idle or in Live (Start then runs the chain); locked
        while acquiring."""
        self.setEnabled(state in ("idle", "live"))


def _first_line(exc: Exception) -> str:
    """A validation error's message without pydantic's link lines."""
    lines = [
        line for line in str(exc).splitlines() if "errors.pydantic.dev" not in line
    ]
    return " ".join(line.strip() for line in lines if line.strip())
