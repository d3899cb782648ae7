"""Program a waveform onto the card through `nidaqmx` (one path: driver or gRPC).

Two trigger topologies:

* ``daq_master``: the AO sample clock paces everything. DO lines (laser
  blanking, the camera trigger) share it (``/DevN/ao/SampleClock``); a counter
  camera clock counts its ticks (``add_co_pulse_chan_ticks`` with that source),
  so it pulses exactly at the frame starts, cannot drift and stops with the AO
  clock. Followers start first, the AO master last.
* A counter's first pulse can come no earlier than tick 2 (X-series: initial
  delay >= 2 ticks). With a counter camera clock every sampled buffer is
  therefore played :data:`COUNTER_LEAD_TICKS` samples late (the buffers are
  rotated by that much, a finite run plays that many samples more): the
  camera's trigger, the lasers and the galvo stay aligned sample for sample.
* ``camera_master``: the camera's exposure-out edge (a PFI terminal) triggers
  one frame of samples per edge (retriggerable finite AO; DO follows its clock).

Whatever happens, :meth:`DaqTasks.close` stops every task, writes the lasers
off and the galvos to their park voltage, and clears the tasks so the next run
never meets a reserved resource.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmapp.daq.connection import DaqConnection, DaqUnavailableError
from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import RenderedProgram, WaveformError, render

logger = logging.getLogger(__name__)

COUNTER_LEAD_TICKS = 2  # X-series: CO initial delay and pulse ticks are >= 2
# A change is not written this close to a cycle's end (it waits for the next
# cycle to begin), so the cycle it plays from is known: at most this long, or a
# quarter of the cycle if that is shorter.
SWITCH_MARGIN_S = 0.02


class DaqSyncError(RuntimeError):
    """The card and the camera disagree on what was acquired."""


@dataclass(frozen=True)
class DaqCounts:
    """What the tasks generated when they stopped."""

    samples: dict[str, int]  # task role -> samples per channel generated
    frames_triggered: int


@dataclass(frozen=True)
class ProgramSwitch:
    """Where a program changed while looping took effect."""

    from_cycle: int  # first cycle (buffer period) of the running task playing it
    exact: bool  # False: the write straddled a cycle end (it may be one later)


def _is_counter(line: str) -> bool:
    return line.rsplit("/", 1)[-1].startswith("ctr")


def check_program_on_device(program: WaveformProgram, device: str) -> None:
    """Every physical channel must be on the connected device."""
    named = [
        (f"analog[{i}].physical_channel", a.physical_channel)
        for i, a in enumerate(program.analog)
    ] + [
        (f"lasers[{i}].physical_line", laser.physical_line)
        for i, laser in enumerate(program.lasers)
    ]
    if program.camera_trigger is not None:
        named.append(
            ("camera_trigger.physical_line", program.camera_trigger.physical_line)
        )
    for where, line in named:
        if line.lstrip("/").split("/", 1)[0] != device:
            raise WaveformError(
                f"{where}: {line!r} is not on the rig's DAQ device {device!r}"
            )


def check_topology(program: WaveformProgram, rendered: RenderedProgram) -> None:
    """What each topology can play."""
    if program.topology == "camera_master":
        if program.timing.flyback_s:
            raise WaveformError(
                "timing.flyback_s: with the camera as master every frame plays the "
                "same number of samples; put the flyback into readout_s or use "
                "daq_master"
            )
        if program.camera_trigger is not None:
            raise WaveformError(
                "camera_trigger: the camera is the master (its exposure-out triggers "
                "the DAQ); remove camera_trigger or use topology daq_master"
            )
    elif program.camera_trigger is None:
        raise WaveformError(
            "camera_trigger: the DAQ is the master and must trigger the camera"
        )
    elif _is_counter(program.camera_trigger.physical_line):
        starts = rendered.frame_starts
        wrapped = np.append(starts, starts[0] + rendered.samples_per_cycle)
        if len(set(np.diff(wrapped).tolist())) > 1:
            raise WaveformError(
                "camera_trigger.physical_line: a counter gives evenly spaced pulses; "
                "with a flyback the frames are not evenly spaced (use a DO line)"
            )


def restart_needed(old: WaveformProgram, new: WaveformProgram) -> str | None:
    """What a change alters that a running card cannot take (None: waveforms only)."""
    if new.timing != old.timing:
        return "timing (frames, exposure, readout, flyback or sample rate)"
    if new.topology != old.topology:
        return "trigger topology"
    if new.channels != old.channels or new.interleave != old.interleave:
        return "imaging channels or their interleave"
    ranges = [(a.physical_channel, a.min_v, a.max_v) for a in new.analog]
    if ranges != [(a.physical_channel, a.min_v, a.max_v) for a in old.analog]:
        return "analog channels or their voltage ranges"
    lines = [(x.channel, x.physical_line) for x in new.lasers]
    if lines != [(x.channel, x.physical_line) for x in old.lasers]:
        return "laser lines"
    if new.camera_trigger != old.camera_trigger:
        return "camera trigger"
    return _cycle_change(render(old), render(new))


def _cycle_change(old: RenderedProgram, new: RenderedProgram) -> str | None:
    """What differs in the cycle the card plays (its buffer's length and frames).

    The waveforms alone can change it: a triangle scan plays two volumes per
    cycle where a sawtooth plays one.
    """
    if len(new.frames) != len(old.frames):
        return f"frames per cycle (from {len(old.frames)} to {len(new.frames)})"
    if new.samples_per_cycle != old.samples_per_cycle:
        return (
            f"samples per cycle (from {old.samples_per_cycle} to "
            f"{new.samples_per_cycle})"
        )
    if [(f.start, f.channel) for f in new.frames] != [
        (f.start, f.channel) for f in old.frames
    ]:
        return "frame timing or channel order within the cycle"
    return None


def frames_for(program: WaveformProgram, frames: int | None) -> int | None:
    """Cycles for a finite run of `frames` (None: loop); raises if not whole."""
    if frames is None:
        return None
    rendered_frames = len(render(program).frames)
    if frames % rendered_frames:
        raise WaveformError(
            f"the DAQ program gives {rendered_frames} frames per cycle; {frames} "
            f"frames is not a whole number of cycles"
        )
    return frames // rendered_frames


class DaqTasks:
    """The nidaqmx tasks that play one waveform program."""

    def __init__(
        self,
        connection: DaqConnection,
        program: WaveformProgram,
        *,
        exposure_out: str | None = None,
    ) -> None:
        self.connection = connection
        self.program = program
        self.rendered = render(program)
        check_program_on_device(program, connection.device)
        check_topology(program, self.rendered)
        if program.topology == "camera_master" and not exposure_out:
            raise WaveformError(
                "topology camera_master: the rig file names no camera exposure-out "
                "terminal (daq.camera_exposure_out)"
            )
        self.exposure_out = exposure_out
        self._options = connection.grpc_options()
        self._tasks: dict[str, Any] = {}  # role -> nidaqmx.Task (ao, do, co)
        self._running = False
        self.counts: DaqCounts | None = None
        trig = program.camera_trigger
        self.counter = trig is not None and _is_counter(trig.physical_line)
        # samples every buffer is played late so the counter's first pulse fits
        self.lead = COUNTER_LEAD_TICKS if self.counter else 0
        self._create()

    # --- set-up -----------------------------------------------------------------------
    def _new_task(self, role: str) -> Any:
        import nidaqmx

        try:
            task = nidaqmx.Task(grpc_options=self._options)
        except nidaqmx.errors.DaqNotFoundError as exc:
            raise DaqUnavailableError(
                f"NI-DAQmx is not installed on this computer, and the rig file "
                f"names no DAQ server ({exc})"
            ) from exc
        except nidaqmx.errors.RpcError as exc:
            raise DaqUnavailableError(
                f"cannot reach the DAQ server {self.connection.server}: {exc}"
            ) from exc
        self._tasks[role] = task
        return task

    def _create(self) -> None:
        from nidaqmx.constants import LineGrouping

        p = self.program
        try:
            if p.analog:
                ao = self._new_task("ao")
                for a in p.analog:
                    ao.ao_channels.add_ao_voltage_chan(
                        a.physical_channel, a.name, min_val=a.min_v, max_val=a.max_v
                    )
            lines = self._do_lines()
            if lines:
                do = self._new_task("do")
                for line in lines:
                    do.do_channels.add_do_chan(
                        line, line_grouping=LineGrouping.CHAN_PER_LINE
                    )
            trig = p.camera_trigger
            if trig is not None and _is_counter(trig.physical_line):
                self._create_counter(trig.physical_line, trig.pulse_s)
        except Exception:
            with contextlib.suppress(Exception):  # the first error is the news
                self.close()
            raise

    def _do_lines(self) -> list[str]:
        lines = [laser.physical_line for laser in self.program.lasers]
        trig = self.program.camera_trigger
        if trig is not None and not _is_counter(trig.physical_line):
            lines.append(trig.physical_line)
        return lines

    def _do_samples(self) -> np.ndarray:
        r = self.rendered
        rows = [r.digital[laser.physical_line] for laser in self.program.lasers]
        trig = self.program.camera_trigger
        if trig is not None and not _is_counter(trig.physical_line):
            assert r.camera_trigger is not None
            rows.append(r.camera_trigger)
        return np.vstack(rows)

    def counter_ticks(self) -> tuple[int, int, int]:
        """(initial delay, high, low) of the counter camera clock, in ticks of the
        master's sample clock; raises WaveformError if DAQmx cannot play them."""
        r = self.rendered
        starts = r.frame_starts
        period = int(starts[1] - starts[0]) if len(starts) > 1 else r.samples_per_cycle
        trig = self.program.camera_trigger
        assert trig is not None
        high = max(COUNTER_LEAD_TICKS, round(trig.pulse_s * r.sample_rate_hz))
        low = period - high
        if low < COUNTER_LEAD_TICKS:
            raise WaveformError(
                f"camera_trigger.pulse_s: a counter pulse of {high} ticks leaves "
                f"{low} low ticks in a frame of {period} samples; DAQmx needs at "
                f"least {COUNTER_LEAD_TICKS} (shorten the pulse or lengthen the frame)"
            )
        return self.lead + int(starts[0]), high, low

    def _create_counter(self, counter: str, pulse_s: float) -> None:
        from nidaqmx.constants import Level

        delay, high, low = self.counter_ticks()
        co = self._new_task("co")
        co.co_channels.add_co_pulse_chan_ticks(
            counter,
            source_terminal=f"/{self.connection.device}/{self._master_role()}/"
            "SampleClock",
            idle_state=Level.LOW,
            initial_delay=delay,
            low_ticks=low,
            high_ticks=high,
        )

    def _master_role(self) -> str:
        return "ao" if "ao" in self._tasks else "do"

    def prepare(self, cycles: int | None) -> None:
        """Timing, triggers and samples for a run of `cycles` (None: loop)."""
        from nidaqmx.constants import AcquisitionType, Edge, RegenerationMode

        r = self.rendered
        dev = self.connection.device
        master = self._master_role()
        camera_master = self.program.topology == "camera_master"
        frame_len = r.samples_per_cycle // max(len(r.frames), 1)
        for role in ("ao", "do"):
            task = self._tasks.get(role)
            if task is None:
                continue
            source = "" if role == master else f"/{dev}/ao/SampleClock"
            if camera_master and role == master:  # one frame per exposure-out edge
                mode, samps = AcquisitionType.FINITE, frame_len
            elif camera_master or cycles is None:  # follows bursts / loops
                mode, samps = AcquisitionType.CONTINUOUS, r.samples_per_cycle
            else:  # the lead: the counter's first pulse comes that late
                mode = AcquisitionType.FINITE
                samps = r.samples_per_cycle * cycles + self.lead
            task.timing.cfg_samp_clk_timing(
                r.sample_rate_hz, source=source, sample_mode=mode, samps_per_chan=samps
            )
            task.out_stream.regen_mode = RegenerationMode.ALLOW_REGENERATION
            if camera_master and role == master:
                assert self.exposure_out is not None
                task.triggers.start_trigger.cfg_dig_edge_start_trig(
                    self.exposure_out, Edge.RISING
                )
                task.triggers.start_trigger.retriggerable = True
            self._write(task, self._buffer(role))
        co = self._tasks.get("co")
        if co is not None:  # armed by its source: it counts once the clock ticks
            n_frames = len(r.frames) * (cycles or 1)
            co.timing.cfg_implicit_timing(
                sample_mode=AcquisitionType.CONTINUOUS
                if cycles is None
                else AcquisitionType.FINITE,
                samps_per_chan=n_frames,
            )
        self.counts = None

    def _buffer(self, role: str) -> np.ndarray:
        """One cycle of the AO or DO task's samples, rotated by the lead."""
        if role == "ao":
            r = self.rendered
            data = np.vstack(
                [r.analog[a.physical_channel] for a in self.program.analog]
            )
        else:
            data = self._do_samples()
        return np.roll(data, self.lead, axis=1) if self.lead else data

    @staticmethod
    def _write(task: Any, data: np.ndarray) -> None:
        if data.dtype == bool:
            rows = [row.tolist() for row in data]
            task.write(rows if len(rows) > 1 else rows[0], auto_start=False)
        else:
            arr = np.ascontiguousarray(data, dtype=np.float64)
            task.write(arr if len(arr) > 1 else arr[0], auto_start=False)

    @property
    def running(self) -> bool:
        """Whether the tasks were started and not yet stopped."""
        return self._running

    # --- run --------------------------------------------------------------------------
    def start(self) -> None:
        """Followers first, the master last."""
        master = self._master_role()
        for role in ("co", "do", "ao"):
            if role in self._tasks and role != master:
                self._tasks[role].start()
        self._tasks[master].start()
        self._running = True

    def update(self, program: WaveformProgram) -> ProgramSwitch:
        """Play a changed program from the next cycle boundary (loop mode);
        returns the cycle it plays from.

        Only the waveforms may change (analog shapes, calibration, park
        voltages): the card keeps its timing, ranges and lines while it runs.
        A refused or failed change leaves the card and this object as they were.
        """
        rendered = render(program)
        check_program_on_device(program, self.connection.device)
        check_topology(program, rendered)
        what = restart_needed(self.program, program)
        if what is not None:
            raise WaveformError(
                f"this change alters the {what} of the program; it can only take "
                f"effect when the acquisition is started again"
            )
        old = (self.program, self.rendered)
        self.program, self.rendered = program, rendered
        try:
            buffers = {r: self._buffer(r) for r in ("ao", "do") if r in self._tasks}
        finally:
            self.program, self.rendered = old
        # before the start it plays from cycle 0; while running, from the next
        before = self._clear_of_cycle_end() if self._running else None
        written: list[str] = []
        try:
            for role, data in buffers.items():
                self._write(self._tasks[role], data)
                written.append(role)
        except Exception:
            for role in written:  # put back what this change already wrote
                with contextlib.suppress(Exception):
                    self._write(self._tasks[role], self._buffer(role))
            raise
        self.program, self.rendered = program, rendered
        if before is None:
            return ProgramSwitch(0, exact=True)
        n, after = rendered.samples_per_cycle, self._master_generated()
        return ProgramSwitch(before // n + 1, exact=before // n == after // n)

    def _master_generated(self) -> int:
        task = self._tasks[self._master_role()]
        return int(task.out_stream.total_samp_per_chan_generated)

    def _clear_of_cycle_end(self) -> int:
        """Samples generated, once a write now would not straddle a cycle end."""
        n, rate = self.rendered.samples_per_cycle, self.rendered.sample_rate_hz
        margin = min(SWITCH_MARGIN_S, n / rate / 4)
        generated = self._master_generated()
        left_s = (n - generated % n) / rate
        if left_s < margin:  # let this cycle end first
            threading.Event().wait(left_s + 1 / rate)
            generated = self._master_generated()
        return generated

    def generated(self) -> dict[str, int]:
        """Samples per channel each sampled task has generated."""
        return {
            role: int(task.out_stream.total_samp_per_chan_generated)
            for role, task in self._tasks.items()
            if role != "co"
        }

    def frames_triggered(self, generated: int) -> int:
        """Frames whose trigger the card has played after `generated` samples
        (of the master; the first `lead` of them come before frame 0)."""
        r = self.rendered
        n = r.samples_per_cycle
        starts = r.frame_starts
        whole, rest = divmod(max(generated - self.lead, 0), n)
        return whole * len(starts) + int(np.count_nonzero(starts < rest))

    def stop(self) -> DaqCounts | None:
        """Stop every task (master first) and record what each generated."""
        if not self._running:
            return self.counts
        self._running = False
        master = self._master_role()
        errors: list[BaseException] = []
        for role in (master, *(r for r in ("do", "co", "ao") if r != master)):
            task = self._tasks.get(role)
            if task is None:
                continue
            try:
                task.stop()
            except Exception as exc:
                errors.append(exc)
        try:
            samples = self.generated()
            self.counts = DaqCounts(samples, self.frames_triggered(samples[master]))
        except Exception as exc:
            errors.append(exc)
        if errors:
            raise errors[0]
        return self.counts

    def check(self, frames_acquired: int, *, in_flight: int = 0) -> None:
        """Raise DaqSyncError if the tasks or the camera went out of step."""
        counts = self.counts
        if counts is None:
            return
        master = self._master_role()
        for role, n in counts.samples.items():
            if n != counts.samples[master]:
                raise DaqSyncError(
                    f"the {role.upper()} task generated {n} samples but the "
                    f"{master.upper()} master {counts.samples[master]}: a follower "
                    f"started after its master, so lasers and camera triggers were "
                    f"out of step with the galvo"
                )
        missing = counts.frames_triggered - frames_acquired
        if self.program.topology == "camera_master" and missing < 0:
            frame_s = self.rendered.samples_per_cycle / max(
                len(self.rendered.frames), 1
            )
            raise DaqSyncError(
                f"the camera took {frames_acquired} frames but the DAQ played only "
                f"{counts.frames_triggered}: the card ignores an exposure-out edge "
                f"while it still plays the previous frame "
                f"({frame_s / self.rendered.sample_rate_hz * 1000:g} ms); make the "
                f"camera's frame period at least that long"
            )
        if missing > in_flight or missing < 0:
            raise DaqSyncError(
                f"the DAQ triggered {counts.frames_triggered} frames but the camera "
                f"delivered {frames_acquired}: frames would not match the waveform "
                f"(missed or extra camera triggers)"
            )

    # --- safe state -------------------------------------------------------------------
    def close(self) -> None:
        """Stop, park (lasers off, galvos at park_v) and clear every task."""
        errors: list[BaseException] = []
        try:
            self.stop()
        except Exception as exc:
            errors.append(exc)
        for task in self._tasks.values():
            try:
                task.close()
            except Exception as exc:
                errors.append(exc)
        self._tasks.clear()
        try:
            park(self.connection, self.program, self._options)
        except Exception as exc:
            errors.append(exc)
        if errors:
            logger.error("DAQ safe state: %s", "; ".join(map(str, errors)))
            raise errors[0]

    def __enter__(self) -> DaqTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def park(
    connection: DaqConnection, program: WaveformProgram, options: Any = None
) -> None:
    """On-demand writes: every DO line low first, then every galvo to its park_v.

    Lasers off comes first and does not depend on the AO write: each step is
    tried, and the first error is raised once both were attempted.
    """
    lines = [laser.physical_line for laser in program.lasers]
    if program.camera_trigger and not _is_counter(program.camera_trigger.physical_line):
        lines.append(program.camera_trigger.physical_line)
    analog = {a.physical_channel: (a.park_v, a.min_v, a.max_v) for a in program.analog}
    park_outputs(connection, lines, analog, options)


def park_outputs(
    connection: DaqConnection,
    lines: list[str],
    analog: dict[str, tuple[float, float, float]],
    options: Any = None,
) -> None:
    """DO `lines` low, then each AO channel to its value ((value, min_v, max_v)).

    Each step is tried; the first error is raised once both were attempted.
    """
    options = options if options is not None else connection.grpc_options()
    errors: list[BaseException] = []
    for step, what in ((_lines_low, lines), (_analog_to, analog)):
        try:
            step(what, options)  # type: ignore[operator]
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _lines_low(lines: list[str], options: Any) -> None:
    """Laser blanking lines (and a DO camera trigger line) low."""
    import nidaqmx
    from nidaqmx.constants import LineGrouping

    if not lines:
        return
    with nidaqmx.Task(grpc_options=options) as do:
        for line in lines:
            do.do_channels.add_do_chan(line, line_grouping=LineGrouping.CHAN_PER_LINE)
        do.write([False] * len(lines) if len(lines) > 1 else False, auto_start=True)


def _analog_to(analog: dict[str, tuple[float, float, float]], options: Any) -> None:
    """Every AO channel to its park voltage."""
    import nidaqmx

    if not analog:
        return
    with nidaqmx.Task(grpc_options=options) as ao:
        for channel, (_v, lo, hi) in analog.items():
            ao.ao_channels.add_ao_voltage_chan(channel, min_val=lo, max_val=hi)
        values = [v for v, _lo, _hi in analog.values()]
        ao.write(values if len(values) > 1 else values[0], auto_start=True)
