"""Watching the disk during a run: stop before it fills (issue 15: 6)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from helpers import open_dataset
from test_capacity import small_disk  # noqa: F401  (fixture)

from mmapp.engine.capacity import reserve_bytes
from mmapp.engine.disk_watch import STOP_ALLOWANCE_S, DiskWatch
from mmapp.sim.frames import is_lit, read_stamp

MB = 1_000_000
TOTAL = 1000 * MB  # keeps reserve_bytes(TOTAL) = 50 MB


def _watch(free: list[int], pending: int = 0, **kw: object) -> DiskWatch:
    return DiskWatch(
        Path("/data"),
        lambda _m: None,
        bytes_in=lambda: 0,
        pending_bytes=lambda: pending,
        usage=lambda _p: (free[0], TOTAL),
        **kw,  # type: ignore[arg-type]
    )


def test_the_limit_counts_the_reserve_the_queue_and_what_comes_before_the_stop() -> (
    None
):
    keep = reserve_bytes(TOTAL)
    rate = 40 * MB
    coming = 30 * MB + rate * (0.25 + STOP_ALLOWANCE_S)  # queue + 1.25 s of data
    free = [int(keep + coming) + 1]
    watch = _watch(free, pending=30 * MB)
    assert watch.check(rate) is None
    free[0] -= 2
    message = watch.check(rate)
    assert message == (
        f"the disk is nearly full: {free[0] / MB:.1f} MB free on /data, "
        f"{keep / MB:.1f} MB is kept free; the run was stopped before it filled "
        f"and every frame it took is saved"
    )
    assert watch.check(0.0) is None  # no data coming: the queue alone fits


def test_the_watch_asks_once_and_closes() -> None:
    asked: list[str] = []
    low = threading.Event()
    free = [10 * TOTAL]
    calls = [0]

    def usage(_p: Path) -> tuple[int, int]:
        calls[0] += 1
        if calls[0] >= 3:  # the third look finds the disk nearly full
            free[0] = 0
        return free[0], TOTAL

    def on_low(message: str) -> None:
        asked.append(message)
        low.set()

    watch = DiskWatch(
        Path("/data"),
        on_low,
        bytes_in=lambda: 0,
        pending_bytes=lambda: 0,
        interval_s=0.001,
        usage=usage,
    )
    watch.start()
    assert low.wait(10)
    watch.close()
    assert len(asked) == 1 and watch.message == asked[0]
    assert calls[0] == 3  # the thread ended after asking


def test_a_loop_on_a_small_disk_stops_before_it_fills(
    small_disk: Path,  # noqa: F811
) -> None:
    """A real 64 MB file system: a loop at about 13 MB/s stops with a clear
    message before the disk is full; every frame it took is in the finished
    dataset, lit, in order."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmapp",
            "acquire",
            "--out",
            str(small_disk),
            "--loop",  # until Stop: only the disk ends it
            "--size",
            "256",
            "--exposure",
            "10",
            "--channel",
            "488nm",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "error"
    assert result["message"].startswith("the disk is nearly full: "), result["message"]
    assert f"free on {small_disk}" in result["message"]
    assert "the disk is full" not in done.stderr  # it never came to ENOSPC
    usage = shutil.disk_usage(small_disk)
    assert usage.free >= reserve_bytes(usage.total)
    (dataset,) = [p for p in small_disk.iterdir() if p.is_dir()]
    ds = open_dataset(dataset)
    try:
        coords = ds.get_image_coordinates_list()
        images = [np.array(ds.read_image(**c)) for c in coords]
    finally:
        ds.close()
    assert len(images) == result["frames_saved"] == result["frames_acquired"] > 100
    assert result["frames_lost"] == 0
    assert all(is_lit(i) for i in images)
    assert sorted(read_stamp(i) for i in images) == list(range(len(images)))
