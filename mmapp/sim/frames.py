"""Deterministic frame content of the simulated camera.

Every frame is a pattern that depends on device state (Z position, light level)
with the frame number stamped into its first 8 bytes, so tests can check in the
pixels which frame they hold and what the rig looked like when it was taken.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DARK_LEVEL = 100  # camera offset: what a frame with no light reads
STAMP_BYTES = 8


@lru_cache(maxsize=8)
def _pattern(
    shape: tuple[int, int], dtype_str: str, z_step: int, light: float, max_value: int
) -> np.ndarray:
    dtype = np.dtype(dtype_str)
    h, w = shape
    if light <= 0:
        img = np.full(shape, DARK_LEVEL, dtype=dtype)
    else:
        ramp = (
            np.arange(w, dtype=np.int64)[None, :]
            + 3 * np.arange(h, dtype=np.int64)[:, None]
            + 7 * z_step
        ) % 256
        scale = min(light, 400.0) / 100.0
        values = DARK_LEVEL + (ramp * 4 * scale).astype(np.int64)
        img = np.minimum(values, max_value).astype(dtype)
    img.setflags(write=False)
    return img


def expected_pattern(
    shape: tuple[int, int],
    dtype: np.dtype | type,
    z_um: float,
    light: float,
    bit_depth: int = 16,
) -> np.ndarray:
    """The frame the camera produces for this state, before the stamp."""
    max_value = (1 << bit_depth) - 1
    return _pattern(tuple(shape), np.dtype(dtype).str, round(z_um), light, max_value)


def stamp(buffer: np.ndarray, frame_number: int) -> None:
    """Write the frame number into the first bytes of the frame."""
    buffer.reshape(-1).view(np.uint8)[:STAMP_BYTES].view("<u8")[0] = frame_number


def read_stamp(frame: np.ndarray) -> int:
    """The frame number stamped into a frame."""
    flat = np.ascontiguousarray(frame).reshape(-1).view(np.uint8)
    return int.from_bytes(flat[:STAMP_BYTES].tobytes(), "little")


def unstamped(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The frame with its stamp bytes replaced by the reference's (to compare)."""
    out = np.array(frame, copy=True)
    out.reshape(-1).view(np.uint8)[:STAMP_BYTES] = (
        np.ascontiguousarray(reference).reshape(-1).view(np.uint8)[:STAMP_BYTES]
    )
    return out


# A frame lit by the rig's light: its brightest 0.1 % stands at least this far
# above the dark level (the simulated sample gives hundreds of counts even at
# low laser power; a frame taken with the light off reads exactly DARK_LEVEL).
LIT_SIGNAL = 20.0


def _pixels(frame: np.ndarray) -> np.ndarray:
    """The frame's pixels after the stamp, flat."""
    flat = np.ascontiguousarray(frame).reshape(-1)
    return flat[-(-STAMP_BYTES // flat.itemsize) :]


def light_signal(frame: np.ndarray) -> float:
    """Counts above the dark level of the frame's brightest 0.1 % (stamp
    excluded): a few beads in a 2048x2048 oblique slice still count."""
    return float(np.percentile(_pixels(frame), 99.9)) - DARK_LEVEL


def is_lit(frame: np.ndarray) -> bool:
    """Whether light reached the sample while this frame was exposed."""
    return light_signal(frame) >= LIT_SIGNAL


def is_dark(frame: np.ndarray) -> bool:
    """Whether every pixel (stamp excluded) reads the camera's dark level."""
    return bool(np.all(_pixels(frame) == DARK_LEVEL))
