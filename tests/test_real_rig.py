"""What a real rig's file adds to its Micro-Manager .cfg, on Micro-Manager's own
DemoCamera adapter (built from ../shared/vendor), and the one camera trigger
mapping used by the engine, the checks and the device panel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pymmcore_plus.experimental.unicore import pymm_property
from test_daq_acquisition import (
    assert_frames_match,
    frames_in_order,
    lasers_on,
    opm_program,
    run,
)

from mmapp.daq.render import render
from mmapp.engine.controller import RunController, RunOutcome
from mmapp.rig import RigSafetyError, RigSpec, build_simulated_rig, load_rig
from mmapp.rig.triggers import (
    GENERIC,
    KNOWN_ADAPTERS,
    CameraTriggerError,
    CameraTriggerSpec,
    trigger_mapping,
    trigger_value,
)
from mmapp.sim import simulated_rig
from mmapp.sim.camera import SimCamera

HAMAMATSU = KNOWN_ADAPTERS["HamamatsuHam"]


def _rig_file(tmp_path: Path, cfg: Path, **fields: object) -> Path:
    path = tmp_path / "rig.json"
    path.write_text(json.dumps({"name": "demo rig", "mm_config": str(cfg), **fields}))
    return path


# --- the trigger mapping ---------------------------------------------------------
def _fake_core(library: str) -> SimpleNamespace:
    return SimpleNamespace(
        getCameraDevice=lambda: "Camera", getDeviceLibrary=lambda label: library
    )


@pytest.mark.parametrize(
    ("library", "prop", "internal", "external"),
    [
        ("HamamatsuHam", "TRIGGER SOURCE", "INTERNAL", "EXTERNAL"),
        ("PCO_Camera", "Triggermode", "Internal", "External"),
        ("PVCAM", "TriggerMode", "Internal Trigger", "Edge Trigger"),
        ("DemoCamera", "TriggerMode", "Internal", "External"),
    ],
)
def test_each_adapter_has_its_trigger_property_and_values(
    library, prop, internal, external
):
    mapping = trigger_mapping(_fake_core(library), None)
    assert (mapping.property, mapping.internal, mapping.external) == (
        prop,
        internal,
        external,
    )
    own = CameraTriggerSpec(property="Trig", internal="Free", external="Ext")
    assert trigger_mapping(_fake_core(library), own) is own  # the rig file wins


class HamamatsuLikeCamera(SimCamera):
    """The simulated camera with Hamamatsu's trigger property and values."""

    @pymm_property(allowed_values=("INTERNAL", "EXTERNAL"), name="TRIGGER SOURCE")
    def trigger_source(self) -> str:
        """INTERNAL or EXTERNAL."""
        return self._trigger_mode.upper()

    @trigger_source.setter
    def _set_trigger_source(self, value: str) -> None:
        self._trigger_mode = str(value).capitalize()


def test_a_daq_run_drives_the_cameras_own_trigger_property(tmp, monkeypatch):
    """A camera whose trigger is 'TRIGGER SOURCE' = EXTERNAL (Hamamatsu) is
    switched by that property, plays the program pixel-exact, and is put back."""
    monkeypatch.setattr(simulated_rig, "SimCamera", HamamatsuLikeCamera)
    spec = RigSpec.model_validate(
        {
            **json.loads((Path("resources/rigs/simulated.json")).read_text()),
            "camera": {"width": 64, "height": 48, "exposure_ms": 1.0},
            "camera_trigger": HAMAMATSU.model_dump(),
        }
    )
    rig = build_simulated_rig(spec)
    try:
        core = rig.core
        assert rig.trigger == HAMAMATSU
        assert core.getProperty("Camera", "TRIGGER SOURCE") == "INTERNAL"
        lasers_on(rig)
        program = opm_program(positions=4)
        controller = RunController(rig)
        result = run(controller, tmp, program, frames=8)
        assert result.outcome is RunOutcome.COMPLETED, result.message
        assert_frames_match(frames_in_order(result.dataset), render(program))
        assert core.getProperty("Camera", "TRIGGER SOURCE") == "INTERNAL"  # back
        # a mapping the camera does not have is refused, naming where to fix it
        with pytest.raises(CameraTriggerError, match="rig file's 'camera_trigger'"):
            trigger_value(
                core,
                CameraTriggerSpec(property="NoSuchProp"),
                free_run=False,
            )
    finally:
        rig.close()


def test_a_camera_without_the_mapped_values_is_refused_before_the_card(
    controller, rig, tmp
):
    rig.trigger = CameraTriggerSpec(
        property="TriggerMode", internal="Internal Trigger", external="Edge Trigger"
    )
    result = run(controller, tmp, opm_program(positions=2), frames=2)
    assert result.outcome is RunOutcome.ERROR
    assert "offers TriggerMode ['Internal', 'External'], not 'Edge Trigger'" in (
        result.message
    )
    assert rig.daq_device.tasks == {}  # the card was never programmed
    assert result.frames_acquired == 0


# --- a real rig's file: buffer, trigger, safety, arm delay (DemoCamera) -------------
def test_a_cfg_rig_gets_its_circular_buffer(tmp_path, democam_cfg):
    plain = load_rig(democam_cfg)
    try:  # a .cfg alone: the default a rig file has
        assert plain.core.getCircularBufferMemoryFootprint() == 1024
        assert plain.trigger == GENERIC  # DemoCamera: the generic names
    finally:
        plain.close()
    rig = load_rig(_rig_file(tmp_path, democam_cfg, circular_buffer_mb=64))
    try:
        assert rig.core.getCircularBufferMemoryFootprint() == 64
    finally:
        rig.close()


def test_a_cfg_rigs_safe_state_comes_from_its_rig_file(tmp_path, democam_cfg):
    safety = {
        "properties": [{"device": "Camera", "property": "Binning", "value": "1"}],
        "shutters": ["Shutter"],
    }
    rig = load_rig(_rig_file(tmp_path, democam_cfg, safety=safety))
    core = rig.core
    try:
        core.setProperty("Camera", "Binning", "2")
        core.setShutterOpen("Shutter", True)
        rig.make_safe()
        assert core.getProperty("Camera", "Binning") == "1"
        assert not core.getShutterOpen("Shutter")
    finally:
        rig.close()


def test_a_safe_state_step_that_fails_is_named_and_the_rest_still_run(
    tmp_path, democam_cfg
):
    safety = {
        "properties": [
            {"device": "Camera", "property": "Binning", "value": "3"},  # refused
            {"device": "Camera", "property": "Gain", "value": "0"},
        ],
        "shutters": ["Shutter"],
    }
    rig = load_rig(_rig_file(tmp_path, democam_cfg, safety=safety))
    core = rig.core
    try:
        core.setProperty("Camera", "Gain", "5")
        core.setShutterOpen("Shutter", True)
        with pytest.raises(RigSafetyError, match=r"Camera\.Binning not set to '3'"):
            rig.make_safe()
        assert core.getProperty("Camera", "Gain") == "0"  # the next step ran
        assert not core.getShutterOpen("Shutter")
    finally:
        safety_ok = rig.safe_steps[1:]
        rig.safe_steps[:] = safety_ok  # close the rig without the refused step
        rig.close()


def test_a_camera_that_arms_late_is_waited_for(tmp_path, democam_cfg):
    trigger = {**GENERIC.model_dump(), "arm_delay_ms": 80}
    rig = load_rig(_rig_file(tmp_path, democam_cfg, camera_trigger=trigger))
    core = rig.core
    try:
        assert rig.trigger.arm_delay_ms == 80
        assert rig.wait_camera_ready(0.05) is False  # not started: not armed
        core.startContinuousSequenceAcquisition(0)
        t0 = time.perf_counter()
        assert rig.wait_camera_ready(2.0)
        assert time.perf_counter() - t0 >= 0.08
        core.stopSequenceAcquisition()
    finally:
        rig.close()


def test_the_buffer_size_is_kept_with_the_dataset(democam_controller, tmp):
    from helpers import open_dataset

    from mmapp.engine.controller import RunRequest
    from mmapp.engine.events import stream_event

    democam_controller.start(RunRequest([stream_event(max_frames=3)], tmp, "run"))
    result = democam_controller.wait(30)
    assert result.outcome is RunOutcome.COMPLETED, result.message
    ds = open_dataset(result.dataset)
    try:
        assert ds.summary_metadata["mmapp"]["circular_buffer_mb"] == 1024
        assert np.asarray(ds.read_image(time=0)).shape == (48, 64)
    finally:
        ds.close()


def test_the_device_panel_shows_the_buffer(qtbot, democam_rig):
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from mmapp.gui.device_panel import DevicePanel

    panel = DevicePanel(lambda what, why: None)
    qtbot.addWidget(panel)
    panel.set_core(democam_rig.core)
    assert (
        panel.buffer_label.text() == f"1024 MB, {1024 * 2**20 // (64 * 48 * 2)} frames"
    )


def test_the_safe_state_parks_the_rigs_daq_lines(rig):
    """safety.park_daq: the rig file's laser lines low, the galvo at park_v."""
    import nidaqmx
    from nidaqmx.constants import LineGrouping

    from mmapp.rig.mm_config import _park_daq

    daq = rig.spec.daq.model_copy(
        update={"galvo": rig.spec.daq.galvo.model_copy(update={"park_v": 0.7})}
    )
    lines = list(daq.laser_lines.values())
    with nidaqmx.Task(grpc_options=rig.daq.grpc_options()) as do:
        for line in lines:
            do.do_channels.add_do_chan(line, line_grouping=LineGrouping.CHAN_PER_LINE)
        do.write([True] * len(lines), auto_start=True)
    card = rig.daq_device
    assert all(card.output_value(line) == 1.0 for line in lines)
    _park_daq(rig, daq)
    assert all(card.output_value(line) == 0.0 for line in lines)
    assert card.output_value(daq.galvo.line) == pytest.approx(0.7)
