"""OPM geometry: where each camera pixel is in the sample, and the deskewed grid.

Typed once: the optics (pixel size, sheet angle) come from the rig file's
`opm` section, the scan step from the waveform program's galvo channel
(`geometry_for`). Camera row r, column c of the frame at scan position
s = scan_start_um + k * scan_step_um images the sample point

    (x, y, z) = (c * p, s + r * p * cos a, r * p * sin a)

with p = pixel_um and a = sheet_angle_deg. The deskewed (upright) volume has
axes (z, y, x) and cubic voxels of pixel_um; voxel (i, j, l) is the point
(x, y, z) = (l * p, y_origin_um + j * p, i * p) in micrometres relative to the
first scan position (add scan_start_um for the sample's own y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmapp.daq.program import Constant, Custom, PerChannel, Sawtooth, Triangle

if TYPE_CHECKING:
    from mmapp.daq.program import AnalogChannel, WaveformProgram
    from mmapp.rig.spec import RigSpec

# a custom scan may depart from a uniform step by this fraction of the step
UNIFORM_TOLERANCE = 1e-3
# coordinates this close (in pixels or positions) past the data's edge still
# count as inside (float rounding of sin/cos, e.g. sin 30 deg < 0.5)
EDGE_TOLERANCE = 1e-9


class GeometryError(ValueError):
    """The rig file or waveform program does not define an OPM geometry."""


@dataclass(frozen=True)
class OpmGeometry:
    """How an OPM volume was scanned, and the upright grid it deskews to."""

    pixel_um: float  # camera pixel size in the sample
    sheet_angle_deg: float  # light sheet tilt from the coverslip
    scan_step_um: float  # sample distance between successive scan positions
    positions: int  # scan positions per volume
    scan_start_um: float = 0.0  # the first scan position in the sample (metadata)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pixel_um) and self.pixel_um > 0):
            raise GeometryError(f"pixel_um must be > 0, not {self.pixel_um}")
        if not 0 < self.sheet_angle_deg < 90:
            raise GeometryError(
                f"sheet_angle_deg must be between 0 and 90, not {self.sheet_angle_deg}"
            )
        if not (math.isfinite(self.scan_step_um) and self.scan_step_um != 0):
            raise GeometryError(
                f"scan_step_um must be finite and non-zero, not {self.scan_step_um}"
            )
        if self.positions < 2:
            raise GeometryError(
                f"a volume needs at least 2 scan positions, not {self.positions}"
            )

    @property
    def voxel_um(self) -> tuple[float, float, float]:
        """(z, y, x) voxel size of the deskewed volume: pixel_um, cubic."""
        return (self.pixel_um, self.pixel_um, self.pixel_um)

    @property
    def scan_span_um(self) -> float:
        """Signed distance from the first to the last scan position."""
        return (self.positions - 1) * self.scan_step_um

    @property
    def y_origin_um(self) -> float:
        """y of output row 0, relative to the first scan position (<= 0)."""
        return min(0.0, self.scan_span_um)

    def output_shape(self, rows: int, cols: int) -> tuple[int, int, int]:
        """(z, y, x) shape of the deskewed volume for frames of (rows, cols)."""
        if rows < 2 or cols < 1:
            raise ValueError(f"frames of {rows} x {cols} cannot be deskewed")
        a = math.radians(self.sheet_angle_deg)
        p = self.pixel_um
        depth = (rows - 1) * p * math.sin(a)
        length = abs(self.scan_span_um) + (rows - 1) * p * math.cos(a)
        nz = math.floor(depth / p + EDGE_TOLERANCE) + 1
        ny = math.floor(length / p + EDGE_TOLERANCE) + 1
        return (nz, ny, cols)

    def output_origin_um(self) -> tuple[float, float, float]:
        """(z, y, x) in the sample of voxel (0, 0, 0), y including the scan start."""
        return (0.0, self.scan_start_um + self.y_origin_um, 0.0)


def geometry_for(rig_spec: RigSpec, program: WaveformProgram) -> OpmGeometry:
    """The OPM geometry of this rig playing this program.

    The scan step is the galvo channel's step (the program's analog channel on
    the rig's `daq.galvo.line`) in volts (its calibration) times the rig's
    `daq.galvo.um_per_volt`. A triangle scan's odd volumes run backwards:
    reverse their planes before deskewing. Raises GeometryError naming what is
    missing or wrong.
    """
    if rig_spec.opm is None:
        raise GeometryError(
            "the rig file has no 'opm' section (pixel_um, sheet_angle_deg): "
            "deskew needs the camera pixel size in the sample and the sheet angle"
        )
    if rig_spec.daq is None:
        raise GeometryError(
            "the rig file has no 'daq' section: no galvo scans the light sheet"
        )
    galvo = rig_spec.daq.galvo
    channel = next(
        (a for a in program.analog if a.physical_channel == galvo.line), None
    )
    if channel is None:
        lines = [a.physical_channel for a in program.analog] or "none"
        raise GeometryError(
            f"the waveform program has no analog channel on the rig's galvo line "
            f"{galvo.line} (its analog channels: {lines})"
        )
    positions = program.timing.positions_per_volume
    if positions < 2:
        raise GeometryError(
            f"the waveform program has {positions} scan position per volume: "
            f"a volume to deskew needs at least 2 (timing.positions_per_volume)"
        )
    values = _scan_values(channel, positions)
    um = [channel.calibration.to_volts(v) * galvo.um_per_volt for v in values]
    step = (um[-1] - um[0]) / (positions - 1)
    if step == 0:
        raise GeometryError(
            f"the galvo channel {channel.name!r} does not move: its first and "
            f"last scan positions are the same"
        )
    worst = max(abs(u - (um[0] + k * step)) for k, u in enumerate(um))
    if worst > UNIFORM_TOLERANCE * abs(step):
        raise GeometryError(
            f"the galvo channel {channel.name!r} scans non-uniformly (a position "
            f"is {worst:.3g} um off an even step of {step:.4g} um): deskew needs "
            f"evenly spaced scan positions"
        )
    return OpmGeometry(
        pixel_um=rig_spec.opm.pixel_um,
        sheet_angle_deg=rig_spec.opm.sheet_angle_deg,
        scan_step_um=step,
        positions=positions,
        scan_start_um=um[0],
    )


def _scan_values(channel: AnalogChannel, positions: int) -> list[float]:
    """The channel's value (its physical units) at each scan position."""
    shape = channel.shape
    if isinstance(shape, Sawtooth | Triangle):
        span = shape.stop - shape.start
        return [shape.start + span * k / (positions - 1) for k in range(positions)]
    if isinstance(shape, Custom):
        return list(shape.values)
    kind = {Constant: "constant", PerChannel: "per channel"}.get(type(shape), "fixed")
    raise GeometryError(
        f"the galvo channel {channel.name!r} is {kind}: it does not scan the sheet"
    )
