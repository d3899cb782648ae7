"""SIGKILL a real `mmapp acquire` process and recover what it left (shared by
tests/test_recover_kills.py and the 2048x2048 study run by hand:
`python tests/kill_study.py OUT_DIR` prints kills / on disk / recovered / lost).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ndstorage import Dataset

from mmapp.data.recover import RecoveryReport, recover_dataset
from mmapp.sim.frames import read_stamp

_WRITTEN = re.compile(rb"written +(\d+)")
PROGRESS = ["--progress-every", "0.02"]  # how soon the kill follows the count


@dataclass
class Kill:
    """One killed run: what was on disk before recovery and what came back."""

    name: str
    dataset: Path
    written_seen: int  # frames the process had reported written when killed
    indexed: dict[frozenset, np.ndarray]  # what ndstorage read before recovery
    report: RecoveryReport
    recovered: dict[frozenset, np.ndarray]


def _folders(out: Path) -> set[Path]:
    """The datasets in `out` (not the hidden folder one is built in)."""
    return {p for p in out.iterdir() if not p.name.startswith(".")}


def read_frames(path: Path) -> dict[frozenset, np.ndarray]:
    """{coordinates: image} through ndstorage (its index), quietly."""
    if not (path / "NDTiff.index").is_file():
        return {}
    with contextlib.redirect_stdout(io.StringIO()):
        ds = Dataset(str(path))
    try:
        return {
            frozenset(c.items()): np.array(ds.read_image(**c))
            for c in ds.get_image_coordinates_list()
        }
    finally:
        ds.close()


def kill_acquire(
    name: str, out: Path, args: list[str], after_frames: int | None, timeout: float = 90
) -> Kill:
    """Run `mmapp acquire --out OUT ARGS`; SIGKILL it once it reports
    `after_frames` written (None: as soon as its dataset folder exists), then
    recover the dataset."""
    out.mkdir(parents=True, exist_ok=True)
    before = _folders(out)
    errors = out / ".stderr.log"
    with errors.open("wb") as stderr:  # the child keeps its own copy
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mmapp",
                "acquire",
                "--out",
                str(out),
                *args,
                *PROGRESS,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        if after_frames is None:
            while not _folders(out) - before:  # the folder is the event
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("no dataset folder appeared")
                time.sleep(0.001)
        else:
            tail = b""
            while seen < after_frames:
                chunk = proc.stdout.read1(4096)  # type: ignore[union-attr]
                if not chunk or time.monotonic() > deadline:
                    said = errors.read_text(errors="replace")[-500:]
                    raise AssertionError(f"the run ended at {seen} written: {said}")
                tail = (tail + chunk)[-200:]
                found = _WRITTEN.findall(tail)
                seen = int(found[-1]) if found else seen
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    errors.unlink()
    [dataset] = _folders(out) - before
    indexed = read_frames(dataset)
    report = recover_dataset(dataset)
    return Kill(name, dataset, seen, indexed, report, read_frames(dataset))


def check(kill: Kill, order: list[frozenset] | None = None) -> None:
    """Every frame indexed before comes back identical; at most the last
    image is lost; the frames are the camera's first ones without a gap: by
    their stamps (the frame number of a sequence), or for snapped frames
    (stamp 0 each) by their coordinates, the first of the run's `order`."""
    r = kill.report
    assert not r.already_finished
    assert r.frames_recovered == len(kill.recovered)
    assert r.frames_recovered >= r.frames_in_index_before == len(kill.indexed)
    assert r.frames_recovered >= kill.written_seen
    assert r.frames_found_on_disk - r.frames_recovered <= 1
    assert len(r.left_out) <= 1
    for key, image in kill.indexed.items():
        np.testing.assert_array_equal(kill.recovered[key], image)
    if order is not None:
        assert set(kill.recovered) == set(order[: len(kill.recovered)])
        return
    stamps = sorted(read_stamp(image) for image in kill.recovered.values())
    assert stamps == list(range(len(stamps)))  # each once, none missing


def line(kill: Kill) -> str:
    r = kill.report
    lost = r.frames_found_on_disk - r.frames_recovered
    zeros = [x.zero_pixels for x in r.left_out if x.zero_pixels is not None]
    return (
        f"{kill.name:<28} killed at {kill.written_seen:6d} written | on disk "
        f"{r.frames_found_on_disk:6d} | indexed {r.frames_in_index_before:6d} | "
        f"recovered {r.frames_recovered:6d} | lost {lost}"
        + (f" ({zeros[0]:.0%} zero pixels)" if zeros else "")
    )


if __name__ == "__main__":  # the 2048x2048 study (writes GBs; run by hand)
    root = Path(sys.argv[1])
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    big = ["--size", "2048", "--exposure", "5", "--loop"]
    for i in range(kills):
        kill = kill_acquire(f"2048 loop #{i + 1}", root / f"k{i}", big, 15 + 11 * i)
        check(kill)
        print(line(kill), flush=True)
        for child in kill.dataset.iterdir():
            child.unlink()
        kill.dataset.rmdir()
