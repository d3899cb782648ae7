"""The main window's menus and keyboard shortcuts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMenu, QWidget

if TYPE_CHECKING:
    from mmapp.gui.main_window import MainWindow

SHORTCUTS = {"snap": "F5", "live": "F6", "start": "F9", "stop": "Esc"}


@dataclass
class Menus:
    """What the window (and later work) needs to reach in its menus."""

    acquire: dict[str, QAction]  # snap, live, start, stop
    presets: QMenu  # the File menu
    preset_actions: dict[str, QAction]  # open, save, save_as
    recent_presets: QMenu
    open_last_dataset: QAction


def make_action(
    owner: QWidget,
    text: str,
    slot: Callable[[], object],
    shortcut: str | None = None,
    tip: str = "",
) -> QAction:
    """An action on `owner`; its shortcut works even with the menu bar hidden."""
    action = QAction(text, owner)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    owner.addAction(action)
    return action


def _menu(window: MainWindow, title: str) -> QMenu:
    bar = window.menuBar()
    assert bar is not None
    menu = bar.addMenu(title)
    assert menu is not None
    return menu


def build_menus(window: MainWindow) -> Menus:
    """Rig, Acquire, Presets, Data, View and Help."""
    w = window

    def act(text: str, slot: Callable[[], object], *a: str) -> QAction:
        return make_action(w, text, slot, *a)

    files = _menu(w, "&File")
    preset_actions = {
        "open": act("&Open preset…", w.preset_files.open_dialog, "Ctrl+O"),
        "save": act("&Save preset", w.preset_files.save, "Ctrl+S"),
        "save_as": act("Save preset &as…", w.preset_files.save_as, "Ctrl+Shift+S"),
    }
    for action in preset_actions.values():
        files.addAction(action)
    recent = files.addMenu("&Recent presets")
    assert recent is not None
    w.preset_files.recent_menu = recent
    w.preset_files.refresh_recent()
    files.addSeparator()
    files.addAction(act("&Quit", w.close, "Ctrl+Q"))

    rig = _menu(w, "&Rig")
    rig.addAction(act("&Simulated rig", lambda: w.open_rig(None)))
    rig.addAction(act("&Open rig file or Micro-Manager config…", w.choose_rig))
    rig.addSeparator()
    rig.addAction(act("Make &safe (lasers off, shutter closed)", w.make_safe))

    acquire_menu = _menu(w, "&Acquire")
    acquire = {
        "snap": act("&Snap", w.snap, SHORTCUTS["snap"]),
        "live": act("&Live", w.toggle_live, SHORTCUTS["live"]),
        "start": act("S&tart", w.start, SHORTCUTS["start"]),
        "stop": act("Sto&p", w.stop, SHORTCUTS["stop"]),
    }
    for name, action in acquire.items():
        acquire_menu.addAction(action)
        button = getattr(w.acquisition, f"{name}_button")
        button.setToolTip(f"{action.text().replace('&', '')} ({SHORTCUTS[name]})")

    data = _menu(w, "&Data")
    data.addAction(act("Choose &save folder…", w.choose_save_dir))
    data.addAction(act("Open save &folder", w.open_save_dir))
    open_last = act("Open &last dataset folder", w.open_last_dataset)
    open_last.setEnabled(False)
    data.addAction(open_last)
    data.addSeparator()
    data.addAction(act("&Recover unfinished datasets…", w.recovery.menu_recover))

    view = _menu(w, "&View")
    for dock in w.docks.values():
        view.addAction(dock.toggleViewAction())
    view.addSeparator()
    view.addAction(act("&Reset layout", w.reset_layout))

    _menu(w, "&Help").addAction(act("&About mmapp", w.show_about))
    return Menus(acquire, files, preset_actions, recent, open_last)
