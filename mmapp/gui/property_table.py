"""A filterable property browser: every device property, editable where allowed."""

from __future__ import annotations

from collections.abc import Callable

from pymmcore_plus import CMMCorePlus
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mmapp.gui.wheel import guard_wheel

ErrorSink = Callable[[str, str], None]
DEVICE, PROPERTY, VALUE = range(3)


class PropertyTable(QWidget):
    """Device / property / value, with a filter box (matches any column)."""

    def __init__(self, on_error: ErrorSink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_error = on_error
        self.core: CMMCorePlus | None = None
        self._rows: list[tuple[str, str]] = []
        self._loading = False
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: device, property or value")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.apply_filter)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Device", "Property", "Value"])
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(DEVICE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PROPERTY, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemChanged.connect(self._on_item_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)

    def set_core(self, core: CMMCorePlus | None) -> None:
        """List the properties of every loaded device of `core`."""
        self.core = core
        self._rows = []
        if core is not None:
            for device in core.getLoadedDevices():
                for prop in core.getDevicePropertyNames(device):
                    self._rows.append((device, str(prop)))
        self._loading = True
        try:
            self.table.clearContents()
            self.table.setRowCount(len(self._rows))
            for row, (device, prop) in enumerate(self._rows):
                for col, text in ((DEVICE, device), (PROPERTY, prop)):
                    item = QTableWidgetItem(text)
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    self.table.setItem(row, col, item)
                self._make_value_cell(row, device, prop)
        finally:
            self._loading = False
        guard_wheel(self.table)  # the wheel scrolls the list, not a value under it
        self.refresh()
        self.apply_filter(self.filter.text())

    def _make_value_cell(self, row: int, device: str, prop: str) -> None:
        core = self.core
        assert core is not None
        read_only = core.isPropertyReadOnly(device, prop)
        allowed = [str(v) for v in core.getAllowedPropertyValues(device, prop)]
        if allowed and not read_only and len(allowed) > 1:
            combo = QComboBox()
            combo.addItems(allowed)
            combo.activated.connect(
                lambda _i, d=device, p=prop, c=combo: self._set(d, p, c.currentText())
            )
            self.table.setCellWidget(row, VALUE, combo)
            self.table.setItem(row, VALUE, QTableWidgetItem())
            return
        item = QTableWidgetItem()
        if read_only:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            item.setForeground(Qt.GlobalColor.gray)
            item.setToolTip("read-only")
        self.table.setItem(row, VALUE, item)

    def refresh(self) -> None:
        """Re-read every value from the devices."""
        core = self.core
        if core is None:
            return
        self._loading = True
        try:
            for row, (device, prop) in enumerate(self._rows):
                try:
                    value = str(core.getProperty(device, prop))
                except Exception as exc:
                    value = f"<error: {exc}>"
                combo = self.table.cellWidget(row, VALUE)
                if isinstance(combo, QComboBox):
                    combo.setCurrentText(value)
                item = self.table.item(row, VALUE)
                if item is not None:
                    item.setText(value)
        finally:
            self._loading = False
        if self.filter.text():
            self.apply_filter(self.filter.text())

    def apply_filter(self, text: str) -> None:
        """Hide rows that do not contain `text` (case-insensitive) in any column."""
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            cells = [self.table.item(row, c) for c in (DEVICE, PROPERTY, VALUE)]
            haystack = " ".join(c.text() for c in cells if c is not None).lower()
            self.table.setRowHidden(row, bool(needle) and needle not in haystack)

    def visible_rows(self) -> list[tuple[str, str]]:
        """(device, property) of the rows the filter shows."""
        return [r for i, r in enumerate(self._rows) if not self.table.isRowHidden(i)]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._loading or item.column() != VALUE:
            return
        device, prop = self._rows[item.row()]
        self._set(device, prop, item.text())

    def _set(self, device: str, prop: str, value: str) -> None:
        core = self.core
        if core is None:
            return
        try:
            core.setProperty(device, prop, value)
        except Exception as exc:
            self._on_error(f"Setting {device}.{prop} to {value!r} failed", str(exc))
        self.refresh()
