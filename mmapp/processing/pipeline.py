"""The processing pipeline of one run: bounded pool, reorder stash, writer.

::

    engine thread: submit(coords, image, metadata)   one copy, O(1), never waits
        -> pool (N threads; numba kernels release the GIL): the chain, step by step
        -> reorder stash (by submit sequence number) -> processed DataHandler
           (its own writer thread -> the processed NDTiff; latest() for the view)

- Bounded: accepted frames are charged (bytes) until their outputs are handed
  to the processed handler; a frame that does not fit is refused at once and
  counted (``frames_not_processed``: "processing fell behind"). The raw frame
  is saved all the same; the engine never waits for the processors.
- Order: every accepted frame gets a sequence number; results (one, several or
  no images) wait in a :class:`ReorderStash` until every earlier frame's are
  out, so the processed dataset is written in acquisition order. An output a
  batch completes (e.g. a volume) takes the place of the frame completing it.
- Thread safety: a thread-safe step (the built-ins) runs concurrently; any
  other step runs one frame at a time in sequence order (a turnstile per
  step), so a user processor sees frames as acquired.
- Errors: a step that raises (or returns something that is not an image
  result) applies its on_error: "stop" records a :class:`ProcessorError` and
  calls ``on_fatal`` (the controller ends the run); "disable" logs a warning
  and stops processing for the rest of the run (raw saving goes on). What was
  already handed to the processed handler is written either way.
- End: :meth:`finish` waits for the frames in flight, drops (and counts) the
  batches still incomplete, then finishes the processed handler.

Processor results: ``(image, metadata)``, ``(coords, image, metadata)``, a list
of those, or ``None`` (nothing now: dropped, or held for a batch).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmapp.data.handler import DataHandler, Frame
from mmapp.data.stats import ProcessingSnapshot
from mmapp.processing.adaptive import EventQueue
from mmapp.processing.registry import (
    ProcessorContext,
    call_style,
    check_params,
    definition,
)
from mmapp.processing.spec import OnError, ProcessingChain

logger = logging.getLogger(__name__)

Coords = dict[str, int | str]
Item = tuple[Coords, np.ndarray, dict[str, Any]]
MAX_WORKERS = 4
FINISH_TIMEOUT_S = 120.0


class ProcessorError(RuntimeError):
    """A processor raised (or returned something unusable) on a frame."""

    def __init__(self, step: str, coords: Mapping[str, Any], cause: BaseException):
        self.step = step
        self.coords = dict(coords)
        self.cause = cause
        super().__init__(
            f"processor {step!r} failed on frame {self.coords}: "
            f"{type(cause).__name__}: {cause}"
        )


class ReorderStash:
    """Results that finished out of order, given out in sequence order.

    `put(seq, value)` files the result of frame `seq`; `pop_ready()` returns
    the consecutive results from the next expected sequence number on.
    """

    def __init__(self, first: int = 0) -> None:
        self._next = first
        self._waiting: dict[int, Any] = {}

    def put(self, seq: int, value: Any) -> None:
        """File the result of `seq` (each once, not below the next expected)."""
        if seq < self._next or seq in self._waiting:
            raise ValueError(f"sequence number {seq} is already filed")
        self._waiting[seq] = value

    def pop_ready(self) -> list[tuple[int, Any]]:
        """(seq, value) of every result now in order, oldest first."""
        ready = []
        while self._next in self._waiting:
            ready.append((self._next, self._waiting.pop(self._next)))
            self._next += 1
        return ready

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def next_seq(self) -> int:
        """The sequence number given out next."""
        return self._next


class _Turnstile:
    """Lets tasks through one at a time, in sequence order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0

    def enter(self, seq: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._next == seq)

    def leave(self, seq: int) -> None:
        with self._cond:
            self._next = seq + 1
            self._cond.notify_all()


@dataclass
class _Stage:
    name: str
    processor: Any
    call: Callable[[Coords, np.ndarray, dict], Any]
    on_error: OnError
    turnstile: _Turnstile | None
    events: bool


def _caller(fn: Any, coords: bool, events: Any) -> Callable:
    """fn in the uniform (coords, image, metadata) form."""
    if coords and events is not None:
        return lambda c, i, m: fn(c, i, m, events)
    if coords:
        return fn
    if events is not None:
        return lambda c, i, m: fn(i, m, events)
    return lambda c, i, m: fn(i, m)


def build_stages(
    chain: ProcessingChain,
    context: ProcessorContext,
    events: EventQueue | None = None,
    *,
    fuse: bool = True,
) -> list[_Stage]:
    """A fresh processor per enabled step, for one run (raises ValueError if a
    step cannot be made, e.g. deskew without a waveform program); with `fuse`,
    a step the one before absorbs runs inside it (see `_fused`)."""
    stages = []
    for step in chain.active_steps:
        found = definition(step.name)
        params = check_params(step.name, step.params)
        processor = found.make(params, context)
        style = call_style(
            processor, coords=found.takes_coords, events=found.takes_events
        )
        queue = None
        if style.events:
            queue = (events or EventQueue()).bound_to(step.name)
        thread_safe = found.thread_safe or bool(getattr(processor, "thread_safe", 0))
        stages.append(
            _Stage(
                name=step.name,
                processor=processor,
                call=_caller(processor, style.coords, queue),
                on_error=chain.on_error_of(step),
                turnstile=None if thread_safe else _Turnstile(),
                events=style.events,
            )
        )
    return _fused(stages) if fuse else stages


def _fused(stages: list[_Stage]) -> list[_Stage]:
    """Stages with each step a processor `absorb`s taken over by it (e.g.
    deskew computing mip's projection directly); same results, less work."""
    out: list[_Stage] = []
    for stage in stages:
        prev = out[-1] if out else None
        absorb = getattr(prev.processor, "absorb", None) if prev else None
        if (
            prev is not None
            and callable(absorb)
            and not prev.events
            and not stage.events
            and prev.on_error == stage.on_error
            and absorb(stage.processor)
        ):
            prev.name = f"{prev.name}+{stage.name}"
            continue
        out.append(stage)
    return out


def normalise(result: Any, coords: Coords) -> list[Item]:
    """A processor's result as a list of (coords, image, metadata)."""
    if result is None:
        return []
    if isinstance(result, list):
        return [item for r in result for item in normalise_one(r, coords)]
    return normalise_one(result, coords)


def normalise_one(result: Any, coords: Coords) -> list[Item]:
    if isinstance(result, tuple) and len(result) == 2:
        image, metadata = result
        out_coords: Any = coords
    elif isinstance(result, tuple) and len(result) == 3:
        out_coords, image, metadata = result
    else:
        raise TypeError(
            "a processor returns (image, metadata), (coords, image, metadata), a "
            f"list of them or None; got {type(result).__name__}"
        )
    if not isinstance(image, np.ndarray):
        raise TypeError(f"the returned image is a {type(image).__name__}")
    if not isinstance(out_coords, Mapping):
        raise TypeError(f"the returned coords are a {type(out_coords).__name__}")
    md = dict(metadata) if isinstance(metadata, Mapping) else {}
    return [(dict(out_coords), image, md)]


def default_workers() -> int:
    """One pool thread per core, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


class ProcessingPipeline:
    """The processors of one run between the engine and the processed dataset."""

    def __init__(
        self,
        stages: list[_Stage],
        output: DataHandler,
        *,
        max_bytes: int,
        workers: int = 0,
        executor: Executor | None = None,
        on_fatal: Callable[[ProcessorError], None] | None = None,
    ) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one processor")
        self.stages = stages
        self.output = output
        self.max_bytes = max_bytes
        self.workers = workers or default_workers()
        self._executor = executor or ThreadPoolExecutor(
            self.workers, thread_name_prefix="mmapp-processor"
        )
        self._on_fatal = on_fatal
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._emit_lock = threading.Lock()
        self._stash = ReorderStash()
        self._seq = 0
        self._in_flight_frames = 0
        self._in_flight_bytes = 0
        self._closing = False
        self._halted = False
        self.error: ProcessorError | None = None
        self.disabled: str | None = None
        self.warnings: list[str] = []
        self.frames_submitted = 0
        self.frames_processed = 0
        self.frames_not_processed = 0
        self.outputs_produced = 0
        self.batches_dropped_at_end = 0

    @property
    def takes_events(self) -> bool:
        """Whether a processor of the chain gets the event queue."""
        return any(s.events for s in self.stages)

    # --- engine thread ------------------------------------------------------------
    def submit(
        self, coords: Mapping[str, int | str], image: np.ndarray, metadata: Mapping
    ) -> bool:
        """Take a copy of a frame for processing (False: refused, counted as not
        processed when the pipeline is full; never waits)."""
        nbytes = image.nbytes
        with self._lock:
            if self._closing or self._halted:
                return False
            if self._in_flight_frames and (
                self._in_flight_bytes + nbytes > self.max_bytes
            ):
                self.frames_not_processed += 1
                return False
            seq = self._seq
            self._seq += 1
            self._in_flight_frames += 1
            self._in_flight_bytes += nbytes
            self.frames_submitted += 1
        item = (dict(coords), np.array(image, copy=True), dict(metadata))
        self._executor.submit(self._task, seq, item, nbytes)
        return True

    # --- pool ---------------------------------------------------------------------
    def _task(self, seq: int, item: Item, nbytes: int) -> None:
        items = [item]
        completed = True
        try:
            for stage in self.stages:
                if stage.turnstile is not None:
                    stage.turnstile.enter(seq)
                try:
                    if items and not self._halted:
                        items = self._run_stage(stage, items)
                    elif self._halted:
                        items, completed = [], False
                except Exception as exc:
                    items, completed = [], False
                    self._fail(stage.name, stage.on_error, item[0], exc)
                finally:
                    if stage.turnstile is not None:
                        stage.turnstile.leave(seq)
        finally:
            with self._lock:
                self._stash.put(seq, (items, nbytes))
                if completed:
                    self.frames_processed += 1
                    self.outputs_produced += len(items)
            self._emit()

    def _run_stage(self, stage: _Stage, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for coords, image, metadata in items:
            out += normalise(stage.call(coords, image, metadata), coords)
        return out

    def _emit(self) -> None:
        """Hand every result now in order to the processed handler."""
        with self._emit_lock:
            with self._lock:
                ready = self._stash.pop_ready()
            for _, (items, nbytes) in ready:
                try:
                    for coords, image, metadata in items:
                        self.output.put(coords, image, metadata)
                except Exception as exc:
                    last = self.stages[-1]
                    self._fail(f"{last.name} (output)", "stop", coords, exc)
                finally:
                    with self._lock:
                        self._in_flight_frames -= 1
                        self._in_flight_bytes -= nbytes
                        if not self._in_flight_frames:
                            self._idle.notify_all()

    def _fail(
        self, step: str, on_error: OnError, coords: Mapping, exc: BaseException
    ) -> None:
        error = ProcessorError(step, coords, exc)
        with self._lock:
            if self._halted:
                return
            self._halted = True
            if on_error == "disable":
                self.disabled = str(error)
                self.warnings.append(
                    f"processing disabled: {error}; the run goes on saving raw frames"
                )
            else:
                self.error = error
        if on_error == "disable":
            logger.warning(
                "processing disabled: %s; the run goes on saving raw frames", error
            )
        elif self._on_fatal is not None:
            logger.error("%s: the run stops", error)
            self._on_fatal(error)

    # --- observation ----------------------------------------------------------------
    def latest(self) -> Frame | None:
        """The newest processed image (for the live view's Processed mode)."""
        return self.output.latest()

    def snapshot(self) -> ProcessingSnapshot:
        """The counters now."""
        written = self.output.stats.snapshot().frames_written
        dropped = self.batches_dropped_at_end + sum(
            int(getattr(s.processor, "batches_dropped", 0) or 0) for s in self.stages
        )
        with self._lock:
            return ProcessingSnapshot(
                frames_submitted=self.frames_submitted,
                frames_processed=self.frames_processed,
                frames_not_processed=self.frames_not_processed,
                outputs_produced=self.outputs_produced,
                outputs_written=written,
                batches_dropped=dropped,
                queue_frames=self._in_flight_frames,
                queue_bytes=self._in_flight_bytes,
                queue_capacity_bytes=self.max_bytes,
                workers=self.workers,
                error=str(self.error) if self.error is not None else None,
                disabled=self.disabled,
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted frame is through (False: timed out)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._in_flight_frames, timeout)

    # --- end ----------------------------------------------------------------------
    def finish(self, timeout: float | None = FINISH_TIMEOUT_S) -> None:
        """No more frames: process those in flight, drop incomplete batches,
        finish the processed dataset (always, also when processing failed)."""
        with self._lock:
            self._closing = True
        try:
            if not self.wait_idle(timeout):
                msg = (
                    f"the processors did not finish within {timeout:g} s; "
                    f"{self._in_flight_frames} frames were not processed"
                )
                self.warnings.append(msg)
                logger.error(msg)
            for stage in self.stages:
                drop = getattr(stage.processor, "drop_held", None)
                if callable(drop):
                    with contextlib.suppress(Exception):
                        n = int(drop())
                        # counted by the processor itself if it keeps a count
                        if not hasattr(stage.processor, "batches_dropped"):
                            self.batches_dropped_at_end += n
            self._executor.shutdown(wait=False, cancel_futures=True)
        finally:
            self.output.finish()


def chain_context(
    rig_spec: Any, program: Any, settings: Mapping[str, Any] | None = None
) -> ProcessorContext:
    """The context processors of one run are made in."""
    return ProcessorContext(
        rig_spec=rig_spec, program=program, settings=dict(settings or {})
    )
