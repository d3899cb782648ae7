"""Events the engine understands beyond `useq`: the endless stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from useq import CustomAction, MDAEvent

STREAM_ACTION = "mmapp.stream"
BARRIER_ACTION = "mmapp.barrier"  # does nothing; ends the sequence before it

# MDAEvent.index key -> NDTiff axis name
AXIS_NAMES = {"t": "time", "z": "z", "c": "channel", "p": "position", "g": "grid"}


def stream_event(
    *,
    max_frames: int | None = None,
    max_duration_s: float | None = None,
    exposure_ms: float | None = None,
) -> MDAEvent:
    """One event that streams frames until Stop (or a frame/duration limit)."""
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if max_duration_s is not None and max_duration_s <= 0:
        raise ValueError(f"max_duration_s must be > 0, got {max_duration_s}")
    data: dict[str, Any] = {"max_frames": max_frames, "max_duration_s": max_duration_s}
    return MDAEvent(
        action=CustomAction(name=STREAM_ACTION, data=data), exposure=exposure_ms
    )


def indexed_events(base: MDAEvent, axis: str = "t") -> Callable[[int], MDAEvent]:
    """`i -> base with index {axis: i}`: the stream's per-frame events, cheaply.

    What `base.model_copy(update={"index": {axis: i}})` gives (a shallow copy,
    no validation), built from the template's fields directly: a third of the
    time, per frame.
    """
    cls = type(base)
    fields = dict(base.__dict__)
    fields_set = set(base.__pydantic_fields_set__) | {"index"}
    extra, private = base.__pydantic_extra__, base.__pydantic_private__
    new, put = object.__new__, object.__setattr__

    def event_at(i: int) -> MDAEvent:
        event = new(cls)
        own = fields.copy()
        own["index"] = {axis: i}
        put(event, "__dict__", own)
        put(event, "__pydantic_fields_set__", fields_set.copy())
        put(event, "__pydantic_extra__", None if extra is None else dict(extra))
        put(event, "__pydantic_private__", None if private is None else dict(private))
        return event

    return event_at


def is_stream_event(event: MDAEvent) -> bool:
    """Whether this is the engine's streaming event."""
    action = event.action
    return isinstance(action, CustomAction) and action.name == STREAM_ACTION


def coordinates_for(event: MDAEvent) -> dict[str, int | str]:
    """NDTiff axes of the frame an event produced (channel by its name)."""
    coords: dict[str, int | str] = {}
    for key, value in event.index.items():
        if key == "c" and event.channel is not None:
            coords["channel"] = event.channel.config
        else:
            coords[AXIS_NAMES.get(key, key)] = int(value)
    if not coords:
        coords["time"] = 0
    return coords


def barrier_event() -> MDAEvent:
    """An event that acquires nothing: the engine has run everything before it
    when the event after it is asked for (adaptive processors' added events)."""
    return MDAEvent(action=CustomAction(name=BARRIER_ACTION))


def is_barrier_event(event: MDAEvent) -> bool:
    """Whether this is a barrier (see barrier_event)."""
    action = event.action
    return isinstance(action, CustomAction) and action.name == BARRIER_ACTION
