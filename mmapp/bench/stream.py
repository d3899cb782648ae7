"""`mmapp bench stream`: camera -> engine -> DataHandler -> NDTiff, against raw writes.

Both are measured in the same run, into the same directory, with the same
bytes: raw sequential writes before and after the pipeline (their mean is the
reference), so drift in the disk's speed shows up instead of hiding.

`--io both` runs the pipeline alternately through the sink's two write paths
(positional `pwritev`, portable seek + write: `mmapp.data.file_io`), each pair
of runs in turn order, and reports each path's median and the median of the
portable/positional ratios of adjacent runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import mmap
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmapp.bench.thread_cpu import ThreadCpu, ThreadCpuSampler
from mmapp.bench.thread_cpu import supported as thread_cpu_supported
from mmapp.data import file_io
from mmapp.engine.controller import RunController, RunRequest, RunResult
from mmapp.engine.events import stream_event
from mmapp.rig import Rig, RigError, load_rig, set_buffer_mb
from mmapp.rig.buffer import on_slots_freed, wait_prefaulted
from mmapp.rig.simulated import expected_pattern, stamp


# Memory figures come from Linux's /proc; elsewhere they read NaN (not measured).
def rss_mb() -> float:
    """Resident set size of this process now (NaN where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * mmap.PAGESIZE / 1e6
    except OSError:
        return float("nan")


def reset_peak_rss() -> None:
    """Reset VmHWM so the next peak belongs to the next phase (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """VmHWM: the peak resident set size since the last reset (NaN: unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return float("nan")


def settle_disk() -> None:
    """Push everything written so far to the disk between phases.

    os.sync where the OS has it (POSIX); Windows has none, and needs none here:
    every file a phase writes is fsynced by that phase (raw files before they
    are deleted, datasets by fsync_tree).
    """
    if hasattr(os, "sync"):
        os.sync()


def fsync_tree(path: Path) -> float:
    """fsync every file of a dataset; returns the seconds it took."""
    t0 = time.perf_counter()
    for file in path.iterdir():
        if not file.is_file():
            continue
        # writable: Windows' fsync (_commit) refuses a read-only descriptor
        fd = os.open(file, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - t0


RAW_SOURCE_BYTES = 256 * 1024 * 1024  # far beyond any CPU cache
RAW_PHASE_BYTES = 8 * 1024**3  # a raw phase measures a rate: 8 GiB is plenty


def raw_sources(frame: np.ndarray) -> list[np.ndarray]:
    """Copies of the frame in distinct memory, as camera frames arrive from RAM.

    Writing one buffer over and over reads it from the CPU cache (an 8 MB frame
    fits in L3): that reference ran 2.4x faster on tmpfs than the same writes
    from RAM, and no acquisition ever writes from cache.
    """
    count = max(2, -(-RAW_SOURCE_BYTES // frame.nbytes))
    return [frame.copy() for _ in range(count)]


def raw_write_mb_s(
    directory: Path,
    sources: list[np.ndarray],
    n: int,
    seconds: float | None = None,
) -> float:
    """Sequential writes of n frames (or for `seconds`), until fsync: the reference.

    A sustained rate needs `seconds`: the first ~20% of RAM (vm.dirty_ratio)
    goes to the page cache at memory speed, so a short phase overstates what
    the disk keeps up for a minute.
    """
    fd, name = tempfile.mkstemp(prefix="raw-", suffix=".bin", dir=directory)
    os.close(fd)
    path = Path(name)
    written = 0
    try:
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            for i in range(n):
                f.write(sources[i % len(sources)])
                written += 1
                if seconds is not None and time.perf_counter() - t0 >= seconds:
                    break
            f.flush()
            os.fsync(f.fileno())  # durable: the page cache only hides a few GB
        elapsed = time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)
    settle_disk()
    return written * sources[0].nbytes / 1e6 / elapsed


def raw_paced_max_lag_s(
    directory: Path, sources: list[np.ndarray], rate_fps: float, n: int
) -> float:
    """A plain writer at the camera's pace: how far behind schedule it fell.

    If even this falls further behind than the ring buffer holds, the disk
    cannot keep that pace, whatever the pipeline does.
    """
    fd, name = tempfile.mkstemp(prefix="rawpaced-", suffix=".bin", dir=directory)
    os.close(fd)
    path = Path(name)
    worst = 0.0
    tick = threading.Event()
    try:
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            for i in range(n):
                lag = time.perf_counter() - (t0 + i / rate_fps)
                if lag < 0:
                    tick.wait(-lag)
                worst = max(worst, lag)
                f.write(sources[i % len(sources)])
            f.flush()
            os.fsync(f.fileno())
    finally:
        path.unlink(missing_ok=True)
    settle_disk()
    return worst


@dataclass
class RssSampler:
    """Samples RSS against frames acquired while the pipeline runs."""

    controller: RunController
    samples: list[tuple[int, float]] = field(default_factory=list)
    stream_s: float = 0.0  # first frame in -> dataset finished
    start_s: float = 0.0  # start() -> first frame in
    thread_cpu: list[ThreadCpu] | None = None  # with --cpu: each thread's CPU time
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            snap = self.controller.stats()
            self.samples.append((snap.frames_in if snap else 0, rss_mb()))

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and let go of the controller (and so of the core)."""
        self._stop.set()
        self._thread.join()
        self.controller = None  # type: ignore[assignment]

    def rss_at_fraction(self, fraction: float, total: int) -> float:
        """RSS when this fraction of the frames had arrived."""
        target = fraction * total
        for frames, rss in self.samples:
            if frames >= target:
                return rss
        return self.samples[-1][1] if self.samples else float("nan")


def open_bench_rig(rig_path: Path | None, size: int | None) -> Rig:
    """The simulated camera at size x size, free-running with no exposure; or
    the rig of `rig_path` as configured (`size`: frames of size x size, by the
    rig file's camera settings or else an ROI)."""
    if rig_path is None:
        return load_rig(width=size, height=size, exposure_ms=0.0, readout_ms=0.0)
    if size and rig_path.suffix.lower() != ".cfg":
        rig = load_rig(rig_path, width=size, height=size)
    else:
        rig = load_rig(rig_path)
    core = rig.core
    if not size or (core.getImageWidth(), core.getImageHeight()) == (size, size):
        return rig
    sensor = (core.getImageWidth(), core.getImageHeight())
    try:
        core.clearROI()
        sensor = (core.getImageWidth(), core.getImageHeight())
        problem = "larger than the sensor" if size > min(sensor) else ""
        if not problem:
            core.setROI(0, 0, size, size)
            shape = (core.getImageWidth(), core.getImageHeight())
            problem = "" if shape == (size, size) else f"it gave {shape}"
    except Exception as exc:
        problem = str(exc)
    if problem:
        rig.close()
        raise RigError(
            f"the camera ({sensor[0]}x{sensor[1]}) refused a {size}x{size} ROI: "
            f"{problem}"
        )
    return rig


def frame_like(core: Any) -> np.ndarray:
    """A frame of the camera's shape and pixel type (for the raw writes)."""
    height, width = core.getImageHeight(), core.getImageWidth()
    dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[core.getBytesPerPixel()]
    return (np.arange(height * width) % 4093).astype(dtype).reshape(height, width)


def camera_alone_fps(core: Any, frames: int) -> float:
    """The camera streaming into its own buffer, each frame popped (one copy,
    as the pipeline's) and dropped: the most any pipeline can save."""
    pause = threading.Event()
    core.startSequenceAcquisition(frames, 0, True)
    t0 = time.perf_counter()
    got = 0
    try:
        while got < frames:
            if core.getRemainingImageCount():
                core.popNextImage()
                got += 1
            elif not core.isSequenceRunning():
                break
            else:
                pause.wait(0.0002)
    finally:
        if core.isSequenceRunning():
            core.stopSequenceAcquisition()
    return got / (time.perf_counter() - t0)


def run_pipeline(
    directory: Path,
    size: int | None,
    frames: int,
    *,
    rate_fps: float | None,
    buffer_mb: int,
    queue_mb: int,
    rig_path: Path | None = None,
    thread_cpu: bool = False,
) -> tuple[RunResult, RssSampler]:
    """The camera streaming into NDTiff through the real pipeline (the
    simulated one, or the camera of the rig at `rig_path`); with `thread_cpu`
    each thread's CPU time during the run (Linux)."""
    rig = open_bench_rig(rig_path, size)
    core = rig.core
    set_buffer_mb(core, buffer_mb)
    wait_prefaulted(core)  # the ring's pages: set-up, not streaming
    camera = rig.camera  # the simulated camera; None: a Micro-Manager one
    undo_hook: Callable[[], None] = lambda: None  # noqa: E731
    if camera is None or not hasattr(camera, "flow_control"):
        if rate_fps:  # a real camera's pace is its exposure
            core.setExposure(1000.0 / rate_fps)
    elif rate_fps:
        core.setProperty(core.getCameraDevice(), "FrameIntervalMs", 1000.0 / rate_fps)
    else:  # free-running, limited by the pipeline (never by overflow)
        full = core.getBufferTotalCapacity() - 2
        ring = getattr(core, "_seq_buffer", None)  # len(): no device look-up
        count = ring.__len__ if ring is not None else core.getRemainingImageCount
        camera.flow_control = lambda: count() >= full
        # a held camera goes on as soon as the writer frees a slot (no sleep)
        undo_hook = on_slots_freed(core, camera.room_freed)
    controller = RunController(rig)
    sampler = RssSampler(controller)
    request = RunRequest(
        events=[stream_event(max_frames=frames)],
        out_dir=directory,
        name="bench",
        settings={"command": "bench stream", "size": size, "frames": frames},
        queue_bytes=queue_mb * 1024 * 1024,
    )
    reset_peak_rss()
    cpu = ThreadCpuSampler() if thread_cpu and thread_cpu_supported() else None
    if cpu is not None:
        cpu.start()
    t_start = time.perf_counter()
    controller.start(request)
    sampler.start()
    result = controller.wait()
    t_end = time.perf_counter()
    if cpu is not None:
        sampler.thread_cpu = cpu.stop()
    handler = controller.handler
    first = handler.stats.first_frame_at if handler is not None else None
    # arming (dataset, engine and camera set-up) is not streaming throughput
    start_s = (first - t_start) if first is not None else 0.0
    sampler.stream_s = t_end - (first if first is not None else t_start)
    sampler.start_s = start_s
    sampler.stop()
    assert result is not None
    if camera is not None and hasattr(camera, "flow_control"):
        camera.flow_control = None
    undo_hook()
    rig.close()
    del rig, controller, core, camera
    gc.collect()
    return result, sampler


def thread_cpu_per_frame(rows: list[ThreadCpu], frames: int) -> list[dict]:
    """Each thread's user and system CPU time per saved frame (us)."""
    n = max(frames, 1)
    return [
        {
            "thread": row.name,
            "user_us": round(row.user_s / n * 1e6, 1),
            "system_us": round(row.system_s / n * 1e6, 1),
        }
        for row in rows
    ]


def io_paths(choice: str | None) -> list[str] | None:
    """The sink write paths `--io` asks for, in run order (None: not available)."""
    if choice in (None, "default"):
        return [file_io.io_path()]
    wanted = ["positional", "portable"] if choice == "both" else [choice]
    if "positional" in wanted and not file_io.HAS_POSITIONAL_IO:
        return None
    return wanted


def run_stream_bench(args: argparse.Namespace) -> int:
    """Entry point of `mmapp bench stream`."""
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    size, frames = args.size, args.frames
    rig_path: Path | None = getattr(args, "rig", None)
    camera_fps: float | None = None
    if rig_path is not None:  # its frames' shape, and what the camera alone gives
        try:
            probe = open_bench_rig(rig_path, size)
        except RigError as exc:
            print(f"mmapp bench: {exc}")
            return 2
        try:
            set_buffer_mb(probe.core, args.buffer_mb)
            frame = frame_like(probe.core)
            camera_fps = camera_alone_fps(probe.core, min(frames, 2000))
        finally:
            probe.close()
            del probe
            gc.collect()
    else:
        frame = np.ascontiguousarray(
            expected_pattern((size, size), np.uint16, 0.0, 0.0)
        ).copy()
        stamp(frame, 0)
    raw_frames = min(frames, max(1, RAW_PHASE_BYTES // frame.nbytes))
    sources = raw_sources(frame)
    say = (lambda *a: None) if args.json else print
    rate = args.rate
    if args.rate_fraction:  # the raw rate decides the pace (and so the frames)
        settle_disk()
        raw_write_mb_s(directory, sources, min(raw_frames, 50))  # warm-up
        if args.duration:  # sustained: as long as the paced run, within the disk
            budget = int(0.45 * shutil.disk_usage(directory).free) // frame.nbytes
            pace_raw = raw_write_mb_s(directory, sources, budget, args.duration)
        else:
            pace_raw = statistics.median(
                raw_write_mb_s(directory, sources, raw_frames) for _ in range(3)
            )
        say(f"  raw rate for pacing: {pace_raw:.1f} MB/s")
        rate = args.rate_fraction * pace_raw * 1e6 / frame.nbytes
    if args.duration:
        if not rate:
            print("mmapp bench: --duration needs --rate or --rate-fraction")
            return 2
        frames = max(1, round(rate * args.duration))
    need = (frames + raw_frames) * frame.nbytes
    free = shutil.disk_usage(directory).free
    if free < need:
        print(
            f"mmapp bench: not enough disk in {directory}: need {need / 1e9:.1f} GB, "
            f"{free / 1e9:.1f} GB free"
        )
        return 2
    paths = io_paths(args.io)
    if paths is None:
        print(
            "mmapp bench: --io positional needs os.pwritev/os.pwrite/os.pread, "
            "which this Python does not have (use --io portable)"
        )
        return 2
    frame_h, frame_w = frame.shape
    say(
        f"bench stream: {frame_w}x{frame_h} {frame.dtype}, {frames} frames, into "
        f"{directory} (sink I/O: {' and '.join(paths)})"
    )
    if rig_path is not None:
        say(
            f"  camera of {rig_path}: alone (popped, not saved) "
            f"{camera_fps:.1f} fps ({camera_fps * frame.nbytes / 1e6:.1f} MB/s)"
        )
    if rate:
        say(f"  camera paced at {rate:.1f} fps ({rate * frame.nbytes / 1e6:.0f} MB/s)")
    if args.cpu and not thread_cpu_supported():
        say("  --cpu: each thread's CPU time is read from /proc (Linux); not here")
    settle_disk()
    raw_write_mb_s(directory, sources, min(raw_frames, 50))  # warm-up, not counted
    raws: list[float] = []
    pipes: list[float] = []
    run_paths: list[str] = []  # the write path of each pipeline run
    was_portable = file_io.io_path() == "portable"
    results: list[RunResult] = []
    starts: list[float] = []
    thread_cpus: list[list[dict]] = []  # with --cpu: per run, per thread
    sampler: RssSampler | None = None
    peak = 0.0
    # with two paths, pair k runs them in turn order (k odd: reversed), so a
    # drifting disk favours neither; every pipeline run sits between raw runs
    order = [
        path
        for k in range(args.repeats)
        for path in (paths if k % 2 == 0 else paths[::-1])
    ]

    def label(path: str) -> str:
        return f"pipeline {path}" if len(paths) > 1 else "pipeline"

    width = max(len(label(path)) for path in paths)
    for rep, path in enumerate(order):
        raws.append(raw_write_mb_s(directory, sources, raw_frames))
        say(f"  {'raw writes':<{width}s} #{rep + 1}: {raws[-1]:8.1f} MB/s")
        file_io.use_portable_io(path == "portable")
        run_paths.append(path)
        try:
            result, sampler = run_pipeline(
                directory,
                size,
                frames,
                rate_fps=rate,
                buffer_mb=args.buffer_mb,
                queue_mb=args.queue_mb,
                rig_path=rig_path,
                thread_cpu=args.cpu,
            )
        finally:
            file_io.use_portable_io(was_portable)
        peak = max(peak, peak_rss_mb())
        results.append(result)
        durable_s = sampler.stream_s
        starts.append(sampler.start_s)
        if result.dataset:
            durable_s += fsync_tree(result.dataset)  # same finish line as raw
        pipes.append(result.frames_saved * frame.nbytes / 1e6 / durable_s)
        say(
            f"  {label(path):<{width}s} #{rep + 1}: {pipes[-1]:8.1f} MB/s "
            f"({result.frames_saved} frames, {result.outcome.value}; first frame "
            f"{starts[-1] * 1000:.0f} ms after start)"
        )
        if sampler.thread_cpu is not None:
            per_frame = thread_cpu_per_frame(sampler.thread_cpu, result.frames_saved)
            thread_cpus.append(per_frame)
            for row in per_frame:
                say(
                    f"      cpu {row['thread']:<20s} user {row['user_us']:6.1f} + "
                    f"system {row['system_us']:6.1f} us/frame"
                )
        if result.dataset and not args.keep:
            shutil.rmtree(result.dataset, ignore_errors=True)
        settle_disk()
    raw_lag = None
    if rate and args.duration:
        raw_lag = raw_paced_max_lag_s(directory, sources, rate, frames)
        say(
            f"  raw writer at the same pace: at most {raw_lag:.2f} s behind "
            f"(the ring holds {args.buffer_mb * 2**20 / frame.nbytes / rate:.1f} s)"
        )
    raws.append(raw_write_mb_s(directory, sources, raw_frames))
    say(f"  {'raw writes':<{width}s} #{len(order) + 1}: {raws[-1]:8.1f} MB/s")
    raw, pipeline = statistics.median(raws), statistics.median(pipes)
    # Each pipeline run against the mean of the raw runs on either side of it:
    # the disk's speed drifts (several-fold on shared virtual disks), and a
    # neighbour is the fairest reference a run has.
    pair_ratios = [p / ((raws[i] + raws[i + 1]) / 2) for i, p in enumerate(pipes)]
    ratio = statistics.median(pair_ratios)
    dropped = sum(frames - r.frames_saved for r in results)
    by_path = {
        path: {
            "median_mb_s": round(
                statistics.median(
                    p for p, q in zip(pipes, run_paths, strict=True) if q == path
                ),
                1,
            ),
            "runs_mb_s": [
                round(p, 1) for p, q in zip(pipes, run_paths, strict=True) if q == path
            ],
            "ratio_to_raw": None
            if rate
            else round(
                statistics.median(
                    r for r, q in zip(pair_ratios, run_paths, strict=True) if q == path
                ),
                3,
            ),
        }
        for path in paths
    }
    # portable/positional of each adjacent pair of runs (same disk moment)
    io_pairs = (
        [
            pipes[k + run_paths[k : k + 2].index("portable")]
            / pipes[k + run_paths[k : k + 2].index("positional")]
            for k in range(0, len(pipes) - 1, 2)
        ]
        if len(paths) == 2
        else []
    )
    last = results[-1]
    assert sampler is not None
    report = {
        "size": size,
        "rig": None if rig_path is None else str(rig_path),
        "frame_shape": [frame_h, frame_w],
        "camera_alone_fps": None if camera_fps is None else round(camera_fps, 1),
        # the pipeline against the camera alone: 1.0 means it saved every frame
        # the camera could give (the ratio to raw is then the camera's limit)
        "ratio_to_camera": None
        if camera_fps is None
        else round(pipeline * 1e6 / frame.nbytes / camera_fps, 3),
        "frames": frames,
        "repeats": args.repeats,
        "io": args.io or paths[0],
        "io_paths": by_path,
        "portable_vs_positional": round(statistics.median(io_pairs), 3)
        if io_pairs
        else None,
        "portable_vs_positional_pairs": [round(r, 3) for r in io_pairs],
        "rate_fps": rate,
        "pipeline_mb_s": round(pipeline, 1),
        "raw_mb_s": round(raw, 1),
        "pipeline_runs_mb_s": [round(p, 1) for p in pipes],
        "raw_runs_mb_s": [round(r, 1) for r in raws],
        # with --cpu: per pipeline run, each thread's CPU time per frame
        "thread_cpu_us_per_frame": thread_cpus if args.cpu else None,
        # a paced run's throughput is the camera's rate: no ratio to the disk
        "ratio": None if rate else round(ratio, 3),
        "pair_ratios": [round(r, 3) for r in pair_ratios],
        "ratio_of_medians": round(pipeline / raw, 3),
        "pipeline_fps": round(pipeline * 1e6 / frame.nbytes, 1),
        "dropped_frames": dropped,
        "raw_paced_max_lag_s": None if raw_lag is None else round(raw_lag, 2),
        "ring_holds_s": round(args.buffer_mb * 2**20 / frame.nbytes / rate, 2)
        if rate
        else None,
        "outcomes": [r.outcome.value for r in results],
        "message": last.message,
        "peak_rss_mb": round(peak, 1),
        "rss_at_25pct_mb": round(sampler.rss_at_fraction(0.25, frames), 1),
        "rss_at_end_mb": round(sampler.rss_at_fraction(1.0, frames), 1),
        "duration_s": round(last.duration_s, 2),
        "start_to_first_frame_s": [round(x, 3) for x in starts],
    }
    if args.json:
        print(json.dumps(report))
    else:
        say(f"  median raw:          {raw:8.1f} MB/s")
        say(
            f"  median pipeline:     {pipeline:8.1f} MB/s "
            f"({report['pipeline_fps']} fps)"
        )
        if rate:
            say(
                f"  paced run: camera at {rate:.1f} fps, saved "
                f"{report['pipeline_fps']:.1f} fps (no ratio: the pace sets it)"
            )
        else:
            say(
                f"  ratio pipeline/raw:  {report['ratio']:.3f} (median of per-run "
                f"ratios {report['pair_ratios']} against the neighbouring raw runs)"
            )
        if io_pairs:
            for path in paths:
                say(
                    f"  median {path + ':':12s} {by_path[path]['median_mb_s']:8.1f} "
                    f"MB/s (runs {by_path[path]['runs_mb_s']})"
                )
            say(
                f"  ratio portable/positional: "
                f"{report['portable_vs_positional']:.3f} (median of adjacent pairs "
                f"{report['portable_vs_positional_pairs']})"
            )
        if camera_fps is not None:
            say(
                f"  pipeline/camera alone: {report['ratio_to_camera']:.3f} "
                f"(camera alone {camera_fps:.1f} fps)"
            )
        say(f"  dropped frames:      {dropped}")
        say(
            f"  peak RSS:            {peak:.0f} MB (RSS at 25% "
            f"{report['rss_at_25pct_mb']:.0f} MB, "
            f"at end {report['rss_at_end_mb']:.0f} MB)"
        )
        if last.message:
            say(f"  note: {last.message}")
    return 0 if math.isfinite(pipeline) else 1
