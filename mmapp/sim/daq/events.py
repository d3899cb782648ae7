"""Task events (done, every N samples, signal) as the card raises them.

A client registers an event on a task; the card then reports, from its own
sample counter, each N samples acquired (input) or transferred (output),
each sample clock tick (sample-complete signal) and the end of a finite run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmapp.sim.daq.errors import (
    DONE_EVENT_ALREADY_REGISTERED,
    EVERY_N_SAMPS_ACQ_EVENT_NOT_SUPPORTED,
    EVERY_N_SAMPS_EVENT_ALREADY_REGISTERED,
    EVERY_N_SAMPS_TRANSFERRED_EVENT_ALREADY_REGISTERED,
    EVERY_N_SAMPS_TRANSFERRED_EVENT_NOT_SUPPORTED,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_TASK,
    SIGNAL_EVENT_ALREADY_REGISTERED,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import SimTask

ACQUIRED_INTO_BUFFER, TRANSFERRED_FROM_BUFFER = 1, 2
SAMPLE_CLOCK, SAMPLE_COMPLETE = 12487, 12530
POLL_S = 0.002  # how often a watcher looks at the sample counter


@dataclass
class Registration:
    """One registered event: 'done', ('every_n', type) or ('signal', id)."""

    key: tuple[str, int]
    n: int = 0
    closed: threading.Event = field(default_factory=threading.Event)


def _refusal(task: SimTask, key: tuple[str, int]) -> DaqmxError | None:
    """The DAQmx error for registering `key` on `task` (None: allowed)."""
    kind, which = key
    if key in task.events:
        code = {
            "done": DONE_EVENT_ALREADY_REGISTERED,
            "signal": SIGNAL_EVENT_ALREADY_REGISTERED,
        }.get(kind)
        if code is None:
            code = (
                EVERY_N_SAMPS_EVENT_ALREADY_REGISTERED
                if which == ACQUIRED_INTO_BUFFER
                else EVERY_N_SAMPS_TRANSFERRED_EVENT_ALREADY_REGISTERED
            )
        return DaqmxError(code, f"Task Name: {task.name}")
    if kind == "every_n":
        output = task.kind in ("ao", "do", "co")
        if output and which == ACQUIRED_INTO_BUFFER:
            return DaqmxError(EVERY_N_SAMPS_ACQ_EVENT_NOT_SUPPORTED, task.name)
        if not output and which == TRANSFERRED_FROM_BUFFER:
            return DaqmxError(EVERY_N_SAMPS_TRANSFERRED_EVENT_NOT_SUPPORTED, task.name)
    if kind == "signal" and which not in (SAMPLE_CLOCK, SAMPLE_COMPLETE):
        return DaqmxError(INVALID_ATTRIBUTE_VALUE, f"Signal ID: {which}")
    return None


class TaskEvents:
    """Event registration and delivery (a mixin of SimDaqDevice)."""

    def register_event(
        self, name: str, key: tuple[str, int], n: int = 0
    ) -> Registration:
        """Register an event on a task (DAQmx's refusals if already there)."""
        with self.lock:  # type: ignore[attr-defined]
            task = self.task(name)  # type: ignore[attr-defined]
            refusal = _refusal(task, key)
            if refusal is not None:
                raise refusal
            reg = Registration(key, n)
            task.events[key] = reg
            return reg

    def unregister_event(self, name: str, key: tuple[str, int]) -> None:
        """Stop delivering an event (nothing happens if none is registered)."""
        with self.lock:  # type: ignore[attr-defined]
            reg = self.task(name).events.pop(key, None)  # type: ignore[attr-defined]
        if isinstance(reg, Registration):
            reg.closed.set()

    def watch(self, name: str, reg: Registration) -> Iterator[int]:
        """The event's values as they happen (every N: N; done: status 0;
        signal: its id) until unregistered, cancelled or the task is cleared."""
        run, emitted, done_sent = -1, 0, False
        while not reg.closed.is_set():
            with self.lock:  # type: ignore[attr-defined]
                try:
                    task = self.task(name)  # type: ignore[attr-defined]
                except DaqmxError as exc:
                    if exc.code == INVALID_TASK:
                        return
                    raise
                count = int(self._generated(task))  # type: ignore[attr-defined]
                if run < 0 and not task.running:  # a past run raises nothing
                    run, emitted, done_sent = task.runs, count, True
                if task.runs != run:
                    run, emitted, done_sent = task.runs, 0, False
                done = task.running and task.finite and count >= task.total()
            kind, which = reg.key
            if kind == "every_n" and reg.n > 0:
                while count >= emitted + reg.n:
                    emitted += reg.n
                    yield reg.n
            elif kind == "signal":
                while count > emitted:
                    emitted += 1
                    yield which
            elif kind == "done" and done and not done_sent:
                done_sent = True
                yield 0
            reg.closed.wait(POLL_S)
