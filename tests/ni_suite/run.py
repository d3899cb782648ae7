"""Run NI's nidaqmx-python X-series tests over gRPC against `mmapp sim-daq`.

    python -m tests.ni_suite [--ni-all] [--ni-null-server] [pytest args...]

NI's tests come from the pinned tarball in ../shared/vendor (nothing is fetched);
they are extracted once into a cache folder outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
PINNED = "nidaqmx-python-cbba5023"
TARBALL_NAME = f"{PINNED}-tests.tar.gz"
SUITES = ("tests/component", "tests/legacy", "tests/acceptance")


def tarball() -> Path | None:
    """The pinned copy of NI's tests (None if this machine has none)."""
    env = os.environ.get("MMAPP_NI_TESTS_TARBALL")
    candidates = [Path(env)] if env else []
    for base in (CHECKOUT, *CHECKOUT.parents):
        candidates.append(base / "shared" / "vendor" / TARBALL_NAME)
    return next((p for p in candidates if p.is_file()), None)


def cache_dir() -> Path:
    """Where NI's tests are extracted (outside the checkout)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmapp-tests"


def extract() -> Path:
    """NI's test folder, extracted from the pinned tarball if not yet done."""
    source = tarball()
    if source is None:
        raise FileNotFoundError(
            f"{TARBALL_NAME} not found (set MMAPP_NI_TESTS_TARBALL)"
        )
    root = cache_dir() / PINNED
    marker = root / ".extracted"
    if not marker.exists():
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tarfile.open(source) as tar:
            tar.extractall(cache_dir(), filter="data")
        marker.write_text(source.name)
    return root


def command(root: Path, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The pytest command line and environment for a run in `root`."""
    env = dict(os.environ)
    paths = [str(root), str(HERE), str(CHECKOUT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    explicit = any(a.startswith("tests/") for a in args)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "ni_sim_plugin",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=--strict-markers",
        "-q",
        "--ignore=tests/legacy/test_multi_threading.py",
        *args,
        *(() if explicit else SUITES),
    ]
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    """Extract NI's tests and run them; pytest's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = extract()
    cmd, env = command(root, args)
    return subprocess.call(cmd, cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main())
