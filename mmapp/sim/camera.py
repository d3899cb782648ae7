"""The simulated camera: a Python device in the core's own circular buffer.

Free-running ("Internal") or externally triggered ("External") through a
:class:`~mmapp.sim.state.TriggerLine`. It has its own abort event, so a Stop
never waits on a camera that is blocked waiting for a trigger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import DTypeLike
from pymmcore_plus.experimental.unicore import CameraDevice, pymm_property

from mmapp.sim.frames import expected_pattern, stamp
from mmapp.sim.sample import oblique_slice
from mmapp.sim.state import SimRigState, TriggerLine

TRIGGER_MODES = ("Internal", "External")
FLOW_WAIT_S = 0.002  # a camera held by flow_control looks again at least this often
# A free-running sensor starts frames on its own clock, a period apart. The
# simulation emits a frame a little late now and then (a wait overshoots, the
# GIL is busy: a thread waits up to the 2 ms switch interval for it); such a
# frame keeps the schedule, so the pace is the period on average, not the
# period plus the overshoot. Later than this many periods (and this long),
# e.g. held by flow control, the schedule starts again from now.
CATCH_UP_PERIODS = 8
CATCH_UP_S = 0.02
BIT_DEPTHS = (8, 10, 12, 14, 16)


class SimCamera(CameraDevice):
    """A sequencing camera whose pixels depend on the rig's state."""

    def __init__(
        self,
        state: SimRigState,
        *,
        width: int = 2048,
        height: int = 2048,
        bit_depth: int = 16,
        exposure_ms: float = 10.0,
        readout_ms: float = 0.0,
    ) -> None:
        super().__init__()
        self.state = state
        self.trigger = TriggerLine()
        self._abort = threading.Event()
        self.armed = threading.Event()  # set while start_sequence waits for frames
        self._width = width
        self._height = height
        self._bit_depth = bit_depth
        self._exposure_ms = exposure_ms
        self._readout_ms = readout_ms
        self._trigger_mode = "Internal"
        self._interval_ms = 0.0
        self._fault_after = -1
        self.last_error: str | None = None
        self.frames_emitted = 0
        self.missed_triggers = 0  # edges that came while exposing or reading out
        self._slot_contents: dict[int, np.ndarray] = {}  # ring address -> pattern
        # Benchmarks only: while this returns True the camera holds the next frame
        # (a free-running camera limited by the pipeline, never by overflow).
        # It looks again when room_freed() is called, at the latest after
        # FLOW_WAIT_S.
        self.flow_control: Callable[[], bool] | None = None
        self._room = threading.Event()
        self._holding = False

    # --- mandatory camera API -------------------------------------------------
    def get_exposure(self) -> float:
        """Exposure in ms."""
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        """Set the exposure in ms."""
        if exposure < 0:
            raise ValueError(f"exposure must be >= 0 ms, got {exposure}")
        self._exposure_ms = float(exposure)

    def get_readout_time(self) -> float:
        """Readout time in ms (added to the frame period)."""
        return self._readout_ms

    def set_readout_time(self, value: float) -> None:
        """Set the readout time in ms."""
        if float(value) < 0:
            raise ValueError(f"readout time must be >= 0 ms, got {value}")
        self._readout_ms = float(value)

    def shape(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return (self._height, self._width)

    def dtype(self) -> DTypeLike:
        """uint8 for 8-bit, else uint16."""
        return np.uint8 if self._bit_depth == 8 else np.uint16

    # --- extra properties -------------------------------------------------------
    @pymm_property(allowed_values=TRIGGER_MODES, name="TriggerMode")
    def trigger_mode(self) -> str:
        """'Internal' (free-running) or 'External' (one frame per edge)."""
        return self._trigger_mode

    @trigger_mode.setter
    def _set_trigger_mode(self, value: str) -> None:
        self._trigger_mode = str(value)

    @pymm_property(limits=(0.0, 100000.0), name="FrameIntervalMs")
    def frame_interval_ms(self) -> float:
        """Minimum frame period when free-running (0: as fast as possible)."""
        return self._interval_ms

    @frame_interval_ms.setter
    def _set_frame_interval_ms(self, value: float) -> None:
        self._interval_ms = float(value)

    @pymm_property(allowed_values=BIT_DEPTHS, name="BitDepth")
    def bit_depth(self) -> int:
        """Bits per pixel."""
        return self._bit_depth

    @bit_depth.setter
    def _set_bit_depth(self, value: int) -> None:
        self._bit_depth = int(value)

    @pymm_property(limits=(1, 16384), name="SensorWidth")
    def sensor_width(self) -> int:
        """Frame width in pixels."""
        return self._width

    @sensor_width.setter
    def _set_sensor_width(self, value: int) -> None:
        self._width = int(value)

    @pymm_property(limits=(1, 16384), name="SensorHeight")
    def sensor_height(self) -> int:
        """Frame height in pixels."""
        return self._height

    @sensor_height.setter
    def _set_sensor_height(self, value: int) -> None:
        self._height = int(value)

    @pymm_property(limits=(-1, 2**31 - 1), name="FaultAfterFrames")
    def fault_after_frames(self) -> int:
        """Simulate a sensor fault after this many frames (-1: never)."""
        return self._fault_after

    @fault_after_frames.setter
    def _set_fault_after_frames(self, value: int) -> None:
        self._fault_after = int(value)

    def prime(self, exposures: list[Mapping[str, float]]) -> None:
        """Render ahead the frames these DAQ line states will give."""
        shape, dtype = self.shape(), np.dtype(self.dtype())
        for lines in exposures:
            scan = self.state.scan_um(lines)
            for light in {  # the shutter opens when the camera starts
                self.state.light_level(lines, assume_open=True),
                self.state.light_level(lines),
            }:
                oblique_slice(shape, dtype, scan, light, self._bit_depth)

    # --- abort ----------------------------------------------------------------
    def abort(self) -> None:
        """Stop now, even while waiting for a trigger."""
        self._abort.set()
        self._room.set()
        self.trigger.interrupt()

    def room_freed(self) -> None:
        """The ring freed slots: a camera held by `flow_control` looks again now
        (any thread; cheap when the camera is not held)."""
        if self._holding:
            self._room.set()

    def _hold(self, flow: Callable[[], bool]) -> bool:
        """Wait while `flow()` holds the next frame; False on abort."""
        room, abort = self._room, self._abort
        while flow():
            room.clear()
            self._holding = True
            try:
                if not flow():
                    break
                room.wait(FLOW_WAIT_S)
            finally:
                self._holding = False
            if abort.is_set():
                return False
        return not abort.is_set()

    # --- acquisition ------------------------------------------------------------
    def _fill(self, buf: np.ndarray, pattern: np.ndarray) -> None:
        """Put the pattern in a ring-buffer slot (skipped if the slot holds it).

        Ring slots come back at the same addresses every cycle; a slot that
        already holds this pattern only needs its stamp. This keeps the
        simulation from spending memory bandwidth a real camera's DMA would
        not take from the CPU, so benchmarks measure the pipeline.
        """
        address = buf.ctypes.data
        if self._slot_contents.get(address) is not pattern:
            np.copyto(buf, pattern)
            self._slot_contents[address] = pattern

    def _frame_period_s(self) -> float:
        busy = (self._exposure_ms + self._readout_ms) / 1000.0
        return max(busy, self._interval_ms / 1000.0)

    def start_sequence(
        self,
        n: int | None,
        get_buffer: Callable[[Sequence[int], DTypeLike], np.ndarray],
    ) -> Iterator[Mapping]:
        """Produce n frames (None: until stopped) into the core's buffer."""
        self._abort.clear()
        self.trigger.reset()
        self.trigger.armed = True
        self.missed_triggers = 0
        self.armed.set()
        self._slot_contents.clear()  # the core may have a new ring buffer
        self.last_error = None
        shape, dtype = self.shape(), np.dtype(self.dtype())
        external = self._trigger_mode == "External"
        period = self._frame_period_s()
        busy_s = (self._exposure_ms + self._readout_ms) / 1000.0
        limit = n if n is not None else 2**63
        try:
            yield from self._frames(
                limit, external, period, busy_s, shape, dtype, get_buffer
            )
        finally:
            self.trigger.armed = False
            self.armed.clear()

    def _frames(
        self,
        limit: int,
        external: bool,
        period: float,
        busy_s: float,
        shape: tuple[int, int],
        dtype: np.dtype,
        get_buffer: Callable[[Sequence[int], DTypeLike], np.ndarray],
    ) -> Iterator[Mapping]:
        abort = self._abort
        next_t = time.perf_counter()
        busy_until = 0.0
        late_limit = max(CATCH_UP_PERIODS * period, CATCH_UP_S)
        i = 0
        while i < limit and not abort.is_set():
            probe = None
            started_at: float | None = None  # the sensor's time (time.monotonic)
            if external:
                ok, t_edge, probe = self.trigger.take_timed_edge(timeout=0.05)
                if not ok:
                    continue
                if t_edge < busy_until:  # still exposing or reading out: ignored
                    self.missed_triggers += 1
                    continue
                busy_until = t_edge + busy_s
                started_at = t_edge
            elif period > 0:
                delay = next_t - time.perf_counter()
                if delay > 0 and abort.wait(delay):
                    break
                now = time.perf_counter()
                if now - next_t > late_limit:  # held: the sensor starts again
                    next_t = now
                # the exposure-out edge carries the sensor's time, so what it
                # triggers sees frames exactly a period apart
                started_at = time.monotonic() - (now - next_t)
                next_t += period
            if (flow := self.flow_control) is not None and not self._hold(flow):
                return
            if i == self._fault_after:
                self.last_error = f"simulated sensor fault after {i} frames"
                return
            out_probe = self.state.exposure_started(i, started_at)
            probe = probe or out_probe
            meta = {"mmapp-frame": str(i), "TriggerMode": self._trigger_mode}
            if probe is not None:  # the DAQ sets the light and the sheet position
                lines = probe(self._exposure_ms / 2000.0)
                scan, light = self.state.scan_um(lines), self.state.light_level(lines)
                pattern = oblique_slice(shape, dtype, scan, light, self._bit_depth)
                meta["mmapp-scan-um"] = f"{scan:.4f}"
            else:
                z, light = self.state.z_um, self.state.light_level()
                pattern = expected_pattern(shape, dtype, z, light, self._bit_depth)
                meta["mmapp-z-um"] = f"{z:.3f}"
            meta["mmapp-light"] = f"{light:.1f}"
            if external and busy_s > 0:  # read out when the exposure ends
                wait_s = busy_until - time.monotonic()
                if wait_s > 0 and abort.wait(wait_s):
                    break
            buf = get_buffer(shape, dtype)
            self._fill(buf, pattern)
            stamp(buf, i)
            self.frames_emitted += 1
            yield meta
            i += 1
