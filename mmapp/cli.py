"""Command line: `mmapp` (the main window), `mmapp --selftest`, `mmapp acquire`,
`mmapp bench`, `mmapp info`."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mmapp import __version__

if TYPE_CHECKING:
    from mmapp.engine.controller import RunController, RunRequest, RunResult

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The `mmapp` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mmapp", description="DAQ-coordinated acquisition into NDTiff."
    )
    parser.add_argument("--version", action="version", version=f"mmapp {__version__}")
    parser.add_argument(
        "--rig",
        dest="gui_rig",
        type=Path,
        metavar="FILE",
        help="open the window on this rig file/.cfg",
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="open the window on the simulated rig, acquire through its controls, "
        "check the dataset, exit 0 (nonzero with the reason otherwise)",
    )
    sub = parser.add_subparsers(dest="command")

    acq = sub.add_parser("acquire", help="run an acquisition headless")
    acq.add_argument("--out", type=Path, required=True, help="save directory")
    acq.add_argument("--name", default="acquisition", help="dataset name")
    acq.add_argument("--rig", type=Path, help="rig file (.json) or Micro-Manager .cfg")
    what = acq.add_argument_group("what to acquire")
    what.add_argument("--frames", type=_positive_int, help="stream N frames")
    what.add_argument("--loop", action="store_true", help="stream until Ctrl-C")
    what.add_argument("--duration", type=_positive_float, help="with --loop: seconds")
    what.add_argument("--timepoints", type=_positive_int, help="MDA time points")
    what.add_argument(
        "--interval", type=_non_negative_float, default=0.0, help="s between points"
    )
    what.add_argument("--z-range", type=_non_negative_float, help="z range in um")
    what.add_argument("--z-step", type=_positive_float, help="z step in um")
    cam = acq.add_argument_group("camera")
    cam.add_argument("--exposure", type=_non_negative_float, help="exposure in ms")
    cam.add_argument("--size", type=_positive_int, help="square frame size (pixels)")
    cam.add_argument("--bit-depth", type=int, choices=(8, 10, 12, 14, 16))
    cam.add_argument("--trigger", choices=("Internal", "External"))
    cam.add_argument(
        "--first-frame-timeout",
        type=_positive_float,
        default=20.0,
        help="seconds to wait for the first frame (triggered cameras)",
    )
    acq.add_argument(
        "--queue-mb", type=_positive_int, default=512, help="RAM queue to disk (MB)"
    )
    acq.add_argument(
        "--progress-every", type=_positive_float, default=0.5, help="seconds"
    )
    acq.add_argument("--json", action="store_true", help="print the result as JSON")

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    stream = bench_sub.add_parser(
        "stream",
        help="camera -> NDTiff vs raw writes (both until fsync), interleaved",
    )
    stream.add_argument("--dir", type=Path, required=True, help="where to write")
    stream.add_argument("--size", type=_positive_int, default=2048, help="pixels")
    stream.add_argument("--frames", type=_positive_int, default=500)
    stream.add_argument(
        "--rate", type=_positive_float, help="pace the camera at FPS (default: free)"
    )
    stream.add_argument(
        "--rate-fraction",
        type=_positive_float,
        help="pace the camera at this fraction of the measured raw frame rate",
    )
    stream.add_argument(
        "--duration",
        type=_positive_float,
        help="with --rate/--rate-fraction: seconds of acquisition (sets --frames)",
    )
    stream.add_argument(
        "--repeats", type=_positive_int, default=3, help="pipeline runs (median)"
    )
    stream.add_argument("--buffer-mb", type=_positive_int, default=256)
    stream.add_argument("--queue-mb", type=_positive_int, default=512)
    stream.add_argument("--keep", action="store_true", help="keep the dataset")
    stream.add_argument("--json", action="store_true", help="one JSON object")

    stop = bench_sub.add_parser("stop", help="Stop latency in each run state")
    stop.add_argument("--trials", type=_positive_int, default=10)
    stop.add_argument("--size", type=_positive_int, default=512, help="pixels")
    stop.add_argument("--json", action="store_true", help="one JSON object")

    gui = bench_sub.add_parser(
        "gui", help="acquisition throughput with the live view shown vs hidden"
    )
    gui.add_argument("--size", type=_positive_int, default=512, help="pixels")
    gui.add_argument(
        "--seconds", type=_positive_float, default=3.0, help="per acquisition"
    )
    gui.add_argument("--pairs", type=_positive_int, default=3, help="shown+hidden")
    gui.add_argument(
        "--rate", type=_positive_float, help="pace the camera at FPS (default: free)"
    )
    gui.add_argument("--dir", type=Path, help="where to write (default: temp)")
    gui.add_argument("--json", action="store_true", help="one JSON object")

    info = sub.add_parser("info", help="describe a dataset")
    info.add_argument("dataset", type=Path)
    return parser


def entry() -> None:
    """Console-script entry: run, then leave without interpreter finalisation.

    Python devices loaded in a core can make the interpreter abort while it
    tears itself down ("FATAL: exception not rethrown", exit status 134), after
    the work is done and the dataset finished. Leaving with os._exit after
    flushing the output keeps the exit status the run's own.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mmapp` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return _cmd_gui(args)
    if args.command == "acquire":
        return _cmd_acquire(parser, args)
    if args.command == "bench":
        if args.bench_command == "gui":
            from mmapp.bench.gui import run_gui_bench

            return run_gui_bench(args)
        if args.bench_command == "stop":
            from mmapp.bench.stop import run_stop_bench

            return run_stop_bench(args)
        from mmapp.bench.stream import run_stream_bench

        return run_stream_bench(args)
    if args.command == "info":
        return _cmd_info(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _cmd_gui(args: argparse.Namespace) -> int:
    """`mmapp` alone: the main window (Qt is imported only here)."""
    if args.selftest:
        from mmapp.gui.selftest import run_selftest

        return run_selftest()
    from mmapp.gui.app import run_gui

    return run_gui(str(args.gui_rig) if args.gui_rig else None)


def _cmd_acquire(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from mmapp.engine.controller import RunController, RunOutcome, RunRequest
    from mmapp.engine.plans import build_events
    from mmapp.sim.rig import RigError, load_rig

    if args.duration is not None and not args.loop:
        parser.error("--duration goes with --loop")
    try:
        events = build_events(
            frames=args.frames,
            loop=args.loop,
            duration_s=args.duration,
            timepoints=args.timepoints,
            interval_s=args.interval,
            z_range_um=args.z_range,
            z_step_um=args.z_step,
            exposure_ms=args.exposure,
        )
    except ValueError as exc:
        parser.error(str(exc))
    overrides: dict[str, object] = {}
    if args.size:
        overrides.update(width=args.size, height=args.size)
    if args.bit_depth:
        overrides["bit_depth"] = args.bit_depth
    if args.exposure is not None:
        overrides["exposure_ms"] = args.exposure
    if args.trigger:
        overrides["trigger_mode"] = args.trigger
    try:
        rig = load_rig(args.rig, **overrides)
    except RigError as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = {
        "command": "acquire",
        "rig": rig.source or rig.name,
        "frames": args.frames,
        "loop": args.loop,
        "duration_s": args.duration,
        "timepoints": args.timepoints,
        "interval_s": args.interval,
        "z_range_um": args.z_range,
        "z_step_um": args.z_step,
        "camera": overrides,
        "started": datetime.now().isoformat(timespec="seconds"),
        "mmapp_version": __version__,
    }
    request = RunRequest(
        events=events,
        out_dir=args.out,
        name=args.name,
        settings=settings,
        queue_bytes=args.queue_mb * 1024 * 1024,
        first_frame_timeout_s=args.first_frame_timeout,
    )
    controller = RunController(rig)
    try:
        result = _run_with_progress(controller, request, args)
    finally:
        rig.close()
        del rig, controller
        gc.collect()  # drop the core before exit (see DESIGN.md)
    if not args.json:
        print()
        print(f"mmapp: {result.summary()}")
    else:
        print(
            json.dumps(
                {
                    "outcome": result.outcome.value,
                    "message": result.message,
                    "dataset": str(result.dataset) if result.dataset else None,
                    "frames_acquired": result.frames_acquired,
                    "frames_saved": result.frames_saved,
                    "frames_lost": result.frames_lost,
                    "duration_s": round(result.duration_s, 3),
                    "stop_latency_s": result.stop_latency_s,
                }
            )
        )
    return EXIT_ERROR if result.outcome is RunOutcome.ERROR else EXIT_OK


def _run_with_progress(
    controller: RunController, request: RunRequest, args: argparse.Namespace
) -> RunResult:
    """Run, print progress, and turn Ctrl-C into a clean Stop."""

    stop_requested = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        print("\nmmapp: stopping (finishing the dataset)...", file=sys.stderr)
        stop_requested.set()
        controller.stop()  # may find the run still starting: see the loop

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        controller.start(request)
        result = None
        while result is None:
            if stop_requested.is_set():
                controller.stop()  # idempotent; catches a Ctrl-C during start()
            result = controller.wait(args.progress_every)
            snap = controller.stats()
            if snap is not None and not args.json:
                fill = f"{snap.buffer_fill:4.0%}" if snap.buffer_fill >= 0 else "  ? "
                print(
                    f"\rframes {snap.frames_in:7d} | {snap.write_mb_s:7.1f} MB/s | "
                    f"buffer {fill} | written {snap.frames_written:7d} | "
                    f"queue {snap.queue_frames:4d}",
                    end="",
                    flush=True,
                )
        return result
    finally:
        signal.signal(signal.SIGINT, previous)


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    from ndstorage import Dataset

    path: Path = args.dataset
    if not (path / "NDTiff.index").is_file():
        print(f"mmapp: error: {path} is not an NDTiff dataset", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.redirect_stdout(io.StringIO()):
        ds = Dataset(str(path))
    coords = ds.get_image_coordinates_list()
    print(f"dataset: {path}")
    print(f"images: {len(coords)}")
    print(f"axes: { {k: len(v) for k, v in ds.axes.items()} }")
    if coords:
        first = np.asarray(ds.read_image(**coords[0]))
        print(f"frame: {first.shape[1]}x{first.shape[0]} {first.dtype}")
    settings = ds.summary_metadata.get("mmapp", {})
    if settings:
        print(f"settings: {json.dumps(settings)}")
    ds.close()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
