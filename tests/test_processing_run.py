"""Processing in real runs on the simulated rig: raw and processed datasets,
linked, read back with ndstorage and tifffile; processor errors (stop vs
disable); adaptive processors; a slow processor never slows the raw path."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from helpers import HEIGHT, WIDTH, open_dataset
from test_daq_acquisition import lasers_on, opm_program
from useq import MDAEvent, MDASequence

from mmapp.engine.controller import (
    RUN_RECORD_FILE,
    RunController,
    RunOutcome,
    RunRequest,
    RunResult,
)
from mmapp.engine.events import stream_event
from mmapp.engine.plans import build_events
from mmapp.processing import (
    ProcessingChain,
    ProcessorContext,
    ProcessorDefinition,
    build_stages,
    geometry_for,
    register,
    unregister,
)
from mmapp.rig import Rig
from mmapp.sim.frames import is_lit, read_stamp

FRAME_BYTES = WIDTH * HEIGHT * 2


@pytest.fixture
def processors() -> Iterator[Callable[..., None]]:
    names: list[str] = []

    def add(name: str, fn: Callable, *, thread_safe: bool = True, **kw: Any) -> None:
        register(
            ProcessorDefinition(
                name=name, factory=lambda _p, _c: fn, thread_safe=thread_safe, **kw
            )
        )
        names.append(name)

    yield add
    for name in names:
        unregister(name)


def light(rig: Rig) -> None:
    rig.core.setProperty("Lasers", "Laser 488 Power %", 40.0)
    rig.core.setConfig("Channel", "488nm")


def run(controller: RunController, request: RunRequest) -> RunResult:
    controller.start(request)
    result = controller.wait(60)
    assert result is not None, "the run did not end"
    return result


def images(path: Path) -> dict[tuple, np.ndarray]:
    ds = open_dataset(path)
    try:
        return {
            tuple(sorted(c.items())): np.array(ds.read_image(**c))
            for c in ds.get_image_coordinates_list()
        }
    finally:
        ds.close()


def processed_metadata(path: Path, **coords: int) -> dict:
    ds = open_dataset(path)
    try:
        return dict(ds.read_metadata(**coords))
    finally:
        ds.close()


def summary(path: Path) -> dict:
    ds = open_dataset(path)
    try:
        return dict(ds.summary_metadata["mmapp"])
    finally:
        ds.close()


def decimate(img: np.ndarray, md: dict) -> tuple:
    return np.ascontiguousarray(img[::2, ::2]), md


def test_raw_and_processed_datasets_are_written_and_linked(
    controller, rig, tmp, processors
) -> None:
    light(rig)
    processors("decimate", decimate)
    chain = ProcessingChain(
        steps=[{"name": "background", "params": {"value": 100}}, {"name": "decimate"}]
    )
    n = 30
    result = run(
        controller,
        RunRequest([stream_event(max_frames=n)], tmp, "run", processing=chain),
    )
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    assert result.dataset == tmp / "run_1"
    assert result.processed_dataset == tmp / "run_1_processed"
    raw, processed = images(result.dataset), images(result.processed_dataset)
    assert len(raw) == len(processed) == n == result.frames_saved
    for key, img in raw.items():
        assert is_lit(img), key
        expected = np.clip(img.astype(np.int32) - 100, 0, None)[::2, ::2]
        np.testing.assert_array_equal(processed[key], expected.astype(np.uint16))
    assert sorted(read_stamp(i) for i in raw.values()) == list(range(n))
    # linked both ways by relative names; tifffile reads both
    assert summary(result.dataset)["processed_dataset"] == "run_1_processed"
    assert summary(result.processed_dataset)["raw_dataset"] == "run_1"
    for path in (result.dataset, result.processed_dataset):
        (tif,) = path.glob("*.tif")
        with tifffile.TiffFile(tif) as f:
            assert len(f.pages) == n
        record = json.loads((path / RUN_RECORD_FILE).read_text())
        assert record["processed_dataset"] == "run_1_processed"
        assert record["processing"]["outputs_written"] == n
    assert result.processing is not None
    assert result.processing.frames_not_processed == 0
    assert f"{n} processed images saved" in result.summary()
    latest = controller.latest_processed()
    assert latest is not None and latest.image.shape == (HEIGHT // 2, WIDTH // 2)
    stats = controller.stats()
    assert stats is not None and stats.processing is not None


def test_without_raw_saving_only_the_processed_dataset_is_written(
    controller, rig, tmp, processors
) -> None:
    light(rig)
    processors("decimate", decimate)
    chain = ProcessingChain(steps=[{"name": "decimate"}], save_raw=False)
    result = run(
        controller,
        RunRequest([stream_event(max_frames=10)], tmp, "run", processing=chain),
    )
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    assert result.dataset is None and result.frames_saved == 0
    assert result.processed_dataset == tmp / "run_1_processed"
    assert sorted(p.name for p in tmp.iterdir()) == ["run_1_processed"]
    assert len(images(result.processed_dataset)) == 10
    assert all(is_lit(i) for i in images(result.processed_dataset).values())
    assert summary(result.processed_dataset)["raw_dataset"] is None


def test_an_empty_chain_builds_no_pipeline(controller, rig, tmp) -> None:
    result = run(
        controller,
        RunRequest(
            [stream_event(max_frames=5)], tmp, "run", processing=ProcessingChain()
        ),
    )
    assert result.outcome is RunOutcome.COMPLETED
    assert controller.pipeline is None and result.processing is None
    assert sorted(p.name for p in tmp.iterdir()) == ["run_1"]


def test_volumes_are_batched_by_the_program_coordinates(
    controller, rig, tmp, processors
) -> None:
    """A user batch processor gets each OPM volume's frames (time = volume,
    z = scan position, as the DAQ program numbers them) and sums them."""
    lasers_on(rig)
    positions = 6
    held: dict[int, dict[int, np.ndarray]] = {}
    lock = threading.Lock()

    def volume_sum(coords, img, md):
        with lock:
            volume = held.setdefault(coords["time"], {})
            volume[coords["z"]] = img
            if len(volume) < positions:
                return None
            del held[coords["time"]]
        total = sum(v.astype(np.uint32) for v in volume.values()) // positions
        return {"time": coords["time"]}, total.astype(np.uint16), md

    processors("volume_sum", volume_sum, takes_coords=True)
    chain = ProcessingChain(steps=[{"name": "volume_sum"}])
    result = run(
        controller,
        RunRequest(
            build_events(frames=4 * positions),
            tmp,
            "opm",
            program=opm_program(positions=positions),
            processing=chain,
            first_frame_timeout_s=5,
            frame_timeout_s=2,
        ),
    )
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    raw, processed = images(result.dataset), images(result.processed_dataset)
    assert len(raw) == 4 * positions and len(processed) == 4
    for t in range(4):
        stack = [raw[(("time", t), ("z", z))] for z in range(positions)]
        assert all(is_lit(f) for f in stack)
        want = (sum(f.astype(np.uint32) for f in stack) // positions).astype(np.uint16)
        np.testing.assert_array_equal(processed[(("time", t),)], want)


@pytest.mark.parametrize("on_error", ["stop", "disable"])
def test_a_raising_processor_keeps_every_raw_frame(
    controller, rig, tmp, processors, on_error
) -> None:
    light(rig)
    seen = {"n": 0}

    def fragile(img, md):
        seen["n"] += 1
        if seen["n"] == 5:
            raise ValueError("cannot process this one")
        return img, md

    processors("fragile", fragile, thread_safe=False)
    chain = ProcessingChain(steps=[{"name": "fragile"}], on_error=on_error)
    n = 60
    result = run(
        controller,
        RunRequest([stream_event(max_frames=n)], tmp, "run", processing=chain),
    )
    raw = images(result.dataset)
    stamps = sorted(read_stamp(i) for i in raw.values())
    assert stamps == list(range(len(raw))) and all(is_lit(i) for i in raw.values())
    assert len(raw) == result.frames_saved == result.frames_acquired
    processed = images(result.processed_dataset)
    assert len(processed) == 4  # the frames before the failure
    for key, img in processed.items():
        np.testing.assert_array_equal(img, raw[key])
    record = json.loads((result.dataset / RUN_RECORD_FILE).read_text())
    if on_error == "stop":
        assert result.outcome is RunOutcome.ERROR
        assert result.message.startswith("processor 'fragile' failed on frame")
        assert "ValueError: cannot process this one" in result.message
        assert record["outcome"] == "error"
    else:
        assert result.outcome is RunOutcome.COMPLETED, result.summary()
        assert len(raw) == n
        assert "processing disabled" in result.warnings[0]
        assert record["warnings"] == list(result.warnings)
        assert record["processing"]["disabled"].startswith("processor 'fragile'")


def test_an_adaptive_processor_ends_a_loop(controller, rig, tmp, processors) -> None:
    light(rig)

    def enough(coords, img, md, event_queue):
        if coords["time"] == 20:
            event_queue.put(None)
        return img, md

    processors("enough", enough, thread_safe=False)
    chain = ProcessingChain(steps=[{"name": "enough"}])
    result = run(
        controller, RunRequest([stream_event()], tmp, "loop", processing=chain)
    )
    assert result.outcome is RunOutcome.STOPPED, result.summary()
    assert result.message == "the processor 'enough' ended the acquisition"
    raw = images(result.dataset)
    assert len(raw) == result.frames_saved >= 21
    assert all(is_lit(i) for i in raw.values())


def test_an_adaptive_processor_adds_events_to_an_mda(
    controller, rig, tmp, processors
) -> None:
    light(rig)

    def more(coords, img, md, event_queue):
        if coords["time"] == 1:
            event_queue.put(MDAEvent(index={"t": 10}))
        if coords["time"] == 10:
            event_queue.put({"index": {"t": 11}})
        return img, md

    processors("more", more, thread_safe=False)
    chain = ProcessingChain(steps=[{"name": "more"}])
    seq = MDASequence(time_plan={"interval": 0, "loops": 3})
    result = run(controller, RunRequest(seq, tmp, "mda", processing=chain))
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    raw, processed = images(result.dataset), images(result.processed_dataset)
    times = [0, 1, 2, 10, 11]
    assert sorted(k[0][1] for k in raw) == times
    assert sorted(k[0][1] for k in processed) == times
    assert result.frames_acquired == result.frames_saved == 5
    assert all(is_lit(i) for i in raw.values())


def test_a_slow_processor_falls_behind_without_slowing_the_raw_path(
    controller, rig, tmp, processors
) -> None:
    light(rig)
    gate = threading.Event()

    def slow(img, md):
        assert gate.wait(30)
        return img, md

    processors("slow", slow)
    chain = ProcessingChain(steps=[{"name": "slow"}], queue_mb=1)
    n = 400
    controller.start(
        RunRequest([stream_event(max_frames=n)], tmp, "run", processing=chain)
    )
    try:
        assert controller.wait_frames(n, 30)
        snap = controller.stats()
        assert snap is not None and snap.processing is not None
        p = snap.processing
        accepted = (1 << 20) // FRAME_BYTES
        assert p.queue_bytes <= p.queue_capacity_bytes == 1 << 20
        assert p.frames_submitted == accepted
        assert p.frames_not_processed == n - accepted and p.behind
    finally:
        gate.set()
    result = controller.wait(60)
    assert result is not None and result.outcome is RunOutcome.COMPLETED
    raw = images(result.dataset)
    assert len(raw) == n == result.frames_saved
    assert sorted(read_stamp(i) for i in raw.values()) == list(range(n))
    assert all(is_lit(i) for i in raw.values())
    assert len(images(result.processed_dataset)) == accepted
    assert (
        f"processing fell behind: {n - accepted} frames not processed"
        in result.summary()
    )
    record = json.loads((result.dataset / RUN_RECORD_FILE).read_text())
    assert record["processing"]["frames_not_processed"] == n - accepted


def test_deskew_and_mip_on_an_opm_run(controller, rig, tmp) -> None:
    kernels = pytest.importorskip("mmapp.processing.kernels")
    deskew, max_projection = kernels.deskew, kernels.max_projection
    subtract_background = kernels.subtract_background
    lasers_on(rig)
    positions = 8
    chain = ProcessingChain(
        steps=[
            {"name": "background", "params": {"value": 100}},
            {"name": "deskew"},
            {"name": "mip"},
        ]
    )
    result = run(
        controller,
        RunRequest(
            build_events(frames=3 * positions),
            tmp,
            "opm",
            program=opm_program(positions=positions),
            processing=chain,
            first_frame_timeout_s=5,
            frame_timeout_s=2,
        ),
    )
    assert result.outcome is RunOutcome.COMPLETED, result.summary()
    processed = images(result.processed_dataset)
    assert sorted(processed) == [(("time", t),) for t in range(3)]
    assert all(is_lit(i) for i in processed.values())
    # deskew + mip run as one step; each saved MIP is, pixel for pixel, the
    # projection of the deskewed volume of the raw frames saved beside it
    raw = images(result.dataset)
    geometry = geometry_for(rig.spec, opm_program(positions=positions))
    for t in range(3):
        planes = [raw[(("time", t), ("z", z))] for z in range(positions)]
        volume = np.ascontiguousarray(
            [subtract_background(p, 100) for p in planes], dtype=np.uint16
        )
        expected = max_projection(deskew(volume, geometry))
        np.testing.assert_array_equal(processed[(("time", t),)], expected)
    meta = processed_metadata(result.processed_dataset, time=0)
    assert meta["mip"]["planes"] == geometry.output_shape(HEIGHT, WIDTH)[0]
    assert meta["mip"]["pixel_um"] == [float(v) for v in geometry.voxel_um][1:]


def test_a_chain_that_cannot_be_made_ends_the_run_leaving_nothing(
    controller, tmp
) -> None:
    chain = ProcessingChain(steps=[{"name": "deskew"}])
    result = run(
        controller,
        RunRequest([stream_event(max_frames=3)], tmp, "run", processing=chain),
    )
    assert result.outcome is RunOutcome.ERROR
    assert "deskew needs the DAQ waveform program" in result.message
    assert result.frames_acquired == 0 and list(tmp.iterdir()) == []


def test_deskew_absorbs_the_mip_that_follows_it(rig) -> None:
    """deskew -> mip runs as one step (no upright volume is made); a step in
    between, a different on_error or fuse=False keeps them apart."""
    context = ProcessorContext(rig_spec=rig.spec, program=opm_program(positions=8))

    def names(steps: list[dict], **kw: Any) -> list[str]:
        chain = ProcessingChain(steps=steps)
        return [s.name for s in build_stages(chain, context, **kw)]

    deskew_mip = [{"name": "deskew"}, {"name": "mip"}]
    assert names(deskew_mip) == ["deskew+mip"]
    assert names(deskew_mip, fuse=False) == ["deskew", "mip"]
    binned = [
        {"name": "deskew"},
        {"name": "bin", "params": {"factor": 2}},
        {"name": "mip"},
    ]
    assert names(binned) == [
        "deskew",
        "bin",
        "mip",
    ]
    assert names([{"name": "deskew"}, {"name": "mip", "on_error": "disable"}]) == [
        "deskew",
        "mip",
    ]
