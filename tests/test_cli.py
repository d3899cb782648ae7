"""The `mmapp` command line, run as the operator runs it (a real process)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import needs_posix_signals, open_dataset, read_all
from helpers import run_mmapp as mmapp

from mmapp.sim.frames import read_stamp

SMALL = ["--size", "32", "--exposure", "1"]


def test_acquire_frames_json(tmp_path: Path) -> None:
    proc = mmapp("acquire", "--out", str(tmp_path), "--frames", "25", *SMALL, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "completed"
    assert result["frames_saved"] == 25 and result["frames_lost"] == 0
    frames = read_all(Path(result["dataset"]))
    assert sorted(frames) == list(range(25))
    assert all(read_stamp(img) == t for t, img in frames.items())
    ds = open_dataset(Path(result["dataset"]))
    try:
        assert ds.summary_metadata["mmapp"]["frames"] == 25
    finally:
        ds.close()


def test_acquire_prints_progress_and_summary(tmp_path: Path) -> None:
    proc = mmapp("acquire", "--out", str(tmp_path), "--frames", "10", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert "frames " in proc.stdout and "MB/s" in proc.stdout
    assert "buffer" in proc.stdout and "written" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("mmapp: completed: 10 frames acquired, 10 saved, 0 lost")
    assert str(tmp_path / "acquisition_1") in last


def test_acquire_time_points_and_z(tmp_path: Path) -> None:
    proc = mmapp(
        "acquire",
        "--out",
        str(tmp_path),
        "--timepoints",
        "2",
        "--z-range",
        "2",
        "--z-step",
        "1",
        *SMALL,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["frames_saved"] == 6
    ds = open_dataset(Path(result["dataset"]))
    try:
        axes = {k: sorted(v) for k, v in ds.axes.items()}
        assert axes == {"time": [0, 1], "z": [0, 1, 2]}
    finally:
        ds.close()


def test_loop_with_duration(tmp_path: Path) -> None:
    proc = mmapp(
        "acquire",
        "--out",
        str(tmp_path),
        "--loop",
        "--duration",
        "0.5",
        *SMALL,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "completed" and result["frames_saved"] > 10


@pytest.mark.posix
@needs_posix_signals
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_sigterm_and_sighup_are_a_clean_stop(
    tmp_path: Path, signame: str
) -> None:
    """Ctrl-C, `kill` and a closed terminal all finish the dataset (issue 15: 3;
    SIGTERM and SIGHUP used to leave it unfinished, exit 143/129)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmapp",
            "acquire",
            "--out",
            str(tmp_path),
            "--loop",
            "--channel",
            "488nm",
            *SMALL,
            "--progress-every",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        seen = ""
        while "written" not in seen:  # progress is printed: frames are flowing
            chunk = proc.stdout.read(1)
            assert chunk, "mmapp exited before printing progress"
            seen += chunk
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # an operator's Stop is not a warning: only mmapp's own line on the console
    assert "MDA Canceled" not in err and "WARNING" not in err, err
    cause = "" if signame == "SIGINT" else f" ({signame})"
    assert err.strip() == f"mmapp: stopping{cause} (finishing the dataset)...", err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("mmapp: stopped:")
    acquired = int(summary.split("stopped: ")[1].split(" frames acquired")[0])
    assert f"{acquired} saved, 0 lost" in summary
    frames = read_all(tmp_path / "acquisition_1")
    assert len(frames) == acquired > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "0"], "argument --frames: '0' is not a positive whole number"),
        (["--frames", "3", "--loop"], "choose --frames N or --loop"),
        (["--duration", "2"], "--duration goes with --loop"),
        ([], "say what to acquire"),
        (["--z-range", "4"], "--z-range needs --z-step"),
        (["--frames", "2", "--bit-depth", "9"], "invalid choice"),
        (["--frames", "x"], "argument --frames: 'x' is not a positive whole number"),
        (
            ["--frames", "2", "--size", "abc"],
            "argument --size: 'abc' is not a positive whole number",
        ),
        (["--frames", "2", "--exposure", "0"], "'0' is not a positive number"),
        (["--frames", "2", "--bit-depth", "x"], "'x' is not a whole number"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = mmapp("acquire", "--out", str(tmp_path), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and "_positive" not in proc.stderr
    assert not any(tmp_path.iterdir())


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (lambda t: _a_file(t), "{out}: it is a file, not a folder"),
        (
            lambda t: _a_file(t) / "data" / "run",
            "{out}: {file} is a file, not a folder",
        ),
        pytest.param(
            lambda t: Path("/proc/mmapp-cannot-be-here"),
            "{out}: cannot create it (No such file or directory)",
            marks=pytest.mark.skipif(
                not sys.platform.startswith("linux"), reason="/proc is Linux's"
            ),
        ),
    ],
    ids=["a file", "under a file", "read-only /proc"],
)
def test_bad_save_directory_is_bad_input(tmp_path: Path, out, message: str) -> None:
    """Exit 2 with one message, before the rig loads or anything is created."""
    target = out(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    proc = mmapp("acquire", "--out", str(target), "--frames", "3", *SMALL)
    assert proc.returncode == 2
    text = message.format(out=target, file=tmp_path / "notes.txt")
    assert proc.stderr == f"mmapp: error: cannot save in {text}\n"
    assert proc.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before


def test_missing_out_exit_2() -> None:
    proc = mmapp("acquire", "--frames", "2")
    assert proc.returncode == 2
    assert "--out" in proc.stderr


def test_bad_rig_file_exit_2(tmp_path: Path) -> None:
    rig = tmp_path / "rig.json"
    rig.write_text(json.dumps({"camera": {"bit_depth": 9}}))
    proc = mmapp("acquire", "--out", str(tmp_path), "--frames", "2", "--rig", str(rig))
    assert proc.returncode == 2
    assert "camera.bit_depth" in proc.stderr


def test_error_run_exits_1_and_reports_counts(tmp_path: Path) -> None:
    proc = mmapp(
        "acquire",
        "--out",
        str(tmp_path),
        "--frames",
        "10",
        *SMALL,
        "--trigger",
        "External",
        "--first-frame-timeout",
        "0.3",
    )
    assert proc.returncode == 1
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("mmapp: error: 0 frames acquired, 0 saved, 0 lost")
    assert "no frame for 0.3 s" in summary
    assert "no frame for 0.3 s" not in proc.stderr, "said once, in the summary"


def test_info(tmp_path: Path) -> None:
    assert (
        mmapp("acquire", "--out", str(tmp_path), "--frames", "4", *SMALL).returncode
        == 0
    )
    dataset = tmp_path / "acquisition_1"
    proc = mmapp("info", str(dataset))
    assert proc.returncode == 0, proc.stderr
    assert "images: 4" in proc.stdout
    # how the run ended, counted as the run counted it (run.json)
    assert "run: completed: 4 frames acquired, 4 saved, 0 lost" in proc.stdout
    assert "frame: 32x32 uint16" in proc.stdout
    # the run settings are readable: one `key: value` per line, nested indented
    lines = proc.stdout.splitlines()
    assert "settings:" in lines
    assert "  command: acquire" in lines and "  frames: 4" in lines
    assert "  camera:" in lines and "    width: 32" in lines
    assert max(map(len, lines)) < 200
    # --json: the machine form, one object on stdout
    proc = mmapp("info", "--json", str(dataset))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["images"] == 4 and info["axes"] == {"time": 4}
    assert info["frame"] == {"width": 32, "height": 32, "dtype": "uint16"}
    assert info["settings"]["frames"] == 4 and info["preset"]["name"] == "acquisition"
    assert info["run"]["outcome"] == "completed"
    assert (info["run"]["frames_acquired"], info["run"]["frames_saved"]) == (4, 4)


def test_info_of_something_else(tmp_path: Path) -> None:
    missing = tmp_path / "nothing_here"
    proc = mmapp("info", str(missing))
    assert proc.returncode == 2
    assert proc.stderr == f"mmapp: error: no such folder: {missing}\n"
    proc = mmapp("info", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"mmapp: error: {tmp_path} is not an NDTiff dataset (it has no NDTiff.index)\n"
    )


def test_a_run_that_leaves_the_rig_unsafe_exits_3(tmp_path: Path, monkeypatch, capsys):
    from mmapp.cli import main
    from mmapp.sim.devices import SimLasers

    def broken(self) -> None:
        raise OSError("laser controller not answering")

    monkeypatch.setattr(SimLasers, "all_off", broken)
    loggers = [logging.getLogger(n) for n in ("mmapp", "pymmcore-plus")]
    handlers = [list(log.handlers) for log in loggers]
    try:
        code = main(["acquire", "--out", str(tmp_path), "--frames", "3", *SMALL])
    finally:  # main() set up the console's logging: put it back as it was
        for log, before in zip(loggers, handlers, strict=True):
            log.handlers[:] = before
    monkeypatch.undo()
    out = capsys.readouterr()
    assert code == 3
    assert "mmapp: unsafe: 3 frames acquired, 3 saved, 0 lost" in out.out
    assert "THE RIG WAS NOT MADE SAFE: lasers not switched off" in out.out


def test_ctrl_c_before_the_run_starts_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch, capsys
):
    from mmapp.cli import main
    from mmapp.engine import preset_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the rig loads

    monkeypatch.setattr(preset_run, "prepare_run", interrupted)
    loggers = [logging.getLogger(n) for n in ("mmapp", "pymmcore-plus")]
    handlers = [list(log.handlers) for log in loggers]
    try:
        code = main(["acquire", "--out", str(tmp_path), "--frames", "3", *SMALL])
    finally:
        for log, before in zip(loggers, handlers, strict=True):
            log.handlers[:] = before
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip() == "mmapp: interrupted before anything was acquired"
    assert not list(tmp_path.iterdir())


def test_a_stream_without_light_is_warned_and_channel_lights_it(tmp_path: Path):
    from helpers import read_all

    from mmapp.sim.frames import is_dark, is_lit

    dark = mmapp("acquire", "--out", str(tmp_path / "a"), "--frames", "3", *SMALL)
    assert dark.returncode == 0, dark.stderr
    assert "mmapp: warning: no light is on" in dark.stderr
    assert "--channel 488nm" in dark.stderr
    (ds,) = (tmp_path / "a").iterdir()
    assert all(is_dark(img) for img in read_all(ds).values())
    lit = mmapp(
        "acquire",
        "--out",
        str(tmp_path / "b"),
        "--frames",
        "3",
        "--channel",
        "488nm",
        *SMALL,
    )
    assert lit.returncode == 0, lit.stderr
    assert "warning" not in lit.stderr
    (ds,) = (tmp_path / "b").iterdir()
    images = read_all(ds)
    assert len(images) == 3 and all(is_lit(img) for img in images.values())
    bad = mmapp(
        "acquire",
        "--out",
        str(tmp_path / "c"),
        "--frames",
        "3",
        "--channel",
        "999nm",
        *SMALL,
    )
    assert bad.returncode == 2
    assert "'999nm' is not one of" in bad.stderr
