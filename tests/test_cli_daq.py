"""`mmapp sim-daq` and `mmapp acquire --daq` as an operator runs them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import nidaqmx
import numpy as np
import pytest
from helpers import needs_posix_signals, open_dataset, run_mmapp
from nidaqmx.grpc_session_options import GrpcSessionOptions
from nidaqmx.system import System


@pytest.mark.posix
@needs_posix_signals
def test_sim_daq_serves_a_card_any_nidaqmx_script_can_use() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmapp", "sim-daq", "--port", "0", "--device", "Dev3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.search(r"serving on (127\.0\.0\.1:\d+)", first)
        assert m, first
        channel = grpc.insecure_channel(m[1])
        opts = GrpcSessionOptions(grpc_channel=channel, session_name="")
        assert [d.name for d in System.remote(opts).devices] == ["Dev3"]
        with nidaqmx.Task(grpc_options=opts) as task:  # a user's script
            task.ao_channels.add_ao_voltage_chan("Dev3/ao1")
            task.write(1.25)
        channel.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


@pytest.mark.posix
@needs_posix_signals
def test_sim_daq_port_in_use_is_a_clear_error() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmapp", "sim-daq", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())[1]
        second = run_mmapp("sim-daq", "--port", port, timeout=30)
        assert second.returncode == 2
        assert f"cannot serve on 127.0.0.1:{port}" in second.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_acquire_daq_volumes_plays_the_rig_program(tmp: Path) -> None:
    done = run_mmapp(
        "acquire",
        "--out",
        str(tmp),
        "--daq",
        "--volumes",
        "2",
        "--size",
        "64",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert '"frames_saved": 100' in done.stdout  # 50 positions x 2 volumes
    ds = open_dataset(tmp / "acquisition_1")
    try:
        assert {k: len(v) for k, v in ds.axes.items()} == {"time": 2, "z": 50}
        program = ds.summary_metadata["mmapp"]["daq_program"]
        assert program["analog"][0]["physical_channel"] == "Dev1/ao0"
        a, b = (np.asarray(ds.read_image(time=0, z=z)) for z in (0, 49))
        assert not np.array_equal(a[1:], b[1:])  # different galvo positions
    finally:
        ds.close()


def test_acquire_daq_refuses_frames_that_are_not_whole_volumes(tmp: Path) -> None:
    done = run_mmapp(
        "acquire", "--out", str(tmp), "--daq", "--frames", "70", "--size", "64"
    )
    assert done.returncode == 2  # refused before anything starts, like validate
    assert done.stderr == (
        "mmapp: error: the DAQ program gives 50 frames per cycle; 70 frames is not "
        "a whole number of cycles\n"
    )
    assert not (tmp / "acquisition_1").exists()


@pytest.mark.posix
@needs_posix_signals
def test_sim_daq_knows_the_custom_scales_of_a_max_config(tmp_path) -> None:
    config = tmp_path / "max.ini"
    config.write_text("[DAQmxScale gain]\nScaleType = Linear\nLin.Slope = 2\n")
    missing = run_mmapp("sim-daq", "--max-config", str(tmp_path / "no.ini"))
    assert missing.returncode == 2 and "no such file" in missing.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmapp", "sim-daq", "--max-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = re.search(r"serving on (127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert address
        channel = grpc.insecure_channel(address[1])
        opts = GrpcSessionOptions(grpc_channel=channel, session_name="")
        assert System.remote(opts).scales.scale_names == ["gain"]
        channel.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
