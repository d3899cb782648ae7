"""Micro-Manager's own C++ device adapters, built from ../shared/vendor at test time.

The simulated rig's camera is a Python device; a real camera goes through
MMCore's C++ circular buffer instead. To test that path without a
Micro-Manager installation, :func:`adapter_dir` compiles the `DemoCamera`
adapter (MMDevice + its sources, from the vendored tarball) with the machine's
C++ compiler into a per-user cache folder outside the checkout, once per
machine: the folder's name is a hash of the tarball, the compiler and the
flags, so a new tarball or compiler builds afresh. A lock file keeps two
pytest processes from building at once, and the finished folder appears by an
atomic rename, so nobody ever sees half a build.

Only a missing C++ compiler skips the tests that need it; a missing tarball or
a failed build is an error (CI clones the repository with ../shared beside it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO.parent / "shared" / "vendor"
TARBALL_GLOB = "mmCoreAndDevices-*-demo-adapters.tar.gz"
ADAPTERS = ("DemoCamera",)  # Utilities would double the build (~40 s) for nothing used
MMDEVICE_SOURCES = (
    "MMDevice",
    "ModuleInterface",
    "Property",
    "DeviceUtils",
    "ImgBuffer",
    "Debayer",
)
CXXFLAGS = ("-O2", "-fPIC", "-std=c++17", "-DMODULE_EXPORTS", "-w")
LDFLAGS = ("-shared", "-lpthread")
CACHE_ENV = "MMAPP_TEST_ADAPTER_CACHE"  # overrides the cache root (a folder)
DONE = "BUILD_OK"  # written last inside a finished build folder


def tarball() -> Path:
    """The vendored mmCoreAndDevices subset (an error if it is missing)."""
    found = sorted(VENDOR.glob(TARBALL_GLOB))
    if not found:
        raise FileNotFoundError(
            f"no {TARBALL_GLOB} in {VENDOR}: the tests need ../shared/vendor beside "
            f"the repository (see ../shared/vendor/README.md)"
        )
    return found[-1]


def compiler() -> str | None:
    """A C++ compiler on this machine ($CXX, g++, c++ or clang++), or None."""
    candidates = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    for name in candidates:
        if name and (path := shutil.which(name)):
            return path
    return None


def library_name(adapter: str) -> str:
    """The file name MMCore looks for on Linux."""
    return f"libmmgr_dal_{adapter}.so.0"


def cache_root() -> Path:
    """Per-user cache ($MMAPP_TEST_ADAPTER_CACHE, $XDG_CACHE_HOME or ~/.cache)."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmapp-test-adapters"


def _build_key(archive: Path, cxx: str) -> str:
    h = hashlib.sha256()
    h.update(archive.read_bytes())
    version = subprocess.run(
        [cxx, "--version"], capture_output=True, text=True, check=False
    ).stdout
    for part in (cxx, version, *CXXFLAGS, *LDFLAGS, *ADAPTERS, sys.platform):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX flock; elsewhere none: the
    atomic rename still keeps a build whole)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _compile(cxx: str, source: Path, obj: Path, include: Path) -> None:
    cmd = [cxx, *CXXFLAGS, f"-I{include}", "-c", str(source), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")


def _build(archive: Path, cxx: str, out: Path) -> None:
    """Extract, compile every translation unit in parallel, link each adapter."""
    work = out / "src"
    with tarfile.open(archive) as tf:
        if sys.version_info >= (3, 12):
            tf.extractall(work, filter="data")
        else:
            tf.extractall(work)  # our own vendored archive
    (root,) = [p for p in work.iterdir() if p.is_dir()]
    mmdevice = root / "MMDevice"
    objs = out / "obj"
    objs.mkdir()
    jobs: list[tuple[Path, Path]] = [
        (mmdevice / f"{name}.cpp", objs / f"MMDevice_{name}.o")
        for name in MMDEVICE_SOURCES
    ]
    per_adapter: dict[str, list[Path]] = {}
    for adapter in ADAPTERS:
        sources = sorted((root / "DeviceAdapters" / adapter).glob("*.cpp"))
        per_adapter[adapter] = [objs / f"{adapter}_{s.stem}.o" for s in sources]
        jobs += list(zip(sources, per_adapter[adapter], strict=True))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for future in [pool.submit(_compile, cxx, s, o, mmdevice) for s, o in jobs]:
            future.result()
    common = [o for _, o in jobs[: len(MMDEVICE_SOURCES)]]
    for adapter, adapter_objs in per_adapter.items():
        target = out / library_name(adapter)
        cmd = [cxx, *common, *adapter_objs, "-o", str(target), *LDFLAGS]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"linking {adapter} failed:\n{proc.stderr[-4000:]}")
    shutil.rmtree(work)
    shutil.rmtree(objs)


def adapter_dir() -> Path:
    """The folder holding the built adapters (built now if not cached).

    Calls pytest.skip when this machine has no C++ compiler.
    """
    cxx = compiler()
    if cxx is None:
        pytest.skip(
            "no C++ compiler (g++, c++ or clang++; or $CXX): cannot build "
            "Micro-Manager's DemoCamera adapter for the C++ camera path"
        )
    archive = tarball()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / _build_key(archive, cxx)
    if (final / DONE).is_file():
        return final
    with _lock(root / ".lock"):
        if (final / DONE).is_file():  # another process built it meanwhile
            return final
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            t0 = time.perf_counter()
            _build(archive, cxx, staging)
            (staging / DONE).write_text(
                f"{archive.name} built in {time.perf_counter() - t0:.1f} s by {cxx}\n",
                encoding="utf-8",
            )
            if final.exists():  # a stale, unfinished folder of the same key
                shutil.rmtree(final)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
