"""Device panel: config groups, camera, stages, lasers and a property browser.

Built from whatever the core holds, so it serves the simulated rig and a
Micro-Manager `.cfg` alike. Every change goes through the core; a refused
change is reported (never raised) and the control shows the device's value.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pymmcore_plus import CMMCorePlus
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mmapp.gui.property_table import PropertyTable
from mmapp.gui.scroll import FormScrollArea
from mmapp.gui.wheel import guard_wheel

ErrorSink = Callable[[str, str], None]  # (what failed, why)
LASER_RE = re.compile(r"^Laser (\d+)$")
TRIGGER_PROPERTIES = ("TriggerMode", "Trigger", "TRIGGER SOURCE")


def _spin(lo: float, hi: float, value: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setKeyboardTracking(False)  # apply on Enter / focus out, not per keystroke
    return box


_LaserRow = tuple[str, QCheckBox, QDoubleSpinBox | None]  # device, on/off, power


class DevicePanel(QWidget):
    """Controls for the devices of one core."""

    camera_changed = pyqtSignal()  # a camera setting changed (Live restarts)

    def __init__(self, on_error: ErrorSink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_error = on_error
        self.core: CMMCorePlus | None = None
        self.group_boxes: dict[str, QComboBox] = {}
        self.chosen: dict[str, str] = {}  # group -> the preset the operator chose
        self._trigger_prop: str | None = None  # the camera's trigger property
        # the rig's trigger mapping names it (mmapp.rig.triggers); else a guess
        self.trigger_property: str | None = None
        self.laser_controls: dict[str, _LaserRow] = {}
        # laser property -> on/off as the operator chose it (a run's safe state
        # turns the lasers off; Snap, Live and Start switch this back on)
        self.chosen_lasers: dict[str, bool] = {}
        self._refreshing = False
        self.tabs = QTabWidget()
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs)
        self.controls = QWidget()
        scroll = FormScrollArea(self.controls)
        self.properties = PropertyTable(on_error)
        self.tabs.addTab(scroll, "Devices")
        self.tabs.addTab(self.properties, "Properties")
        self._controls_layout = QVBoxLayout(self.controls)
        self._controls_layout.setContentsMargins(4, 4, 4, 4)
        self._build_camera()
        self._build_stage()
        self.groups_box = QGroupBox("Config groups")
        self.groups_form = QFormLayout(self.groups_box)
        self.lasers_box = QGroupBox("Laser lines")
        self.lasers_grid = QGridLayout(self.lasers_box)
        for box in (self.groups_box, self.camera_box, self.lasers_box, self.stage_box):
            self._controls_layout.addWidget(box)
        self._controls_layout.addStretch(1)
        guard_wheel(self.controls)  # the wheel scrolls the panel

    # --- building --------------------------------------------------------------------
    def _build_camera(self) -> None:
        self.camera_box = QGroupBox("Camera")
        form = QFormLayout(self.camera_box)
        self.camera_label = QLabel("–")
        self.exposure = _spin(0.0, 100000.0, 10.0, 3)
        self.exposure.setSuffix(" ms")
        self.exposure.valueChanged.connect(self._set_exposure)
        self.binning = QComboBox()
        self.binning.currentTextChanged.connect(self._set_binning)
        self.trigger = QComboBox()
        self.trigger.currentTextChanged.connect(self._set_trigger)
        self.roi_fields = [QSpinBox() for _ in range(4)]
        roi_row = QGridLayout()
        for i, (name, box) in enumerate(zip("xywh", self.roi_fields, strict=True)):
            box.setRange(0, 65535)
            box.setToolTip(name)
            box.setPrefix(f"{name} ")
            roi_row.addWidget(box, i // 2, i % 2)
        self.roi_apply = QPushButton("Set ROI")
        self.roi_apply.clicked.connect(self._set_roi)
        self.roi_full = QPushButton("Full frame")
        self.roi_full.clicked.connect(self._clear_roi)
        roi_buttons = QHBoxLayout()
        roi_buttons.addWidget(self.roi_apply)
        roi_buttons.addWidget(self.roi_full)
        form.addRow("Device", self.camera_label)
        form.addRow("Exposure", self.exposure)
        form.addRow("Binning", self.binning)
        form.addRow("Trigger", self.trigger)
        self.buffer_label = QLabel("–")
        self.buffer_label.setToolTip(
            "The camera's circular buffer in RAM (the rig file's circular_buffer_mb)"
        )
        form.addRow("Buffer", self.buffer_label)
        form.addRow("ROI", roi_row)
        form.addRow("", roi_buttons)

    def _build_stage(self) -> None:
        self.stage_box = QGroupBox("Stage")
        grid = QGridLayout(self.stage_box)
        self.z_label = QLabel("Z –")
        self.z_target = _spin(-100000.0, 100000.0, 0.0)
        self.z_target.setSuffix(" µm")
        z_go = QPushButton("Go")
        z_go.setFixedWidth(40)
        z_go.clicked.connect(self._move_z)
        self.z_step = _spin(0.01, 10000.0, 1.0)
        self.z_step.setSuffix(" µm")
        z_down, z_up = QPushButton("−"), QPushButton("+")
        for b in (z_down, z_up):
            b.setFixedWidth(30)
            b.setToolTip("jog Z by one step")
        z_down.clicked.connect(lambda: self._jog_z(-1))
        z_up.clicked.connect(lambda: self._jog_z(+1))
        self.xy_label = QLabel("XY –")
        self.xy_step = _spin(0.01, 100000.0, 10.0)
        self.xy_step.setSuffix(" µm")
        jogs = QGridLayout()
        for text, dx, dy, r, c in (
            ("↑", 0, -1, 0, 1),
            ("←", -1, 0, 1, 0),
            ("→", 1, 0, 1, 2),
            ("↓", 0, 1, 2, 1),
        ):
            button = QPushButton(text)
            button.setFixedWidth(30)
            button.setToolTip(f"jog XY by one step ({text})")
            button.clicked.connect(lambda _=False, dx=dx, dy=dy: self._jog_xy(dx, dy))
            jogs.addWidget(button, r, c)
        self.z_buttons = (z_go, z_down, z_up)
        grid.addWidget(self.z_label, 0, 0)
        grid.addWidget(self.z_target, 0, 1)
        grid.addWidget(z_go, 0, 2)
        grid.addWidget(QLabel("step"), 1, 0)
        grid.addWidget(self.z_step, 1, 1)
        z_jog = QHBoxLayout()
        z_jog.addWidget(z_down)
        z_jog.addWidget(z_up)
        grid.addLayout(z_jog, 1, 2)
        grid.addWidget(self.xy_label, 2, 0, 1, 3)
        grid.addWidget(QLabel("step"), 3, 0)
        grid.addWidget(self.xy_step, 3, 1)
        grid.addLayout(jogs, 3, 2)

    # --- core -----------------------------------------------------------------------
    def set_core(self, core: CMMCorePlus | None) -> None:
        """Rebuild the controls for a (new) core."""
        self.core = core
        self._rebuild_groups()
        self._rebuild_lasers()
        guard_wheel(self.controls)  # the new config group and laser fields too
        self.properties.set_core(core)
        self.remember_lasers()
        self.refresh()

    def _rebuild_groups(self) -> None:
        while self.groups_form.rowCount():
            self.groups_form.removeRow(0)
        self.group_boxes.clear()
        core = self.core
        groups = list(core.getAvailableConfigGroups()) if core else []
        for group in groups:
            combo = QComboBox()
            combo.addItems(list(core.getAvailableConfigs(group)))  # type: ignore[union-attr]
            combo.activated.connect(
                lambda _i, g=group, c=combo: self._set_config(g, c.currentText())
            )
            self.groups_form.addRow(group, combo)
            self.group_boxes[group] = combo
        if not groups:
            self.groups_form.addRow(QLabel("no config groups"))

    def _rebuild_lasers(self) -> None:
        while self.lasers_grid.count():
            item = self.lasers_grid.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()  # type: ignore[union-attr]
        self.laser_controls.clear()
        core = self.core
        row = 0
        for device in core.getLoadedDevices() if core else ():
            props = set(core.getDevicePropertyNames(device))  # type: ignore[union-attr]
            for prop in sorted(props):
                m = LASER_RE.match(prop)
                if not m:
                    continue
                check = QCheckBox(f"{m.group(1)} nm")
                check.toggled.connect(
                    lambda on, d=device, p=prop: self._set_laser(d, p, on)
                )
                power_prop = f"{prop} Power %"
                power = None
                if power_prop in props:
                    power = _spin(0.0, 100.0, 0.0, 1)
                    power.setSuffix(" %")
                    power.valueChanged.connect(
                        lambda v, d=device, p=power_prop: self._set_prop(d, p, v)
                    )
                self.lasers_grid.addWidget(check, row, 0)
                if power is not None:
                    self.lasers_grid.addWidget(power, row, 1)
                self.laser_controls[prop] = (device, check, power)
                row += 1
        if not row:
            self.lasers_grid.addWidget(QLabel("no laser lines found"), 0, 0)

    def refresh(self) -> None:
        """Show the devices' current values (no change is sent while doing so)."""
        core = self.core
        self._refreshing = True
        try:
            self.setEnabled(core is not None)
            if core is None:
                return
            for group, combo in self.group_boxes.items():
                current = core.getCurrentConfig(group)  # '' when none matches
                combo.setCurrentIndex(combo.findText(current) if current else -1)
                chosen = self.chosen.get(group)
                combo.setPlaceholderText(self._group_placeholder(core, group, chosen))
                combo.setToolTip(
                    "A run ends with the lasers off; Live and Start switch the "
                    "chosen preset back on."
                    if chosen and current != chosen
                    else ""
                )
            self._refresh_camera(core)
            self._refresh_stage(core)
            for prop, (device, check, power) in self.laser_controls.items():
                on_now = core.getProperty(device, prop) == "On"
                chosen = self.chosen_lasers.get(prop, on_now)
                check.setChecked(chosen)
                nm = LASER_RE.match(prop).group(1)  # type: ignore[union-attr]
                check.setText(
                    f"{nm} nm (off after the run)"
                    if chosen and not on_now
                    else f"{nm} nm"
                )
                check.setToolTip(
                    "A run ends with the lasers off; Snap, Live and Start switch "
                    "the lasers you ticked back on."
                    if chosen != on_now
                    else ""
                )
                if power is not None:
                    power.setValue(float(core.getProperty(device, f"{prop} Power %")))
            self.properties.refresh()
        except Exception as exc:  # a device that fails to answer must not kill the UI
            self._on_error("Reading the devices failed", str(exc))
        finally:
            self._refreshing = False

    def _group_placeholder(
        self, core: CMMCorePlus, group: str, chosen: str | None
    ) -> str:
        """What the group's box says when no preset matches the devices now."""
        if not chosen:
            return "none set"
        lit = [
            prop
            for prop, (device, _check, _power) in self.laser_controls.items()
            if core.getProperty(device, prop) == "On"
        ]
        # lasers on but not as the preset sets them: the operator changed them
        return f"{chosen} + lasers changed" if lit else f"{chosen} (off after the run)"

    def _refresh_camera(self, core: CMMCorePlus) -> None:
        camera = core.getCameraDevice()
        self.camera_box.setEnabled(bool(camera))
        self.camera_label.setText(camera or "none")
        try:
            mb = core.getCircularBufferMemoryFootprint()
            frame = (
                core.getImageWidth() * core.getImageHeight() * core.getBytesPerPixel()
            )
            frames = f", {mb * 2**20 // frame} frames" if camera and frame else ""
            self.buffer_label.setText(f"{mb} MB{frames}")
        except Exception:
            self.buffer_label.setText("–")
        if not camera:
            return
        self.exposure.setValue(core.getExposure())
        self._fill_combo(self.binning, core, camera, "Binning")
        names = (self.trigger_property, *TRIGGER_PROPERTIES)  # the rig's first
        trigger = next((p for p in names if p and core.hasProperty(camera, p)), None)
        self._trigger_prop = trigger
        if trigger:
            self._fill_combo(self.trigger, core, camera, trigger)
        else:
            self.trigger.clear()
            self.trigger.setEnabled(False)
        for box, value in zip(self.roi_fields, core.getROI(), strict=True):
            box.setValue(int(value))

    @staticmethod
    def _fill_combo(
        combo: QComboBox, core: CMMCorePlus, device: str, prop: str
    ) -> None:
        if not core.hasProperty(device, prop):
            combo.clear()
            combo.setEnabled(False)
            return
        value = str(core.getProperty(device, prop))
        allowed = [str(v) for v in core.getAllowedPropertyValues(device, prop)]
        allowed = allowed or [value]
        if [combo.itemText(i) for i in range(combo.count())] != allowed:
            combo.clear()
            combo.addItems(allowed)
        combo.setCurrentText(value)
        combo.setEnabled(not core.isPropertyReadOnly(device, prop) and len(allowed) > 1)

    def _refresh_stage(self, core: CMMCorePlus) -> None:
        has_z, has_xy = bool(core.getFocusDevice()), bool(core.getXYStageDevice())
        for w in (self.z_target, self.z_step, *self.z_buttons):
            w.setEnabled(has_z)
        self.xy_step.setEnabled(has_xy)
        if has_z:
            z = core.getPosition()
            self.z_label.setText(f"Z {z:.2f} µm")
            self.z_target.setValue(z)
        else:
            self.z_label.setText("Z – (no focus device)")
        if has_xy:
            x, y = core.getXYPosition()
            self.xy_label.setText(f"XY {x:.2f}, {y:.2f} µm")
        else:
            self.xy_label.setText("XY – (no XY stage)")

    def reapply_preset(self, group: str) -> None:
        """Set `group` to the preset the operator chose, if it is not set now.

        A run ends with the rig made safe (lasers off), which un-sets a channel
        preset; Live and Start put the operator's choice back when they begin.
        """
        core, preset = self.core, self.chosen.get(group)
        if core is None or not preset or core.getCurrentConfig(group) == preset:
            return
        self._apply(
            f"Setting {group} to {preset} failed",
            lambda: core.setConfig(group, preset),
        )

    def reapply_choices(self, group: str = "") -> None:
        """Before Snap, Live or Start: the light the operator chose, back on.

        The channel preset of `group` first, then every laser as it was ticked
        (what was lit in Live is lit in the acquisition that follows).
        """
        if group:
            self.reapply_preset(group)
        core = self.core
        if core is None:
            return
        for prop, on in self.chosen_lasers.items():
            row = self.laser_controls.get(prop)
            if row is None:
                continue
            device, value = row[0], "On" if on else "Off"
            if core.getProperty(device, prop) != value:
                self._apply(
                    f"Switching {device}.{prop} {value.lower()} failed",
                    lambda d=device, p=prop, v=value: core.setProperty(d, p, v),
                )

    def laser_choices(self) -> dict[tuple[str, str], bool]:
        """(device, property) -> on, for every laser the operator chose."""
        return {
            (self.laser_controls[prop][0], prop): on
            for prop, on in self.chosen_lasers.items()
            if prop in self.laser_controls
        }

    def remember_lasers(self) -> None:
        """Take the lasers as they are now as the operator's choice (a rig or a
        preset was just loaded)."""
        core = self.core
        self.chosen_lasers = {}
        if core is None:
            return
        for prop, (device, _check, _power) in self.laser_controls.items():
            try:
                self.chosen_lasers[prop] = core.getProperty(device, prop) == "On"
            except Exception:  # a device that does not answer: no choice known
                continue

    def set_run_state(self, state: str) -> None:
        """During a run only stage and lasers stay editable (and only in Live)."""
        idle = state in ("idle", "busy")
        live = state == "live"
        self.camera_box.setEnabled((idle or live) and self.core is not None)
        self.groups_box.setEnabled(idle)
        self.properties.setEnabled(idle)
        self.lasers_box.setEnabled(idle or live)
        self.stage_box.setEnabled(idle or live)
        tip = (
            ""
            if idle
            else "Live restarts with the new setting"
            if live
            else "Stop the run to change camera settings"
        )
        self.camera_box.setToolTip(tip)

    # --- changes ---------------------------------------------------------------------
    def _apply(
        self, what: str, action: Callable[[], object], camera: bool = False
    ) -> None:
        """Run one device change; report a refusal and show the real values.

        A camera setting that took effect emits camera_changed (Live restarts).
        """
        if self._refreshing or self.core is None:
            return
        try:
            action()
        except Exception as exc:
            self._on_error(what, str(exc) or type(exc).__name__)
        else:
            if camera:
                self.camera_changed.emit()
        self.refresh()

    def _set_laser(self, device: str, prop: str, on: bool) -> None:
        if self._refreshing or self.core is None:
            return
        self.chosen_lasers[prop] = on
        self._set_prop(device, prop, "On" if on else "Off")

    def _set_config(self, group: str, preset: str) -> None:
        self.chosen[group] = preset
        if self.core is not None:  # the preset's lasers become the choice
            try:
                for _device, prop, value in self.core.getConfigData(group, preset):
                    if prop in self.laser_controls:
                        self.chosen_lasers[prop] = value == "On"
            except Exception:
                pass
        self._apply(
            f"Setting {group} to {preset} failed",
            lambda: self.core.setConfig(group, preset),  # type: ignore[union-attr]
        )

    def _set_prop(
        self, device: str, prop: str, value: object, camera: bool = False
    ) -> None:
        self._apply(
            f"Setting {device}.{prop} failed",
            lambda: self.core.setProperty(device, prop, value),  # type: ignore[union-attr]
            camera,
        )

    def _set_exposure(self, value: float) -> None:
        self._apply(
            "Setting the exposure failed",
            lambda: self.core.setExposure(value),  # type: ignore[union-attr]
            camera=True,
        )

    def _set_binning(self, value: str) -> None:
        if value and self.core is not None:
            camera = self.core.getCameraDevice()
            self._set_prop(camera, "Binning", value, camera=True)

    def _set_trigger(self, value: str) -> None:
        if value and self.core is not None and self._trigger_prop:
            camera = self.core.getCameraDevice()
            self._set_prop(camera, self._trigger_prop, value, camera=True)

    def _set_roi(self) -> None:
        x, y, w, h = (box.value() for box in self.roi_fields)
        self._apply(
            "Setting the ROI failed",
            lambda: self.core.setROI(x, y, w, h),  # type: ignore[union-attr]
            camera=True,
        )

    def _clear_roi(self) -> None:
        self._apply(
            "Clearing the ROI failed",
            lambda: self.core.clearROI(),  # type: ignore[union-attr]
            camera=True,
        )

    def _move_z(self) -> None:
        z = self.z_target.value()
        self._apply("Moving Z failed", lambda: self._wait(self.core.setPosition, z))

    def _jog_z(self, sign: int) -> None:
        dz = sign * self.z_step.value()
        self._apply(
            "Jogging Z failed", lambda: self._wait(self.core.setRelativePosition, dz)
        )

    def _jog_xy(self, dx: int, dy: int) -> None:
        step = self.xy_step.value()
        self._apply(
            "Jogging XY failed",
            lambda: self._wait(self.core.setRelativeXYPosition, dx * step, dy * step),
        )

    def _wait(self, move: Callable[..., object], *args: float) -> None:
        move(*args)
        self.core.waitForSystem()  # type: ignore[union-attr]
