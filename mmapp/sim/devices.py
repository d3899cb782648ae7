"""Simulated stages, shutter and laser bank (Python devices for UniMMCore)."""

from __future__ import annotations

from pymmcore_plus.experimental.unicore import (
    GenericDevice,
    ShutterDevice,
    StageDevice,
    XYStageDevice,
)

from mmapp.sim.state import LaserLine, SimRigState


class SimZStage(StageDevice):
    """A Z stage that can follow a position sequence, one step per exposure."""

    def __init__(self, state: SimRigState, max_sequence: int = 10000) -> None:
        super().__init__()
        self.state = state
        self._max_sequence = max_sequence
        self._sequence: tuple[float, ...] = ()
        self._running = False
        state.add_exposure_listener(self._on_exposure)

    def home(self) -> None:
        """Move to 0."""
        self.state.z_um = 0.0

    def stop(self) -> None:
        """Stop any sequence."""
        self._running = False

    def set_origin(self) -> None:
        """Zero here."""
        self.state.z_um = 0.0

    def set_position_um(self, val: float) -> None:
        """Move to val um."""
        self.state.z_um = float(val)

    def get_position_um(self) -> float:
        """Current position in um."""
        return self.state.z_um

    def get_sequence_max_length(self) -> int:
        """Longest position sequence the stage accepts."""
        return self._max_sequence

    def send_sequence(self, sequence: tuple[float, ...]) -> None:
        """Load positions, one per camera exposure."""
        self._sequence = tuple(float(v) for v in sequence)

    def start_sequence(self) -> None:
        """Follow the camera's exposure-out line."""
        self._running = bool(self._sequence)

    def stop_sequence(self) -> None:
        """Stop following the exposure line."""
        self._running = False

    def _on_exposure(self, frame_number: int, _at: float | None = None) -> None:
        if self._running:
            self.state.z_um = self._sequence[frame_number % len(self._sequence)]


class SimXYStage(XYStageDevice):
    """An XY stage that moves instantly."""

    def __init__(self, state: SimRigState) -> None:
        super().__init__()
        self.state = state

    def home(self) -> None:
        """Move to the origin."""
        self.state.xy_um = (0.0, 0.0)

    def stop(self) -> None:
        """Nothing moves for long here."""

    def set_origin(self) -> None:
        """Zero here."""
        self.state.xy_um = (0.0, 0.0)

    def set_origin_x(self) -> None:
        """Zero X here."""
        self.state.xy_um = (0.0, self.state.xy_um[1])

    def set_origin_y(self) -> None:
        """Zero Y here."""
        self.state.xy_um = (self.state.xy_um[0], 0.0)

    def set_position_um(self, x: float, y: float) -> None:
        """Move to (x, y) um."""
        self.state.xy_um = (float(x), float(y))

    def get_position_um(self) -> tuple[float, float]:
        """Current (x, y) in um."""
        return self.state.xy_um


class SimShutter(ShutterDevice):
    """The laser shutter / blanking: no light reaches the sample when closed."""

    def __init__(self, state: SimRigState) -> None:
        super().__init__()
        self.state = state

    def get_open(self) -> bool:
        """True when open."""
        return self.state.shutter_open

    def set_open(self, open: bool) -> None:
        """Open or close."""
        self.state.shutter_open = bool(open)


class SimLasers(GenericDevice):
    """A laser bank: per line, 'Laser <nm>' On/Off and 'Laser <nm> Power %'."""

    def __init__(self, state: SimRigState, wavelengths: list[int]) -> None:
        super().__init__()
        self.state = state
        for nm in wavelengths:
            state.lasers[nm] = LaserLine(nm)
            self.register_property(
                f"Laser {nm}",
                default_value="Off",
                allowed_values=("Off", "On"),
                getter=lambda _dev, nm=nm: "On" if state.lasers[nm].enabled else "Off",
                setter=lambda _dev, v, nm=nm: setattr(
                    state.lasers[nm], "enabled", v == "On"
                ),
            )
            self.register_property(
                f"Laser {nm} Power %",
                default_value=50.0,
                limits=(0.0, 100.0),
                getter=lambda _dev, nm=nm: state.lasers[nm].power_pct,
                setter=lambda _dev, v, nm=nm: setattr(
                    state.lasers[nm], "power_pct", float(v)
                ),
            )

    def all_off(self) -> None:
        """Safe state: every line off."""
        for line in self.state.lasers.values():
            line.enabled = False
