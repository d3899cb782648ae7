"""Camera trigger modes: one mapping per rig, used by the engine, the checks
before a run and the device panel.

Device adapters name the trigger property and its values differently. A rig
file may say which (``camera_trigger``); otherwise the camera's adapter picks a
known default, and the generic ``TriggerMode`` = ``Internal``/``External``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CameraTriggerSpec(BaseModel):
    """The camera property that switches its trigger mode, and its two values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    property: str = Field("TriggerMode", min_length=1)
    internal: str = Field("Internal", min_length=1)  # free-running (camera_master)
    external: str = Field("External", min_length=1)  # one frame per trigger edge
    # a camera that arms after its start call returns: the DAQ waits this long
    arm_delay_ms: float = Field(0.0, ge=0, le=10_000)


GENERIC = CameraTriggerSpec()

# The adapters' own names (from their sources; a rig file overrides them).
KNOWN_ADAPTERS: dict[str, CameraTriggerSpec] = {
    "HamamatsuHam": CameraTriggerSpec(
        property="TRIGGER SOURCE", internal="INTERNAL", external="EXTERNAL"
    ),
    "PCO_Camera": CameraTriggerSpec(
        property="Triggermode", internal="Internal", external="External"
    ),
    "PVCAM": CameraTriggerSpec(
        property="TriggerMode", internal="Internal Trigger", external="Edge Trigger"
    ),
}


class CameraTriggerError(ValueError):
    """The camera cannot be put in the trigger mode a DAQ program needs."""


def trigger_mapping(
    core: Any, configured: CameraTriggerSpec | None
) -> CameraTriggerSpec:
    """The rig file's mapping, else the camera adapter's known one, else generic."""
    if configured is not None:
        return configured
    camera = core.getCameraDevice()
    if not camera:
        return GENERIC
    try:
        library = core.getDeviceLibrary(camera)
    except Exception:
        library = ""
    return KNOWN_ADAPTERS.get(library, GENERIC)


def trigger_value(core: Any, mapping: CameraTriggerSpec, *, free_run: bool) -> str:
    """The value of `mapping.property` for this mode; raises CameraTriggerError
    (naming the property, the values offered and why) before anything moves."""
    camera = core.getCameraDevice()
    why = (
        "free-run (its exposure-out triggers the DAQ, topology camera_master)"
        if free_run
        else "wait for the DAQ's triggers (topology daq_master)"
    )
    value = mapping.internal if free_run else mapping.external
    if not camera:
        raise CameraTriggerError(f"the DAQ program needs a camera to {why}: none set")
    if not core.hasProperty(camera, mapping.property):
        raise CameraTriggerError(
            f"the camera {camera!r} has no {mapping.property!r} property, so it "
            f"cannot be set to {value!r}: the DAQ program needs it to {why} (name "
            f"the camera's trigger property and values in the rig file's "
            f"'camera_trigger')"
        )
    allowed = core.getAllowedPropertyValues(camera, mapping.property)
    if allowed and value not in allowed:
        raise CameraTriggerError(
            f"the camera {camera!r} offers {mapping.property} {list(allowed)}, not "
            f"{value!r}: the DAQ program needs it to {why}"
        )
    return value
