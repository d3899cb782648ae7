"""Shared fixtures: a small simulated rig, cleaned up the way the app does it."""

from __future__ import annotations

import contextlib
import gc
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ndstorage import Dataset

from mmapp.engine.controller import RunController
from mmapp.sim.rig import Rig, load_rig

WIDTH, HEIGHT = 64, 48


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
