"""Tests for mmapp.data.ndtiff_sink: round trips, validation, disk full, crashes.

Every dataset is read back through two independent readers: ndstorage (the
NDTiff.index) and tifffile (the TIFF IFD chain of the .tif file).
"""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ndstorage
import numpy as np
import pytest
import tifffile

from mmapp.data import file_io, ndtiff_sink
from mmapp.data.errors import (
    DuplicateCoordinatesError,
    InvalidFrameError,
    StorageWriteError,
)
from mmapp.data.ndtiff_sink import NDTiffSink

H, W = 16, 24


@pytest.fixture(autouse=True, params=["positional", "portable"])
def io_path(request, monkeypatch) -> str:
    """Every test runs on both write paths: pwritev (POSIX) and seek + writes
    (what Windows gets, forced here on Linux)."""
    if request.param == "positional" and not file_io.HAS_POSITIONAL_IO:
        pytest.skip("this OS has no os.pwritev")
    monkeypatch.setattr(file_io, "_portable", request.param == "portable")
    assert file_io.io_path() == request.param
    return request.param


class _OsWith:
    """The os module with some functions replaced (only where file_io sees it)."""

    def __init__(self, **functions: Any) -> None:
        self.__dict__.update(functions)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def pattern(i: int, dtype: Any = np.uint16, shape: tuple[int, int] = (H, W)):
    """A deterministic frame that differs at every pixel from its neighbours."""
    info = np.iinfo(dtype)
    n = shape[0] * shape[1]
    values = (np.arange(n, dtype=np.uint64) * 2654435761 + i * 7919 + 1) % (
        int(info.max) + 1
    )
    return values.astype(dtype).reshape(shape)


def key(coords: Mapping[str, Any]) -> frozenset:
    return frozenset(dict(coords).items())


def read_ndstorage(path: Path) -> tuple[dict, dict[frozenset, tuple]]:
    """(summary metadata, {coords: (image, metadata)}) through ndstorage."""
    ds = ndstorage.Dataset(str(path))
    try:
        images = {}
        for c in ds.get_image_coordinates_list():
            images[key(c)] = (np.array(ds.read_image(**c)), ds.read_metadata(**c))
        return ds.summary_metadata, images
    finally:
        ds.close()


def the_tif(path: Path) -> Path:
    tifs = sorted(Path(path).glob("*.tif"))
    assert len(tifs) == 1, f"expected one .tif in {path}, found {tifs}"
    return tifs[0]


def read_tifffile(path: Path) -> tuple[bool, list[np.ndarray]]:
    """(is_ndtiff, page arrays in file order) through tifffile."""
    with tifffile.TiffFile(the_tif(path)) as tf:
        return tf.is_ndtiff, [page.asarray() for page in tf.pages]


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def write_reference(directory: Path, frames: list[tuple[dict, np.ndarray, dict]]):
    """A clean dataset with these frames (name "run"), finished."""
    sink = NDTiffSink(directory, "run")
    for coords, image, md in frames:
        sink.put(coords, image, md)
    sink.finish()
    return sink.path


# --------------------------------------------------------------------------
# 1. round trip
# --------------------------------------------------------------------------

SUMMARY = {
    "Prefix": "run",
    "PixelSize_um": 0.65,
    "ChNames": ["DAPI", "FITC"],
    "Nested": {"a": [1, 2, 3], "b": None},
}


def _round_trip_frames(dtype: Any) -> list[tuple[dict, np.ndarray, dict]]:
    frames = []
    i = 0
    for t in range(2):
        for ch in ("DAPI", "FITC"):
            for z in range(2):
                coords = {"time": t, "channel": ch, "z": z}
                md = {
                    "index": i,
                    "Exposure-ms": 10.5,
                    "Camera": "Sim",
                    "gain": np.int64(3),  # numpy scalars become plain numbers
                    "list": [1, "two"],
                }
                frames.append((coords, pattern(i, dtype), md))
                i += 1
    return frames


def _write_round_trip(tmp: Path, dtype: Any) -> tuple[NDTiffSink, list]:
    frames = _round_trip_frames(dtype)
    sink = NDTiffSink(tmp / "data", "run", SUMMARY)
    for coords, image, md in frames:
        sink.put(coords, image, md)
    return sink, frames


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_through_ndstorage(tmp, dtype):
    sink, frames = _write_round_trip(tmp, dtype)
    for coords, _, _ in frames:
        assert sink.has(coords)
    assert not sink.has({"time": 5, "channel": "DAPI", "z": 0})
    sink.finish()
    assert sink.images_written == len(frames)

    summary, images = read_ndstorage(sink.path)
    assert summary == SUMMARY
    assert set(images) == {key(c) for c, _, _ in frames}
    for coords, image, md in frames:
        got, got_md = images[key(coords)]
        assert_same(got, image)
        expected_md = {**md, "gain": 3, "Axes": coords}
        assert got_md == expected_md
        assert got_md["Axes"] == coords

    # and through the sink's own reader after finish
    for coords, image, md in frames:
        got, got_md = sink.get(coords)
        assert_same(got, image)
        assert got_md["Axes"] == coords
        assert got_md["index"] == md["index"]
    with pytest.raises(KeyError, match="no image"):
        sink.get({"time": 9, "channel": "DAPI", "z": 0})


def test_round_trip_through_tifffile_uint16(tmp):
    sink, frames = _write_round_trip(tmp, np.uint16)
    sink.finish()
    is_ndtiff, pages = read_tifffile(sink.path)
    assert is_ndtiff
    assert len(pages) == len(frames)
    for page, (_, image, _) in zip(pages, frames, strict=True):
        assert_same(page, image)


def test_round_trip_through_tifffile_uint8(tmp):
    sink, frames = _write_round_trip(tmp, np.uint8)
    sink.finish()
    is_ndtiff, pages = read_tifffile(sink.path)
    assert is_ndtiff
    assert len(pages) == len(frames)
    for page, (_, image, _) in zip(pages, frames, strict=True):
        assert_same(page, image)
    with tifffile.TiffFile(the_tif(sink.path)) as tf:
        assert {page.bitspersample for page in tf.pages} == {8}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(H, W), (512, 512)], ids=["16x24", "512x512"])
def test_get_while_writing_reads_back_exact_images(tmp, shape, dtype):
    sink = NDTiffSink(tmp, "run")
    try:
        for t in range(3):
            sink.put({"time": t}, pattern(t, dtype, shape), {"t": t})
            for earlier in range(t + 1):  # the new image and every one before
                got, md = sink.get({"time": earlier})
                assert_same(got, pattern(earlier, dtype, shape))
                assert md == {"t": earlier, "Axes": {"time": earlier}}
    finally:
        sink.finish()


def test_string_metadata_is_written_verbatim(tmp):
    sink = NDTiffSink(tmp, "run")
    sink.put({"time": 0}, pattern(0), '{"raw": true}')
    sink.finish()
    _, images = read_ndstorage(sink.path)
    image, md = images[key({"time": 0})]
    assert_same(image, pattern(0))
    assert md == {"raw": True}


def test_summary_metadata_can_be_replaced_before_the_first_image(tmp):
    sink = NDTiffSink(tmp, "run", {"old": 1})
    sink.set_summary_metadata({"new": np.float32(2.5), "obj": object})
    sink.put({"time": 0}, pattern(0), {})
    with pytest.raises(RuntimeError, match="fixed"):
        sink.set_summary_metadata({"late": 1})
    sink.finish()
    summary, _ = read_ndstorage(sink.path)
    assert summary == {"new": 2.5, "obj": str(object)}


def test_unique_dataset_directories(tmp):
    a = NDTiffSink(tmp, "run")
    b = NDTiffSink(tmp, "run")
    assert a.path != b.path
    a.put({"time": 0}, pattern(1), {})
    b.put({"time": 0}, pattern(2), {})
    a.finish()
    b.finish()
    assert_same(read_ndstorage(a.path)[1][key({"time": 0})][0], pattern(1))
    assert_same(read_ndstorage(b.path)[1][key({"time": 0})][0], pattern(2))


def test_empty_dataset_directory_is_removed(tmp):
    sink = NDTiffSink(tmp, "run")
    assert sink.path.is_dir()
    with pytest.raises(InvalidFrameError):
        sink.put({"time": 0}, np.zeros((H, W), np.float32), {})
    sink.finish()
    assert not sink.path.exists()
    assert list(tmp.iterdir()) == []


def test_finish_is_idempotent_and_put_after_finish_fails(tmp):
    sink = NDTiffSink(tmp, "run")
    sink.put({"time": 0}, pattern(0), {})
    sink.finish()
    sink.finish()
    with pytest.raises(StorageWriteError, match="already finished"):
        sink.put({"time": 1}, pattern(1), {})
    _, images = read_ndstorage(sink.path)
    assert list(images) == [key({"time": 0})]
    # the .tif was truncated to its content (not the 4 GiB preallocation)
    assert the_tif(sink.path).stat().st_size < 10_000


def test_unwritable_directory_raises_storage_error(tmp):
    blocker = tmp / "file"
    blocker.write_text("x")
    with pytest.raises(StorageWriteError, match="cannot create the save directory"):
        NDTiffSink(blocker / "sub", "run")


# --------------------------------------------------------------------------
# 2. validation
# --------------------------------------------------------------------------

BAD_FRAMES = [
    pytest.param(np.zeros((H, W), np.float64), "float64", id="float64"),
    pytest.param(np.zeros((H, W), np.int16), "int16", id="int16"),
    pytest.param(np.zeros((H, W), ">u2"), "dtype", id="big-endian-uint16"),
    pytest.param(np.zeros((2, H, W), np.uint16), "2-D", id="3-D"),
    pytest.param(np.zeros(H * W, np.uint16), "2-D", id="1-D"),
    pytest.param(np.zeros((0, W), np.uint16), "empty", id="empty"),
    pytest.param([[1, 2], [3, 4]], "numpy array", id="list"),
    pytest.param(b"\x00" * (H * W * 2), "numpy array", id="bytes"),
    pytest.param(None, "numpy array", id="None"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_FRAMES)
def test_invalid_frame_is_refused_and_never_corrupts_later_frames(tmp, bad, message):
    sink = NDTiffSink(tmp, "run")
    sink.put({"time": 0}, pattern(0), {"i": 0})
    with pytest.raises(InvalidFrameError, match=message):
        sink.put({"time": 1}, bad, {"i": "bad"})
    assert sink.failed is None
    assert sink.images_written == 1
    assert not sink.has({"time": 1})
    # the same coordinates are still free, and later frames are intact
    sink.put({"time": 1}, pattern(1), {"i": 1})
    sink.put({"time": 2}, pattern(2), {"i": 2})
    sink.finish()

    _, images = read_ndstorage(sink.path)
    assert set(images) == {key({"time": t}) for t in range(3)}
    for t in range(3):
        image, md = images[key({"time": t})]
        assert_same(image, pattern(t))
        assert md == {"i": t, "Axes": {"time": t}}
    is_ndtiff, pages = read_tifffile(sink.path)
    assert is_ndtiff
    assert len(pages) == 3
    for t, page in enumerate(pages):
        assert_same(page, pattern(t))


def test_invalid_first_frame_leaves_no_trace(tmp):
    sink = NDTiffSink(tmp, "run")
    with pytest.raises(InvalidFrameError, match="2-D"):
        sink.put({"time": 0}, np.zeros((3, H, W), np.uint16), {})
    sink.put({"time": 0}, pattern(5), {})
    sink.finish()
    _, images = read_ndstorage(sink.path)
    assert list(images) == [key({"time": 0})]
    assert_same(images[key({"time": 0})][0], pattern(5))
    assert len(read_tifffile(sink.path)[1]) == 1


def _non_contiguous_views(dtype: Any) -> dict[str, np.ndarray]:
    wide = pattern(11, dtype, (H, 2 * W))
    tall = pattern(12, dtype, (W, H))
    return {
        "every-other-column": wide[:, ::2],
        "transposed": tall.T,
        "fortran-order": np.asfortranarray(pattern(13, dtype)),
        "reversed-rows": pattern(14, dtype)[::-1],
        "broadcast-row": np.broadcast_to(pattern(15, dtype, (1, W)), (H, W)),
    }


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_non_contiguous_frames_are_copied_and_written_correctly(tmp, dtype):
    views = _non_contiguous_views(dtype)
    for view in views.values():
        assert view.shape == (H, W)
        assert not view.flags.c_contiguous
    expected = {name: np.array(view, copy=True) for name, view in views.items()}

    sink = NDTiffSink(tmp, "run")
    for t, view in enumerate(views.values()):
        sink.put({"time": t}, view, {})
    sink.put({"time": len(views)}, pattern(99, dtype), {})  # a later normal frame
    sink.finish()

    for name, view in views.items():  # the caller's arrays are untouched
        assert_same(np.array(view), expected[name])
    _, images = read_ndstorage(sink.path)
    for t, name in enumerate(views):
        assert_same(images[key({"time": t})][0], expected[name])
    assert_same(images[key({"time": len(views)})][0], pattern(99, dtype))
    pages = read_tifffile(sink.path)[1]
    assert len(pages) == len(views) + 1
    for page, name in zip(pages, views, strict=False):
        assert_same(page, expected[name])
    assert_same(pages[-1], pattern(99, dtype))


# --------------------------------------------------------------------------
# 3. duplicates
# --------------------------------------------------------------------------


def test_duplicate_coordinates_are_refused(tmp):
    sink = NDTiffSink(tmp, "run")
    sink.put({"time": 0, "channel": "DAPI"}, pattern(0), {"first": True})
    with pytest.raises(DuplicateCoordinatesError, match="already in"):
        sink.put({"time": 0, "channel": "DAPI"}, pattern(1), {"first": False})
    # axis order does not matter
    with pytest.raises(DuplicateCoordinatesError):
        sink.put({"channel": "DAPI", "time": 0}, pattern(2), {"first": False})
    assert sink.failed is None
    assert sink.images_written == 1
    sink.put({"time": 0, "channel": "FITC"}, pattern(3), {"first": True})
    sink.finish()

    _, images = read_ndstorage(sink.path)
    assert len(images) == 2
    image, md = images[key({"time": 0, "channel": "DAPI"})]
    assert_same(image, pattern(0))
    assert md["first"] is True
    assert_same(images[key({"time": 0, "channel": "FITC"})][0], pattern(3))
    pages = read_tifffile(sink.path)[1]
    assert len(pages) == 2
    assert_same(pages[0], pattern(0))
    assert_same(pages[1], pattern(3))


# --------------------------------------------------------------------------
# 4. disk full
# --------------------------------------------------------------------------

# Every image (IFD, pixels, metadata) reaches the file through ONE call of
# ndtiff_sink.write_gathered (an os.pwritev loop): that is where the disk fills.
REAL_WRITE_GATHERED = ndtiff_sink.write_gathered

STOPS = ["before-ifd", "in-ifd", "in-pixels", "in-metadata"]


def bytes_before_stop(stop: str, lengths: list[int]) -> int:
    """How many bytes of one image (IFD, pixels, metadata) reach the disk."""
    ifd, pixels, metadata = lengths
    n = {
        "before-ifd": 0,
        "in-ifd": ifd // 2,
        "in-pixels": ifd + pixels // 2,
        "in-metadata": ifd + pixels + metadata // 2,
    }[stop]
    assert n < sum(lengths)
    return n


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class DiskFullWrites:
    """Stand-in for write_gathered: from image call `fail_at` on, the disk is full.

    The first failing call stores the first bytes of the image (up to `stop`)
    at the image's offset, a partial write, then raises ENOSPC; every later
    call raises at once (the disk stays full).
    """

    def __init__(self, fail_at: int, stop: str, sink: NDTiffSink | None = None):
        self.fail_at = fail_at
        self.stop = stop
        self.sink = sink
        self.calls = 0
        self.failures = 0
        self.partial: tuple[str, int, bytes] | None = None  # file, offset, bytes

    def __call__(self, fd: int, chunks: list[memoryview], offset: int) -> None:
        call = self.calls
        self.calls += 1
        if call < self.fail_at:
            return REAL_WRITE_GATHERED(fd, chunks, offset)
        lengths = [len(c) for c in chunks]
        assert len(lengths) == 3, "one call per image: IFD, pixels, metadata"
        if self.failures == 0:
            data = b"".join(chunks)[: bytes_before_stop(self.stop, lengths)]
            assert file_io.write_at(fd, memoryview(data), offset) == len(data)
            filename = self.sink._writer.filename if self.sink else ""
            self.partial = (filename, offset, data)
        self.failures += 1
        raise enospc()


def _frames(n: int) -> list[tuple[dict, np.ndarray, dict]]:
    return [({"time": t}, pattern(t), {"t": t}) for t in range(n)]


def assert_only_good_images(
    sink: NDTiffSink, reference: Path, frames: list[tuple[dict, np.ndarray, dict]]
) -> None:
    """The finished dataset holds exactly `frames`, byte for byte as `reference`."""
    _, images = read_ndstorage(sink.path)
    assert set(images) == {key(c) for c, _, _ in frames}
    for c, img, m in frames:
        got, got_md = images[key(c)]
        assert_same(got, img)
        assert got_md == {**m, "Axes": c}

    is_ndtiff, pages = read_tifffile(sink.path)
    assert is_ndtiff
    assert len(pages) == len(frames)  # no trailing garbage page
    for page, (_, img, _) in zip(pages, frames, strict=True):
        assert_same(page, img)

    # byte for byte what a clean run with only those images writes
    assert the_tif(sink.path).read_bytes() == the_tif(reference).read_bytes()
    assert (sink.path / "NDTiff.index").read_bytes() == (
        reference / "NDTiff.index"
    ).read_bytes()


@pytest.mark.parametrize("written_before", [1, 3])
@pytest.mark.parametrize("stop", STOPS)
def test_disk_full_keeps_earlier_images(tmp, monkeypatch, written_before, stop):
    frames = _frames(written_before + 2)
    sink = NDTiffSink(tmp / "data", "run")
    disk = DiskFullWrites(written_before, stop, sink)
    monkeypatch.setattr(ndtiff_sink, "write_gathered", disk)
    for coords, image, md in frames[:written_before]:
        sink.put(coords, image, md)
    assert (disk.calls, disk.failures) == (written_before, 0)

    coords, image, md = frames[written_before]
    with pytest.raises(StorageWriteError) as first:
        sink.put(coords, image, md)
    assert disk.failures == 1  # the failure happened inside the image write
    message = str(first.value)
    assert "the disk is full" in message
    assert f"after {written_before} images" in message
    assert isinstance(first.value.__cause__, OSError)
    assert first.value.__cause__.errno == errno.ENOSPC
    assert sink.failed is first.value
    assert sink.images_written == written_before
    assert not sink.has(coords)
    # the partial image really is on disk (finish must cut it off)
    filename, offset, stored = disk.partial
    with open(filename, "rb") as f:
        f.seek(offset)
        assert f.read(len(stored)) == stored

    # every later put reports the same failure, without touching the file
    with pytest.raises(StorageWriteError) as later:
        sink.put(*frames[written_before + 1])
    assert str(later.value) == message
    assert disk.calls == written_before + 1

    sink.finish()
    monkeypatch.undo()
    reference = write_reference(tmp / "reference", frames[:written_before])
    assert_only_good_images(sink, reference, frames[:written_before])


class FullDisk:
    """os.pwritev onto a disk that fills up during the next image.

    The disk has room for `stop` bytes of the next image written: the call
    crossing that limit stores what fits and returns a short count (no error),
    the next call, at the limit, fails with ENOSPC, as a real full disk does.
    """

    def __init__(self, stop: str) -> None:
        self.stop = stop
        self.limit: int | None = None
        self.calls: list[tuple[int, int]] = []  # (bytes asked, bytes written)

    def __call__(self, fd: int, buffers: Any, offset: int) -> int:
        chunks = [memoryview(b).cast("B") for b in buffers]
        asked = sum(len(c) for c in chunks)
        if self.limit is None:  # the first call writes the whole image
            lengths = [len(c) for c in chunks]
            assert len(lengths) == 3
            self.limit = offset + bytes_before_stop(self.stop, lengths)
        if offset >= self.limit:
            self.calls.append((asked, -1))
            raise enospc()
        data = b"".join(chunks)[: self.limit - offset]
        written = file_io.write_at(fd, memoryview(data), offset)
        self.calls.append((asked, written))
        return written


@pytest.mark.parametrize("stop", STOPS[1:])  # a short write stores something
def test_disk_full_with_a_short_write_keeps_earlier_images(
    tmp, monkeypatch, stop, io_path
):
    if io_path == "portable":
        pytest.skip("pwritev only; the portable path: test_portable_disk_full_*")
    frames = _frames(4)
    sink = NDTiffSink(tmp / "data", "run")
    for coords, image, md in frames[:2]:
        sink.put(coords, image, md)
    disk = FullDisk(stop)
    monkeypatch.setattr(ndtiff_sink.os, "pwritev", disk)

    with pytest.raises(StorageWriteError, match="the disk is full") as exc:
        sink.put(*frames[2])
    assert "after 2 images" in str(exc.value)
    # one short write (no error), then ENOSPC on the rest
    assert len(disk.calls) == 2
    (asked, written), (rest, failed) = disk.calls
    assert 0 < written < asked
    assert (rest, failed) == (asked - written, -1)
    assert sink.images_written == 2
    assert not sink.has(frames[2][0])
    with pytest.raises(StorageWriteError, match="the disk is full"):
        sink.put(*frames[3])
    assert len(disk.calls) == 2

    sink.finish()  # the rollback ran: finish neither fails nor keeps garbage
    monkeypatch.undo()
    reference = write_reference(tmp / "reference", frames[:2])
    assert_only_good_images(sink, reference, frames[:2])


def test_short_writes_that_succeed_are_continued(tmp, monkeypatch, io_path):
    """A short pwritev is not an error: write_gathered writes the rest."""
    if io_path == "portable":
        pytest.skip("pwritev only; the portable path: test_portable_short_writes_*")
    real_pwritev = os.pwritev
    calls = []

    def dribble(fd: int, buffers: Any, offset: int) -> int:
        chunks = [memoryview(b).cast("B") for b in buffers]
        data = b"".join(chunks)[:7]  # odd: short writes end inside every part
        calls.append(len(data))
        return real_pwritev(fd, [data], offset)

    frames = _frames(3)
    monkeypatch.setattr(ndtiff_sink.os, "pwritev", dribble)
    sink = NDTiffSink(tmp / "data", "run")
    for coords, image, md in frames:
        sink.put(coords, image, md)
        got, got_md = sink.get(coords)
        assert_same(got, image)
        assert got_md == {**md, "Axes": coords}
    sink.finish()
    monkeypatch.undo()
    assert len(calls) > 3 * (H * W * 2) // 7
    reference = write_reference(tmp / "reference", frames)
    assert_only_good_images(sink, reference, frames)


def test_portable_short_writes_are_continued_one_write_per_image(
    tmp, monkeypatch, io_path
):
    """Seek + write: a short os.write is continued; one call starts each image."""
    if io_path != "portable":
        pytest.skip("the portable path's own test")
    monkeypatch.setattr(file_io, "_portable", True)
    calls: list[int] = []
    real_write = os.write

    def dribble(fd: int, data: Any) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(memoryview(data)[:7]))

    frames = _frames(3)
    sink = NDTiffSink(tmp / "data", "run")
    monkeypatch.setattr(file_io, "os", _OsWith(write=dribble))
    for coords, image, md in frames:
        before = len(calls)
        sink.put(coords, image, md)
        asked = calls[before]  # the first call asked for the whole image
        assert asked > H * W * 2
        got, got_md = sink.get(coords)
        assert_same(got, image)
        assert got_md == {**md, "Axes": coords}
    sink.finish()
    monkeypatch.undo()
    reference = write_reference(tmp / "reference", frames)
    assert_only_good_images(sink, reference, frames)


def test_portable_disk_full_keeps_earlier_images(tmp, monkeypatch, io_path):
    """Seek + write onto a disk that fills in the middle of the third image."""
    if io_path != "portable":
        pytest.skip("the portable path's own test")
    monkeypatch.setattr(file_io, "_portable", True)
    frames = _frames(4)
    sink = NDTiffSink(tmp / "data", "run")
    for coords, image, md in frames[:2]:
        sink.put(coords, image, md)
    limit: list[int] = []
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        if not limit:
            limit.append(pos + len(data) // 2)
        room = limit[0] - pos
        if room <= 0:
            raise enospc()
        return real_write(fd, bytes(memoryview(data)[:room]))

    monkeypatch.setattr(file_io, "os", _OsWith(write=full))
    with pytest.raises(StorageWriteError, match="the disk is full") as exc:
        sink.put(*frames[2])
    assert "after 2 images" in str(exc.value)
    assert not sink.has(frames[2][0])
    sink.finish()
    monkeypatch.undo()
    reference = write_reference(tmp / "reference", frames[:2])
    assert_only_good_images(sink, reference, frames[:2])


@pytest.mark.parametrize("stop", STOPS)
def test_disk_full_on_first_image_leaves_nothing(tmp, monkeypatch, stop):
    disk = DiskFullWrites(0, stop)
    monkeypatch.setattr(ndtiff_sink, "write_gathered", disk)
    sink = NDTiffSink(tmp, "run")
    with pytest.raises(StorageWriteError, match="the disk is full") as exc:
        sink.put({"time": 0}, pattern(0), {})
    assert "after 0 images" in str(exc.value)
    assert disk.failures == 1
    assert not sink.has({"time": 0})
    # the half-written file is gone at once
    assert list(sink.path.glob("*.tif")) == []
    with pytest.raises(StorageWriteError, match="the disk is full"):
        sink.put({"time": 1}, pattern(1), {})
    sink.finish()
    assert not sink.path.exists()
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("stop", STOPS)
def test_disk_full_on_first_image_of_a_new_file(tmp, monkeypatch, stop):
    # at most two images per .tif file, so the third one opens a second file
    monkeypatch.setattr(
        ndtiff_sink.GatheredWriter,
        "has_space_to_write",
        lambda self, pixels, metadata: self.images < 2,
    )
    frames = _frames(4)
    sink = NDTiffSink(tmp / "data", "run")
    disk = DiskFullWrites(2, stop, sink)
    monkeypatch.setattr(ndtiff_sink, "write_gathered", disk)
    for coords, image, md in frames[:2]:
        sink.put(coords, image, md)
    first_file = sink._writer.filename

    with pytest.raises(StorageWriteError, match="the disk is full") as exc:
        sink.put(*frames[2])
    assert "after 2 images" in str(exc.value)
    new_file = disk.partial[0]
    assert new_file != first_file  # the failure was in the new file ...
    assert not Path(new_file).exists()  # ... which is deleted
    with pytest.raises(StorageWriteError, match="the disk is full"):
        sink.put(*frames[3])
    sink.finish()

    assert [p.name for p in sink.path.glob("*.tif")] == [Path(first_file).name]
    monkeypatch.setattr(ndtiff_sink, "write_gathered", REAL_WRITE_GATHERED)
    reference = write_reference(tmp / "reference", frames[:2])
    assert_only_good_images(sink, reference, frames[:2])


class FullDiskRaw(io.FileIO):
    """A raw file on a disk with room up to `limit`: a write crossing it is
    short, a write at it fails with ENOSPC (`limit` None: room again)."""

    limit: int | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        pos = self.tell()
        if self.limit is None or pos + len(view) <= self.limit:
            return super().write(view)
        if pos < self.limit:
            return super().write(view[: self.limit - pos])  # short write
        raise enospc()


@pytest.mark.parametrize("room", ["partial-entry", "room-again-at-finish"])
def test_disk_full_while_writing_the_index_keeps_earlier_images(tmp, room):
    frames = _frames(3)
    sink = NDTiffSink(tmp / "data", "run")
    for coords, image, md in frames[:2]:
        sink.put(coords, image, md)
    old = sink._index_file
    old.flush()
    raw = FullDiskRaw(str(sink.path / "NDTiff.index"), "r+")
    raw.seek(old.tell())
    raw.limit = raw.tell() + (10 if room == "partial-entry" else 0)
    sink._index_file = io.BufferedWriter(raw)
    old.close()

    with pytest.raises(StorageWriteError, match="the disk is full") as exc:
        sink.put(*frames[2])
    assert "after 2 images" in str(exc.value)
    assert sink.images_written == 2
    assert not sink.has(frames[2][0]), "the failed image is still indexed"
    if room == "room-again-at-finish":
        raw.limit = None
    try:
        sink.finish()
    except StorageWriteError as error:
        raise AssertionError(f"finish() failed: {error}") from error
    try:
        reference = write_reference(tmp / "reference", frames[:2])
        assert_only_good_images(sink, reference, frames[:2])
    except Exception as error:  # ndstorage cannot parse the index
        raise AssertionError(f"dataset unreadable: {error!r}") from error


# --------------------------------------------------------------------------
# 5. crash safety
# --------------------------------------------------------------------------

CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from mmapp.data.ndtiff_sink import NDTiffSink

    n = int(sys.argv[2])
    sink = NDTiffSink(sys.argv[1], "crash", {"n": n})
    for t in range(n):
        image = ((np.arange(16 * 24) * 7 + t * 131) % 65536).astype(np.uint16)
        sink.put({"time": t, "channel": "DAPI"}, image.reshape(16, 24), {"t": t})
    print("READY", sink.path, flush=True)
    threading.Event().wait()  # never finish: killed here
    """
)


def _crash_image(t: int) -> np.ndarray:
    image = ((np.arange(16 * 24) * 7 + t * 131) % 65536).astype(np.uint16)
    return image.reshape(16, 24)


@pytest.mark.posix
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_sigkill_loses_no_indexed_image(tmp, io_path):
    n = 30
    env = {**os.environ, "MMAPP_PORTABLE_IO": "1" if io_path == "portable" else ""}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(tmp), str(n)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), (line, proc.stderr.read())
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    path = Path(line.split(maxsplit=1)[1].strip())
    assert path.parent == tmp

    summary, images = read_ndstorage(path)
    assert summary == {"n": n}
    # the index is flushed after every image: at most the one being written may
    # be missing, and here every put had returned before the kill
    assert len(images) >= n - 1
    assert set(images) == {key({"time": t, "channel": "DAPI"}) for t in range(n)}
    for t in range(n):
        image, md = images[key({"time": t, "channel": "DAPI"})]
        assert_same(image, _crash_image(t))
        assert md == {"t": t, "Axes": {"time": t, "channel": "DAPI"}}


def test_portable_writes_large_pixels_from_their_own_memory(tmp, monkeypatch, io_path):
    """Seek + write (Windows): pixels of DIRECT_WRITE_BYTES (4 MiB) and more go
    to `os.write` as they are (a C++ camera's popped frame is copied once, by
    the pop), smaller parts are joined; such frames read back pixel-exact."""
    if io_path != "portable":
        pytest.skip("the portable path's own test")
    shape = (2048, 1024)  # 4 MiB per frame: DIRECT_WRITE_BYTES
    assert shape[0] * shape[1] * 2 >= file_io.DIRECT_WRITE_BYTES
    frames = [({"time": t}, pattern(t, shape=shape), {"t": t}) for t in range(3)]
    real_write = os.write
    calls: list[tuple[int, Any]] = []

    def spy(fd: int, data: Any) -> int:
        calls.append((len(data), memoryview(data).obj))
        return real_write(fd, data)

    sink = NDTiffSink(tmp / "data", "run")
    monkeypatch.setattr(file_io, "os", _OsWith(write=spy))
    sink.put(*frames[0])
    assert sink.put_run(frames[1:])
    sink.finish()
    monkeypatch.undo()
    images = [image for _, image, _ in frames]
    pixel_calls = [obj for n, obj in calls if n == images[0].nbytes]
    assert len(pixel_calls) == len(frames)  # one direct write per frame
    for obj, image in zip(pixel_calls, images, strict=True):
        assert np.shares_memory(np.asarray(obj), image)  # not a copy
    small = [n for n, _ in calls if n != images[0].nbytes]
    assert all(n < file_io.DIRECT_WRITE_BYTES for n in small)
    # a header joined to the metadata before it; the file header and the put
    assert len(calls) <= 2 * len(frames) + 4
    reference = write_reference(tmp / "reference", frames)
    assert_only_good_images(sink, reference, frames)


def test_portable_joins_frames_just_under_the_direct_size(tmp, monkeypatch, io_path):
    """Seek + write: a run of frames a row short of DIRECT_WRITE_BYTES goes out
    in one joined write (a call per frame measured slower), pixel-exact."""
    if io_path != "portable":
        pytest.skip("the portable path's own test")
    shape = (2047, 1024)  # 2 KiB under 4 MiB
    assert shape[0] * shape[1] * 2 < file_io.DIRECT_WRITE_BYTES
    frames = [({"time": t}, pattern(t, shape=shape), {"t": t}) for t in range(2)]
    real_write = os.write
    sizes: list[int] = []

    def spy(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    sink = NDTiffSink(tmp / "data", "run")
    monkeypatch.setattr(file_io, "os", _OsWith(write=spy))
    assert sink.put_run(frames)
    sink.finish()
    monkeypatch.undo()
    pixels = frames[0][1].nbytes
    assert max(sizes) > 2 * pixels  # both frames, headers and metadata: one write
    assert pixels not in sizes
    reference = write_reference(tmp / "reference", frames)
    assert_only_good_images(sink, reference, frames)
