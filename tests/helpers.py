"""Helpers shared by the tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ndstorage import Dataset

WIDTH, HEIGHT = 64, 48

# Ctrl-C sent to a child process (Popen.send_signal(SIGINT)) is POSIX: Windows'
# Popen takes only SIGTERM and the CTRL_C/CTRL_BREAK console events.
needs_posix_signals = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="sends POSIX signals to a child process"
)


def open_dataset(path: Path) -> Dataset:
    """ndstorage.Dataset without its progress chatter."""
    with contextlib.redirect_stdout(io.StringIO()):
        return Dataset(str(path))


def read_all(path: Path) -> dict[int, np.ndarray]:
    """time index -> frame, through ndstorage."""
    ds = open_dataset(path)
    try:
        return {
            c["time"]: np.array(ds.read_image(**c))
            for c in ds.get_image_coordinates_list()
        }
    finally:
        ds.close()


def run_mmapp(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m mmapp ARGS` as the operator runs it (a real process)."""
    return subprocess.run(
        [sys.executable, "-m", "mmapp", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
