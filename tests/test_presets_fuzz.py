"""Hypothesis: malformed presets raise PresetError, naming a field path, and
nothing else ever escapes; whatever loads round-trips."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmapp.presets import PRESET_SUFFIX, SCHEMA_VERSION, Preset, PresetError
from mmapp.presets.io import parse_preset, preset_to_json
from mmapp.resources import resources_dir

EXAMPLES = sorted((resources_dir() / "presets").glob(f"*{PRESET_SUFFIX}"))
SOURCES = [*EXAMPLES, Path(__file__).parent / "data" / "preset_v1.mmpreset"]
DOCS = [json.loads(p.read_text(encoding="utf-8")) for p in SOURCES]
TEXTS = [p.read_text(encoding="utf-8") for p in SOURCES]
FREE_KEYS = {"config_groups", "metadata", "values"}  # dicts with any keys
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e308, -1e-308, 10**20, 65536, "", "{", "{user}"]),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=6,
)


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node of the document (root excluded)."""
    found = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found += paths_of(value, (*prefix, key))
    return found


def parent_of(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def check(text: str | bytes) -> PresetError | None:
    """Loads, or raises PresetError (anything else fails the test)."""
    try:
        preset = parse_preset(text, "fuzz.mmpreset")
    except PresetError as exc:
        assert exc.issues and all(i.path and i.reason for i in exc.issues)
        assert str(exc).startswith("fuzz.mmpreset: ")
        return exc
    assert isinstance(preset, Preset)
    text = preset_to_json(preset)  # whatever loads also saves and loads back
    again = parse_preset(text)
    assert again == preset and preset_to_json(again) == text
    return None


def dots(path: str) -> str:
    """An issue's path with list indices dotted (`a[0].b` -> `a.0.b`)."""
    return re.sub(r"\[(\d+)\]", r".\1", path)


def related(a: str, b: str) -> bool:
    """One path is the other or lies inside it."""
    a, b = dots(a), dots(b)
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict, str, str]:
    """(document, what was done, the dotted path it was done at)."""
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    paths = paths_of(doc)
    path = draw(st.sampled_from(paths))
    parent = parent_of(doc, path)
    kind = draw(st.sampled_from(["replace", "delete", "unknown_key", "version"]))
    if kind == "replace":
        parent[path[-1]] = draw(json_values)
    elif kind == "delete":
        del parent[path[-1]]
    elif kind == "unknown_key":
        dicts = [
            p
            for p in paths
            if isinstance(parent_of(doc, p)[p[-1]], dict) and p[-1] not in FREE_KEYS
        ]
        target_path = draw(st.sampled_from(dicts)) if dicts else ()
        target = parent_of(doc, target_path)[target_path[-1]] if target_path else doc
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in target))
        target[key] = draw(json_values)
        path = (*target_path, key)
    else:
        doc["schema_version"] = draw(st.integers(SCHEMA_VERSION + 1, 10**6))
        path = ("schema_version",)
    return doc, kind, dotted(path)


@FUZZ
@given(mutated())
def test_mutated_presets_raise_only_preset_error_naming_the_path(
    case: tuple[dict, str, str],
) -> None:
    doc, kind, path = case
    error = check(json.dumps(doc))
    if kind == "unknown_key":
        assert error is not None
        if doc.get("schema_version") == SCHEMA_VERSION:
            assert any(related(i.path, path) for i in error.issues), (path, error)
    elif kind == "version":
        assert error is not None
        assert [i.path for i in error.issues] == ["schema_version"]
        assert "newer" in str(error)
    elif error is not None and doc.get("schema_version") == SCHEMA_VERSION:
        # the error is at the changed field, inside it, or at a model containing
        # it whose cross-field check failed (e.g. program: park_v vs limits)
        top = path.split(".")[0]
        paths = [dots(i.path) for i in error.issues]
        assert any(related(p, path) or p == top for p in paths) or any(
            path.startswith(p + ".") for p in paths
        ), (kind, path, error)


@FUZZ
@given(st.sampled_from(TEXTS), st.data())
def test_truncated_text(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text.rstrip()) - 1))
    error = check(text[:cut])
    assert error is not None and error.issues[0].path == "<file>"


@FUZZ
@given(st.sampled_from(TEXTS), st.data())
def test_garbage_bytes_inserted(text: str, data: st.DataObject) -> None:
    raw = text.encode("utf-8")
    at = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    check(raw[:at] + junk + raw[at:])


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(json_values)
def test_random_json(value: Any) -> None:
    check(json.dumps(value))
