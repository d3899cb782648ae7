"""Checks a frame must pass before any byte of it reaches a file."""

from __future__ import annotations

import numpy as np

from mmapp.data.errors import InvalidFrameError

WRITABLE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def validate_frame(image: object) -> np.ndarray:
    """Return a 2-D, C-contiguous uint8/uint16 array, or raise InvalidFrameError.

    A non-contiguous but otherwise valid array is copied into C order (that is
    safe); anything else is refused, so a bad frame never corrupts a file.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidFrameError(
            f"frame must be a numpy array, got {type(image).__name__}"
        )
    if image.ndim != 2:
        raise InvalidFrameError(
            f"frame must be 2-D (height, width), got shape {image.shape}"
        )
    if image.dtype not in WRITABLE_DTYPES:
        raise InvalidFrameError(
            f"frame dtype must be uint8 or uint16, got {image.dtype}"
        )
    if image.size == 0:
        raise InvalidFrameError(f"frame is empty (shape {image.shape})")
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    return image
