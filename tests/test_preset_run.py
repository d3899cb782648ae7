"""From a preset (+ overrides) to a RunRequest; no rig, no run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from useq import MDASequence

from mmapp.engine.events import is_stream_event
from mmapp.engine.preset_run import (
    DatasetExistsError,
    build_run_request,
    events_for,
    existing_datasets,
)
from mmapp.presets import PRESET_SUFFIX, Preset, PresetError, load_preset
from mmapp.presets.overrides import WHAT_TO_ACQUIRE, Overrides, apply_overrides
from mmapp.resources import resources_dir

WHEN = datetime(2026, 11, 22, 5, 6, 7)


def example(name: str) -> Preset:
    return load_preset(resources_dir() / "presets" / f"{name}{PRESET_SUFFIX}")


def test_stream_request(tmp_path: Path) -> None:
    preset = apply_overrides(example("stream_1000_frames"), Overrides(out=tmp_path))
    request = build_run_request(preset, when=WHEN, settings={"command": "x"})
    (event,) = request.events
    assert is_stream_event(event)
    assert event.action.data == {"max_frames": 1000, "max_duration_s": None}
    assert event.exposure == 10.0
    assert request.out_dir == tmp_path
    assert request.name == "stream_1000_frames_20261122"
    assert request.program is None
    assert request.queue_bytes == 512 * 1024 * 1024
    assert request.settings["command"] == "x"
    assert request.settings["started"] == "2026-11-22T05:06:07"
    assert Preset.model_validate(request.settings["preset"]) == preset


def test_mda_request_is_the_sequence() -> None:
    preset = example("mda_z_stack")
    events = events_for(preset.acquisition)
    assert isinstance(events, MDASequence)
    assert len(list(events)) == 22


def test_program_travels_in_the_request() -> None:
    preset = example("opm_volume_daq")
    request = build_run_request(preset, when=WHEN)
    assert request.program == preset.program
    assert request.program.topology == "daq_master"
    assert request.name == "OPM_volume_(DAQ)_20261122_050607"
    assert request.out_dir == Path("~/mmapp-data").expanduser()


def test_if_exists_error_refuses_a_taken_name(tmp_path: Path) -> None:
    preset = apply_overrides(
        example("stream_1000_frames"),
        Overrides(out=tmp_path, name="run", if_exists="error"),
    )
    build_run_request(preset)  # free
    (tmp_path / "run_1").mkdir()
    (tmp_path / "running_1").mkdir()  # another name: not counted
    assert existing_datasets(tmp_path, "run") == [tmp_path / "run_1"]
    with pytest.raises(DatasetExistsError, match=r"storage\.if_exists is 'error'"):
        build_run_request(preset)
    incrementing = preset.model_copy(
        update={"storage": preset.storage.model_copy(update={"if_exists": "increment"})}
    )
    assert build_run_request(incrementing).name == "run"


# --- overrides -----------------------------------------------------------------------
def test_frames_override_on_a_loop_preset() -> None:
    preset = apply_overrides(example("loop_until_stop"), Overrides(frames=7))
    assert preset.acquisition.frames == 7
    assert preset.acquisition.exposure_ms == 10.0  # kept


def test_duration_on_a_loop_preset_needs_no_loop_flag() -> None:
    preset = apply_overrides(example("loop_until_stop"), Overrides(duration_s=2.5))
    assert preset.acquisition.loop and preset.acquisition.duration_s == 2.5
    looped = apply_overrides(preset, Overrides(loop=True))
    assert looped.acquisition.duration_s == 2.5  # --loop keeps the duration


def test_loop_override_on_an_mda_preset() -> None:
    preset = apply_overrides(
        example("mda_z_stack"), Overrides(loop=True, duration_s=1.0)
    )
    assert preset.acquisition.mode == "stream" and preset.acquisition.loop


def test_mda_overrides_keep_the_rest_of_the_sequence() -> None:
    preset = apply_overrides(
        example("mda_z_stack"), Overrides(timepoints=3, interval_s=0.5, z_step_um=2)
    )
    seq = preset.acquisition.sequence
    assert seq.time_plan.loops == 3 and seq.time_plan.interval.total_seconds() == 0.5
    assert seq.z_plan.range == 10.0 and seq.z_plan.step == 2.0
    assert [c.config for c in seq.channels] == ["488nm", "561nm"]


def test_camera_and_storage_overrides(tmp_path: Path) -> None:
    preset = apply_overrides(
        example("opm_volume_daq"),
        Overrides(
            out=tmp_path,
            name="{name}_x",
            size=32,
            bit_depth=12,
            exposure_ms=1.0,
            trigger="Internal",
            queue_mb=64,
            first_frame_timeout_s=2.0,
        ),
    )
    assert preset.rig.camera.overrides() == {
        "width": 32,
        "height": 32,
        "bit_depth": 12,
        "exposure_ms": 1.0,
        "trigger_mode": "Internal",
    }
    assert preset.acquisition.exposure_ms == 1.0
    assert preset.acquisition.first_frame_timeout_s == 2.0
    assert preset.storage.directory == str(tmp_path)
    assert preset.storage.queue_mb == 64
    assert preset.storage.name_template == "{name}_x"
    assert preset.program == example("opm_volume_daq").program


def test_rig_override() -> None:
    cfg = apply_overrides(example("loop_until_stop"), Overrides(rig=Path("a/b.cfg")))
    assert cfg.rig.kind == "mm_config" and cfg.rig.path == str(Path("a/b.cfg"))
    with pytest.raises(ValueError, match="--size, --bit-depth and --trigger"):
        apply_overrides(cfg, Overrides(size=32))
    assert apply_overrides(cfg, Overrides(exposure_ms=2)).acquisition.exposure_ms == 2
    mda = apply_overrides(example("mda_z_stack"), Overrides(rig=Path("a/b.cfg")))
    with pytest.raises(ValueError, match="takes its exposure from the channels"):
        apply_overrides(mda, Overrides(exposure_ms=2))
    sim = apply_overrides(cfg, Overrides(rig=Path("rig.json"), size=32))
    assert sim.rig.kind == "simulated" and sim.rig.file == "rig.json"


def test_options_alone_make_a_preset(tmp_path: Path) -> None:
    preset = apply_overrides(None, Overrides(out=tmp_path, frames=5, size=32))
    assert preset.name == "acquisition" and preset.storage.name_template == "{name}"
    assert preset.acquisition.frames == 5
    mda = apply_overrides(None, Overrides(out=tmp_path, timepoints=2))
    assert mda.acquisition.sequence.time_plan.loops == 2


@pytest.mark.parametrize(
    ("base", "overrides", "message"),
    [
        (None, Overrides(), WHAT_TO_ACQUIRE),
        (None, Overrides(duration_s=2), "--duration goes with --loop"),
        ("stream_1000_frames", Overrides(duration_s=2), "--duration goes with --loop"),
        ("loop_until_stop", Overrides(frames=3, loop=True), "choose --frames N or"),
        ("loop_until_stop", Overrides(frames=3, timepoints=2), "cannot be combined"),
        (None, Overrides(z_range_um=4), "--z-range needs --z-step"),
        ("stream_1000_frames", Overrides(interval_s=1), "--interval goes with"),
        ("stream_1000_frames", Overrides(z_step_um=1), "--z-step goes with --z-range"),
    ],
)
def test_bad_combinations(base: str | None, overrides: Overrides, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        apply_overrides(example(base) if base else None, overrides)
    assert not isinstance(info.value, PresetError)


def test_bad_override_value_names_the_field() -> None:
    with pytest.raises(PresetError) as info:
        apply_overrides(example("stream_1000_frames"), Overrides(name="{user}"))
    assert [i.path for i in info.value.issues] == ["storage.name_template"]
    assert str(info.value).startswith("command line: ")


def test_run_settings_are_one_record_for_cli_and_window(tmp_path: Path) -> None:
    """run_settings: what `mmapp acquire` and the window both record."""
    from mmapp.engine.preset_run import run_settings

    preset = apply_overrides(example("stream_1000_frames"), Overrides(out=tmp_path))
    cli = run_settings(
        "acquire", preset, preset_file="p.mmpreset", details={"frames": 1000}, when=WHEN
    )
    assert cli["command"] == "acquire" and cli["preset_file"] == "p.mmpreset"
    assert cli["preset_name"] == preset.name and cli["frames"] == 1000
    assert cli["rig"].endswith("simulated.json") and "camera" in cli
    assert cli["started"] == "2026-11-22T05:06:07"
    assert Preset.model_validate(cli["preset"]) == preset
    window = run_settings("gui", None, preset_name="untitled", rig="Simulated rig")
    assert window["rig"] == "Simulated rig" and window["preset"] is None
    assert window["preset_file"] is None and "mmapp_version" in window


def test_next_dataset_path_follows_ndstorage_numbering(tmp_path: Path) -> None:
    from mmapp.data import next_dataset_path

    assert (
        next_dataset_path(tmp_path / "missing", "run") == tmp_path / "missing" / "run_1"
    )
    for name in ("run_1", "RUN_3_old", "running_7"):
        (tmp_path / name).mkdir()
    assert next_dataset_path(tmp_path, "run") == tmp_path / "run_4"
