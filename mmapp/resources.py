"""Where bundled assets live: the default rig, example presets, icons.

The repository's `resources/` folder is installed as the package data of
`mmapp._assets`, so an editable install, a wheel and a frozen bundle find it
the same way (its import spec), wherever the current directory is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ASSETS_PACKAGE = "mmapp._assets"


def resources_dir() -> Path:
    """The folder holding `rigs/`, `presets/` and `icons/`."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    try:  # a folder without __init__.py: a namespace package, one location
        spec = importlib.util.find_spec(ASSETS_PACKAGE)
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "rigs").is_dir():
            return Path(location)
    return Path(__file__).resolve().parent.parent / "resources"  # source tree


def default_rig_file() -> Path:
    """The simulated rig that `mmapp` starts on by default."""
    return resources_dir() / "rigs" / "simulated.json"


def example_presets_dir() -> Path:
    """The example presets (`*.mmpreset`) that run on the simulated rig."""
    return resources_dir() / "presets"
