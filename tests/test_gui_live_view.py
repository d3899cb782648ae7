"""The live view's cost: what a draw computes, how often, when it does not draw."""

from __future__ import annotations

import numpy as np
import pytest

from mmapp.gui.live_view import (
    ACQUIRING_DISPLAY_HZ,
    BUSY_DISPLAY_HZ,
    BUSY_HISTOGRAM_HZ,
    HISTOGRAM_HZ,
    IDLE_POLL_HZ,
    MAX_DISPLAY_HZ,
    SUBSAMPLE_PIXELS,
    LiveView,
    display_table,
    rgb32_palette,
)

BLACK, WHITE = 0xFF000000, 0xFFFFFFFF
TICK_HZ = 32  # exact binary fractions of a second: no rounding at the limits
TICKS = 2 * TICK_HZ


class Frame:
    """A frame as DataHandler.latest() hands it out."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def feed() -> list[Frame | None]:
    return [None]


@pytest.fixture
def view(qtbot, feed) -> LiveView:
    info: list[tuple[int, float] | None] = [None]
    v = LiveView(lambda: feed[0], lambda: info[0])
    v.run_info = info  # type: ignore[attr-defined]  # the test sets the pressure
    qtbot.addWidget(v)
    v.resize(800, 600)
    with qtbot.waitExposed(v):
        v.show()
    v.timer.stop()  # ticks by hand
    v.histogram_timer.stop()
    v._clock = Clock()
    return v


def _noise(shape: tuple[int, int], lo: int = 1000, hi: int = 1100) -> np.ndarray:
    return np.random.default_rng(3).integers(lo, hi, shape).astype(np.uint16)


def test_histogram_is_binned_from_a_subsample_a_few_times_a_second(view, feed):
    clock = view._clock
    frames = [Frame(_noise((2048, 2048))) for _ in range(2)]
    for tick in range(TICKS):  # 2 s of ticks, a new frame at each
        clock.t = 100.0 + tick / TICK_HZ
        feed[0] = Frame(frames[tick % 2].image.copy())
        view.poll()
        view._refresh_histogram()  # the histogram timer's tick
    assert view.frames_drawn == TICKS
    assert view.histograms_computed == 2 * HISTOGRAM_HZ  # not one per frame
    _, counts = view.histogram.plot.getData()
    # every pixel of the frame is in range, yet only the subsample is counted
    assert counts.sum() == SUBSAMPLE_PIXELS == (2048 // 16) ** 2


def test_histogram_slows_down_while_the_pipeline_is_behind(view, feed):
    clock = view._clock
    view.run_info[0] = (0, 0.9)  # queue 90 % full
    for tick in range(TICKS):
        clock.t = 100.0 + tick / TICK_HZ
        feed[0] = Frame(_noise((64, 64)))
        view.poll()
        view._refresh_histogram()
    # a draw every 4th tick (0.125 s: the first tick at least 1/BUSY_DISPLAY_HZ on)
    assert BUSY_DISPLAY_HZ == 10 and view.frames_drawn == TICKS // 4
    assert view.histograms_computed == 2 * BUSY_HISTOGRAM_HZ + 1  # at 0, 0.9, 1.8 s


def test_the_display_ticks_at_most_30_hz_while_acquiring(view, feed):
    feed[0] = Frame(_noise((64, 64)))
    view.poll()  # no acquisition: the refresh rate (60 Hz)
    assert view.timer.interval() == round(1000 / MAX_DISPLAY_HZ)
    view.run_info[0] = (10, 0.1)  # acquiring, the pipeline keeping up
    feed[0] = Frame(_noise((64, 64)))
    view.poll()
    assert ACQUIRING_DISPLAY_HZ == 30
    assert view.timer.interval() == round(1000 / ACQUIRING_DISPLAY_HZ)
    assert view.frames_drawn == 2  # each tick still draws the newest frame
    view.run_info[0] = (20, 0.9)  # behind: slower still
    view.poll()
    assert view.timer.interval() == round(1000 / BUSY_DISPLAY_HZ)
    view.run_info[0] = None  # the run ended
    view.poll()
    assert view.timer.interval() == round(1000 / MAX_DISPLAY_HZ)


def test_a_view_that_cannot_be_seen_uploads_nothing(qtbot, view, feed):
    uploads: list[np.ndarray] = []
    upload = view.image_item.set_pixels
    view.image_item.set_pixels = lambda p, r: (uploads.append(p), upload(p, r))
    asked = []
    source = view._source
    view._source = lambda: (asked.append(1), source())[1]
    feed[0] = Frame(_noise((64, 64)))
    view.poll()
    assert len(uploads) == 1 and view.timer.interval() == round(1000 / MAX_DISPLAY_HZ)

    view.hide()
    for _ in range(3):
        feed[0] = Frame(_noise((64, 64)))
        view.poll()
        view._refresh_histogram()
    view.showMinimized()
    assert view.isMinimized() and not view.can_be_seen()
    for _ in range(3):
        feed[0] = Frame(_noise((64, 64)))
        view.poll()
        view._refresh_histogram()
    # no upload, no histogram, not even the copy out of the ring slot
    assert len(uploads) == 1 and len(asked) == 1 and view.frames_drawn == 1
    assert view.histograms_computed == 1  # the first frame's
    assert view.timer.interval() == round(1000 / IDLE_POLL_HZ)  # readouts only

    with qtbot.waitExposed(view):
        view.showNormal()
    view.poll()
    assert len(uploads) == 2 and view.image is feed[0].image
    assert view.timer.interval() == round(1000 / MAX_DISPLAY_HZ)


def test_a_large_frame_is_drawn_from_every_nth_pixel(view, feed):
    y, x = np.mgrid[0:2048, 0:2048]
    image = ((y * 7 + x * 13) % 256).astype(np.uint16)
    feed[0] = Frame(image)
    view.poll()
    view.set_display("gray", False, (0, 255), 30.0)  # grey level = pixel value
    step = view.display_step
    px, py = view.view_box.viewPixelSize()
    assert step == int(min(px, py)) and step >= 2  # 2048 rows in < 600 pixels
    shown = view._shown
    assert shown.shape == image[::step, ::step].shape
    grey = image[::step, ::step].astype(np.uint32)
    assert np.array_equal(shown, 0xFF000000 | grey << 16 | grey << 8 | grey)
    h, w = shown.shape  # drawn over the whole frame, in image pixels
    rect = view.image_item.boundingRect()
    assert (rect.width(), rect.height()) == (w * step, h * step)
    assert w * step - step < 2048 <= w * step
    # the readout reads the frame itself, not what is drawn
    assert view.pixel_text_at(1001, 999) == f"x 1001, y 999: {image[999, 1001]}"

    view.view_box.setRange(xRange=(1000, 1100), yRange=(1000, 1100), padding=0)
    assert view.display_step == 1  # zoomed in: every pixel, at once
    assert view._shown.shape == image.shape
    assert view._shown[1050, 1040] == 0xFF000000 | int(image[1050, 1040]) * 0x10101


def test_contrast_comes_from_the_percentiles_of_a_subsample(view, feed):
    rng = np.random.default_rng(7)
    image = rng.permutation(np.tile(np.arange(65536, dtype=np.uint16), 64))
    image = image.reshape(2048, 2048)
    feed[0] = Frame(image)
    view.poll()
    lo, hi = view.levels
    p_lo, p_hi = np.percentile(image, (0.1, 99.9))  # 65.5 and 65469.5
    assert abs(lo - p_lo) < 40 and abs(hi - p_hi) < 40
    # continuous: every drawn frame sets them again
    feed[0] = Frame((image // 2).astype(np.uint16))
    view.poll()
    assert view.levels[1] == pytest.approx(p_hi / 2, abs=40)


def test_the_colour_map_is_in_the_table_not_in_the_paint(view, feed):
    image = np.zeros((64, 64), np.uint16)
    image[10, 20] = 1000
    view.set_display("green", False, (0, 1000), 30.0)
    feed[0] = Frame(image)
    view.poll()
    assert view._shown[10, 20] == 0xFF00FF00 and view._shown[0, 0] == BLACK
    view.set_display("gray", False, (0, 1000), 30.0)
    assert view._shown[10, 20] == WHITE


@pytest.mark.parametrize(
    ("dtype", "lo", "hi"),
    [(np.uint16, 100.0, 300.0), (np.uint16, 99.5, 300.25), (np.uint8, -5.0, 400.0)],
)
def test_display_table_maps_levels_linearly(dtype, lo, hi):
    table = display_table(np.dtype(dtype), lo, hi, rgb32_palette(None))
    n = 256 if dtype == np.uint8 else 65536
    values = np.arange(n, dtype=np.float64)
    grey = np.clip((values - lo) * 255.0 / (hi - lo), 0, 255).astype(np.uint32)
    expected = 0xFF000000 | grey << 16 | grey << 8 | grey
    assert np.abs(table.astype(np.int64) - expected.astype(np.int64)).max() <= 0x10101


def test_processed_view_says_it_waits_instead_of_showing_the_raw_frame(view, feed):
    """Processed with nothing processed yet: a message, never the raw frame
    under the Processed name (an operator read it as 'deskew does nothing')."""
    processed: list[Frame | None] = [None]
    feed[0] = Frame(_noise((48, 64)))
    view.poll()
    assert view.frames_drawn == 1
    view.set_processed_source(lambda: processed[0])
    view.mode.setCurrentIndex(1)
    view.poll()
    assert view.waiting.isVisible()
    assert view.image is None and view.frames_drawn == 1  # the raw frame is gone
    mip = _noise((60, 64), 300, 400)
    processed[0] = Frame(mip)
    view.poll()
    assert not view.waiting.isVisible()
    assert view.image is mip and view.frames_drawn == 2
    view.mode.setCurrentIndex(0)  # back to Raw: the raw frame again
    view.poll()
    assert view.image is feed[0].image


def test_processed_contrast_ignores_a_bright_line(view, feed):
    """A MIP turns a bright pixel of every frame into a line (hot pixel, the
    simulated frame stamp): the processed view's contrast leaves it out."""
    mip = _noise((256, 256), 100, 250)
    mip[:150, 0] = 1500  # 0.23 % of the pixels
    processed = [Frame(mip)]
    view.set_processed_source(lambda: processed[0])
    view.mode.setCurrentIndex(1)
    view.poll()
    lo, hi = view.levels
    assert 100 <= lo < hi < 250  # the beads fill the range, not the line
    feed[0] = Frame(mip.copy())  # the same pixels as a raw frame: 99.9 %
    view.mode.setCurrentIndex(0)
    view.poll()
    assert view.levels[1] == 1500
