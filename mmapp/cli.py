"""Command line: `mmapp` (the main window), `mmapp --selftest`, `mmapp acquire
[PRESET]`, `mmapp preset`, `mmapp sim-daq`, `mmapp bench`, `mmapp info`."""

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmapp import __version__

if TYPE_CHECKING:
    from mmapp.daq.program import WaveformProgram
    from mmapp.engine.controller import RunController, RunRequest, RunResult
    from mmapp.presets import Preset, PresetError
    from mmapp.presets.overrides import Overrides

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_UNSAFE = 3  # the rig could not be made safe (whatever the data did)


def _number_type(
    convert: type, test: Callable[[float], bool], what: str
) -> Callable[[str], int | float]:
    """An argparse type: a number that passes `test`, else "'TEXT' is not WHAT"."""

    def parse(text: str) -> int | float:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value != value or not test(value):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # what argparse says if anything else goes wrong
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive whole number")
_whole_number = _number_type(int, lambda v: True, "a whole number")
_positive_float = _number_type(
    float, lambda v: 0 < v < float("inf"), "a positive number"
)
_non_negative_float = _number_type(
    float, lambda v: 0 <= v < float("inf"), "a number >= 0"
)


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
        "--preset",
        dest="gui_preset",
        type=Path,
        metavar="FILE",
        help="open the window with this experiment preset (File > Open)",
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="open the window on the simulated rig, acquire through its controls, "
        "check the dataset, exit 0 (nonzero with the reason otherwise)",
    )
    sub = parser.add_subparsers(dest="command")

    acq = sub.add_parser(
        "acquire",
        help="run an acquisition headless (from a preset, options override it)",
    )
    acq.add_argument(
        "preset", nargs="?", type=Path, help="preset file (.mmpreset); optional"
    )
    acq.add_argument(
        "--out", type=Path, help="save directory (required without a preset)"
    )
    acq.add_argument(
        "--name", help="dataset name template ({name}, {date}, {time} allowed)"
    )
    acq.add_argument(
        "--if-exists",
        choices=("increment", "error"),
        help="a dataset of that name exists: next _N suffix, or refuse to start",
    )
    acq.add_argument("--rig", type=Path, help="rig file (.json) or Micro-Manager .cfg")
    what = acq.add_argument_group("what to acquire")
    what.add_argument("--frames", type=_positive_int, help="stream N frames")
    what.add_argument("--loop", action="store_true", help="stream until Ctrl-C")
    what.add_argument("--duration", type=_positive_float, help="with --loop: seconds")
    what.add_argument("--timepoints", type=_positive_int, help="MDA time points")
    what.add_argument(
        "--interval", type=_non_negative_float, help="s between points (default 0)"
    )
    what.add_argument("--z-range", type=_non_negative_float, help="z range in um")
    what.add_argument("--z-step", type=_positive_float, help="z step in um")
    cam = acq.add_argument_group("camera")
    cam.add_argument("--exposure", type=_positive_float, help="exposure in ms")
    cam.add_argument("--size", type=_positive_int, help="square frame size (pixels)")
    cam.add_argument("--bit-depth", type=_whole_number, choices=(8, 10, 12, 14, 16))
    cam.add_argument("--trigger", choices=("Internal", "External"))
    cam.add_argument(
        "--first-frame-timeout",
        type=_positive_float,
        help="seconds to wait for the first frame (triggered cameras; default 20)",
    )
    acq.add_argument(
        "--queue-mb", type=_positive_int, help="RAM queue to disk (MB, default 512)"
    )
    acq.add_argument(
        "--progress-every", type=_positive_float, default=0.5, help="seconds"
    )
    acq.add_argument("--json", action="store_true", help="print the result as JSON")
    daq = acq.add_argument_group("DAQ")
    daq.add_argument(
        "--daq",
        action="store_true",
        help="play the rig file's waveform program on its DAQ card",
    )
    daq.add_argument(
        "--volumes", type=_positive_int, help="with --daq: this many volumes"
    )

    sim_daq = sub.add_parser(
        "sim-daq", help="serve the simulated NI-DAQmx card over gRPC (standalone)"
    )
    sim_daq.add_argument(
        "--port", type=_whole_number, default=0, help="TCP port (0: any free)"
    )
    sim_daq.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim_daq.add_argument("--device", default="Dev1", help="device name")

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
    info.add_argument(
        "--json", action="store_true", help="one JSON object (settings included)"
    )

    preset = sub.add_parser("preset", help="experiment presets")
    preset_sub = preset.add_subparsers(dest="preset_command", required=True)
    validate = preset_sub.add_parser("validate", help="check preset files")
    validate.add_argument("files", type=Path, nargs="+")
    from_ds = preset_sub.add_parser(
        "from-dataset", help="the preset a dataset was acquired with"
    )
    from_ds.add_argument("dataset", type=Path)
    from_ds.add_argument(
        "-o", "--output", type=Path, help="write here (default: print it)"
    )
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
    from mmapp.console import setup_console_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_console_logging()  # the console says mmapp's own messages only
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
    if args.command == "preset":
        return _cmd_preset(args)
    if args.command == "sim-daq":
        return _cmd_sim_daq(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _cmd_gui(args: argparse.Namespace) -> int:
    """`mmapp` alone: the main window (Qt is imported only here)."""
    if args.selftest:
        from mmapp.gui.selftest import run_selftest

        return run_selftest()
    from mmapp.gui.app import run_gui

    return run_gui(
        str(args.gui_rig) if args.gui_rig else None,
        str(args.gui_preset) if args.gui_preset else None,
    )


def _overrides(
    args: argparse.Namespace,
    program: WaveformProgram | None = None,
    frames: int | None = None,
) -> Overrides:
    from mmapp.presets.overrides import Overrides

    return Overrides(
        out=args.out,
        name=args.name,
        if_exists=args.if_exists,
        rig=args.rig,
        program=program,
        frames=args.frames if frames is None else frames,
        loop=args.loop,
        duration_s=args.duration,
        timepoints=args.timepoints,
        interval_s=args.interval,
        z_range_um=args.z_range,
        z_step_um=args.z_step,
        exposure_ms=args.exposure,
        size=args.size,
        bit_depth=args.bit_depth,
        trigger=args.trigger,
        queue_mb=args.queue_mb,
        first_frame_timeout_s=args.first_frame_timeout,
    )


def _daq_program(
    parser: argparse.ArgumentParser, args: argparse.Namespace, base: Preset | None
) -> tuple[WaveformProgram | None, int | None]:
    """--daq and --volumes: (the rig file's program if --daq takes it, frames).

    A preset's own program always plays; --daq takes the rig file's program
    when the preset has none; --volumes N streams N cycles of the program.
    """
    from mmapp.daq.render import render
    from mmapp.presets import ConfigRig
    from mmapp.resources import default_rig_file
    from mmapp.rig import RigError, read_rig_spec

    if args.volumes is not None and (args.frames is not None or args.loop):
        parser.error("--volumes replaces --frames and --loop")
    program = base.program if base is not None else None
    from_rig = None
    if args.daq and program is None:
        rig_file: Path | None = args.rig
        if rig_file is None and base is not None:
            rig = base.rig
            named = rig.path if isinstance(rig, ConfigRig) else rig.file
            rig_file = Path(named).expanduser() if named else None
        rig_file = rig_file or default_rig_file()
        if rig_file.suffix.lower() != ".cfg":  # a .cfg holds no program
            spec = read_rig_spec(rig_file)
            from_rig = program = spec.program if spec.daq is not None else None
        if program is None:
            raise RigError("--daq: the rig file has no 'daq' section or no 'program'")
    if args.volumes is None:
        return from_rig, None
    if program is None:
        parser.error("--volumes goes with --daq (or a preset with a program)")
    return from_rig, args.volumes * len(render(program).frames)


def _preset_error(exc: PresetError) -> int:
    """Print a bad preset's problems, one field path per line; exit code 2."""
    print(f"mmapp: error: bad preset {exc.source}:", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue}", file=sys.stderr)
    return EXIT_USAGE


def _rig_settings(preset: Preset) -> dict[str, object]:
    """The rig a preset runs on, as the run settings record it."""
    from mmapp.presets import ConfigRig
    from mmapp.resources import default_rig_file

    if isinstance(preset.rig, ConfigRig):
        return {"rig": preset.rig.path, "camera": {}}
    rig = preset.rig.file or str(default_rig_file())
    return {"rig": rig, "camera": preset.rig.camera.overrides()}


def _cmd_acquire(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from mmapp.engine.controller import RunController, RunOutcome
    from mmapp.engine.preset_run import (
        DatasetExistsError,
        build_run_request,
        prepare_run,
        save_preset_with_dataset,
    )
    from mmapp.presets import PresetError, load_preset
    from mmapp.presets.overrides import apply_overrides
    from mmapp.rig import RigError, RigSafetyError

    refused = _run_refused_errors()

    if args.preset is None and args.out is None:
        parser.error("--out is required without a preset")
    try:
        base = load_preset(args.preset) if args.preset is not None else None
        program, frames = _daq_program(parser, args, base)
        preset = apply_overrides(base, _overrides(args, program, frames))
    except PresetError as exc:
        return _preset_error(exc)
    except RigError as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        parser.error(str(exc))
    acquisition = preset.acquisition
    settings = {
        "command": "acquire",
        "preset_file": str(args.preset) if args.preset is not None else None,
        "mode": acquisition.mode,
        "frames": getattr(acquisition, "frames", None),
        "loop": acquisition.mode == "stream" and acquisition.frames is None,
        "duration_s": getattr(acquisition, "duration_s", None),
        **_rig_settings(preset),
    }
    try:  # everything `preset validate` checks too, before anything starts
        rig = prepare_run(preset)
    except refused as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        request = build_run_request(preset, settings=settings, rig_name=rig.name)
    except DatasetExistsError as exc:  # taken since prepare_run: a race
        rig.close()
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    controller = RunController(rig)
    unsafe_at_close: str | None = None
    try:
        result = _run_with_progress(controller, request, args)
    finally:
        try:
            rig.close()
        except RigSafetyError as exc:  # unloaded all the same; said below
            unsafe_at_close = str(exc)
        del rig, controller
        gc.collect()  # drop the core before exit (see DESIGN.md)
    if result.dataset is not None:
        try:
            save_preset_with_dataset(preset, result.dataset)
        except OSError as exc:  # the summary metadata holds it anyway
            print(f"mmapp: warning: preset not copied: {exc}", file=sys.stderr)
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
    if result.outcome is RunOutcome.UNSAFE:
        return EXIT_UNSAFE
    if unsafe_at_close is not None:
        print(
            f"mmapp: error: THE RIG WAS NOT MADE SAFE when it was closed: "
            f"{unsafe_at_close}",
            file=sys.stderr,
        )
        return EXIT_UNSAFE
    return EXIT_ERROR if result.outcome is RunOutcome.ERROR else EXIT_OK


def _cmd_preset(args: argparse.Namespace) -> int:
    from mmapp.presets import PresetError, load_preset, preset_to_json, save_preset

    if args.preset_command == "validate":
        code = EXIT_OK
        for path in args.files:
            try:
                preset = load_preset(path)
            except PresetError as exc:
                code = _preset_error(exc)
                continue
            problem = _refused_run(preset)
            if problem is not None:
                print(f"mmapp: error: {path}: {problem}", file=sys.stderr)
                code = EXIT_USAGE
                continue
            print(
                f"{path}: OK ({preset.name!r}, schema version {preset.schema_version})"
            )
        return code
    from mmapp.engine.preset_run import preset_from_dataset

    try:
        preset = preset_from_dataset(args.dataset)
    except PresetError as exc:
        return _preset_error(exc)
    if args.output is None:
        sys.stdout.write(preset_to_json(preset))
    else:
        save_preset(preset, args.output)
        print(f"mmapp: wrote {args.output}")
    _note_program_changes(args.dataset)
    return EXIT_OK


def _run_refused_errors() -> tuple[type[Exception], ...]:
    """What prepare_run raises when `mmapp acquire` would refuse to start."""
    from mmapp.engine.preset_run import DatasetExistsError, RunRefusedError
    from mmapp.presets import ApplyError
    from mmapp.rig import RigError

    return (RunRefusedError, RigError, ApplyError, DatasetExistsError)


def _refused_run(preset: Preset) -> str | None:
    """Why `mmapp acquire` would refuse this preset (None: it would start).

    The same checks as acquire (prepare_run): the rig is loaded, its device
    settings applied, the run checked against it and closed again; the save
    directory is checked without creating it.
    """
    from mmapp.engine.preset_run import prepare_run

    try:
        rig = prepare_run(preset, create_directory=False)
    except _run_refused_errors() as exc:
        return str(exc)
    rig.close()
    del rig
    gc.collect()  # drop the core (see DESIGN.md)
    return None


def _note_program_changes(dataset: Path) -> None:
    from mmapp.engine.daq_link import PROGRAM_CHANGES_FILE, program_change_volumes

    try:
        volumes = program_change_volumes(dataset)
    except ValueError as exc:
        print(f"mmapp: note: {exc}", file=sys.stderr)
        return
    if volumes:
        print(
            f"mmapp: note: the waveform program was changed during this run (from "
            f"volume {', '.join(map(str, volumes))}); the preset holds the program "
            f"it started with, the changes are in {dataset / PROGRAM_CHANGES_FILE}",
            file=sys.stderr,
        )


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


def _cmd_sim_daq(args: argparse.Namespace) -> int:
    from mmapp.rig.simulated import DeviceSpec, SimDaqDevice, SimDaqServer

    try:
        server = SimDaqServer(
            SimDaqDevice(DeviceSpec(name=args.device)), args.host, args.port
        ).start()
    except (OSError, RuntimeError) as exc:
        print(f"mmapp: error: cannot serve on {args.host}:{args.port}: {exc}")
        return EXIT_USAGE
    print(
        f"mmapp: simulated NI-DAQmx device {args.device} (PCIe-6363) serving on "
        f"{server.address}\n"
        f"  nidaqmx.Task(grpc_options=GrpcSessionOptions("
        f"grpc_channel=grpc.insecure_channel({server.address!r}), session_name=''))"
        f"\n  Ctrl-C stops.",
        flush=True,
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited off
    signal.signal(
        signal.SIGTERM,
        lambda *_: threading.Thread(target=server.stop, daemon=True).start(),
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def _scalar(value: object) -> str:
    """A value on a settings line: strings bare, the rest as JSON spells it."""
    return value if isinstance(value, str) else json.dumps(value)


def readable_lines(value: object, indent: int = 0) -> list[str]:
    """Nested settings as indented `key: value` lines (lists of objects as
    `- ` items, lists of plain values on one line)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            nested = isinstance(item, dict) and item
            if nested or (
                isinstance(item, list) and any(isinstance(i, dict) for i in item)
            ):
                lines += [f"{pad}{key}:", *readable_lines(item, indent + 2)]
            elif isinstance(item, list):
                lines.append(f"{pad}{key}: [{', '.join(map(_scalar, item))}]")
            else:
                lines.append(f"{pad}{key}: {_scalar(item) if item != {} else '{}'}")
    elif isinstance(value, list):
        for item in value:
            sub = readable_lines(item, indent + 2) if isinstance(item, dict) else []
            if sub:
                lines += [f"{pad}- {sub[0].lstrip()}", *sub[1:]]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    from ndstorage import Dataset

    from mmapp.engine.daq_link import program_change_volumes

    path: Path = args.dataset
    problem = None
    if not path.exists():
        problem = f"no such folder: {path}"
    elif not path.is_dir():
        problem = f"{path} is a file, not a dataset folder"
    elif not (path / "NDTiff.index").is_file():
        problem = f"{path} is not an NDTiff dataset (it has no NDTiff.index)"
    if problem is not None:
        print(f"mmapp: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.redirect_stdout(io.StringIO()):
        ds = Dataset(str(path))
    try:
        coords = ds.get_image_coordinates_list()
        axes = {k: len(v) for k, v in ds.axes.items()}
        first = np.asarray(ds.read_image(**coords[0])) if coords else None
        settings = dict(ds.summary_metadata.get("mmapp", {}))
    finally:
        ds.close()
    preset = settings.pop("preset", None)
    run, run_problem = _run_record(path)
    frame = None
    if first is not None:
        frame = {
            "width": first.shape[1],
            "height": first.shape[0],
            "dtype": str(first.dtype),
        }
    if args.json:
        try:
            changes: list[int] | None = program_change_volumes(path)
        except ValueError:
            changes = None
        info = {
            "dataset": str(path),
            "run": run,
            "images": len(coords),
            "axes": axes,
            "frame": frame,
            "settings": settings,
            "preset": preset,
            "program_changed_at_volumes": changes,
        }
        print(json.dumps(info))
        _note_program_changes(path)
        return EXIT_OK
    print(f"dataset: {path}")
    if run is not None:
        print(f"run: {run.get('summary', run)}")
    elif run_problem:
        print(f"run: {run_problem}")
    print(f"images: {len(coords)}")
    print(f"axes: {', '.join(f'{k} {n}' for k, n in axes.items()) or 'none'}")
    if frame is not None:
        print(f"frame: {frame['width']}x{frame['height']} {frame['dtype']}")
    if settings:
        print("settings:")
        print("\n".join(readable_lines(settings, 2)))
    if isinstance(preset, dict):
        print(
            f"preset: {preset.get('name')!r} (schema version "
            f"{preset.get('schema_version')}; mmapp preset from-dataset {path})"
        )
    _note_program_changes(path)
    return EXIT_OK


def _run_record(path: Path) -> tuple[dict | None, str | None]:
    """How the dataset's run ended (run.json), or why that is not known."""
    from mmapp.engine.controller import RUN_RECORD_FILE

    record = path / RUN_RECORD_FILE
    if not record.is_file():
        return None, f"not recorded (no {RUN_RECORD_FILE}: the run did not end)"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{record} cannot be read: {exc}"
    return (data, None) if isinstance(data, dict) else (None, f"{record}: not a record")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
