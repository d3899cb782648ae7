"""Turn command-line style options into the events the engine runs."""

from __future__ import annotations

from collections.abc import Sequence

from useq import MDAEvent, MDASequence

from mmapp.engine.events import stream_event


def build_events(
    *,
    frames: int | None = None,
    loop: bool = False,
    duration_s: float | None = None,
    timepoints: int | None = None,
    interval_s: float = 0.0,
    z_range_um: float | None = None,
    z_step_um: float | None = None,
    exposure_ms: float | None = None,
) -> MDASequence | Sequence[MDAEvent]:
    """Stream (frames / loop) or a useq MDASequence (time points and z).

    `exposure_ms` goes into the stream event; an MDA takes the camera's
    exposure as it is set.
    """
    if loop or frames is not None:
        if timepoints is not None or z_range_um is not None:
            raise ValueError("--frames/--loop cannot be combined with time points or z")
        if loop and frames is not None:
            raise ValueError("choose --frames N or --loop, not both")
        return [
            stream_event(
                max_frames=frames, max_duration_s=duration_s, exposure_ms=exposure_ms
            )
        ]
    if timepoints is None and z_range_um is None:
        raise ValueError(
            "say what to acquire: --frames N, --loop, --timepoints or --z-range"
        )
    plan: dict = {"axis_order": "tpzc"}
    if timepoints is not None:
        if timepoints < 1:
            raise ValueError(f"--timepoints must be >= 1, got {timepoints}")
        if interval_s < 0:
            raise ValueError(f"--interval must be >= 0 s, got {interval_s}")
        plan["time_plan"] = {"interval": interval_s, "loops": timepoints}
    if z_range_um is not None:
        if z_step_um is None or z_step_um <= 0:
            raise ValueError("--z-range needs --z-step > 0 (um)")
        if z_range_um < 0:
            raise ValueError(f"--z-range must be >= 0 um, got {z_range_um}")
        plan["z_plan"] = {"range": z_range_um, "step": z_step_um}
    return MDASequence(**plan)
