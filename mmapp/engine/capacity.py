"""Will the disk and the buffer hold this run? Checked before the start.

The planned data rate (frame bytes x frame rate: from the waveform program, or
the camera's exposure for a free-running stream) is compared with what the
disk writes (measured once per folder: 256 MB written and fsynced, cached in
the user's cache folder) and the camera's circular buffer; the planned size
with the free space. An operator gets one plain sentence ("this program
produces 3.3 GB/s; the disk here writes about 1.1 GB/s; the 1024 MB buffer
fills in 0.5 s") and chooses to refuse (default) or only warn.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from mmapp.daq.render import render
from mmapp.presets import Preset
from mmapp.presets.model import MDAAcquisition, StreamAcquisition
from mmapp.rig import Rig

MB = 1_000_000
PROBE_BYTES = 256 * 1024 * 1024
PROBE_CHUNK = 8 * 1024 * 1024
# room kept free on the disk (the dataset's index, run.json, the OS): 512 MiB,
# or 5 % of a small disk
RESERVE_BYTES = 512 * 1024 * 1024
RESERVE_SHARE = 0.05
# a data rate any disk keeps up with: no need to measure it
SURELY_FINE_BYTES_PER_S = 50 * MB
SPEED_FILE = "disk_speed.json"


class CapacityError(RuntimeError):
    """The run would fill the disk or overflow the camera's buffer."""


@dataclass(frozen=True)
class Plan:
    """What a run will write: bytes per frame, frames per second, frames."""

    frame_bytes: int
    frames_per_s: float | None  # None: paced by the MDA plan, not known here
    frames: int | None  # None: until Stop

    @property
    def bytes_per_s(self) -> float | None:
        return (
            None if self.frames_per_s is None else self.frame_bytes * self.frames_per_s
        )

    @property
    def total_bytes(self) -> int | None:
        return None if self.frames is None else self.frame_bytes * self.frames


def plan_for(preset: Preset, rig: Rig) -> Plan:
    """The run's data plan from the preset and the loaded rig."""
    core = rig.core
    frame_bytes = core.getImageWidth() * core.getImageHeight() * core.getBytesPerPixel()
    acq = preset.acquisition
    rate: float | None = None
    if preset.program is not None:
        rendered = render(preset.program)
        cycle_s = rendered.samples_per_cycle / rendered.sample_rate_hz
        rate = len(rendered.frames) / cycle_s
    elif isinstance(acq, StreamAcquisition):
        exposure_ms = acq.exposure_ms or core.getExposure()
        rate = 1000.0 / exposure_ms if exposure_ms > 0 else None
    frames: int | None = None
    if isinstance(acq, StreamAcquisition):
        if acq.frames is not None:
            frames = acq.frames
        elif acq.duration_s is not None and rate is not None:
            frames = math.ceil(acq.duration_s * rate)
    elif isinstance(acq, MDAAcquisition):
        frames = _mda_frames(acq)
    return Plan(frame_bytes, rate, frames)


def _mda_frames(acq: MDAAcquisition) -> int | None:
    try:
        return sum(1 for _ in acq.sequence.iter_events())
    except Exception:  # an unbounded or odd plan: no size check
        return None


def _fmt_rate(bytes_per_s: float) -> str:
    if bytes_per_s >= 1000 * MB:
        return f"{bytes_per_s / (1000 * MB):.1f} GB/s"
    return f"{bytes_per_s / MB:.0f} MB/s"


def _fmt_size(nbytes: float) -> str:
    if nbytes >= 1000 * MB:
        return f"{nbytes / (1000 * MB):.1f} GB"
    return f"{nbytes / MB:.1f} MB"


def _fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- the disk's write speed, measured once per folder -------------------------------
def _speed_cache() -> Path:
    return Path(user_cache_dir("mmapp", appauthor=False)) / SPEED_FILE


def _load_speeds() -> dict[str, float]:
    try:
        data = json.loads(_speed_cache().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def measure_disk_speed(directory: Path, nbytes: int = PROBE_BYTES) -> float:
    """Bytes per second written and fsynced to a temporary file in `directory`."""
    chunk = os.urandom(PROBE_CHUNK)
    path = directory / f".mmapp-speed-test-{os.getpid()}"
    t0 = time.perf_counter()
    try:
        with open(path, "wb", buffering=0) as f:
            written = 0
            while written < nbytes:
                written += f.write(chunk)
            os.fsync(f.fileno())
        elapsed = time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)
    return written / max(elapsed, 1e-6)


def mount_point(directory: Path) -> Path:
    """The top folder of the file system `directory` is on."""
    path = Path(directory).expanduser().resolve()
    device = path.stat().st_dev
    while path.parent != path and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def disk_speed(directory: Path, *, measure: bool = True) -> float | None:
    """The write speed (bytes/s) of the disk `directory` is on: cached per
    file system, else measured in `directory` (if allowed)."""
    key = str(mount_point(directory))
    speeds = _load_speeds()
    if key in speeds:
        return speeds[key]
    if not measure:
        return None
    try:
        probe = min(PROBE_BYTES, _free(directory) // 4)
        speed = measure_disk_speed(Path(directory), probe)
    except OSError:
        return None
    speeds[key] = speed
    try:
        cache = _speed_cache()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(speeds, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
    return speed


def _usage(directory: Path) -> tuple[int, int]:
    """(free, total) bytes of the disk `directory` (or its nearest parent) is on."""
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    return usage.free, usage.total


def _free(directory: Path) -> int:
    return _usage(directory)[0]


def reserve_bytes(total: int) -> int:
    """What is kept free on a disk of `total` bytes."""
    return min(RESERVE_BYTES, int(total * RESERVE_SHARE))


# --- the check ----------------------------------------------------------------------
def check_capacity(
    plan: Plan,
    directory: Path,
    *,
    buffer_bytes: int,
    queue_bytes: int,
    disk_bytes_per_s: float | None,
    free_bytes: int | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes): problems refuse the run unless the operator only
    wants warnings; notes are said in any case (how long a loop's disk lasts)."""
    free, size = _usage(directory)
    free = free if free_bytes is None else free_bytes
    reserve = reserve_bytes(size)
    usable = max(0, free - reserve)
    problems: list[str] = []
    notes: list[str] = []
    total = plan.total_bytes
    if total is not None and total > usable:
        problems.append(
            f"this run writes {_fmt_size(total)}; {directory} has {_fmt_size(free)} "
            f"free ({_fmt_size(reserve)} of it is kept free)"
        )
    rate = plan.bytes_per_s
    if rate is not None and total is None:
        lasts = usable / rate if rate > 0 else math.inf
        notes.append(
            f"at {_fmt_rate(rate)} the {_fmt_size(free)} free in {directory} last "
            f"about {_fmt_duration(lasts)}; the run stops cleanly before the disk "
            f"is full"
        )
    if rate is not None and disk_bytes_per_s is not None and rate > disk_bytes_per_s:
        excess = rate - disk_bytes_per_s
        fills_s = (buffer_bytes + queue_bytes) / excess
        duration = None if total is None else total / rate
        if duration is None or duration > fills_s:
            buffer_mb, queue_mb = buffer_bytes >> 20, queue_bytes >> 20
            problems.append(
                f"this program produces {_fmt_rate(rate)}; the disk here writes "
                f"about {_fmt_rate(disk_bytes_per_s)}; the {buffer_mb} MB buffer "
                f"(and {queue_mb} MB queue) fill in "
                f"{_fmt_duration(fills_s)} and frames are lost after that (a smaller "
                "camera region, a longer frame time or a faster disk keeps up)"
            )
    return problems, notes


def capacity_report(
    preset: Preset, rig: Rig, directory: Path, *, measure: bool = True
) -> tuple[list[str], list[str]]:
    """check_capacity for a preset on its loaded rig (the disk measured once
    per folder when `measure`, else only a cached measurement is used)."""
    plan = plan_for(preset, rig)
    try:
        buffer_bytes = int(rig.core.getCircularBufferMemoryFootprint()) << 20
    except Exception:
        buffer_bytes = 0
    speed = None
    rate = plan.bytes_per_s
    if rate is not None and rate > SURELY_FINE_BYTES_PER_S and directory.is_dir():
        speed = disk_speed(directory, measure=measure)
    return check_capacity(
        plan,
        directory,
        buffer_bytes=buffer_bytes,
        queue_bytes=preset.storage.queue_mb << 20,
        disk_bytes_per_s=speed,
    )
