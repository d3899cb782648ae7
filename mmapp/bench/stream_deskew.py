"""`mmapp bench stream --deskew`: the pipeline with on-the-fly OPM deskew.

The simulated rig plays its OPM waveform program (galvo sawtooth, 488 nm
blanking, camera triggers) with the frame time set for `--rate`; the camera
streams `--volumes` volumes into NDTiff while the processing chain
(background 100 -> deskew -> MIP) turns every volume into its maximum
projection, saved as the processed dataset. Reported: frames per second,
frames dropped (camera buffer), frames the chain could not take (it fell
behind), volumes deskewed, the time from the last frame to the run's end, and
whether processing kept up (every volume deskewed, nothing dropped, and the run
ended within two volume periods, at least 1 s, of its last frame: no backlog
built up). `--chain none` / `empty` run the same program
without a chain / with an empty one (the raw path's reference).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from mmapp.daq.program import Timing, WaveformProgram
from mmapp.engine.controller import RunController, RunRequest, RunResult
from mmapp.engine.events import stream_event
from mmapp.processing import ProcessingChain, ProcessingStep, geometry_for
from mmapp.rig import load_rig, set_buffer_mb
from mmapp.rig.buffer import wait_prefaulted

DESKEW_CHAIN = ProcessingChain(
    steps=[
        ProcessingStep(name="background", params={"value": 100}),
        ProcessingStep(name="deskew"),
        ProcessingStep(name="mip"),
    ]
)
# kept up: the run ended within 2 volume periods (at least this) of its last
# frame; a processing backlog that grew during the run ends later
MAX_LAG_S = 1.0
CHAINS = {"deskew": DESKEW_CHAIN, "empty": ProcessingChain(), "none": None}


def paced_program(program: WaveformProgram, rate_fps: float) -> WaveformProgram:
    """The program with its frame time set for `rate_fps` (readout kept)."""
    t = program.timing
    exposure = 1.0 / rate_fps - t.readout_s
    if exposure <= 1.0 / t.sample_rate_hz:
        raise ValueError(
            f"--rate {rate_fps:g}: a frame of {1000 / rate_fps:.3f} ms leaves no "
            f"exposure after the {t.readout_s * 1000:g} ms readout"
        )
    timing = Timing(**{**t.model_dump(), "exposure_s": exposure})
    return program.model_copy(update={"timing": timing})


def run_once(
    directory: Path,
    *,
    rows: int,
    cols: int,
    rate_fps: float,
    volumes: int,
    chain: ProcessingChain | None,
    buffer_mb: int,
    queue_mb: int,
) -> dict[str, Any]:
    """One paced run; its counts and throughput."""
    rig = load_rig(width=cols, height=rows, exposure_ms=1.0)
    try:
        spec = rig.spec
        if spec is None or spec.program is None:
            raise ValueError("the simulated rig file has no waveform program")
        program = paced_program(spec.program, rate_fps)
        set_buffer_mb(rig.core, buffer_mb)
        wait_prefaulted(rig.core)  # the ring's pages: set-up, not streaming
        rig.core.setConfig(spec.channel_group, "488nm")
        rig.core.setProperty(spec.lasers.label, "Laser 488 Power %", 20.0)
        frames = volumes * program.frames_per_cycle
        controller = RunController(rig)
        request = RunRequest(
            events=[stream_event(max_frames=frames)],
            out_dir=directory,
            name="bench-deskew",
            settings={"command": "bench stream --deskew", "rate_fps": rate_fps},
            queue_bytes=queue_mb * 1024 * 1024,
            program=program,
            processing=chain,
        )
        t0 = time.perf_counter()
        controller.start(request)
        result = controller.wait()
        t_end = time.perf_counter()
        assert result is not None
        handler = controller.handler
        first = handler.stats.first_frame_at if handler is not None else None
        last = handler.stats.last_frame_at if handler is not None else None
        elapsed = t_end - (first if first is not None else t0)  # streaming only
        deskews = chain is not None and any(s.name == "deskew" for s in chain.steps)
        geometry = geometry_for(spec, program) if deskews else None
        t = program.timing
        rendered_s = (
            program.frames_per_cycle * (t.exposure_s + t.readout_s) + t.flyback_s
        )
        # after the last frame: the last volume's processing and the writes;
        # a backlog that grew during the run shows here
        lag = t_end - last if last is not None else None
        report = _report(result, frames, volumes, elapsed, chain, lag, rendered_s)
        if first is not None and last is not None and last > first:
            report["camera_fps"] = round((frames - 1) / (last - first), 1)
        report["program_fps"] = round(program.frames_per_cycle / rendered_s, 1)
        if geometry is not None:
            report["deskewed_shape"] = list(geometry.output_shape(rows, cols))
        return report
    finally:
        rig.close()
        del rig
        gc.collect()


def _report(
    result: RunResult,
    frames: int,
    volumes: int,
    elapsed: float,
    chain: ProcessingChain | None,
    lag_s: float | None = None,
    volume_s: float = 0.0,
) -> dict[str, Any]:
    proc = result.processing
    not_processed = proc.frames_not_processed if proc else 0
    batches_dropped = proc.batches_dropped if proc else 0
    outputs = proc.outputs_written if proc else 0
    dropped = frames - result.frames_saved
    caught_up = lag_s is None or lag_s <= max(MAX_LAG_S, 2 * volume_s)
    kept_up = (
        dropped == 0
        and result.frames_lost == 0
        and caught_up
        and (
            chain is None
            or not chain.active
            or (not_processed == 0 and batches_dropped == 0 and outputs == volumes)
        )
    )
    for path in (result.dataset, result.processed_dataset):
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
    return {
        "outcome": result.outcome.value,
        "message": result.message,
        "frames": frames,
        "frames_saved": result.frames_saved,
        "dropped_frames": dropped,
        "frames_lost": result.frames_lost,
        "frames_not_processed": not_processed,
        "volumes_dropped": batches_dropped,
        "volumes_deskewed": outputs,
        "fps": round(result.frames_saved / elapsed, 1) if elapsed > 0 else None,
        "seconds": round(elapsed, 2),
        "lag_after_last_frame_s": None if lag_s is None else round(lag_s, 2),
        "kept_up": kept_up,
    }


def run_stream_deskew_bench(args: argparse.Namespace) -> int:
    """Entry point of `mmapp bench stream --deskew`."""
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    rows = args.rows or args.size
    rate = args.rate or 100.0
    say = (lambda *a: None) if args.json else print
    chains = args.chain or ["deskew"]
    queue_mb = getattr(args, "processing_queue_mb", 256)
    chains_by_name = {
        name: None if chain is None else chain.model_copy(update={"queue_mb": queue_mb})
        for name, chain in CHAINS.items()
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chains}
    try:
        for k in range(args.repeats):
            for name in chains if k % 2 == 0 else chains[::-1]:
                report = run_once(
                    directory,
                    rows=rows,
                    cols=args.size,
                    rate_fps=rate,
                    volumes=args.volumes,
                    chain=chains_by_name[name],
                    buffer_mb=args.buffer_mb,
                    queue_mb=args.queue_mb,
                )
                runs[name].append(report)
                say(
                    f"  {name:7s} #{k + 1}: {report['fps']} fps, "
                    f"{report['dropped_frames']} dropped, "
                    f"{report['frames_not_processed']} not processed, "
                    f"{report['volumes_deskewed']}/{args.volumes} volumes deskewed, "
                    f"kept up: {report['kept_up']} ({report['outcome']})"
                )
    except ValueError as exc:
        print(f"mmapp bench: {exc}")
        return 2
    summary = {
        "rows": rows,
        "cols": args.size,
        "rate_fps": rate,
        "volumes": args.volumes,
        "processing_queue_mb": queue_mb,
        "chains": {
            name: {
                "kept_up_every_run": all(r["kept_up"] for r in reports),
                "median_fps": statistics.median(r["fps"] or 0.0 for r in reports),
                "runs": reports,
            }
            for name, reports in runs.items()
        },
    }
    none = summary["chains"].get("none")
    if none and none["median_fps"]:
        for info in summary["chains"].values():  # the raw path's reference
            info["fps_vs_no_chain"] = round(info["median_fps"] / none["median_fps"], 3)
    if args.json:
        print(json.dumps(summary))
    else:
        for name, info in summary["chains"].items():
            ratio = info.get("fps_vs_no_chain")
            say(
                f"  {name}: median {info['median_fps']} fps; kept up in every run: "
                f"{info['kept_up_every_run']}"
                + (f"; {ratio} of the rate without a chain" if ratio else "")
            )
    return 0
