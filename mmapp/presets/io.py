"""Preset files: load (validated, migrated, all or nothing), save (atomic),
and the list of recently used presets."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir
from pydantic import ValidationError

from mmapp.presets.errors import PresetError, issues_from
from mmapp.presets.migrate import migrate
from mmapp.presets.model import Preset

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 1024 * 1024  # a preset is a few kB; refuse anything absurd


# --- reading ------------------------------------------------------------------
def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number a preset may hold")


def _parse_json(text: str | bytes, source: str) -> Any:
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise PresetError.one(source, "<file>", "too large to be a preset")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PresetError.one(
                source, "<file>", f"not UTF-8 text (byte {exc.start})"
            ) from None
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except json.JSONDecodeError as exc:
        raise PresetError.one(
            source,
            "<file>",
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise PresetError.one(source, "<file>", f"not valid JSON: {exc}") from None


def parse_preset(text: str | bytes, source: str = "preset") -> Preset:
    """A Preset from JSON text, migrated to the current schema version.

    Raises PresetError (naming each field path and why) for anything else.
    """
    raw = _parse_json(text, source)
    return preset_from_data(raw, source)


def preset_from_data(raw: Any, source: str = "preset") -> Preset:
    """A Preset from parsed JSON (a dict), migrated and validated."""
    if not isinstance(raw, dict):
        raise PresetError.one(
            source, "<root>", f"expected a JSON object, got {type(raw).__name__}"
        )
    data = migrate(raw, source)
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(source, issues_from(exc, data)) from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        # a validator of a dependency failing outside pydantic's own checks
        reason = f"invalid: {type(exc).__name__}: {exc}"
        raise PresetError.one(source, "<root>", reason) from None


def load_preset(path: str | Path) -> Preset:
    """Read and validate a preset file (any older schema version migrates).

    Raises PresetError naming the file, each bad field path and the reason;
    nothing is changed anywhere when it does.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PresetError.one(str(path), "<file>", "not found") from None
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
        raise PresetError.one(str(path), "<file>", reason) from None
    return parse_preset(data, str(path))


# --- writing ------------------------------------------------------------------
def preset_to_json(preset: Preset) -> str:
    """The file text: indented JSON, keys in the model's order, newline at the end."""
    data = preset.model_dump(mode="json")
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that it is either the old one or the whole new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # make the rename itself durable: fsync the folder where the OS allows it
    # (POSIX; Windows cannot open a folder as a file and needs no such step)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_preset(preset: Preset, path: str | Path) -> Path:
    """Save atomically (a temporary file renamed over the target); returns the path.

    Raises PresetError for a preset that would not load again (e.g. one made
    with `model_copy(update=...)`, which skips validation) and OSError if the
    file cannot be written; the old file is intact either way.
    """
    path = Path(path)
    text = preset_to_json(preset)
    parse_preset(text, str(path))  # never write a file that would not load
    atomic_write_text(path, text)
    return path


# --- recently used ------------------------------------------------------------
def config_dir() -> Path:
    """Where mmapp keeps its settings (MMAPP_CONFIG_DIR overrides): the user's
    config folder of the platform (platformdirs: ~/.config/mmapp on Linux,
    %APPDATA%\\mmapp on Windows, ~/Library/Application Support/mmapp on macOS).
    """
    if env := os.environ.get("MMAPP_CONFIG_DIR"):
        return Path(env)
    return Path(user_config_dir("mmapp", appauthor=False, roaming=True))


class RecentPresets:
    """The recently opened or saved presets, newest first, in a small JSON file.

    A missing or damaged file reads as an empty list (it is only a convenience).
    """

    FILE_NAME = "recent_presets.json"

    def __init__(self, directory: str | Path | None = None, limit: int = 10) -> None:
        self.file = Path(directory or config_dir()) / self.FILE_NAME
        self.limit = limit

    def paths(self) -> list[Path]:
        """Stored paths, newest first (files may have gone since)."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        items = data.get("recent") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return []
        return [Path(p) for p in items if isinstance(p, str) and p][: self.limit]

    def add(self, path: str | Path) -> list[Path]:
        """Put `path` first (once); returns the new list."""
        entry = Path(path).expanduser().resolve()
        items = [entry] + [p for p in self.paths() if p != entry]
        self._store(items[: self.limit])
        return items[: self.limit]

    def remove(self, path: str | Path) -> list[Path]:
        """Drop `path` (e.g. a file that no longer opens); returns the new list."""
        entry = Path(path).expanduser().resolve()
        items = [p for p in self.paths() if p != entry]
        self._store(items)
        return items

    def clear(self) -> None:
        """Forget every entry."""
        self._store([])

    def _store(self, items: list[Path]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"recent": [str(p) for p in items]}, indent=2) + "\n"
        atomic_write_text(self.file, text)
