"""The acquisition engine: pymmcore-plus's MDAEngine, streaming and stoppable.

* Hardware-sequenced events yield each frame as it is popped from the camera's
  circular buffer (nothing collected in RAM).
* The stream event (:func:`~mmapp.engine.events.stream_event`) runs the camera
  continuously until Stop, a frame count or a duration.
* :meth:`StreamingEngine.request_abort` stops from any state within
  milliseconds: it unblocks the camera (own abort hook) and the pop loop (own
  event) instead of waiting for the next frame like ``runner.cancel()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, Protocol

from pymmcore_plus import CMMCorePlus, FocusDirection
from pymmcore_plus.core._sequencing import SequencedEvent
from pymmcore_plus.mda import MDAEngine
from useq import AcquireImage, MDAEvent, MDASequence

from mmapp.daq.program import WaveformProgram
from mmapp.engine.daq_link import DaqLink, DaqOutOfStepError, DaqProgramError
from mmapp.engine.errors import (
    AcquisitionError,
    BufferOverflowError,
    CameraStoppedError,
    CameraTimeoutError,
    DeviceError,
)
from mmapp.engine.events import indexed_events, is_barrier_event, is_stream_event
from mmapp.engine.ring import RingLease, fit_ring_to_frames
from mmapp.rig.triggers import GENERIC as GENERIC_TRIGGER
from mmapp.rig.triggers import CameraTriggerError, CameraTriggerSpec, trigger_value

logger = logging.getLogger(__name__)

POLL_S = 0.0002  # copied frames (C++ cameras): first wait when none is ready,
MAX_POLL_S = 0.002  # doubling up to this (Stop is an event: it never waits a poll)
# Leased frames (Python cameras) wake the engine as they arrive; it blocks at
# most this long between looks at the camera's state, the DAQ and the limits.
LEASE_WAIT_S = 0.01
BATCH_FRAMES = 64  # frames taken from the ring in one go (one lock)
ENDLESS = 2**31 - 1  # frames: "until stopped", with stop-on-overflow
RELEASE_KEY = "mmapp_release"  # payload metadata: call once the frame is stored
# With `frame_runs` on, the frames taken from the ring together go out as one
# payload: the first frame's, its metadata holding every payload of the run
# (the first included) under RUN_KEY. One frameReady per run instead of one per
# frame: at thousands of small frames per second the runner's and the signal's
# per-frame work cost more than writing the frames.
RUN_KEY = "mmapp_run"
RELEASE_TIMEOUT_S = 60.0
DRAIN_S = 0.5  # after Stop: time for frames the card triggered to be read out


class StreamingEngine(MDAEngine):
    """MDAEngine that streams frames and can be aborted at any moment."""

    def __init__(
        self,
        mmc: CMMCorePlus,
        *,
        abort_hooks: Iterable[Callable[[], None]] = (),
        safe_state_hooks: Iterable[Callable[[], None]] = (),
        camera_fault: Callable[[], str | None] | None = None,
        timeout_first_frame: float | None = 20.0,
        timeout_base: float = 5.0,
        daq: DaqLink | None = None,
        camera_ready: Callable[[float], bool] | None = None,
        program_ready: Callable[[WaveformProgram], None] | None = None,
        trigger: CameraTriggerSpec = GENERIC_TRIGGER,
    ) -> None:
        super().__init__(
            mmc,
            timeout_first_frame=timeout_first_frame,
            timeout_base=timeout_base,
            restore_initial_state=False,
        )
        self.abort_event = threading.Event()
        # Set while the camera is armed. Other threads must wait on this instead
        # of polling core.isSequenceRunning(): UniMMCore's check can forget a
        # sequence that is starting when it is called from another thread.
        self.camera_armed = threading.Event()
        self._abort_hooks = list(abort_hooks)
        self._safe_state_hooks = list(safe_state_hooks)
        self._camera_fault = camera_fault
        self.frames_acquired = 0
        self.frames_lost = 0
        self.camera_stopped_at: float | None = None
        self.unsafe: list[str] = []  # safe-state steps that failed in teardown
        # The controller turns this on when its relay takes every frame's payload
        # metadata RELEASE_KEY (and calls the release, if not None, once the
        # frame is stored): a frame whose key is left was lost.
        self.zero_copy = False
        # The controller turns this on when its relay takes runs (RUN_KEY).
        self.frame_runs = False
        self._lease: RingLease | None = None
        self.daq = daq
        self._camera_ready = camera_ready
        self._program_ready = program_ready
        self.trigger = trigger  # the camera's trigger property and its values
        self._trigger_mode_before: str | None = None
        self._exposure_before: float | None = None
        self._start_position: tuple[float | None, tuple[float, float] | None] = (
            None,
            None,
        )

    def release(self) -> None:
        """Drop the hooks into the rig (the core's runner keeps its engine)."""
        self._abort_hooks.clear()
        self._safe_state_hooks.clear()
        self._camera_fault = None
        self.zero_copy = False
        self.frame_runs = False
        if self._lease is not None:
            self._lease.close()
        self._lease = None
        self.daq = None
        self._camera_ready = None
        self._program_ready = None

    # --- stop -------------------------------------------------------------------
    def request_abort(self) -> None:
        """Stop now: unblock the camera and the pop loop (thread-safe)."""
        self.abort_event.set()
        if (lease := self._lease) is not None:
            lease.wake()  # an engine waiting for a frame sees the Stop at once
        if self.daq is None or not self.daq.camera_waits_for_daq():
            self._unblock_camera()
        # else: the engine thread stops the card first, lets the camera read out
        # what the card already triggered, then stops the camera

    def _unblock_camera(self) -> None:
        for hook in self._abort_hooks:
            try:
                hook()
            except Exception:
                logger.exception("abort hook failed")

    def _stop_daq(self) -> None:
        if self.daq is not None:
            self.daq.stop()

    def _prepare_daq(self, frames: int | None) -> None:
        """Program the card and put the camera in the matching trigger mode."""
        if self.daq is None:
            return
        camera_master = self.daq.program.topology == "camera_master"
        core, mapping = self.mmcore, self.trigger
        try:  # refuse before anything starts
            value = trigger_value(core, mapping, free_run=camera_master)
        except CameraTriggerError as exc:
            raise DaqProgramError(str(exc)) from None
        camera = core.getCameraDevice()
        self.daq.prepare(frames, first_frame=self.frames_acquired)
        # the program defines the exposure window (lasers on, galvo settled);
        # the operator's exposure comes back after the run
        if self._exposure_before is None:
            self._exposure_before = core.getExposure()
        core.setExposure(self.daq.program.timing.exposure_s * 1000.0)
        before = core.getProperty(camera, mapping.property)
        if before != value:
            if self._trigger_mode_before is None:
                self._trigger_mode_before = before
            core.setProperty(camera, mapping.property, value)
        if self._program_ready is not None:  # e.g. lasers on: blanking switches them
            self._program_ready(self.daq.program)
        if camera_master:  # the camera is the master: the card waits for it, armed
            self.daq.start()

    def _restore_trigger_mode(self) -> None:
        exposure, self._exposure_before = self._exposure_before, None
        if exposure is not None:
            try:
                self.mmcore.setExposure(exposure)
            except Exception:
                logger.exception("could not restore the camera's exposure")
        before, self._trigger_mode_before = self._trigger_mode_before, None
        if before is None:
            return
        try:
            self.mmcore.setProperty(
                self.mmcore.getCameraDevice(), self.trigger.property, before
            )
        except Exception:
            logger.exception("could not restore the camera's trigger mode")

    def _stop_camera(self) -> None:
        core = self.mmcore
        self._unblock_camera()
        if core.isSequenceRunning():
            core.stopSequenceAcquisition()
        self.camera_armed.clear()
        self.camera_stopped_at = time.perf_counter()
        self._close_auto_shutter()

    def _open_auto_shutter(self) -> None:
        """What MMCore does for C++ cameras, done for Python cameras too."""
        core = self.mmcore
        self._shutter_opened = False
        if (
            core.getAutoShutter()
            and core.getShutterDevice()
            and core.isPyDevice(core.getCameraDevice())
            and not core.getShutterOpen()
        ):
            core.setShutterOpen(True)
            self._shutter_opened = True

    def _close_auto_shutter(self) -> None:
        if getattr(self, "_shutter_opened", False):
            self._shutter_opened = False
            try:
                self.mmcore.setShutterOpen(False)
            except Exception:
                logger.exception("could not close the shutter")

    # --- protocol -----------------------------------------------------------------
    def setup_sequence(self, sequence: MDASequence) -> Any:
        """Reset counters, then the stock setup."""
        self.frames_acquired = 0
        self.frames_lost = 0
        self.camera_stopped_at = None
        if self.daq is not None:  # before any hardware moves
            self.daq.refuse_conflicting_axes(sequence, ())
        self._start_position = self._stage_position()
        return super().setup_sequence(sequence)

    def _stage_position(self) -> tuple[float | None, tuple[float, float] | None]:
        """Where Z and XY are now (None: no such stage or it does not answer)."""
        core = self.mmcore
        z = xy = None
        try:
            if core.getFocusDevice():
                z = float(core.getPosition())
        except Exception:
            logger.exception("could not read the Z position")
        try:
            if core.getXYStageDevice():
                x, y = core.getXYPosition()
                xy = (float(x), float(y))
        except Exception:
            logger.exception("could not read the XY position")
        return z, xy

    def _return_stages(self) -> None:
        """Put Z and XY back where the acquisition found them (as Micro-Manager).

        Z moves first when that takes the objective away from the sample (a
        known focus direction), else XY first, so a return never drives the
        objective into the sample while the stage moves sideways.
        """
        (z0, xy0), self._start_position = self._start_position, (None, None)
        core = self.mmcore
        z, xy = self._stage_position()
        move_z = z0 is not None and z is not None and abs(z - z0) > 1e-9
        move_xy = xy0 is not None and xy is not None and xy != xy0
        try:
            z_first = move_z and self._z_move_retracts(z, z0)  # type: ignore[arg-type]
            if z_first:
                core.setPosition(z0)
            if move_xy:
                core.setXYPosition(*xy0)  # type: ignore[misc]
                logger.info("XY returned to %.2f, %.2f um", *xy0)  # type: ignore[misc]
            if move_z and not z_first:
                core.setPosition(z0)
            if move_z:
                logger.info("Z returned to %.2f um", z0)
            core.waitForSystem()
        except Exception:
            logger.exception("could not return the stages to where they started")

    def _z_move_retracts(self, z: float, target: float) -> bool:
        """Whether moving Z from z to target takes the objective off the sample."""
        try:
            direction = self.mmcore.getFocusDirection(self.mmcore.getFocusDevice())
        except Exception:
            return False
        toward = FocusDirection.TowardSample
        away = FocusDirection.AwayFromSample
        return (direction == toward and target < z) or (
            direction == away and target > z
        )

    def event_iterator(self, events: Iterable[MDAEvent]) -> Iterator[MDAEvent]:
        """The stock merging, with waits between time points that Stop cuts short.

        The runner sleeps up to 0.5 s at a time before it looks at a cancel;
        here the wait is on the abort event, and the runner gets the event due.
        """
        t0 = time.perf_counter()
        for event in super().event_iterator(events):
            if event.reset_event_timer:
                t0 = time.perf_counter()
            if event.min_start_time:
                wait_s = t0 + event.min_start_time - time.perf_counter()
                if wait_s > 0 and self.abort_event.wait(wait_s):
                    return
                event = event.model_copy(update={"min_start_time": None})
            if self.abort_event.is_set():
                return
            yield event

    def setup_event(self, event: MDAEvent) -> None:
        """The stream event needs no per-event hardware setup beyond exposure."""
        if is_barrier_event(event):
            return
        if is_stream_event(event):
            if event.exposure is not None:
                self.mmcore.setExposure(event.exposure)
            return
        super().setup_event(event)

    def exec_event(self, event: MDAEvent) -> Iterator[Any]:
        """Run the stream event here; everything else as the stock engine."""
        if self.abort_event.is_set() or is_barrier_event(event):
            return
        if is_stream_event(event):
            yield from self._exec_stream(event)
        elif self.daq is not None and not isinstance(event, SequencedEvent):
            raise DaqProgramError(
                "a DAQ waveform program needs a hardware-sequenced acquisition "
                "(a stream, or time points with interval 0); this event is a "
                "single snap"
            )
        elif isinstance(event, SequencedEvent):
            yield from super().exec_event(event)  # counted where frames are popped
        else:  # a snap: one frame per camera channel
            yield from self._counted(super().exec_event(event))

    def _counted(self, payloads: Iterable[Any]) -> Iterator[Any]:
        """The stock engine's frames, counted (None: a frame the camera did not
        deliver, acquired and lost: acquired = saved + lost)."""
        for payload in payloads:
            self.frames_acquired += 1
            if payload is None:
                self.frames_lost += 1
            yield payload

    def exec_sequenced_event(self, event: SequencedEvent) -> Iterator[Any]:
        """Start the camera for the whole sequence, then yield frames as they come."""
        core = self.mmcore
        if core.getNumberOfCameraChannels() != 1:
            yield from self._counted(super().exec_sequenced_event(event))
            return
        n = len(event.events)
        t0 = event.metadata.get("runner_t0")
        t0_ms = (time.perf_counter() - t0) * 1000 if t0 else 0.0
        daq = self.daq
        event_at: Callable[[int], MDAEvent] = event.events.__getitem__
        if daq is not None:  # frames carry the program's axes (t volume, z, c)
            daq.refuse_conflicting_axes(None, event.events)

            def event_at(i: int) -> MDAEvent:
                return daq.event_for(event.events[i], i)

        source = self._frame_source()
        if self.abort_event.is_set():
            return
        self._prepare_daq(n)
        self._open_auto_shutter()
        core.startSequenceAcquisition(n, 0, True)
        self.post_sequence_started(event)
        yield from self._pop_frames(
            source,
            expected=n,
            event_at=event_at,
            timing=event,
            t0_ms=t0_ms,
        )

    def _exec_stream(self, event: MDAEvent) -> Iterator[Any]:
        core = self.mmcore
        data = event.action.data  # type: ignore[union-attr]
        max_frames = data.get("max_frames")
        max_duration = data.get("max_duration_s")
        base = event.model_copy(update={"action": AcquireImage()})
        source = self._frame_source()
        if self.abort_event.is_set():
            return
        self._prepare_daq(int(max_frames) if max_frames else None)
        self._open_auto_shutter()
        if max_frames:
            core.startSequenceAcquisition(int(max_frames), 0, True)
        elif isinstance(source, RingLease):  # leased slots must never be overwritten
            core.startSequenceAcquisition(ENDLESS, 0, True)
        else:
            core.startContinuousSequenceAcquisition(0)
        self.post_sequence_started(event)

        daq = self.daq
        # each frame its own event and index
        event_at: Callable[[int], MDAEvent] = (
            indexed_events(base) if daq is None else partial(daq.event_for, base)
        )

        yield from self._pop_frames(
            source,
            expected=max_frames,
            event_at=event_at,
            timing=event,
            t0_ms=0.0,
            deadline_s=time.perf_counter() + max_duration if max_duration else None,
        )

    def post_sequence_started(self, event: MDAEvent) -> None:
        """Right after the camera is armed: start the DAQ (followers, then master)."""
        if self._camera_ready is not None and not self._camera_ready(2.0):
            if not self._camera_ran():
                raise CameraStoppedError("the camera did not arm within 2 s")
            # it armed, ran and stopped before we looked (e.g. it filled its
            # buffer at once): the frame loop saves what it left and says why
            self.camera_armed.set()
            return
        self.camera_armed.set()
        if self.daq is not None:
            self.daq.start()

    def _camera_ran(self) -> bool:
        """Whether the started camera has already delivered frames."""
        core = self.mmcore
        try:
            return core.getRemainingImageCount() > 0 or core.isBufferOverflowed()
        except Exception:
            return False

    def teardown_sequence(self, sequence: MDASequence) -> None:
        """Camera stopped and the rig made safe, whatever happened."""
        try:
            if self.mmcore.isSequenceRunning():
                self._stop_camera()
            super().teardown_sequence(sequence)
            self._return_stages()
        finally:
            if self.daq is not None:
                try:
                    self.daq.close()
                except Exception as exc:
                    logger.error("DAQ safe state failed: %s", exc)
                    self.unsafe.append(self.daq.unsafe or f"DAQ: {exc}")
            self._restore_trigger_mode()
            for hook in self._safe_state_hooks:
                try:
                    hook()
                except Exception as exc:
                    logger.error("safe state failed: %s", exc)
                    self.unsafe.append(str(exc) or type(exc).__name__)

    # --- the pop loop ---------------------------------------------------------------
    def _pop_frames(
        self,
        source: FrameSource,
        *,
        expected: int | None,
        event_at: Callable[[int], MDAEvent],
        timing: MDAEvent,
        t0_ms: float,
        deadline_s: float | None = None,
    ) -> Iterator[Any]:
        """Yield payloads as frames arrive; stop on abort, cancel, limits or errors."""
        core = self.mmcore
        abort = self.abort_event
        frame_timeout = self._frame_timeout(timing)
        timeout = self._initial_timeout(timing)
        wait_until = time.perf_counter() + timeout
        count = 0
        skipped = 0  # frames of this sequence the camera numbered but never gave us
        idle_wait = POLL_S
        # pymmcore-plus's frame-dict, with what cannot change during a hardware
        # sequence read once (per frame it costs more than writing 512x512 px)
        frame_constants = {
            "format": "frame-dict",
            "version": "1.0",
            "camera_device": core.getCameraDevice(),
            "property_values": (),
            "exposure_ms": core.getExposure(),
            "pixel_size_um": core.getPixelSizeUm(True),
            "hardware_triggered": True,
        }
        unclaimed: list[dict] = []  # the metadata of the payloads last yielded
        # frames taken from the ring in one go, not yet yielded (oldest first)
        batch: deque[tuple[Any, Any, Any]] = deque()
        lease = source if isinstance(source, RingLease) else None

        def payload(take: tuple[Any, Any, Any], remaining: int) -> tuple:
            nonlocal count, unclaimed
            img, mm_meta, release = take
            event = event_at(count)
            meta = {
                **frame_constants,
                "runner_time_ms": t0_ms + _elapsed_ms(mm_meta),
                "mda_event": event,
                "images_remaining_in_buffer": remaining - 1,
                "camera_metadata": mm_meta,
            }
            if release is not None or self.zero_copy:
                # the relay pops the key when it takes the frame (a copied frame
                # has None to call): a key left means no one stored the frame
                meta[RELEASE_KEY] = release
            unclaimed.append(meta)
            count += 1
            self.frames_acquired += 1
            return (img, event, meta)

        def settle() -> None:
            """Frames no listener took (one raised first): free them, count them."""
            for meta in unclaimed:
                if RELEASE_KEY in meta:
                    if (release := meta.pop(RELEASE_KEY)) is not None:
                        release()
                    self.frames_lost += 1
            unclaimed.clear()

        def check_numbering(taken: tuple[Any, Any, Any]) -> None:
            """Count the frames the camera numbered but never gave us."""
            nonlocal skipped, error
            number = _image_number(taken[1])
            if number is None:
                return
            # The core stamps ImageNumber, from 0 at each sequence start:
            # UniMMCore for Python cameras, MMCore's circular buffer for
            # C++ ones (whatever the adapter sent). So a first frame
            # numbered N means N frames were dropped before it (MMCore's
            # continuous mode clears a full buffer and goes on).
            # (Counted per sequence: the numbers start again at each.)
            gap = number - count - skipped
            if gap > 0:  # exposed, then overwritten before it was popped
                skipped += gap
                self.frames_acquired += gap
                self.frames_lost += gap
                error = BufferOverflowError(
                    f"camera buffer overflowed: {gap} frames were overwritten "
                    f"before they could be saved"
                )

        def next_payload() -> tuple:
            """The oldest frame taken, or with `frame_runs` every frame taken
            (up to a numbering gap) as one run payload."""
            taken = batch.popleft()
            check_numbering(taken)
            first = payload(taken, len(batch) + 1)
            if self.frame_runs and batch and error is None:
                run = [first]
                while batch and error is None:
                    taken = batch.popleft()
                    check_numbering(taken)
                    run.append(payload(taken, len(batch) + 1))
                first[2][RUN_KEY] = run
            return first

        error: AcquisitionError | None = None
        try:
            while expected is None or count < expected:
                if abort.is_set():
                    break
                if deadline_s is not None and time.perf_counter() >= deadline_s:
                    break
                if not batch:
                    want = BATCH_FRAMES if expected is None else expected - count
                    batch.extend(source.take_many(min(want, BATCH_FRAMES)))
                if not batch:
                    if not core.isSequenceRunning() and not source.remaining():
                        self._raise_camera_stopped(count, expected)
                    if self.daq is not None and (late := self.daq.overdue()):
                        self.daq.stop_and_check(count)  # says why
                        raise DaqOutOfStepError(
                            f"{late}: {count} of {expected} frames arrived"
                        )
                    if time.perf_counter() > wait_until:
                        raise CameraTimeoutError(
                            f"the camera delivered no frame for {timeout:.1f} s "
                            f"after {count} frames (is it waiting for a trigger?)"
                        )
                    if lease is not None:  # woken by the next frame (or Stop)
                        lease.wait(LEASE_WAIT_S)
                    else:  # short right after a frame, longer when idle
                        abort.wait(idle_wait)
                        idle_wait = min(idle_wait * 2, MAX_POLL_S)
                    continue
                signal = yield next_payload()
                settle()
                if error is not None:
                    raise error
                timeout = frame_timeout
                wait_until = time.perf_counter() + timeout
                idle_wait = POLL_S
                if signal == "cancel":
                    break
        except AcquisitionError as exc:
            error = exc
        except BaseException:  # closed early: what was taken goes back
            self._give_back(batch)
            raise
        finally:
            settle()
            holds_camera = self.daq is not None and self.daq.camera_waits_for_daq()
            if (
                self.daq is not None
                and not holds_camera
                and (self.daq.program.topology == "camera_master")
            ):  # the camera triggers the card: stop it first, then the card
                self._stop_camera()
                self._stop_daq()
            else:
                self._stop_daq()  # no more triggers, lasers blanked
                if holds_camera and error is None:
                    self._await_triggered_frames(source, count, expected)
                self._stop_camera()
        # Stop, a limit or an error: what the camera already delivered is data.
        try:
            while batch:
                yield payload(batch.popleft(), len(batch) + 1)
                settle()
        finally:
            self._give_back(batch)
        while (expected is None or count < expected) and source.remaining():
            yield payload(source.take(), source.remaining())
            settle()
        if error is not None:
            raise error
        if self.daq is not None:
            self.daq.stop_and_check(count)

    def _give_back(self, batch: deque[tuple[Any, Any, Any]]) -> None:
        """Frames taken but never yielded (the run was closed): acquired and
        lost, their ring slots freed."""
        self.frames_acquired += len(batch)
        self.frames_lost += len(batch)
        while batch:
            if (release := batch.popleft()[2]) is not None:
                release()

    def _await_triggered_frames(
        self, source: FrameSource, count: int, expected: int | None
    ) -> None:
        """After the card stopped: let the camera read out what it triggered."""
        triggered = self.daq.frames_triggered() if self.daq is not None else None
        if triggered is None:
            return
        if expected is not None:
            triggered = min(triggered, expected)
        deadline = time.perf_counter() + DRAIN_S
        pause = threading.Event()
        while (
            count + source.remaining() < triggered
            and self.mmcore.isSequenceRunning()
            and time.perf_counter() < deadline
        ):
            pause.wait(POLL_S)

    def _frame_source(self) -> FrameSource:
        """Where this sequence's frames come from: leased ring slots or copies.

        Before the camera starts again (which resets the ring), every frame
        leased from the previous sequence must have been stored.
        """
        core = self.mmcore
        if not (self.zero_copy and RingLease.supported(core)):
            return _CopyingSource(core)
        ring = core._seq_buffer
        if self._lease is not None:
            deadline = time.perf_counter() + RELEASE_TIMEOUT_S
            while not self._lease.wait_all_released(0.05):
                if self.abort_event.is_set():  # the caller returns, camera untouched
                    return _CopyingSource(core)
                if time.perf_counter() > deadline:
                    raise AcquisitionError(
                        f"{self._lease.outstanding} frames of the previous sequence "
                        f"were not stored within {RELEASE_TIMEOUT_S:.0f} s"
                    )
            if self._lease.ring is not ring:
                self._lease.close()
                self._lease = None
        if not fit_ring_to_frames(ring, _frame_bytes(core)):
            return _CopyingSource(core)
        if self._lease is None:
            self._lease = RingLease(ring)
        return self._lease

    def _raise_camera_stopped(self, count: int, expected: int | None) -> None:
        core = self.mmcore
        missing = "" if expected is None else f" of {expected}"
        if core.isBufferOverflowed():
            # the camera stopped at the first frame that found the buffer full:
            # that frame was exposed and had nowhere to go
            self.frames_acquired += 1
            self.frames_lost += 1
            raise BufferOverflowError(
                f"camera buffer overflowed at frame {count + 1}{missing}: the "
                f"camera stopped because the writer could not keep up"
            )
        if self._camera_fault is not None and (fault := self._camera_fault()):
            raise DeviceError(f"camera fault after {count}{missing} frames: {fault}")
        raise CameraStoppedError(f"the camera stopped after {count}{missing} frames")


class FrameSource(Protocol):
    """Frames popped from the camera: (image, metadata, release or None)."""

    def remaining(self) -> int: ...
    def take(self) -> tuple[Any, Any, Callable[[], None] | None]: ...
    def take_many(
        self, limit: int
    ) -> list[tuple[Any, Any, Callable[[], None] | None]]: ...


class _CopyingSource:
    """The core's own pop (a copy per frame): any camera, any core."""

    def __init__(self, core: CMMCorePlus) -> None:
        self.remaining = core.getRemainingImageCount
        self._pop = core.popNextImageAndMD

    def take(self) -> tuple[Any, Any, None]:
        img, meta = self._pop()
        return img, meta, None

    def take_many(self, limit: int) -> list[tuple[Any, Any, None]]:
        """Up to `limit` frames, each copied out of MMCore's buffer once."""
        pop = self._pop
        return [(*pop(), None) for _ in range(min(limit, self.remaining()))]


def _frame_bytes(core: CMMCorePlus) -> int:
    return core.getImageWidth() * core.getImageHeight() * core.getBytesPerPixel()


def _elapsed_ms(mm_meta: Any) -> float:
    try:
        return float(mm_meta["ElapsedTime-ms"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def _image_number(mm_meta: Any) -> int | None:
    try:
        return int(mm_meta["ImageNumber"])
    except (KeyError, TypeError, ValueError):
        return None
