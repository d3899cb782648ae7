"""Start the application: QApplication, the main window, clean exit."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import traceback
from types import TracebackType

from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import QApplication

from mmapp.resources import resources_dir

logger = logging.getLogger("mmapp.gui")


def has_display() -> bool:
    """Whether Qt can open windows here (Linux needs X11/Wayland or a platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    )


def make_app() -> QApplication:
    """The one QApplication (created if needed), named for QSettings."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setOrganizationName("mmapp")
    app.setApplicationName("mmapp")
    icon = resources_dir() / "icons" / "mmapp.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def install_excepthook(report: object) -> None:
    """Exceptions in Qt slots are logged and shown, never abort the app."""

    def hook(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(kind, exc, tb))
        logger.error("unexpected error:\n%s", text)
        try:
            report("Unexpected error", f"{kind.__name__}: {exc}")  # type: ignore[operator]
        except Exception:
            sys.__stderr__.write(text)  # type: ignore[union-attr]

    sys.excepthook = hook


def run_gui(rig_path: str | None = None, preset_path: str | None = None) -> int:
    """`mmapp`: the main window until the operator closes it."""
    if not has_display():
        print(
            "mmapp: error: no display (DISPLAY is not set). Run it on a desktop, "
            "under xvfb-run, or with QT_QPA_PLATFORM=offscreen.",
            file=sys.stderr,
        )
        return 1
    from mmapp.gui.main_window import MainWindow

    app = make_app()
    window = MainWindow(rig_path=rig_path)
    window.confirm_close = True
    install_excepthook(window.report_error)
    window.show()
    if preset_path:  # a preset that does not open says why; the window stays
        window.preset_files.open(preset_path)
    # a run killed last time: its dataset is named and recovery offered
    QTimer.singleShot(0, window.recovery.offer)
    # Ctrl-C in the terminal, SIGTERM (kill, logout) and SIGHUP (the terminal
    # closed) close the window cleanly: shutdown() stops a run and finishes its
    # dataset (Python needs a tick to see a signal)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, lambda *_: app.quit())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    code = app.exec()
    tick.stop()
    window.shutdown()
    sys.excepthook = sys.__excepthook__
    del window
    gc.collect()
    return code
