"""A scroll area for forms: scrolls up and down, never sideways.

A dock's form without a scroll area shrinks its fields to slivers when the dock
is short; in a plain QScrollArea it may be wider than the dock, and then part
of it is scrolled out of view to the side (with the horizontal bar off, the
operator cannot even scroll it back). This area is always as wide as its form
needs, so the form fits across, and it scrolls vertically when the dock is
shorter than the form.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, QSize, Qt
from PyQt6.QtWidgets import QFrame, QScrollArea, QWidget

MIN_VISIBLE_HEIGHT = 120  # a dock shorter than this shows too little to scroll


class FormScrollArea(QScrollArea):
    """Holds one form; its minimum width is the form's, plus a scroll bar."""

    def __init__(self, form: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(form)  # which also installs this area's event filter on it

    def _extra_width(self) -> int:
        bar = self.verticalScrollBar()
        bar_width = bar.sizeHint().width() if bar is not None else 0
        return bar_width + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        """As wide as the form's minimum (and a scroll bar), a few rows high."""
        form = self.widget()
        if form is None:
            return super().minimumSizeHint()
        hint = form.minimumSizeHint()
        height = min(hint.height(), MIN_VISIBLE_HEIGHT) + 2 * self.frameWidth()
        return QSize(hint.width() + self._extra_width(), height)

    def sizeHint(self) -> QSize:
        """The form's own size hint (and a scroll bar)."""
        form = self.widget()
        if form is None:
            return super().sizeHint()
        hint = form.sizeHint()
        return QSize(hint.width() + self._extra_width(), hint.height())

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        """The form's layout changed: its width may have, too (and the form
        starts at its left edge again)."""
        if (
            watched is self.widget()
            and event is not None
            and event.type() == QEvent.Type.LayoutRequest
        ):
            self.updateGeometry()
            bar = self.horizontalScrollBar()
            if bar is not None:
                bar.setValue(0)
        return super().eventFilter(watched, event)
