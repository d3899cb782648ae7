"""From a preset to a run: the rig it names, its device settings, the
RunRequest (events, program, dataset name), and back from a dataset.

The presets package holds the model and knows nothing of the engine; this
module is where a preset meets the rig and the run controller.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from useq import MDAEvent, MDASequence

from mmapp import __version__
from mmapp.daq.render import WaveformError, render
from mmapp.daq.tasks import check_program_on_device, check_topology, frames_for
from mmapp.data.datasets import existing_datasets, open_dataset_quietly
from mmapp.engine.capacity import capacity_report
from mmapp.engine.controller import RunRequest
from mmapp.engine.daq_link import DaqLink, DaqProgramError
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
from mmapp.processing import build_stages
from mmapp.processing.pipeline import chain_context
from mmapp.resources import default_rig_file
from mmapp.rig import Rig, load_rig
from mmapp.rig.triggers import CameraTriggerError, trigger_value

PRESET_FILE_NAME = "preset.mmpreset"  # the copy saved inside each dataset folder
MIB = 1024 * 1024


class DatasetExistsError(FileExistsError):
    """storage.if_exists is "error" and a dataset of that name is already there."""


class RunRefusedError(ValueError):
    """What `mmapp acquire` refuses before anything starts (as `mmapp preset
    validate` does): a save directory that cannot be written, an exposure the
    camera does not take, a waveform program the rig cannot play."""


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


def run_settings(
    command: str,
    preset: Preset | None,
    *,
    preset_file: str | Path | None = None,
    preset_name: str | None = None,
    rig: str | None = None,
    details: Mapping[str, Any] | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """The run settings a dataset records (summary metadata "mmapp"), built the
    same way for `mmapp acquire` and the window: the command, the preset file
    and name, the command's own details (mode, frames, ...), the rig (`rig`:
    the loaded rig's file or name; without it the rig the preset names, with
    its camera settings), when it started, the mmapp version and the whole
    preset (None when the run has none)."""
    settings: dict[str, Any] = {
        "command": command,
        "preset_file": str(preset_file) if preset_file is not None else None,
        "preset_name": preset_name or (preset.name if preset is not None else None),
        **(details or {}),
    }
    if rig is not None:
        settings["rig"] = rig
    elif preset is not None:
        settings.update(_rig_of(preset))
    return {**settings, **_provenance(preset, when or datetime.now())}


def _rig_of(preset: Preset) -> dict[str, Any]:
    """The rig a preset runs on, as the run settings record it."""
    if isinstance(preset.rig, ConfigRig):
        return {"rig": preset.rig.path, "camera": {}}
    rig = preset.rig.file or str(default_rig_file())
    return {"rig": rig, "camera": preset.rig.camera.overrides()}


def _provenance(preset: Preset | None, when: datetime) -> dict[str, Any]:
    return {
        "started": when.isoformat(timespec="seconds"),
        "mmapp_version": __version__,
        "preset": preset.model_dump(mode="json") if preset is not None else None,
    }


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
    _check_dataset_name(preset, rig_name, when)
    return RunRequest(
        events=events_for(preset.acquisition),
        out_dir=out_dir,
        name=name,
        settings={**(settings or {}), **_provenance(preset, when)},
        queue_bytes=preset.storage.queue_mb * MIB,
        first_frame_timeout_s=preset.acquisition.first_frame_timeout_s,
        program=preset.program,
        processing=preset.processing if preset.processing.active else None,
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


def prepare_run(
    preset: Preset,
    *,
    create_directory: bool = True,
    on_overrun: str = "refuse",
    notes: list[str] | None = None,
) -> Rig:
    """Everything `mmapp acquire` checks before it starts, in one place (so
    `mmapp preset validate` refuses exactly what acquire would): the save
    directory, the rig (loaded, device settings applied), the exposures and the
    waveform program against that rig, the dataset name (if_exists "error").

    Returns the loaded rig (the caller closes it). Raises RunRefusedError,
    RigError (rig file, .cfg), ApplyError (device settings) or
    DatasetExistsError, with nothing left loaded. `create_directory`: make the
    save directory and write a test file in it (acquire); False only checks
    that it could be made (validate: nothing is created, the disk's speed is
    only known if measured before).

    Disk space and data rate (`mmapp.engine.capacity`): a run that would fill
    the disk or outrun it and its buffer is refused (`on_overrun` "refuse") or
    only warned about ("warn"); warnings and notes go to `notes`.
    """
    directory = Path(preset.storage.directory).expanduser()
    check_save_directory(directory, create=False)  # before loading anything
    rig = open_rig(preset)
    try:
        check_run(preset, rig)
        _check_dataset_name(preset, rig.name)
        if create_directory:
            check_save_directory(directory, create=True)
        problems, said = capacity_report(
            preset, rig, directory, measure=create_directory
        )
        if problems and on_overrun == "refuse":
            raise RunRefusedError(
                "; ".join(problems) + " (to start anyway: --overrun warn)"
            )
        if notes is not None:
            notes += [f"warning: {p}" for p in problems] + said
    except BaseException:
        rig.close()
        raise
    return rig


def check_save_directory(directory: Path, *, create: bool) -> None:
    """Raise RunRefusedError if datasets cannot be saved in `directory`.

    `create`: make it (with its parents) and write and remove a temporary file
    in it; otherwise only check that its nearest existing folder is a folder
    that can be written (nothing is created).
    """
    directory = Path(directory).expanduser()
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "it is" if existing == directory else f"{existing} is"
        raise RunRefusedError(
            f"cannot save in {directory}: {what} a file, not a folder"
        )
    if not create:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RunRefusedError(
                f"cannot save in {directory}: {existing} is not writable"
            )
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunRefusedError(
            f"cannot save in {directory}: cannot create it ({reason})"
        ) from None
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".mmapp-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunRefusedError(
            f"cannot save in {directory}: cannot write there ({reason})"
        ) from None


def _check_dataset_name(
    preset: Preset, rig_name: str, when: datetime | None = None
) -> None:
    """storage.if_exists "error" and the name taken: DatasetExistsError."""
    if preset.storage.if_exists != "error":
        return
    out_dir = Path(preset.storage.directory).expanduser()
    name = render_name(
        preset.storage.name_template,
        name=preset.name,
        when=when or datetime.now(),
        rig=rig_name,
    )
    taken = existing_datasets(out_dir, name)
    if taken:
        raise DatasetExistsError(
            f"storage.if_exists is 'error' and a dataset named {name!r} is "
            f"already in {out_dir} ({taken[0].name})"
        )


def check_run(preset: Preset, rig: Rig) -> None:
    """The preset's exposures and waveform program against a loaded rig.

    Raises RunRefusedError naming what the camera or the DAQ would refuse
    (the run would stop there with an error); touches no device.
    """
    problems = [
        *_exposure_problems(preset, rig),
        *_program_problems(preset, rig),
        *_processing_problems(preset, rig),
    ]
    if problems:
        raise RunRefusedError("; ".join(problems))


def _processing_problems(preset: Preset, rig: Rig) -> list[str]:
    """What making the chain's processors for this rig and program refuses
    (deskew without a program, a dark frame that cannot be read...)."""
    if not preset.processing.active:
        return []
    context = chain_context(rig.spec, preset.program)
    try:
        build_stages(preset.processing, context)
    except (ValueError, ImportError, OSError) as exc:
        return [f"processing: {exc}"]
    return []


def _exposures(preset: Preset) -> list[tuple[str, float]]:
    """(field path, ms) of every exposure the run sets on the camera."""
    found: list[tuple[str, float]] = []
    if isinstance(preset.rig, SimulatedRig) and preset.rig.camera.exposure_ms:
        found.append(("rig.camera.exposure_ms", preset.rig.camera.exposure_ms))
    acq = preset.acquisition
    if isinstance(acq, StreamAcquisition) and acq.exposure_ms is not None:
        found.append(("acquisition.exposure_ms", acq.exposure_ms))
    if isinstance(acq, MDAAcquisition):
        for i, channel in enumerate(acq.sequence.channels):
            if channel.exposure is not None:
                path = f"acquisition.sequence.channels[{i}].exposure"
                found.append((path, channel.exposure))
    if preset.program is not None:  # the program sets the exposure window
        ms = preset.program.timing.exposure_s * 1000.0
        found.append(("program.timing.exposure_s", ms))
    return found


def _exposure_problems(preset: Preset, rig: Rig) -> list[str]:
    core = rig.core
    camera = core.getCameraDevice()
    if not camera:
        return [f"the rig {rig.name!r} has no camera (the core's Camera is not set)"]
    if not (
        core.hasProperty(camera, "Exposure")
        and core.hasPropertyLimits(camera, "Exposure")
    ):
        return []
    low = core.getPropertyLowerLimit(camera, "Exposure")
    high = core.getPropertyUpperLimit(camera, "Exposure")
    return [
        f"{path}: {ms:g} ms is outside the exposures the camera {camera!r} takes "
        f"({low:g} to {high:g} ms)"
        for path, ms in _exposures(preset)
        if not low <= ms <= high
    ]


def _program_problems(preset: Preset, rig: Rig) -> list[str]:
    """What the DAQ link and the engine would refuse when the run starts."""
    program = preset.program
    if program is None:
        return []
    if rig.daq is None:
        return [
            f"the preset has a waveform program but the rig {rig.name!r} has no "
            f"DAQ (a 'daq' section in its rig file)"
        ]
    try:
        rendered = render(program)
        check_program_on_device(program, rig.daq.device)
        check_topology(program, rendered)
    except WaveformError as exc:
        return [f"waveform program: {exc}"]
    camera_master = program.topology == "camera_master"
    if camera_master and not rig.exposure_out:
        return [
            "waveform program: topology camera_master: the rig file names no camera "
            "exposure-out terminal (daq.camera_exposure_out)"
        ]
    acq = preset.acquisition
    frames: int | None = None
    try:
        # the engine's own check of the camera's trigger mode (the rig's mapping)
        trigger_value(rig.core, rig.trigger, free_run=camera_master)
        if isinstance(acq, MDAAcquisition):
            frames = _program_mda_frames(acq.sequence, DaqLink(rig.daq, program))
        else:
            frames = acq.frames
        frames_for(program, frames)
    except (DaqProgramError, WaveformError, CameraTriggerError) as exc:
        return [str(exc)]
    return []


def _program_mda_frames(sequence: MDASequence, link: DaqLink) -> int | None:
    """Frames of an MDA that plays a program (raises DaqProgramError if the
    program cannot go with it: z or channels planned, or time points that are
    not one hardware sequence)."""
    link.refuse_conflicting_axes(sequence, ())
    plan = sequence.time_plan
    interval = getattr(plan, "interval", None)
    seconds = getattr(interval, "total_seconds", lambda: interval or 0)()
    if plan is not None and seconds:
        raise DaqProgramError(
            "a DAQ waveform program needs a hardware-sequenced acquisition (a "
            "stream, or time points with interval 0); this MDA waits "
            f"{seconds:g} s between time points"
        )
    if sequence.stage_positions or sequence.grid_plan is not None:
        return None  # one sequence per position: counted per position by the engine
    return plan.num_timepoints() if plan is not None else 1


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
    try:
        ds = open_dataset_quietly(path)
    except Exception as exc:
        reason = f"cannot be read: {type(exc).__name__}: {exc}"
        raise PresetError.one(str(path), "<dataset>", reason) from None
    try:
        summary = ds.summary_metadata
        return dict(summary) if isinstance(summary, dict) else {}
    finally:
        ds.close()
