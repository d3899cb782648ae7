"""The errors of the presets package: one for bad files, one for bad device settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

# error types a validator raises (PydanticCustomError) to name a deeper path:
UNKNOWN_FIELD = "unknown_field"  # ctx["keys"] extend the loc; "unknown field"
NESTED_ERRORS = "nested_errors"  # ctx["errors"]: [(keys extending the loc, reason)]


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


def _field_path(loc: Sequence[int | str], raw: Any) -> str:
    """Path of an error location as the file spells it: dotted field names,
    list items by index (`acquisition.sequence.channels[1].config`).

    pydantic puts the labels of union members (a tag such as "stream", a class
    name such as "ZTopBottom", a type such as "str") into locations; they are
    not in the file, so they are left out.
    """
    parts: list[str] = []
    node: Any = raw
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if isinstance(node, list):
            if not (isinstance(part, int) and 0 <= part < len(node)):
                break  # a union member's label
            node = node[part]
        elif isinstance(node, dict):
            if part in node:
                node = node[part]
            elif i < last or part in node.values():
                continue  # a union member's label or tag
            else:
                node = None  # a missing field: name it
        elif node is not None:
            break  # below a scalar: a union member's label
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).removeprefix(".") or "<root>"


def error_reasons(err: Any) -> list[tuple[list[Any], str]]:
    """(loc, reason) of one pydantic error, in the words mmapp uses."""
    loc = list(err["loc"])
    ctx = err.get("ctx") or {}
    reason = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == NESTED_ERRORS:
        return [(loc + list(keys), why) for keys, why in ctx["errors"]]
    if err["type"] == UNKNOWN_FIELD:
        return [(loc + list(ctx["keys"]), "unknown field")]
    if err["type"] == "extra_forbidden":
        return [(loc, "unknown field")]
    return [(loc, reason)]


def issues_from(exc: ValidationError, raw: Any) -> list[Issue]:
    """One issue per failing field path, reasons of the same path combined.

    The one wording of validation errors for every file mmapp reads (presets,
    rig files): dotted paths as the file spells them (list items by index),
    "unknown field" for a key the model has no field for.
    """
    by_path: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        for loc, reason in error_reasons(err):
            path = _field_path(loc, raw)
            if reason not in by_path.setdefault(path, []):
                by_path[path].append(reason)
    return [Issue(path, " or ".join(reasons)) for path, reasons in by_path.items()]
