"""`mmapp preset validate FILE...` and `mmapp preset from-dataset DATASET`."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmapp.cli import (
    EXIT_OK,
    EXIT_USAGE,
    note_program_changes,
    preset_error,
    run_refused_errors,
)

if TYPE_CHECKING:
    from mmapp.presets import Preset


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `preset` and its sub-commands to the command's sub-parsers."""
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


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Validate preset files, or write the preset a dataset was acquired with."""
    from mmapp.presets import PresetError, load_preset, preset_to_json, save_preset

    if args.preset_command == "validate":
        code = EXIT_OK
        for path in args.files:
            try:
                preset = load_preset(path)
            except PresetError as exc:
                code = preset_error(exc)
                continue
            problem = refused_run(preset)
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
        return preset_error(exc)
    if args.output is None:
        sys.stdout.write(preset_to_json(preset))
    else:
        save_preset(preset, args.output)
        print(f"mmapp: wrote {args.output}")
    note_program_changes(args.dataset)
    return EXIT_OK


def refused_run(preset: Preset) -> str | None:
    """Why `mmapp acquire` would refuse this preset (None: it would start).

    The same checks as acquire (prepare_run): the rig is loaded, its device
    settings applied, the run checked against it and closed again; the save
    directory is checked without creating it.
    """
    from mmapp.engine.preset_run import prepare_run

    try:
        rig = prepare_run(preset, create_directory=False)
    except run_refused_errors() as exc:
        return str(exc)
    rig.close()
    del rig
    gc.collect()  # drop the core (see DESIGN.md)
    return None
