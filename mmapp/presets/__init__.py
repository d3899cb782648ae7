"""Experiment presets: the model, load/save/validate, migration, applying
device settings. Qt-free and engine-free (the GUI and the CLI call this)."""

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
