"""Which coordinates a dataset already holds, in memory that does not grow
with the length of the run.

A run's coordinates are regular: a loop counts `time` up for every other
combination of axes. Each combination of the other axes keeps its values of
the counting axis as runs of consecutive integers, so a loop of any length
costs a few numbers per combination, not an entry per image.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping

COUNTING_AXIS = "time"  # the axis a loop counts up; else the last integer axis


def _split(coords: Mapping[str, int | str]) -> tuple[tuple, int]:
    """(the other axes as a hashable group, the counting axis's value)."""
    if len(coords) == 1 and type(value := coords.get(COUNTING_AXIS)) is int:
        return (), value  # a stream's frames: time alone (checked per frame)
    items = sorted(coords.items())
    counting = None
    if isinstance(coords.get(COUNTING_AXIS), int):
        counting = COUNTING_AXIS
    else:
        ints = [k for k, v in items if isinstance(v, int) and not isinstance(v, bool)]
        counting = ints[-1] if ints else None
    if counting is None:
        return tuple(items), 0
    return tuple(kv for kv in items if kv[0] != counting), int(coords[counting])


class CoordinateSet:
    """A set of coordinate mappings stored as runs of consecutive integers."""

    def __init__(self) -> None:
        # group -> [start0, end0, start1, end1, ...]: sorted half-open runs
        self._runs: dict[tuple, list[int]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, coords: object) -> bool:
        if not isinstance(coords, Mapping):
            return False
        group, value = _split(coords)
        bounds = self._runs.get(group)
        return bounds is not None and bisect_right(bounds, value) % 2 == 1

    def add(self, coords: Mapping[str, int | str]) -> bool:
        """Add; False if the coordinates were already there."""
        group, v = _split(coords)
        bounds = self._runs.setdefault(group, [])
        i = bisect_right(bounds, v)
        if i % 2 == 1:
            return False
        joins_left = i > 0 and bounds[i - 1] == v
        joins_right = i < len(bounds) and bounds[i] == v + 1
        if joins_left and joins_right:
            del bounds[i - 1 : i + 1]  # the two runs become one
        elif joins_left:
            bounds[i - 1] = v + 1
        elif joins_right:
            bounds[i] = v
        else:
            bounds[i:i] = [v, v + 1]
        self._count += 1
        return True

    def discard(self, coords: Mapping[str, int | str]) -> None:
        """Remove the coordinates if they are there."""
        group, v = _split(coords)
        bounds = self._runs.get(group)
        if bounds is None:
            return
        i = bisect_right(bounds, v)
        if i % 2 == 0:
            return
        start, end = bounds[i - 1], bounds[i]
        if start == v and end == v + 1:
            del bounds[i - 1 : i + 1]
        elif start == v:
            bounds[i - 1] = v + 1
        elif end == v + 1:
            bounds[i] = v
        else:
            bounds[i:i] = [v, v + 1]  # [start, v) and [v + 1, end)
        if not bounds:
            del self._runs[group]
        self._count -= 1

    def runs(self) -> int:
        """How many runs are stored (what the memory grows with)."""
        return sum(len(b) for b in self._runs.values()) // 2
