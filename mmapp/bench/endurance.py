"""`mmapp bench endurance`: no resource grows with the number of runs or the
length of a loop.

Three phases on the simulated rig, each sampled as it goes: Start/Stop cycles
through the API (every other one playing the rig's DAQ waveform program),
Start/Stop cycles through the main window's own buttons (DAQ on every other
one), then one loop of `--minutes` with the camera paced at `--rate`. Each
sample holds the process's RSS, threads (Python and native), open files, gRPC
channels to the card and the tasks on the simulated card. Printed per 10
cycles and per minute, and the growth from the first sample to the last.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmapp.bench.stream import rss_mb
from mmapp.daq import connection
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.plans import build_events
from mmapp.rig import Rig, load_rig

FRAMES_PER_CYCLE = 20
KEYS = (
    "rss_mb",
    "threads",
    "native_threads",
    "open_files",
    "grpc_channels",
    "daq_tasks",
)


def _count(folder: str) -> int | None:
    try:
        return len(os.listdir(folder))
    except OSError:  # not Linux: not measured here
        return None


def sample(rig: Rig | None) -> dict[str, Any]:
    """The resources this process holds now."""
    card = getattr(rig, "daq_device", None) if rig is not None else None
    tasks = getattr(card, "tasks", None)
    return {
        "rss_mb": round(rss_mb(), 1),
        "threads": threading.active_count(),
        "native_threads": _count("/proc/self/task"),
        "open_files": _count("/proc/self/fd"),
        "grpc_channels": len(connection._channels),
        "daq_tasks": len(tasks) if tasks is not None else None,
    }


def growth(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Last minus first sample; with three or more, from the second one (the
    first is taken before anything warmed up: the first DAQ run opens the
    card's channel and its thread pool once)."""
    if len(samples) < 2:
        return {}
    first, last = samples[1 if len(samples) > 2 else 0], samples[-1]
    return {
        k: None if first[k] is None or last[k] is None else round(last[k] - first[k], 1)
        for k in KEYS
    }


def _line(label: str, s: dict[str, Any]) -> str:
    return (
        f"  {label:>14s}: RSS {s['rss_mb']:7.1f} MB | threads {s['threads']:3d} "
        f"(native {s['native_threads']}) | open files {s['open_files']} | "
        f"gRPC channels {s['grpc_channels']} | DAQ tasks {s['daq_tasks']}"
    )


def api_cycles(
    cycles: int, size: int, work: Path, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Start/Stop through RunController; every other cycle with the program."""
    rig = load_rig(width=size, height=size, exposure_ms=1.0)
    samples: list[dict[str, Any]] = []
    try:
        spec = rig.spec
        program = spec.program if spec is not None else None
        rig.core.setConfig("Channel", "488nm")
        controller = RunController(rig)
        for i in range(cycles):
            with_daq = program is not None and i % 2 == 1
            controller.start(
                RunRequest(
                    events=build_events(loop=True),
                    out_dir=work,
                    name=f"cycle{i}",
                    program=program if with_daq else None,
                )
            )
            if not controller.wait_frames(FRAMES_PER_CYCLE, 30):
                raise RuntimeError(f"cycle {i + 1}: no frames within 30 s")
            controller.stop()
            result = controller.wait(60)
            if result is None or result.outcome is not RunOutcome.STOPPED:
                raise RuntimeError(
                    f"cycle {i + 1} ended "
                    f"{result.summary() if result else 'not at all'}"
                )
            if result.dataset is not None:
                shutil.rmtree(result.dataset, ignore_errors=True)
            if (i + 1) % 10 == 0 or i == 0:
                gc.collect()
                samples.append({"cycle": i + 1, **sample(rig)})
                say(_line(f"API cycle {i + 1}", samples[-1]))
    finally:
        rig.close()
        del rig
        gc.collect()
    return samples


def gui_cycles(
    cycles: int, size: int, work: Path, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Start/Stop with the window's buttons; the DAQ program every other one."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from mmapp.gui.acquisition_panel import MODE_LOOP
    from mmapp.gui.app import make_app
    from mmapp.gui.main_window import MainWindow
    from mmapp.gui.script import Step, run_steps
    from mmapp.gui.settings import AppSettings

    app = make_app()  # noqa: F841 - alive for the whole phase
    settings = AppSettings.at(work / "settings.ini")
    settings.save_dir = work / "gui-data"
    window = MainWindow(
        settings,
        rig_path="",
        sim_camera={"width": size, "height": size, "exposure_ms": 1.0},
        restore_layout=False,
    )
    samples: list[dict[str, Any]] = []
    try:
        window.show()
        acq = window.acquisition
        acq.mode.setCurrentIndex(MODE_LOOP)
        combo = window.device_panel.group_boxes.get("Channel")
        if combo is not None:
            combo.setCurrentText("488nm")
            combo.activated.emit(combo.currentIndex())

        def saved(n: int) -> bool:
            snap = window.controller.stats() if window.controller else None
            return (
                window.run_kind == "acquire"
                and snap is not None
                and (snap.frames_written >= n)
            )

        for i in range(cycles):
            acq.use_daq.setChecked(i % 2 == 1)
            run_steps(
                [
                    Step(
                        "start", acq.start_button.click, lambda: saved(FRAMES_PER_CYCLE)
                    ),
                    Step(
                        "stop", acq.stop_button.click, lambda: window.run_kind is None
                    ),
                ]
            )
            result = window.last_result
            if result is None or result.outcome is not RunOutcome.STOPPED:
                raise RuntimeError(f"GUI cycle {i + 1}: {window.last_error}")
            if result.dataset is not None:
                shutil.rmtree(result.dataset, ignore_errors=True)
            if (i + 1) % 10 == 0 or i == 0:
                gc.collect()
                samples.append({"cycle": i + 1, **sample(window.rig)})
                say(_line(f"GUI cycle {i + 1}", samples[-1]))
    finally:
        window.close()
        gc.collect()
    return samples


def paced_loop(
    minutes: float, size: int, rate: float, work: Path, say: Callable[[str], None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One loop of `minutes` at `rate` frames/s, sampled every minute."""
    rig = load_rig(width=size, height=size, exposure_ms=0.0, readout_ms=0.0)
    samples: list[dict[str, Any]] = []
    try:
        core = rig.core
        core.setConfig("Channel", "488nm")
        core.setProperty(core.getCameraDevice(), "FrameIntervalMs", 1000.0 / rate)
        controller = RunController(rig)
        controller.start(
            RunRequest(
                events=build_events(loop=True, duration_s=minutes * 60),
                out_dir=work,
                name="loop",
            )
        )
        t0 = time.perf_counter()
        result = None
        minute = 0
        while result is None:
            result = controller.wait(
                max(0.0, t0 + 60 * (minute + 1) - time.perf_counter())
            )
            if result is None:
                minute += 1
                snap = controller.stats()
                samples.append(
                    {
                        "minute": minute,
                        "frames": snap.frames_written if snap else None,
                        **sample(rig),
                    }
                )
                say(
                    _line(f"minute {minute}", samples[-1])
                    + f" | frames {samples[-1]['frames']}"
                )
        outcome = {
            "outcome": result.outcome.value,
            "summary": result.summary(),
            "frames_saved": result.frames_saved,
            "frames_lost": result.frames_lost,
        }
        if result.dataset is not None:
            shutil.rmtree(result.dataset, ignore_errors=True)
    finally:
        rig.close()
        del rig
        gc.collect()
    return samples, outcome


def run_endurance_bench(args: argparse.Namespace) -> int:
    """Entry point of `mmapp bench endurance`."""
    say: Callable[[str], None] = (lambda _: None) if args.json else print
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mmapp-bench-endurance-", dir=args.dir))
    report: dict[str, Any] = {"size": args.size, "cycles": args.cycles}
    try:
        say(f"bench endurance: {args.cycles} API cycles, {args.size}x{args.size}")
        api = api_cycles(args.cycles, args.size, work, say)
        report["api"] = {"samples": api, "growth": growth(api)}
        if args.gui_cycles:
            say(f"bench endurance: {args.gui_cycles} GUI cycles")
            gui = gui_cycles(args.gui_cycles, args.size, work, say)
            report["gui"] = {"samples": gui, "growth": growth(gui)}
        if args.minutes:
            say(f"bench endurance: a {args.minutes:g}-minute loop at {args.rate:g} fps")
            loop, outcome = paced_loop(args.minutes, args.size, args.rate, work, say)
            report["loop"] = {
                "rate_fps": args.rate,
                "minutes": args.minutes,
                "samples": loop,
                "growth": growth(loop),
                **outcome,
            }
    except RuntimeError as exc:
        print(f"mmapp bench endurance: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    else:
        for phase in ("api", "gui", "loop"):
            if phase in report:
                say(f"  growth over the {phase} phase: {report[phase]['growth']}")
        if "loop" in report:
            say(f"  the loop: {report['loop']['summary']}")
    return 0
