"""The event queue of adaptive processors: acquisition driven by image content.

A processor called ``fn(image, metadata, event_queue)`` (or with coords first)
may, from any pool thread:

- ``event_queue.put(event)``: acquire more (a ``useq.MDAEvent`` or a dict
  it validates from). Added events run in the same acquisition (same
  datasets, no teardown in between) after the planned events have run (an
  MDA's events, a stream's frames or duration) and every frame so far has
  been processed; then again for events those frames add, until no more are
  added (the controller feeds the runner a generator; a "barrier" event that
  acquires nothing makes sure the runner has run everything before it waits).
  They are not run when the run was stopped, failed, or plays a DAQ program
  (a program plays whole hardware sequences; a warning says so). An added
  event needs coordinates not used yet (e.g. a later ``t``): a duplicate
  ends the run with an error. On a loop (stream until Stop), added events
  run after the loop has ended by its duration or frame count.
- ``event_queue.put(None)``: end the acquisition now, as Stop does; the run
  ends STOPPED with a message naming the processor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from useq import MDAEvent

MAX_ADDED_EVENTS = 100_000  # a runaway processor cannot grow the queue unbounded


class EventQueue:
    """Events added by processors, and the end they may ask for (thread-safe)."""

    def __init__(self, on_end: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._events: list[MDAEvent] = []
        self._on_end = on_end
        self.ended_by: str | None = None  # the processor that put None
        self.added = 0  # events added over the run

    def bound_to(self, processor: str) -> _BoundQueue:
        """The queue as `processor` sees it (its name goes with an end)."""
        return _BoundQueue(self, processor)

    def put_from(self, processor: str, event: MDAEvent | Mapping | None) -> None:
        """Add an event, or end the acquisition (None)."""
        if event is None:
            with self._lock:
                first = self.ended_by is None
                if first:
                    self.ended_by = processor
            if first and self._on_end is not None:
                self._on_end(processor)
            return
        if isinstance(event, Mapping):
            event = MDAEvent.model_validate(dict(event))
        if not isinstance(event, MDAEvent):
            raise TypeError(
                f"event_queue.put takes a useq.MDAEvent, a dict or None, "
                f"got {type(event).__name__}"
            )
        with self._lock:
            if len(self._events) >= MAX_ADDED_EVENTS:
                raise OverflowError(
                    f"more than {MAX_ADDED_EVENTS} added events are waiting"
                )
            self._events.append(event)
            self.added += 1

    def take(self) -> list[MDAEvent]:
        """The events added so far (the queue is emptied)."""
        with self._lock:
            events, self._events = self._events, []
            return events

    @property
    def ended(self) -> bool:
        """Whether a processor ended the acquisition."""
        return self.ended_by is not None


class _BoundQueue:
    """What an adaptive processor gets: `put(event)` / `put(None)`."""

    def __init__(self, queue: EventQueue, processor: str) -> None:
        self._queue = queue
        self.processor = processor

    def put(self, event: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an event (None: end the acquisition). Never blocks."""
        self._queue.put_from(self.processor, event)

    def put_nowait(self, event: Any) -> None:
        """As put."""
        self.put(event)
