"""The processing pipeline on its own: reorder stash, results (one, several,
none, batches), errors (stop vs disable), serial user processors, and
back-pressure with bounded memory. Completion order is driven explicitly."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmapp.data.handler import DataHandler
from mmapp.processing import (
    ProcessingChain,
    ProcessingPipeline,
    ProcessorDefinition,
    ProcessorError,
    ReorderStash,
    build_stages,
    register,
    unregister,
)
from mmapp.processing.registry import ProcessorContext, call_style

SHAPE = (6, 8)
FRAME_BYTES = SHAPE[0] * SHAPE[1] * 2


class MemoryStorage:
    """A storage that keeps what the writer thread writes, in order."""

    path = Path("memory")

    def __init__(self) -> None:
        self.written: list[tuple[dict, np.ndarray, Any]] = []
        self.finished = False

    def put(self, coords, image, metadata) -> None:
        self.written.append((dict(coords), image.copy(), metadata))

    def get(self, coords):
        raise KeyError(coords)

    def has(self, coords) -> bool:
        return False

    def finish(self) -> None:
        self.finished = True


class ManualExecutor:
    """Runs submitted tasks only when told, in the order the test chooses."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Callable, tuple]] = []

    def submit(self, fn: Callable, *args: Any) -> None:
        self.tasks.append((fn, args))

    def run(self, index: int) -> None:
        fn, args = self.tasks[index]
        fn(*args)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


@pytest.fixture
def processors():
    """Register test processors by name; unregistered afterwards."""
    names: list[str] = []

    def add(name: str, fn: Callable, *, thread_safe: bool = True, **kw: Any) -> None:
        register(
            ProcessorDefinition(
                name=name,
                factory=lambda _p, _c: fn,
                thread_safe=thread_safe,
                **kw,
            )
        )
        names.append(name)

    yield add
    for name in names:
        unregister(name)


def frame(t: int) -> np.ndarray:
    return np.full(SHAPE, t, np.uint16)


def make_pipeline(
    steps: list[dict],
    *,
    executor: Any = None,
    max_bytes: int = 1 << 20,
    workers: int = 2,
    on_fatal: Callable | None = None,
    **chain: Any,
) -> tuple[ProcessingPipeline, MemoryStorage]:
    spec = ProcessingChain(steps=steps, **chain)
    storage = MemoryStorage()
    stages = build_stages(spec, ProcessorContext())
    pipeline = ProcessingPipeline(
        stages,
        DataHandler(storage, max_queue_bytes=1 << 20),
        max_bytes=max_bytes,
        workers=workers,
        executor=executor,
        on_fatal=on_fatal,
    )
    return pipeline, storage


def test_reorder_stash_gives_results_out_in_sequence_order() -> None:
    stash = ReorderStash()
    order = list(range(50))
    random.Random(3).shuffle(order)
    out: list[int] = []
    for seq in order:
        stash.put(seq, f"r{seq}")
        ready = stash.pop_ready()
        assert [s for s, _ in ready] == list(range(len(out), len(out) + len(ready)))
        out += [s for s, _ in ready]
    assert out == list(range(50)) and len(stash) == 0
    with pytest.raises(ValueError, match="already filed"):
        stash.put(3, "again")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_processed_frames_are_written_in_acquisition_order(processors, seed) -> None:
    processors("double", lambda img, md: (img * 2, {**md, "doubled": True}))
    executor = ManualExecutor()
    pipeline, storage = make_pipeline([{"name": "double"}], executor=executor)
    n = 40
    for t in range(n):
        assert pipeline.submit({"time": t}, frame(t), {"t": t})
    order = list(range(n))
    random.Random(seed).shuffle(order)
    done: set[int] = set()
    for index in order:
        executor.run(index)
        done.add(index)
        # only the in-order prefix has been handed on
        prefix = next(k for k in range(n + 1) if k not in done)
        assert pipeline.snapshot().queue_frames == n - prefix
    pipeline.finish()
    assert [c["time"] for c, _, _ in storage.written] == list(range(n))
    for c, img, md in storage.written:
        np.testing.assert_array_equal(img, frame(c["time"]) * 2)
        assert md["doubled"] and md["t"] == c["time"]
    snap = pipeline.snapshot()
    assert (snap.frames_processed, snap.outputs_written, snap.queue_bytes) == (n, n, 0)


def test_lists_none_and_batches(processors) -> None:
    def split(coords, img, md):  # a second channel from each frame
        if coords["time"] % 3 == 2:
            return None  # dropped
        return [
            ({**coords, "channel": "raw"}, img, md),
            ({**coords, "channel": "inverted"}, 100 - img, md),
        ]

    class Pairs:
        """Holds frames until both channels of two time points are in."""

        thread_safe = True

        def __init__(self) -> None:
            self.held: list = []

        def __call__(self, coords, img, md):
            self.held.append((coords, img))
            if len(self.held) < 4:
                return None
            stack = np.stack([i for _, i in self.held]).sum(axis=0)
            first = min(c["time"] for c, _ in self.held)  # arrival order varies
            self.held = []
            return {"time": first}, stack.astype(np.uint16), {"n": 4}

    processors("split", split)
    pairs = Pairs()
    register(
        ProcessorDefinition(
            name="pairs", factory=lambda _p, _c: pairs, takes_coords=True
        )
    )
    try:
        executor = ManualExecutor()
        pipeline, storage = make_pipeline(
            [{"name": "split"}, {"name": "pairs"}], executor=executor
        )
        for t in range(6):
            pipeline.submit({"time": t}, frame(t), {})
        for index in (5, 1, 0, 4, 3, 2):
            executor.run(index)
        pipeline.finish()
    finally:
        unregister("pairs")
    # frames 0, 1, 3, 4 give two images each; 2 and 5 none; pairs of two
    # frames (four images) make one: t 0+1 and t 3+4
    assert [(c, md) for c, _, md in storage.written] == [
        ({"time": 0}, {"n": 4}),
        ({"time": 3}, {"n": 4}),
    ]
    (_, a, _), (_, b, _) = storage.written
    assert a[0, 0] == 0 + 100 + 1 + 99 and b[0, 0] == 3 + 97 + 4 + 96
    snap = pipeline.snapshot()
    assert snap.frames_processed == 6 and snap.outputs_produced == 2


def test_a_processor_that_raises_stops_the_run(processors) -> None:
    def fails_at_3(img, md):
        if int(img[0, 0]) == 3:
            raise ZeroDivisionError("bad frame")
        return img, md

    processors("fragile", fails_at_3)
    fatal: list[ProcessorError] = []
    executor = ManualExecutor()
    pipeline, storage = make_pipeline(
        [{"name": "fragile"}], executor=executor, on_fatal=fatal.append
    )
    for t in range(5):
        pipeline.submit({"time": t}, frame(t), {})
    for index in range(5):
        executor.run(index)
    assert not pipeline.submit({"time": 5}, frame(5), {})  # the run is ending
    pipeline.finish()
    (error,) = fatal
    assert error is pipeline.error and isinstance(error.cause, ZeroDivisionError)
    assert str(error) == (
        "processor 'fragile' failed on frame {'time': 3}: ZeroDivisionError: bad frame"
    )
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2]
    assert storage.finished and pipeline.snapshot().error == str(error)


def test_a_processor_that_raises_is_disabled_if_the_chain_says_so(processors) -> None:
    def fails_at_1(img, md):
        if int(img[0, 0]) == 1:
            raise RuntimeError("no")
        return img, md

    processors("fragile", fails_at_1)
    fatal: list = []
    executor = ManualExecutor()
    pipeline, storage = make_pipeline(
        [{"name": "fragile", "on_error": "disable"}],
        executor=executor,
        on_fatal=fatal.append,
    )
    for t in range(3):
        pipeline.submit({"time": t}, frame(t), {})
    for index in range(3):
        executor.run(index)
    assert not pipeline.submit({"time": 3}, frame(3), {})
    pipeline.finish()
    assert fatal == [] and pipeline.error is None
    assert pipeline.disabled is not None and "'fragile'" in pipeline.disabled
    assert pipeline.warnings and "processing disabled" in pipeline.warnings[0]
    assert [c["time"] for c, _, _ in storage.written] == [0]
    snap = pipeline.snapshot()
    assert snap.disabled == pipeline.disabled and snap.frames_not_processed == 0


def test_a_bad_result_counts_as_a_failure(processors) -> None:
    processors("scalar", lambda img, md: 42)
    fatal: list[ProcessorError] = []
    pipeline, _ = make_pipeline(
        [{"name": "scalar"}], executor=ManualExecutor(), on_fatal=fatal.append
    )
    pipeline.submit({"time": 0}, frame(0), {})
    pipeline._executor.run(0)  # type: ignore[attr-defined]
    pipeline.finish()
    assert isinstance(fatal[0].cause, TypeError)
    assert "got int" in str(fatal[0])


def test_user_processors_see_frames_in_order_on_a_real_pool(processors) -> None:
    """A thread-safe step lets frame 0 finish last; the serial user step after
    it still gets 0, 1, 2, 3."""
    cond = threading.Condition()
    passed = {"n": 0}

    def first(coords, img, md):
        with cond:
            if coords["time"] == 0:
                assert cond.wait_for(lambda: passed["n"] == 3, 10)
            else:
                passed["n"] += 1
                cond.notify_all()
        return img, md

    seen: list[int] = []

    def serial(coords, img, md):
        seen.append(coords["time"])
        return img, md

    processors("first", first, takes_coords=True)
    processors("serial", serial, thread_safe=False)
    pipeline, storage = make_pipeline(
        [{"name": "first"}, {"name": "serial"}], workers=4
    )
    for t in range(4):
        pipeline.submit({"time": t}, frame(t), {})
    pipeline.finish(timeout=20)
    assert seen == [0, 1, 2, 3]
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2, 3]


def test_a_slow_processor_is_refused_frames_not_memory(processors) -> None:
    """The pipeline holds at most max_bytes; the rest is counted as not
    processed and submit never waits."""
    gate = threading.Event()

    def slow(img, md):
        assert gate.wait(20)
        return img, md

    processors("slow", slow)
    pipeline, storage = make_pipeline(
        [{"name": "slow"}], max_bytes=3 * FRAME_BYTES, workers=2
    )
    accepted = []
    for t in range(10):
        accepted.append(pipeline.submit({"time": t}, frame(t), {}))
        snap = pipeline.snapshot()
        assert snap.queue_bytes <= snap.queue_capacity_bytes == 3 * FRAME_BYTES
    assert accepted == [True] * 3 + [False] * 7
    snap = pipeline.snapshot()
    assert snap.behind and snap.frames_not_processed == 7
    assert "processing fell behind: 7 frames not processed" in snap.summary()
    gate.set()
    pipeline.finish(timeout=20)
    assert [c["time"] for c, _, _ in storage.written] == [0, 1, 2]
    assert pipeline.snapshot().queue_bytes == 0


def test_the_pipeline_keeps_its_own_copy_of_each_frame(processors) -> None:
    processors("same", lambda img, md: (img, md))
    executor = ManualExecutor()
    pipeline, storage = make_pipeline([{"name": "same"}], executor=executor)
    ring_slot = frame(7)
    pipeline.submit({"time": 0}, ring_slot, {})
    ring_slot[:] = 999  # the camera reuses its buffer slot
    executor.run(0)
    pipeline.finish()
    np.testing.assert_array_equal(storage.written[0][1], frame(7))


def _plain(image, metadata): ...
def _coords(coords, image, metadata): ...
def _events(image, metadata, event_queue): ...
def _both(coords, image, metadata, event_queue): ...


@pytest.mark.parametrize(
    ("fn", "coords", "events"),
    [
        (_plain, False, False),
        (_coords, True, False),
        (_events, False, True),
        (_both, True, True),
    ],
)
def test_call_styles(fn, coords, events) -> None:
    style = call_style(fn)
    assert (style.coords, style.events) == (coords, events)
