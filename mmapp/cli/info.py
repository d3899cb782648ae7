"""`mmapp info DATASET`: what a dataset holds, how its run ended, its settings,
and whether a killed run left it unfinished (then `mmapp recover` finishes it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from mmapp.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, note_program_changes


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `info` to the command's sub-parsers."""
    info = sub.add_parser("info", help="describe a dataset")
    info.add_argument("dataset", type=Path)
    info.add_argument(
        "--json", action="store_true", help="one JSON object (settings included)"
    )


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


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Describe the dataset (exit 2 if it is not one)."""
    import numpy as np

    from mmapp.data.datasets import open_dataset_quietly
    from mmapp.data.recover import dataset_status
    from mmapp.engine.daq_link import program_change_volumes

    path: Path = args.dataset
    problem = None
    status = dataset_status(path) if path.is_dir() else None
    if not path.exists():
        problem = f"no such folder: {path}"
    elif not path.is_dir():
        problem = f"{path} is a file, not a dataset folder"
    elif status is not None and status.is_dataset and not status.finished:
        _say_unfinished(path, status.problems)
        if not (path / "NDTiff.index").is_file():
            return EXIT_ERROR  # nothing reads it before `mmapp recover`
    elif not (path / "NDTiff.index").is_file():
        problem = f"{path} is not an NDTiff dataset (it has no NDTiff.index)"
    if problem is not None:
        print(f"mmapp: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    finished = status is not None and status.finished
    ds = open_dataset_quietly(path)
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
            "processed_dataset": _linked(path, settings.get("processed_dataset")),
            "raw_dataset": _linked(path, settings.get("raw_dataset")),
            "finished": finished,
            "unfinished_because": [] if finished or status is None else status.problems,
            "recovery": _recovery_record(path),
        }
        print(json.dumps(info))
        note_program_changes(path)
        return EXIT_OK
    print(f"dataset: {path}")
    for key, label in (("processed_dataset", "processed"), ("raw_dataset", "raw")):
        if settings.get(key):
            print(f"{label} dataset: {path.parent / settings[key]}")
    if run is not None:
        print(f"run: {run.get('summary', run)}")
    elif run_problem:
        print(f"run: {run_problem}")
    recovery = _recovery_record(path)
    if recovery is not None:
        print(
            f"recovered: {recovery.get('frames_recovered')} of "
            f"{recovery.get('frames_found_on_disk')} frames found on disk, "
            f"{recovery.get('frames_left_out')} left out "
            f"({recovery.get('recovered_at')}; recovery.json)"
        )
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
    note_program_changes(path)
    return EXIT_OK


def _say_unfinished(path: Path, problems: list[str]) -> None:
    """Tell the operator the run did not finish the dataset, and what to do."""
    print(
        f"mmapp: note: {path} is unfinished (its run was killed or crashed: "
        f"{'; '.join(problems)}); `mmapp recover {path}` rebuilds a finished "
        "dataset from what reached the disk",
        file=sys.stderr,
    )


def _recovery_record(path: Path) -> dict | None:
    """What `mmapp recover` did to the dataset (recovery.json), if it ran."""
    from mmapp.data.recover import RECOVERY_FILE

    with contextlib.suppress(OSError, ValueError):
        data = json.loads((path / RECOVERY_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    return None


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


def _linked(path: Path, name: object) -> str | None:
    """The dataset a summary names beside this one (None: it names none)."""
    return str(path.parent / name) if isinstance(name, str) and name else None
