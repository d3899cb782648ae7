"""Dataset name templates: `{name}`, `{date}`, `{time}` and `{rig}`, nothing else.

`{name}` is the preset's name and `{rig}` the rig's (spaces and characters a
folder name cannot hold become `_`);
`{date}` and `{time}` are the local start time, formatted with an optional
strftime spec (`{date}` = `{date:%Y%m%d}`, `{time}` = `{time:%H%M%S}`). Literal
braces are written `{{` and `}}`. ndstorage appends `_1`, `_2`, ... to the
rendered name to make each dataset folder unique.
"""

from __future__ import annotations

import re
import string
from datetime import datetime

PLACEHOLDERS = ("name", "date", "time", "rig")
_DEFAULT_SPECS = {"date": "%Y%m%d", "time": "%H%M%S"}
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_SAMPLE_TIME = datetime(2000, 1, 2, 3, 4, 5)
MAX_NAME_CHARS = 255  # the longest folder name common file systems hold
_NUMBERS = re.compile(r"\d+")


def safe_component(text: str) -> str:
    """`text` with spaces and characters a folder name cannot hold as `_`."""
    return re.sub(r"\s+", "_", _UNSAFE.sub("_", text)).strip("._") or "_"


def check_template(template: str) -> None:
    """Raise ValueError naming the problem if the template is unusable."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write literal braces as {{{{ and }}}})") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{field}}}; use "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
        if conversion is not None:
            raise ValueError(f"{{{field}!{conversion}}}: conversions are not allowed")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"{{{field}}}: nested placeholders are not allowed")
        _check_width(field, spec or "")
    rendered = render_name(template, name="x", when=_SAMPLE_TIME)
    bad = sorted(set(_UNSAFE.findall(rendered)))
    if bad:
        raise ValueError(
            f"renders to {rendered!r}, which holds characters a folder name "
            f"cannot: {' '.join(repr(c) for c in bad)}"
        )
    if rendered.strip(" .") != rendered or not rendered:
        raise ValueError(f"renders to {rendered!r}: starts or ends with . or space")
    if len(rendered) > MAX_NAME_CHARS:
        raise ValueError(
            f"renders to {len(rendered)} characters ({rendered[:40]!r}...); "
            f"a folder name holds at most {MAX_NAME_CHARS}"
        )


def _check_width(field: str, spec: str) -> None:
    """Refuse a width or precision no folder name could hold, before rendering
    (`{name:999999999}` would build a gigabyte string)."""
    if field not in ("name", "rig"):
        return
    for number in _NUMBERS.findall(spec):
        if len(number) > 3 or int(number) > MAX_NAME_CHARS:
            shown = number if len(number) <= 12 else number[:12] + "..."
            raise ValueError(
                f"{{{field}:...}}: width {shown} is more than a folder name "
                f"holds ({MAX_NAME_CHARS} characters)"
            )


def render_name(template: str, *, name: str, when: datetime, rig: str = "rig") -> str:
    """The dataset name for a preset `name` started at `when` on `rig`."""
    out: list[str] = []
    for literal, field, spec, _ in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        if field in ("name", "rig"):
            text = name if field == "name" else rig
            out.append(format(safe_component(text), spec or ""))
        else:
            out.append(when.strftime(spec or _DEFAULT_SPECS[field]))
    return "".join(out)


def escape_literal(text: str) -> str:
    """A template that renders to exactly `text`."""
    return text.replace("{", "{{").replace("}", "}}")
