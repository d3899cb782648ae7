"""Preview of a rendered waveform program: every channel on one time axis.

The traces are the samples `mmapp.daq.render.render` produces, the same arrays
written to the card. Exposure windows are shaded, camera triggers marked, and
the cursor reads out time and every channel's value.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from mmapp.daq.render import RenderedProgram

SPANS = {"One frame": 0, "One volume": 1, "Three volumes": 3}
AXIS_WIDTH_PX = 120  # room for lane names; keeps both plots' time axes aligned
MAX_MARKERS = 400  # trigger markers drawn (beyond this only the lane shows them)
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
LASER_COLORS = ("#17becf", "#bcbd22", "#ff7f0e", "#7f7f7f")
# heights that keep the preview readable: lane names never overlap
LANE_PX = 18  # per digital lane (a lane name is about 14 px high)
TIME_AXIS_PX = 50  # the time axis with its label
ANALOG_MIN_PX = 80  # the analog plot: a few voltage ticks
TYPICAL_LANES = 3  # one laser, exposure, camera trigger: the height to start with


class WaveformPreview(QWidget):
    """Analog traces (V) above digital lanes (lasers, exposure, camera trigger)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.span = QComboBox()
        self.span.addItems(list(SPANS))
        self.span.setCurrentText("One volume")
        self.span.currentTextChanged.connect(lambda _t: self._redraw())
        self.readout = QLabel("")
        self.readout.setObjectName("cursorReadout")
        # a long readout (many channels) is cut, never widens the dock
        self.readout.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.span)
        top.addStretch(1)
        top.addWidget(self.readout)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("w")
        self.analog = self.plots.addPlot(row=0, col=0)
        self.analog.setLabel("left", "AO", units="V")
        self.analog.showGrid(x=True, y=True, alpha=0.2)
        self.analog.addLegend(offset=(10, 5))
        self.digital = self.plots.addPlot(row=1, col=0)
        self.digital.setLabel("bottom", "time", units="s")
        self.digital.setXLink(self.analog)
        for plot in (self.analog, self.digital):
            plot.getAxis("left").setWidth(AXIS_WIDTH_PX)
        self.analog.getAxis("bottom").setStyle(showValues=False)
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        for plot in (self.analog, self.digital):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plots, 1)
        self._rendered: RenderedProgram | None = None
        self._names: dict[str, str] = {}
        self._t = np.zeros(0)
        self._traces: dict[str, np.ndarray] = {}
        self._kinds: dict[str, str] = {}
        self._lane_ticks: list[float] = []
        self.plots.scene().sigMouseMoved.connect(self._on_mouse)
        self._fit_lanes(TYPICAL_LANES)  # the dock's height is known from the start

    # --- data -----------------------------------------------------------------------
    def show_program(
        self, rendered: RenderedProgram | None, names: dict[str, str] | None = None
    ) -> None:
        """Draw a rendered program (None: clear; an invalid draft draws nothing)."""
        self._rendered = rendered
        self._names = dict(names or {})
        self._redraw()

    def traces(self) -> dict[str, np.ndarray]:
        """What is drawn, by label (for tests: the exact samples)."""
        return dict(self._traces)

    def _span_samples(self, r: RenderedProgram) -> tuple[int, int]:
        """(samples to draw, cycles to tile)."""
        volumes = SPANS[self.span.currentText()]
        n_volumes = max(f.volume for f in r.frames) + 1
        per_volume = r.samples_per_cycle // n_volumes
        if volumes == 0:
            frame_len = (
                int(r.frames[1].start - r.frames[0].start)
                if len(r.frames) > 1
                else r.samples_per_cycle
            )
            return frame_len, 1
        n = per_volume * volumes
        return n, -(-n // r.samples_per_cycle)

    def _redraw(self) -> None:
        self.analog.clear()
        self.digital.clear()
        self._traces, self._kinds = {}, {}
        self._lane_ticks = []
        r = self._rendered
        if r is None:
            self._t = np.zeros(0)
            return
        n, cycles = self._span_samples(r)
        t = np.arange(n) / r.sample_rate_hz
        self._t = t

        def tiled(a: np.ndarray) -> np.ndarray:
            return np.tile(a, cycles)[:n]

        for i, (line, volts) in enumerate(r.analog.items()):
            label = self._names.get(line, line)
            y = tiled(volts)
            self._traces[label], self._kinds[label] = y, "analog"
            pen = pg.mkPen(COLORS[i % len(COLORS)], width=2)
            self.analog.plot(t, y, pen=pen, name=f"{label} ({line})")
        lanes: list[tuple[str, np.ndarray, str]] = []
        exposure = np.zeros(r.samples_per_cycle, dtype=bool)
        for f in r.frames:
            exposure[f.start : f.start + r.exposure_samples] = True
        for i, (line, high) in enumerate(r.digital.items()):
            label = self._names.get(line, line)
            lanes.append((label, tiled(high), LASER_COLORS[i % len(LASER_COLORS)]))
        lanes.append(("exposure", tiled(exposure), "#555555"))
        if r.camera_trigger is not None:
            lanes.append(("camera trigger", tiled(r.camera_trigger), "#000000"))
        ticks = []
        for k, (label, high, color) in enumerate(lanes):
            base = -1.5 * k
            y = base + 0.9 * high.astype(float)
            self._traces[label] = high.astype(float)
            self._kinds[label] = "digital"
            fill = pg.PlotDataItem(
                t,
                y,
                pen=pg.mkPen(color, width=1.5),
                fillLevel=base,
                brush=pg.mkBrush(color + "55"),
            )
            self.digital.addItem(fill)
            ticks.append((base + 0.45, label))
        self.digital.getAxis("left").setTicks([ticks, []])
        self._lane_ticks = [value for value, _ in ticks]
        self._fit_lanes(max(len(lanes), TYPICAL_LANES))
        self.digital.setYRange(-1.5 * (len(lanes) - 1) - 0.2, 1.1, padding=0)
        self._mark_triggers(r, n, cycles)
        self.analog.setXRange(0, t[-1] if len(t) else 1.0, padding=0.01)

    def _fit_lanes(self, lanes: int) -> None:
        """Heights at which no two lane names overlap (the dock may not squash
        the plots below them)."""
        digital = lanes * LANE_PX + TIME_AXIS_PX
        self.analog.setMinimumHeight(ANALOG_MIN_PX)
        self.digital.setMinimumHeight(digital)
        self.plots.setMinimumHeight(ANALOG_MIN_PX + digital + 20)

    def lane_label_gap(self) -> float:
        """Pixels between neighbouring lane names (for tests: >= one text line)."""
        if len(self._lane_ticks) < 2:
            return float("inf")
        view = self.digital.vb
        ys = sorted(
            view.mapViewToScene(QPointF(0, value)).y() for value in self._lane_ticks
        )
        return min(b - a for a, b in pairwise(ys))

    def _mark_triggers(self, r: RenderedProgram, n: int, cycles: int) -> None:
        starts = np.concatenate(
            [r.frame_starts + c * r.samples_per_cycle for c in range(cycles)]
        )
        starts = starts[starts < n]
        if len(starts) > MAX_MARKERS:
            return
        pen = pg.mkPen("#00000040", width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
        for s in starts:
            self.analog.addItem(pg.InfiniteLine(s / r.sample_rate_hz, pen=pen))

    # --- cursor -----------------------------------------------------------------------
    def _on_mouse(self, pos: QPointF) -> None:
        if not len(self._t):
            return
        for plot in (self.analog, self.digital):
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                self.readout.setText(self.readout_at(x))
                return

    def readout_at(self, t_s: float) -> str:
        """'t = 1.234 ms | galvo 0.500 V | ...' at the sample nearest t."""
        if not len(self._t) or self._rendered is None:
            return ""
        i = int(
            np.clip(round(t_s * self._rendered.sample_rate_hz), 0, len(self._t) - 1)
        )
        parts = [f"t = {self._t[i] * 1e3:.3f} ms"]
        for label, y in self._traces.items():
            if self._kinds[label] == "analog":
                parts.append(f"{label} {y[i]:.4g} V")
            else:
                parts.append(f"{label} {'high' if y[i] > 0.5 else 'low'}")
        return " | ".join(parts)
