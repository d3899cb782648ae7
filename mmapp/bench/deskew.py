"""`mmapp bench deskew`: the numba deskew against scipy's affine_transform.

Both deskew the same simulated OPM volume (oblique slices of the synthetic
bead sample at the default rig's scan) to the same grid; the geometry comes
from the default rig file and its waveform program (`geometry_for`). After a
warm-up (numba compiles or loads its cache), each is timed `--repeats` times
and the medians compared; `max_abs_diff` is the largest difference of their
outputs in counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from mmapp.processing import (
    GeometryError,
    OpmGeometry,
    deskew,
    deskew_reference,
    geometry_for,
)
from mmapp.resources import default_rig_file
from mmapp.rig import read_rig_spec
from mmapp.rig.simulated import oblique_slice

TARGET_SPEEDUP = 20.0
LIGHT = 100.0


def default_geometry(positions: int) -> OpmGeometry:
    """The default rig's OPM geometry with `positions` scan positions."""
    spec = read_rig_spec(default_rig_file())
    if spec.program is None:
        raise RuntimeError(f"{default_rig_file()} has no waveform program")
    timing = spec.program.timing.model_copy(update={"positions_per_volume": positions})
    program = spec.program.model_copy(update={"timing": timing})
    return geometry_for(spec, program)


def simulated_volume(geometry: OpmGeometry, rows: int, cols: int) -> np.ndarray:
    """The oblique planes (positions, rows, cols) uint16 the simulated camera takes."""
    return np.stack(
        [
            oblique_slice(
                (rows, cols),
                np.uint16,
                geometry.scan_start_um + k * geometry.scan_step_um,
                LIGHT,
            )
            for k in range(geometry.positions)
        ]
    )


def _median_s(work: Callable[[], np.ndarray], repeats: int) -> tuple[float, list]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def measure(args: argparse.Namespace) -> dict:
    """The benchmark's figures as one dict."""
    rows = args.rows or args.size
    cols = args.cols or args.size
    geometry = default_geometry(args.positions)
    volume = simulated_volume(geometry, rows, cols)
    t0 = time.perf_counter()
    fast = deskew(volume, geometry)  # warm-up: compile or load the cache
    first_call_s = time.perf_counter() - t0
    reference = deskew_reference(volume, geometry)  # warm-up (imports scipy)
    numba_s, numba_times = _median_s(lambda: deskew(volume, geometry), args.repeats)
    scipy_s, scipy_times = _median_s(
        lambda: deskew_reference(volume, geometry), args.ref_repeats
    )
    diff = np.abs(fast.astype(np.int32) - reference.astype(np.int32))
    voxels = fast.size
    speedup = scipy_s / numba_s
    return {
        "speedup": round(speedup, 1),
        "target_speedup": TARGET_SPEEDUP,
        "met": speedup >= TARGET_SPEEDUP,
        "max_abs_diff": int(diff.max()),
        "voxels_differing": int(np.count_nonzero(diff)),
        "voxels_per_s": round(voxels / numba_s),
        "numba_s": round(numba_s, 4),
        "scipy_s": round(scipy_s, 4),
        "numba_times_s": [round(t, 4) for t in numba_times],
        "scipy_times_s": [round(t, 4) for t in scipy_times],
        "first_call_s": round(first_call_s, 3),
        "input_shape": list(volume.shape),
        "output_shape": list(fast.shape),
        "input_mb": round(volume.nbytes / 1e6, 1),
        "output_mb": round(fast.nbytes / 1e6, 1),
        "geometry": {
            "pixel_um": geometry.pixel_um,
            "sheet_angle_deg": geometry.sheet_angle_deg,
            "scan_step_um": round(geometry.scan_step_um, 6),
            "positions": geometry.positions,
            "voxel_um": list(geometry.voxel_um),
        },
        "threads": _threads(),
        "cpus": os.cpu_count(),
    }


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def run_deskew_bench(args: argparse.Namespace) -> int:
    """Entry point of `mmapp bench deskew`."""
    if importlib.util.find_spec("scipy") is None:
        print("bench deskew: needs scipy (the reference): pip install scipy")
        return 2
    try:
        report = measure(args)
    except GeometryError as exc:
        print(f"bench deskew: {exc}")
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    shape = "x".join(map(str, report["input_shape"]))
    out = "x".join(map(str, report["output_shape"]))
    print(f"bench deskew: {shape} (positions x rows x cols) -> {out} (z, y, x)")
    print(
        f"  numba {report['numba_s'] * 1e3:.1f} ms median "
        f"({report['voxels_per_s'] / 1e6:.0f} Mvoxel/s, {report['threads']} threads)"
        f"; scipy affine_transform order 1 {report['scipy_s'] * 1e3:.0f} ms"
    )
    verdict = "met" if report["met"] else "NOT met"
    print(
        f"  speedup {report['speedup']}x (target {TARGET_SPEEDUP:.0f}x: {verdict}); "
        f"max abs difference {report['max_abs_diff']} counts"
    )
    return 0
