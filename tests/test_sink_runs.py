"""Runs of frames written with one gathered write (NDTiffSink.put_run, issue 17):
the same bytes as frame-by-frame puts, ndstorage's own IFD layout, and a run
that cannot go in one piece is refused with nothing written."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from ndstorage.ndtiff_file import SingleNDTiffWriter

from mmapp.data import ndtiff_sink
from mmapp.data.ndtiff_ifd import pack_ifd
from mmapp.data.ndtiff_index import axes_json
from mmapp.data.ndtiff_sink import NDTiffSink, ordered_axes


def frame(t: int, dtype: type = np.uint16, shape: tuple[int, int] = (6, 5)):
    top = np.iinfo(dtype).max
    return (
        ((np.arange(shape[0] * shape[1]) * 37 + t * 101) % top)
        .astype(dtype)
        .reshape(shape)
    )


def frames(n: int, dtype: type = np.uint16) -> list[tuple[dict, np.ndarray, dict]]:
    # metadata of varying length: odd ones make the next IFD skip a byte
    return [({"time": t}, frame(t, dtype), {"t": t, "pad": "x" * t}) for t in range(n)]


def finished(sink: NDTiffSink) -> dict[str, bytes]:
    sink.finish()
    return {p.name: p.read_bytes() for p in sorted(sink.path.iterdir())}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_run_writes_the_bytes_of_frame_by_frame_puts(tmp_path, dtype):
    data = frames(7, dtype)
    one_by_one = NDTiffSink(tmp_path / "a", "run")
    for item in data:
        one_by_one.put(*item)
    in_runs = NDTiffSink(tmp_path / "b", "run")
    in_runs.put(*data[0])  # the file exists: runs go into it
    assert in_runs.put_run(data[1:4])
    assert in_runs.put_run(data[4:])
    assert in_runs.images_written == 7
    for coords, image, md in data:  # from RAM (recent) and from the file
        got, got_md = in_runs.get(coords)
        np.testing.assert_array_equal(got, image)
        assert got_md == {**md, "Axes": coords}
    assert finished(in_runs) == finished(one_by_one)


def test_a_first_run_opens_the_file(tmp_path):
    data = frames(3)
    sink = NDTiffSink(tmp_path, "run")
    assert sink.put_run(data)
    reference = NDTiffSink(tmp_path / "ref", "run")
    for item in data:
        reference.put(*item)
    assert finished(sink) == finished(reference)


@pytest.mark.parametrize(
    "bad",
    ["invalid frame", "duplicate in the run", "already written"],
)
def test_a_run_that_cannot_go_in_one_piece_writes_nothing(tmp_path, bad):
    data = frames(4)
    sink = NDTiffSink(tmp_path, "run")
    sink.put(*data[0])
    run = data[1:]
    if bad == "invalid frame":
        run[1] = (run[1][0], np.zeros((2, 2), np.float32), {})
    elif bad == "duplicate in the run":
        run[2] = (run[0][0], run[2][1], {})
    else:
        run[2] = data[0]
    index_before = (sink.path / "NDTiff.index").read_bytes()
    assert sink.put_run(run) is False
    assert sink.images_written == 1
    assert (sink.path / "NDTiff.index").read_bytes() == index_before
    assert not sink.has(data[1][0])
    sink.put(*data[1])  # the sink goes on as if the run had never come
    assert sink.images_written == 2


def test_a_failed_run_write_is_rolled_back(tmp_path, monkeypatch):
    data = frames(5)
    sink = NDTiffSink(tmp_path, "run")
    sink.put(*data[0])

    def full(fd, chunks, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ndtiff_sink, "write_gathered", full)
    assert sink.put_run(data[1:]) is False
    assert sink.failed is None  # put() of the first frame will say why
    monkeypatch.undo()
    for item in data[1:]:
        sink.put(*item)
    reference = NDTiffSink(tmp_path / "ref", "run")
    for item in data:
        reference.put(*item)
    assert finished(sink) == finished(reference)


@pytest.mark.parametrize("md_length", [10, 11])
def test_pack_ifd_is_ndstorages_layout(tmp_path, md_length):
    """The IFD ndstorage's own writer builds for a uint16 image at an offset."""
    writer = SingleNDTiffWriter(str(tmp_path), "x.tif", {})
    try:
        writer.file.seek(1000)
        pixels = frame(0, np.uint16, (7, 9))
        entry = writer._write_ifd(
            frozenset({("time", 0)}), pixels, b"m" * md_length, False, 7, 9, 16
        )
        theirs = bytes(writer.buffers[0])
        location = writer.next_ifd_offset_location
    finally:
        writer.file.close()
        writer.reader.close()
    ours = pack_ifd(1000, 7, 9, 2, md_length)
    assert ours.ifd == theirs
    assert ours.pixel_offset == entry.pix_offset
    assert ours.metadata_offset == entry.metadata_offset
    assert ours.next_ifd_offset_location == location
    next_ifd = struct.unpack_from("<I", theirs, 2 + 13 * 12)[0]
    assert ours.next_ifd_offset == next_ifd and next_ifd % 2 == 0
    Path(tmp_path / "x.tif").unlink()


@pytest.mark.parametrize(
    "axes",
    [
        {"time": 3},
        {"position": 0, "time": 12, "channel": "DAPI é"},
        {"z": -1, "channel": 'a"b\\c'},
        {"time": 2**40, "flag": True},
        {},
    ],
)
def test_index_axes_are_the_bytes_json_writes(axes):
    """The index entry's axes, built from cached per-name prefixes, are the
    bytes json.dumps gives (what ndstorage writes), asked twice (cached)."""
    expected = json.dumps(axes).encode("utf-8")
    assert axes_json(axes) == expected
    assert axes_json(dict(axes)) == expected


def test_axis_order_is_the_same_whatever_order_coordinates_come_in():
    first = ordered_axes({"channel": "GFP", "z": 2, "time": 1, "position": 0})
    second = ordered_axes({"time": 1, "position": 0, "channel": "GFP", "z": 2})
    assert list(first) == list(second) == ["position", "time", "z", "channel"]
    assert first == {"position": 0, "time": 1, "z": 2, "channel": "GFP"}
    extra = ordered_axes({"zeta": 1, "alpha": 2, "time": 0})
    assert list(extra) == ["time", "alpha", "zeta"]  # others after, by name
