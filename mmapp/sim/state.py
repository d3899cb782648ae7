"""Shared physical state of the simulated rig.

The simulated devices do not talk to each other through the core (the camera
runs on its own thread); they share this object instead, the way real devices
share light paths and TTL cables.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LaserLine:
    """One laser line: wavelength, enabled and power in percent."""

    wavelength_nm: int
    enabled: bool = False
    power_pct: float = 50.0


@dataclass
class SimRigState:
    """What the light path looks like right now (read by the camera per frame)."""

    z_um: float = 0.0
    xy_um: tuple[float, float] = (0.0, 0.0)
    shutter_open: bool = False
    lasers: dict[int, LaserLine] = field(default_factory=dict)
    # DAQ wiring: each laser's blanking input, and the galvo that scans the sheet
    blanking_lines: dict[int, str] = field(default_factory=dict)
    galvo_line: str | None = None
    galvo_um_per_v: float = 10.0
    # callbacks run at the start of every exposure (camera "exposure out" TTL);
    # one may answer with a probe of what the DAQ plays during that exposure
    _exposure_listeners: list[Callable[[int], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def light_level(
        self, lines: Mapping[str, float] | None = None, *, assume_open: bool = False
    ) -> float:
        """Relative illumination reaching the sample (0 = dark).

        With `lines` (what the DAQ outputs during the exposure) a laser whose
        blanking input is wired only lights while its line is high.
        """
        if not (self.shutter_open or assume_open):
            return 0.0
        total = 0.0
        for nm, line in self.lasers.items():
            if not line.enabled:
                continue
            wire = self.blanking_lines.get(nm)
            if lines is not None and wire is not None and lines.get(wire, 0.0) < 0.5:
                continue
            total += line.power_pct
        return total

    def scan_um(self, lines: Mapping[str, float]) -> float:
        """Light-sheet position set by the galvo voltage."""
        if self.galvo_line is None:
            return 0.0
        return lines.get(self.galvo_line, 0.0) * self.galvo_um_per_v

    def add_exposure_listener(
        self, callback: Callable[[int, float | None], Any]
    ) -> None:
        """Wire a device to the camera's exposure-out line: called with the
        frame number and the edge's time (time.monotonic; None: now)."""
        self._exposure_listeners.append(callback)

    def exposure_started(self, frame_number: int, at: float | None = None) -> Any:
        """Camera exposure-out edge (at the sensor's time `at`, None: now):
        advance triggered devices.

        Returns the first probe a listener answers with (None if none does).
        """
        probe = None
        for callback in self._exposure_listeners:
            answer = callback(frame_number, at)
            if probe is None:
                probe = answer
        return probe


class TriggerLine:
    """A TTL line into the camera's trigger input (edges are counted, not lost)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self._payloads: deque[Any] = deque()
        self._interrupted = False
        self.armed = False  # edges while not armed are lost, as on a real camera

    def fire(
        self, edges: int = 1, payload: Any = None, at: float | None = None
    ) -> None:
        """Deliver rising edges (each may carry what the DAQ plays with it).

        `at` is when the edge happened (time.monotonic(); default now): a
        simulated card passes its sample-clock time, free of thread jitter.
        """
        with self._cond:
            if not self.armed:
                return
            self._pending += edges
            when = time.monotonic() if at is None else at
            self._payloads.extend([(when, payload)] * edges)
            self._cond.notify_all()

    def interrupt(self) -> None:
        """Wake any waiter (used by abort)."""
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget pending edges and interrupts (at sequence start)."""
        with self._cond:
            self._pending = 0
            self._payloads.clear()
            self._interrupted = False

    def wait_edge(self, timeout: float | None) -> bool:
        """Consume one edge; False on timeout or interrupt."""
        return self.take_edge(timeout)[0]

    def take_edge(self, timeout: float | None) -> tuple[bool, Any]:
        """Consume one edge and its payload; (False, None) on timeout/interrupt."""
        ok, _t, payload = self.take_timed_edge(timeout)
        return ok, payload

    def take_timed_edge(self, timeout: float | None) -> tuple[bool, float, Any]:
        """Consume one edge: (ok, monotonic time it happened, payload)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._pending > 0 or self._interrupted, timeout
            )
            if not ok or self._pending == 0:
                return False, 0.0, None
            self._pending -= 1
            t, payload = self._payloads.popleft()
            return True, t, payload
