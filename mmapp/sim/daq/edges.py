"""Rising edges on output lines and counters, fired in real time into the
devices wired to them (the camera's trigger input), each carrying a probe of
what the card plays around it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimDaqDevice, SimTask

logger = logging.getLogger(__name__)

Probe = Callable[[float], dict[str, float]]  # delay after the edge (s) -> values
EdgeListener = Callable[[Probe, float], None]  # (probe, monotonic edge time)


class EdgePlayer(threading.Thread):
    """Fires a line's rising edges into its listeners at their wall-clock times."""

    def __init__(self, device: SimDaqDevice, task: SimTask, channel: Channel) -> None:
        super().__init__(name=f"simdaq-edges-{channel.physical}", daemon=True)
        self.device, self.task, self.channel = device, task, channel
        self.index = task.rows().index(channel.physical)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        if self is not threading.current_thread():
            self.join(timeout=2.0)

    def _edges(self) -> np.ndarray:
        """Local sample indices of the rising edges in one buffer period."""
        task = self.task
        row = task.buffers[-1].data[self.index] > 0.5
        prev = np.roll(row, 1)
        if not task.regenerate:
            prev[0] = False
        return np.flatnonzero(row & ~prev).astype(np.int64)

    def _edge_ticks(self) -> Iterator[int]:
        """Clock tick (local to the task) of every rising edge, in order."""
        task, ch = self.task, self.channel
        if ch.counts_ticks:  # pulses counted on another task's sample clock
            k = 0
            while k < task.total():
                yield ch.pulse_tick(k)
                k += 1
            return
        if task.kind == "co":  # own timebase: one edge per period of its clock
            k = 0
            while k < task.total():
                yield k
                k += 1
            return
        edges, period = self._edges(), task.buffer_len()
        k = 0
        while len(edges):
            local = (k // len(edges)) * period + int(edges[k % len(edges)])
            if local >= task.total():
                return
            yield local
            k += 1

    def _probe_at(self, clock: SimTask, index: int, due: float) -> Probe:
        """What the card plays from the edge on (a counter on its own timebase
        is referred to the AO task by wall clock)."""
        if self.task.kind != "co" or self.task.master is not None:
            return self.device._probe(clock, index)
        ao = self.device.ao_master()
        if ao is None or ao.started_at is None:
            return self.device._probe(clock, 0)
        return self.device._probe(ao, round((due - ao.started_at) * (ao.rate or 0)))

    def run(self) -> None:
        device, task, stop = self.device, self.task, self._stop_event
        if self.channel.counts_ticks and task.master is None:
            return  # counts edges of a terminal nothing drives
        if not device.wait_for_master(task, stop):
            return
        clock = task.master or task
        rate = clock.rate or 1.0
        origin = task.origin if task.master else 0
        listeners = device._edge_listeners.get(self.channel.physical, [])
        assert clock.started_at is not None
        # An edge on another task's sample clock happens once the card has
        # generated its tick: it fires when that tick is counted (one sample
        # after it began), so what was fired is exactly what the counts say, and
        # nothing fires after a stop. A counter on its own timebase fires on time.
        exact = not (task.kind == "co" and task.master is None)
        for tick in self._edge_ticks():
            master_index = tick + origin
            due = clock.started_at + master_index / rate
            wake = due + (1.0 / rate if exact else 0.0)
            while True:
                delay = wake - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                with device.lock:
                    running = task.running and clock.running
                    if device.ticks(task) > tick or (running and not exact):
                        probe = self._probe_at(clock, master_index, due)
                        break
                    if not running:
                        return
                wake = time.monotonic() + min(1.0 / rate, 0.001)  # rounding: retry
            for listener in listeners:
                try:
                    listener(probe, due)
                except Exception:
                    logger.exception("edge listener failed")
