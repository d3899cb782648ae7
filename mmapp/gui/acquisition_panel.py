"""Acquisition panel: Snap / Live / Start / Stop, what to acquire, where, progress."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from useq import MDAEvent, MDASequence

from mmapp.data.datasets import next_dataset_path
from mmapp.data.stats import StatsSnapshot
from mmapp.engine.events import stream_event
from mmapp.engine.plans import build_events
from mmapp.gui.wheel import guard_wheel
from mmapp.presets.naming import check_template, render_name

MODE_LOOP, MODE_FRAMES, MODE_MDA = range(3)
MAX_LOOP_S = 30 * 86400  # as long as a preset's duration_s may be
PREVIEW_REFRESH_MS = 1000  # a name with {time} or {date} follows the clock
# two moments that differ in every strftime field: a name that renders them
# differently depends on the time Start is pressed
_PROBE_TIMES = (
    datetime(2001, 2, 3, 4, 5, 6, 7),
    datetime(2012, 11, 22, 13, 44, 55, 66),
)


def expand_template(
    template: str, rig: str, now: datetime | None = None, name: str = "untitled"
) -> str:
    """A dataset name from a template with {name}, {date}, {time} and {rig}
    (the preset model's templates: one language in the app and its presets)."""
    try:
        check_template(template)
    except ValueError as exc:
        raise ValueError(
            f"dataset name template {template!r} is not valid: {exc}"
        ) from None
    return render_name(template, name=name, when=now or datetime.now(), rig=rig)


def depends_on_time(template: str) -> bool:
    """Whether names from `template` change with the time (a {date} or {time})."""
    try:
        a, b = (expand_template(template, "rig", when) for when in _PROBE_TIMES)
    except ValueError:
        return False
    return a != b


def disk_free_bytes(directory: Path) -> int | None:
    """Free bytes on the disk that holds `directory` (or its nearest parent)."""
    path = directory
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


@dataclass(frozen=True)
class AcquisitionPlan:
    """What Start will run."""

    events: MDASequence | list[MDAEvent]
    expected_frames: int | None  # None: until Stop
    out_dir: Path
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    use_daq: bool = False  # play the window's DAQ waveform program


class AcquisitionPanel(QWidget):
    """The operator's controls for acquiring; the main window runs them."""

    snap_clicked = pyqtSignal()
    live_toggled = pyqtSignal(bool)
    start_clicked = pyqtSignal()
    stop_clicked = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rig_name = "rig"
        self.preset_name = "untitled"  # the {name} of the name template
        self.channel_group = ""
        # an MDA from a preset that the fields cannot show: run as it is
        self.custom_sequence: MDASequence | None = None
        # a preset's duration_s as (what the field shows, the exact value)
        self.exact_duration: tuple[float, float] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_buttons())
        # the run's status under the buttons: in view however short the dock is
        layout.addWidget(self._build_status())
        layout.addWidget(self._build_plan())
        layout.addWidget(self._build_save())
        layout.addStretch(1)
        self._showing = False  # set while a preset fills the fields
        self._preview_key: tuple[Path, str] | None = None
        # a name with the time in it: the preview follows the clock while idle
        self.preview_timer = QTimer(self)
        self.preview_timer.setInterval(PREVIEW_REFRESH_MS)
        self.preview_timer.timeout.connect(self._tick_preview)
        self.preview_timer.start()
        self.set_state("idle")
        guard_wheel(self)  # the wheel scrolls the panel, never a field under it

    # --- building --------------------------------------------------------------------
    def _build_buttons(self) -> QGridLayout:
        self.snap_button = QPushButton("Snap")
        self.live_button = QPushButton("Live")
        self.live_button.setCheckable(True)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.start_button.setStyleSheet("QPushButton { font-weight: bold }")
        self.stop_button.setStyleSheet(
            "QPushButton { font-weight: bold } QPushButton:enabled { color: #c62828 }"
        )
        self.snap_button.clicked.connect(self.snap_clicked)
        self.live_button.clicked.connect(self.live_toggled)
        self.start_button.clicked.connect(self.start_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        grid = QGridLayout()
        for i, b in enumerate(
            (self.snap_button, self.live_button, self.start_button, self.stop_button)
        ):
            b.setMinimumHeight(32)
            grid.addWidget(b, i // 2, i % 2)
        return grid

    def _build_plan(self) -> QGroupBox:
        box = QGroupBox("What to acquire")
        form = QFormLayout(box)
        self.mode = QComboBox()
        self.mode.addItems(
            ["Stream until Stop", "Stream N frames", "MDA: time points, z, channels"]
        )
        self.stack = QStackedWidget()
        loop_page = QWidget()
        loop_form = QFormLayout(loop_page)
        self.loop_limit = QDoubleSpinBox()
        self.loop_limit.setRange(0, MAX_LOOP_S)
        self.loop_limit.setDecimals(3)
        self.loop_limit.setSuffix(" s")
        self.loop_limit.setSpecialValueText("no limit")
        loop_form.addRow("Stop after", self.loop_limit)
        frames_page = QWidget()
        frames_form = QFormLayout(frames_page)
        self.frames = QSpinBox()
        self.frames.setRange(1, 2_000_000_000)
        self.frames.setValue(100)
        frames_form.addRow("Frames", self.frames)
        self.stack.addWidget(loop_page)
        self.stack.addWidget(frames_page)
        self.stack.addWidget(self._build_mda_page())
        self.mode.currentIndexChanged.connect(self._show_page)
        self._show_page(0)
        form.addRow("Mode", self.mode)
        form.addRow(self.stack)
        self.use_daq = QCheckBox("Play the DAQ waveform program")
        self.use_daq.setObjectName("useDaq")
        self.use_daq.setToolTip(
            "Start and Live play the program of the DAQ waveform designer: the card "
            "triggers the camera (or follows it), scans the galvo, blanks the lasers"
        )
        self.daq_info = QLabel("")
        self.daq_info.setWordWrap(True)
        form.addRow(self.use_daq)
        form.addRow(self.daq_info)
        self.set_daq_available(False, None)
        return box

    def set_daq_available(self, available: bool, frames_per_cycle: int | None) -> None:
        """Whether the rig has a DAQ card, and the program's frames per cycle."""
        self.use_daq.setEnabled(available and self.state_allows_edits())
        if not available:
            self.use_daq.setChecked(False)
            self.daq_info.setText("<i>this rig has no DAQ card</i>")
        elif frames_per_cycle is None:
            self.daq_info.setText("<i>the waveform program is not valid</i>")
        else:
            self.daq_info.setText(
                f"<i>{frames_per_cycle} frames per program cycle: a frame count "
                f"must be a whole number of cycles</i>"
            )
        self._daq_available = available

    def state_allows_edits(self) -> bool:
        """Idle or live: what to acquire may still change."""
        return getattr(self, "state", "idle") in ("idle", "live")

    def _build_mda_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.timepoints = QSpinBox()
        self.timepoints.setRange(1, 1_000_000)
        self.timepoints.setValue(5)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0, 86400)
        self.interval.setDecimals(3)
        self.interval.setSuffix(" s")
        self.z_enabled = QCheckBox("Z stack")
        self.z_range = QDoubleSpinBox()
        self.z_range.setRange(0, 100000)
        self.z_range.setValue(10)
        self.z_range.setSuffix(" µm")
        self.z_step = QDoubleSpinBox()
        self.z_step.setRange(0.001, 10000)
        self.z_step.setDecimals(3)
        self.z_step.setValue(1)
        self.z_step.setSuffix(" µm")
        for w in (self.z_range, self.z_step):
            w.setEnabled(False)
            self.z_enabled.toggled.connect(w.setEnabled)
        z_row = QHBoxLayout()
        z_row.addWidget(self.z_enabled)
        z_row.addWidget(QLabel("range"))
        z_row.addWidget(self.z_range)
        z_row.addWidget(QLabel("step"))
        z_row.addWidget(self.z_step)
        self.channels = QListWidget()
        self.channels.setMaximumHeight(90)
        self.channels.setToolTip("checked channels are acquired (none: as set now)")
        form.addRow("Time points", self.timepoints)
        form.addRow("Interval", self.interval)
        form.addRow(z_row)
        self.channels_label = QLabel("Channels")
        form.addRow(self.channels_label, self.channels)
        self.custom_label = QLabel("")
        self.custom_label.setWordWrap(True)
        self.custom_label.setVisible(False)
        form.addRow(self.custom_label)
        for spin in (self.timepoints, self.interval, self.z_range, self.z_step):
            spin.valueChanged.connect(self._fields_edited)
        self.z_enabled.toggled.connect(self._fields_edited)
        self.channels.itemChanged.connect(self._fields_edited)
        return page

    @contextlib.contextmanager
    def showing_preset(self) -> Iterator[None]:
        """While a preset fills the fields: their changes keep its sequence."""
        self._showing = True
        try:
            yield
        finally:
            self._showing = False

    def set_custom_sequence(
        self, sequence: MDASequence | None, events: int = 0
    ) -> None:
        """An MDA the fields cannot show (from a preset): Start runs it as it is,
        until a field is edited."""
        self.custom_sequence = sequence
        self.custom_label.setVisible(sequence is not None)
        if sequence is not None:
            self.custom_label.setText(
                f"<i>The preset's MDA ({events} events) runs as the preset file "
                f"describes it; editing a field above replaces it.</i>"
            )

    def _fields_edited(self, *_: object) -> None:
        if self.custom_sequence is not None and not self._showing:
            self.set_custom_sequence(None)

    def _build_save(self) -> QGroupBox:
        box = QGroupBox("Save")
        form = QFormLayout(box)
        self.save_dir = QLineEdit()
        browse = QPushButton("…")
        browse.setFixedWidth(30)
        browse.setToolTip("Choose the save folder")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.save_dir)
        row.addWidget(browse)
        self.name_template = QLineEdit()
        self.name_template.setToolTip("fields: {name}, {date}, {time}, {rig}")
        self.preview = QLabel()
        self.preview.setWordWrap(True)
        self.preview.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.save_dir.textChanged.connect(self.refresh_preview)
        self.name_template.textChanged.connect(self.refresh_preview)
        form.addRow("Folder", row)
        form.addRow("Name", self.name_template)
        form.addRow(self.preview)
        return box

    def _build_status(self) -> QGroupBox:
        box = QGroupBox("Run")
        grid = QGridLayout(box)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.readouts: dict[str, QLabel] = {}
        names = ("frames", "MB/s", "buffer", "dropped", "disk free", "ETA")
        for i, name in enumerate(names):
            value = QLabel("–")
            value.setAlignment(Qt.AlignmentFlag.AlignRight)
            value.setMinimumWidth(80)
            grid.addWidget(QLabel(name), 1 + i // 2, (i % 2) * 2)
            grid.addWidget(value, 1 + i // 2, (i % 2) * 2 + 1)
            self.readouts[name] = value
        grid.addWidget(self.progress, 0, 0, 1, 4)
        grid.addWidget(self.status, 4, 0, 1, 4)
        return box

    def _show_page(self, index: int) -> None:
        """Show one editor page; the stack takes that page's height only."""
        for i in range(self.stack.count()):
            page = self.stack.widget(i)
            assert page is not None
            policy = (
                QSizePolicy.Policy.Preferred
                if i == index
                else QSizePolicy.Policy.Ignored
            )
            page.setSizePolicy(QSizePolicy.Policy.Preferred, policy)
        self.stack.setCurrentIndex(index)
        self.stack.adjustSize()

    # --- inputs ------------------------------------------------------------------
    def set_channels(self, group: str, names: list[str]) -> None:
        """The channel presets the MDA editor offers."""
        self.channel_group = group
        self.channels.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.channels.addItem(item)
        self.channels_label.setText(f"Channels ({group})" if group else "Channels")
        self.channels.setEnabled(bool(names))

    def checked_channels(self) -> list[str]:
        """Channel presets ticked in the MDA editor."""
        items = (self.channels.item(i) for i in range(self.channels.count()))
        return [
            it.text()
            for it in items
            if it is not None and it.checkState() == Qt.CheckState.Checked
        ]

    def set_rig_name(self, name: str) -> None:
        """The rig name used by the {rig} field."""
        self.rig_name = name
        self.refresh_preview()

    def dataset_name(self) -> str:
        """The expanded dataset name (raises ValueError when not usable)."""
        return expand_template(
            self.name_template.text(), self.rig_name, name=self.preset_name
        )

    def refresh_preview(self) -> None:
        """Say where the next dataset goes (a new folder: nothing is overwritten).

        With {time} or {date} in the template it is where a Start pressed now
        goes: the preview follows the clock (once a second) while Start is
        possible, and says that the time is taken at Start."""
        self._preview_key = None
        try:
            name = self.dataset_name()
            directory = self.directory()
        except ValueError as exc:
            self.preview.setText(f"<span style='color:#c62828'>{exc}</span>")
            return
        self._preview_key = (directory, name)
        path = next_dataset_path(directory, name)
        note = "a new folder, never overwritten"
        if depends_on_time(self.name_template.text()):
            note += "; the date and time are those of pressing Start"
        self.preview.setText(f"Next dataset: {path}<br><i>({note})</i>")

    def _tick_preview(self) -> None:
        """Timer: a preview with the time in it shows the time now."""
        if not self.state_allows_edits() or self._preview_key is None:
            return
        try:
            name = self.dataset_name()
        except ValueError:
            return
        if name != self._preview_key[1]:
            self.refresh_preview()

    def directory(self) -> Path:
        """The save folder in the field (ValueError when it is empty)."""
        text = self.save_dir.text().strip()
        if not text:
            raise ValueError("choose a save folder")
        return Path(text).expanduser()

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(
            self, "Save folder", self.save_dir.text()
        )
        if chosen:
            self.save_dir.setText(chosen)

    def plan(self) -> AcquisitionPlan:
        """What Start runs, from the editor (ValueError with the reason if unusable)."""
        directory = self.directory()
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"the save folder {directory} is a file")
        name = self.dataset_name()
        mode = self.mode.currentIndex()
        settings: dict[str, Any] = {"gui_mode": self.mode.currentText()}
        events: MDASequence | list[MDAEvent]
        if mode == MODE_LOOP:
            limit = self.loop_duration()
            events = [stream_event(max_duration_s=limit)]
            expected = None
            settings["max_duration_s"] = limit
        elif mode == MODE_FRAMES:
            expected = self.frames.value()
            events = [stream_event(max_frames=expected)]
            settings["frames"] = expected
        else:
            events, expected = self._mda_plan(settings)
        use_daq = self.use_daq.isChecked() and self._daq_available
        settings["daq_program"] = use_daq
        return AcquisitionPlan(events, expected, directory, name, settings, use_daq)

    def set_loop_duration(self, seconds: float | None) -> None:
        """Show a loop's time limit (None: until Stop), keeping it exact."""
        self.loop_limit.setValue(seconds or 0.0)
        self.exact_duration = (self.loop_limit.value(), seconds) if seconds else None

    def loop_duration(self) -> float | None:
        """The loop's time limit in seconds (None: until Stop)."""
        shown = self.loop_limit.value()
        if self.exact_duration is not None and self.exact_duration[0] == shown:
            return self.exact_duration[1]
        return shown or None

    def _mda_plan(self, settings: dict[str, Any]) -> tuple[MDASequence, int]:
        if self.custom_sequence is not None:
            settings["sequence"] = "from the preset"
            return self.custom_sequence, sum(1 for _ in self.custom_sequence)
        return self.fields_sequence(settings)

    def fields_sequence(
        self, settings: dict[str, Any] | None = None
    ) -> tuple[MDASequence, int]:
        """The MDA the fields describe (and its event count)."""
        settings = settings if settings is not None else {}
        z = self.z_enabled.isChecked()
        sequence = build_events(
            timepoints=self.timepoints.value(),
            interval_s=self.interval.value(),
            z_range_um=self.z_range.value() if z else None,
            z_step_um=self.z_step.value() if z else None,
        )
        assert isinstance(sequence, MDASequence)
        channels = self.checked_channels()
        if channels:
            sequence = sequence.replace(
                channels=[{"group": self.channel_group, "config": c} for c in channels],
                axis_order="tpzc",
            )
        settings.update(
            timepoints=self.timepoints.value(),
            interval_s=self.interval.value(),
            z_range_um=self.z_range.value() if z else None,
            z_step_um=self.z_step.value() if z else None,
            channels=channels,
        )
        return sequence, sum(1 for _ in sequence)

    # --- state and progress -----------------------------------------------------------
    def set_state(self, state: str) -> None:
        """'idle', 'busy' (snapping, starting, stopping), 'live' or 'acquiring'."""
        idle = state == "idle"
        self.state = state
        self._enable_buttons(
            {
                self.stop_button: state in ("live", "acquiring"),
                self.start_button: idle or state == "live",
                self.live_button: idle or state == "live",
                self.snap_button: idle,
            }
        )
        self.live_button.setChecked(state == "live")
        for w in (self.mode, self.stack, self.save_dir, self.name_template):
            w.setEnabled(idle or state == "live")
        self.use_daq.setEnabled(
            (idle or state == "live") and getattr(self, "_daq_available", False)
        )

    def _enable_buttons(self, wanted: dict[QPushButton, bool]) -> None:
        """Enable and disable the run's buttons; a button that had the focus
        hands it to the first enabled one (Stop while a run goes, else Start).

        Disabling the focused button lets Qt move the focus to the next field
        in the form, and the dock's scroll area scrolls to it: Start scrolled
        Stop out of view for the whole run.
        """
        for button, enabled in wanted.items():
            if enabled:
                button.setEnabled(True)
        if any(b.hasFocus() and not on for b, on in wanted.items()):
            heir = next((b for b, on in wanted.items() if on), None)
            if heir is not None:
                heir.setFocus(Qt.FocusReason.OtherFocusReason)
        for button, enabled in wanted.items():
            if not enabled:
                button.setEnabled(False)

    def show_stats(
        self,
        snap: StatsSnapshot | None,
        expected: int | None,
        disk_free: int | None,
        saving: bool,
    ) -> None:
        """Update the run readouts from one statistics snapshot."""
        r = self.readouts
        if disk_free is not None:
            r["disk free"].setText(f"{disk_free / 1e9:.1f} GB")
        if snap is None:
            return
        rate = snap.frames_in / snap.elapsed_s if snap.elapsed_s > 0 else 0.0
        r["frames"].setText(
            f"{snap.frames_in} / {expected}" if expected else str(snap.frames_in)
        )
        r["MB/s"].setText(f"{snap.write_mb_s:.1f}" if saving else "not saving")
        r["buffer"].setText(
            f"{snap.buffer_fill:.0%}" if snap.buffer_fill >= 0 else "unknown"
        )
        r["dropped"].setText(str(snap.frames_lost + snap.frames_rejected))
        if expected:
            self.progress.setRange(0, expected)
            self.progress.setValue(min(snap.frames_in, expected))
            left = expected - snap.frames_in
            r["ETA"].setText(f"{left / rate:.0f} s" if rate > 0 and left > 0 else "–")
        else:
            self.progress.setRange(0, 0)  # busy: runs until Stop
            r["ETA"].setText("until Stop")

    def run_started(self, expected: int | None, text: str) -> None:
        """A run began: a progress bar to `expected` frames, or busy (until Stop)."""
        self.progress.setRange(0, expected or 0)
        self.progress.setValue(0)
        for name in ("frames", "MB/s", "buffer", "dropped", "ETA"):
            self.readouts[name].setText("–")
        self.status.setStyleSheet("")  # an earlier run's alarm is over
        self.status.setText(text)

    def run_ended(self, text: str) -> None:
        """Show how the run ended; the progress bar stops.

        A run of a known frame count keeps its final progress (a Stop at half
        way shows 50 %); Live and runs until Stop had none: the bar empties."""
        if self.progress.maximum() == 0:  # busy: there was no progress to show
            self._clear_progress()
        self.status.setText(text)

    def show_snap(self, text: str) -> None:
        """A Snap replaces the last run's readouts: they described that run."""
        self._clear_progress()
        for name in ("frames", "MB/s", "buffer", "dropped", "ETA"):
            self.readouts[name].setText("–")
        self.readouts["frames"].setText("1 (snap)")
        self.status.setText(text)

    def _clear_progress(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.reset()  # empty, no percentage
