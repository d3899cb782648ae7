"""Command line: `mmapp` (the main window), `mmapp --selftest`, `mmapp acquire
[PRESET]`, `mmapp preset`, `mmapp sim-daq`, `mmapp bench`, `mmapp info`,
`mmapp recover`.

One module per command (`acquire`, `info`, `preset`, `bench`, `sim_daq`,
`recover`, and
`gui` for the window); each adds its sub-parser (`add_parser`) and runs it
(`run`). They are imported when the parser is built, so `mmapp --version`
loads none of the engine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmapp import __version__

if TYPE_CHECKING:
    from mmapp.presets import PresetError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNSAFE",
    "EXIT_USAGE",
    "build_parser",
    "entry",
    "main",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_UNSAFE = 3  # the rig could not be made safe (whatever the data did)
EXIT_INTERRUPTED = 130  # Ctrl-C before a run started (as a shell reports it)


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


positive_int = _number_type(int, lambda v: v >= 1, "a positive whole number")
whole_number = _number_type(int, lambda v: True, "a whole number")
positive_float = _number_type(
    float, lambda v: 0 < v < float("inf"), "a positive number"
)
non_negative_float = _number_type(
    float, lambda v: 0 <= v < float("inf"), "a number >= 0"
)


def build_parser() -> argparse.ArgumentParser:
    """The `mmapp` argument parser."""
    from mmapp.cli import acquire, bench, gui, info, preset, recover, sim_daq

    parser = argparse.ArgumentParser(
        prog="mmapp", description="DAQ-coordinated acquisition into NDTiff."
    )
    parser.add_argument("--version", action="version", version=f"mmapp {__version__}")
    gui.add_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    acquire.add_parser(sub)
    sim_daq.add_parser(sub)
    bench.add_parser(sub)
    info.add_parser(sub)
    preset.add_parser(sub)
    recover.add_parser(sub)
    return parser


def entry() -> None:
    """Console-script entry: run, then leave without interpreter finalisation.

    Python devices loaded in a core can make the interpreter abort while it
    tears itself down ("FATAL: exception not rethrown", exit status 134), after
    the work is done and the dataset finished. Leaving with os._exit after
    flushing the output keeps the exit status the run's own.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C while mmapp itself was still loading
        print("\nmmapp: interrupted before anything was acquired", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mmapp` command."""
    from mmapp.cli import acquire, bench, gui, info, preset, recover, sim_daq
    from mmapp.console import setup_console_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_console_logging()  # the console says mmapp's own messages only
    commands: dict[str | None, Callable[..., int]] = {
        None: gui.run,
        "acquire": acquire.run,
        "bench": bench.run,
        "info": info.run,
        "preset": preset.run,
        "recover": recover.run,
        "sim-daq": sim_daq.run,
    }
    if args.command not in commands:
        parser.error(f"unknown command {args.command}")
    try:
        return commands[args.command](parser, args)
    except KeyboardInterrupt:  # Ctrl-C before a run started (a run stops cleanly)
        print("\nmmapp: interrupted before anything was acquired", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- shared by several commands -------------------------------------------------
def preset_error(exc: PresetError) -> int:
    """Print a bad preset's problems, one field path per line; exit code 2."""
    print(f"mmapp: error: bad preset {exc.source}:", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue}", file=sys.stderr)
    return EXIT_USAGE


def run_refused_errors() -> tuple[type[Exception], ...]:
    """What prepare_run raises when `mmapp acquire` would refuse to start."""
    from mmapp.engine.preset_run import DatasetExistsError, RunRefusedError
    from mmapp.presets import ApplyError
    from mmapp.rig import RigError

    return (RunRefusedError, RigError, ApplyError, DatasetExistsError)


def note_program_changes(dataset: Path) -> None:
    """Say on stderr if the waveform program was changed during the run."""
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
