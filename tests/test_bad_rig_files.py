"""Bad rig files and .cfg lines: a RigError naming what is wrong, never a
traceback, never code run from a .cfg (issue 15: 11, 13, 14)."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmapp.resources import default_rig_file, resources_dir
from mmapp.rig import RigError, load_rig
from mmapp.rig.buffer import buffer_size_problem, physical_memory_mb
from mmapp.rig.spec import RigSpec, read_rig_spec

BUNDLED = json.loads(default_rig_file().read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: Any, name: str = "rig.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _with(path: tuple, value: Any) -> dict:
    doc = copy.deepcopy(BUNDLED)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("camera", "width"), True, "camera.width"),
        (("camera", "height"), 2.0, "camera.height"),
        (("lasers", "wavelengths_nm"), [488, 0], "lasers.wavelengths_nm[1]"),
        (("lasers", "wavelengths_nm"), [-1], "lasers.wavelengths_nm[0]"),
        (("lasers", "wavelengths_nm"), [488, 488], "wavelengths_nm repeat"),
        (("camera", "exposure_ms"), 1e300, "camera.exposure_ms"),
        (("shutter", "label"), "Camera", "two devices share the label 'Camera'"),
        (("python_device_modules",), ["../evil"], "python_device_modules[0]"),
    ],
)
def test_bad_field_is_named(
    tmp_path: Path, path: tuple, value: Any, named: str
) -> None:
    bad = _write(tmp_path, _with(path, value))
    with pytest.raises(RigError, match="rig file") as info:
        read_rig_spec(bad)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"camera": {"exposure_ms": Infinity}}', "Infinity is not a number"),
        ('{"camera": {"exposure_ms": NaN}}', "NaN is not a number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[1, 2]", "must hold a JSON object, not list"),
        ("{", "is not valid JSON"),
    ],
)
def test_unusable_json_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(RigError, match=reason):
        read_rig_spec(_write(tmp_path, text))


def test_random_bytes_and_huge_files_are_refused(tmp_path: Path) -> None:
    noise = tmp_path / "noise.json"
    noise.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(RigError, match="not UTF-8 text"):
        read_rig_spec(noise)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: no disk used
        f.truncate(11 * 1024 * 1024)
    with pytest.raises(RigError, match="larger than 10 MB"):
        read_rig_spec(huge)


def test_a_buffer_larger_than_the_ram_is_refused_before_allocating(
    tmp_path: Path,
) -> None:
    total = physical_memory_mb()
    assert total is not None and total > 0  # Linux and Windows both tell
    assert buffer_size_problem(1024, total_mb=16384) is None
    problem = buffer_size_problem(65536, total_mb=16384)
    assert problem == (
        "circular_buffer_mb 65536 MB is more than this PC can give the camera "
        "(9830 MB: 60% of its 16384 MB of RAM)"
    )
    too_big = min(65536, total)  # over 60 % of this PC (the field allows 65536)
    bad = _write(tmp_path, _with(("circular_buffer_mb",), too_big))
    with pytest.raises(RigError, match=f"circular_buffer_mb {too_big} MB is more"):
        load_rig(bad, width=64, height=48)


def test_cfg_cannot_import_python_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil_device.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\nclass Cam: pass\n"
    )
    cfg = _write(tmp_path, "Device,Cam,evil_device,Cam\n", "rig.cfg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")  # as `python -c` / an interactive shell has
    with pytest.raises(RigError) as info:
        load_rig(cfg)
    assert not marker.exists()
    assert "evil_device" not in sys.modules
    message = str(info.value)
    assert "line 1 ('Device,Cam,evil_device,Cam')" in message
    assert "modules the rig file lists in python_device_modules" in message


def test_cfg_loads_python_devices_the_rig_file_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "site" / "lab_devices"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from pymmcore_plus.experimental.unicore import StateDevice\n"
        "class Wheel(StateDevice):\n"
        "    def __init__(self):\n"
        "        super().__init__({0: 'a', 1: 'b'})\n"
        "    def get_state(self): return 0\n"
        "    def set_state(self, position): pass\n"
    )
    monkeypatch.syspath_prepend(str(pkg.parent))  # an installed package
    cfg = _write(tmp_path, "Device,Wheel,lab_devices,Wheel\n", "lab.cfg")
    refused = _write(tmp_path, {"mm_config": str(cfg)}, "refused.json")
    with pytest.raises(RigError, match="python_device_modules"):
        load_rig(refused)
    allowed = _write(
        tmp_path,
        {"mm_config": str(cfg), "python_device_modules": ["lab_devices"]},
        "allowed.json",
    )
    rig = load_rig(allowed)
    try:
        assert "Wheel" in rig.core.getLoadedDevices()
    finally:
        rig.close()


# --- fuzz: mutations of the bundled rig file --------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e308, 65536, "", "Camera", "Dev1/ao0", [], {}]),
    st.text(max_size=10),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found: list[tuple] = []
    items = node.items() if isinstance(node, dict) else ()
    if isinstance(node, list):
        items = enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


PATHS = _paths(BUNDLED)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.sampled_from(PATHS), scalars), min_size=1, max_size=3))
def test_fuzzed_rig_files_are_refused_or_valid(
    tmp_path: Path, changes: list[tuple[tuple, Any]]
) -> None:
    doc = copy.deepcopy(BUNDLED)
    for path, value in changes:
        node: Any = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    bad = tmp_path / f"fuzz-{os.getpid()}.json"
    bad.write_text(json.dumps(doc))
    try:
        spec = read_rig_spec(bad)
    except RigError as exc:
        assert str(exc).startswith(f"rig file {bad}")
        assert len(str(exc)) < 5000
        return
    assert isinstance(spec, RigSpec)
    assert spec.camera.width >= 1 and not isinstance(spec.camera.width, bool)


DEVICE_PATHS = [p for p in PATHS if p[0] in ("camera", "lasers", "shutter", "z_stage")]


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.tuples(st.sampled_from(DEVICE_PATHS), scalars))
def test_fuzzed_rig_files_that_validate_also_load(
    tmp_path: Path, change: tuple[tuple, Any]
) -> None:
    """What validates must load (or be refused with a RigError), not crash."""
    path, value = change
    doc = copy.deepcopy(BUNDLED)
    doc["camera"].update(width=32, height=24)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    bad = tmp_path / f"fuzz-load-{os.getpid()}.json"
    bad.write_text(json.dumps(doc))
    try:
        rig = load_rig(bad)
    except RigError as exc:
        assert str(exc)
        return
    try:
        assert rig.core.getImageWidth() * rig.core.getImageHeight() <= 2048 * 2048
    finally:
        rig.close()


def test_a_preset_camera_width_of_true_is_refused() -> None:
    """`"width": true` was taken as width 1 (issue 15: 14)."""
    from mmapp.presets import PresetError
    from mmapp.presets.io import parse_preset

    text = (resources_dir() / "presets" / "stream_1000_frames.mmpreset").read_text()
    doc = json.loads(text)
    doc["rig"]["camera"]["width"] = True
    with pytest.raises(PresetError, match=r"rig\.camera\.width"):
        parse_preset(json.dumps(doc), "p.mmpreset")
