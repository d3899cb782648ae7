"""The window's DAQ waveform program: what the designer's Apply does.

Idle, Apply programs the card once to check the program (real DAQmx errors:
an unknown channel, a voltage beyond a channel's range), leaves the rig parked
and makes it the program Start and Live play. While a run plays a program,
Apply hands the change to the run: it plays from the next volume (cycle)
boundary, or is refused with the reason when it needs a new start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import WaveformError, render
from mmapp.daq.tasks import DaqTasks, check_program_on_device, frames_for
from mmapp.engine.controller import RunController
from mmapp.rig import Rig


class ProgramRefused(ValueError):
    """Apply cannot take this program now (the reason is the message)."""


def verify_on_card(rig: Rig, program: WaveformProgram) -> None:
    """Program the rig's card with `program`, then stop, park and clear it."""
    if rig.daq is None:
        raise ProgramRefused(
            f"the rig {rig.name!r} has no DAQ card (add a 'daq' section to its "
            f"rig file)"
        )
    try:
        check_program_on_device(program, rig.daq.device)
        tasks = DaqTasks(rig.daq, program, exposure_out=rig.exposure_out)
    except WaveformError as exc:
        raise ProgramRefused(str(exc)) from None
    except Exception as exc:  # DAQmx errors from the card itself
        raise ProgramRefused(f"the card refused the program: {exc}") from None
    try:
        tasks.prepare(1)
    except WaveformError as exc:
        raise ProgramRefused(str(exc)) from None
    except Exception as exc:
        raise ProgramRefused(f"the card refused the program: {exc}") from None
    finally:
        tasks.close()  # lasers low, galvos parked, tasks cleared


def frames_per_cycle(program: WaveformProgram) -> int | None:
    """Camera frames in one cycle (None if the program does not render)."""
    try:
        return len(render(program).frames)
    except WaveformError:
        return None


def check_frame_count(program: WaveformProgram, frames: int | None) -> None:
    """Raise ProgramRefused unless `frames` is a whole number of cycles."""
    try:
        frames_for(program, frames)
    except WaveformError as exc:
        raise ProgramRefused(str(exc)) from None


@dataclass
class ProgramLink:
    """Holds the program the next run plays and applies edits to the rig."""

    rig: Callable[[], Rig | None]
    controller: Callable[[], RunController | None]
    program: WaveformProgram
    playing: bool = False  # the current run plays the program
    saving: bool = False  # the current run saves a dataset

    def apply(self, program: WaveformProgram) -> str:
        """The designer's Apply: a status text, or ProgramRefused with the reason."""
        rig, controller = self.rig(), self.controller()
        if rig is None or rig.daq is None:
            name = rig.name if rig is not None else "no rig"
            raise ProgramRefused(
                f"the rig {name!r} has no DAQ card (add a 'daq' section to its "
                f"rig file)"
            )
        try:
            check_program_on_device(program, rig.daq.device)
        except WaveformError as exc:
            raise ProgramRefused(str(exc)) from None
        running = controller is not None and controller.running
        if running and self.playing:
            assert controller is not None
            try:
                change = controller.update_program(program)
            except Exception as exc:
                raise ProgramRefused(str(exc)) from None
            self.program = program
            if change is None:
                return "Applied: the running acquisition plays it from the next volume"
            when = "" if change.exact else " (or the one after: applied at its end)"
            kept = "; the dataset records it" if self.saving else ""
            return (
                f"Applied: the running acquisition plays it from volume "
                f"{change.from_volume} (frame {change.from_frame}){when}{kept}"
            )
        if running:  # the card is not in use by this run: check it there
            verify_on_card(rig, program)
            self.program = program
            return "Applied: checked on the card; the next run plays it"
        verify_on_card(rig, program)
        self.program = program
        return f"Applied: checked on {rig.daq.device}; Start and Live play it"
