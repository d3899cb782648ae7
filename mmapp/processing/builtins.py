"""The built-in processors, named in presets with their parameters.

- ``background``: subtract a constant (``value``) or a dark frame (``dark_frame``:
  the path of a 2-D .tif, read once when the run starts; a data file, never
  code), clipped at 0, dtype kept.
- ``bin``: bin ``factor`` x ``factor`` pixels (the image is cropped to a
  multiple of the factor).
- ``deskew``: an OPM volume from the oblique planes of one scan. Frames are
  batched per volume (every coordinate but ``z``: the DAQ program numbers the
  volume as ``time`` and the scan position as ``z``); the geometry comes from
  the run's rig file and waveform program (``geometry_for``), never from the
  preset. A complete volume gives its deskewed planes, ``z`` = plane, with
  ``metadata["deskew"] = {"plane": k, "planes": n}``.
- ``mip``: the maximum projection of one volume along ``z``: a running
  maximum per volume (no volume is held in memory), given out when the
  volume's planes are all in (``metadata["deskew"]["planes"]`` from deskew,
  else the program's positions per volume).

All are thread-safe. The numerical kernels live in
``mmapp.processing.kernels`` (numba) and are imported when a run starts;
background and binning fall back to numpy without them.

Batches: at most :data:`MAX_HELD_BATCHES` incomplete volumes are held; a
volume that falls out of that window (a frame of it was not processed, e.g.
the pipeline was full) is dropped and counted, so memory stays bounded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmapp.processing.registry import NoParams, ProcessorContext, ProcessorDefinition

MAX_HELD_BATCHES = 3

Coords = Mapping[str, int | str]
Output = tuple[dict[str, int | str], np.ndarray, dict[str, Any]]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessorSetupError(ValueError):
    """A processor cannot be made for this run (e.g. deskew without a program)."""


# --- background -------------------------------------------------------------------
class BackgroundParams(_Params):
    """Exactly one of `value` (counts) or `dark_frame` (a .tif path)."""

    value: float | None = Field(None, ge=0, le=65535, allow_inf_nan=False)
    dark_frame: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one(self) -> BackgroundParams:
        if (self.value is None) == (self.dark_frame is None):
            raise ValueError("give exactly one of value or dark_frame")
        return self


def subtract(image: np.ndarray, background: np.ndarray | float) -> np.ndarray:
    """image - background, clipped at 0, in the image's dtype."""
    try:
        from mmapp.processing.kernels import subtract_background
    except ImportError:
        out = image.astype(np.float32) - np.asarray(background, np.float32)
        np.clip(out, 0, np.iinfo(image.dtype).max, out=out)
        return out.astype(image.dtype)
    return subtract_background(image, background)


def _background(params: BackgroundParams, context: ProcessorContext) -> Callable:
    background: np.ndarray | float
    if params.dark_frame is not None:
        path = Path(params.dark_frame).expanduser()
        try:
            import tifffile

            background = np.asarray(tifffile.imread(path))
        except Exception as exc:
            raise ProcessorSetupError(
                f"background: cannot read the dark frame {path}: {exc}"
            ) from None
        if background.ndim != 2:
            raise ProcessorSetupError(
                f"background: the dark frame {path} is not 2-D ({background.shape})"
            )
    else:
        background = float(params.value or 0.0)

    def background_subtraction(image: np.ndarray, metadata: dict) -> tuple:
        if isinstance(background, np.ndarray) and background.shape != image.shape:
            raise ValueError(
                f"the dark frame is {background.shape}, the frame {image.shape}"
            )
        return subtract(image, background), metadata

    return background_subtraction


# --- binning ----------------------------------------------------------------------
class BinParams(_Params):
    """Bin factor x factor pixels."""

    factor: int = Field(2, ge=2, le=64)


def bin_frame(image: np.ndarray, factor: int) -> np.ndarray:
    """The binned image (mmapp.processing.kernels.bin_image, else the mean
    of each block in numpy)."""
    try:
        from mmapp.processing.kernels import bin_image
    except ImportError:
        h, w = image.shape[0] // factor, image.shape[1] // factor
        blocks = image[: h * factor, : w * factor].reshape(h, factor, w, factor)
        return blocks.mean(axis=(1, 3)).astype(image.dtype)
    return bin_image(image, factor)


def _bin(params: BinParams, context: ProcessorContext) -> Callable:
    factor = params.factor

    def binning(image: np.ndarray, metadata: dict) -> tuple:
        if image.shape[0] < factor or image.shape[1] < factor:
            raise ValueError(f"a {image.shape} frame cannot be binned by {factor}")
        return bin_frame(image, factor), metadata

    return binning


# --- batches ----------------------------------------------------------------------
class VolumeBatches:
    """Frames held per volume key until the volume is complete (thread-safe).

    Holds at most MAX_HELD_BATCHES volumes: a newer volume pushes the oldest
    incomplete one out (counted in `batches_dropped`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple, Any] = OrderedDict()
        self.batches_dropped = 0

    def _slot(self, key: tuple, new: Callable[[], Any]) -> Any:
        """The batch of `key` (made if new; the caller holds the lock)."""
        batch = self._held.get(key)
        if batch is None:
            while len(self._held) >= MAX_HELD_BATCHES:
                self._held.popitem(last=False)
                self.batches_dropped += 1
            batch = self._held[key] = new()
        return batch

    def held(self) -> int:
        """How many incomplete batches are held."""
        with self._lock:
            return len(self._held)

    def drop_held(self) -> int:
        """The run ended: drop the incomplete batches (returns how many)."""
        with self._lock:
            n = len(self._held)
            self._held.clear()
            self.batches_dropped += n
            return n


def volume_key(coords: Coords) -> tuple:
    """The volume a frame belongs to: every coordinate but z."""
    return tuple(sorted((k, v) for k, v in coords.items() if k != "z"))


def _without_z(coords: Coords) -> dict[str, int | str]:
    return {k: v for k, v in coords.items() if k != "z"}


class _Volume:
    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.data = np.zeros(shape, dtype)
        self.seen: set[int] = set()
        self.metadata: dict[str, Any] = {}


class Deskew(VolumeBatches):
    """Deskews each complete volume (see the module docstring)."""

    thread_safe = True

    def __init__(self, geometry: Any, deskew: Callable) -> None:
        super().__init__()
        self.geometry = geometry
        self.positions = int(geometry.positions)
        self._deskew = deskew

    def __call__(self, coords: Coords, image: np.ndarray, metadata: dict) -> Any:
        z = int(coords.get("z", -1))
        if not 0 <= z < self.positions:
            raise ValueError(
                f"deskew: frame z={coords.get('z')} is outside the volume's "
                f"{self.positions} scan positions"
            )
        key = volume_key(coords)
        shape = (self.positions, *image.shape)
        with self._lock:
            volume = self._slot(key, lambda: _Volume(shape, image.dtype))
            volume.data[z] = image
            volume.seen.add(z)
            if z == 0:
                volume.metadata = metadata
            if len(volume.seen) < self.positions:
                return None
            del self._held[key]
        planes = self._deskew(volume.data, self.geometry)
        base = _without_z(coords)
        n = planes.shape[0]
        g = self.geometry
        voxel = [float(v) for v in g.voxel_um]  # (z, y, x) in the sample
        upright = {  # the deskewed volume's own frame (not the camera's)
            **volume.metadata,
            "pixel_size_um": voxel[2],
            "event_index": {k: v for k, v in base.items() if isinstance(v, int)},
        }
        return [
            (
                {**base, "z": k},
                np.ascontiguousarray(planes[k]),
                {
                    **upright,
                    "deskew": {
                        "plane": k,
                        "planes": n,
                        "voxel_um": voxel,
                        "sheet_angle_deg": float(g.sheet_angle_deg),
                        "scan_step_um": float(g.scan_step_um),
                    },
                },
            )
            for k in range(n)
        ]


def _deskew(params: NoParams, context: ProcessorContext) -> Deskew:
    if context.program is None:
        raise ProcessorSetupError(
            "deskew needs the DAQ waveform program of an OPM scan (the run has none)"
        )
    from mmapp.processing.geometry import geometry_for
    from mmapp.processing.kernels import deskew

    try:
        geometry = geometry_for(context.rig_spec, context.program)
    except ValueError as exc:
        raise ProcessorSetupError(f"deskew: {exc}") from None
    return Deskew(geometry, deskew)


class _Projection:
    def __init__(self, image: np.ndarray, metadata: dict) -> None:
        self.data = image.copy()
        self.count = 1
        self.metadata = metadata


class MaxProjection(VolumeBatches):
    """Running maximum of each volume along z (see the module docstring)."""

    thread_safe = True

    def __init__(self, planes: int | None) -> None:
        super().__init__()
        self.planes = planes

    def __call__(self, coords: Coords, image: np.ndarray, metadata: dict) -> Any:
        info = metadata.get("deskew")
        planes = info.get("planes") if isinstance(info, dict) else self.planes
        if not planes:
            raise ValueError(
                "mip: how many planes a volume has is unknown (no deskew before "
                "it and no waveform program)"
            )
        key = volume_key(coords)
        with self._lock:
            proj = self._held.get(key)
            if proj is None:
                self._slot(key, lambda: _Projection(image, metadata))
            else:
                np.maximum(proj.data, image, out=proj.data)
                proj.count += 1
            proj = self._held[key]
            if proj.count < planes:
                return None
            del self._held[key]
        md = {k: v for k, v in proj.metadata.items() if k != "deskew"}
        md["mip"] = {"planes": planes, "axis": "z"}
        if isinstance(info, dict) and "voxel_um" in info:  # (y, x) of the projection
            md["mip"]["pixel_um"] = info["voxel_um"][1:]
        return _without_z(coords), proj.data, md


def _mip(params: NoParams, context: ProcessorContext) -> MaxProjection:
    program = context.program
    planes = program.timing.positions_per_volume if program is not None else None
    return MaxProjection(planes)


BUILTINS: dict[str, ProcessorDefinition] = {
    d.name: d
    for d in (
        ProcessorDefinition(
            name="background",
            factory=_background,
            params=BackgroundParams,
            description="subtract a constant or a dark frame (clipped at 0)",
            thread_safe=True,
            takes_coords=False,
            takes_events=False,
            source="built-in",
        ),
        ProcessorDefinition(
            name="bin",
            factory=_bin,
            params=BinParams,
            description="bin factor x factor pixels",
            thread_safe=True,
            takes_coords=False,
            takes_events=False,
            source="built-in",
        ),
        ProcessorDefinition(
            name="deskew",
            factory=_deskew,
            description="OPM deskew of each volume (geometry from the rig and program)",
            thread_safe=True,
            takes_coords=True,
            takes_events=False,
            source="built-in",
        ),
        ProcessorDefinition(
            name="mip",
            factory=_mip,
            description="maximum intensity projection of each volume along z",
            thread_safe=True,
            takes_coords=True,
            takes_events=False,
            source="built-in",
        ),
    )
}
