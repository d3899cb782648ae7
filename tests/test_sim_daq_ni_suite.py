"""NI's own nidaqmx-python tests (a small, fast subset) through our harness."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.ni_suite import run

SUBSET = [
    "tests/component/task/channels/test_do_channel.py",
    "tests/component/task/test_out_stream_write_properties.py",
    "tests/component/system/test_device_properties.py",
]


@pytest.mark.skipif(
    run.tarball() is None, reason="NI's test tarball is not on this machine"
)
def test_ni_suite_subset_passes_through_the_harness() -> None:
    root = run.extract()
    cmd, env = run.command(root, [*SUBSET, "-p", "no:randomly"])
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], os.getcwd()])
    done = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary, done.stdout[-3000:]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 15, summary
