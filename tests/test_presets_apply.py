"""Device settings onto the simulated rig's core: checked first, all or nothing."""

from __future__ import annotations

import pytest
from helpers import HEIGHT

from mmapp.engine.preset_run import RigMismatchError, apply_preset_to_rig, same_rig
from mmapp.presets import (
    ApplyError,
    Preset,
    apply_device_settings,
    check_device_settings,
    load_preset,
)
from mmapp.presets.model import DeviceSettings
from mmapp.resources import resources_dir
from mmapp.rig import Rig


def state(rig: Rig) -> dict[tuple[str, str], object]:
    """Every property of every device."""
    core = rig.core
    return {
        (d, p): core.getProperty(d, p)
        for d in core.getLoadedDevices()
        for p in core.getDevicePropertyNames(d)
    }


def settings(**kwargs: object) -> DeviceSettings:
    return DeviceSettings.model_validate(kwargs)


def test_applies_groups_then_properties_in_order(rig: Rig) -> None:
    apply_device_settings(
        rig.core,
        settings(
            config_groups={"Channel": "561nm"},
            properties=[
                {"device": "Lasers", "property": "Laser 561 Power %", "value": 12.5},
                {"device": "Lasers", "property": "Laser 488", "value": "On"},
                {"device": "Camera", "property": "BitDepth", "value": 12},
                {"device": "Camera", "property": "FrameIntervalMs", "value": 2},
            ],
        ),
    )
    core = rig.core
    assert core.getCurrentConfig("Channel") == ""  # 488 turned on afterwards
    assert core.getProperty("Lasers", "Laser 561") == "On"
    assert core.getProperty("Lasers", "Laser 488") == "On"
    assert core.getProperty("Lasers", "Laser 561 Power %") == 12.5
    assert core.getProperty("Camera", "BitDepth") == 12
    assert core.getProperty("Camera", "FrameIntervalMs") == 2.0


@pytest.mark.parametrize(
    ("bad", "path", "reason"),
    [
        (
            {"device": "Lasers", "property": "Laser 488 Power %", "value": 150.0},
            "devices.properties[1]",
            "outside [0, 100]",
        ),
        (
            {"device": "Lasers", "property": "Laser 488", "value": "Maybe"},
            "devices.properties[1]",
            "'Maybe' is not one of ['Off', 'On']",
        ),
        (
            {"device": "Camera", "property": "BitDepth", "value": 9},
            "devices.properties[1]",
            "is not one of",
        ),
        (
            {"device": "Camera", "property": "SensorWidth", "value": "wide"},
            "devices.properties[1]",
            "takes a number",
        ),
        (
            {"device": "Camera", "property": "SensorWidth", "value": 12.5},
            "devices.properties[1]",
            "takes an integer",
        ),
        (
            {"device": "Camera", "property": "Binning", "value": 2},
            "devices.properties[1]",
            "read-only",
        ),
        (
            {"device": "Galvo", "property": "Amplitude", "value": 1.0},
            "devices.properties[1]",
            "no device 'Galvo'",
        ),
        (
            {"device": "Lasers", "property": "Laser 999", "value": "On"},
            "devices.properties[1]",
            "has no property 'Laser 999'",
        ),
    ],
)
def test_a_bad_property_changes_nothing(
    rig: Rig, bad: dict, path: str, reason: str
) -> None:
    before = state(rig)
    request = settings(
        config_groups={"Channel": "640nm"},
        properties=[
            {"device": "Lasers", "property": "Laser 640 Power %", "value": 90.0},
            bad,
        ],
    )
    with pytest.raises(ApplyError) as info:
        apply_device_settings(rig.core, request)
    assert [i.path for i in info.value.issues] == [path]
    assert reason in str(info.value)
    assert "nothing changed" in str(info.value)
    assert state(rig) == before


@pytest.mark.parametrize(
    ("groups", "reason"),
    [
        ({"Objective": "10x"}, "no config group 'Objective'"),
        ({"Channel": "700nm"}, "'700nm' is not one of ['405nm', '488nm'"),
    ],
)
def test_a_bad_config_group_changes_nothing(
    rig: Rig, groups: dict, reason: str
) -> None:
    before = state(rig)
    with pytest.raises(ApplyError, match=r"devices\.config_groups") as info:
        apply_device_settings(
            rig.core,
            settings(
                config_groups=groups,
                properties=[
                    {"device": "Lasers", "property": "Laser 405", "value": "On"}
                ],
            ),
        )
    assert reason in str(info.value)
    assert state(rig) == before


def test_all_problems_reported_at_once(rig: Rig) -> None:
    issues = check_device_settings(
        rig.core,
        settings(
            config_groups={"Nope": "x"},
            properties=[
                {"device": "Lasers", "property": "Laser 488 Power %", "value": -1.0},
                {"device": "Lasers", "property": "Laser 488", "value": "On"},
                {"device": "X", "property": "Y", "value": 1},
            ],
        ),
    )
    assert [i.path for i in issues] == [
        "devices.config_groups.Nope",
        "devices.properties[0]",
        "devices.properties[2]",
    ]


def test_failure_while_applying_restores_what_was_set(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device that refuses a value the check accepted: everything goes back."""
    before = state(rig)
    core = rig.core
    real = core.setProperty

    def flaky(device: str, prop: str, value: object) -> None:
        if prop == "FrameIntervalMs":
            raise RuntimeError("device timed out")
        real(device, prop, value)

    monkeypatch.setattr(core, "setProperty", flaky)
    with pytest.raises(ApplyError, match=r"devices\.properties\[2\]: device timed out"):
        apply_device_settings(
            core,
            settings(
                config_groups={"Channel": "488nm"},
                properties=[
                    {"device": "Lasers", "property": "Laser 488 Power %", "value": 1.0},
                    {"device": "Camera", "property": "BitDepth", "value": 8},
                    {"device": "Camera", "property": "FrameIntervalMs", "value": 5.0},
                ],
            ),
        )
    monkeypatch.undo()
    assert state(rig) == before


# --- a whole preset onto the rig that is already loaded (File > Open) -----------------
def preset_with(**changes: object) -> Preset:
    base = load_preset(resources_dir() / "presets" / "stream_1000_frames.mmpreset")
    return Preset.model_validate({**base.model_dump(mode="json"), **changes})


def test_preset_onto_the_loaded_rig(rig: Rig) -> None:
    preset = preset_with(
        rig={"kind": "simulated", "camera": {"width": 32, "exposure_ms": 3.0}}
    )
    assert same_rig(preset, rig)
    apply_preset_to_rig(preset, rig)
    core = rig.core
    assert (core.getImageWidth(), core.getImageHeight()) == (32, HEIGHT)
    assert core.getExposure() == 3.0
    assert core.getProperty("Lasers", "Laser 488") == "On"  # config group
    assert core.getProperty("Lasers", "Laser 488 Power %") == 20.0


def test_preset_onto_the_loaded_rig_all_or_nothing(rig: Rig) -> None:
    """A camera setting and a device setting in one preset: the bad device
    setting leaves the camera untouched too."""
    before = state(rig)
    data = preset_with(rig={"kind": "simulated", "camera": {"width": 32}})
    data = data.model_dump(mode="json")
    data["devices"]["properties"][0]["value"] = 101.0
    with pytest.raises(ApplyError) as info:
        apply_preset_to_rig(Preset.model_validate(data), rig)
    assert [i.path for i in info.value.issues] == ["devices.properties[0]"]
    assert state(rig) == before


def test_preset_for_another_rig_changes_nothing(rig: Rig) -> None:
    before = state(rig)
    preset = preset_with(rig={"kind": "mm_config", "path": "C:/rigs/opm.cfg"})
    assert not same_rig(preset, rig)
    with pytest.raises(RigMismatchError, match=r"opm\.cfg"):
        apply_preset_to_rig(preset, rig)
    assert state(rig) == before
