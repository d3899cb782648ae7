"""Where bundled assets live (source tree, editable install or frozen bundle)."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The `resources/` folder shipped with the application."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def default_rig_file() -> Path:
    """The simulated rig that `mmapp` starts on by default."""
    return resources_dir() / "rigs" / "simulated.json"
