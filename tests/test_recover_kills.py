"""Real `mmapp acquire` processes killed with SIGKILL (issue 15: 4, 5): at
start-up, streaming, in a loop, playing a DAQ program, in an MDA. Each
dataset is recovered; every frame indexed before the kill comes back
pixel-identical, at most the image being written is lost, and the frames are
the camera's own without a gap (see kill_study.check). Run with -s to see
kills / frames on disk / recovered / lost."""

from __future__ import annotations

import numpy as np
import pytest
from kill_study import check, kill_acquire, line

from mmapp.data.recover import dataset_status
from mmapp.resources import example_presets_dir
from mmapp.rig.simulated import DARK_LEVEL

pytestmark = [
    pytest.mark.posix,
    pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="POSIX"),
]

SMALL = ["--size", "32", "--exposure", "1"]


def test_kill_during_start_up(tmp):
    kill = kill_acquire("start-up", tmp, ["--frames", "100000", *SMALL], None)
    print(line(kill))
    check(kill)
    assert (kill.dataset / "preset.mmpreset").is_file()  # written first
    assert dataset_status(kill.dataset).finished


@pytest.mark.parametrize(
    ("name", "args", "after"),
    [
        ("stream", ["--frames", "100000", *SMALL], 40),
        ("loop", ["--loop", *SMALL], 300),
        ("daq loop", ["--daq", "--loop", "--size", "32"], 120),
    ],
)
def test_kill_while_streaming(tmp, name, args, after):
    kill = kill_acquire(name, tmp, args, after)
    print(line(kill))
    check(kill)
    assert kill.report.frames_recovered >= after
    assert dataset_status(kill.dataset).finished
    assert (kill.dataset / "preset.mmpreset").is_file()
    if name != "daq loop":  # dark frames: the camera's pattern after the stamp
        for image in kill.recovered.values():
            assert image.shape == (32, 32)
            assert np.all(image.reshape(-1)[4:] == DARK_LEVEL)


def test_kill_during_an_mda(tmp):
    preset = example_presets_dir() / "mda_z_stack.mmpreset"
    args = [str(preset), "--size", "32", "--timepoints", "50"]
    kill = kill_acquire("mda", tmp, args, 30)
    print(line(kill))
    order = [  # the preset's axis order: t, p, z, c (11 planes, 2 channels)
        frozenset({"time": t, "z": z, "channel": c}.items())
        for t in range(50)
        for z in range(11)
        for c in ("488nm", "561nm")
    ]
    check(kill, order)
    assert kill.report.frames_recovered >= 30
