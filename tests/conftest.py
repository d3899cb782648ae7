"""Shared fixtures: a small simulated rig, cleaned up the way the app does it."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import HEIGHT, WIDTH

from mmapp.engine.controller import RunController
from mmapp.rig import Rig, load_rig


@pytest.fixture(autouse=True)
def _config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mmapp's config (recent presets) goes under tmp_path, never the user's."""
    monkeypatch.setenv("MMAPP_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def rig() -> Iterator[Rig]:
    """The simulated rig with small frames and a short exposure."""
    r = load_rig(width=WIDTH, height=HEIGHT, exposure_ms=1.0)
    yield r
    r.close()
    del r
    gc.collect()


@pytest.fixture
def controller(rig: Rig) -> Iterator[RunController]:
    """A run controller on the rig; any run still going is stopped at the end."""
    c = RunController(rig)
    yield c
    c.stop()
    c.wait(10)


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied afterwards (unfinished datasets hold 4 GiB sparse files)."""
    yield tmp_path
    for child in tmp_path.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
