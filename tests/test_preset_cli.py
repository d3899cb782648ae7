"""`mmapp acquire PRESET`, `mmapp preset validate`, `mmapp preset from-dataset`:
every example runs on the simulated rig, datasets carry their preset, and a
preset recreated from a dataset acquires the same data again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import open_dataset
from helpers import run_mmapp as mmapp_process

from mmapp.cli import main
from mmapp.engine.preset_run import RunRefusedError, check_run
from mmapp.presets import PRESET_SUFFIX, Preset, load_preset, save_preset
from mmapp.presets.overrides import Overrides, apply_overrides
from mmapp.resources import default_rig_file, resources_dir
from mmapp.rig import Rig, read_rig_spec
from mmapp.sim.frames import read_stamp

PRESETS = resources_dir() / "presets"
SMALL = ["--size", "32", "--exposure", "1"]
# loop-until-stop examples run for a short while; the others as they are
RUN_ARGS = {
    "stream_1000_frames": [],
    "mda_z_stack": [],
    "loop_until_stop": ["--duration", "0.3"],
    "opm_volume_daq": ["--duration", "0.3"],
    "opm_deskew_daq": ["--duration", "0.3"],
}


def mmapp(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run `mmapp ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def dataset_contents(path: Path) -> tuple[dict, dict, list]:
    """(summary metadata, axes, [(coords, image, metadata)] sorted by coords)."""
    ds = open_dataset(path)
    try:
        coords = sorted(
            ds.get_image_coordinates_list(), key=lambda c: sorted(c.items())
        )
        images = [
            (c, np.array(ds.read_image(**c)), ds.read_metadata(**c)) for c in coords
        ]
        axes = {k: sorted(v) for k, v in ds.axes.items()}
        return dict(ds.summary_metadata), axes, images
    finally:
        ds.close()


def test_run_args_cover_every_example() -> None:
    assert sorted(RUN_ARGS) == sorted(p.stem for p in PRESETS.glob(f"*{PRESET_SUFFIX}"))


@pytest.mark.parametrize("stem", sorted(RUN_ARGS))
def test_every_example_runs_on_the_simulated_rig(
    stem: str, tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    if stem == "opm_deskew_daq":
        pytest.importorskip("mmapp.processing.kernels")
    path = PRESETS / f"{stem}{PRESET_SUFFIX}"
    args = [path, "--out", tmp, *SMALL, *RUN_ARGS[stem], "--json"]
    code, out, err = mmapp(capsys, "acquire", *args)
    assert code == 0, err
    result = last_json(out)
    assert result["outcome"] == "completed", result
    assert result["frames_lost"] == 0 and result["frames_saved"] > 0
    dataset = Path(result["dataset"])
    summary, axes, images = dataset_contents(dataset)
    assert len(images) == result["frames_saved"]
    assert all(img.shape == (32, 32) and img.dtype == np.uint16 for _, img, _ in images)

    # the dataset carries the preset it was acquired with: the file's, with
    # the command line's overrides applied
    expected = apply_overrides(
        load_preset(path),
        Overrides(
            out=tmp,
            size=32,
            exposure_ms=1.0,
            duration_s=0.3 if RUN_ARGS[stem] else None,
        ),
    )
    stored = Preset.model_validate(summary["mmapp"]["preset"])
    assert stored == expected
    assert stored.program == load_preset(path).program
    assert summary["mmapp"]["preset_file"] == str(path)
    assert load_preset(dataset / "preset.mmpreset") == expected

    if stem == "stream_1000_frames":
        assert len(images) == 1000 and axes == {"time": list(range(1000))}
        assert [read_stamp(img) for _, img, _ in images] == list(range(1000))
    if stem == "mda_z_stack":
        assert axes == {"channel": ["488nm", "561nm"], "z": list(range(11))}
    if stem == "opm_deskew_daq":  # raw volumes and their projections, linked
        processed = Path(result["processed_dataset"])
        assert processed.name == dataset.name + "_processed"
        assert summary["mmapp"]["processed_dataset"] == processed.name
        p_summary, p_axes, p_images = dataset_contents(processed)
        assert p_summary["mmapp"]["raw_dataset"] == dataset.name
        assert p_images and "z" not in p_axes
        assert len(p_images) == result["processing"]["outputs_written"]
    if stem == "opm_volume_daq":  # the DAQ played the program: volumes in z
        assert summary["mmapp"]["daq_program"] == summary["mmapp"]["preset"]["program"]
        assert axes["z"] == list(range(50))
        frames = {tuple(sorted(c.items())): img for c, img, _ in images}
        a, b = frames[(("time", 0), ("z", 0))], frames[(("time", 0), ("z", 49))]
        assert not np.array_equal(a[1:], b[1:])  # different galvo positions


def test_from_dataset_rerun_gives_an_equivalent_acquisition(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp / f"z{PRESET_SUFFIX}"
    preset = apply_overrides(
        load_preset(PRESETS / f"mda_z_stack{PRESET_SUFFIX}"),
        Overrides(out=tmp / "first", size=32, exposure_ms=1.0, z_range_um=4),
    )
    save_preset(preset, source)
    code, out, err = mmapp(capsys, "acquire", source, "--json")
    assert code == 0, err
    first = Path(last_json(out)["dataset"])

    recreated = tmp / f"recreated{PRESET_SUFFIX}"
    code, out, err = mmapp(capsys, "preset", "from-dataset", first, "-o", recreated)
    assert code == 0, err
    assert load_preset(recreated) == preset
    assert recreated.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")

    code, out, err = mmapp(
        capsys, "acquire", recreated, "--out", tmp / "second", "--json"
    )
    assert code == 0, err
    second = Path(last_json(out)["dataset"])
    assert first.name == second.name  # same template, same day

    summary_a, axes_a, images_a = dataset_contents(first)
    summary_b, axes_b, images_b = dataset_contents(second)
    assert axes_a == axes_b == {"channel": ["488nm", "561nm"], "z": list(range(5))}
    assert len(images_a) == len(images_b) == 10
    for (ca, ia, ma), (cb, ib, mb) in zip(images_a, images_b, strict=True):
        assert ca == cb
        np.testing.assert_array_equal(ia, ib)  # the simulation is deterministic
        assert ma["Axes"] == mb["Axes"]
        assert ma["z_um"] == mb["z_um"] and ma["channel"] == mb["channel"]
    a, b = summary_a["mmapp"]["preset"], summary_b["mmapp"]["preset"]
    assert a.pop("storage")["directory"] != b.pop("storage")["directory"]
    assert a == b


def test_from_dataset_prints_json(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = mmapp(
        capsys, "acquire", "--out", tmp, "--frames", "3", *SMALL, "--json"
    )
    assert code == 0, err
    dataset = Path(last_json(out)["dataset"])
    code, out, err = mmapp(capsys, "preset", "from-dataset", dataset)
    assert code == 0, err
    preset = Preset.model_validate_json(out)
    # options alone make a preset too: every dataset can be re-run
    assert preset.acquisition.frames == 3 and preset.rig.camera.width == 32
    code, out, err = mmapp(capsys, "info", dataset)
    assert code == 0, err
    assert "preset: 'acquisition' (schema version 3; mmapp preset from-dataset" in out
    assert "\n  frames: 3\n" in out and '"preset"' not in out


def test_from_dataset_of_something_else(tmp: Path, capsys) -> None:
    code, _, err = mmapp(capsys, "preset", "from-dataset", tmp)
    assert code == 2
    assert "not an NDTiff dataset" in err


def test_validate(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    good = PRESETS / f"mda_z_stack{PRESET_SUFFIX}"
    code, out, err = mmapp(capsys, "preset", "validate", good)
    assert code == 0 and f"{good}: OK ('z stack', schema version 3)" in out, err
    bad = tmp / f"bad{PRESET_SUFFIX}"
    data = json.loads(good.read_text(encoding="utf-8"))
    data["acquisition"]["sequence"]["z_plan"]["step"] = "fine"
    data["display"]["colormap"] = "rainbow"
    bad.write_text(json.dumps(data), encoding="utf-8")
    code, out, err = mmapp(capsys, "preset", "validate", good, bad)
    assert code == 2
    assert f"bad preset {bad}:" in err
    assert "acquisition.sequence.z_plan.step: " in err
    assert "display.colormap: Input should be 'gray'" in err


def test_bad_preset_starts_nothing(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp / f"bad{PRESET_SUFFIX}"
    data = json.loads((PRESETS / f"loop_until_stop{PRESET_SUFFIX}").read_text())
    data["storage"]["if_exists"] = "overwrite"
    bad.write_text(json.dumps(data), encoding="utf-8")
    out_dir = tmp / "out"
    code, _, err = mmapp(capsys, "acquire", bad, "--out", out_dir, "--frames", "2")
    assert code == 2
    assert "storage.if_exists: Input should be 'increment' or 'error'" in err
    assert not out_dir.exists()


def test_bad_device_setting_starts_nothing(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    preset = load_preset(PRESETS / f"stream_1000_frames{PRESET_SUFFIX}")
    data = preset.model_dump(mode="json")
    data["devices"]["properties"][0]["value"] = 250.0
    bad = tmp / f"bad{PRESET_SUFFIX}"
    bad.write_text(json.dumps(data), encoding="utf-8")
    out_dir = tmp / "out"
    code, _, err = mmapp(capsys, "acquire", bad, "--out", out_dir, *SMALL)
    assert code == 2
    assert "devices.properties[0]: 250.0 is outside [0, 100]" in err
    assert not out_dir.exists()


def test_overrides_on_the_command_line(tmp: Path, capsys) -> None:
    loop = PRESETS / f"loop_until_stop{PRESET_SUFFIX}"
    args = ["--out", tmp, *SMALL, "--frames", "6", "--name", "{name}-x", "--json"]
    code, out, err = mmapp(capsys, "acquire", loop, *args)
    assert code == 0, err
    result = last_json(out)
    assert result["frames_saved"] == 6
    assert Path(result["dataset"]) == tmp / "loop_until_stop-x_1"
    code, out, err = mmapp(capsys, "acquire", loop, *args, "--if-exists", "error")
    assert code == 2
    assert "a dataset named 'loop_until_stop-x' is already in" in err
    assert sorted(p.name for p in tmp.iterdir()) == ["loop_until_stop-x_1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "3", "--loop"], "choose --frames N or --loop"),
        (["--timepoints", "2"], "cannot be combined"),
        (["--name", "{user}"], "storage.name_template: unknown placeholder {user}"),
        (["--rig", "nowhere.json"], "rig file not found"),
    ],
)
def test_bad_overrides_exit_2(
    tmp: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    loop = PRESETS / f"loop_until_stop{PRESET_SUFFIX}"
    extra = [] if "--loop" in args or "--timepoints" in args else ["--frames", "2"]
    if "--timepoints" in args:
        extra = ["--frames", "2"]
    code, _, err = mmapp(capsys, "acquire", loop, "--out", tmp, *args, *extra)
    assert code == 2
    assert message in err
    assert not any(tmp.iterdir())


def test_missing_preset_file(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = mmapp(capsys, "acquire", tmp / "nope.mmpreset")
    assert code == 2 and "nope.mmpreset:" in err and "not found" in err


def test_acquire_preset_as_the_operator_runs_it(tmp: Path) -> None:
    """A real process: the example preset, overrides, exit code and dataset."""
    preset = PRESETS / f"stream_1000_frames{PRESET_SUFFIX}"
    proc = mmapp_process(
        "acquire", str(preset), "--out", str(tmp), "--frames", "20", *SMALL
    )
    assert proc.returncode == 0, proc.stderr
    assert "mmapp: completed: 20 frames acquired, 20 saved, 0 lost" in proc.stdout
    bad = mmapp_process("preset", "validate", str(tmp / "missing.mmpreset"))
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_missing_micro_manager_config_starts_nothing(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    loop = PRESETS / f"loop_until_stop{PRESET_SUFFIX}"
    cfg = tmp / "rig.cfg"
    code, _, err = mmapp(
        capsys, "acquire", loop, "--out", tmp / "out", "--rig", cfg, "--frames", "2"
    )
    assert code == 2
    assert f"Micro-Manager config not found: {cfg}" in err
    assert not (tmp / "out").exists()


# --- the DAQ: a preset's program plays; --daq and --volumes ----------------
def test_preset_program_plays_whole_volumes(tmp: Path, capsys) -> None:
    opm = PRESETS / f"opm_volume_daq{PRESET_SUFFIX}"
    args = ["--out", tmp, "--size", "32", "--volumes", "2", "--json"]
    code, out, err = mmapp(capsys, "acquire", opm, *args)
    assert code == 0, err
    result = last_json(out)
    assert result["frames_saved"] == 100  # 50 positions x 2 volumes
    _, axes, _ = dataset_contents(Path(result["dataset"]))
    assert axes == {"time": [0, 1], "z": list(range(50))}


def test_daq_takes_the_rig_programme_when_the_preset_has_none(
    tmp: Path, capsys
) -> None:
    stream = PRESETS / f"stream_1000_frames{PRESET_SUFFIX}"
    code, _, err = mmapp(capsys, "acquire", stream, "--out", tmp, "--volumes", "1")
    assert code == 2 and "--volumes goes with --daq" in err
    args = ["--out", tmp, "--size", "32", "--daq", "--volumes", "1", "--json"]
    code, out, err = mmapp(capsys, "acquire", stream, *args)
    assert code == 0, out + err
    dataset = Path(last_json(out)["dataset"])
    summary, _, images = dataset_contents(dataset)
    assert len(images) == 50
    rig_program = read_rig_spec(default_rig_file()).program
    assert Preset.model_validate(summary["mmapp"]["preset"]).program == rig_program


def test_program_on_a_rig_without_daq_starts_nothing(tmp: Path, capsys) -> None:
    spec = read_rig_spec(default_rig_file())
    rig = tmp / "no_daq.json"
    rig.write_text(
        spec.model_copy(update={"daq": None, "program": None}).model_dump_json(),
        encoding="utf-8",
    )
    opm = PRESETS / f"opm_volume_daq{PRESET_SUFFIX}"
    out_dir = tmp / "out"
    args = ["--out", out_dir, "--rig", rig, "--size", "32", "--volumes", "1"]
    code, _, err = mmapp(capsys, "acquire", opm, *args)
    assert code == 2
    assert "the preset has a waveform program but the rig" in err
    assert "has no DAQ" in err
    assert not out_dir.exists()


def test_daq_with_a_micro_manager_rig_has_no_rig_programme(tmp: Path, capsys) -> None:
    preset = apply_overrides(
        load_preset(PRESETS / f"stream_1000_frames{PRESET_SUFFIX}"),
        Overrides(rig=tmp / "opm.cfg"),
    )
    path = save_preset(preset, tmp / f"cfg{PRESET_SUFFIX}")
    code, _, err = mmapp(capsys, "acquire", path, "--out", tmp / "out", "--daq")
    assert code == 2
    assert "--daq: the rig file has no 'daq' section or no 'program'" in err
    assert not (tmp / "out").exists()


# --- acquire and validate refuse the same things, before anything starts -----
def _opm_with(tmp: Path, change) -> Path:
    """The OPM example with `change(data)` applied, saved as a file in tmp."""
    data = json.loads((PRESETS / f"opm_volume_daq{PRESET_SUFFIX}").read_text())
    data["rig"]["camera"].update(width=32, height=32)
    data["storage"]["directory"] = str(tmp / "data")
    change(data)
    path = tmp / f"changed{PRESET_SUFFIX}"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _no_daq_rig(tmp: Path) -> Path:
    spec = read_rig_spec(default_rig_file())
    rig = tmp / "no_daq.json"
    rig.write_text(
        spec.model_copy(update={"daq": None, "program": None}).model_dump_json(),
        encoding="utf-8",
    )
    return rig


def _set_rig_file(data: dict, path: Path) -> None:
    data["rig"]["file"] = str(path)


def _bad_rig_file(tmp: Path) -> Path:
    bad = tmp / "bad_rig.json"
    bad.write_text(json.dumps({"camera": {"bogus": 1}}), encoding="utf-8")
    return bad


def _garbage_cfg(tmp: Path) -> Path:
    cfg = tmp / "scope.cfg"
    cfg.write_text("garbage line here\n", encoding="utf-8")
    return cfg


REFUSED = {
    "zero exposure": (
        lambda tmp, d: d["acquisition"].update(exposure_ms=0),
        lambda tmp: "acquisition.exposure_ms: Input should be greater than 0",
    ),
    "channel not on the card": (
        lambda tmp, d: d["program"]["analog"][0].update(physical_channel="Dev2/ao0"),
        lambda tmp: (
            "waveform program: analog[0].physical_channel: 'Dev2/ao0' is "
            "not on the rig's DAQ device 'Dev1'"
        ),
    ),
    "laser line not on the card": (
        lambda tmp, d: d["program"]["lasers"][0].update(
            physical_line="Dev3/port0/line1"
        ),
        lambda tmp: (
            "waveform program: lasers[0].physical_line: 'Dev3/port0/line1' "
            "is not on the rig's DAQ device 'Dev1'"
        ),
    ),
    "program on a rig without DAQ": (
        lambda tmp, d: _set_rig_file(d, _no_daq_rig(tmp)),
        lambda tmp: (
            "the preset has a waveform program but the rig 'Simulated OPM rig' "
            "has no DAQ (a 'daq' section in its rig file)"
        ),
    ),
    "frames that are not whole volumes": (
        lambda tmp, d: d["acquisition"].update(frames=70),
        lambda tmp: (
            "the DAQ program gives 50 frames per cycle; 70 frames is not a "
            "whole number of cycles"
        ),
    ),
    "missing rig file": (
        lambda tmp, d: _set_rig_file(d, tmp / "nowhere.json"),
        lambda tmp: f"rig file not found: {tmp / 'nowhere.json'}",
    ),
    "invalid rig file": (
        lambda tmp, d: _set_rig_file(d, _bad_rig_file(tmp)),
        lambda tmp: f"rig file {tmp / 'bad_rig.json'}: camera.bogus: unknown field",
    ),
    "garbage .cfg": (
        lambda tmp, d: d.update(
            rig={"kind": "mm_config", "path": str(_garbage_cfg(tmp))}, program=None
        ),
        lambda tmp: (
            f"Micro-Manager config {tmp / 'scope.cfg'} failed to load at line 1 "
            "('garbage line here'): unknown command 'garbage line here'"
        ),
    ),
    "save directory is a file": (
        lambda tmp, d: d["storage"].update(directory=str(tmp / "changed.mmpreset")),
        lambda tmp: (
            f"cannot save in {tmp / 'changed.mmpreset'}: it is a file, not a folder"
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_validate_refuses_what_acquire_refuses(
    tmp: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    """One check for both (prepare_run): the same message, exit 2, nothing
    created; validate no longer calls these presets OK."""
    change, message = REFUSED[case]
    path = _opm_with(tmp, lambda d: change(tmp, d))
    expected = message(tmp)
    code, out, err = mmapp(capsys, "preset", "validate", path)
    assert code == 2, out + err
    assert "OK" not in out
    if case == "zero exposure":  # the model refuses it: a bad preset
        assert err == f"mmapp: error: bad preset {path}:\n  {expected}\n"
    else:
        assert err == f"mmapp: error: {path}: {expected}\n"
    frames = {
        "frames that are not whole volumes": [],
        "garbage .cfg": ["--frames", "2"],
    }
    frames = frames.get(case, ["--volumes", "1"])
    code, out, err = mmapp(capsys, "acquire", path, *frames)
    assert code == 2, out + err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == (2 if case == "zero exposure" else 1)
    assert not (tmp / "data").exists()


def test_validate_checks_the_rig_and_the_program(
    tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    good = _opm_with(tmp, lambda d: None)
    code, out, err = mmapp(capsys, "preset", "validate", good)
    assert code == 0, err
    assert out == f"{good}: OK ('OPM volume (DAQ)', schema version 3)\n"
    assert not (tmp / "data").exists()  # validate creates nothing


def test_exposure_outside_the_camera_limits_is_refused(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real camera's Exposure property has limits (DemoCamera: 0 to 10000 ms)."""
    core = rig.core
    monkeypatch.setattr(core, "hasPropertyLimits", lambda dev, prop: True)
    monkeypatch.setattr(core, "getPropertyLowerLimit", lambda dev, prop: 0.0)
    monkeypatch.setattr(core, "getPropertyUpperLimit", lambda dev, prop: 10000.0)
    preset = apply_overrides(None, Overrides(out=Path("x"), frames=3, exposure_ms=2e4))
    with pytest.raises(RunRefusedError) as info:
        check_run(preset, rig)
    assert str(info.value) == (
        "rig.camera.exposure_ms: 20000 ms is outside the exposures the camera "
        "'Camera' takes (0 to 10000 ms); acquisition.exposure_ms: 20000 ms is "
        "outside the exposures the camera 'Camera' takes (0 to 10000 ms)"
    )
    check_run(apply_overrides(preset, Overrides(exposure_ms=5.0)), rig)


def test_zero_exposure_on_the_command_line(tmp: Path) -> None:
    proc = mmapp_process(
        "acquire", "--out", str(tmp / "out"), "--frames", "2", "--exposure", "0"
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "mmapp acquire: error: argument --exposure: '0' is not a positive number"
    )
    assert not (tmp / "out").exists()
