"""`mmapp bench stop`: how long Stop takes, in each state a run can be in.

For each state it starts a run on the simulated rig, waits until the run is in
that state, presses Stop and measures (a) until the camera is stopped and (b)
until the run has ended with its dataset finished. Target: the camera stops
within 100 ms in every state.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from useq import MDASequence

from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.events import stream_event
from mmapp.rig import Rig, load_rig

TARGET_S = 0.100


def _wait_frames(controller: RunController, n: int) -> None:
    if not controller.wait_frames(n, 30):
        raise RuntimeError(f"fewer than {n} frames arrived")


def _flowing(rig: Rig, controller: RunController, out: Path) -> None:
    controller.start(RunRequest([stream_event()], out, "flowing"))
    _wait_frames(controller, 50)


def _waiting_for_trigger(rig: Rig, controller: RunController, out: Path) -> None:
    rig.core.setProperty(rig.core.getCameraDevice(), "TriggerMode", "External")
    controller.start(RunRequest([stream_event()], out, "trigger"))
    if not controller.wait_camera_armed(10):
        raise RuntimeError("the camera was not armed")


def _between_sequences(rig: Rig, controller: RunController, out: Path) -> None:
    seq = MDASequence(time_plan={"interval": 2.0, "loops": 5})
    controller.start(RunRequest(seq, out, "between"))
    _wait_frames(controller, 1)


STATES: dict[str, Callable[[Rig, RunController, Path], None]] = {
    "frames flowing": _flowing,
    "camera waiting for a trigger": _waiting_for_trigger,
    "between sequences": _between_sequences,
}


def measure(state: str, size: int, out: Path) -> tuple[float | None, float]:
    """(camera stop latency, run end latency) in seconds for one trial."""
    rig = load_rig(width=size, height=size, exposure_ms=2.0)
    controller = RunController(rig)
    try:
        STATES[state](rig, controller, out)
        t0 = time.perf_counter()
        controller.stop()
        result = controller.wait(30)
        ended = time.perf_counter() - t0
        if result is None or result.outcome is not RunOutcome.STOPPED:
            raise RuntimeError(f"{state}: the run did not stop cleanly: {result}")
        return result.stop_latency_s, ended
    finally:
        rig.close()
        del rig, controller
        gc.collect()


def run_stop_bench(args: argparse.Namespace) -> int:
    """Entry point of `mmapp bench stop`."""
    out = Path(tempfile.mkdtemp(prefix="mmapp-bench-stop-"))
    report: dict[str, dict] = {}
    try:
        for state in STATES:
            camera, ended = [], []
            for _ in range(args.trials):
                cam_s, end_s = measure(state, args.size, out)
                if cam_s is not None:
                    camera.append(cam_s)
                ended.append(end_s)
            report[state] = {
                "camera_stop_ms_median": round(statistics.median(camera) * 1e3, 2)
                if camera
                else None,
                "camera_stop_ms_max": round(max(camera) * 1e3, 2) if camera else None,
                "run_end_ms_median": round(statistics.median(ended) * 1e3, 1),
                "run_end_ms_max": round(max(ended) * 1e3, 1),
                "trials": args.trials,
            }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    worst = max((r["camera_stop_ms_max"] or 0.0) for r in report.values())
    report_all = {
        "states": report,
        "worst_camera_stop_ms": worst,
        "target_ms": TARGET_S * 1e3,
        "met": worst <= TARGET_S * 1e3,
    }
    if args.json:
        print(json.dumps(report_all))
        return 0
    print(f"bench stop: {args.trials} trials per state, {args.size}x{args.size} frames")
    for state, r in report.items():
        cam = (
            f"camera stopped in {r['camera_stop_ms_median']} ms median, "
            f"{r['camera_stop_ms_max']} ms max"
            if r["camera_stop_ms_median"] is not None
            else "camera was not running"
        )
        print(
            f"  {state:30s} {cam}; run ended (dataset finished) in "
            f"{r['run_end_ms_median']} ms median, {r['run_end_ms_max']} ms max"
        )
    verdict = "met" if report_all["met"] else "NOT met"
    print(f"  target: camera stopped within {TARGET_S * 1e3:.0f} ms: {verdict}")
    return 0
