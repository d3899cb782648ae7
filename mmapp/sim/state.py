"""Shared physical state of the simulated rig.

The simulated devices do not talk to each other through the core (the camera
runs on its own thread); they share this object instead, the way real devices
share light paths and TTL cables.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


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
    # callbacks run at the start of every exposure (camera "exposure out" TTL)
    _exposure_listeners: list[Callable[[int], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def light_level(self) -> float:
        """Relative illumination reaching the sample (0 = dark)."""
        if not self.shutter_open:
            return 0.0
        return sum(line.power_pct for line in self.lasers.values() if line.enabled)

    def add_exposure_listener(self, callback: Callable[[int], None]) -> None:
        """Wire a device to the camera's exposure-out line."""
        self._exposure_listeners.append(callback)

    def exposure_started(self, frame_number: int) -> None:
        """Camera exposure-out edge: advance triggered devices."""
        for callback in self._exposure_listeners:
            callback(frame_number)


class TriggerLine:
    """A TTL line into the camera's trigger input (edges are counted, not lost)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self._interrupted = False

    def fire(self, edges: int = 1) -> None:
        """Deliver rising edges."""
        with self._cond:
            self._pending += edges
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
            self._interrupted = False

    def wait_edge(self, timeout: float | None) -> bool:
        """Consume one edge; False on timeout or interrupt."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._pending > 0 or self._interrupted, timeout
            )
            if not ok or self._pending == 0:
                return False
            self._pending -= 1
            return True
