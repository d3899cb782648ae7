"""Start mmapp from an installed bundle (Windows setup.exe or the Linux bundle).

Bundle layout (the same on both systems):

    <bundle>/python/         the interpreter: Windows' embeddable CPython
                             (python.exe, pythonw.exe), on Linux python/bin/python3
    <bundle>/site-packages/  every locked package and mmapp, unpacked wheels
    <bundle>/launcher.py     this file: `python launcher.py [mmapp arguments]`

Only the standard library is used before site-packages is on the path. The
launcher puts the bundle's site-packages on sys.path (processing its .pth
files, which pywin32 needs), gives numba a per-user cache folder (the install
folder may be read-only and is removed by the uninstaller), lets Windows load
the system's Visual C++ runtime rather than an older copy (see
installer/README.md) and runs `python -m mmapp`. Under pythonw.exe (no console)
an error before the window opens is written to a log file and shown in a
message box instead of vanishing.
"""

from __future__ import annotations

import os
import runpy
import site
import sys
import traceback
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent
WINDOWS = sys.platform == "win32"


def _user_dir() -> Path:
    if WINDOWS:
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "mmapp"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmapp"


def _windows_runtime() -> None:
    """PyQt6 ships its own msvcp140.dll / vcruntime140*.dll; loaded first, they
    break Micro-Manager device adapters built with a newer Visual C++. The build
    moves them to vcruntime-fallback/, used only when the system has no Visual
    C++ 2015-2022 runtime (then the adapters of a new Micro-Manager may fail:
    install the redistributable)."""
    system32 = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32"
    fallback = BUNDLE / "vcruntime-fallback"
    if not (system32 / "msvcp140.dll").exists() and fallback.is_dir():
        os.add_dll_directory(str(fallback))
        os.environ["PATH"] = f"{fallback}{os.pathsep}{os.environ.get('PATH', '')}"


def _report(message: str) -> None:
    log = _user_dir() / "launcher.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(message, encoding="utf-8")
    except OSError:
        pass
    if sys.stderr is not None:
        sys.stderr.write(message)
    elif WINDOWS:  # pythonw: no console to print to
        import ctypes

        ctypes.windll.user32.MessageBoxW(
            None, f"{message}\n(also in {log})", "mmapp could not start", 0x10
        )


def main() -> None:
    site_packages = BUNDLE / "site-packages"
    site.addsitedir(str(site_packages))  # also runs its .pth files (pywin32)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_user_dir() / "numba-cache"))
    if WINDOWS:
        _windows_runtime()
    sys.argv[0] = "mmapp"
    try:
        runpy.run_module("mmapp", run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except BaseException:
        _report(traceback.format_exc())
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
