"""The DAQ waveform designer: edit, preview, validate, undo, apply.

Applying hands a valid :class:`WaveformProgram` to a callback (the main window
decides: the next run uses it, or a looping run plays it from the next volume).
An invalid draft cannot be applied; each problem is shown at its field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence, QUndoCommand, QUndoStack
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mmapp.daq.program import WaveformProgram
from mmapp.gui.designer.editor import DraftForm, get_at, set_at
from mmapp.gui.designer.preview import WaveformPreview
from mmapp.gui.designer.validation import Checked, Path, check
from mmapp.gui.scroll import FormScrollArea

# -> status text; raises to refuse; None: pending (apply_done/apply_failed follow)
ApplyHandler = Callable[[WaveformProgram], str | None]


def channel_choices(device: str) -> dict[str, list[str]]:
    """Physical channels offered in the combos (X-series layout)."""
    return {
        "ao": [f"{device}/ao{i}" for i in range(4)],
        "do": [f"{device}/port0/line{i}" for i in range(32)],
        "ctr": [f"{device}/ctr{i}" for i in range(4)],
    }


def _shape_for(kind: str, old: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    positions = get_at(draft, ("timing", "positions_per_volume"))
    n = positions if isinstance(positions, int) and positions > 0 else 1
    if kind in ("sawtooth", "triangle"):
        return {
            "kind": kind,
            "start": old.get("start", -10.0),
            "stop": old.get("stop", 10.0),
        }
    if kind == "constant":
        return {"kind": kind, "value": old.get("value", old.get("start", 0.0))}
    if kind == "per_channel":
        return {"kind": kind, "values": dict.fromkeys(draft.get("channels", []), 0.0)}
    return {"kind": "custom", "values": [0.0] * n}


class _Edit(QUndoCommand):
    """One edit: the draft before and after (field edits merge while typing)."""

    def __init__(
        self,
        panel: WaveformDesigner,
        before: dict[str, Any],
        after: dict[str, Any],
        path: Path,
        structural: bool,
    ) -> None:
        super().__init__(".".join(map(str, path)))
        self.panel, self.before, self.after = panel, before, after
        self.path, self.structural = path, structural
        self._first = True

    def id(self) -> int:
        return -1 if self.structural else 1

    def mergeWith(self, other: QUndoCommand | None) -> bool:
        if not isinstance(other, _Edit) or other.path != self.path or other.structural:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        # the first time, a typed field already shows its text: keep its focus
        rebuild = self.structural or not self._first
        self._first = False
        self.panel.show_draft(copy.deepcopy(self.after), rebuild=rebuild)

    def undo(self) -> None:
        self.panel.show_draft(copy.deepcopy(self.before), rebuild=True)


class WaveformDesigner(QWidget):
    """Edits the full waveform program; `applied(program)` after a good Apply."""

    applied = pyqtSignal(object)

    def __init__(
        self,
        program: WaveformProgram | None = None,
        *,
        device: str = "Dev1",
        apply_handler: ApplyHandler | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.apply_handler = apply_handler
        self._pending: WaveformProgram | None = None  # an Apply being written
        self.undo_stack = QUndoStack(self)
        self.form = DraftForm(self._on_edit, channel_choices(device))
        self.preview = WaveformPreview()
        self.checked = Checked()
        self.draft: dict[str, Any] = {}

        # as wide as the form needs: it never scrolls sideways (labels cut off)
        self.scroll = FormScrollArea(self.form)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.scroll)
        split.addWidget(self.preview)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("designerStatus")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("applyProgram")
        self.apply_button.clicked.connect(self.apply)
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.undo_button.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_button.setShortcut(QKeySequence.StandardKey.Redo)
        self.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.redo_button)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        self.set_program(program or WaveformProgram())

    # --- document ------------------------------------------------------------------
    def set_program(self, program: WaveformProgram) -> None:
        """Show a program (a new document: the undo history starts again)."""
        self.undo_stack.clear()
        self.show_draft(program.model_dump(mode="json"), rebuild=True)

    def set_device(self, device: str) -> None:
        """Offer the physical channels of another card (the rig's DAQ device)."""
        self.form.choices = channel_choices(device)
        self.form.build(self.draft)
        self.form.fields.mark(self.checked.errors)

    def program(self) -> WaveformProgram | None:
        """The program as edited, or None while it is invalid."""
        return self.checked.program if self.checked.ok else None

    def errors(self) -> dict[Path, str]:
        """Field path -> reason, for the draft as it is now."""
        return dict(self.checked.errors)

    def show_draft(self, draft: dict[str, Any], *, rebuild: bool) -> None:
        """Show this draft (rebuilding the form if its structure changed)."""
        self.draft = draft
        if rebuild:
            self.form.build(draft)
        self.checked = check(draft)
        self.form.fields.mark(self.checked.errors)
        names = {
            a["physical_channel"]: a["name"]
            for a in draft.get("analog", [])
            if isinstance(a, dict) and "physical_channel" in a and "name" in a
        }
        for laser in draft.get("lasers", []):
            if isinstance(laser, dict) and "physical_line" in laser:
                names[laser["physical_line"]] = f"laser {laser.get('channel', '')}"
        if self.checked.ok:
            self.preview.show_program(self.checked.rendered, names)
            r = self.checked.rendered
            assert r is not None
            self.status.setText(
                f"{len(r.frames)} frames per cycle, {r.samples_per_cycle} samples "
                f"({r.samples_per_cycle / r.sample_rate_hz * 1e3:.2f} ms)"
            )
            self.status.setStyleSheet("")
        else:
            self.preview.show_program(None)
            text = "; ".join(
                f"{'.'.join(map(str, p)) or 'program'}: {msg}"
                for p, msg in self.checked.errors.items()
            )
            self.status.setText(f"Cannot apply: {text}")
            self.status.setStyleSheet("color: #d62728;")
        self.apply_button.setEnabled(self.checked.ok and self._pending is None)

    # --- edits ------------------------------------------------------------------------
    def _on_edit(self, path: Path, value: Any, structural: bool) -> None:
        before = copy.deepcopy(self.draft)
        after = copy.deepcopy(self.draft)
        op = path[-1]
        if structural and op in ("+", "up", "down", "remove"):
            self._structure(after, path[:-1], op)
        elif path[-2:] == ("shape", "kind") and isinstance(value, str):
            old = get_at(after, path[:-1]) or {}
            set_at(after, path[:-1], _shape_for(value, old, after))
        else:
            set_at(after, path, value)
        if after != before:
            self.undo_stack.push(_Edit(self, before, after, path, structural))

    def _structure(self, draft: dict[str, Any], path: Path, op: str) -> None:
        key = path[0]
        if op == "+" and key == "analog":
            used = {a.get("physical_channel") for a in draft.get("analog", [])}
            free = [c for c in self.form.choices["ao"] if c not in used]
            n = len(draft.get("analog", [])) + 1
            draft.setdefault("analog", []).append(
                {
                    "name": f"analog {n}",
                    "physical_channel": free[0] if free else "",
                    "shape": {"kind": "constant", "value": 0.0},
                }
            )
        elif op == "+" and key == "lasers":
            channels = draft.get("channels") or [""]
            used = {laser.get("physical_line") for laser in draft.get("lasers", [])}
            free = [c for c in self.form.choices["do"] if c not in used]
            draft.setdefault("lasers", []).append(
                {"channel": channels[0], "physical_line": free[0] if free else ""}
            )
        elif op == "+" and key == "camera_trigger":
            draft["camera_trigger"] = {"physical_line": self.form.choices["do"][7]}
        elif key == "camera_trigger":
            draft["camera_trigger"] = None
        else:
            items = draft[key]
            i = int(path[1])
            if op == "remove":
                del items[i]
            else:
                j = i - 1 if op == "up" else i + 1
                items[i], items[j] = items[j], items[i]

    # --- apply ------------------------------------------------------------------------
    def apply(self) -> bool:
        """Hand the program to the rig (refused while the draft is invalid)."""
        program = self.program()
        if program is None:
            return False
        if self.apply_handler is not None:
            try:
                text = self.apply_handler(program)
            except Exception as exc:  # the handler refused: say why, keep the draft
                self.apply_failed(str(exc))
                return False
            if text is None:  # the card is being written off the GUI thread
                self._pending = program
                self.apply_button.setEnabled(False)
                self.status.setText("Applying: writing the program to the card…")
                self.status.setStyleSheet("")
                return True
            self.status.setText(text)
            self.status.setStyleSheet("color: #2ca02c;")
        self.applied.emit(program)
        return True

    @property
    def applying(self) -> bool:
        """An Apply is being written to the card."""
        return self._pending is not None

    def apply_done(self, text: str) -> None:
        """The pending Apply took effect (called on the GUI thread)."""
        program, self._pending = self._pending, None
        self.apply_button.setEnabled(self.checked.ok)
        self.status.setText(text)
        self.status.setStyleSheet("color: #2ca02c;")
        if program is not None:
            self.applied.emit(program)

    def apply_failed(self, reason: str) -> None:
        """The Apply was refused or failed: say why, keep the draft."""
        self._pending = None
        self.apply_button.setEnabled(self.checked.ok)
        self.status.setText(f"Not applied: {reason}")
        self.status.setStyleSheet("color: #d62728;")
