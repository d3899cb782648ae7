"""The NDTiff sink's memory and open files do not grow with the run (issue 15:
8, 9): coordinates kept as integer runs, the latest index entries only, a
finished .tif file closed at once; and files written into the folder at the
start (the preset) are whole and go with an empty run."""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmapp.data import ndtiff_sink
from mmapp.data.coordinate_set import CoordinateSet
from mmapp.data.ndtiff_sink import RECENT_ENTRIES, NDTiffSink


def tiny(t: int) -> np.ndarray:
    return np.full((2, 3), t % 65536, np.uint16)


coords_strategy = st.fixed_dictionaries(
    {"time": st.integers(0, 12), "z": st.integers(0, 3)},
    optional={"channel": st.sampled_from(["488", "561"])},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), coords_strategy), max_size=60))
def test_coordinate_set_behaves_as_a_set(operations):
    ours, reference = CoordinateSet(), set()
    for add, coords in operations:
        key = frozenset(coords.items())
        if add:
            assert ours.add(coords) == (key not in reference)
            reference.add(key)
        else:
            ours.discard(coords)
            reference.discard(key)
        assert len(ours) == len(reference)
    for _, coords in operations:
        assert (coords in ours) == (frozenset(coords.items()) in reference)


def test_a_loop_costs_one_run_per_channel(tmp):
    sink = NDTiffSink(tmp, "loop")
    for t in range(3 * RECENT_ENTRIES):
        for channel in ("488", "561"):
            sink.put({"time": t, "channel": channel}, tiny(t), {"t": t})
    assert sink._written.runs() == 2
    assert len(sink._recent) == RECENT_ENTRIES
    assert sink.has({"time": 0, "channel": "561"})
    assert not sink.has({"time": 3 * RECENT_ENTRIES, "channel": "561"})
    # an old frame is found in NDTiff.index on disk, a recent one in RAM
    for t in (0, 5, 3 * RECENT_ENTRIES - 1):
        image, md = sink.get({"time": t, "channel": "488"})
        np.testing.assert_array_equal(image, tiny(t))
        assert md == {"t": t, "Axes": {"time": t, "channel": "488"}}
    with pytest.raises(KeyError, match="no image"):
        sink.get({"time": 0, "channel": "405"})
    sink.finish()


def test_memory_does_not_grow_with_frames(tmp):
    sink = NDTiffSink(tmp, "mem")
    # the warm-up fills the recent entries and lets every buffer reach its size
    # (one-off growth of ~55 kB); traced from the start, so that what it
    # allocates and later frees is counted both ways
    warm, n = RECENT_ENTRIES + 4000, 4000
    tracemalloc.start()
    try:
        for t in range(warm):
            sink.put({"time": t}, tiny(t), {"t": t})
        before = tracemalloc.get_traced_memory()[0]
        for t in range(warm, warm + n):
            sink.put({"time": t}, tiny(t), {"t": t})
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    sink.finish()
    # ndstorage's own dataset kept ~830 bytes per frame (3.3 MB here)
    assert grown < n, f"{grown / n:.1f} bytes per frame"


def _open_in(path: Path) -> int:
    """Descriptors of this process open on files in `path` (Linux /proc)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in os.listdir(fds):
        try:
            target = os.readlink(fds / fd)
        except OSError:
            continue
        count += target.startswith(str(path))
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_finished_files_are_closed(tmp, monkeypatch):
    monkeypatch.setattr(
        ndtiff_sink.GatheredWriter,
        "has_space_to_write",
        lambda self, pixels, metadata: self.images < 2,
    )
    sink = NDTiffSink(tmp, "files")
    for t in range(40):
        sink.put({"time": t}, tiny(t), {"t": t})
        assert _open_in(sink.path) == sink.open_files() == 2  # this .tif + index
    assert len(list(sink.path.glob("*.tif"))) == 20
    image, _ = sink.get({"time": 1})  # in a closed file: opened for the read
    np.testing.assert_array_equal(image, tiny(1))
    assert _open_in(sink.path) == 2
    sink.finish()
    assert _open_in(sink.path) == sink.open_files() == 0


def test_start_files_are_there_before_any_image(tmp):
    sink = NDTiffSink(tmp, "run", start_files={"preset.mmpreset": '{"a": 1}\n'})
    assert (sink.path / "preset.mmpreset").read_text() == '{"a": 1}\n'
    assert sorted(p.name for p in sink.path.iterdir()) == [
        "NDTiff.index",
        "preset.mmpreset",
    ]
    sink.put({"time": 0}, tiny(0), {})
    sink.finish()
    assert (sink.path / "preset.mmpreset").is_file()


def test_a_run_that_saved_nothing_leaves_no_folder(tmp):
    sink = NDTiffSink(tmp, "run", start_files={"preset.mmpreset": "{}\n"})
    sink.finish()
    assert list(tmp.iterdir()) == []
