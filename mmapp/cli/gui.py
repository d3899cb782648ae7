"""`mmapp` alone: the main window, `--rig`, `--preset`, `--selftest`
(Qt is imported only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The top-level options, which open the window."""
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


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Open the main window (or run the self-test)."""
    if args.selftest:
        from mmapp.gui.selftest import run_selftest

        return run_selftest()
    from mmapp.gui.app import run_gui

    return run_gui(
        str(args.gui_rig) if args.gui_rig else None,
        str(args.gui_preset) if args.gui_preset else None,
    )
