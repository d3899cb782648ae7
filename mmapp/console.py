"""The console (stderr) of the `mmapp` command: mmapp's own messages only.

pymmcore-plus installs its own coloured stderr handler when it is imported; it
says "WARNING ... MDA Canceled" at every Stop (an operator's Stop is no
warning) and, before a Micro-Manager `.cfg` loads, "Could not find a compatible
Micro-Manager installation ... run 'mmcore install'" (mmapp says itself what
is missing and where it looked). `setup_console_logging()` replaces that
handler with one that writes mmapp's own lines (`mmapp: warning: ...`) for the
`mmapp` loggers and for pymmcore-plus's real warnings and errors, and drops the
noise. pymmcore-plus's log file (if any) is left as it is.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

PYMMCORE_PLUS = "pymmcore-plus"
CONSOLE_LOGGERS = ("mmapp", PYMMCORE_PLUS)

# messages that are not news to an operator (the start of the text)
NOISE = (
    "MDA Canceled",  # every Stop
    "Could not find a compatible Micro-Manager installation",  # the .cfg says more
    # the command prints the run's outcome itself (the Log panel shows this line)
    "acquisition ended with an error",
)


def is_noise(record: logging.LogRecord) -> bool:
    """Whether a record only repeats what the operator did or is told anyway."""
    return record.getMessage().startswith(NOISE)


class ConsoleHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when each record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(ConsoleFormatter())
        self.addFilter(lambda record: not is_noise(record))

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


class ConsoleFormatter(logging.Formatter):
    """`mmapp: warning: text` (other libraries' records name their logger)."""

    def format(self, record: logging.LogRecord) -> str:
        """One plain line (and the traceback of an unexpected exception)."""
        source = "" if record.name.split(".")[0] == "mmapp" else f"{record.name}: "
        text = f"mmapp: {record.levelname.lower()}: {source}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_console_logging() -> ConsoleHandler:
    """Route the console through mmapp's handler (idempotent); returns it.

    Imports pymmcore-plus first: it sets up its own stderr handler when it is
    imported, which would otherwise come back after this.
    """
    import pymmcore_plus  # noqa: F401  (its logging is configured now, once)

    handler = (
        next(
            (
                h
                for h in logging.getLogger("mmapp").handlers
                if isinstance(h, ConsoleHandler)
            ),
            None,
        )
        or ConsoleHandler()
    )
    pymm = logging.getLogger(PYMMCORE_PLUS)
    for old in list(pymm.handlers):  # its own stderr handler (its log file stays)
        if type(old) is logging.StreamHandler:
            pymm.removeHandler(old)
    for name in CONSOLE_LOGGERS:
        log = logging.getLogger(name)
        if handler not in log.handlers:
            log.addHandler(handler)
    return handler
