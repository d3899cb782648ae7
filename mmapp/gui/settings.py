"""Persistent settings (QSettings, organisation "mmapp"): layout, rig, save folder."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

DEFAULT_NAME_TEMPLATE = "{date}_acquisition"


class AppSettings:
    """Typed access to the app's QSettings (injectable, so tests use a tmp file)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings("mmapp", "mmapp")

    @classmethod
    def at(cls, path: Path) -> AppSettings:
        """Settings kept in one INI file (tests, the self-test, benchmarks)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def _str(self, key: str, default: str = "") -> str:
        value = self.q.value(key, default)
        return str(value) if value is not None else default

    # --- rig -------------------------------------------------------------------
    @property
    def last_rig(self) -> str:
        """The rig file or .cfg opened last ('' for the simulated rig)."""
        return self._str("rig/last")

    @last_rig.setter
    def last_rig(self, path: str) -> None:
        self.q.setValue("rig/last", path)

    # --- data ------------------------------------------------------------------
    @property
    def save_dir(self) -> Path:
        """Where datasets go."""
        return Path(self._str("data/save_dir", str(Path.home() / "mmapp-data")))

    @save_dir.setter
    def save_dir(self, path: Path) -> None:
        self.q.setValue("data/save_dir", str(path))

    @property
    def name_template(self) -> str:
        """Dataset name template ({date}, {time}, {rig})."""
        return self._str("data/name_template", DEFAULT_NAME_TEMPLATE)

    @name_template.setter
    def name_template(self, template: str) -> None:
        self.q.setValue("data/name_template", template)

    # --- window ----------------------------------------------------------------
    def window_layout(self) -> tuple[QByteArray | None, QByteArray | None]:
        """(geometry, dock state) saved by the last session, if any."""
        geometry = self.q.value("window/geometry")
        state = self.q.value("window/state")
        return (
            geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def save_window_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        """Remember the window geometry and dock layout."""
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def sync(self) -> None:
        """Write to disk now."""
        self.q.sync()
