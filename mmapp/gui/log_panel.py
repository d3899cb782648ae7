"""Log panel: Python log records from any thread, shown on the GUI thread."""

from __future__ import annotations

import contextlib
import logging

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QColor, QTextCharFormat, QTextCursor
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_LINES = 5000
_COLOURS = {
    logging.WARNING: QColor("#b36b00"),
    logging.ERROR: QColor("#c62828"),
    logging.CRITICAL: QColor("#c62828"),
}


class _Relay(QObject):
    record = pyqtSignal(str, int)  # queued to the GUI thread when emitted elsewhere


class QtLogHandler(logging.Handler):
    """A logging handler that forwards formatted records through a Qt signal."""

    def __init__(self, relay: _Relay) -> None:
        super().__init__(logging.INFO)
        self.relay = relay
        self.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        """Format and hand over (never raises into the caller)."""
        if record.name.startswith("pymmcore") and (
            record.levelno < logging.WARNING
            or record.getMessage().startswith("MDA Canceled")  # every Stop says so
        ):
            return  # its chatter stays on the console
        with contextlib.suppress(Exception):  # the panel is gone: drop the line
            self.relay.record.emit(self.format(record), record.levelno)


class LogPanel(QWidget):
    """Bounded log view; attach() hooks it to the `mmapp` and pymmcore-plus loggers."""

    LOGGERS = ("mmapp", "pymmcore-plus")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QPlainTextEdit(readOnly=True)
        self.view.setMaximumBlockCount(MAX_LINES)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.view.clear)
        bar = QHBoxLayout()
        bar.addStretch(1)
        bar.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view)
        layout.addLayout(bar)
        self._relay = _Relay(self)
        self._relay.record.connect(self.append)
        self.handler = QtLogHandler(self._relay)
        self._attached: list[logging.Logger] = []

    def attach(self) -> None:
        """Start showing records of the app's loggers."""
        for name in self.LOGGERS:
            log = logging.getLogger(name)
            if name == "mmapp" and log.level in (logging.NOTSET, logging.WARNING):
                log.setLevel(logging.INFO)
            log.addHandler(self.handler)
            self._attached.append(log)

    def detach(self) -> None:
        """Stop receiving records (before the panel is destroyed)."""
        for log in self._attached:
            log.removeHandler(self.handler)
        self._attached.clear()

    def append(self, text: str, level: int = logging.INFO) -> None:
        """Add one line (GUI thread). The view follows the newest line unless the
        operator has scrolled up to read (then it stays where it is)."""
        fmt = QTextCharFormat()
        colour = _COLOURS.get(level)
        if colour is not None:
            fmt.setForeground(colour)
        bar = self.view.verticalScrollBar()
        assert bar is not None
        follow = bar.value() >= bar.maximum()
        document = self.view.document()
        assert document is not None
        # scroll values count lines: the oldest line drops out when the log is full
        kept = bar.value() - (document.blockCount() >= MAX_LINES)
        # a cursor of its own: the operator's selection and cursor stay put
        cursor = QTextCursor(document)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not document.isEmpty():
            cursor.insertBlock()
        cursor.insertText(text, fmt)
        bar.setValue(bar.maximum() if follow else max(kept, 0))

    def following(self) -> bool:
        """Whether the view shows the newest line (it follows new messages)."""
        bar = self.view.verticalScrollBar()
        assert bar is not None
        return bar.value() >= bar.maximum()

    def text(self) -> str:
        """Everything shown (for tests)."""
        return self.view.toPlainText()
