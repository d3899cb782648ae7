"""Live view: the newest frame, polled on a timer (never one Qt signal per frame).

A QTimer (at most 60 Hz) asks a source for the latest frame and draws it only
if it is new, so the display costs the same at 1 and at 1000 frames per second
and holds one frame of memory. What a draw costs is kept small, because every
millisecond of it is taken from the acquisition (same process, same GIL):

- a frame larger than the view's pixels is drawn from a strided view of it
  (every n-th row and column, n image pixels per screen pixel), never copied;
- contrast levels and the histogram look at a strided subsample of at most
  SUBSAMPLE_PIXELS pixels; the histogram is refreshed a few times a second,
  once a second while the pipeline is behind;
- while an acquisition runs the timer ticks at most ACQUIRING_DISPLAY_HZ, and
  while the pipeline is behind it slows to BUSY_DISPLAY_HZ;
- nothing is drawn while the view is hidden, its window minimised or not
  exposed (covered), or its image area clipped away.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import QPointF, QRectF, QTimer
from PyQt6.QtGui import QImage, QPainter, QShowEvent
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
BUSY_HISTOGRAM_HZ = 1  # while the pipeline is behind (see PRESSURE_LIMIT)
IDLE_POLL_HZ = 4  # the timer while nothing can be seen (readouts only)
SUBSAMPLE_PIXELS = 16384  # pixels looked at per auto contrast or histogram
AUTO_CONTRAST_PERCENTILES = (0.1, 99.9)
# A projection (MIP) of processed volumes turns a few bright pixels of every
# frame (a hot pixel; the simulated camera's frame stamp) into a line: its
# contrast leaves out the brightest 0.5 %.
PROCESSED_HIGH_PERCENTILE = 99.5
WAITING_TEXT = (
    "Processed: waiting for the first processed image\n"
    "(a deskewed volume appears once all its planes are in; the first run "
    "compiles the kernels, a few seconds)"
)
MIN_TRIMMED = 8  # extreme pixels auto contrast ignores at least (hot pixels, stamp)
HISTOGRAM_BINS = 256
HISTOGRAM_MARGIN = 0.25  # of the display range, shown each side of it

# The frame source returns any object with an `image` attribute (a
# mmapp.data.handler.Frame) or None; a new object means a new frame. An image
# that owns its memory is kept as it is (DataHandler.latest() hands out its
# own copy); a view into another buffer (a camera ring slot) is copied.
FrameSource = Callable[[], object | None]
# (frames received so far, pipeline pressure 0..1) of the running acquisition
RunInfoSource = Callable[[], tuple[int, float] | None]
# Pressure at which the pipeline is falling behind (queue or camera buffer this
# full): the display then yields the CPU, drawing at most BUSY_DISPLAY_HZ.
PRESSURE_LIMIT = 0.5
BUSY_DISPLAY_HZ = 10
# While an acquisition runs the display draws at most this often (as
# Micro-Manager's does): half the GUI time of 60 Hz, taken from the same CPU
# and GIL as the pipeline, for a live image that looks the same to a person.
ACQUIRING_DISPLAY_HZ = 30
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
    """At most about SUBSAMPLE_PIXELS pixels spread over the image (a strided
    view: as cheap at 2048x2048 as at 128x128)."""
    step = max(1, int(np.ceil(np.sqrt(image.size / SUBSAMPLE_PIXELS))))
    return image[::step, ::step]


def display_step(pixel_size: tuple[float, float], device_ratio: float = 1.0) -> int:
    """Image pixels per device pixel (at least 1) for a view whose screen pixel
    spans `pixel_size` image pixels: the stride of the rows and columns drawn."""
    finite = [abs(p) for p in pixel_size if np.isfinite(p) and p > 0]
    if not finite:
        return 1
    return max(1, int(min(finite) / max(device_ratio, 1.0)))


def auto_levels(
    image: np.ndarray, high: float = AUTO_CONTRAST_PERCENTILES[1]
) -> tuple[float, float]:
    """Contrast limits from a subsample of the image (robust percentiles).

    The 0.1 and 99.9 (`high`) percentiles ignore a few extreme pixels: hot
    pixels of a real camera, the frame number the simulated camera stamps into
    the first pixels. A flat image gets (value, value + 1)."""
    sample = _subsample(image).reshape(-1)
    n = sample.size
    # pixels left out at each end: 0.1 %, and never fewer than a stamp's worth
    # (on frames large enough to spare them)
    trim = max(
        round(n * AUTO_CONTRAST_PERCENTILES[0] / 100), min(MIN_TRIMMED, n // 100)
    )
    trim_high = max(trim, round(n * (100 - high) / 100))
    trim_high = min(trim_high, max(0, n - 1 - trim))
    ends = np.partition(sample, (trim, n - 1 - trim_high))
    lo, hi = float(ends[trim]), float(ends[n - 1 - trim_high])
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


def display_table(
    dtype: np.dtype, lo: float, hi: float, palette: np.ndarray
) -> np.ndarray:
    """Lookup table mapping every pixel value (uint8 or uint16) to its display
    colour: `lo` and below the palette's first colour, `hi` and above its last,
    linear between. Only the values between the levels are computed (the
    levels change with every frame under continuous auto contrast)."""
    n = 256 if dtype == np.uint8 else 65536
    first = int(min(max(np.floor(lo), 0), n))
    last = int(min(max(np.ceil(hi), first), n))
    table = np.empty(n, np.uint32)
    table[:first] = palette[0]
    table[last:] = palette[255]
    values = np.arange(first, last, dtype=np.float32)
    scale = 255.0 / max(hi - lo, 1e-6)
    grey = np.clip((values - lo) * scale, 0, 255).astype(np.uint8)
    table[first:last] = palette[grey]
    return table


def rgb32_palette(colours: np.ndarray | None) -> np.ndarray:
    """256 opaque 0xAARRGGBB colours (QImage.Format_RGB32) for grey levels
    0..255: `colours` (256 x 3 uint8) or, without it, grey."""
    if colours is None:
        grey = np.arange(256, dtype=np.uint32)
        return 0xFF000000 | (grey << 16) | (grey << 8) | grey
    c = np.asarray(colours, dtype=np.uint32)[:, :3]
    return 0xFF000000 | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


class _FrameItem(pg.GraphicsObject):
    """The frame on screen: 32-bit RGB pixels drawn as they are.

    Painting holds the GIL (PyQt), so it is kept cheap: Qt scales an RGB32
    image onto the window's RGB32 backing store 3-4x faster than the 8-bit
    grey (or indexed, with a colour map) image pyqtgraph's ImageItem makes, and
    nothing is converted at paint time. The pixels are shared, not copied."""

    def __init__(self) -> None:
        super().__init__()
        self._pixels: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._rect = QRectF()

    def set_pixels(self, pixels: np.ndarray, rect: QRectF) -> None:
        """Show `pixels` (uint32 0xAARRGGBB, C-contiguous) over `rect` (in
        image pixels); the same array refilled in place is shown again."""
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)
        if pixels is not self._pixels:
            h, w = pixels.shape
            self._qimage = QImage(
                sip.voidptr(pixels), w, h, w * 4, QImage.Format.Format_RGB32
            )
            self._pixels = pixels
        self.update()

    def boundingRect(self) -> QRectF:
        """The frame's extent in image pixels."""
        return QRectF(self._rect)

    def paint(self, painter: QPainter, *args: object) -> None:
        """Draw the pixels, scaled to the frame's extent."""
        if self._qimage is not None:
            painter.drawImage(self._rect, self._qimage)


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
        self._clock: Callable[[], float] = time.perf_counter  # tests drive it
        self._last_draw_t = -np.inf
        self._last_histogram_t = -np.inf
        self.pressure = 0.0
        self._last_frame: object | None = None
        self._image: np.ndarray | None = None
        self._new_since_histogram = False
        self.frames_drawn = 0  # frames put on screen (the display frame rate)
        self.histograms_computed = 0  # histograms binned (each costs CPU)
        self.display_step = 1  # rows and columns of the image per drawn pixel
        self._rate_text = ""
        self._display_rate = _RateMeter()
        self._camera_rate = _RateMeter()

        pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
        self.graphics = pg.GraphicsLayoutWidget()
        self.view_box = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(True)
        self.image_item = _FrameItem()  # RGB32 pixels made by the display table
        self.view_box.addItem(self.image_item)
        self.view_box.sigRangeChanged.connect(self._on_range_changed)
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._palette = rgb32_palette(None)  # grey level -> colour of the map
        self._table: np.ndarray | None = None  # pixel value -> RGB32 colour
        self._table_key: tuple | None = None
        self._shown: np.ndarray | None = None  # what is on screen (RGB32)
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
        self.mode.currentIndexChanged.connect(self._on_mode_changed)
        self._set_processed_available(False)
        # said over the view while Processed has nothing to show yet
        self.waiting = QLabel(WAITING_TEXT, self.graphics)
        self.waiting.setStyleSheet(
            "color: white; background: rgba(0, 0, 0, 160); padding: 8px;"
        )
        self.waiting.setWordWrap(True)
        self.waiting.hide()
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
        self._interval_ms = self.timer.interval()
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
    def can_be_seen(self) -> bool:
        """Whether a draw could reach the screen: the view is shown, its window
        neither minimised nor unexposed (e.g. covered), the image area not
        clipped away."""
        if not self.isVisible():
            return False
        window = self.window()
        if window.isMinimized():
            return False
        handle = window.windowHandle()
        if handle is not None and not handle.isExposed():
            return False
        return not self.graphics.viewport().visibleRegion().isEmpty()

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
        busy = self.pressure >= PRESSURE_LIMIT
        seen = self.can_be_seen()
        self._pace_timer(busy, seen, acquiring=info is not None)
        if not seen:
            return
        source = (
            self._processed_source
            if self.mode.currentIndex() == 1 and self._processed_source is not None
            else self._source
        )
        now = self._clock()
        if busy and now - self._last_draw_t < 1 / BUSY_DISPLAY_HZ:
            return  # the pipeline is behind: leave it the CPU
        frame = source() if source is not None else None
        processed = source is self._processed_source and source is not None
        if processed and frame is None:
            self._show_waiting(True)
            return
        self._show_waiting(False)
        if frame is None or frame is self._last_frame:
            return
        self._last_frame = frame
        self._last_draw_t = now
        image = frame.image  # type: ignore[attr-defined]
        if not image.flags.owndata:  # a view into someone's buffer: ours now
            image = np.array(image, copy=True)
        self.show_image(image)

    def _pace_timer(self, busy: bool, seen: bool, *, acquiring: bool = False) -> None:
        """Fewer ticks while nothing can be seen, an acquisition runs or the
        pipeline is behind."""
        if not seen:
            hz = IDLE_POLL_HZ
        elif busy:
            hz = min(BUSY_DISPLAY_HZ, self.refresh_hz)
        elif acquiring:
            hz = min(ACQUIRING_DISPLAY_HZ, self.refresh_hz)
        else:
            hz = self.refresh_hz
        interval = max(1, round(1000 / hz))
        if interval != self._interval_ms:
            self._interval_ms = interval
            self.timer.setInterval(interval)

    def showEvent(self, event: QShowEvent | None) -> None:
        """Shown again: back to the display rate at the next tick."""
        super().showEvent(event)
        if self.timer.isActive():
            self.timer.start(max(1, round(1000 / self.refresh_hz)))
            self._interval_ms = self.timer.interval()

    def _on_mode_changed(self, index: int) -> None:
        """Raw <-> Processed: the next tick draws the other source's newest
        frame (never the old source's last one under the new name)."""
        self._last_frame = None
        if index == 0:
            self._show_waiting(False)

    def _show_waiting(self, waiting: bool) -> None:
        """Processed has no image yet: say so over the view (not the raw frame)."""
        if waiting == self.waiting.isVisible():
            return
        if waiting:
            self.image_item.set_pixels(np.zeros((1, 1), np.uint32), QRectF(0, 0, 1, 1))
            self._image = None
            width = max(200, self.graphics.width() - 40)
            self.waiting.setFixedWidth(width)
            self.waiting.adjustSize()
            self.waiting.move(20, 20)
            self.waiting.show()
        else:
            self.waiting.hide()

    def _high_percentile(self) -> float:
        processed = self.mode.currentIndex() == 1 and self._processed_source is not None
        return PROCESSED_HIGH_PERCENTILE if processed else AUTO_CONTRAST_PERCENTILES[1]

    def show_image(self, image: np.ndarray) -> None:
        """Draw one image now (also used for Snap)."""
        shape_changed = self._image is None or self._image.shape != image.shape
        self._image = image
        if self.auto_continuous.isChecked() or shape_changed:
            self._levels = auto_levels(image, self._high_percentile())
        if shape_changed:
            self.fit()  # first: the zoom sets the stride the image is drawn at
        self._draw()
        if shape_changed:
            self._refresh_histogram(force=True)
        self._new_since_histogram = True
        self.frames_drawn += 1

    def _wanted_step(self) -> int:
        """The display stride the view's current zoom calls for."""
        try:
            size = self.view_box.viewPixelSize()
        except Exception:  # not laid out yet
            return 1
        return display_step(size, self.devicePixelRatioF())

    def _draw(self) -> None:
        """Map the current image through the display table and put it on screen
        (every `display_step`-th row and column when the view shows fewer
        pixels than the image has)."""
        image = self._image
        if image is None:
            return
        dtype = np.dtype(np.uint8 if image.dtype == np.uint8 else np.uint16)
        key = (dtype, *self._levels, id(self._palette))
        if key != self._table_key:
            self._table = display_table(dtype, *self._levels, self._palette)
            self._table_key = key
        assert self._table is not None
        step = self.display_step = self._wanted_step()
        sampled = image[::step, ::step] if step > 1 else image  # a view, no copy
        if sampled.dtype not in (np.uint8, np.uint16):  # e.g. a float processed frame
            sampled = np.clip(sampled, 0, 65535).astype(np.uint16)
        shown = self._shown
        if shown is None or shown.shape != sampled.shape:
            shown = self._shown = np.empty(sampled.shape, np.uint32)
        # one pass, in place (numpy releases the GIL); painted at the next paint
        np.take(self._table, sampled, out=shown, mode="clip")
        h, w = shown.shape  # the extent in image pixels, whatever the stride
        self.image_item.set_pixels(shown, QRectF(0, 0, w * step, h * step))

    def _on_range_changed(self, *_: object) -> None:
        """Zoomed or resized: redraw if the stride no longer fits the zoom."""
        if self._image is not None and self._wanted_step() != self.display_step:
            self._draw()

    def _on_levels(self, levels: tuple[float, float]) -> None:
        """The operator moved the histogram's range (or auto contrast set it)."""
        if levels != self._levels:
            self._levels = levels
            self._draw()

    def _on_lut(self, lut: object) -> None:
        """The operator chose a colour map in the histogram: folded into the
        display table (no colour lookup at paint time)."""
        colours = (
            None if lut is None else self.histogram.getLookupTable(n=256, alpha=False)
        )
        self._palette = rgb32_palette(colours)
        self._draw()

    def auto_contrast(self) -> None:
        """Set the display range from the current image once."""
        if self._image is not None:
            self._levels = auto_levels(self._image, self._high_percentile())
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
        if self._image is None:
            self.view_box.autoRange(padding=0.0)
        else:
            h, w = self._image.shape[:2]
            self.view_box.setRange(QRectF(0, 0, w, h), padding=0.0)
        self.view_box.disableAutoRange()  # no range work per frame

    def _refresh_histogram(self, force: bool = False) -> None:
        """Timer tick: the histogram of the current image around the display
        range, at most HISTOGRAM_HZ (BUSY_HISTOGRAM_HZ while the pipeline is
        behind) times a second unless forced, and only when it can be seen.

        Computed here rather than by pyqtgraph, which bins from the image's
        minimum to its maximum (a frame stamp or a hot pixel then squeezes the
        picture's values into one bin) and resets the levels on every image."""
        if not (self._new_since_histogram or force) or not self.can_be_seen():
            return
        now = self._clock()
        hz = BUSY_HISTOGRAM_HZ if self.pressure >= PRESSURE_LIMIT else HISTOGRAM_HZ
        # (a little slack: timer ticks arrive a few ms early or late)
        if not force and now - self._last_histogram_t < 0.9 / hz:
            return
        self._new_since_histogram = False
        if self._image is None:
            return
        self._last_histogram_t = now
        self.histograms_computed += 1
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
        text = (
            f"display {self.display_fps:4.0f} fps | camera {self.camera_fps:6.0f} fps"
        )
        if text != self._rate_text:  # a new text lays the bar out again
            self._rate_text = text
            self.rate_label.setText(text)

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
