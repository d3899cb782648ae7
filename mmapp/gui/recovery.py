"""Data > Recover: datasets a killed run left unfinished, rebuilt off the GUI
thread (`mmapp.data.recover_dataset`, the same as `mmapp recover`).

The window offers it when it opens and the save folder holds unfinished
datasets; the Log says what each recovery found (frames recovered, images
left out and why).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QMessageBox, QWidget

from mmapp.data import find_unfinished, recover_dataset

logger = logging.getLogger("mmapp.gui")
POLL_MS = 100
MAX_LISTED = 12


class DatasetRecovery(QObject):
    """Finds and recovers unfinished datasets in the window's save folder."""

    finished = pyqtSignal(list)  # [(path, summary or error text, ok)]

    def __init__(self, parent: QWidget, save_dir: Callable[[], str]) -> None:
        super().__init__(parent)
        self._parent = parent
        self._save_dir = save_dir
        self._thread: threading.Thread | None = None
        self._results: list[tuple[Path, str, bool]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._check_done)

    @property
    def running(self) -> bool:
        """Whether a recovery is under way."""
        return self._thread is not None

    def unfinished(self) -> list[Path]:
        """Unfinished datasets in the save folder (none if it cannot be read)."""
        folder = self._save_dir().strip()
        if not folder:
            return []
        try:
            return find_unfinished(Path(folder).expanduser())
        except OSError as exc:
            logger.warning("could not look for unfinished datasets: %s", exc)
            return []

    def offer(self) -> None:
        """On opening: unfinished datasets are named and recovery offered."""
        found = self.unfinished()
        if found:
            logger.warning(
                "%d dataset(s) in %s were left unfinished (a run was killed): "
                "Data > Recover rebuilds them",
                len(found),
                self._save_dir(),
            )
            self._ask(found)

    def menu_recover(self) -> None:
        """Data > Recover: ask, then recover what the save folder holds."""
        found = self.unfinished()
        if not found:
            QMessageBox.information(
                self._parent,
                "Recover datasets",
                f"No unfinished datasets in {self._save_dir()}.",
            )
            return
        self._ask(found)

    def _ask(self, found: list[Path]) -> None:
        names = "\n".join(p.name for p in found[:MAX_LISTED])
        extra = len(found) - MAX_LISTED
        more = f"\n… and {extra} more" if extra > 0 else ""
        answer = QMessageBox.question(
            self._parent,
            "Recover datasets",
            f"{len(found)} dataset(s) in {self._save_dir()} were left unfinished "
            f"(a run was killed or the PC stopped):\n\n{names}{more}\n\n"
            "Recover them now? Every image that reached the disk whole is kept; "
            "a half-written last image is reported and left out.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.recover(found)

    def recover(self, paths: list[Path]) -> bool:
        """Recover `paths` on a worker thread (False: one is already running)."""
        if self._thread is not None:
            return False
        self._results = []
        self._thread = threading.Thread(
            target=self._work, args=(list(paths),), name="mmapp-recover", daemon=True
        )
        self._thread.start()
        self._timer.start()
        logger.info("recovering %d dataset(s)…", len(paths))
        return True

    def _work(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                report = recover_dataset(path)
            except Exception as exc:  # each one is tried; the Log says why
                self._results.append((path, f"{type(exc).__name__}: {exc}", False))
            else:
                self._results.append((path, report.summary(), True))

    def _check_done(self) -> None:
        thread = self._thread
        if thread is None or thread.is_alive():
            return
        self._timer.stop()
        self._thread = None
        for path, text, ok in self._results:
            if ok:
                logger.info("recovered %s: %s", path, text)
            else:
                logger.error("could not recover %s: %s", path, text)
        self.finished.emit(list(self._results))
