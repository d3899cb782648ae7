"""A non-editable install ships everything the app needs, and runs outside the
source tree: the default rig, the example presets and the icon are package
data, found through importlib.resources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from helpers import open_dataset

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # every folder holding Python (a folder without __init__.py is a namespace
    # package, which an explicit list misses just the same)
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "mmapp").rglob("*.py")
    }
    missing_init = [
        name
        for name in found
        if not (ROOT / name.replace(".", "/") / "__init__.py").is_file()
    ]
    assert missing_init == []
    assert set(config["packages"]) == found | {"mmapp._assets"}
    assert config["package-dir"] == {"mmapp._assets": "resources"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """mmapp built as a wheel from a copy of the tree and installed into a
    folder of its own (its dependencies are the test environment's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "screenshots")
    for name in ("mmapp", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp.glob("mmapp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for asset in (
        "mmapp/_assets/rigs/simulated.json",
        "mmapp/_assets/presets/stream_1000_frames.mmpreset",
        "mmapp/_assets/icons/mmapp.png",
    ):
        assert asset in names
    assert not [n for n in names if "screenshots" in n]
    site = tmp / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    yield site
    shutil.rmtree(tmp, ignore_errors=True)


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "QT_QPA_PLATFORM": "offscreen"}
    env["MMAPP_CONFIG_DIR"] = str(cwd / "config")
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_installed_app_finds_its_assets_outside_the_source_tree(installed, tmp):
    proc = _run_installed(
        installed,
        tmp,
        "-c",
        "import mmapp, mmapp.resources as r; print(mmapp.__file__); "
        "print(r.default_rig_file()); print(r.example_presets_dir())",
    )
    assert proc.returncode == 0, proc.stderr
    module, rig, presets = proc.stdout.split()
    assert Path(module).is_relative_to(installed)  # not the source tree
    assert Path(rig).is_file() and Path(rig).is_relative_to(installed)
    assert (Path(presets) / "stream_1000_frames.mmpreset").is_file()


def test_the_installed_app_acquires_a_bundled_preset(installed, tmp):
    preset = installed / "mmapp/_assets/presets/stream_1000_frames.mmpreset"
    proc = _run_installed(
        installed,
        tmp,
        "-m",
        "mmapp",
        "acquire",
        str(preset),
        "--frames",
        "20",
        "--size",
        "64",
        "--out",
        str(tmp / "data"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "completed: 20 frames acquired, 20 saved, 0 lost" in proc.stdout
    (dataset,) = (tmp / "data").iterdir()
    ds = open_dataset(dataset)
    try:
        assert len(ds.get_image_coordinates_list()) == 20
    finally:
        ds.close()


def test_the_installed_app_passes_its_selftest(installed, tmp):
    proc = _run_installed(installed, tmp, "-m", "mmapp", "--selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mmapp selftest: ok" in proc.stdout
