"""A draft waveform program (plain JSON data) checked field by field.

The designer edits a draft dict; every edit is checked by building the real
:class:`WaveformProgram` and rendering it, and each problem is reported at the
path of the field it concerns, so the panel can mark that field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import RenderedProgram, WaveformError, render

Path = tuple[str | int, ...]
SHAPE_KINDS = ("sawtooth", "triangle", "constant", "per_channel", "custom")
_ANALOG_NAMED = re.compile(r"^analog '(?P<name>[^']*)'")
_DOTTED = re.compile(r"^(?P<path>[a-z_]+(\.[a-z_0-9]+|\[\d+\])*):")


@dataclass
class Checked:
    """The outcome of checking a draft."""

    program: WaveformProgram | None = None
    rendered: RenderedProgram | None = None
    errors: dict[Path, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Valid and renderable: it may be applied."""
        return self.program is not None and self.rendered is not None


def _clean_loc(loc: tuple[Any, ...]) -> Path:
    """Drop the discriminator tags pydantic puts into union paths."""
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and part in SHAPE_KINDS)
        and not (isinstance(part, str) and part.startswith("function-"))
    )


def _path_of_message(message: str, draft: dict[str, Any]) -> Path:
    """'timing.exposure_s: ...' -> ('timing', 'exposure_s'); analog by name."""
    m = _ANALOG_NAMED.match(message)
    if m:
        for i, a in enumerate(draft.get("analog", [])):
            if a.get("name") == m["name"]:
                return ("analog", i)
        return ("analog",)
    m = _DOTTED.match(message)
    if m:
        parts: list[str | int] = []
        for token in re.findall(r"[a-z_0-9]+|\[\d+\]", m["path"]):
            parts.append(int(token[1:-1]) if token.startswith("[") else token)
        return tuple(parts)
    return ()


def check(draft: dict[str, Any]) -> Checked:
    """Validate and render a draft; errors keyed by field path (() = general)."""
    result = Checked()
    try:
        program = WaveformProgram.model_validate(draft)
    except ValidationError as exc:
        for err in exc.errors():
            path = _clean_loc(tuple(err["loc"]))
            text = str(err["msg"]).removeprefix("Value error, ")
            result.errors.setdefault(path, text)
        return result
    try:
        rendered = render(program)
    except WaveformError as exc:
        message = str(exc)
        result.errors[_path_of_message(message, draft)] = message
        return result
    result.program, result.rendered = program, rendered
    return result
