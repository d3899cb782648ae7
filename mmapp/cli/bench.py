"""`mmapp bench stream|stop|gui|deskew`: benchmarks (the work is in `mmapp.bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmapp.cli import positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `bench` and its benchmarks to the command's sub-parsers."""
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    stream = bench_sub.add_parser(
        "stream",
        help="camera -> NDTiff vs raw writes (both until fsync), interleaved",
    )
    stream.add_argument("--dir", type=Path, required=True, help="where to write")
    stream.add_argument(
        "--size",
        type=positive_int,
        help="pixels (default 2048; with --rig: the camera's frame, or an ROI "
        "of this size)",
    )
    stream.add_argument(
        "--rig",
        type=Path,
        metavar="CFG",
        help="stream this rig's camera (a Micro-Manager .cfg or a rig file; "
        "default: the simulated camera)",
    )
    stream.add_argument("--frames", type=positive_int, default=500)
    stream.add_argument(
        "--rate", type=positive_float, help="pace the camera at FPS (default: free)"
    )
    stream.add_argument(
        "--rate-fraction",
        type=positive_float,
        help="pace the camera at this fraction of the measured raw frame rate",
    )
    stream.add_argument(
        "--duration",
        type=positive_float,
        help="with --rate/--rate-fraction: seconds of acquisition (sets --frames)",
    )
    stream.add_argument(
        "--repeats", type=positive_int, default=3, help="pipeline runs (median)"
    )
    stream.add_argument("--buffer-mb", type=positive_int, default=256)
    stream.add_argument("--queue-mb", type=positive_int, default=512)
    stream.add_argument(
        "--io",
        choices=("both", "positional", "portable"),
        help="the NDTiff sink's write path: positional (pwritev), portable "
        "(seek+write), or both alternately (default: what this OS uses)",
    )
    stream.add_argument("--keep", action="store_true", help="keep the dataset")
    stream.add_argument(
        "--cpu",
        action="store_true",
        help="per pipeline run: each thread's CPU time per frame (Linux)",
    )
    stream.add_argument(
        "--deskew",
        action="store_true",
        help="the rig's OPM program at --rate with on-the-fly deskew + MIP "
        "(see mmapp.bench.stream_deskew)",
    )
    stream.add_argument(
        "--rows", type=positive_int, help="with --deskew: camera rows (default --size)"
    )
    stream.add_argument(
        "--volumes", type=positive_int, default=10, help="with --deskew: volumes"
    )
    stream.add_argument(
        "--chain",
        action="append",
        choices=("deskew", "empty", "none"),
        help="with --deskew: the chains to run, interleaved (default: deskew)",
    )
    stream.add_argument(
        "--processing-queue-mb",
        type=positive_int,
        default=256,
        help="with --deskew: the chain's queue_mb (RAM for frames in processing; "
        "the preset field's default is 256)",
    )
    stream.add_argument("--json", action="store_true", help="one JSON object")

    stop = bench_sub.add_parser("stop", help="Stop latency in each run state")
    stop.add_argument("--trials", type=positive_int, default=10)
    stop.add_argument("--size", type=positive_int, default=512, help="pixels")
    stop.add_argument("--json", action="store_true", help="one JSON object")

    gui = bench_sub.add_parser(
        "gui", help="acquisition throughput with the live view shown vs hidden"
    )
    gui.add_argument("--size", type=positive_int, default=512, help="pixels")
    gui.add_argument(
        "--seconds", type=positive_float, default=3.0, help="per acquisition"
    )
    gui.add_argument("--pairs", type=positive_int, default=3, help="shown+hidden")
    gui.add_argument(
        "--rate", type=positive_float, help="pace the camera at FPS (default: free)"
    )
    gui.add_argument("--dir", type=Path, help="where to write (default: temp)")
    gui.add_argument("--json", action="store_true", help="one JSON object")

    deskew = bench_sub.add_parser(
        "deskew", help="numba deskew vs scipy affine_transform (same volume)"
    )
    deskew.add_argument(
        "--size", type=positive_int, default=512, help="frame rows and columns"
    )
    deskew.add_argument("--rows", type=positive_int, help="frame rows (over --size)")
    deskew.add_argument("--cols", type=positive_int, help="frame columns")
    deskew.add_argument(
        "--positions", type=positive_int, default=50, help="scan positions per volume"
    )
    deskew.add_argument(
        "--repeats", type=positive_int, default=9, help="numba runs (median)"
    )
    deskew.add_argument(
        "--ref-repeats", type=positive_int, default=3, help="scipy runs (median)"
    )
    deskew.add_argument("--json", action="store_true", help="one JSON object")
    _add_endurance(bench_sub)


def _add_endurance(bench_sub: argparse._SubParsersAction) -> None:
    endurance = bench_sub.add_parser(
        "endurance",
        help="Start/Stop cycles (API, GUI) and a long paced loop: no resource grows",
    )
    endurance.add_argument("--dir", type=Path, required=True, help="where to write")
    endurance.add_argument("--cycles", type=positive_int, default=100)
    endurance.add_argument(
        "--gui-cycles", type=int, default=100, help="0: no GUI phase"
    )
    endurance.add_argument(
        "--minutes", type=float, default=30.0, help="the paced loop (0: none)"
    )
    endurance.add_argument("--rate", type=positive_float, default=200.0, help="fps")
    endurance.add_argument("--size", type=positive_int, default=256, help="pixels")
    endurance.add_argument("--json", action="store_true", help="one JSON object")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the benchmark named by `args.bench_command`."""
    if args.bench_command == "gui":
        from mmapp.bench.gui import run_gui_bench

        return run_gui_bench(args)
    if args.bench_command == "endurance":
        from mmapp.bench.endurance import run_endurance_bench

        return run_endurance_bench(args)
    if args.bench_command == "deskew":
        from mmapp.bench.deskew import run_deskew_bench

        return run_deskew_bench(args)
    if args.bench_command == "stop":
        from mmapp.bench.stop import run_stop_bench

        return run_stop_bench(args)
    if args.size is None and not (args.rig and not args.deskew):
        args.size = 2048
    if args.deskew:
        if args.rig:
            parser.error("--rig and --deskew cannot be combined")
        from mmapp.bench.stream_deskew import run_stream_deskew_bench

        return run_stream_deskew_bench(args)
    from mmapp.bench.stream import run_stream_bench

    return run_stream_bench(args)
