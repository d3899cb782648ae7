"""On-the-fly processing: OPM geometry and the numba kernels (deskew, MIP,
binning, background subtraction).

`numba_cache` is imported first: it points numba's compilation cache at a
per-user folder before numba is imported.
"""

from mmapp.processing import numba_cache
from mmapp.processing.geometry import GeometryError, OpmGeometry, geometry_for
from mmapp.processing.kernels import (
    bin_image,
    deskew,
    deskew_reference,
    max_projection,
    subtract_background,
)

__all__ = [
    "GeometryError",
    "OpmGeometry",
    "bin_image",
    "deskew",
    "deskew_reference",
    "geometry_for",
    "max_projection",
    "numba_cache",
    "subtract_background",
]
