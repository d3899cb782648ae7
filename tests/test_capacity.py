"""Disk space and data rate before the start (issue 15: 6, 7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmapp.daq.render import render
from mmapp.engine.capacity import (
    MB,
    Plan,
    check_capacity,
    disk_speed,
    mount_point,
    plan_for,
    reserve_bytes,
)
from mmapp.engine.preset_run import RunRefusedError, prepare_run
from mmapp.presets import load_preset
from mmapp.resources import resources_dir

OPM = resources_dir() / "presets" / "opm_volume_daq.mmpreset"
GiB = 1024**3


def test_a_finite_run_larger_than_the_free_space_is_refused(tmp_path: Path) -> None:
    plan = Plan(frame_bytes=8 * MB, frames_per_s=100.0, frames=1000)
    problems, notes = check_capacity(
        plan,
        tmp_path,
        buffer_bytes=GiB,
        queue_bytes=GiB // 2,
        disk_bytes_per_s=2000 * MB,
        free_bytes=4 * MB,
    )
    reserve = reserve_bytes(shutil.disk_usage(tmp_path).total)
    assert problems == [
        f"this run writes 8.0 GB; {tmp_path} has 4.0 MB free "
        f"({reserve / MB:.1f} MB of it is kept free)"
    ]
    assert notes == []


def test_a_program_faster_than_the_disk_says_how_soon_the_buffer_fills(
    tmp_path: Path,
) -> None:
    plan = Plan(frame_bytes=2048 * 2048 * 2, frames_per_s=400.0, frames=None)
    problems, notes = check_capacity(
        plan,
        tmp_path,
        buffer_bytes=GiB,
        queue_bytes=GiB // 2,
        disk_bytes_per_s=1100 * MB,
        free_bytes=500 * 1000 * MB,
    )
    # 3.36 GB/s in, 1.1 GB/s out: 1.5 GiB of RAM fills in 0.7 s
    excess = plan.bytes_per_s - 1100 * MB
    assert problems == [
        "this program produces 3.4 GB/s; the disk here writes about 1.1 GB/s; "
        f"the 1024 MB buffer (and 512 MB queue) fill in {1.5 * GiB / excess:.1f} s "
        "and frames are lost after that (a smaller camera region, a longer frame "
        "time or a faster disk keeps up)"
    ]
    assert len(notes) == 1 and "free in" in notes[0] and "last about" in notes[0]
    # a short run the RAM absorbs is fine
    short = Plan(plan.frame_bytes, plan.frames_per_s, frames=40)
    assert check_capacity(
        short,
        tmp_path,
        buffer_bytes=GiB,
        queue_bytes=GiB // 2,
        disk_bytes_per_s=1100 * MB,
        free_bytes=500 * 1000 * MB,
    ) == ([], [])


def test_the_plan_comes_from_the_program_and_the_camera(rig) -> None:
    preset = load_preset(OPM)
    plan = plan_for(preset, rig)
    rendered = render(preset.program)
    cycle_s = rendered.samples_per_cycle / rendered.sample_rate_hz
    assert plan.frames_per_s == pytest.approx(len(rendered.frames) / cycle_s)
    assert plan.frame_bytes == rig.core.getImageWidth() * rig.core.getImageHeight() * 2
    assert plan.frames is None  # a loop


@pytest.fixture
def speed_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The disk-speed cache in a test folder (XDG cache of platformdirs)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "mmapp" / "disk_speed.json"


def test_a_slow_disk_refuses_the_loop_or_warns_as_chosen(
    tmp_path: Path, speed_cache: Path
) -> None:
    out = tmp_path / "data"
    out.mkdir()
    speed_cache.parent.mkdir(parents=True)
    speed_cache.write_text(json.dumps({str(mount_point(out)): 10 * MB}))
    preset = load_preset(OPM).model_copy(deep=True)
    preset = preset.model_copy(
        update={"storage": preset.storage.model_copy(update={"directory": str(out)})}
    )
    with pytest.raises(RunRefusedError) as info:
        prepare_run(preset)
    message = str(info.value)
    assert "the disk here writes about 10 MB/s" in message
    assert message.endswith("(to start anyway: --overrun warn)")
    notes: list[str] = []
    rig = prepare_run(preset, on_overrun="warn", notes=notes)
    try:
        assert notes[0].startswith("warning: this program produces")
        assert "last about" in notes[1]
    finally:
        rig.close()


def test_the_disk_is_measured_once_per_file_system(
    tmp_path: Path, speed_cache: Path
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        assert disk_speed(tmp_path / name) > 1 * MB
    speeds = json.loads(speed_cache.read_text())
    assert list(speeds) == [str(mount_point(tmp_path))]
    assert not list((tmp_path / "a").iterdir())  # the probe file is gone
    assert (
        disk_speed(tmp_path / "b", measure=False) == speeds[str(mount_point(tmp_path))]
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 MB file system (tmpfs), where the test may mount one."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    made = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
        if sys.platform.startswith("linux")
        else None
    )
    if made is None or made.returncode != 0:
        pytest.skip(
            "cannot mount a small tmpfs here (needs Linux and root): "
            + (made.stderr.strip() if made else sys.platform)
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_run_that_does_not_fit_a_small_disk_is_refused_by_acquire(
    small_disk: Path,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmapp",
            "acquire",
            "--out",
            str(small_disk),
            "--frames",
            "500",
            "--size",
            "256",
            "--channel",
            "488nm",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"mmapp: error: this run writes 65.5 MB; {small_disk} has 67.1 MB free"
    ), done.stderr
    assert list(small_disk.iterdir()) == []  # nothing was started
