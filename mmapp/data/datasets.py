"""Datasets on disk: the folder names ndstorage gives them, opening one to read.

ndstorage never overwrites: a dataset called `name` goes into `name_1`,
`name_2`, ... one past the highest number already in the directory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndstorage import Dataset

INDEX_FILE = "NDTiff.index"
# the copy of the run's preset in the dataset folder (engine's PRESET_FILE_NAME)
PRESET_COPY = "preset.mmpreset"


def _numbered(directory: Path, name: str) -> list[tuple[int, str]]:
    """(number, folder name) of every entry ndstorage counts as `name`."""
    pattern = re.compile(re.escape(name) + r"_(\d+).*", re.IGNORECASE)
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [(int(m.group(1)), e) for e in entries if (m := pattern.match(e))]


def existing_datasets(directory: Path, name: str) -> list[Path]:
    """Datasets ndstorage counts as `name` in `directory` (`name_1`, `name_2`...)."""
    return sorted(directory / entry for _, entry in _numbered(directory, name))


def next_dataset_path(directory: Path, name: str) -> Path:
    """Where ndstorage will put a dataset called `name` (it never overwrites:
    it adds _1, _2, ... one past the highest existing number)."""
    highest = max((n for n, _ in _numbered(directory, name)), default=0)
    return directory / f"{name}_{highest + 1}"


def create_dataset_folder(
    directory: Path,
    name: str,
    files: Mapping[str, str] | None = None,
    *,
    exact: bool = False,
) -> Path:
    """Make the next `name_N` folder as ndstorage names them (with `exact`:
    `name` itself, refused if it exists), holding `files` ({name: text}) and
    an empty index from the moment it appears: it is built under a hidden name
    and renamed into place, so a process killed at any moment never leaves an
    empty folder that nothing opens."""
    staging = Path(
        tempfile.mkdtemp(prefix=f".{name}.", suffix=".starting", dir=directory)
    )
    try:
        for file_name, text in {INDEX_FILE: "", **(files or {})}.items():
            write_text_atomically(staging / file_name, text)
        if exact:
            path = directory / name
            if path.exists():
                raise FileExistsError(errno.EEXIST, "already exists", str(path))
            os.rename(staging, path)
            return path
        while True:
            path = next_dataset_path(directory, name)
            if path.exists():  # made by someone else meanwhile: the next one
                continue
            try:
                os.rename(staging, path)
            except OSError:
                if not path.exists():
                    raise
                continue
            return path
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write a file so that it is either absent (or the old one) or whole:
    a temporary file beside it, synced, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def open_dataset_quietly(path: str | Path) -> Dataset:
    """`ndstorage.Dataset(path)` for reading, without the progress lines it
    prints on stdout while it reads the index. The caller closes it."""
    from ndstorage import Dataset

    with contextlib.redirect_stdout(io.StringIO()):
        return Dataset(str(path))
