"""Live view: the newest frame, polled on a timer (never one Qt signal per frame).

A QTimer (at most 60 Hz) asks a source for the latest frame and draws it only
if it is new, so the display costs the same at 1 and at 1000 frames per second
and holds one frame of memory. The histogram is refreshed a few times a second,
the view range only when the frame shape changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QTimer
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_DISPLAY_HZ = 60
HISTOGRAM_HZ = 4
AUTO_CONTRAST_SAMPLES = 65536  # pixels looked at per auto-contrast
AUTO_CONTRAST_PERCENTILES = (0.1, 99.9)
MIN_TRIMMED = 8  # extreme pixels auto contrast ignores at least (hot pixels, stamp)
HISTOGRAM_BINS = 256
HISTOGRAM_MARGIN = 0.25  # of the display range, shown each side of it

# The frame source returns any object with an `image` attribute (a
# mmapp.data.handler.Frame) or None; a new object means a new frame.
FrameSource = Callable[[], object | None]
# (frames received so far, pipeline pressure 0..1) of the running acquisition
RunInfoSource = Callable[[], tuple[int, float] | None]
# Pressure at which the pipeline is falling behind (queue or camera buffer this
# full): the display then yields the CPU, drawing at most BUSY_DISPLAY_HZ.
PRESSURE_LIMIT = 0.5
BUSY_DISPLAY_HZ = 10
# preset colour maps: black to this colour
COLORMAPS: dict[str, tuple[int, int, int]] = {
    "gray": (255, 255, 255),
    "green": (0, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "red": (255, 0, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
}


def _subsample(image: np.ndarray) -> np.ndarray:
    """About AUTO_CONTRAST_SAMPLES pixels spread over the image (a strided view:
    cheap at 2048x2048)."""
    step = max(1, int(np.sqrt(image.size / AUTO_CONTRAST_SAMPLES)))
    return image[::step, ::step]


def auto_levels(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits from a subsample of the image (robust percentiles).

    The 0.1 and 99.9 percentiles ignore a few extreme pixels: hot pixels of a
    real camera, the frame number the simulated camera stamps into the first
    pixels. A flat image gets (value, value + 1)."""
    sample = _subsample(image).reshape(-1)
    n = sample.size
    # pixels left out at each end: 0.1 %, and never fewer than a stamp's worth
    # (on frames large enough to spare them)
    trim = max(
        round(n * AUTO_CONTRAST_PERCENTILES[0] / 100), min(MIN_TRIMMED, n // 100)
    )
    ends = np.partition(sample, (trim, n - 1 - trim))
    lo, hi = float(ends[trim]), float(ends[n - 1 - trim])
    if hi <= lo:
        hi = lo + 1
    return lo, hi


def histogram_range(levels: tuple[float, float]) -> tuple[float, float]:
    """The pixel values the histogram shows: the display range and a margin
    (so the levels can be dragged a little beyond what is shown)."""
    lo, hi = levels
    margin = max((hi - lo) * HISTOGRAM_MARGIN, 1.0)
    return max(lo - margin, 0.0), hi + margin


def histogram_counts(
    image: np.ndarray, value_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) of a subsample of the image within `value_range`:
    pixels far outside the display range (a stamp, a hot pixel) do not stretch
    the histogram."""
    lo, hi = value_range
    span = max(hi - lo, 1.0)
    width = max(1.0, float(np.ceil(span / HISTOGRAM_BINS)))  # whole counts per bin
    edges = np.arange(np.floor(lo), hi + width, width)
    counts, edges = np.histogram(_subsample(image), bins=edges)
    return (edges[:-1] + edges[1:]) / 2, counts


def display_table(dtype: np.dtype, lo: float, hi: float) -> np.ndarray:
    """uint8 lookup table mapping every pixel value to its display grey level."""
    n = 256 if dtype == np.uint8 else 65536
    values = np.arange(n, dtype=np.float32)
    scale = 255.0 / max(hi - lo, 1e-6)
    return np.clip((values - lo) * scale, 0, 255).astype(np.uint8)


class _HistogramSource(pg.ImageItem):
    """What the histogram looks at: the raw frame, never drawn itself.

    The histogram sets levels and the colour table on it; they are passed on
    to the live view, which draws its own 8-bit image (one table lookup per
    frame instead of pyqtgraph's rescaling and colour mapping)."""

    def __init__(
        self,
        on_levels: Callable[[tuple[float, float]], None],
        on_lut: Callable[[object], None],
    ) -> None:
        self._on_levels = on_levels
        self._on_lut = on_lut
        super().__init__()

    def setLevels(self, levels: object, update: bool = True) -> None:
        """Pass the histogram's levels on."""
        super().setLevels(levels, update=False)
        if levels is not None and hasattr(self, "_on_levels"):
            lo, hi = levels  # type: ignore[misc]
            self._on_levels((float(lo), float(hi)))

    def setLookupTable(self, lut: object, update: bool = True) -> None:
        """Pass the histogram's colour table on."""
        super().setLookupTable(lut, update=False)
        if hasattr(self, "_on_lut"):
            self._on_lut(lut)


class _RateMeter:
    """Events per second, measured over windows of about a second."""

    WINDOW_S = 1.0

    def __init__(self) -> None:
        self._t0: float | None = None
        self._n0 = 0
        self.rate = 0.0

    def reset(self) -> None:
        """Nothing is counting (e.g. no run): the rate is 0."""
        self._t0, self.rate = None, 0.0

    def update(self, count: int) -> float:
        now = time.perf_counter()
        if self._t0 is None or count < self._n0:  # first sample, or a new run
            self._t0, self._n0 = now, count
        elif now - self._t0 >= self.WINDOW_S:
            self.rate = (count - self._n0) / (now - self._t0)
            self._t0, self._n0 = now, count
        return self.rate


class LiveView(QWidget):
    """Image, histogram/LUT, auto-contrast, cursor readout and frame rates."""

    def __init__(
        self,
        source: FrameSource | None = None,
        run_info: RunInfoSource | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._source = source
        self._processed_source: FrameSource | None = None
        self._run_info = run_info
        self._last_draw_t = 0.0
        self.pressure = 0.0
        self._last_frame: object | None = None
        self._image: np.ndarray | None = None
        self._new_since_histogram = False
        self.frames_drawn = 0  # frames put on screen (the display frame rate)
        self._display_rate = _RateMeter()
        self._camera_rate = _RateMeter()

        pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
        self.graphics = pg.GraphicsLayoutWidget()
        self.view_box = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(True)
        self.image_item = pg.ImageItem()  # shows 8-bit frames made by display_table
        self.view_box.addItem(self.image_item)
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._table: np.ndarray | None = None
        self._table_key: tuple | None = None
        self._shown8: np.ndarray | None = None
        self._histogram_range = histogram_range(self._levels)
        self._source_item = _HistogramSource(self._on_levels, self._on_lut)
        # its own view: a new frame repaints the image, not the histogram's axes
        self.histogram_widget = pg.HistogramLUTWidget()
        self.histogram = self.histogram_widget.item
        self.histogram.setImageItem(self._source_item)
        # the histogram of every frame would cost more than drawing it: a slower timer
        self._source_item.sigImageChanged.disconnect(self.histogram.imageChanged)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self.auto_once = QPushButton("Auto contrast")
        self.auto_once.setToolTip("Set the display range from this frame once")
        self.auto_once.clicked.connect(self.auto_contrast)
        self.auto_continuous = QCheckBox("Continuous")
        self.auto_continuous.setToolTip("Auto contrast on every displayed frame")
        self.auto_continuous.setChecked(True)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Zoom to the whole frame (wheel zooms, drag pans)")
        self.fit_button.clicked.connect(self.fit)
        self.mode = QComboBox()
        self.mode.addItems(["Raw", "Processed"])
        self._set_processed_available(False)
        self.cursor_label = QLabel("x –, y –: –")
        self.cursor_label.setMinimumWidth(170)
        self.rate_label = QLabel("display – fps | camera – fps")
        self.rate_label.setMinimumWidth(230)

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for w in (self.auto_once, self.auto_continuous, self.fit_button, self.mode):
            bar.addWidget(w)
        bar.addStretch(1)
        # the readouts under the image: the view fits beside two docks at 1366 px
        readouts = QHBoxLayout()
        readouts.setContentsMargins(4, 0, 4, 2)
        readouts.addWidget(self.cursor_label)
        readouts.addStretch(1)
        readouts.addWidget(self.rate_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        views = QHBoxLayout()
        views.setSpacing(0)
        views.addWidget(self.graphics, 1)
        views.addWidget(self.histogram_widget)
        layout.addLayout(views, 1)
        layout.addLayout(readouts)

        self.colormap = "gray"
        self.refresh_hz = float(MAX_DISPLAY_HZ)
        self._kept_limits: list[int] | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / MAX_DISPLAY_HZ))
        self.timer.timeout.connect(self.poll)
        self.histogram_timer = QTimer(self)
        self.histogram_timer.setInterval(round(1000 / HISTOGRAM_HZ))
        self.histogram_timer.timeout.connect(self._refresh_histogram)
        self.timer.start()
        self.histogram_timer.start()

    # --- sources -------------------------------------------------------------------
    def set_source(
        self, source: FrameSource | None, run_info: RunInfoSource | None
    ) -> None:
        """Where raw frames and the run's frame count and pressure come from."""
        self._source = source
        self._run_info = run_info
        self._last_frame = None

    def set_processed_source(self, source: FrameSource | None) -> None:
        """A processed-frame source (e.g. deskew); enables the Processed view."""
        self._processed_source = source
        self._set_processed_available(source is not None)

    def _set_processed_available(self, available: bool) -> None:
        item = self.mode.model().item(1)  # type: ignore[union-attr]
        item.setEnabled(available)
        item.setToolTip("" if available else "no processing configured for this run")
        if not available:
            self.mode.setCurrentIndex(0)

    # --- drawing ---------------------------------------------------------------------
    def poll(self) -> None:
        """Timer tick: draw the newest frame if there is one (cheap when not)."""
        info = self._run_info() if self._run_info is not None else None
        if info is None:
            self._camera_rate.reset()
            self.pressure = 0.0
        else:
            self._camera_rate.update(info[0])
            self.pressure = info[1]
        self._display_rate.update(self.frames_drawn)
        self._update_rate_label()
        if not self.isVisible():
            return
        source = (
            self._processed_source
            if self.mode.currentIndex() == 1 and self._processed_source is not None
            else self._source
        )
        now = time.perf_counter()
        if (
            self.pressure >= PRESSURE_LIMIT
            and now - self._last_draw_t < 1 / BUSY_DISPLAY_HZ
        ):
            return  # the pipeline is behind: leave it the CPU
        frame = source() if source is not None else None
        if frame is None or frame is self._last_frame:
            return
        self._last_frame = frame
        self._last_draw_t = now
        # a copy: the frame may still be a view into the camera's ring buffer
        self.show_image(np.array(frame.image, copy=True))  # type: ignore[attr-defined]

    def show_image(self, image: np.ndarray) -> None:
        """Draw one image now (also used for Snap)."""
        shape_changed = self._image is None or self._image.shape != image.shape
        self._image = image
        if self.auto_continuous.isChecked() or shape_changed:
            self._levels = auto_levels(image)
        self._draw()
        if shape_changed:
            self.fit()
            self._refresh_histogram(force=True)
        self._new_since_histogram = True
        self.frames_drawn += 1

    def _draw(self) -> None:
        """Map the current image through the display table and put it on screen."""
        image = self._image
        if image is None:
            return
        key = (image.dtype, *self._levels)
        if key != self._table_key:
            self._table = display_table(image.dtype, *self._levels)
            self._table_key = key
        assert self._table is not None
        shown = self._shown8
        if shown is None or shown.shape != image.shape:
            shown = self._shown8 = np.empty(image.shape, np.uint8)
        # one pass, in place; pyqtgraph re-renders from it at the next paint
        np.take(self._table, image, out=shown, mode="clip")
        self.image_item.setImage(shown, autoLevels=False)

    def _on_levels(self, levels: tuple[float, float]) -> None:
        """The operator moved the histogram's range (or auto contrast set it)."""
        if levels != self._levels:
            self._levels = levels
            self._draw()

    def _on_lut(self, lut: object) -> None:
        """The operator chose a colour map in the histogram."""
        self.image_item.setLookupTable(
            None if lut is None else self.histogram.getLookupTable(n=256, alpha=False)
        )

    def auto_contrast(self) -> None:
        """Set the display range from the current image once."""
        if self._image is not None:
            self._levels = auto_levels(self._image)
            self._show_levels()
            self._new_since_histogram = True
            self._refresh_histogram()
            self._draw()

    @property
    def levels(self) -> tuple[float, float]:
        """The display range (raw pixel values mapped to black and white)."""
        return self._levels

    # --- display settings (presets) ------------------------------------------------
    def set_display(
        self,
        colormap: str,
        autoscale: bool,
        contrast_limits: tuple[int, ...] | None,
        refresh_hz: float,
    ) -> None:
        """Colour map, continuous auto contrast or fixed limits, refresh rate."""
        rgb = COLORMAPS[colormap]
        self.colormap = colormap
        self.histogram.gradient.restoreState(
            {"mode": "rgb", "ticks": [(0.0, (0, 0, 0, 255)), (1.0, (*rgb, 255))]}
        )
        self.auto_continuous.setChecked(autoscale)
        self._kept_limits = list(contrast_limits) if contrast_limits else None
        if not autoscale and contrast_limits is not None:
            lo, hi = contrast_limits
            self._levels = (float(lo), float(hi))
            self._show_levels()
            self._draw()
        self.refresh_hz = min(refresh_hz, float(MAX_DISPLAY_HZ))
        self.timer.setInterval(max(1, round(1000 / self.refresh_hz)))

    def display_settings(self) -> dict[str, object]:
        """The display as a preset's `display` section holds it."""
        autoscale = self.auto_continuous.isChecked()
        limits = self._kept_limits  # auto: the fixed limits are kept for later
        if not autoscale:
            lo = int(min(max(round(self._levels[0]), 0), 65534))
            hi = int(min(max(round(self._levels[1]), lo + 1), 65535))
            limits = [lo, hi]
        return {
            "colormap": self.colormap,
            "autoscale": autoscale,
            "contrast_limits": limits,
            "refresh_hz": self.refresh_hz,
        }

    def fit(self) -> None:
        """Show the whole frame."""
        self.view_box.autoRange(padding=0.0)
        self.view_box.disableAutoRange()  # no range work per frame

    def _refresh_histogram(self, force: bool = False) -> None:
        """The histogram of the current image around the display range.

        Computed here rather than by pyqtgraph, which bins from the image's
        minimum to its maximum (a frame stamp or a hot pixel then squeezes the
        picture's values into one bin) and resets the levels on every image."""
        if (self._new_since_histogram or force) and self.isVisible():
            self._new_since_histogram = False
            if self._image is None:
                return
            follow = self.auto_continuous.isChecked() or force
            if follow:
                self._histogram_range = histogram_range(self._levels)
            self.histogram.plot.setData(
                *histogram_counts(self._image, self._histogram_range)
            )
            if follow:
                self._show_levels()

    def _show_levels(self) -> None:
        """The histogram's region at the levels, its axis around them."""
        self._histogram_range = histogram_range(self._levels)
        self.histogram.setLevels(*self._levels)
        self.histogram.setHistogramRange(*self._histogram_range, padding=0.0)

    @property
    def histogram_view_range(self) -> tuple[float, float]:
        """The pixel values the histogram's axis spans (for tests)."""
        lo, hi = self.histogram.getHistogramRange()
        return float(lo), float(hi)

    # --- readouts ------------------------------------------------------------------
    @property
    def display_fps(self) -> float:
        """Frames drawn per second (about the last second)."""
        return self._display_rate.rate

    @property
    def camera_fps(self) -> float:
        """Frames arriving per second (about the last second)."""
        return self._camera_rate.rate

    @property
    def image(self) -> np.ndarray | None:
        """The image on screen."""
        return self._image

    def _update_rate_label(self) -> None:
        self.rate_label.setText(
            f"display {self.display_fps:4.0f} fps | camera {self.camera_fps:6.0f} fps"
        )

    def _on_mouse_moved(self, pos: QPointF) -> None:
        if self._image is None:
            return
        point = self.view_box.mapSceneToView(pos)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        h, w = self._image.shape[:2]
        if 0 <= x < w and 0 <= y < h:
            self.cursor_label.setText(f"x {x}, y {y}: {self._image[y, x]}")
        else:
            self.cursor_label.setText("x –, y –: –")

    def pixel_text_at(self, x: int, y: int) -> str:
        """What the cursor readout says over image pixel (x, y) (for tests)."""
        scene = self.view_box.mapViewToScene(QPointF(x + 0.5, y + 0.5))
        self._on_mouse_moved(scene)
        return self.cursor_label.text()
