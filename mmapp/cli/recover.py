"""`mmapp recover DATASET`: finish a dataset a killed run left unfinished."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmapp.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `recover` to the command's sub-parsers."""
    recover = sub.add_parser(
        "recover",
        help="rebuild a finished dataset from what a killed run left on disk",
    )
    recover.add_argument("dataset", type=Path)
    recover.add_argument("--json", action="store_true", help="the report as JSON")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Recover the dataset: exit 0 (recovered or already finished), 1 (the disk
    refused a write), 2 (not a dataset)."""
    from mmapp.data.errors import NotADatasetError
    from mmapp.data.recover import RECOVERY_FILE, recover_dataset

    path: Path = args.dataset
    try:
        report = recover_dataset(path)
    except NotADatasetError as exc:
        print(f"mmapp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"mmapp: error: recovering {path} failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(report.as_json()))
    elif report.already_finished:
        print(f"mmapp: {report.summary()}")
    else:
        print(f"mmapp: {path}: {report.summary()}")
        print(f"mmapp: the report is in {path / RECOVERY_FILE}")
    return EXIT_OK
