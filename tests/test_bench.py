"""`mmapp bench stream` runs end to end (tiny sizes; the figures are not tested)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import HEIGHT, WIDTH, run_mmapp

from mmapp.data.file_io import HAS_POSITIONAL_IO
from mmapp.resources import default_rig_file


def test_bench_stream_json(tmp_path: Path) -> None:
    proc = run_mmapp(
        "bench",
        "stream",
        "--dir",
        str(tmp_path),
        "--size",
        "64",
        "--frames",
        "40",
        "--repeats",
        "2",
        "--buffer-mb",
        "16",
        "--json",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("pipeline_mb_s", "raw_mb_s", "ratio", "dropped_frames", "peak_rss_mb"):
        assert key in report
    assert report["dropped_frames"] == 0
    assert report["outcomes"] == ["completed", "completed"]
    assert len(report["raw_runs_mb_s"]) == 3 and len(report["pair_ratios"]) == 2
    assert report["pipeline_mb_s"] > 0 and report["raw_mb_s"] > 0
    assert list(tmp_path.iterdir()) == []  # datasets and raw files removed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_bench_stream_cpu_reports_each_threads_time_per_frame(tmp_path: Path) -> None:
    proc = run_mmapp(
        "bench", "stream", "--dir", str(tmp_path), "--size", "64", "--frames",
        "5000", "--repeats", "1", "--buffer-mb", "16", "--cpu", "--json",
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    (run,) = report["thread_cpu_us_per_frame"]
    threads = {row["thread"]: row for row in run}
    # the pipeline's three threads: the simulated camera's, the engine's, the writer's
    assert {"AcquisitionThread", "mmapp-run", "mmapp-writer"} <= set(threads)
    for row in run:
        assert row["user_us"] >= 0 and row["system_us"] >= 0
    assert sum(r["user_us"] + r["system_us"] for r in run) > 0
    assert "mmapp-prefault" not in threads  # set-up, waited for before the run


def test_bench_refuses_when_the_disk_is_too_small(tmp_path: Path) -> None:
    proc = run_mmapp(
        "bench",
        "stream",
        "--dir",
        str(tmp_path),
        "--size",
        "4096",
        "--frames",
        "100000000",
        timeout=60,
    )
    assert proc.returncode == 2
    assert "not enough disk" in proc.stdout


def test_bench_stop_json() -> None:
    proc = run_mmapp(
        "bench", "stop", "--trials", "1", "--size", "32", "--json", timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(report["states"]) == {
        "frames flowing",
        "camera waiting for a trigger",
        "between sequences",
    }
    assert report["met"] is True
    assert report["worst_camera_stop_ms"] < 100


@pytest.mark.posix
@pytest.mark.skipif(not HAS_POSITIONAL_IO, reason="no os.pwritev (not POSIX)")
def test_bench_stream_both_io_paths(tmp_path: Path) -> None:
    """--io both: the pipeline runs alternate the sink's positional and portable
    write paths; the report gives each path's median and their ratio."""
    proc = run_mmapp(
        "bench",
        "stream",
        "--dir",
        str(tmp_path),
        "--size",
        "64",
        "--frames",
        "20",
        "--repeats",
        "2",
        "--buffer-mb",
        "16",
        "--io",
        "both",
        "--json",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["io"] == "both"
    assert set(report["io_paths"]) == {"positional", "portable"}
    for path in report["io_paths"].values():
        assert path["median_mb_s"] > 0 and len(path["runs_mb_s"]) == 2
    assert len(report["portable_vs_positional_pairs"]) == 2
    assert report["portable_vs_positional"] > 0
    assert report["outcomes"] == ["completed"] * 4
    assert len(report["raw_runs_mb_s"]) == 5
    assert list(tmp_path.iterdir()) == []


def test_bench_deskew_json() -> None:
    """Tiny sizes: the keys and values are sane (the speed is not tested)."""
    proc = run_mmapp(
        "bench", "deskew", "--rows", "32", "--cols", "24", "--positions", "6",
        "--repeats", "2", "--ref-repeats", "1", "--json",
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["input_shape"] == [6, 32, 24]
    g = report["geometry"]
    assert g["positions"] == 6 and g["pixel_um"] == 0.5
    assert g["scan_step_um"] == pytest.approx(10.0)  # -25..25 um in 5 steps
    # voxels of 0.5 um: z floor(31 * 0.5 * sin 30 / 0.5) + 1 = 16,
    # y floor((50 + 31 * 0.5 * cos 30) / 0.5) + 1 = 127
    assert report["output_shape"] == [16, 127, 24]
    assert report["max_abs_diff"] <= 1
    assert report["speedup"] > 0 and report["voxels_per_s"] > 0
    assert len(report["numba_times_s"]) == 2 and len(report["scipy_times_s"]) == 1
    assert report["met"] == (report["speedup"] >= report["target_speedup"])


def test_bench_deskew_refuses_one_position() -> None:
    proc = run_mmapp("bench", "deskew", "--positions", "1", "--json", timeout=60)
    assert proc.returncode == 2
    assert "at least 2" in proc.stdout


def test_bench_stream_deskew_json(tmp_path: Path) -> None:
    """The pipeline with deskew + MIP on the rig's OPM program (tiny frames)."""
    proc = run_mmapp(
        "bench", "stream", "--deskew", "--dir", str(tmp_path), "--size", "64",
        "--rate", "200", "--volumes", "2", "--repeats", "1",
        "--chain", "deskew", "--chain", "empty", "--chain", "none", "--json",
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    deskew = report["chains"]["deskew"]["runs"][0]
    empty = report["chains"]["empty"]["runs"][0]
    assert deskew["frames"] == empty["frames"] == 2 * 50
    assert deskew["frames_saved"] == deskew["frames"], deskew
    assert deskew["volumes_deskewed"] == 2 and deskew["kept_up"], deskew
    assert empty["volumes_deskewed"] == 0 and empty["frames_saved"] == 100
    assert deskew["deskewed_shape"][2] == 64
    chains = report["chains"]
    assert chains["none"]["fps_vs_no_chain"] == 1.0
    for name in ("deskew", "empty"):  # each chain's rate against no chain
        info = chains[name]
        want = round(info["median_fps"] / chains["none"]["median_fps"], 3)
        assert info["fps_vs_no_chain"] == want > 0
    assert list(tmp_path.iterdir()) == []


def test_bench_endurance_json(tmp_path: Path) -> None:
    """A short endurance run: samples of every resource in each phase."""
    proc = run_mmapp(
        "bench", "endurance", "--dir", str(tmp_path), "--size", "32",
        "--cycles", "2", "--gui-cycles", "2", "--minutes", "0", "--json",
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for phase in ("api", "gui"):
        samples = report[phase]["samples"]
        assert [s["cycle"] for s in samples] == [1]  # cycle 1 (then every 10th)
        for key in ("rss_mb", "threads", "open_files", "grpc_channels", "daq_tasks"):
            assert key in samples[0]
        assert samples[0]["daq_tasks"] == 0  # no task left on the card
    assert list(tmp_path.iterdir()) == []


def _stream_json(tmp_path: Path, *args: str) -> dict:
    proc = run_mmapp(
        "bench",
        "stream",
        "--dir",
        str(tmp_path / "bench"),
        "--frames",
        "30",
        "--repeats",
        "1",
        "--buffer-mb",
        "16",
        "--json",
        *args,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bench_stream_rig_democam(tmp_path: Path, democam_cfg: Path) -> None:
    """The C++ camera path (Micro-Manager's DemoCamera, built from
    ../shared/vendor; skipped without a C++ compiler): its frames, saved,
    and its own rate beside the ratio to raw writes."""
    report = _stream_json(tmp_path, "--rig", str(democam_cfg))
    assert report["rig"] == str(democam_cfg)
    assert report["frame_shape"] == [HEIGHT, WIDTH]  # the camera's own frame
    assert report["dropped_frames"] == 0 and report["outcomes"] == ["completed"]
    assert report["camera_alone_fps"] > 0
    assert report["ratio_to_camera"] > 0 and report["ratio"] > 0
    assert list((tmp_path / "bench").iterdir()) == []
    roi = _stream_json(tmp_path, "--rig", str(democam_cfg), "--size", "32")
    assert roi["frame_shape"] == [32, 32] and roi["dropped_frames"] == 0


def test_bench_stream_rig_file_sets_the_simulated_camera_size(tmp_path: Path) -> None:
    """A rig file (not a .cfg): --size goes through its camera settings."""
    report = _stream_json(tmp_path, "--rig", str(default_rig_file()), "--size", "32")
    assert report["frame_shape"] == [32, 32] and report["dropped_frames"] == 0
    assert report["camera_alone_fps"] > 0 and report["outcomes"] == ["completed"]


def test_bench_stream_rig_refuses_a_size_the_camera_cannot_crop(
    tmp_path: Path, democam_cfg: Path
) -> None:
    proc = run_mmapp(
        "bench",
        "stream",
        "--dir",
        str(tmp_path),
        "--rig",
        str(democam_cfg),
        "--size",
        "4096",
        timeout=60,
    )
    assert proc.returncode == 2
    sensor = f"the camera ({WIDTH}x{HEIGHT})"
    assert f"{sensor} refused a 4096x4096 ROI: larger than the sensor" in proc.stdout


def test_bench_stream_cpu_says_where_it_cannot_read_threads(
    tmp_path, monkeypatch, capsys
):
    """Windows has no /proc: --cpu says so, and the run goes on."""
    from mmapp.bench import stream
    from mmapp.cli import build_parser

    monkeypatch.setattr(stream, "thread_cpu_supported", lambda: False)
    argv = "bench stream --size 64 --frames 50 --repeats 1 --buffer-mb 16 --cpu --dir"
    # the bench itself (mmapp.cli.main would also set up the console's logging)
    args = build_parser().parse_args([*argv.split(), str(tmp_path)])
    assert stream.run_stream_bench(args) == 0
    out = capsys.readouterr().out
    assert "--cpu: each thread's CPU time is read from /proc (Linux); not here" in out
    assert "cpu mmapp-writer" not in out
    assert "pipeline #1" in out
