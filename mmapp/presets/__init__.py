"""Experiment presets: the model, load/save/validate, migration, applying
device settings. Qt-free and engine-free (the GUI and the CLI call this).

For the main window:

- File > Open: `preset = load_preset(path)` (raises PresetError: show
  `str(exc)` or `exc.issues`; nothing changed), then
  `mmapp.engine.preset_run.apply_preset_to_rig(preset, rig)` (raises
  RigMismatchError if the preset names another rig: load it with
  `open_rig(preset)`; ApplyError if the core refuses a setting: nothing
  changed), then take over the rest (acquisition, program, storage,
  display: plain data) and `RecentPresets().add(path)`.
- File > Save / Save As: build the edited preset with
  `preset_from_data(data)` (validates; `model_copy(update=...)` does not),
  then `save_preset(preset, path)` (atomic; PresetError or OSError leave the
  old file intact) and `RecentPresets().add(path)`; new files get
  `PRESET_SUFFIX`.
- Recent: `RecentPresets().paths()` (newest first), `.remove(path)` for one
  that no longer opens.
- Start: `mmapp.engine.preset_run.build_run_request(preset)` gives the
  RunRequest (the preset goes into the dataset's summary metadata);
  `save_preset_with_dataset(preset, result.dataset)` afterwards.
"""

from mmapp.presets.apply import apply_device_settings, check_device_settings
from mmapp.presets.errors import ApplyError, Issue, PresetError
from mmapp.presets.io import (
    RecentPresets,
    config_dir,
    load_preset,
    parse_preset,
    preset_from_data,
    preset_to_json,
    save_preset,
)
from mmapp.presets.model import (
    PRESET_SUFFIX,
    SCHEMA_VERSION,
    ConfigRig,
    MDAAcquisition,
    Preset,
    SimulatedRig,
    StreamAcquisition,
)

__all__ = [
    "PRESET_SUFFIX",
    "SCHEMA_VERSION",
    "ApplyError",
    "ConfigRig",
    "Issue",
    "MDAAcquisition",
    "Preset",
    "PresetError",
    "RecentPresets",
    "SimulatedRig",
    "StreamAcquisition",
    "apply_device_settings",
    "check_device_settings",
    "config_dir",
    "load_preset",
    "parse_preset",
    "preset_from_data",
    "preset_to_json",
    "save_preset",
]
