"""mmapp: DAQ-coordinated, hardware-sequenced acquisition streaming to NDTiff."""

import os
from importlib.metadata import PackageNotFoundError, version

# Frames must never travel as queued Qt signals: pymmcore-plus picks its signal
# backend when a core is created, so choose psygnal before any core exists.
os.environ.setdefault("PYMM_SIGNALS_BACKEND", "psygnal")

try:
    __version__ = version("mmapp")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
