"""A synthetic 3-D sample of beads and its oblique slices (what an OPM images).

The sample fills space with one bead per cubic cell at a position and
brightness hashed from the cell index, so it is infinite, deterministic and
needs no storage. The light sheet is tilted by ``SHEET_ANGLE_DEG`` from the
coverslip; the galvo moves it along y. Camera row r, column c at scan position
s images the point (x, y, z) = (c*p, s + r*p*cos a, r*p*sin a) with p the
pixel size in the sample.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from mmapp.sim.frames import DARK_LEVEL

SHEET_ANGLE_DEG = 30.0
PIXEL_UM = 0.5
BEAD_SIGMA_UM = 0.8  # in-plane blur
SHEET_SIGMA_UM = 1.0  # light-sheet thickness
CELL_UM = 6.0
PEAK = 1000.0  # counts of a bead in the sheet centre at 100 % light
CACHE_BYTES = 1024 * 1024 * 1024  # rendered slices kept for repeated positions


class _SliceCache:
    """Least-recently-used slices, bounded by bytes (big frames, many positions)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            img = self._items.get(key)
            if img is not None:
                self._items.move_to_end(key)
            return img

    def put(self, key: tuple, img: np.ndarray) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = img
            self._bytes += img.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


_cache = _SliceCache(CACHE_BYTES)


def _hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) per cell."""
    h = (
        ix.astype(np.uint64) * np.uint64(0x9E3779B1)
        ^ iy.astype(np.uint64) * np.uint64(0x85EBCA77)
        ^ iz.astype(np.uint64) * np.uint64(0xC2B2AE3D)
        ^ np.uint64(salt * 0x27D4EB2F)
    )
    h ^= h >> np.uint64(15)
    h *= np.uint64(0x2C1B3C6D)
    h ^= h >> np.uint64(12)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


def cell_um(shape: tuple[int, int]) -> float:
    """Bead cell size for frames of this shape (bounded work for big frames)."""
    h, w = shape
    return max(CELL_UM, max(h, w) * PIXEL_UM / 40.0)


def _beads(
    ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, cell: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z, brightness) of the bead in each cell."""
    bx = (ix + _hash(ix, iy, iz, 1)) * cell
    by = (iy + _hash(ix, iy, iz, 2)) * cell
    bz = (iz + _hash(ix, iy, iz, 3)) * cell
    return bx, by, bz, 0.3 + 0.7 * _hash(ix, iy, iz, 4)


def beads_in_box(
    lo_um: tuple[float, float, float],
    hi_um: tuple[float, float, float],
    shape: tuple[int, int],
) -> np.ndarray:
    """True (x, y, z, brightness) of every bead with lo <= (x, y, z) < hi, as
    rows of an (n, 4) array, for frames of `shape` (the cell size depends on it).
    """
    cell = cell_um(shape)
    ranges = [
        np.arange(int(np.floor(lo / cell)), int(np.floor(hi / cell)) + 1)
        for lo, hi in zip(lo_um, hi_um, strict=True)
    ]
    ix, iy, iz = (g.ravel() for g in np.meshgrid(*ranges))
    beads = np.stack(_beads(ix, iy, iz, cell), axis=1)
    xyz = beads[:, :3]
    inside = np.all((xyz >= np.asarray(lo_um)) & (xyz < np.asarray(hi_um)), axis=1)
    return beads[inside]


def beads_near_slice(
    shape: tuple[int, int], scan_um: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, distance from the sheet in um, brightness) of nearby beads."""
    h, w = shape
    a = np.deg2rad(SHEET_ANGLE_DEG)
    cell = cell_um(shape)
    margin = 3 * SHEET_SIGMA_UM + cell
    depth = h * PIXEL_UM
    x_cells = np.arange(-1, int(w * PIXEL_UM / cell) + 2)
    y_cells = np.arange(
        int(np.floor((scan_um - margin) / cell)),
        int(np.ceil((scan_um + depth * np.cos(a) + margin) / cell)) + 1,
    )
    z_cells = np.arange(-1, int(np.ceil((depth * np.sin(a) + margin) / cell)) + 1)
    ix, iy, iz = (g.ravel() for g in np.meshgrid(x_cells, y_cells, z_cells))
    bx, by, bz, brightness = _beads(ix, iy, iz, cell)
    dy = by - scan_um
    distance = -dy * np.sin(a) + bz * np.cos(a)
    along = dy * np.cos(a) + bz * np.sin(a)
    keep = np.abs(distance) < 3 * SHEET_SIGMA_UM
    return along[keep] / PIXEL_UM, bx[keep] / PIXEL_UM, distance[keep], brightness[keep]


def _slice(
    shape: tuple[int, int], dtype_str: str, scan_key: int, light: float, max_value: int
) -> np.ndarray:
    scan_um = scan_key / 1000.0
    h, w = shape
    img = np.zeros(shape, dtype=np.float64)
    if light > 0:
        rows, cols, dist, bright = beads_near_slice(shape, scan_um)
        sigma_px = BEAD_SIGMA_UM / PIXEL_UM
        radius = int(np.ceil(3 * sigma_px))
        offsets = np.arange(-radius, radius + 1)
        scale = PEAK * min(light, 400.0) / 100.0
        amp = scale * bright * np.exp(-(dist**2) / (2 * SHEET_SIGMA_UM**2))
        rr = np.rint(rows).astype(np.int64)[:, None] + offsets  # (beads, window)
        cc = np.rint(cols).astype(np.int64)[:, None] + offsets
        gy = np.exp(-((rr - rows[:, None]) ** 2) / (2 * sigma_px**2))
        gx = np.exp(-((cc - cols[:, None]) ** 2) / (2 * sigma_px**2))
        gy *= (rr >= 0) & (rr < h)
        gx *= (cc >= 0) & (cc < w)
        spots = amp[:, None, None] * gy[:, :, None] * gx[:, None, :]
        r_idx = np.broadcast_to(np.clip(rr, 0, h - 1)[:, :, None], spots.shape)
        c_idx = np.broadcast_to(np.clip(cc, 0, w - 1)[:, None, :], spots.shape)
        np.add.at(img, (r_idx.ravel(), c_idx.ravel()), spots.ravel())
    out = np.minimum(np.rint(img) + DARK_LEVEL, max_value).astype(np.dtype(dtype_str))
    out.setflags(write=False)
    return out


def oblique_slice(
    shape: tuple[int, int],
    dtype: np.dtype | type,
    scan_um: float,
    light: float,
    bit_depth: int = 16,
) -> np.ndarray:
    """The frame at this galvo scan position and light level (before the stamp).

    The scan position is quantised to 1 nm, which is far below what a galvo
    resolves and lets repeated positions share one rendering.
    """
    key = (
        tuple(shape),
        np.dtype(dtype).str,
        round(scan_um * 1000.0),
        float(light),
        (1 << bit_depth) - 1,
    )
    img = _cache.get(key)
    if img is None:
        img = _slice(*key)
        _cache.put(key, img)
    return img
