"""Recovering datasets a killed run left unfinished (mmapp.data.recover, `mmapp
recover`): built here by stopping a sink without finish() and by damaging the
last image as a kill mid-write does; the real kills are in
test_recover_kills.py. Every recovered dataset is read back through ndstorage
(the index) and tifffile (the IFD chain), pixel for pixel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import open_dataset

from mmapp.cli import main
from mmapp.data import ndtiff_sink
from mmapp.data.errors import NotADatasetError
from mmapp.data.ndtiff_index import read_entries
from mmapp.data.ndtiff_sink import NDTiffSink
from mmapp.data.recover import (
    PREALLOCATED_SIZE,
    RECOVERY_FILE,
    dataset_status,
    find_unfinished,
    recover_dataset,
)

H, W = 12, 20


def frame(t: int, dtype: type = np.uint16) -> np.ndarray:
    values = (np.arange(H * W, dtype=np.int64) * 31 + t * 977 + 5) % 251 + 1
    return values.astype(dtype).reshape(H, W)  # no zero pixel


def killed(sink: NDTiffSink) -> Path:
    """Leave the sink as SIGKILL would: files closed, nothing finished."""
    if sink._writer is not None:
        sink._writer.file.close()
    sink._index_file.flush()
    os.close(sink._index_file.fileno())
    sink.finished = True  # the object must not touch the files again
    return sink.path


def write_killed(root: Path, n: int, dtype: type = np.uint16, **kw) -> Path:
    sink = NDTiffSink(root, "run", {"test": True}, **kw)
    for t in range(n):
        sink.put({"time": t, "channel": "488"}, frame(t, dtype), {"t": t})
    return killed(sink)


def assert_holds(path: Path, times: list[int], dtype: type = np.uint16) -> None:
    """The dataset opens in ndstorage and tifffile and holds exactly these frames."""
    ds = open_dataset(path)
    try:
        coords = ds.get_image_coordinates_list()
        assert sorted(c["time"] for c in coords) == times
        for c in coords:
            np.testing.assert_array_equal(ds.read_image(**c), frame(c["time"], dtype))
            assert ds.read_metadata(**c)["t"] == c["time"]
    finally:
        ds.close()
    pages = []
    for tif in sorted(path.glob("*.tif")):
        assert tif.stat().st_size < PREALLOCATED_SIZE
        with tifffile.TiffFile(tif) as tf:
            assert tf.is_ndtiff
            pages += [page.asarray() for page in tf.pages]
    assert len(pages) == len(times)
    for t, page in zip(times, pages, strict=True):
        np.testing.assert_array_equal(page, frame(t, dtype))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_killed_dataset_is_finished_with_every_frame(tmp, dtype):
    path = write_killed(tmp, 7, dtype)
    tif = next(path.glob("*.tif"))
    assert tif.stat().st_size == PREALLOCATED_SIZE
    status = dataset_status(path)
    assert status.is_dataset and not status.finished
    assert status.problems == [f"{tif.name} is still preallocated (4 GiB)"]

    report = recover_dataset(path)
    assert (report.frames_in_index_before, report.frames_found_on_disk) == (7, 7)
    assert (report.frames_recovered, report.left_out) == (7, [])
    assert_holds(path, list(range(7)), dtype)
    assert dataset_status(path).finished
    saved = json.loads((path / RECOVERY_FILE).read_text())
    assert saved["frames_recovered"] == 7 and saved["frames_left_out"] == 0
    assert saved["files"][0]["size_before"] == PREALLOCATED_SIZE
    assert saved["files"][0]["size_after"] == tif.stat().st_size


def test_recovery_is_idempotent(tmp):
    path = write_killed(tmp, 3)
    recover_dataset(path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    again = recover_dataset(path)
    assert again.already_finished
    assert "already finished" in again.summary()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def _last_images(path: Path) -> tuple[int, int, int, int]:
    """(end of the last but one image; the last image's IFD, pixels, end)."""
    *_, before, last = read_entries(path / "NDTiff.index")
    ifd = last.pix_offset - 2 - 13 * 12 - 4 - 16  # IFD, next pointer, resolutions
    end = last.md_offset + last.md_length
    return before.md_offset + before.md_length, ifd, last.pix_offset, end


def _drop_last_index_entry(path: Path) -> None:
    *entries, _ = read_entries(path / "NDTiff.index")
    os.truncate(path / "NDTiff.index", sum(len(e.pack()) for e in entries))


@pytest.mark.parametrize("cut", ["in-pixels", "in-metadata"])
def test_a_half_written_last_image_is_reported_and_left_out(tmp, cut):
    path = write_killed(tmp, 5)
    whole_end, ifd, pixels, end = _last_images(path)
    _drop_last_index_entry(path)  # its entry was never written
    cut_at = pixels + (H * W * 2) // 3 if cut == "in-pixels" else end - 5
    tif = next(path.glob("*.tif"))
    with open(tif, "r+b") as f:  # what never reached the disk reads zero
        f.seek(cut_at)
        f.write(b"\0" * (end - cut_at))

    report = recover_dataset(path)
    assert report.frames_in_index_before == 4
    assert report.frames_found_on_disk == 5
    assert report.frames_recovered == 4
    [out] = report.left_out
    assert (out.file, out.offset) == (tif.name, ifd)
    assert "half-written image" in out.reason
    if cut == "in-pixels":
        assert out.zero_pixels == pytest.approx(1 - 1 / 3, abs=0.01)
    else:
        assert out.zero_pixels == 0
    assert "left out" in report.summary()
    assert_holds(path, [0, 1, 2, 3])
    assert tif.stat().st_size == whole_end  # trimmed after the last whole image


def test_an_image_the_index_missed_is_recovered(tmp):
    """Killed between the image and its index entry: the image is whole."""
    path = write_killed(tmp, 4)
    _drop_last_index_entry(path)
    report = recover_dataset(path)
    assert report.frames_in_index_before == 3
    assert report.frames_recovered == 4
    assert_holds(path, [0, 1, 2, 3])


def test_a_missing_index_is_rebuilt_from_the_images(tmp):
    path = write_killed(tmp, 3)
    (path / "NDTiff.index").unlink()
    assert "there is no NDTiff.index" in dataset_status(path).problems
    report = recover_dataset(path)
    assert (report.frames_in_index_before, report.frames_recovered) == (0, 3)
    assert_holds(path, [0, 1, 2])


def test_files_after_a_rollover(tmp, monkeypatch):
    monkeypatch.setattr(
        ndtiff_sink.GatheredWriter,
        "has_space_to_write",
        lambda self, pixels, metadata: self.images < 3,
    )
    path = write_killed(tmp, 8)
    tifs = sorted(path.glob("*.tif"))
    assert [t.stat().st_size == PREALLOCATED_SIZE for t in tifs] == [
        False,
        False,
        True,
    ]
    report = recover_dataset(path)
    assert report.frames_recovered == 8
    assert [f.images for f in report.files] == [3, 3, 2]
    assert_holds(path, list(range(8)))


def test_a_kill_before_the_first_image(tmp):
    sink = NDTiffSink(tmp, "run", start_files={"preset.mmpreset": "{}\n"})
    path = killed(sink)
    assert sorted(p.name for p in path.iterdir()) == ["NDTiff.index", "preset.mmpreset"]
    status = dataset_status(path)
    assert status.is_dataset and not status.finished
    report = recover_dataset(path)
    assert (report.frames_found_on_disk, report.frames_recovered) == (0, 0)
    assert dataset_status(path).finished
    ds = open_dataset(path)  # an empty dataset, not a folder nothing opens
    try:
        assert ds.get_image_coordinates_list() == []
    finally:
        ds.close()


def test_a_tif_killed_before_its_header_is_removed(tmp):
    path = write_killed(tmp, 2)
    (path / "run_NDTiffStack_1.tif").write_bytes(b"")  # killed right after open
    report = recover_dataset(path)
    assert report.frames_recovered == 2
    assert not (path / "run_NDTiffStack_1.tif").exists()
    assert_holds(path, [0, 1])


def test_not_a_dataset_is_refused(tmp):
    (tmp / "notes.txt").write_text("hello")
    with pytest.raises(NotADatasetError, match="holds no dataset files"):
        recover_dataset(tmp)
    with pytest.raises(NotADatasetError, match="is not a folder"):
        recover_dataset(tmp / "notes.txt")


def test_find_unfinished_lists_only_unfinished_datasets(tmp):
    done = NDTiffSink(tmp, "done")
    done.put({"time": 0}, frame(0), {})
    done.finish()
    left = write_killed(tmp, 2)
    (tmp / "other").mkdir()
    assert find_unfinished(tmp) == [left]
    assert find_unfinished(left) == [left]
    recover_dataset(left)
    assert find_unfinished(tmp) == []


def mmapp(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`mmapp ARGS` in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recover_and_info(tmp, capsys):
    path = write_killed(tmp, 3)
    code, out, err = mmapp(capsys, "info", str(path))
    assert code == 0, err
    assert "is unfinished" in err
    assert f"`mmapp recover {path}`" in err
    assert "images: 3" in out

    code, out, err = mmapp(capsys, "recover", str(path))
    assert code == 0, err
    assert "recovered 3 of 3 frames found on disk (3 were indexed" in out
    code, out, _ = mmapp(capsys, "recover", str(path), "--json")
    assert code == 0
    assert json.loads(out)["already_finished"] is True

    code, out, err = mmapp(capsys, "info", str(path), "--json")
    data = json.loads(out)
    assert data["finished"] is True and data["images"] == 3
    assert data["recovery"]["frames_recovered"] == 3
    assert "unfinished" not in err


def test_cli_info_on_a_dataset_nothing_can_open_yet(tmp, capsys):
    path = write_killed(tmp, 2)
    (path / "NDTiff.index").unlink()
    code, _, err = mmapp(capsys, "info", str(path))
    assert code == 1
    assert "there is no NDTiff.index" in err and "mmapp recover" in err


def test_cli_recover_refuses_what_is_not_a_dataset(tmp, capsys):
    code, _, err = mmapp(capsys, "recover", str(tmp / "missing"))
    assert code == 2
    assert "is not a dataset" in err and "is not a folder" in err
    code, _, err = mmapp(capsys, "recover", str(tmp))
    assert code == 2
    assert "holds no dataset files" in err


def test_the_preset_copy_is_the_one_the_engine_names():
    from mmapp.data.datasets import PRESET_COPY
    from mmapp.engine.controller import _preset_copy
    from mmapp.engine.preset_run import PRESET_FILE_NAME

    assert PRESET_COPY == PRESET_FILE_NAME
    assert list(_preset_copy({"preset": {"name": "x"}})) == [PRESET_FILE_NAME]
    assert _preset_copy({"preset": None}) == {}
