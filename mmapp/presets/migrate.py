"""Older preset files, brought forward one schema version at a time.

Each step takes the parsed JSON of version N and returns version N + 1; the
result is validated by the current model afterwards. Files newer than this
mmapp are refused (they may hold settings it would silently ignore).

Version history:

1. `rig` was a string ("simulated", a rig `.json` path or a `.cfg` path) with
   the simulated camera's settings in a top-level `camera`; `storage.name`
   was a literal dataset name.
2. `rig` is an object (`{"kind": "simulated", "file", "camera"}` or
   `{"kind": "mm_config", "path"}`); `storage.name_template` takes
   placeholders (`{name}`, `{date}`, `{time}`); `processing` is reserved.
3. `processing` is the chain: `{"steps": [{"name", "params", "enabled",
   "on_error"}], "save_raw", "on_error", "workers", "queue_mb"}` (version 2
   allowed only an empty list: it becomes the default, empty chain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmapp.presets.errors import PresetError
from mmapp.presets.model import SCHEMA_VERSION
from mmapp.presets.naming import escape_literal

Raw = dict[str, Any]


def _v1_to_v2(data: Raw, source: str) -> Raw:
    out = {k: v for k, v in data.items() if k not in ("rig", "camera")}
    rig = data.get("rig", "simulated")
    camera = data.get("camera")
    if not isinstance(rig, str) or not rig:
        raise PresetError.one(
            source, "rig", "schema version 1 expects a non-empty string"
        )
    if rig.lower().endswith(".cfg"):
        if camera:
            raise PresetError.one(
                source, "camera", "only the simulated rig takes camera settings"
            )
        out["rig"] = {"kind": "mm_config", "path": rig}
    else:
        new: Raw = {"kind": "simulated", "file": None if rig == "simulated" else rig}
        if camera is not None:
            new["camera"] = camera
        out["rig"] = new
    storage = data.get("storage")
    if isinstance(storage, dict) and "name" in storage:
        name = storage["name"]
        if not isinstance(name, str):
            raise PresetError.one(source, "storage.name", "expected a string")
        storage = {
            ("name_template" if k == "name" else k): v for k, v in storage.items()
        }
        storage["name_template"] = escape_literal(name)
        out["storage"] = storage
    out["schema_version"] = 2
    return out


def _v2_to_v3(data: Raw, source: str) -> Raw:
    out = dict(data)
    processing = out.pop("processing", [])
    if processing != []:
        raise PresetError.one(
            source, "processing", "schema version 2 allows only an empty list"
        )
    out["schema_version"] = 3
    return out


MIGRATIONS: dict[int, Callable[[Raw, str], Raw]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(data: Raw, source: str = "preset") -> Raw:
    """Bring parsed preset JSON of any known version to the current one."""
    version = data.get("schema_version")
    if "schema_version" not in data:
        raise PresetError.one(source, "schema_version", "missing")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PresetError.one(
            source, "schema_version", f"expected an integer, got {version!r}"
        )
    if version > SCHEMA_VERSION:
        raise PresetError.one(
            source,
            "schema_version",
            f"version {version} is newer than this mmapp understands "
            f"({SCHEMA_VERSION}); update mmapp to open it",
        )
    if version < min(MIGRATIONS, default=SCHEMA_VERSION):
        raise PresetError.one(
            source, "schema_version", f"unknown version {version} (oldest is 1)"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data, source)
        version += 1
    return data
