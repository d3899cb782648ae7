"""File > Open / Save / Save As / Recent presets for the main window.

Opening is all or nothing: a file that does not validate, a rig that does not
load or a device setting the core refuses leaves the window as it was and
says which field is wrong and why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6.QtWidgets import QFileDialog, QMenu

from mmapp.gui.preset_bridge import (
    UNTITLED,
    check_showable,
    show_preset,
    window_preset,
)
from mmapp.presets import (
    PRESET_SUFFIX,
    Preset,
    PresetError,
    RecentPresets,
    load_preset,
    save_preset,
)

if TYPE_CHECKING:
    from mmapp.gui.main_window import MainWindow

logger = logging.getLogger("mmapp.gui")
FILTER = f"mmapp presets (*{PRESET_SUFFIX});;All files (*)"


class PresetFiles:
    """The window's preset file: open, save, save as, and the recent list."""

    def __init__(self, window: MainWindow, recent: RecentPresets | None = None) -> None:
        self.window = window
        self.recent = recent if recent is not None else RecentPresets()
        self.path: Path | None = None  # the file Save writes
        self.recent_menu: QMenu | None = None

    # --- open ---------------------------------------------------------------------
    def open_dialog(self) -> bool:
        """Ask for a preset file and open it."""
        start = str(self.path.parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(self.window, "Open preset", start, FILTER)
        return self.open(path) if path else False

    def open(self, path: str | Path) -> bool:
        """Load, apply to the rig (all or nothing) and show a preset."""
        w = self.window
        path = Path(path)
        if not w.is_idle():
            w.report_error(
                "Cannot open a preset",
                "Stop Live or the acquisition (or let the snap finish) first.",
            )
            return False
        if not path.is_file():
            self.recent.remove(path)
            self.refresh_recent()
            w.report_error(
                f"Could not open {path.name}",
                f"{path} does not exist (removed from the recent presets)",
            )
            return False
        try:
            preset = load_preset(path)
        except (PresetError, OSError) as exc:
            w.report_error(f"Could not open {path.name}", str(exc))
            return False
        try:
            check_showable(w.acquisition, preset)
        except ValueError as exc:
            w.report_error(f"Could not open {path.name}", str(exc))
            return False
        if not w.adopt_preset_rig(preset):
            return False
        show_preset(w, preset)
        self._remember(path, preset)
        if preset.program is not None and (w.rig is None or w.rig.daq is None):
            w.report_error(
                f"{path.name}: the DAQ program is not played",
                "the preset has a waveform program but this rig has no DAQ card; "
                "it is in the DAQ program panel, and runs go without it",
            )
        logger.info("preset opened: %s (%s)", preset.name, path)
        return True

    # --- save ---------------------------------------------------------------------
    def save(self) -> bool:
        """Save to the preset's file (Save As for an untitled window)."""
        if self.path is None:
            return self.save_as()
        return self._write(self.path, self.window.preset_name)

    def save_as(self, path: str | Path | None = None) -> bool:
        """Save under a new file name (asked for when not given)."""
        if path is None:
            start = str(self.path) if self.path else f"experiment{PRESET_SUFFIX}"
            chosen, _ = QFileDialog.getSaveFileName(
                self.window, "Save preset as", start, FILTER
            )
            if not chosen:
                return False
            path = chosen
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(PRESET_SUFFIX)
        name = self.window.preset_name
        if name in (None, UNTITLED):
            name = path.stem
        return self._write(path, name)

    def _write(self, path: Path, name: str | None) -> bool:
        w = self.window
        problem = w.unapplied_program() if w.acquisition.use_daq.isChecked() else None
        if problem:
            w.report_error(f"Could not save {path.name}", problem)
            return False
        try:
            preset = window_preset(w, name)
            save_preset(preset, path)
        except PresetError as exc:
            w.report_error(f"Could not save {path.name}", str(exc))
            return False
        except (OSError, ValueError) as exc:
            w.report_error(f"Could not save {path.name}", str(exc))
            return False
        w.acquisition.preset_name = preset.name
        self._remember(path, preset)
        logger.info("preset saved: %s (%s)", preset.name, path)
        return True

    # --- recent -------------------------------------------------------------------
    def _remember(self, path: Path, preset: Preset) -> None:
        self.path = path
        self.recent.add(path)
        self.window.set_preset_name(preset.name)
        self.refresh_recent()

    def refresh_recent(self) -> None:
        """Rebuild the Recent presets menu (newest first)."""
        menu = self.recent_menu
        if menu is None:
            return
        menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = menu.addAction(path.name)
            assert action is not None
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open(p))
        if paths:
            menu.addSeparator()
            clear = menu.addAction("Clear list")
            assert clear is not None
            clear.triggered.connect(self._clear_recent)
        menu.setEnabled(bool(paths))

    def _clear_recent(self) -> None:
        self.recent.clear()
        self.refresh_recent()
