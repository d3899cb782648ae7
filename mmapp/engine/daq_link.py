"""The engine's side of the DAQ: program, start, stop, check, park.

One :class:`DaqLink` serves one acquisition. For each hardware sequence it
checks that the program yields exactly the frames the camera will take,
programs the card before the camera starts, starts it once the camera is armed
(followers first, master last), and on the way out stops it, checks that card
and camera stayed in step, and leaves the rig safe (lasers off, galvos parked,
tasks cleared).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from useq import Channel, MDAEvent, MDASequence

from mmapp.daq.connection import CALL_TIMEOUT_S, DaqConnection
from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import WaveformError, render
from mmapp.daq.tasks import (
    DaqSyncError,
    DaqTasks,
    check_program_on_device,
    frames_for,
    park,
    restart_needed,
)
from mmapp.engine.errors import AcquisitionError, DaqFailedError

logger = logging.getLogger(__name__)
# Stop ends a run within this bound even with the card's server frozen: one
# call times out (CALL_TIMEOUT_S), every later call fails at once, then the
# camera is stopped and the queue written.
STOP_BOUND_S = 3 * CALL_TIMEOUT_S

DONE_GRACE_S = 0.5  # after the card's last trigger, the camera has this long
DONE_POLL_S = 0.05
PROGRAM_AXES = ("z", "c")  # what a program labels besides time
AXIS_LABELS = {"z": "z positions", "c": "channels"}
PROGRAM_CHANGES_FILE = "program_changes.json"  # in the dataset folder


class DaqProgramError(AcquisitionError):
    """The waveform program cannot run with this acquisition or card."""


class DaqOutOfStepError(AcquisitionError):
    """The card and the camera went out of step (order, missed triggers)."""


@dataclass(frozen=True)
class ProgramChange:
    """A program applied while the card played: from which frame it played."""

    from_frame: int  # the acquisition's frame number (0 = first frame)
    from_volume: int  # the time index ("t") of that frame
    exact: bool  # False: it may have played one cycle later
    program: WaveformProgram

    def as_json(self) -> dict[str, Any]:
        """A record for the dataset's program_changes.json."""
        return {
            "from_frame": self.from_frame,
            "from_volume": self.from_volume,
            "exact": self.exact,
            "program": self.program.model_dump(mode="json"),
        }


def write_program_changes(dataset: Path, changes: list[ProgramChange]) -> Path:
    """Save the changes beside the dataset's preset (which holds the program
    the run started with)."""
    path = Path(dataset) / PROGRAM_CHANGES_FILE
    records = [change.as_json() for change in changes]
    path.write_text(json.dumps({"changes": records}, indent=2), encoding="utf-8")
    return path


def program_change_volumes(dataset: Path) -> list[int]:
    """The volumes from which a dataset's program changed ([]: it never did);
    ValueError naming the file if it cannot be read."""
    path = Path(dataset) / PROGRAM_CHANGES_FILE
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["changes"]
        return [int(r["from_volume"]) for r in records]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} cannot be read: {type(exc).__name__}: {exc}"
        ) from None


class DaqLink:
    """A waveform program bound to a card, for the engine."""

    def __init__(
        self,
        connection: DaqConnection,
        program: WaveformProgram,
        *,
        exposure_out: str | None = None,
        channel_group: str = "Channel",
    ) -> None:
        try:
            self.rendered = render(program)
        except WaveformError as exc:
            raise DaqProgramError(f"waveform program: {exc}") from None
        self.connection = connection
        self.program = program
        self.exposure_out = exposure_out
        self.channel_group = channel_group
        self._tasks: DaqTasks | None = None
        self._lock = threading.Lock()
        self._last_poll = 0.0
        self._done_at: float | None = None
        self._first_frame = 0  # frames acquired before this hardware sequence
        self.changes: list[ProgramChange] = []  # applied while the card played
        self._unplayed = False  # changed while no sequence was programmed
        self.unsafe: str | None = None  # why the last close left the card unparked
        self.failure: str | None = None  # why the card failed this sequence

    # --- per hardware sequence --------------------------------------------------------
    def frames_per_cycle(self) -> int:
        """Camera frames in one cycle of the program."""
        return len(self.rendered.frames)

    def prepare(self, frames: int | None, *, first_frame: int = 0) -> None:
        """Check the frame count, then program the card (camera not started yet);
        `first_frame`: frames the acquisition took before this sequence."""
        self._first_frame = first_frame
        try:
            cycles = frames_for(self.program, frames)
        except WaveformError as exc:
            raise DaqProgramError(str(exc)) from None
        self.close()
        try:
            with self._lock:
                self._tasks = DaqTasks(
                    self.connection, self.program, exposure_out=self.exposure_out
                )
                self._tasks.prepare(cycles)
        except WaveformError as exc:
            self.close()
            raise DaqProgramError(f"waveform program: {exc}") from None
        except Exception:
            self.close()
            raise
        self._done_at = None
        self.failure = None
        if self._unplayed:  # changed between sequences: this one plays it
            self._unplayed = False
            self._record_change(0, exact=True)

    def start(self) -> None:
        """Start the tasks (followers first, master last); once per sequence."""
        if self._tasks is not None and not self._tasks.running:
            self._tasks.start()

    def camera_waits_for_daq(self) -> bool:
        """The card triggers the camera and is playing (Stop: card first)."""
        tasks = self._tasks
        return (
            tasks is not None
            and tasks.running
            and self.program.topology == "daq_master"
        )

    def frames_triggered(self) -> int | None:
        """Frames the card triggered before it stopped (None: not known)."""
        tasks = self._tasks
        counts = tasks.counts if tasks is not None else None
        return counts.frames_triggered if counts is not None else None

    def overdue(self) -> str | None:
        """While waiting for frames: has the card finished with frames missing?"""
        tasks = self._tasks
        now = time.perf_counter()
        if self.program.topology == "camera_master":
            return None  # retriggered per frame: the card never "finishes" first
        if tasks is None or now - self._last_poll < DONE_POLL_S:
            return None
        self._last_poll = now
        master = tasks._tasks.get("ao") or tasks._tasks.get("do")
        if master is None or not master.is_task_done():
            return None
        if self._done_at is None:
            self._done_at = now
            return None
        if now - self._done_at < DONE_GRACE_S:
            return None
        return "the DAQ program has finished but the camera is still missing frames"

    def stop_and_check(self, frames_acquired: int) -> None:
        """Stop the card, then raise if it failed or card and camera went out
        of step."""
        with self._lock:  # not while update() writes the same tasks
            tasks = self._tasks
            if tasks is None:
                return
            try:
                tasks.stop()
            except Exception as exc:
                self._failed("did not stop", exc)
        if self.failure is not None:
            raise DaqFailedError(self.failure)
        try:
            tasks.check(frames_acquired)
        except DaqSyncError as exc:
            raise DaqOutOfStepError(str(exc)) from None

    def stop(self) -> None:
        """Stop the card now (no check); waits for a change being written."""
        with self._lock:
            tasks = self._tasks
            if tasks is not None:
                try:
                    tasks.stop()
                except Exception as exc:
                    self._failed("did not stop", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        """Remember the card's first failure: the run ends with it as its error."""
        logger.error("the DAQ card %s: %s", what, exc)
        if self.failure is None:
            reason = str(exc).strip() or type(exc).__name__
            self.failure = f"the DAQ card {self.connection.describe()} {what}: {reason}"

    def close(self) -> None:
        """Stop, park and clear (idempotent). A park that failed is tried again
        by the next close; `unsafe` says why the card is not parked (or None)."""
        with self._lock:
            tasks, self._tasks = self._tasks, None
        try:
            if tasks is not None:
                tasks.close()
            elif self.unsafe is not None:  # the last park failed: once more
                park(self.connection, self.program)
        except Exception as exc:
            self.unsafe = (
                f"the DAQ card was not parked (lasers' lines low, galvos at "
                f"park_v): {str(exc) or type(exc).__name__}"
            )
            raise
        self.unsafe = None

    # --- changes while looping --------------------------------------------------------
    def check_change(self, program: WaveformProgram) -> None:
        """Raise DaqProgramError if the playing card cannot take this change
        (decided without touching the card: cheap, for the GUI thread)."""
        try:
            render(program)
            check_program_on_device(program, self.connection.device)
        except WaveformError as exc:
            raise DaqProgramError(f"waveform program: {exc}") from None
        what = restart_needed(self.program, program)
        if what is not None:
            raise DaqProgramError(
                f"waveform program: this change alters the {what} of the program; "
                f"it can only take effect when the acquisition is started again"
            )

    def update(self, program: WaveformProgram) -> ProgramChange | None:
        """Play a changed program from the next cycle (volume) boundary; returns
        where it plays from (None: between sequences, the next one plays it)."""
        try:
            with self._lock:
                switch = None
                if self._tasks is not None:
                    switch = self._tasks.update(program)
                self.program, self.rendered = program, render(program)
                self._unplayed = switch is None
        except WaveformError as exc:
            raise DaqProgramError(f"waveform program: {exc}") from None
        if switch is None:
            return None
        return self._record_change(switch.from_cycle, exact=switch.exact)

    def _record_change(self, from_cycle: int, *, exact: bool) -> ProgramChange:
        number = from_cycle * self.frames_per_cycle()
        volume = int(self.event_for(MDAEvent(), number).index.get("t", 0))
        change = ProgramChange(self._first_frame + number, volume, exact, self.program)
        self.changes.append(change)
        return change

    # --- frames -----------------------------------------------------------------------
    def refuse_conflicting_axes(
        self, sequence: MDASequence | None, events: Any
    ) -> None:
        """The program sets z (scan position) and channel itself: an MDA that
        also plans them cannot label its frames both ways (raise before start)."""
        axes: set[str] = set()
        if sequence is not None:  # its plans (a generator's `sizes` would warn)
            if sequence.z_plan is not None and len(list(sequence.z_plan)) > 0:
                axes.add("z")
            if sequence.channels:
                axes.add("c")
        for event in events:
            axes |= {ax for ax in PROGRAM_AXES if ax in event.index}
            if event.z_pos is not None:
                axes.add("z")
            if event.channel is not None:
                axes.add("c")
        if axes:
            names = " and ".join(AXIS_LABELS[ax] for ax in sorted(axes, key="zc".find))
            raise DaqProgramError(
                f"the DAQ waveform program sets the frames' z (galvo scan position) "
                f"and channel (laser blanking) itself; this acquisition also plans "
                f"{names}: remove them from the MDA (keep time points with interval "
                f"0, or stream) and set positions and channels in the program"
            )

    def event_for(self, base: MDAEvent, number: int) -> MDAEvent:
        """The event of frame `number`: volume as time, scan position as z,
        program channel as c (other axes of `base`, e.g. p, are kept)."""
        frames = self.rendered.frames
        cycle, k = divmod(number, len(frames))
        f = frames[k]
        volumes = max(x.volume for x in frames) + 1
        channels = self.program.channels
        index: dict[str, int] = {
            key: value
            for key, value in base.index.items()
            if key not in ("t", "z", "c")
        }
        index.update({"t": cycle * volumes + f.volume, "z": f.position})
        update: dict[str, Any] = {"index": index}
        if len(channels) > 1:
            index["c"] = channels.index(f.channel)
            update["channel"] = Channel(config=f.channel, group=self.channel_group)
        return base.model_copy(update=update)
