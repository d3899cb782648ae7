"""Where numba keeps compiled kernels: a per-user cache folder, never the install.

Imported by `mmapp.processing` before anything imports numba. A user's own
NUMBA_CACHE_DIR wins; otherwise the cache goes to the platform's user cache
folder (platformdirs: ~/.cache/mmapp/numba on Linux,
%LOCALAPPDATA%\\mmapp\\Cache\\numba on Windows), because next to the source is
read-only (or shared) in an installed program.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import user_cache_dir

ENV = "NUMBA_CACHE_DIR"


def default_cache_dir() -> Path:
    """mmapp's numba cache folder in the user's cache folder."""
    return Path(user_cache_dir("mmapp", appauthor=False)) / "numba"


def configure_numba_cache() -> Path | None:
    """Point numba's cache at a writable per-user folder; return that folder.

    Sets NUMBA_CACHE_DIR unless the user set it (numba reads it on import) and,
    if numba is already imported, its config too. None if the folder cannot be
    made (numba then uses its own fallback or compiles without a cache).
    """
    chosen = os.environ.get(ENV) or str(default_cache_dir())
    folder = Path(chosen)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ[ENV] = chosen
    config = getattr(sys.modules.get("numba"), "config", None)
    if config is not None:
        config.CACHE_DIR = chosen
    return folder


CACHE_DIR = configure_numba_cache()
