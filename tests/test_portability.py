"""Nothing in mmapp needs a POSIX-only call: with them gone (as on Windows'
Python), every module imports, an acquisition runs and saves its dataset
through the sink's portable write path, and `bench stream` runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import read_all

ROOT = Path(__file__).resolve().parent.parent

# What Windows' Python lacks (os.pwritev/pwrite/pread/sync, os.fork, the
# POSIX-only signals): deleted before mmapp is imported, in a child process so
# that nothing leaks into the test session.
WITHOUT_POSIX = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, signal, sys

    for name in ("pwritev", "pwrite", "pread", "preadv", "sync", "fork"):
        if hasattr(os, name):
            delattr(os, name)
    for name in ("SIGHUP", "SIGKILL", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"):
        if hasattr(signal, name):
            delattr(signal, name)
    sys.modules["fcntl"] = None  # `import fcntl` raises ImportError
    sys.modules["resource"] = None

    import mmapp
    from mmapp.data import file_io

    modules = []
    for info in pkgutil.walk_packages(mmapp.__path__, "mmapp."):
        if info.name == "mmapp.__main__":  # runs the command line when imported
            continue
        importlib.import_module(info.name)
        modules.append(info.name)

    from mmapp.cli import main

    out = sys.argv[1]
    args = ["acquire", "--out", out, "--frames", "5", "--size", "32"]
    code = main([*args, "--exposure", "1", "--json"])
    bench = ["bench", "stream", "--dir", out + "-bench", "--size", "32",
             "--frames", "10", "--repeats", "1", "--buffer-mb", "16", "--json"]
    bench_code = main(bench)
    positional_code = main([*bench, "--io", "positional"])
    print(json.dumps({"code": code, "io_path": file_io.io_path(),
                      "modules": len(modules), "bench": bench_code,
                      "bench_positional": positional_code}))
    """
)


def test_mmapp_runs_without_posix_only_calls(tmp_path: Path) -> None:
    out = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_POSIX, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,  # this checkout's mmapp, as `python -m pytest` imports it
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["code"] == 0, proc.stdout + proc.stderr
    assert report["io_path"] == "portable"
    assert report["modules"] > 50  # every module of the package was imported
    # bench stream runs too (no os.sync, no /proc needed); --io positional
    # says it needs pwritev (exit 2)
    assert report["bench"] == 0 and report["bench_positional"] == 2, proc.stdout
    assert "--io positional needs os.pwritev" in proc.stdout
    result = json.loads(lines[0])  # acquire --json
    assert result["outcome"] == "completed"
    assert result["frames_saved"] == 5
    frames = read_all(Path(result["dataset"]))
    assert sorted(frames) == list(range(5))
    assert all(f.shape == (32, 32) for f in frames.values())
