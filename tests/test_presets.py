"""Preset files: round trips, validation with field paths, migration, recent list."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from mmapp.presets import (
    PRESET_SUFFIX,
    SCHEMA_VERSION,
    ConfigRig,
    MDAAcquisition,
    Preset,
    PresetError,
    RecentPresets,
    StreamAcquisition,
    load_preset,
    parse_preset,
    preset_to_json,
    save_preset,
)
from mmapp.presets.naming import render_name
from mmapp.resources import resources_dir

EXAMPLES = sorted((resources_dir() / "presets").glob(f"*{PRESET_SUFFIX}"))
V1_FILE = Path(__file__).parent / "data" / "preset_v1.mmpreset"


def example_data(name: str = "stream_1000_frames") -> dict:
    path = resources_dir() / "presets" / f"{name}{PRESET_SUFFIX}"
    return json.loads(path.read_text(encoding="utf-8"))


def reject(data: dict | str | bytes) -> PresetError:
    """The PresetError a preset raises (fails the test if it loads)."""
    text = data if isinstance(data, str | bytes) else json.dumps(data)
    with pytest.raises(PresetError) as info:
        parse_preset(text, "test.mmpreset")
    return info.value


# --- round trips --------------------------------------------------------------
def test_there_are_examples_of_each_kind() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "stream_1000_frames",
        "loop_until_stop",
        "mda_z_stack",
        "opm_volume_daq",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trip(path: Path, tmp_path: Path) -> None:
    preset = load_preset(path)
    assert preset.schema_version == SCHEMA_VERSION
    copy = tmp_path / f"copy{PRESET_SUFFIX}"
    save_preset(preset, copy)
    again = load_preset(copy)
    assert again == preset
    text = copy.read_text(encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")  # the example is canonical
    save_preset(again, copy)
    assert copy.read_text(encoding="utf-8") == text  # stable
    assert [p.name for p in tmp_path.iterdir()] == [copy.name]  # no temp files


def test_examples_cover_modes_and_program() -> None:
    presets = {p.stem: load_preset(p) for p in EXAMPLES}
    assert isinstance(presets["mda_z_stack"].acquisition, MDAAcquisition)
    stream = presets["stream_1000_frames"].acquisition
    assert isinstance(stream, StreamAcquisition) and stream.frames == 1000
    loop = presets["loop_until_stop"].acquisition
    assert isinstance(loop, StreamAcquisition) and loop.loop
    program = presets["opm_volume_daq"].program
    assert program is not None and program.topology == "daq_master"
    assert program.analog[0].physical_channel == "Dev1/ao0"
    assert program.lasers[0].physical_line == "Dev1/port0/line1"
    assert program.camera_trigger.physical_line == "Dev1/port0/line7"


def test_file_is_indented_json_in_model_order() -> None:
    preset = load_preset(EXAMPLES[0])
    text = preset_to_json(preset)
    assert text.endswith("}\n") and '\n  "schema_version": 3,' in text
    assert list(json.loads(text)) == list(Preset.model_fields)


def test_save_is_atomic_old_file_survives_a_failed_write(
    tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / f"p{PRESET_SUFFIX}"
    preset = load_preset(EXAMPLES[0])
    save_preset(preset, target)
    before = target.read_text(encoding="utf-8")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    other = preset.model_copy(update={"name": "other"})
    with pytest.raises(OSError, match="No space left"):
        save_preset(other, target)
    assert target.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# --- rejection, with the field path -------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (
            lambda d: d["acquisition"].update(frames=0),
            "acquisition.frames",
            "greater than or equal to 1",
        ),
        (
            lambda d: d["acquisition"].update(frames="ten"),
            "acquisition.frames",
            "integer",
        ),
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d["storage"].update(extra=1), "storage.extra", "unknown field"),
        (lambda d: d.pop("name"), "name", "Field required"),
        (lambda d: d["storage"].update(if_exists="overwrite"), "storage.if_exists", ""),
        (
            lambda d: d["storage"].update(name_template="{name}_{user}"),
            "storage.name_template",
            "unknown placeholder {user}",
        ),
        (
            lambda d: d["storage"].update(name_template="{time:%H:%M}"),
            "storage.name_template",
            "cannot",
        ),
        (
            lambda d: d["devices"]["properties"][0].update(value=[1]),
            "devices.properties[0].value",
            "",
        ),
        (
            lambda d: d["rig"].update(camera={"width": 0}),
            "rig.camera.width",
            "greater than or equal to 1",
        ),
        (lambda d: d.update(rig={"kind": "mm_config"}), "rig.path", "Field required"),
        (
            lambda d: d.update(rig={"kind": "mm_config", "path": "x.json"}),
            "rig.path",
            "not a Micro-Manager .cfg",
        ),
        (
            lambda d: d["acquisition"].update(duration_s=5),
            "acquisition",
            "duration_s limits a loop-until-stop",
        ),
        (lambda d: d["display"].update(refresh_hz=1000), "display.refresh_hz", "60"),
        (
            lambda d: d["display"].update(contrast_limits=[9, 3]),
            "display.contrast_limits",
            "must be below",
        ),
        (
            lambda d: d.update(processing={"steps": [{"name": "deskew2"}]}),
            "processing.steps[0]",
            "unknown processor 'deskew2'; known processors: background, bin, deskew",
        ),
        (
            lambda d: d.update(
                processing={"steps": [{"name": "bin", "params": {"factor": 1}}]}
            ),
            "processing.steps[0]",
            "processor 'bin': bad params: factor: Input should be greater than or "
            "equal to 2",
        ),
        (lambda d: d.update(processing=[]), "processing", "valid dictionary"),
        (
            lambda d: d.update(
                acquisition={"mode": "mda", "sequence": {"z_plan": {"rnge": 2}}}
            ),
            "acquisition.sequence.z_plan.step",
            "Field required",
        ),
        (lambda d: d.update(acquisition={"mode": "snap"}), "acquisition", "mode"),
    ],
)
def test_bad_field_named(mutate, path: str, reason: str) -> None:
    data = example_data()
    mutate(data)
    error = reject(data)
    paths = [i.path for i in error.issues]
    assert path in paths, error
    assert reason in str(error)
    assert str(error).startswith("test.mmpreset: ")


def test_unknown_key_inside_the_useq_sequence_is_named() -> None:
    data = example_data("mda_z_stack")
    data["acquisition"]["sequence"]["z_plan"]["stepp"] = 2
    data["acquisition"]["sequence"]["channels"][1]["colour"] = "red"
    error = reject(data)
    assert [str(i) for i in error.issues] == [
        "acquisition.sequence.channels[1].colour: unknown field"
    ] or [str(i) for i in error.issues] == [
        "acquisition.sequence.z_plan.stepp: unknown field"
    ]


@pytest.mark.parametrize(
    ("channels", "issues"),
    [
        ([{"config": 5}], ["acquisition.sequence.channels[0].config: Input should"]),
        (
            [{"config": "488nm"}, {"confg": "x"}],
            ["acquisition.sequence.channels[1].config: Field required"],
        ),
        (
            [{"config": "488nm", "exposure": 0}],
            ["acquisition.sequence.channels[0].exposure: Input should be greater"],
        ),
        (
            ["488nm", 7],
            ["acquisition.sequence.channels[1]: expected a channel (an object or a"],
        ),
    ],
)
def test_bad_mda_channel_is_named_with_its_index(
    channels: list, issues: list[str]
) -> None:
    data = example_data("mda_z_stack")
    data["acquisition"]["sequence"]["channels"] = channels
    error = reject(data)
    assert len(error.issues) == len(issues), error
    for issue, start in zip(error.issues, issues, strict=True):
        assert str(issue).startswith(start), error


def test_stream_exposure_must_be_positive() -> None:
    data = example_data("stream_1000_frames")
    data["acquisition"]["exposure_ms"] = 0
    error = reject(data)
    assert [str(i) for i in error.issues] == [
        "acquisition.exposure_ms: Input should be greater than 0"
    ]


def test_waveform_program_errors_are_named() -> None:
    data = example_data("opm_volume_daq")
    data["program"]["analog"][0]["park_v"] = 9.0
    data["program"]["timing"]["sample_rate_hz"] = 1e9
    error = reject(data)
    paths = {i.path for i in error.issues}
    assert "program.analog[0]" in paths, error
    assert any(p.startswith("program.timing") for p in paths), error
    assert "park_v 9.0 V is outside" in str(error)
    assert "outside what the card" in str(error)


def test_huge_mda_rejected() -> None:
    data = example_data("mda_z_stack")
    data["acquisition"]["sequence"]["z_plan"] = {"range": 1e12, "step": 1e-3}
    error = reject(data)
    assert "acquisition.sequence" in str(error) and "events" in str(error)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not valid JSON"),
        ('{"name": ', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema_version": 2, "schema_version": 2}', "duplicate key"),
        ('{"schema_version": 2, "name": NaN}', "NaN is not a number"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_text(text: str | bytes, reason: str) -> None:
    assert reason in str(reject(text))


def test_newer_schema_version_refused() -> None:
    data = example_data()
    data["schema_version"] = SCHEMA_VERSION + 1
    data["a_field_of_the_future"] = True
    error = reject(data)
    assert [i.path for i in error.issues] == ["schema_version"]
    assert "newer than this mmapp understands" in str(error)


@pytest.mark.parametrize("version", [None, "2", 0, True])
def test_bad_schema_version(version: object) -> None:
    data = example_data()
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    assert [i.path for i in reject(data).issues] == ["schema_version"]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="not found"):
        load_preset(tmp_path / "nope.mmpreset")


# --- migration ----------------------------------------------------------------
def test_v1_file_migrates() -> None:
    raw = json.loads(V1_FILE.read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1  # the stored file really is version 1
    preset = load_preset(V1_FILE)
    assert preset.schema_version == 3
    assert preset.rig.kind == "simulated" and preset.rig.file is None
    assert preset.rig.camera.width == 64 and preset.rig.camera.exposure_ms == 2.0
    # a v1 name was literal: its braces are escaped, it renders to itself
    assert preset.storage.name_template == "v1 {{legacy}} run"
    when = datetime(2026, 1, 2)
    rendered = render_name(preset.storage.name_template, name="x", when=when)
    assert rendered == "v1 {legacy} run"
    assert preset.devices.config_groups == {"Channel": "488nm"}
    assert preset.display.colormap == "green"
    assert preset.display.contrast_limits == (100, 4000)
    assert isinstance(preset.acquisition, MDAAcquisition)
    sizes = preset.acquisition.sequence.sizes
    assert {k: n for k, n in sizes.items() if n} == {"t": 2, "z": 3}


def test_v1_cfg_rig_and_bad_v1_fields() -> None:
    base = json.loads(V1_FILE.read_text(encoding="utf-8"))
    cfg = {**base, "rig": "C:/rigs/opm.cfg"}
    del cfg["camera"]
    preset = parse_preset(json.dumps(cfg))
    assert preset.rig == ConfigRig(path="C:/rigs/opm.cfg")
    with_camera = {**base, "rig": "opm.cfg"}
    assert "only the simulated rig" in str(reject(with_camera))
    assert [i.path for i in reject({**base, "rig": 3}).issues] == ["rig"]
    bad_name = {**base, "storage": {"name": 5}}
    assert [i.path for i in reject(bad_name).issues] == ["storage.name"]
    # a v1 file's other errors are found after migration, by their field path
    bad_frames = {**base, "display": {"refresh_hz": -1}}
    assert [i.path for i in reject(bad_frames).issues] == ["display.refresh_hz"]


def test_migrated_file_saves_as_current_version(tmp_path: Path) -> None:
    target = save_preset(load_preset(V1_FILE), tmp_path / "v3.mmpreset")
    assert json.loads(target.read_text(encoding="utf-8"))["schema_version"] == 3
    assert load_preset(target) == load_preset(V1_FILE)


# --- recent list --------------------------------------------------------------
def test_recent_presets(tmp_path: Path) -> None:
    recent = RecentPresets(tmp_path / "config", limit=3)
    assert recent.paths() == []
    files = [tmp_path / f"p{i}.mmpreset" for i in range(5)]
    for f in files:
        recent.add(f)
    assert recent.paths() == [files[4], files[3], files[2]]
    recent.add(files[2])
    assert recent.paths() == [files[2], files[4], files[3]]
    assert RecentPresets(tmp_path / "config", limit=3).paths() == recent.paths()
    recent.remove(files[4])
    assert recent.paths() == [files[2], files[3]]
    recent.clear()
    assert recent.paths() == []


def test_recent_presets_damaged_file_reads_empty(tmp_path: Path) -> None:
    recent = RecentPresets(tmp_path)
    recent.file.write_text("{not json", encoding="utf-8")
    assert recent.paths() == []
    recent.add(tmp_path / "a.mmpreset")
    assert recent.paths() == [(tmp_path / "a.mmpreset").resolve()]


def test_recent_presets_config_dir_from_environment(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MMAPP_CONFIG_DIR", str(tmp_path))
    RecentPresets().add(tmp_path / "x.mmpreset")
    assert (tmp_path / RecentPresets.FILE_NAME).is_file()


# --- name templates -----------------------------------------------------------
def test_name_template_placeholders() -> None:
    when = datetime(2026, 11, 22, 5, 6, 7)
    assert render_name("{name}_{date}_{time}", name="OPM a/b", when=when) == (
        "OPM_a_b_20261122_050607"
    )
    assert render_name("{date:%Y-%m}", name="x", when=when) == "2026-11"
    assert render_name("{{x}}", name="x", when=when) == "{x}"


def test_save_refuses_a_preset_that_would_not_load(tmp_path: Path) -> None:
    preset = load_preset(EXAMPLES[0])
    bad = preset.model_copy(update={"name": ""})  # model_copy skips validation
    target = tmp_path / f"p{PRESET_SUFFIX}"
    with pytest.raises(PresetError, match="name"):
        save_preset(bad, target)
    assert not target.exists()


def test_config_dir_is_the_platforms_user_config_folder(monkeypatch) -> None:
    from platformdirs import user_config_dir

    from mmapp.presets import config_dir

    monkeypatch.delenv("MMAPP_CONFIG_DIR", raising=False)
    assert config_dir() == Path(user_config_dir("mmapp", appauthor=False, roaming=True))
    monkeypatch.setenv("MMAPP_CONFIG_DIR", "/somewhere/else")
    assert config_dir() == Path("/somewhere/else")
