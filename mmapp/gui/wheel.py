"""The mouse wheel scrolls forms; it changes a field only when that field has focus.

Qt's spin boxes and combo boxes take wheel events (and the focus) as the
pointer passes over them, so scrolling a long form changes whatever value
slides under the cursor. `guard_wheel(root)` gives every spin box and combo
box under `root` strong focus (click or Tab, not the wheel) and a filter that
passes the wheel on to the scroll area unless the field has focus.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget

GUARDED = (QAbstractSpinBox, QComboBox)


class _WheelGuard(QObject):
    """Ignores wheel events of an unfocused field: Qt then offers them to its
    parents (the scroll area scrolls)."""

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if (
            event is not None
            and event.type() == QEvent.Type.Wheel
            and isinstance(watched, QWidget)
            and not watched.hasFocus()
        ):
            event.ignore()
            return True
        return False


def guard_wheel(root: QWidget) -> None:
    """Guard every spin box and combo box under `root` (again after adding some:
    a field is guarded once)."""
    guard = root.findChild(_WheelGuard, "wheelGuard")
    if guard is None:
        guard = _WheelGuard(root)
        guard.setObjectName("wheelGuard")
    for widget in root.findChildren(QWidget):
        if isinstance(widget, GUARDED) and not widget.property("wheelGuarded"):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(guard)
            widget.setProperty("wheelGuarded", True)
