"""Drive the window step by step from its own event loop (self-test, benchmark).

Each step acts once, then a 20 Hz timer checks its condition until it holds or
its time runs out. No sleeps, no processEvents loops: the Qt event loop runs
throughout, exactly as when an operator clicks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QEventLoop, QTimer

CHECK_HZ = 20


@dataclass
class Step:
    """Do `act`, then wait until `done()` is true (at most `timeout_s`)."""

    name: str
    act: Callable[[], object]
    done: Callable[[], bool]
    timeout_s: float = 20.0


class ScriptFailed(RuntimeError):
    """A step did not finish in time or raised."""


class _Runner:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.index = -1
        self.deadline = 0.0
        self.error: ScriptFailed | None = None
        self.loop = QEventLoop()
        self.timer = QTimer()
        self.timer.setInterval(1000 // CHECK_HZ)
        self.timer.timeout.connect(self.check)

    def run(self) -> None:
        QTimer.singleShot(0, self.next)
        self.timer.start()
        try:
            self.loop.exec()
        finally:
            self.timer.stop()
        if self.error is not None:
            raise self.error

    def fail(self, message: str) -> None:
        self.error = ScriptFailed(message)
        self.loop.quit()

    def next(self) -> None:
        self.index += 1
        if self.index >= len(self.steps):
            self.loop.quit()
            return
        step = self.steps[self.index]
        self.deadline = time.monotonic() + step.timeout_s
        try:
            step.act()
        except Exception as exc:
            self.fail(f"step '{step.name}' failed: {type(exc).__name__}: {exc}")

    def check(self) -> None:
        if self.error is not None or not 0 <= self.index < len(self.steps):
            return
        step = self.steps[self.index]
        try:
            done = step.done()
        except Exception as exc:
            self.fail(f"step '{step.name}' failed: {type(exc).__name__}: {exc}")
            return
        if done:
            self.next()
        elif time.monotonic() > self.deadline:
            self.fail(f"step '{step.name}' did not finish within {step.timeout_s} s")


def run_steps(steps: list[Step]) -> None:
    """Run the steps in order inside a local event loop (raises ScriptFailed)."""
    _Runner(steps).run()
