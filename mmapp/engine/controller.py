"""RunController: one acquisition on its own thread, stoppable from anywhere.

It wires the rig's core, the streaming engine, a DataHandler and an NDTiff
sink together, and always ends with a :class:`RunResult` that says why the run
ended and how many frames were acquired, saved and lost.

With a processing chain (``RunRequest.processing`` with enabled steps) the run
also has a :class:`~mmapp.processing.ProcessingPipeline`: the relay hands each
frame to it (one copy, never waiting) before queuing the raw frame, and its
output goes to a second dataset, ``<raw dataset>_processed`` beside the raw
one (each summary names the other: ``mmapp.processed_dataset`` /
``mmapp.raw_dataset``). Without a chain nothing of this exists: the relay is
the plain one, with no per-frame work added. At the end: engine done ->
pipeline drained (incomplete batches dropped and counted) -> processed
dataset finished -> raw dataset finished; every step runs on every path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal
from pymmcore_plus.mda.events import MDASignaler
from useq import MDAEvent, MDASequence

from mmapp.daq.program import WaveformProgram
from mmapp.data.datasets import next_dataset_path
from mmapp.data.errors import InvalidFrameError
from mmapp.data.handler import DEFAULT_QUEUE_BYTES, DataHandler, Frame
from mmapp.data.ndtiff_sink import NDTiffSink, json_safe
from mmapp.data.stats import ProcessingSnapshot, StatsSnapshot
from mmapp.engine.daq_link import (
    DaqLink,
    DaqProgramError,
    ProgramChange,
    write_program_changes,
)
from mmapp.engine.disk_watch import DiskWatch
from mmapp.engine.engine import RELEASE_KEY, RUN_KEY, StreamingEngine
from mmapp.engine.errors import DiskNearlyFullError, UnsafeRigError
from mmapp.engine.events import barrier_event, coordinates_for
from mmapp.processing import (
    EventQueue,
    ProcessingChain,
    ProcessingPipeline,
    ProcessorError,
    build_stages,
)
from mmapp.processing.pipeline import chain_context
from mmapp.rig import Rig

logger = logging.getLogger(__name__)


# Python hands the GIL over every 5 ms by default. The writer thread releases it
# for each write() and then waits that long to get it back while the engine and
# camera threads run Python: at 2048x2048 that alone cut throughput to a fifth
# (`mmapp bench stream`). A short interval keeps every thread of the frame path
# moving. Small frames want the opposite: each thread handles many frames per
# turn, and every forced hand-over costs a switch; at 256x256 0.5 ms gave
# 5000-5900 frames/s and 2 ms 6900-8800 (at 2048x2048, 2 ms was ~6% slower).
GIL_SWITCH_INTERVAL_S = 0.0005
SMALL_FRAME_GIL_SWITCH_INTERVAL_S = 0.002
SMALL_FRAME_BYTES = 2 * 1024 * 1024  # below this a frame is "small"
_switch_interval_before: float | None = None  # the process's own, before any run


def tune_gil_for_streaming(frame_bytes: int = 0) -> None:
    """Set the GIL switch interval for frames of this size (process-wide,
    never longer than the process had before the first run)."""
    global _switch_interval_before
    if _switch_interval_before is None:
        _switch_interval_before = sys.getswitchinterval()
    small = 0 < frame_bytes < SMALL_FRAME_BYTES
    wanted = SMALL_FRAME_GIL_SWITCH_INTERVAL_S if small else GIL_SWITCH_INTERVAL_S
    sys.setswitchinterval(min(_switch_interval_before, wanted))


class RunOutcome(StrEnum):
    """Why a run ended."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    ERROR = "error"
    UNSAFE = "unsafe"  # the rig could not be made safe (whatever the data did)


@dataclass(frozen=True)
class RunRequest:
    """What to acquire and where to save it."""

    events: MDASequence | Sequence[MDAEvent]
    out_dir: Path
    name: str = "acquisition"
    settings: Mapping[str, Any] = field(default_factory=dict)
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    first_frame_timeout_s: float = 20.0  # a triggered camera may wait this long
    frame_timeout_s: float = 5.0  # then at most this long between frames
    program: WaveformProgram | None = None  # what the DAQ plays (None: no DAQ)
    save: bool = True  # False: live view only (frames counted and shown, not kept)
    processing: ProcessingChain | None = None  # None or no enabled step: none


PROCESSED_SUFFIX = "_processed"  # the processed dataset: <raw dataset>_processed


@dataclass(frozen=True)
class RunResult:
    """How a run ended."""

    outcome: RunOutcome
    message: str
    dataset: Path | None
    frames_acquired: int
    frames_saved: int
    frames_lost: int
    frames_rejected: int
    duration_s: float
    stop_latency_s: float | None = None
    error: BaseException | None = None
    # programs applied while it ran (also in the dataset's program_changes.json)
    program_changes: tuple[ProgramChange, ...] = ()
    processed_dataset: Path | None = None  # None: no chain, or nothing came out
    processing: ProcessingSnapshot | None = None  # None: the run had no chain
    warnings: tuple[str, ...] = ()  # e.g. a processor disabled

    def summary(self) -> str:
        """One line for the operator (acquired = saved + lost + rejected)."""
        where = f"; dataset {self.dataset}" if self.dataset else ""
        rejected = (
            f", {self.frames_rejected} rejected as invalid"
            if self.frames_rejected
            else ""
        )
        processed = ""
        if self.processing is not None:
            processed = f"; {self.processing.summary(self.processed_dataset)}"
        return (
            f"{self.outcome.value}: {self.frames_acquired} frames acquired, "
            f"{self.frames_saved} saved, {self.frames_lost} lost{rejected}"
            f"{where}{processed}" + (f" ({self.message})" if self.message else "")
        )

    def as_json(self) -> dict[str, Any]:
        """The record kept in the dataset (run.json)."""
        return {
            "outcome": self.outcome.value,
            "message": self.message,
            "frames_acquired": self.frames_acquired,
            "frames_saved": self.frames_saved,
            "frames_lost": self.frames_lost,
            "frames_rejected": self.frames_rejected,
            "duration_s": round(self.duration_s, 3),
            "summary": self.summary(),
            "dataset": self.dataset.name if self.dataset else None,
            "processed_dataset": (
                self.processed_dataset.name if self.processed_dataset else None
            ),
            "processing": self.processing.as_dict() if self.processing else None,
            "warnings": list(self.warnings),
        }


RUN_RECORD_FILE = "run.json"  # in the dataset folder: how its run ended


def _preset_copy(settings: Mapping[str, Any]) -> dict[str, str]:
    """preset.mmpreset for the dataset folder, written before any image (a run
    killed later still says how it was set up); the text preset_to_json gives."""
    preset = settings.get("preset")
    if not isinstance(preset, dict):
        return {}
    return {"preset.mmpreset": json.dumps(preset, indent=2, ensure_ascii=False) + "\n"}


def write_run_record(result: RunResult) -> Path | None:
    """Save how the run ended beside its images, in the raw and the processed
    dataset (returns the first written; None: no dataset)."""
    first: Path | None = None
    for dataset in (result.dataset, result.processed_dataset):
        if dataset is None:
            continue
        path = Path(dataset) / RUN_RECORD_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
        first = first or path
    return first


def frame_record(event: MDAEvent, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Per-image metadata: what identifies and describes the frame, cheaply.

    The full pymmcore-plus frame dict holds the whole MDAEvent; dumping that to
    JSON for every frame cost more GIL time than writing a 512x512 frame.
    """
    record: dict[str, Any] = {
        "runner_time_ms": meta.get("runner_time_ms"),
        "exposure_ms": meta.get("exposure_ms"),
        "camera_device": meta.get("camera_device"),
        "pixel_size_um": meta.get("pixel_size_um"),
        "hardware_triggered": meta.get("hardware_triggered", False),
        "event_index": dict(event.index),
        "camera_metadata": dict(meta.get("camera_metadata") or {}),
    }
    if event.z_pos is not None:
        record["z_um"] = event.z_pos
    if event.x_pos is not None or event.y_pos is not None:
        record["xy_um"] = [event.x_pos, event.y_pos]
    if event.channel is not None:
        record["channel"] = {
            "group": event.channel.group,
            "config": event.channel.config,
        }
    if props := meta.get("property_values"):
        record["property_values"] = list(props)
    return record


def _detached(error: BaseException | None) -> BaseException | None:
    """The error without its tracebacks (they would keep the core alive)."""
    seen: set[int] = set()
    exc = error
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__
    return error


class _FrameRelay:
    """Runner listener: frames to the handler, summary metadata to the sink."""

    def __init__(
        self,
        handler: DataHandler,
        sink: NDTiffSink | _DiscardSink,
        engine: StreamingEngine,
        settings: Mapping[str, Any],
    ) -> None:
        self.handler = handler
        self.sink = sink
        self.engine = engine
        self.settings = dict(settings)
        self.error: BaseException | None = None
        self.pipeline: ProcessingPipeline | None = None

    def sequenceStarted(self, sequence: MDASequence, meta: Mapping) -> None:
        summary = {"mmapp": self.settings, "pymmcore_plus": dict(meta or {})}
        with contextlib.suppress(Exception):
            summary["sequence"] = sequence.model_dump(mode="json", exclude_unset=True)
        self.sink.set_summary_metadata(json_safe(summary))

    def frameReadyProcessing(
        self, img: np.ndarray, event: MDAEvent, meta: Mapping
    ) -> None:
        """frameReady with a pipeline: it copies the frame first (the raw
        frame's ring slot may be released as soon as it is queued)."""
        if (run := meta.pop(RUN_KEY, None)) is not None:
            for payload in run:  # each frame to the pipeline, then stored
                self.frameReadyProcessing(*payload)
            return
        if self.error is None and isinstance(img, np.ndarray) and img.ndim == 2:
            record = frame_record(event, meta)
            coords = coordinates_for(event)
            self.pipeline.submit(coords, img, record)  # type: ignore[union-attr]
            self._put(coords, img, record, meta.pop(RELEASE_KEY, None))
        else:
            self.frameReady(img, event, meta)

    def frameReady(self, img: np.ndarray, event: MDAEvent, meta: Mapping) -> None:
        if (run := meta.pop(RUN_KEY, None)) is not None:
            self._put_run(run)
            return
        release = meta.pop(RELEASE_KEY, None)
        if self.error is not None:  # the run is ending: this frame cannot be kept
            self._drop(release, lost=True)
            return
        self._put(coordinates_for(event), img, frame_record(event, meta), release)

    def _put(
        self,
        coords: dict[str, int | str],
        img: np.ndarray,
        record: dict[str, Any],
        release: Callable[[], None] | None,
    ) -> None:
        try:
            self.handler.put(coords, img, record, release)
        except Exception as exc:
            # an invalid frame is already counted as rejected by the handler
            self._drop(release, lost=not isinstance(exc, InvalidFrameError))
            self.error = exc
            self.engine.request_abort()

    def _put_run(self, run: list[tuple[np.ndarray, MDAEvent, dict]]) -> None:
        """A run of frames (RUN_KEY) to the handler in one go."""
        frames = [
            (
                coordinates_for(event),
                img,
                frame_record(event, meta),
                meta.pop(RELEASE_KEY, None),
            )
            for img, event, meta in run
        ]
        if self.error is not None:  # the run is ending: these cannot be kept
            for frame in frames:
                self._drop(frame[3], lost=True)
            return
        queued, exc = self.handler.put_many(frames)
        if exc is not None:
            # an invalid frame is already counted as rejected by the handler
            self._drop(frames[queued][3], lost=not isinstance(exc, InvalidFrameError))
            for frame in frames[queued + 1 :]:
                self._drop(frame[3], lost=True)
            self.error = exc
            self.engine.request_abort()

    def _drop(self, release: Callable[[], None] | None, *, lost: bool) -> None:
        if release is not None:
            release()
        if lost:
            self.handler.stats.add_lost(1)


class _DiscardSink:
    """Storage for a run that saves nothing (live view): frames are dropped."""

    path: Path | None = None

    def set_summary_metadata(self, summary: Mapping[str, Any]) -> None:
        """Nothing to describe."""

    def put(
        self, coords: Mapping[str, int | str], image: np.ndarray, metadata: Any
    ) -> None:
        """Forget the frame (the handler then frees its camera buffer slot)."""

    def get(self, coords: Mapping[str, int | str]) -> tuple[np.ndarray, dict]:
        """Nothing is kept."""
        raise KeyError(f"live view keeps no images ({dict(coords)})")

    def has(self, coords: Mapping[str, int | str]) -> bool:
        """Nothing is kept."""
        return False

    def finish(self) -> None:
        """Nothing to finish."""


class RunController:
    """Starts, stops and reports one acquisition at a time on a rig."""

    finished = Signal(object)  # RunResult, emitted from the run thread

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self._thread: threading.Thread | None = None
        self._engine: StreamingEngine | None = None
        self._handler: DataHandler | None = None
        self._pipeline: ProcessingPipeline | None = None
        self._result: RunResult | None = None
        self._stop_requested_at: float | None = None
        self._stop_reason = "stopped by the operator"
        # re-entrant: a Ctrl-C handler may call stop() inside start() (same thread)
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._done.set()

    # --- control -------------------------------------------------------------------
    def start(self, request: RunRequest) -> None:
        """Start acquiring on a background thread (raises if already running)."""
        with self._lock:
            if not self._done.is_set():
                raise RuntimeError("an acquisition is already running")
            daq = self._daq_link(request.program)
            self._done.clear()
            self._handler = None  # stats and frames are the new run's from now on
            self._pipeline = None
            self._result = None
            self._stop_requested_at = None
            self._stop_reason = "stopped by the operator"
            self._engine = StreamingEngine(
                self.rig.core,
                abort_hooks=self.rig.abort_hooks,
                safe_state_hooks=[self.rig.make_safe],
                camera_fault=self._camera_fault,
                timeout_first_frame=request.first_frame_timeout_s,
                timeout_base=request.frame_timeout_s,
                daq=daq,
                camera_ready=self.rig.wait_camera_ready,
                program_ready=self.rig.prepare_for_program,
                trigger=self.rig.trigger,
            )
            self._thread = threading.Thread(
                target=self._run,
                args=(request, self._engine),
                name="mmapp-run",
                daemon=True,
            )
            self._thread.start()

    def _daq_link(self, program: WaveformProgram | None) -> DaqLink | None:
        if program is None:
            return None
        if self.rig.daq is None:
            raise DaqProgramError(
                f"the rig {self.rig.name!r} has no DAQ (add a 'daq' section to its "
                f"rig file) but the acquisition has a waveform program"
            )
        channel_group = self.rig.spec.channel_group if self.rig.spec else "Channel"
        return DaqLink(
            self.rig.daq,
            program,
            exposure_out=self.rig.exposure_out,
            channel_group=channel_group,
        )

    def update_program(self, program: WaveformProgram) -> ProgramChange | None:
        """Change the running program; it plays from the next volume boundary
        (returned: from which frame; None: from the next hardware sequence).

        Raises DaqProgramError if no program is playing or the change needs a
        restart (other frame count, timing or channels).
        """
        engine = self._engine
        daq = engine.daq if engine is not None and self.running else None
        if daq is None:
            raise DaqProgramError("no waveform program is playing")
        return daq.update(program)

    def check_program_change(self, program: WaveformProgram) -> None:
        """Raise DaqProgramError if update_program would refuse this change
        (without touching the card)."""
        engine = self._engine
        daq = engine.daq if engine is not None and self.running else None
        if daq is None:
            raise DaqProgramError("no waveform program is playing")
        daq.check_change(program)

    def stop(self, reason: str = "stopped by the operator") -> None:
        """Stop now, from any state (thread-safe, idempotent; the first
        reason is the run's message)."""
        with self._lock:
            engine = self._engine
            if engine is None or self._done.is_set():
                return
            if self._stop_requested_at is None:
                self._stop_requested_at = time.perf_counter()
                self._stop_reason = reason
        engine.request_abort()
        handler = self._handler
        if handler is not None:  # an engine waiting for queue room sees Stop now
            handler.stop_waiting()
        self.rig.core.mda.cancel()

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """The result once the run has ended (None on timeout)."""
        if not self._done.wait(timeout):
            return None
        return self._result

    def wait_frames(self, n: int, timeout: float) -> bool:
        """Block until the current run has received n frames (False: timed out
        or the run ended first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.stats()
            if snap is not None and snap.frames_in >= n:
                return True
            if self._done.wait(0.001):  # ended: one last look at the count
                snap = self.stats()
                return snap is not None and snap.frames_in >= n
        return False

    def wait_camera_armed(self, timeout: float | None = None) -> bool:
        """Block until the camera of the current run is armed."""
        engine = self._engine
        return engine is not None and engine.camera_armed.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return not self._done.is_set()

    # --- observation ----------------------------------------------------------------
    def stats(self) -> StatsSnapshot | None:
        """Current run statistics (None before the first run)."""
        handler = self._handler
        if handler is None:
            return None
        if self.running:
            handler.stats.buffer_fill = self._buffer_fill()
        snap = handler.stats.snapshot()
        pipeline = self._pipeline
        if pipeline is not None:
            snap = dataclasses.replace(snap, processing=pipeline.snapshot())
        return snap

    def latest_frame(self) -> Frame | None:
        """The newest frame (for a display polling on a timer)."""
        handler = self._handler
        return handler.latest() if handler is not None else None

    def latest_processed(self) -> Frame | None:
        """The newest processed image (the live view's Processed mode; None:
        no chain, or nothing processed yet). The image is the display's own."""
        pipeline = self._pipeline
        return pipeline.latest() if pipeline is not None else None

    def processing_stats(self) -> ProcessingSnapshot | None:
        """The processing counters of the current or last run (None: no chain)."""
        pipeline = self._pipeline
        return pipeline.snapshot() if pipeline is not None else None

    @property
    def pipeline(self) -> ProcessingPipeline | None:
        """The processing pipeline of the current or last run (None: no chain)."""
        return self._pipeline

    @property
    def handler(self) -> DataHandler | None:
        """The data handler of the current or last run."""
        return self._handler

    def _buffer_fill(self) -> float:
        core = self.rig.core
        try:
            total = core.getBufferTotalCapacity()
            free = core.getBufferFreeCapacity()
        except Exception:
            return -1.0
        return 1.0 - free / total if total else -1.0

    def _camera_fault(self) -> str | None:
        return self.rig.camera_fault()

    # --- the run thread ---------------------------------------------------------
    def _run(self, request: RunRequest, engine: StreamingEngine) -> None:
        frame_bytes = 0
        with contextlib.suppress(Exception):  # no camera: the default
            core = self.rig.core
            frame_bytes = (
                core.getImageWidth() * core.getImageHeight() * core.getBytesPerPixel()
            )
        tune_gil_for_streaming(frame_bytes)
        t0 = time.perf_counter()
        sink: NDTiffSink | _DiscardSink | None = None
        handler: DataHandler | None = None
        pipeline: ProcessingPipeline | None = None
        events: EventQueue | None = None
        error: BaseException | None = None
        watch: DiskWatch | None = None
        settings = dict(request.settings)
        with contextlib.suppress(Exception):  # the RAM between camera and disk
            settings["circular_buffer_mb"] = (
                self.rig.core.getCircularBufferMemoryFootprint()
            )
        if request.program is not None:
            settings["daq_program"] = request.program.model_dump(mode="json")
        chain = request.processing
        processing = chain is not None and chain.active and request.save
        try:
            save_raw = request.save and not (processing and not chain.save_raw)  # type: ignore[union-attr]
            sink = (
                NDTiffSink(
                    request.out_dir,
                    request.name,
                    {"mmapp": settings},
                    start_files=_preset_copy(settings),
                )
                if save_raw
                else _DiscardSink()
            )
            handler = DataHandler(sink, max_queue_bytes=request.queue_bytes)
            self._handler = handler
            if processing:  # after the raw handler: it is finished on every path
                assert chain is not None
                events = EventQueue(self._processor_ended)
                pipeline = self._pipeline_for(
                    request, chain, settings, sink, events, engine
                )
                settings["processed_dataset"] = pipeline.output.storage.path.name
            self._pipeline = pipeline
            writers = [handler] if isinstance(sink, NDTiffSink) else []
            if pipeline is not None:  # the processed dataset, beside the raw one
                writers.append(pipeline.output)
            if writers:
                watch = self._disk_watch(request.out_dir, writers)
            relay = _FrameRelay(handler, sink, engine, settings)
            relay.pipeline = pipeline
            engine.zero_copy = True  # the relay releases every frame it gets
            engine.frame_runs = True  # and takes runs of frames (RUN_KEY)
            core = self.rig.core
            core.mda.set_engine(engine)
            # Direct psygnal connections: frames stay on the engine thread (no
            # relay thread, no unbounded queue, no Qt queued signals).
            signals = core.mda.events
            if not isinstance(signals, MDASignaler):
                raise RuntimeError(
                    "the acquisition needs psygnal MDA signals; set "
                    "PYMM_SIGNALS_BACKEND=psygnal before creating the core"
                )
            on_frame = (
                relay.frameReady if pipeline is None else relay.frameReadyProcessing
            )
            signals.sequenceStarted.connect(relay.sequenceStarted)
            signals.frameReady.connect(on_frame)
            try:
                planned = request.events
                if pipeline is not None and pipeline.takes_events:
                    assert events is not None
                    planned = self._with_added_events(  # type: ignore[assignment]
                        planned, request, engine, pipeline, events
                    )
                core.mda.run(planned)
            except Exception as exc:
                error = exc
            finally:
                signals.frameReady.disconnect(on_frame)
                signals.sequenceStarted.disconnect(relay.sequenceStarted)
            error = relay.error or error
        except Exception as exc:
            error = exc
        finally:
            # The safe state again, whatever teardown managed: a step that
            # failed there is tried once more; what still fails is reported.
            unsafe: list[str] = []
            try:
                if engine.daq is not None:
                    engine.daq.close()  # idempotent; retries a failed park
            except Exception as exc:
                unsafe.append(engine.daq.unsafe or f"DAQ: {exc}")  # type: ignore[union-attr]
            try:
                self.rig.make_safe()
            except Exception as exc:  # the dataset must still be finished
                unsafe.append(str(exc) or type(exc).__name__)
            if unsafe and engine.unsafe:
                unsafe = list(dict.fromkeys([*engine.unsafe, *unsafe]))
            if pipeline is not None:  # drained, then the processed dataset
                try:
                    pipeline.finish()
                except Exception as exc:
                    error = error or exc
                error = pipeline.error or error
            if handler is not None:
                try:
                    handler.finish()
                except Exception as exc:
                    error = error or exc
            if handler is not None and handler.error is not None:
                error = error or handler.error
            if watch is not None:
                watch.close()
                if watch.message is not None:
                    error = error or DiskNearlyFullError(watch.message)
            result = self._result_for(
                engine, handler, sink, _detached(error), t0, unsafe, pipeline
            )
            try:
                write_run_record(result)
            except OSError as exc:  # the frames are safe; say what is missing
                logger.error("could not record how the run ended: %s", exc)
            if result.dataset is not None and result.program_changes:
                try:
                    write_program_changes(result.dataset, list(result.program_changes))
                except OSError as exc:  # the frames are safe; say what is missing
                    logger.error("could not record the program changes: %s", exc)
            engine.release()
            self._result = result
            self._done.set()
        if result.outcome is RunOutcome.UNSAFE:
            logger.critical("THE RIG IS NOT SAFE: %s", result.summary())
        elif error is not None:
            logger.error("acquisition ended with an error: %s", result.summary())
        self.finished.emit(result)

    def _disk_watch(self, directory: Path, writers: list[DataHandler]) -> DiskWatch:
        """Watch the datasets' disk; stop the run before it fills."""
        stats = [w.stats for w in writers]

        def low(message: str) -> None:
            self.stop(message)

        watch = DiskWatch(
            directory,
            low,
            bytes_in=lambda: sum(s.bytes_written + s.queue_bytes for s in stats),
            pending_bytes=lambda: sum(s.queue_bytes for s in stats),
        )
        watch.start()
        return watch

    def _pipeline_for(
        self,
        request: RunRequest,
        chain: ProcessingChain,
        settings: dict[str, Any],
        raw: NDTiffSink | _DiscardSink,
        events: EventQueue,
        engine: StreamingEngine,
    ) -> ProcessingPipeline:
        """The run's processors, writing to `<raw dataset>_processed`."""
        context = chain_context(self.rig.spec, request.program, settings)
        stages = build_stages(chain, context, events)
        raw_path = raw.path or next_dataset_path(request.out_dir, request.name)
        summary = {
            "mmapp": {
                **settings,
                "raw_dataset": raw.path.name if raw.path is not None else None,
                "processing": chain.model_dump(mode="json"),
            }
        }
        out = NDTiffSink(
            raw_path.parent, raw_path.name + PROCESSED_SUFFIX, summary, exact=True
        )
        output = DataHandler(out, max_queue_bytes=chain.queue_mb * 1024 * 1024)

        def fatal(exc: ProcessorError) -> None:
            engine.request_abort()  # the relay sees the error as the run's
            self.rig.core.mda.cancel()

        return ProcessingPipeline(
            stages,
            output,
            max_bytes=chain.queue_mb * 1024 * 1024,
            workers=chain.workers,
            on_fatal=fatal,
        )

    def _processor_ended(self, processor: str) -> None:
        """An adaptive processor put None: end the acquisition as Stop does."""
        self.stop(f"the processor {processor!r} ended the acquisition")

    def _with_added_events(
        self,
        planned: MDASequence | Sequence[MDAEvent],
        request: RunRequest,
        engine: StreamingEngine,
        pipeline: ProcessingPipeline,
        events: EventQueue,
    ) -> Iterator[MDAEvent]:
        """The planned events, then what adaptive processors added once every
        frame so far is processed; again until nothing more is added.

        A barrier event (acquires nothing) comes before each wait: the runner
        merges events into hardware sequences looking one event ahead, so
        everything before the barrier has run when the event after it is asked.
        """
        yield from planned
        while True:
            yield barrier_event()
            while not pipeline.wait_idle(0.05):  # Stop is seen while waiting
                if engine.abort_event.is_set():
                    return
            added = events.take()
            if not added or events.ended or engine.abort_event.is_set():
                return
            if pipeline.error is not None:
                return
            if request.program is not None:
                pipeline.warnings.append(
                    f"{len(added)} events added by processors were not run: the "
                    f"run plays a DAQ waveform program"
                )
                return
            yield from added

    def _result_for(
        self,
        engine: StreamingEngine,
        handler: DataHandler | None,
        sink: NDTiffSink | _DiscardSink | None,
        error: BaseException | None,
        t0: float,
        unsafe: Sequence[str] = (),
        pipeline: ProcessingPipeline | None = None,
    ) -> RunResult:
        stats = handler.stats.snapshot() if handler is not None else None
        saved = stats.frames_written if stats and isinstance(sink, NDTiffSink) else 0
        lost = engine.frames_lost + (stats.frames_lost if stats else 0)
        rejected = stats.frames_rejected if stats else 0
        latency = None
        if self._stop_requested_at is not None and engine.camera_stopped_at:
            latency = max(0.0, engine.camera_stopped_at - self._stop_requested_at)
        if unsafe:  # first: the operator must act on the hardware now
            outcome = RunOutcome.UNSAFE
            message = "THE RIG WAS NOT MADE SAFE: " + "; ".join(unsafe)
            message += f"; the run also failed: {error}" if error is not None else ""
            error = error or UnsafeRigError(message)
        elif error is not None:
            outcome, message = RunOutcome.ERROR, str(error)
        elif self._stop_requested_at is not None:
            outcome, message = RunOutcome.STOPPED, self._stop_reason
        else:
            outcome, message = RunOutcome.COMPLETED, ""
        processing = pipeline.snapshot() if pipeline is not None else None
        processed = None
        if pipeline is not None and processing and processing.outputs_written:
            processed = pipeline.output.storage.path
        return RunResult(
            outcome=outcome,
            message=message,
            dataset=sink.path if isinstance(sink, NDTiffSink) and saved else None,
            frames_acquired=engine.frames_acquired,
            frames_saved=saved,
            frames_lost=lost,
            frames_rejected=rejected,
            duration_s=time.perf_counter() - t0,
            stop_latency_s=latency,
            error=error,
            program_changes=tuple(engine.daq.changes) if engine.daq else (),
            processed_dataset=processed,
            processing=processing,
            warnings=tuple(pipeline.warnings) if pipeline is not None else (),
        )
