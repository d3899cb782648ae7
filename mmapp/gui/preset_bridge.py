"""Between the main window and experiment presets.

`show_preset` puts a loaded preset's acquisition, storage, display and program
into the window's panels; `window_preset` reads the window back into a
validated Preset (File > Save, and the copy every dataset keeps). What a
preset holds that the window does not edit is kept as loaded
(:class:`PresetExtras`), so Open then Save changes nothing the operator did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymmcore_plus import CMMCorePlus
from PyQt6.QtCore import Qt
from useq import MDASequence

from mmapp.daq.program import WaveformProgram
from mmapp.engine.preset_run import CAMERA_PROPERTIES
from mmapp.gui.acquisition_panel import (
    MODE_FRAMES,
    MODE_LOOP,
    MODE_MDA,
    AcquisitionPanel,
)
from mmapp.presets import MDAAcquisition, Preset, StreamAcquisition, preset_from_data
from mmapp.presets.model import SCHEMA_VERSION, PropertySetting
from mmapp.processing import ProcessingChain
from mmapp.resources import default_rig_file
from mmapp.rig import Rig

if TYPE_CHECKING:
    from mmapp.gui.main_window import MainWindow

UNTITLED = "untitled"


@dataclass(frozen=True)
class PresetExtras:
    """What a preset holds that the window has no field for (kept as loaded)."""

    description: str = ""
    properties: tuple[PropertySetting, ...] = ()
    first_frame_timeout_s: float = 20.0
    stream_exposure_ms: float | None = None
    if_exists: str = "increment"
    queue_mb: int = 512
    processing: ProcessingChain = field(default_factory=ProcessingChain)
    program: WaveformProgram | None = None  # kept for a rig without a DAQ card

    @classmethod
    def of(cls, preset: Preset) -> PresetExtras:
        """The extras of a loaded preset."""
        acq = preset.acquisition
        return cls(
            description=preset.description,
            properties=tuple(preset.devices.properties),
            first_frame_timeout_s=acq.first_frame_timeout_s,
            stream_exposure_ms=getattr(acq, "exposure_ms", None),
            if_exists=preset.storage.if_exists,
            queue_mb=preset.storage.queue_mb,
            processing=preset.processing,
            program=preset.program,
        )


# --- preset -> window ---------------------------------------------------------------
def show_acquisition(
    panel: AcquisitionPanel, acq: StreamAcquisition | MDAAcquisition
) -> None:
    """Fill the panel's "what to acquire" from a preset's acquisition."""
    with panel.showing_preset():
        panel.set_custom_sequence(None)
        if isinstance(acq, StreamAcquisition):
            if acq.frames is None:
                panel.mode.setCurrentIndex(MODE_LOOP)
                panel.set_loop_duration(acq.duration_s)
            else:
                panel.mode.setCurrentIndex(MODE_FRAMES)
                panel.frames.setValue(acq.frames)
            return
        panel.mode.setCurrentIndex(MODE_MDA)
        _show_mda_fields(panel, acq.sequence)
        shown, _ = panel.fields_sequence()
        if shown != acq.sequence:  # more than the fields can say: run it as it is
            panel.set_custom_sequence(acq.sequence, sum(1 for _ in acq.sequence))


def _show_mda_fields(panel: AcquisitionPanel, sequence: MDASequence) -> None:
    plan = sequence.time_plan
    loops = getattr(plan, "loops", None)
    interval = getattr(plan, "interval", None)
    panel.timepoints.setValue(int(loops) if loops else 1)
    seconds = interval.total_seconds() if interval is not None else 0.0
    panel.interval.setValue(seconds)
    z = sequence.z_plan
    has_range = z is not None and hasattr(z, "range") and hasattr(z, "step")
    panel.z_enabled.setChecked(has_range)
    if has_range:
        panel.z_range.setValue(float(z.range))  # type: ignore[union-attr]
        panel.z_step.setValue(float(z.step))  # type: ignore[union-attr]
    wanted = {c.config for c in sequence.channels}
    for i in range(panel.channels.count()):
        item = panel.channels.item(i)
        if item is not None:
            checked = item.text() in wanted
            item.setCheckState(
                Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            )


def check_showable(panel: AcquisitionPanel, preset: Preset) -> None:
    """Raise ValueError (naming the field) for a value the panel cannot hold."""
    acq = preset.acquisition
    if isinstance(acq, StreamAcquisition) and acq.frames is not None:
        most = panel.frames.maximum()
        if acq.frames > most:
            raise ValueError(
                f"acquisition.frames: {acq.frames} is more than the window can "
                f"run (at most {most}); run it with `mmapp acquire`"
            )


def show_preset(window: MainWindow, preset: Preset) -> None:
    """Acquisition, storage, display and program of `preset` into the window
    (rig and device settings are applied before, all or nothing)."""
    panel = window.acquisition
    panel.preset_name = preset.name
    show_acquisition(panel, preset.acquisition)
    panel.save_dir.setText(preset.storage.directory)
    panel.name_template.setText(preset.storage.name_template)
    d = preset.display
    window.live_view.set_display(
        d.colormap, d.autoscale, d.contrast_limits, d.refresh_hz
    )
    for group, config in preset.devices.config_groups.items():
        window.device_panel.chosen[group] = config
    window.device_panel.remember_lasers()  # the preset's lasers, as just set
    if preset.program is not None:
        window.set_program(preset.program)
    panel.use_daq.setChecked(preset.program is not None and panel.use_daq.isEnabled())
    window.preset_extras = PresetExtras.of(preset)
    window.processing_panel.show_chain(preset.processing)
    if preset.processing.active:  # the chain in view (a tab beside Devices)
        window.docks["processing"].raise_()
    exposure = getattr(preset.acquisition, "exposure_ms", None)
    if exposure is not None:  # the camera's exposure: the device panel shows it
        try:
            window.rig.core.setExposure(exposure)  # type: ignore[union-attr]
        except Exception as exc:
            window.report_error(
                "Exposure not set", f"acquisition.exposure_ms {exposure}: {exc}"
            )
        window.device_panel.refresh()
    panel.refresh_preview()


# --- window -> preset ---------------------------------------------------------------
def _number(text: str, like: object) -> object:
    """A property's text as the type of `like` (what the preset held)."""
    if isinstance(like, bool | str):
        return text
    try:
        return int(text) if isinstance(like, int) else float(text)
    except ValueError:
        return text


def rig_data(rig: Rig) -> dict[str, Any]:
    """The preset's `rig` section for the loaded rig (camera as it is set now)."""
    if rig.spec is None:
        return {"kind": "mm_config", "path": rig.source}
    source = Path(rig.source) if rig.source else default_rig_file()
    default = source.resolve() == default_rig_file().resolve()
    camera: dict[str, Any] = {}
    core, label = rig.core, rig.spec.camera.label
    for key, prop in CAMERA_PROPERTIES.items():
        if core.hasProperty(label, prop):
            text = core.getProperty(label, prop)
            value: Any = text
            if key in ("width", "height", "bit_depth"):
                value = int(float(text))
            elif key == "exposure_ms":
                value = float(text)
            camera[key] = value
    return {
        "kind": "simulated",
        "file": None if default else str(source),
        "camera": camera,
    }


def devices_data(
    core: CMMCorePlus,
    chosen: dict[str, str],
    extras: PresetExtras,
    lasers: dict[tuple[str, str], bool] | None = None,
) -> dict[str, Any]:
    """Config groups as chosen now; the preset's properties at today's values;
    then the lasers as the operator ticked them (applied after the groups, so
    a re-run lights the sample as this one did)."""
    groups: dict[str, str] = {}
    for group in core.getAvailableConfigGroups():
        config = chosen.get(group) or core.getCurrentConfig(group)
        if config:
            groups[group] = config
    properties = []
    for p in extras.properties:
        value: object = p.value
        if core.hasProperty(p.device, p.property):
            value = _number(core.getProperty(p.device, p.property), p.value)
        properties.append({"device": p.device, "property": p.property, "value": value})
    listed = {(p["device"], p["property"]) for p in properties}
    implied = _set_by_groups(core, groups)
    for (device, prop), on in (lasers or {}).items():
        value = "On" if on else "Off"
        # only what the groups do not already set (a laser is off unless set)
        if (device, prop) not in listed and implied.get((device, prop), "Off") != value:
            properties.append({"device": device, "property": prop, "value": value})
    return {"config_groups": groups, "properties": properties}


def _set_by_groups(core: CMMCorePlus, groups: dict[str, str]) -> dict[tuple, str]:
    """(device, property) -> value, as the chosen config presets set them."""
    implied: dict[tuple, str] = {}
    for group, config in groups.items():
        try:
            for device, prop, value in core.getConfigData(group, config):
                implied[(device, prop)] = str(value)
        except Exception:  # a preset the core does not know: nothing implied
            continue
    return implied


def acquisition_data(
    panel: AcquisitionPanel, extras: PresetExtras, core: CMMCorePlus
) -> dict[str, Any]:
    """The preset's `acquisition` section from the panel."""
    timeout = extras.first_frame_timeout_s
    mode = panel.mode.currentIndex()
    if mode == MODE_MDA:
        sequence = panel.custom_sequence or panel.fields_sequence()[0]
        return {
            "mode": "mda",
            "sequence": sequence.model_dump(mode="json", exclude_defaults=True),
            "first_frame_timeout_s": timeout,
        }
    frames = panel.frames.value() if mode == MODE_FRAMES else None
    duration = panel.loop_duration() if mode == MODE_LOOP else None
    exposure = None
    if extras.stream_exposure_ms is not None:  # the preset set it: as it is now
        exposure = core.getExposure()
    return {
        "mode": "stream",
        "frames": frames,
        "duration_s": duration,
        "exposure_ms": exposure,
        "first_frame_timeout_s": timeout,
    }


def _program_data(window: MainWindow, extras: PresetExtras) -> dict[str, Any] | None:
    rig = window.rig
    if rig is None or rig.daq is None:  # kept as loaded: only untick drops it
        return extras.program.model_dump(mode="json") if extras.program else None
    if not window.acquisition.use_daq.isChecked():
        return None
    return window.program.model_dump(mode="json")


def window_preset(window: MainWindow, name: str | None = None) -> Preset:
    """The window's state as a validated Preset (PresetError names what is wrong)."""
    rig = window.rig
    if rig is None:
        raise ValueError("no rig is loaded")
    extras = window.preset_extras
    panel = window.acquisition
    data = {
        "schema_version": SCHEMA_VERSION,
        "name": name or window.preset_name or UNTITLED,
        "description": extras.description,
        "rig": rig_data(rig),
        "devices": devices_data(
            rig.core,
            window.device_panel.chosen,
            extras,
            window.device_panel.laser_choices(),
        ),
        "acquisition": acquisition_data(panel, extras, rig.core),
        "program": _program_data(window, extras),
        "storage": {
            "directory": panel.save_dir.text().strip() or "~/mmapp-data",
            "name_template": panel.name_template.text(),
            "if_exists": extras.if_exists,
            "queue_mb": extras.queue_mb,
        },
        "display": window.live_view.display_settings(),
        "processing": extras.processing.model_dump(mode="json"),
    }
    return preset_from_data(data, "the window's settings")
