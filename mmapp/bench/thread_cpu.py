"""CPU time of each thread of this process during a run (Linux: /proc).

`bench stream --cpu` prints, per pipeline run, the user and system CPU time
per frame of every thread that used some: where the microseconds of a frame
go (the camera's thread, the engine's, the writer's). Threads are sampled
while they live, so a thread that ends with the run is still counted.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TASKS = Path("/proc/self/task")
SAMPLE_S = 0.05
MIN_SHARE = 0.01  # threads below 1 % of the run's CPU are left out


def supported() -> bool:
    """Whether per-thread CPU times can be read here (Linux /proc)."""
    return TASKS.is_dir()


def _read_times() -> dict[int, tuple[int, int]]:
    """Thread id -> (user, system) clock ticks so far."""
    out: dict[int, tuple[int, int]] = {}
    try:
        tids = os.listdir(TASKS)
    except OSError:
        return out
    for tid in tids:
        try:
            stat = (TASKS / tid / "stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]), int(fields[12]))
    return out


def _thread_name(thread: threading.Thread) -> str:
    """The thread's name; anonymous threads by their class (pymmcore-plus's
    camera thread is an `AcquisitionThread`)."""
    name = thread.name
    if name.startswith("Thread-") and type(thread) is not threading.Thread:
        return type(thread).__name__
    return name.split(" (")[0]


@dataclass
class ThreadCpu:
    """One thread's CPU time over a run."""

    name: str
    user_s: float
    system_s: float


@dataclass
class ThreadCpuSampler:
    """Samples every thread's CPU time from start() to stop()."""

    _base: dict[int, tuple[int, int]] = field(default_factory=dict)
    _last: dict[int, tuple[int, int]] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self._names[thread.native_id] = _thread_name(thread)
        self._last.update(_read_times())

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def start(self) -> None:
        """Begin: every thread's time so far is the baseline."""
        self._base = _read_times()
        self._last = dict(self._base)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="mmapp-cpu-sampler", daemon=True
        )
        self._thread.start()

    def stop(self) -> list[ThreadCpu]:
        """End: each thread's CPU time since start(), busiest first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        rows = []
        for tid, (user, system) in self._last.items():
            base_user, base_system = self._base.get(tid, (0, 0))
            name = self._names.get(tid, f"thread {tid}")
            if name == "mmapp-cpu-sampler":
                continue
            rows.append(
                ThreadCpu(
                    name, (user - base_user) / ticks, (system - base_system) / ticks
                )
            )
        total = sum(r.user_s + r.system_s for r in rows) or 1.0
        rows = [r for r in rows if (r.user_s + r.system_s) / total >= MIN_SHARE]
        return sorted(rows, key=lambda r: r.user_s + r.system_s, reverse=True)
