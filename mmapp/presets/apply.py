"""Device settings onto a core: checked against the core first, then applied
all or nothing (anything that fails midway is put back as it was)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

from pymmcore_plus import CMMCorePlus, PropertyType

from mmapp.presets.errors import ApplyError, Issue
from mmapp.presets.model import DeviceSettings, PropertySetting

logger = logging.getLogger(__name__)

Target = tuple[str, str]  # (device, property)


def _config_settings(core: CMMCorePlus, group: str, preset: str) -> list[tuple]:
    return [tuple(s) for s in core.getConfigData(group, preset)]


def _check_property(
    core: CMMCorePlus, device: str, prop: str, value: object, path: str
) -> Issue | None:
    """Why the core would refuse `value` for device.prop (None: it would take it)."""
    if device not in core.getLoadedDevices():
        return Issue(path, f"no device {device!r} on this rig")
    if not core.hasProperty(device, prop):
        return Issue(path, f"device {device!r} has no property {prop!r}")
    if core.isPropertyReadOnly(device, prop):
        return Issue(path, f"{device}.{prop} is read-only")
    if core.isPropertyPreInit(device, prop):
        return Issue(path, f"{device}.{prop} is pre-init (set it in the rig config)")
    kind = core.getPropertyType(device, prop)
    number: float | None = None
    if kind in (PropertyType.Integer, PropertyType.Float):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return Issue(path, f"{device}.{prop} takes a number, got {value!r}")
        if not math.isfinite(number):
            return Issue(path, f"{device}.{prop} takes a finite number")
        if kind is PropertyType.Integer and not number.is_integer():
            return Issue(path, f"{device}.{prop} takes an integer, got {value!r}")
    allowed = [str(v) for v in core.getAllowedPropertyValues(device, prop)]
    if allowed and _as_text(value, kind) not in allowed:
        return Issue(path, f"{value!r} is not one of {allowed} for {device}.{prop}")
    if number is not None and core.hasPropertyLimits(device, prop):
        low = core.getPropertyLowerLimit(device, prop)
        high = core.getPropertyUpperLimit(device, prop)
        if not low <= number <= high:
            return Issue(path, f"{value!r} is outside [{low:g}, {high:g}] for {prop}")
    return None


def _as_text(value: object, kind: PropertyType) -> str:
    if kind is PropertyType.Integer and isinstance(value, float | int):
        return str(int(value))
    return str(value)


Step = tuple[str, tuple[str, str] | PropertySetting]  # (field path, what to set)


def _steps(settings: DeviceSettings, first: Sequence[Step]) -> list[Step]:
    groups = [
        (f"devices.config_groups.{g}", (g, c))
        for g, c in settings.config_groups.items()
    ]
    props = [(f"devices.properties[{i}]", s) for i, s in enumerate(settings.properties)]
    return [*first, *groups, *props]


def check_device_settings(
    core: CMMCorePlus, settings: DeviceSettings, *, first: Sequence[Step] = ()
) -> list[Issue]:
    """Every reason the core would refuse these settings (empty: all fine).

    `first`: settings that go before the preset's (e.g. the simulated camera's),
    each with the field path to report.
    """
    issues: list[Issue] = []
    for path, step in _steps(settings, first):
        if isinstance(step, PropertySetting):
            if issue := _check_property(
                core, step.device, step.property, step.value, path
            ):
                issues.append(issue)
            continue
        group, preset = step
        if not core.isGroupDefined(group):
            issues.append(Issue(path, f"no config group {group!r} on this rig"))
        elif not core.isConfigDefined(group, preset):
            known = list(core.getAvailableConfigs(group))
            issues.append(Issue(path, f"{preset!r} is not one of {known}"))
        else:
            for device, prop, value in _config_settings(core, group, preset):
                if issue := _check_property(core, device, prop, value, path):
                    issues.append(issue)
    return issues


def _targets(core: CMMCorePlus, steps: Sequence[Step]) -> list[Target]:
    seen: dict[Target, None] = {}
    for _, step in steps:
        if isinstance(step, PropertySetting):
            seen[(step.device, step.property)] = None
        else:
            for device, prop, _ in _config_settings(core, *step):
                seen[(device, prop)] = None
    return list(seen)


def _set(core: CMMCorePlus, setting: PropertySetting) -> None:
    kind = core.getPropertyType(setting.device, setting.property)
    value = setting.value
    if kind is PropertyType.Integer and isinstance(value, float | str):
        value = int(float(value))
    elif kind is PropertyType.Float and isinstance(value, str):
        value = float(value)
    core.setProperty(setting.device, setting.property, value)


def apply_device_settings(
    core: CMMCorePlus, settings: DeviceSettings, *, first: Sequence[Step] = ()
) -> None:
    """Apply `first`, then config-group presets, then properties; all or nothing.

    Raises ApplyError without touching the core if any setting is refused by
    the check, and restores every touched property if applying fails midway.
    """
    issues = check_device_settings(core, settings, first=first)
    if issues:
        raise ApplyError(issues)
    steps = _steps(settings, first)
    before = [(d, p, core.getProperty(d, p)) for d, p in _targets(core, steps)]
    for path, step in steps:
        try:
            if isinstance(step, PropertySetting):
                _set(core, step)
            else:
                core.setConfig(*step)
                core.waitForConfig(*step)
        except Exception as exc:
            failed = _restore(core, before)
            note = f" (could not restore {', '.join(failed)})" if failed else ""
            raise ApplyError([Issue(path, f"{exc}{note}")]) from exc


def _restore(core: CMMCorePlus, before: Iterable[tuple[str, str, object]]) -> list[str]:
    """Put properties back; returns those that could not be restored."""
    failed: list[str] = []
    for device, prop, value in reversed(list(before)):
        try:
            if core.getProperty(device, prop) != value:
                core.setProperty(device, prop, value)
        except Exception:
            logger.exception("restoring %s.%s failed", device, prop)
            failed.append(f"{device}.{prop}")
    return failed
