"""`mmapp acquire [PRESET]`: a headless acquisition (options override the preset)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmapp.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNSAFE,
    EXIT_USAGE,
    non_negative_float,
    positive_float,
    positive_int,
    preset_error,
    run_refused_errors,
    whole_number,
)

if TYPE_CHECKING:
    from mmapp.daq.program import WaveformProgram
    from mmapp.data.stats import StatsSnapshot
    from mmapp.engine.controller import RunController, RunRequest, RunResult
    from mmapp.presets import Preset
    from mmapp.presets.overrides import Overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `acquire` to the command's sub-parsers."""
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
    acq.add_argument(
        "--overrun",
        choices=("refuse", "warn"),
        default="refuse",
        help="a run that would fill the disk or outrun it and the camera buffer: "
        "refuse to start (default) or only warn",
    )
    what = acq.add_argument_group("what to acquire")
    what.add_argument("--frames", type=positive_int, help="stream N frames")
    what.add_argument("--loop", action="store_true", help="stream until Ctrl-C")
    what.add_argument("--duration", type=positive_float, help="with --loop: seconds")
    what.add_argument("--timepoints", type=positive_int, help="MDA time points")
    what.add_argument(
        "--interval", type=non_negative_float, help="s between points (default 0)"
    )
    what.add_argument("--z-range", type=non_negative_float, help="z range in um")
    what.add_argument("--z-step", type=positive_float, help="z step in um")
    cam = acq.add_argument_group("camera")
    cam.add_argument("--exposure", type=positive_float, help="exposure in ms")
    cam.add_argument("--size", type=positive_int, help="square frame size (pixels)")
    cam.add_argument("--bit-depth", type=whole_number, choices=(8, 10, 12, 14, 16))
    cam.add_argument("--trigger", choices=("Internal", "External"))
    acq.add_argument(
        "--channel",
        help="a preset of the rig's channel group, e.g. 488nm (the light to use)",
    )
    cam.add_argument(
        "--first-frame-timeout",
        type=positive_float,
        help="seconds to wait for the first frame (triggered cameras; default 20)",
    )
    acq.add_argument(
        "--queue-mb", type=positive_int, help="RAM queue to disk (MB, default 512)"
    )
    acq.add_argument(
        "--progress-every", type=positive_float, default=0.5, help="seconds"
    )
    acq.add_argument("--json", action="store_true", help="print the result as JSON")
    daq = acq.add_argument_group("DAQ")
    daq.add_argument(
        "--daq",
        action="store_true",
        help="play the rig file's waveform program on its DAQ card",
    )
    daq.add_argument(
        "--volumes", type=positive_int, help="with --daq: this many volumes"
    )


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the acquisition; exit 0 (completed or stopped), 1, 2 or 3 (unsafe)."""
    from mmapp.engine.controller import RunController, RunOutcome
    from mmapp.engine.preset_run import (
        DatasetExistsError,
        build_run_request,
        prepare_run,
        run_settings,
        save_preset_with_dataset,
    )
    from mmapp.presets import PresetError, load_preset
    from mmapp.presets.overrides import apply_overrides
    from mmapp.rig import RigError, RigSafetyError

    refused = run_refused_errors()

    if args.preset is None and args.out is None:
        parser.error("--out is required without a preset")
    try:
        base = load_preset(args.preset) if args.preset is not None else None
        program, frames = _daq_program(parser, args, base)
        preset = apply_overrides(base, _overrides(args, program, frames))
    except PresetError as exc:
        return preset_error(exc)
    except RigError as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        parser.error(str(exc))
    acquisition = preset.acquisition
    settings = run_settings(
        "acquire",
        preset,
        preset_file=args.preset,
        details={
            "mode": acquisition.mode,
            "frames": getattr(acquisition, "frames", None),
            "loop": acquisition.mode == "stream" and acquisition.frames is None,
            "duration_s": getattr(acquisition, "duration_s", None),
        },
    )
    try:  # everything `preset validate` checks too, before anything starts
        notes: list[str] = []
        rig = prepare_run(preset, on_overrun=args.overrun, notes=notes)
    except refused as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in notes:  # warnings (--overrun warn) to stderr, notes to stdout
        warning = note.startswith("warning:")
        print(
            f"mmapp: {note}" if warning else f"mmapp: note: {note}",
            file=sys.stderr if warning else sys.stdout,
        )
    if (
        preset.program is None
        and acquisition.mode == "stream"
        and rig.light_check is not None
        and not rig.light_check()
    ):
        print(
            "mmapp: warning: no light is on (no laser, no channel chosen): the "
            "frames will be dark; choose one with --channel (e.g. --channel 488nm)",
            file=sys.stderr,
        )
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
        for warning in result.warnings:
            print(f"mmapp: warning: {warning}", file=sys.stderr)
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
                    "processed_dataset": (
                        str(result.processed_dataset)
                        if result.processed_dataset
                        else None
                    ),
                    "processing": (
                        result.processing.as_dict() if result.processing else None
                    ),
                    "warnings": list(result.warnings),
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
        channel=args.channel,
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


def _run_with_progress(
    controller: RunController, request: RunRequest, args: argparse.Namespace
) -> RunResult:
    """Run, print progress, and turn Ctrl-C, SIGTERM, SIGHUP (and Windows'
    console close) into a clean Stop."""
    from mmapp.cli.stop_signals import stop_on_signals
    from mmapp.engine.daq_link import STOP_BOUND_S

    requests = 0

    def on_stop(why: str) -> None:
        nonlocal requests
        requests += 1
        if requests == 1:
            cause = "" if why == "SIGINT" else f" ({why})"
            print(
                f"\nmmapp: stopping{cause} (finishing the dataset)...",
                file=sys.stderr,
            )
        else:
            print(
                f"\nmmapp: {why}: still stopping (the dataset is being finished "
                f"and the rig made safe; this ends within {STOP_BOUND_S:.0f} s)",
                file=sys.stderr,
            )
        controller.stop()  # may find the run still starting: see the loop

    def wait_stopped(timeout: float) -> bool:
        return controller.wait(timeout) is not None

    with stop_on_signals(on_stop, wait_stopped) as stop_requested:
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
                    f"queue {snap.queue_frames:4d}{_processing_progress(snap)}",
                    end="",
                    flush=True,
                )
        return result


def _processing_progress(snap: StatsSnapshot) -> str:
    """The progress line's processing part ("" without a chain)."""
    p = snap.processing
    if p is None:
        return ""
    text = f" | processed {p.frames_processed:7d} -> {p.outputs_written:6d} saved"
    if p.frames_not_processed:
        text += f" | BEHIND: {p.frames_not_processed} not processed"
    if p.disabled:
        text += " | processing DISABLED"
    return text
