"""Usability of the main window (issue 11): wheel, contrast, log, panels, layout.

pytest-qt, offscreen, real widgets; waiting is qtbot.waitUntil on real state.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's QApplication

import numpy as np
import pytest
from helpers import HEIGHT, WIDTH

from mmapp.gui.live_view import LiveView
from mmapp.sim.frames import DARK_LEVEL


def _stamped(image: np.ndarray, value: int = 60000) -> np.ndarray:
    """`image` with a huge value in its first 4 pixels (the simulated camera's
    frame stamp; a hot pixel on a real camera)."""
    image.reshape(-1)[:4] = value
    return image


@pytest.fixture
def live_view(qtbot) -> LiveView:
    view = LiveView(lambda: None, lambda: None)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.timer.stop()  # frames are shown by hand
    return view


@pytest.mark.parametrize("shape", [(512, 512), (HEIGHT, WIDTH), (2048, 2048)])
def test_auto_contrast_of_a_dark_frame_ignores_the_stamp(live_view, shape):
    dark = _stamped(np.full(shape, DARK_LEVEL, np.uint16))
    live_view.show_image(dark)  # the first frame (as a Snap)
    lo, hi = live_view.levels
    assert lo == DARK_LEVEL and hi <= DARK_LEVEL + 1
    assert live_view.histogram.getLevels() == pytest.approx((lo, hi))
    # the dark frame shows dark, not white
    assert live_view._shown8[shape[0] // 2, shape[1] // 2] == 0
    h_lo, h_hi = live_view.histogram_view_range
    assert h_lo >= 0 and h_hi < 200  # the stamp does not stretch the histogram


def test_histogram_follows_the_levels_not_the_stamp(qtbot, live_view):
    rng = np.random.default_rng(1)
    for _ in range(3):  # as in Live: frame after frame
        image = rng.integers(100, 301, (512, 512)).astype(np.uint16)
        live_view.show_image(_stamped(image))
    live_view._refresh_histogram()
    lo, hi = live_view.levels
    assert 100 <= lo < 102 and 298 < hi <= 300
    assert live_view.histogram.getLevels() == pytest.approx((lo, hi))
    h_lo, h_hi = live_view.histogram_view_range
    assert h_lo <= lo and hi <= h_hi < 400  # around the levels, not 0-60000
    x, counts = live_view.histogram.plot.getData()
    assert x.max() < 400 and counts.sum() > 0
    # auto contrast once after fixed levels: the same robust levels
    live_view.auto_continuous.setChecked(False)
    live_view.histogram.setLevels(0, 60000)
    assert live_view.levels == (0, 60000)
    live_view.auto_contrast()
    assert live_view.levels == pytest.approx((lo, hi), abs=2)
    assert live_view.histogram_view_range[1] < 400
