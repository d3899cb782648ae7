"""Command-line overrides of a preset's values (`mmapp acquire PRESET --frames N`).

Overrides work on the preset's JSON form and the result is validated like a
file, so a bad value is reported with its field path, exactly as in a file.
Combinations that make no sense (`--frames` with `--loop`, ...) raise
ValueError with the option names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmapp.daq.program import WaveformProgram
from mmapp.presets.io import preset_from_data
from mmapp.presets.model import Preset

WHAT_TO_ACQUIRE = "say what to acquire: --frames N, --loop, --timepoints or --z-range"


@dataclass(frozen=True)
class Overrides:
    """Values that replace the preset's (None: keep the preset's)."""

    out: Path | None = None
    name: str | None = None  # a name template, like storage.name_template
    if_exists: Literal["increment", "error"] | None = None
    rig: Path | None = None
    frames: int | None = None
    loop: bool = False
    duration_s: float | None = None
    timepoints: int | None = None
    interval_s: float | None = None
    z_range_um: float | None = None
    z_step_um: float | None = None
    exposure_ms: float | None = None
    size: int | None = None
    bit_depth: int | None = None
    trigger: Literal["Internal", "External"] | None = None
    queue_mb: int | None = None
    first_frame_timeout_s: float | None = None
    program: WaveformProgram | None = None  # e.g. the rig file's (--daq)
    channel: str | None = None  # a preset of the rig's channel group (--channel)
    channel_group: str = "Channel"


def _is_loop(acq: dict[str, Any] | None) -> bool:
    return acq is not None and acq.get("mode") == "stream" and acq.get("frames") is None


def _stream(acq: dict[str, Any], ov: Overrides) -> dict[str, Any]:
    was_stream = acq.get("mode") == "stream"
    out: dict[str, Any] = {"mode": "stream"}
    out["exposure_ms"] = acq.get("exposure_ms") if was_stream else None
    if ov.frames is not None:
        out.update(frames=ov.frames, duration_s=None)
    else:  # --loop
        keep = acq.get("duration_s") if _is_loop(acq) else None
        out.update(frames=None, duration_s=ov.duration_s or keep)
    out["first_frame_timeout_s"] = acq.get("first_frame_timeout_s", 20.0)
    return out


def _mda(acq: dict[str, Any], ov: Overrides) -> dict[str, Any]:
    was_mda = acq.get("mode") == "mda"
    seq = dict(acq["sequence"]) if was_mda else {"axis_order": "tpzc"}
    time_plan = seq.get("time_plan") if isinstance(seq.get("time_plan"), dict) else {}
    z_plan = seq.get("z_plan") if isinstance(seq.get("z_plan"), dict) else {}
    if ov.timepoints is not None or ov.interval_s is not None:
        if ov.timepoints is None and "loops" not in time_plan:
            raise ValueError("--interval goes with --timepoints")
        seq["time_plan"] = {
            "interval": ov.interval_s
            if ov.interval_s is not None
            else time_plan.get("interval", 0.0),
            "loops": ov.timepoints or time_plan["loops"],
        }
    if ov.z_range_um is not None or ov.z_step_um is not None:
        z_range = ov.z_range_um if ov.z_range_um is not None else z_plan.get("range")
        step = ov.z_step_um if ov.z_step_um is not None else z_plan.get("step")
        if z_range is None:
            raise ValueError("--z-step goes with --z-range")
        if step is None:
            raise ValueError("--z-range needs --z-step > 0 (um)")
        seq["z_plan"] = {"range": z_range, "step": step}
    return {
        "mode": "mda",
        "sequence": seq,
        "first_frame_timeout_s": acq.get("first_frame_timeout_s", 20.0),
    }


def _acquisition(acq: dict[str, Any] | None, ov: Overrides) -> dict[str, Any]:
    streaming = ov.loop or ov.frames is not None
    mda = any(
        v is not None
        for v in (ov.timepoints, ov.interval_s, ov.z_range_um, ov.z_step_um)
    )
    loop_after = ov.loop or (not (streaming or mda) and _is_loop(acq))
    if ov.duration_s is not None and not loop_after:
        raise ValueError("--duration goes with --loop")
    if streaming and mda:
        raise ValueError("--frames/--loop cannot be combined with time points or z")
    if ov.loop and ov.frames is not None:
        raise ValueError("choose --frames N or --loop, not both")
    if acq is None and not (streaming or mda):
        raise ValueError(WHAT_TO_ACQUIRE)
    acq = dict(acq or {})
    if streaming:
        acq = _stream(acq, ov)
    elif mda:
        acq = _mda(acq, ov)
    elif ov.duration_s is not None:
        acq["duration_s"] = ov.duration_s
    if ov.exposure_ms is not None and acq.get("mode") == "stream":
        acq["exposure_ms"] = ov.exposure_ms
    if ov.first_frame_timeout_s is not None:
        acq["first_frame_timeout_s"] = ov.first_frame_timeout_s
    return acq


def _rig(rig: dict[str, Any], ov: Overrides) -> dict[str, Any]:
    if ov.rig is not None:
        if ov.rig.suffix.lower() == ".cfg":
            rig = {"kind": "mm_config", "path": str(ov.rig)}
        else:
            camera = rig.get("camera", {}) if rig.get("kind") == "simulated" else {}
            rig = {"kind": "simulated", "file": str(ov.rig), "camera": camera}
    camera = {
        "width": ov.size,
        "height": ov.size,
        "bit_depth": ov.bit_depth,
        "exposure_ms": ov.exposure_ms,
        "trigger_mode": ov.trigger,
    }
    camera = {k: v for k, v in camera.items() if v is not None}
    if rig.get("kind") != "simulated":
        if set(camera) - {"exposure_ms"}:
            raise ValueError(
                "--size, --bit-depth and --trigger set the simulated camera; a "
                "Micro-Manager .cfg rig takes device properties in the preset"
            )
        return rig
    return {**rig, "camera": {**rig.get("camera", {}), **camera}}


def apply_overrides(
    preset: Preset | None, ov: Overrides, *, name: str = "acquisition"
) -> Preset:
    """The preset with the overrides applied (None: a new preset named `name`
    from the overrides alone, as `mmapp acquire --frames N` without a file).

    Raises ValueError for options that do not go together and PresetError
    (with the field path) for values the preset model refuses.
    """
    if preset is None:
        data: dict[str, Any] = {"schema_version": 2, "name": name}
        acq = None
    else:
        data = preset.model_dump(mode="json")
        acq = data["acquisition"]
    data["acquisition"] = _acquisition(acq, ov)
    data["rig"] = _rig(data.get("rig", {"kind": "simulated"}), ov)
    mm_rig = data["rig"]["kind"] != "simulated"
    if ov.exposure_ms is not None and mm_rig and data["acquisition"]["mode"] == "mda":
        raise ValueError(
            "--exposure sets the simulated camera or a stream; on a Micro-Manager "
            "rig an MDA takes its exposure from the channels in the preset"
        )
    storage = dict(data.get("storage", {}))
    for key, value in (
        ("directory", ov.out),
        ("name_template", ov.name),
        ("if_exists", ov.if_exists),
        ("queue_mb", ov.queue_mb),
    ):
        if value is not None:
            storage[key] = str(value) if isinstance(value, Path) else value
    data["storage"] = storage
    if ov.program is not None:
        data["program"] = ov.program.model_dump(mode="json")
    if ov.channel is not None:  # the light: a channel preset, e.g. 488nm
        devices = dict(data.get("devices") or {})
        groups = dict(devices.get("config_groups") or {})
        groups[ov.channel_group] = ov.channel
        devices["config_groups"] = groups
        data["devices"] = devices
    return preset_from_data(data, "command line")
