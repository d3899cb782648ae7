"""Stop a headless run cleanly on every way a console asks a process to end.

Ctrl-C (SIGINT), SIGTERM (kill, systemd, a scheduler), SIGHUP (the terminal
closed, an SSH session dropped) and on Windows Ctrl-Break and the console's
close / logoff / shutdown events all become one Stop: the dataset is finished
and the rig made safe. A repeated request says what the run is still waiting
for; the run ends within its stop bound (every DAQ call has a deadline).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Windows gives a console-close handler about 5 s before it ends the process
WINDOWS_CLOSE_GRACE_S = 4.5
_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")


@contextmanager
def stop_on_signals(
    request_stop: Callable[[str], None],
    wait_stopped: Callable[[float], bool] | None = None,
) -> Iterator[threading.Event]:
    """While inside: each of those signals calls `request_stop(name)`.

    Yields an Event set on the first request. `wait_stopped(timeout)` (True
    when the run has ended) lets the Windows console-close handler hold the
    process until the dataset is finished.
    """
    requested = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        requested.set()
        request_stop(signal.Signals(signum).name)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in _NAMES:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                previous[signum] = signal.signal(signum, on_signal)
            except (OSError, ValueError):  # not settable here
                continue
    console = _windows_console_handler(requested, request_stop, wait_stopped)
    try:
        yield requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if console is not None:
            console(False)


_EVENTS = {2: "console closed", 5: "logoff", 6: "shutdown"}


def _windows_console_handler(
    requested: threading.Event,
    request_stop: Callable[[str], None],
    wait_stopped: Callable[[float], bool] | None,
) -> Callable[[bool], None] | None:
    """Install a console control handler on Windows (None elsewhere)."""
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    handler_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)

    def handle(event: int) -> bool:
        name = _EVENTS.get(event)
        if name is None:  # Ctrl-C / Ctrl-Break arrive as signals
            return False
        requested.set()
        request_stop(name)
        if wait_stopped is not None:
            wait_stopped(WINDOWS_CLOSE_GRACE_S)
        return True

    callback = handler_type(handle)
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    kernel32.SetConsoleCtrlHandler(callback, True)

    def remove(_: bool) -> None:
        kernel32.SetConsoleCtrlHandler(callback, False)

    remove.callback = callback  # type: ignore[attr-defined]  # keep it alive
    return remove
