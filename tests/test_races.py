"""Races and leaks found in review, each reproduced and shown fixed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import open_dataset

from mmapp.daq.connection import DaqConnection
from mmapp.data.handler import DataHandler
from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.daq_link import DaqLink
from mmapp.engine.events import stream_event
from mmapp.rig import Rig, RigError, load_rig


class _GatedStorage:
    """Storage whose put waits for a gate (a slow disk the test controls)."""

    path = Path("/nonexistent")

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.images: list[np.ndarray] = []

    def put(self, coords, image, metadata) -> None:
        self.entered.set()
        assert self.gate.wait(20)
        self.images.append(np.array(image))

    def get(self, coords):
        raise KeyError(coords)

    def has(self, coords) -> bool:
        return False

    def finish(self) -> None:
        pass


def test_latest_is_the_displays_own_copy_before_the_slot_is_reused():
    """latest() handed out a ring-buffer view: once written and released, the
    camera reused the slot and the display drew a torn frame."""
    storage = _GatedStorage()
    handler = DataHandler(storage)
    slot = np.full((4, 6), 7, np.uint16)  # a camera ring slot

    def release() -> None:  # the camera writes its next frame into the slot
        slot[:] = 99

    handler.put({"time": 0}, slot, {}, release)
    shown = handler.latest()
    assert shown is not None and not np.shares_memory(shown.image, slot)
    storage.gate.set()
    handler.finish(10)
    assert (slot == 99).all()  # released and reused ...
    assert (shown.image == 7).all()  # ... while the display kept its frame
    np.testing.assert_array_equal(storage.images[0], np.full((4, 6), 7))


def test_stop_is_seen_while_put_waits_for_queue_room(rig: Rig, tmp, monkeypatch):
    """With the writer stuck and the queue full, Stop stops the camera at once
    (put used to wait up to 30 s first); every frame is still saved."""
    gate = threading.Event()
    real_write = NDTiffSink._write  # every image goes through it (put, put_run)

    def slow_write(self, run, *, strict):
        assert gate.wait(30)
        return real_write(self, run, strict=strict)

    monkeypatch.setattr(NDTiffSink, "_write", slow_write)
    controller = RunController(rig)
    frame_bytes = 48 * 64 * 2
    controller.start(
        RunRequest([stream_event()], tmp, "run", queue_bytes=3 * frame_bytes)
    )
    assert controller.wait_frames(3, 20)
    controller.stop()
    engine = controller._engine
    assert engine is not None
    stopped = threading.Event()

    def camera_stopped() -> None:
        while engine.camera_stopped_at is None and not gate.is_set():
            threading.Event().wait(0.005)
        stopped.set()

    threading.Thread(target=camera_stopped, daemon=True).start()
    assert stopped.wait(5), "the camera was not stopped while the writer was stuck"
    assert engine.camera_stopped_at is not None
    gate.set()
    result = controller.wait(30)
    assert result is not None and result.outcome is RunOutcome.STOPPED, result
    assert result.frames_lost == 0
    assert result.frames_saved == result.frames_acquired
    ds = open_dataset(result.dataset)
    try:
        assert len(ds.get_image_coordinates_list()) == result.frames_saved
    finally:
        ds.close()


def test_one_grpc_channel_per_connection_closed_with_it():
    connection = DaqConnection("Dev1", "127.0.0.1:1")
    first = connection.grpc_options().grpc_channel
    assert connection.grpc_options().grpc_channel is first  # not one per call
    connection.close()
    with pytest.raises(ValueError):  # grpc: a closed channel refuses calls
        first.unary_unary("/x/y")(b"", timeout=0.1)
    assert connection.grpc_options().grpc_channel is not first
    connection.close()


def test_stop_waits_for_a_change_being_written():
    """DaqLink.stop took no lock: it could stop tasks while update() (on another
    thread) was writing them."""
    order: list[str] = []
    writing, release = threading.Event(), threading.Event()

    class Tasks:
        running = True

        def update(self, program):
            order.append("write starts")
            writing.set()
            assert release.wait(10)
            order.append("write ends")

        def stop(self):
            order.append("stop")

    from test_daq_acquisition import opm_program

    program = opm_program(positions=2)
    link = DaqLink(DaqConnection("Dev1", None), program)
    link._tasks = Tasks()  # type: ignore[assignment]
    writer = threading.Thread(target=link.update, args=(program,))
    writer.start()
    assert writing.wait(5)
    stopper = threading.Thread(target=link.stop)
    stopper.start()
    stopper.join(0.2)  # it must still be waiting: the write holds the lock
    assert stopper.is_alive()
    release.set()
    writer.join(5)
    stopper.join(5)
    assert order == ["write starts", "write ends", "stop"]


def test_a_cfg_that_fails_half_way_unloads_what_it_loaded(tmp_path, monkeypatch):
    from mmapp.rig import mm_config as rig_module
    from mmapp.rig.core import RigCore

    unloaded: list[list[str]] = []

    class HalfLoading(RigCore):
        def loadSystemConfiguration(self, path):  # one device, then a bad line
            self.loadPyDevice("Shutter", _shutter())
            self.initializeAllDevices()
            raise RuntimeError("line 3: unknown command")

        def unloadAllDevices(self):
            unloaded.append(list(self.getLoadedDevices()))
            super().unloadAllDevices()

    monkeypatch.setattr(rig_module, "RigCore", HalfLoading)
    cfg = tmp_path / "rig.cfg"
    cfg.write_text("Device,Shutter,Foo,Bar\n")
    with pytest.raises(RigError, match="failed to load"):
        load_rig(cfg)
    assert unloaded and "Shutter" in unloaded[0]  # what had loaded: unloaded


def _shutter():
    from mmapp.sim.devices import SimShutter
    from mmapp.sim.state import SimRigState

    return SimShutter(SimRigState())
