"""Versions for the About box (and bug reports)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

from mmapp import __version__

PACKAGES = (
    "pymmcore-plus",
    "pymmcore",
    "useq-schema",
    "ndstorage",
    "nidaqmx",
    "numpy",
    "numba",
    "pyqtgraph",
)


def versions() -> dict[str, str]:
    """Name -> version of mmapp, Python, Qt and the main dependencies."""
    found = {
        "mmapp": __version__,
        "Python": platform.python_version(),
        "Qt": QT_VERSION_STR,
        "PyQt6": PYQT_VERSION_STR,
    }
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def about_text() -> str:
    """Rich text for the About box."""
    rows = "".join(
        f"<tr><td>{name}</td><td>&nbsp;{ver}</td></tr>"
        for name, ver in versions().items()
    )
    return (
        f"<h3>mmapp {__version__}</h3>"
        "<p>Acquisition for DAQ-coordinated, hardware-sequenced microscopy "
        "(pymmcore-plus, NI-DAQ, NDTiff).</p>"
        f"<table>{rows}</table>"
        f"<p>{platform.platform()}</p>"
    )
