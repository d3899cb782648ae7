"""numba kernels for on-the-fly processing: deskew, MIP, binning, background.

They release the GIL (`nogil`) and cache their compiled code in the per-user
folder `numba_cache` chose. The volume kernels (deskew, projections) run on all
cores (`parallel`), one at a time (:data:`PARALLEL_LOCK`): numba's fallback
threading layer (workqueue, where OpenMP and TBB are missing) aborts the
process when two threads enter parallel code at once. The per-frame kernels
(background, binning) are serial: the processing pool already runs frames side
by side, and idle OpenMP threads spinning after each frame stole CPU from the
camera and the writer.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
from numba import njit, prange

from mmapp.processing import numba_cache  # noqa: F401  (sets the cache folder first)
from mmapp.processing.geometry import EDGE_TOLERANCE, OpmGeometry

# numba caches by the source file; without one (a frozen app) it compiles per run
CACHE = Path(__file__).is_file()
# one parallel region at a time, whatever threading layer numba picked
PARALLEL_LOCK = threading.Lock()
DESKEW_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
IMAGE_DTYPES = (
    np.dtype(np.uint8),
    np.dtype(np.uint16),
    np.dtype(np.uint32),
    np.dtype(np.float32),
    np.dtype(np.float64),
)


# --- deskew -------------------------------------------------------------------
def _mapping(
    geometry: OpmGeometry, rows: int
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Per output z: (source row, its weight); and k(j, i) = k0 + j*dk_y + i*dk_z.

    Output voxel (i, j, l) at (z, y, x) = (i*p, y0 + j*p, l*p) comes from camera
    row r = z / (p sin a) of the plane at fractional scan index
    k = (y - z / tan a) / step, column l.
    """
    a = math.radians(geometry.sheet_angle_deg)
    p = geometry.pixel_um
    step = geometry.scan_step_um
    nz = geometry.output_shape(rows, 1)[0]
    r = np.arange(nz, dtype=np.float64) / math.sin(a)
    r = np.minimum(r, rows - 1)  # the last row's float rounding (sin 30 < 0.5)
    r0 = np.minimum(np.floor(r), rows - 2).astype(np.int64)
    wr = r - r0
    return r0, wr, geometry.y_origin_um / step, p / step, -p / math.tan(a) / step


@njit(parallel=True, nogil=True, cache=CACHE)
def _deskew_kernel(volume, out, r0, wr, k_start, dk_y, dk_z, tol, top):  # noqa: ANN001
    positions, _, cols = volume.shape
    nz, ny, _ = out.shape
    last = positions - 1
    for i in prange(nz):
        # each plane's line at this output depth, blended between its two rows
        lines = np.empty((positions, cols), dtype=np.float32)
        w1 = np.float32(wr[i])
        w0 = np.float32(1.0) - w1
        ri = r0[i]
        for k in range(positions):
            for c in range(cols):
                lines[k, c] = w0 * volume[k, ri, c] + w1 * volume[k, ri + 1, c]
        for j in range(ny):
            k = k_start + j * dk_y + i * dk_z
            if k < -tol or k > last + tol:
                for c in range(cols):
                    out[i, j, c] = 0
                continue
            k0 = min(max(math.floor(k), 0), last - 1)
            v1 = np.float32(min(max(k - k0, 0.0), 1.0))
            v0 = np.float32(1.0) - v1
            for c in range(cols):
                value = v0 * lines[k0, c] + v1 * lines[k0 + 1, c] + np.float32(0.5)
                out[i, j, c] = min(value, top)  # >= 0.5: truncation rounds
    return out


def _check_volume(volume: np.ndarray, geometry: OpmGeometry) -> None:
    if not isinstance(volume, np.ndarray):
        raise ValueError(f"deskew needs a numpy array, not {type(volume).__name__}")
    if volume.ndim != 3:
        raise ValueError(
            f"deskew needs a 3-D volume (positions, rows, cols), not "
            f"{volume.ndim}-D of shape {volume.shape}"
        )
    if volume.dtype not in DESKEW_DTYPES:
        raise ValueError(f"deskew needs uint16 (or uint8) frames, not {volume.dtype}")
    if volume.shape[0] != geometry.positions:
        raise ValueError(
            f"the volume has {volume.shape[0]} planes but the geometry "
            f"{geometry.positions} scan positions"
        )
    if volume.shape[1] < 2 or volume.shape[2] < 1:
        raise ValueError(f"frames of {volume.shape[1:]} are too small to deskew")
    if not volume.flags.c_contiguous:
        raise ValueError("deskew needs a C-contiguous volume (np.ascontiguousarray)")


def deskew(volume: np.ndarray, geometry: OpmGeometry) -> np.ndarray:
    """The upright volume (z, y, x) of oblique planes (positions, rows, cols).

    Planes are in scan order (plane k at scan_start + k * scan_step; reverse a
    triangle scan's backward volumes first). Voxels are cubic of pixel_um (see
    OpmGeometry); values are linearly interpolated between neighbouring rows and
    scan positions, rounded, in the input's dtype (uint16 or uint8). Voxels
    outside the scanned parallelogram are 0.
    """
    _check_volume(volume, geometry)
    positions, rows, cols = volume.shape
    out = np.empty(geometry.output_shape(rows, cols), dtype=volume.dtype)
    r0, wr, k_start, dk_y, dk_z = _mapping(geometry, rows)
    top = np.float32(np.iinfo(volume.dtype).max)
    tol = EDGE_TOLERANCE * positions
    with PARALLEL_LOCK:
        return _deskew_kernel(volume, out, r0, wr, k_start, dk_y, dk_z, tol, top)


@njit(parallel=True, nogil=True, cache=CACHE)
def _deskew_mip_kernel(volume, out, r0, wr, k_start, dk_y, dk_z, tol, top):  # noqa: ANN001
    positions, _, cols = volume.shape
    nz = r0.shape[0]
    ny = out.shape[0]
    last = positions - 1
    for j in prange(ny):
        best = out[j]
        value_of = np.empty_like(best)  # each voxel as deskew stores it
        for c in range(cols):
            best[c] = 0  # outside the scanned parallelogram deskew gives 0
        for i in range(nz):
            k = k_start + j * dk_y + i * dk_z
            if k < -tol or k > last + tol:
                continue
            k0 = min(max(math.floor(k), 0), last - 1)
            v1 = np.float32(min(max(k - k0, 0.0), 1.0))
            v0 = np.float32(1.0) - v1
            w1 = np.float32(wr[i])
            w0 = np.float32(1.0) - w1
            ri = r0[i]
            for c in range(cols):
                line0 = np.float32(w0 * volume[k0, ri, c] + w1 * volume[k0, ri + 1, c])
                line1 = np.float32(
                    w0 * volume[k0 + 1, ri, c] + w1 * volume[k0 + 1, ri + 1, c]
                )
                value = v0 * line0 + v1 * line1 + np.float32(0.5)
                value_of[c] = min(value, top)
                if value_of[c] > best[c]:
                    best[c] = value_of[c]
    return out


def deskew_max_projection(volume: np.ndarray, geometry: OpmGeometry) -> np.ndarray:
    """`max_projection(deskew(volume, geometry))` (along z) without making the
    upright volume: the same numbers, (y, x), in the input's dtype.

    A 2048 x 2048 camera's volume deskews to gigavoxels; its projection is one
    image, computed plane row by plane row in a fraction of the time and memory.
    """
    _check_volume(volume, geometry)
    _, rows, cols = volume.shape
    _, ny, _ = geometry.output_shape(rows, cols)
    out = np.empty((ny, cols), dtype=volume.dtype)
    r0, wr, k_start, dk_y, dk_z = _mapping(geometry, rows)
    top = np.float32(np.iinfo(volume.dtype).max)
    tol = EDGE_TOLERANCE * volume.shape[0]
    with PARALLEL_LOCK:
        return _deskew_mip_kernel(volume, out, r0, wr, k_start, dk_y, dk_z, tol, top)


def deskew_reference(volume: np.ndarray, geometry: OpmGeometry) -> np.ndarray:
    """`deskew` by scipy.ndimage.affine_transform (order 1): the same mapping and
    output grid, for tests and the benchmark (scipy is a test dependency)."""
    from scipy.ndimage import affine_transform

    _check_volume(volume, geometry)
    _, rows, cols = volume.shape
    a = math.radians(geometry.sheet_angle_deg)
    p = geometry.pixel_um
    step = geometry.scan_step_um
    # input (k, r, c) = matrix @ output (i, j, l) + offset
    matrix = np.array(
        [
            [-p / math.tan(a) / step, p / step, 0.0],
            [1.0 / math.sin(a), 0.0, 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    offset = np.array([geometry.y_origin_um / step, 0.0, 0.0])
    shape = geometry.output_shape(rows, cols)
    result = affine_transform(
        volume,
        matrix,
        offset=offset,
        output_shape=shape,
        output=np.float64,
        order=1,
        mode="constant",
        cval=0.0,
        prefilter=False,
    )
    top = np.iinfo(volume.dtype).max
    return np.clip(np.rint(result), 0, top).astype(volume.dtype)


# --- projections and 2-D images -----------------------------------------------
@njit(parallel=True, nogil=True, cache=CACHE)
def _max_first(volume, out):  # noqa: ANN001
    n, rows, cols = volume.shape
    for r in prange(rows):
        for c in range(cols):
            out[r, c] = volume[0, r, c]
        for k in range(1, n):
            for c in range(cols):
                v = volume[k, r, c]
                if v > out[r, c]:
                    out[r, c] = v
    return out


def max_projection(volume: np.ndarray, axis: int = 0) -> np.ndarray:
    """Maximum intensity projection of a 3-D volume along `axis` (same dtype).

    NaN (float volumes) does not propagate as it does in np.max: a NaN voxel
    loses to any number.
    """
    if not isinstance(volume, np.ndarray) or volume.ndim != 3:
        raise ValueError(
            f"max_projection needs a 3-D array, not {np.ndim(volume)}-D "
            f"of shape {np.shape(volume)}"
        )
    if volume.dtype not in IMAGE_DTYPES:
        raise ValueError(f"max_projection does not take {volume.dtype} data")
    if not -3 <= axis < 3:
        raise ValueError(f"axis {axis} is out of range for a 3-D volume")
    if 0 in volume.shape:
        raise ValueError(f"max_projection of an empty volume {volume.shape}")
    moved = np.ascontiguousarray(np.moveaxis(volume, axis, 0))
    out = np.empty(moved.shape[1:], dtype=volume.dtype)
    with PARALLEL_LOCK:
        return _max_first(moved, out)


@njit(nogil=True, cache=CACHE)
def _bin_kernel(image, factor, integer, out):  # noqa: ANN001
    rows, cols = out.shape
    area = factor * factor
    for r in range(rows):
        for c in range(cols):
            total = 0.0
            for dr in range(factor):
                for dc in range(factor):
                    total += image[r * factor + dr, c * factor + dc]
            mean = total / area
            if integer:
                out[r, c] = math.floor(mean + 0.5)
            else:
                out[r, c] = mean
    return out


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of factor x factor blocks, in the image's dtype.

    The output is (rows // factor, cols // factor): rows and columns past the
    last whole block are cropped. Integer means round half up.
    """
    _check_image(image, "bin_image")
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer):
        raise ValueError(f"bin_image: factor must be an integer, not {factor!r}")
    if factor < 1:
        raise ValueError(f"bin_image: factor must be >= 1, not {factor}")
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    if rows == 0 or cols == 0:
        raise ValueError(
            f"bin_image: a {image.shape[0]} x {image.shape[1]} image is smaller "
            f"than one {factor} x {factor} block"
        )
    out = np.empty((rows, cols), dtype=image.dtype)
    integer = bool(np.issubdtype(image.dtype, np.integer))
    return _bin_kernel(image, int(factor), integer, out)


@njit(nogil=True, cache=CACHE)
def _subtract_kernel(image, background, out):  # noqa: ANN001
    rows, cols = image.shape
    for r in range(rows):
        for c in range(cols):
            v = image[r, c]
            b = background[r, c]
            out[r, c] = v - b if v > b else 0
    return out


@njit(nogil=True, cache=CACHE)
def _subtract_value_kernel(image, b, out):  # noqa: ANN001
    rows, cols = image.shape
    for r in range(rows):
        for c in range(cols):
            v = image[r, c]
            out[r, c] = v - b if v > b else 0
    return out


def subtract_background(
    image: np.ndarray, background: np.ndarray | float
) -> np.ndarray:
    """image - background, saturating at 0, in the image's dtype.

    `background` is an image of the same shape or one number (e.g. the camera
    offset); a float background is rounded for integer images.
    """
    _check_image(image, "subtract_background")
    if np.ndim(background) == 0:
        value = float(background)  # type: ignore[arg-type]
        if not math.isfinite(value):
            raise ValueError(f"subtract_background: background {value} is not finite")
        if np.issubdtype(image.dtype, np.integer):
            top = np.iinfo(image.dtype).max
            value = min(max(round(value), 0), top)
        out = np.empty(image.shape, dtype=image.dtype)
        return _subtract_value_kernel(image, image.dtype.type(value), out)
    back = np.asarray(background)
    if back.shape != image.shape:
        raise ValueError(
            f"subtract_background: background {back.shape} does not match "
            f"the image {image.shape}"
        )
    if back.dtype != image.dtype:
        raise ValueError(
            f"subtract_background: background is {back.dtype}, the image "
            f"{image.dtype} (convert one first)"
        )
    out = np.empty(image.shape, dtype=image.dtype)
    return _subtract_kernel(image, back, out)


def _check_image(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2:
        raise ValueError(
            f"{name} needs a 2-D image, not {np.ndim(image)}-D of shape "
            f"{np.shape(image)}"
        )
    if image.dtype not in IMAGE_DTYPES:
        raise ValueError(f"{name} does not take {image.dtype} images")


def warm_up(*names: str) -> None:
    """Compile (or load from numba's cache) the named kernels for 8- and
    16-bit frames now, before the camera starts: the first volume of a run
    must not wait seconds for the compiler while frames pile up.

    Names: "deskew" (also its fused projection), "background", "bin".
    """
    for dtype in DESKEW_DTYPES:
        if "deskew" in names:
            g = OpmGeometry(1.0, 30.0, 1.0, 2)
            volume = np.zeros((2, 2, 1), dtype)
            deskew(volume, g)
            deskew_max_projection(volume, g)
        if "background" in names:
            image = np.zeros((2, 2), dtype)
            subtract_background(image, 1.0)
            subtract_background(image, image)
        if "bin" in names:
            bin_image(np.zeros((2, 2), dtype), 2)
