"""From a preset to a run: the rig it names, its device settings, the
RunRequest (events, program, dataset name), and back from a dataset.

The presets package holds the model and knows nothing of the engine; this
module is where a preset meets the rig and the run controller.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from useq import MDAEvent, MDASequence

from mmapp import __version__
from mmapp.engine.controller import RunRequest
from mmapp.engine.events import stream_event
from mmapp.presets import (
    MDAAcquisition,
    Preset,
    PresetError,
    apply_device_settings,
    load_preset,
    preset_from_data,
    save_preset,
)
from mmapp.presets.apply import Step
from mmapp.presets.model import (
    ConfigRig,
    PropertySetting,
    SimulatedRig,
    StreamAcquisition,
)
from mmapp.presets.naming import render_name
from mmapp.resources import default_rig_file
from mmapp.sim.rig import Rig, load_rig

PRESET_FILE_NAME = "preset.mmpreset"  # the copy saved inside each dataset folder
MIB = 1024 * 1024


class DatasetExistsError(FileExistsError):
    """storage.if_exists is "error" and a dataset of that name is already there."""


class RigMismatchError(ValueError):
    """The preset names another rig than the one loaded (load it: open_rig)."""


# simulated camera setting -> the camera property that sets it on a loaded rig
CAMERA_PROPERTIES = {
    "width": "SensorWidth",
    "height": "SensorHeight",
    "bit_depth": "BitDepth",
    "exposure_ms": "Exposure",
    "trigger_mode": "TriggerMode",
}


def events_for(
    acquisition: StreamAcquisition | MDAAcquisition,
) -> MDASequence | Sequence[MDAEvent]:
    """What the engine runs: the MDA sequence, or the one streaming event."""
    if isinstance(acquisition, MDAAcquisition):
        return acquisition.sequence
    return [
        stream_event(
            max_frames=acquisition.frames,
            max_duration_s=acquisition.duration_s,
            exposure_ms=acquisition.exposure_ms,
        )
    ]


def existing_datasets(directory: Path, name: str) -> list[Path]:
    """Datasets ndstorage counts as `name` in `directory` (`name_1`, `name_2`...)."""
    pattern = re.compile(re.escape(name) + r"_(\d+).*", re.IGNORECASE)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(directory / e for e in entries if pattern.match(e))


def build_run_request(
    preset: Preset,
    *,
    when: datetime | None = None,
    settings: Mapping[str, Any] | None = None,
    rig_name: str = "rig",
) -> RunRequest:
    """The RunRequest for a preset: events, waveform program, save directory,
    dataset name from the template, and the preset itself in the settings
    (which go into the dataset's summary metadata under "mmapp").

    Raises DatasetExistsError when storage.if_exists is "error" and the name
    is taken (nothing is created).
    """
    when = when or datetime.now()
    out_dir = Path(preset.storage.directory).expanduser()
    name = render_name(
        preset.storage.name_template, name=preset.name, when=when, rig=rig_name
    )
    if preset.storage.if_exists == "error":
        taken = existing_datasets(out_dir, name)
        if taken:
            raise DatasetExistsError(
                f"storage.if_exists is 'error' and a dataset named {name!r} is "
                f"already in {out_dir} ({taken[0].name})"
            )
    return RunRequest(
        events=events_for(preset.acquisition),
        out_dir=out_dir,
        name=name,
        settings={
            **(settings or {}),
            "started": when.isoformat(timespec="seconds"),
            "mmapp_version": __version__,
            "preset": preset.model_dump(mode="json"),
        },
        queue_bytes=preset.storage.queue_mb * MIB,
        first_frame_timeout_s=preset.acquisition.first_frame_timeout_s,
        program=preset.program,
    )


def open_rig(preset: Preset) -> Rig:
    """Load the rig the preset names and apply its device settings.

    Raises RigError if the rig cannot be loaded and ApplyError if the core
    refuses a device setting (the rig is closed again: nothing is left half set).
    """
    if isinstance(preset.rig, ConfigRig):
        rig = load_rig(rig_path(preset))
    else:
        rig = load_rig(rig_path(preset), **preset.rig.camera.overrides())
    try:
        apply_device_settings(rig.core, preset.devices)
    except BaseException:
        rig.close()
        raise
    return rig


def rig_path(preset: Preset) -> Path:
    """The file the preset's rig is loaded from."""
    if isinstance(preset.rig, ConfigRig):
        return Path(preset.rig.path).expanduser()
    return Path(preset.rig.file).expanduser() if preset.rig.file else default_rig_file()


def same_rig(preset: Preset, rig: Rig) -> bool:
    """Whether `rig` was loaded from the file the preset names."""
    if not rig.source:
        return False
    return Path(rig.source).resolve() == rig_path(preset).resolve()


def apply_preset_to_rig(preset: Preset, rig: Rig) -> None:
    """Apply the preset's simulated-camera and device settings to a loaded rig,
    all or nothing (what File > Open does to the rig that is already up).

    Raises RigMismatchError if the preset names another rig (nothing changed:
    load that one with open_rig), ApplyError if the core refuses a setting
    (nothing changed either).
    """
    if not same_rig(preset, rig):
        raise RigMismatchError(
            f"the preset runs on {rig_path(preset)}; the loaded rig is "
            f"{rig.source or rig.name}"
        )
    first: list[Step] = []
    if isinstance(preset.rig, SimulatedRig) and rig.spec is not None:
        label = rig.spec.camera.label
        for key, value in preset.rig.camera.overrides().items():
            setting = PropertySetting(
                device=label, property=CAMERA_PROPERTIES[key], value=value
            )
            first.append((f"rig.camera.{key}", setting))
    apply_device_settings(rig.core, preset.devices, first=first)


def save_preset_with_dataset(preset: Preset, dataset: Path) -> Path:
    """Write the preset into the dataset folder (next to the NDTiff files)."""
    return save_preset(preset, Path(dataset) / PRESET_FILE_NAME)


def preset_from_dataset(dataset: str | Path) -> Preset:
    """The preset a dataset was acquired with (summary metadata, else the
    `preset.mmpreset` file in its folder), migrated and validated.

    Raises PresetError if the folder is not a dataset or holds no preset.
    """
    path = Path(dataset)
    if not (path / "NDTiff.index").is_file():
        raise PresetError.one(str(path), "<dataset>", "not an NDTiff dataset")
    summary = _summary_metadata(path)
    raw = (summary.get("mmapp") or {}).get("preset")
    if raw is not None:
        return preset_from_data(raw, f"{path} (summary metadata mmapp.preset)")
    copy = path / PRESET_FILE_NAME
    if copy.is_file():
        return load_preset(copy)
    raise PresetError.one(
        str(path), "mmapp.preset", "the dataset holds no preset (acquired without one)"
    )


def _summary_metadata(path: Path) -> dict[str, Any]:
    from ndstorage import Dataset

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ds = Dataset(str(path))
    except Exception as exc:
        reason = f"cannot be read: {type(exc).__name__}: {exc}"
        raise PresetError.one(str(path), "<dataset>", reason) from None
    try:
        summary = ds.summary_metadata
        return dict(summary) if isinstance(summary, dict) else {}
    finally:
        ds.close()
