"""mmapp: DAQ-coordinated, hardware-sequenced acquisition streaming to NDTiff."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mmapp")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
