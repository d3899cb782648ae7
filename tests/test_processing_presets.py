"""The processing chain in presets: schema 3 and its migration, processors
named (built-ins and installed entry points), never code; `preset validate`
refuses unknown processors and bad params; `mmapp info` shows the link."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import tifffile
from test_preset_cli import PRESETS, mmapp

from mmapp.presets import PRESET_SUFFIX, PresetError, parse_preset
from mmapp.processing import (
    ProcessingChain,
    UnknownProcessorError,
    available_processors,
    build_stages,
    check_params,
    registry,
)
from mmapp.processing.registry import ProcessorContext


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    """Pretend the package `processing_plugin` is installed with processors."""
    points = [
        EntryPoint("invert", "processing_plugin:invert", registry.ENTRY_POINT_GROUP),
        EntryPoint("scaled", "processing_plugin:scaled", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "processing_plugin:missing", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    registry.refresh()
    yield
    registry.refresh()


def v2_data(processing: object) -> dict:
    data = json.loads((PRESETS / f"loop_until_stop{PRESET_SUFFIX}").read_text())
    data["schema_version"] = 2
    data["processing"] = processing
    return data


def test_v2_empty_processing_migrates_to_the_empty_chain() -> None:
    preset = parse_preset(json.dumps(v2_data([])))
    assert preset.schema_version == 3
    assert preset.processing == ProcessingChain()
    assert not preset.processing.active


def test_v2_with_processing_steps_is_refused() -> None:
    with pytest.raises(PresetError) as info:
        parse_preset(json.dumps(v2_data([{"kind": "deskew"}])))
    assert [i.path for i in info.value.issues] == ["processing"]
    assert "schema version 2 allows only an empty list" in str(info.value)


def test_the_bundled_deskew_preset_names_its_chain() -> None:
    preset = parse_preset((PRESETS / f"opm_deskew_daq{PRESET_SUFFIX}").read_text())
    assert [s.name for s in preset.processing.steps] == ["background", "deskew", "mip"]
    assert preset.processing.steps[0].params == {"value": 100}
    assert preset.program is not None and preset.rig.camera.width == 256


def test_a_chain_that_saves_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing would be saved"):
        ProcessingChain(save_raw=False)


def test_installed_processors_are_named_not_imported_by_path(installed) -> None:
    infos = {i.name: i for i in available_processors()}
    assert {"background", "bin", "deskew", "mip", "invert", "scaled"} <= set(infos)
    assert infos["scaled"].param_schema["properties"]["divisor"]["minimum"] == 1
    assert infos["invert"].description == "Invert 16-bit pixels."
    assert "cannot be loaded" in (infos["broken"].error or "")
    assert infos["bin"].source == "built-in" and infos["bin"].thread_safe
    chain = ProcessingChain(
        steps=[{"name": "invert"}, {"name": "scaled", "params": {"divisor": 4}}]
    )
    stages = build_stages(chain, ProcessorContext())
    img = np.full((2, 3), 65535 - 400, np.uint16)
    for stage in stages:
        img, _ = stage.call({}, img, {})
    np.testing.assert_array_equal(img, np.full((2, 3), 100, np.uint16))
    assert stages[0].turnstile is not None  # a plain function runs serialised
    assert stages[1].turnstile is None  # declared thread-safe
    with pytest.raises(ValueError, match="divisor: Input should be greater"):
        check_params("scaled", {"divisor": 0})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        check_params("invert", {"x": 1})


def test_unknown_processor_lists_the_known_ones(installed) -> None:
    with pytest.raises(UnknownProcessorError) as info:
        check_params("flatfield", {})
    assert str(info.value).startswith(
        "unknown processor 'flatfield'; known processors: background, bin, "
        "broken, deskew, invert, mip, scaled"
    )


def test_background_from_a_dark_frame_file(tmp_path: Path) -> None:
    dark = np.arange(12, dtype=np.uint16).reshape(3, 4) * 10
    tifffile.imwrite(tmp_path / "dark.tif", dark)
    chain = ProcessingChain(
        steps=[
            {"name": "background", "params": {"dark_frame": str(tmp_path / "dark.tif")}}
        ]
    )
    (stage,) = build_stages(chain, ProcessorContext())
    img = np.full((3, 4), 50, np.uint16)
    out, _ = stage.call({}, img, {})
    np.testing.assert_array_equal(out, np.clip(50 - dark.astype(int), 0, None))
    missing = ProcessingChain(
        steps=[{"name": "background", "params": {"dark_frame": str(tmp_path / "x")}}]
    )
    with pytest.raises(ValueError, match="cannot read the dark frame"):
        build_stages(missing, ProcessorContext())
    with pytest.raises(ValueError, match="exactly one of value or dark_frame"):
        check_params("background", {"value": 1, "dark_frame": "d.tif"})


def test_validate_refuses_unknown_processors_and_bad_params(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    data = json.loads((PRESETS / f"loop_until_stop{PRESET_SUFFIX}").read_text())
    for steps, reason in (
        ([{"name": "flatfield"}], "unknown processor 'flatfield'; known processors"),
        (
            [{"name": "bin", "params": {"factor": "big"}}],
            "processor 'bin': bad params: factor: Input should be a valid integer",
        ),
    ):
        data["processing"] = {"steps": steps}
        bad = tmp / f"bad{PRESET_SUFFIX}"
        bad.write_text(json.dumps(data), encoding="utf-8")
        code, out, err = mmapp(capsys, "preset", "validate", bad)
        assert code == 2 and out == ""
        head, issue = err.rstrip("\n").split("\n")  # one message, one issue
        assert head == f"mmapp: error: bad preset {bad}:"
        assert issue.startswith(f"  processing.steps[0]: {reason}"), issue


def test_validate_refuses_deskew_without_a_program(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    data = json.loads((PRESETS / f"loop_until_stop{PRESET_SUFFIX}").read_text())
    data["processing"] = {"steps": [{"name": "deskew"}]}
    data["storage"]["directory"] = str(tmp)
    path = tmp / f"deskew{PRESET_SUFFIX}"
    path.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = mmapp(capsys, "preset", "validate", path)
    assert code == 2
    assert "processing: deskew needs the DAQ waveform program" in err


def test_acquire_and_info_show_the_processed_dataset(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    data = json.loads((PRESETS / f"stream_1000_frames{PRESET_SUFFIX}").read_text())
    data["processing"] = {"steps": [{"name": "background", "params": {"value": 10}}]}
    path = tmp / f"bg{PRESET_SUFFIX}"
    path.write_text(json.dumps(data), encoding="utf-8")
    out_dir = tmp / "out"
    args = ["--out", out_dir, "--size", "32", "--exposure", "1", "--frames", "20"]
    code, out, err = mmapp(capsys, "acquire", path, *args)
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert "processing: 20 frames in, 20 processed images saved (in" in last
    assert "| processed" in out  # the progress line
    (raw,) = [p for p in out_dir.iterdir() if not p.name.endswith("_processed")]
    processed = out_dir / f"{raw.name}_processed"
    code, out, _ = mmapp(capsys, "info", raw)
    assert code == 0 and f"processed dataset: {processed}" in out
    code, out, _ = mmapp(capsys, "info", processed, "--json")
    info = json.loads(out.strip().splitlines()[-1])
    assert info["raw_dataset"] == str(raw) and info["images"] == 20
    assert info["run"]["processing"]["outputs_written"] == 20
