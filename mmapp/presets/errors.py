"""The errors of the presets package: one for bad files, one for bad device settings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One problem: where in the preset (dotted field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class PresetError(ValueError):
    """A preset that cannot be used: malformed, wrong types, unknown fields,
    values out of range or a newer schema version. Names each field path."""

    def __init__(self, source: str, issues: Iterable[Issue]) -> None:
        self.source = source
        self.issues: tuple[Issue, ...] = tuple(issues) or (Issue("<root>", "invalid"),)
        super().__init__(f"{source}: " + "; ".join(str(i) for i in self.issues))

    @classmethod
    def one(cls, source: str, path: str, reason: str) -> PresetError:
        """An error with a single issue."""
        return cls(source, [Issue(path, reason)])


class ApplyError(ValueError):
    """Device settings the core refused; the core was left as it was."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__(
            "device settings not applied (nothing changed): "
            + "; ".join(str(i) for i in self.issues)
        )
