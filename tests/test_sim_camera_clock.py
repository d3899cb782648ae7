"""The simulated camera's pace is its sensor's clock (no real time involved:
a fake clock, whose waits overshoot as a busy machine's do)."""

from __future__ import annotations

import numpy as np
import pytest

from mmapp.sim import camera as camera_module
from mmapp.sim.camera import CATCH_UP_PERIODS, SimCamera
from mmapp.sim.state import SimRigState

PERIOD_S = 0.001


class FakeClock:
    """perf_counter/monotonic of one fake time; waits advance it, overshooting."""

    def __init__(self, overshoot_s: float) -> None:
        self.t = 100.0
        self.overshoot_s = overshoot_s
        self.hold_before: dict[int, float] = {}  # frame -> extra delay before it

    def perf_counter(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t + 5000.0  # another origin, as the OS's clocks may have


class FakeAbort:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def wait(self, delay: float) -> bool:
        self.clock.t += delay + self.clock.overshoot_s
        return False

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


def _edges(monkeypatch, overshoot_s: float, frames: int, holds=None) -> list[float]:
    clock = FakeClock(overshoot_s)
    monkeypatch.setattr(camera_module, "time", clock)
    state = SimRigState()
    edges: list[float] = []

    def on_edge(i: int, at: float | None) -> None:
        edges.append(at)
        if holds and i in holds:  # the frame is emitted this much later
            clock.t += holds[i]

    state.add_exposure_listener(on_edge)
    cam = SimCamera(state, width=8, height=4, exposure_ms=0.0)
    cam._interval_ms = PERIOD_S * 1000
    cam._abort = FakeAbort(clock)
    pool = np.zeros((frames, 4, 8), np.uint16)
    slots = iter(pool)
    for _ in cam.start_sequence(frames, lambda shape, dtype: next(slots)):
        pass
    return edges


def test_late_frames_keep_the_sensors_schedule(monkeypatch):
    """Each wait overshoots by 0.3 periods; the edges still come exactly a
    period apart (before: every overshoot delayed all later frames)."""
    edges = _edges(monkeypatch, overshoot_s=0.3 * PERIOD_S, frames=200)
    gaps = np.diff(edges)
    assert gaps == pytest.approx(np.full(199, PERIOD_S), abs=1e-9)


def test_a_frame_held_longer_restarts_the_schedule(monkeypatch):
    """Held for longer than the catch-up limit (here 50 ms after frame 10),
    the sensor starts again: no burst of 50 frames to catch up."""
    limit_s = max(CATCH_UP_PERIODS * PERIOD_S, camera_module.CATCH_UP_S)
    edges = _edges(monkeypatch, 0.0, frames=30, holds={10: limit_s + 0.03})
    gaps = np.diff(edges)
    assert gaps[:10] == pytest.approx(np.full(10, PERIOD_S), abs=1e-9)
    assert gaps[10] > limit_s  # the held frame's successor starts late, once
    assert gaps[11:] == pytest.approx(np.full(18, PERIOD_S), abs=1e-9)


def test_a_short_delay_is_caught_up(monkeypatch):
    """Late by less than the limit (5 periods): the next frames come sooner
    until the schedule is met again, and every edge keeps its sensor time."""
    edges = _edges(monkeypatch, 0.0, frames=30, holds={10: 5 * PERIOD_S})
    gaps = np.diff(edges)
    assert gaps == pytest.approx(np.full(29, PERIOD_S), abs=1e-9)
