"""Which processors exist: the built-ins and installed packages' entry points.

A preset names processors; it never carries or imports code by path. A name
resolves, in order, to a built-in (:mod:`mmapp.processing.builtins`), a
processor registered in this process (:func:`register`: scripts, tests), or an
entry point of an installed package in the group ``mmapp.processors``::

    [project.entry-points."mmapp.processors"]
    flatfield = "my_lab.processing:flatfield"

The entry point's object is either a :class:`ProcessorDefinition` (parameters
as a pydantic model, a factory that makes the processor for one run, whether
it is thread-safe) or a plain processor function (no parameters, run
serialised). Naming an unknown processor, or giving parameters its model
refuses, is a validation error (:func:`check_params`).

Processor call styles (:func:`call_style`): ``fn(image, metadata)``,
``fn(coords, image, metadata)`` and the adaptive ``fn(image, metadata,
event_queue)`` / ``fn(coords, image, metadata, event_queue)``. Three
parameters are told apart by the last one's name (``event_queue`` or
``events``); a definition may say so explicitly instead.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

ENTRY_POINT_GROUP = "mmapp.processors"
EVENT_PARAMETER_NAMES = ("event_queue", "events")


class NoParams(BaseModel):
    """A processor without parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ProcessorContext:
    """What a processor factory may know about the run it is made for."""

    rig_spec: Any = None  # mmapp.rig.RigSpec of the loaded rig (None: a .cfg rig)
    program: Any = None  # the WaveformProgram the DAQ plays (None: no DAQ)
    settings: dict[str, Any] = field(default_factory=dict)


Processor = Callable[..., Any]
Factory = Callable[[Any, ProcessorContext], Processor]


@dataclass(frozen=True)
class ProcessorDefinition:
    """A processor a preset can name.

    `factory(params, context)` makes a fresh processor for each run (`params`
    is an instance of `params`, validated). `thread_safe`: calls may overlap
    (else they run one at a time, in acquisition order). `takes_coords` /
    `takes_events`: the call style; None infers it from the processor's
    parameters (see the module docstring).
    """

    name: str
    factory: Factory
    params: type[BaseModel] = NoParams
    description: str = ""
    thread_safe: bool = False
    takes_coords: bool | None = None
    takes_events: bool | None = None
    source: str = "registered"  # "built-in", "registered" or the package name

    def make(self, params: BaseModel, context: ProcessorContext) -> Processor:
        """A processor for one run."""
        return self.factory(params, context)


@dataclass(frozen=True)
class ProcessorInfo:
    """One row of :func:`available_processors` (what a GUI form needs)."""

    name: str
    description: str
    source: str
    thread_safe: bool
    param_schema: dict[str, Any]  # JSON schema of the parameters (pydantic)
    error: str | None = None  # an installed processor that cannot be loaded


@dataclass(frozen=True)
class CallStyle:
    """How a processor is called."""

    coords: bool  # the first argument is the frame's coordinates
    events: bool  # the last argument is the run's event queue


_registered: dict[str, ProcessorDefinition] = {}
_loaded: dict[str, ProcessorDefinition] = {}
_lock = threading.Lock()
_entry_points: dict[str, EntryPoint] | None = None


def register(definition: ProcessorDefinition) -> None:
    """Make a processor nameable in this process (replaces one of that name)."""
    if definition.name in _builtins():
        raise ValueError(f"{definition.name!r} is a built-in processor")
    with _lock:
        _registered[definition.name] = definition


def unregister(name: str) -> None:
    """Forget a processor registered with :func:`register`."""
    with _lock:
        _registered.pop(name, None)


def refresh() -> None:
    """Look for installed packages' processors again (after a pip install)."""
    global _entry_points
    with _lock:
        _entry_points = None
        _loaded.clear()


def _builtins() -> dict[str, ProcessorDefinition]:
    from mmapp.processing.builtins import BUILTINS

    return BUILTINS


def _installed() -> dict[str, EntryPoint]:
    global _entry_points
    with _lock:
        if _entry_points is None:
            _entry_points = {
                ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)
            }
        return _entry_points


def names() -> dict[str, str]:
    """Every processor name -> where it comes from."""
    found = {name: d.source for name, d in _builtins().items()}
    with _lock:
        found.update({name: d.source for name, d in _registered.items()})
    for name, ep in _installed().items():
        found.setdefault(name, _package_of(ep))
    return found


def _package_of(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or ep.value.split(":")[0].split(".")[0]


class UnknownProcessorError(ValueError):
    """A preset names a processor that is neither built in nor installed."""


def definition(name: str) -> ProcessorDefinition:
    """The processor called `name` (raises UnknownProcessorError, or ValueError
    if an installed package's processor cannot be loaded)."""
    builtin = _builtins().get(name)
    if builtin is not None:
        return builtin
    with _lock:
        found = _registered.get(name) or _loaded.get(name)
    if found is not None:
        return found
    ep = _installed().get(name)
    if ep is None:
        known = ", ".join(sorted(names()))
        raise UnknownProcessorError(
            f"unknown processor {name!r}; known processors: {known} (others come "
            f"from installed packages, entry point group {ENTRY_POINT_GROUP!r})"
        )
    try:
        obj = ep.load()
    except Exception as exc:
        raise ValueError(
            f"processor {name!r} ({ep.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    found = _definition_of(name, obj, _package_of(ep))
    with _lock:
        _loaded[name] = found
    return found


def _definition_of(name: str, obj: Any, source: str) -> ProcessorDefinition:
    if isinstance(obj, ProcessorDefinition):
        return ProcessorDefinition(
            name=name,
            factory=obj.factory,
            params=obj.params,
            description=obj.description,
            thread_safe=obj.thread_safe,
            takes_coords=obj.takes_coords,
            takes_events=obj.takes_events,
            source=source,
        )
    if callable(obj):
        doc = inspect.getdoc(obj) or ""
        return ProcessorDefinition(
            name=name,
            factory=lambda _params, _context: obj,
            description=doc.splitlines()[0] if doc else "",
            thread_safe=bool(getattr(obj, "thread_safe", False)),
            source=source,
        )
    raise ValueError(
        f"processor {name!r} from {source}: the entry point is neither a "
        f"ProcessorDefinition nor a function ({type(obj).__name__})"
    )


def check_params(name: str, params: dict[str, Any]) -> BaseModel:
    """Validate a step's parameters (ValueError says what is wrong)."""
    found = definition(name)
    try:
        return found.params.model_validate(params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {err['msg']}" if where else err["msg"])
        raise ValueError(
            f"processor {name!r}: bad params: " + "; ".join(problems)
        ) from None


def available_processors() -> list[ProcessorInfo]:
    """Every processor a preset can name, with its parameter schema (sorted)."""
    infos = []
    for name, source in sorted(names().items()):
        try:
            found = definition(name)
        except ValueError as exc:
            infos.append(ProcessorInfo(name, "", source, False, {}, str(exc)))
            continue
        infos.append(
            ProcessorInfo(
                name=name,
                description=found.description,
                source=found.source,
                thread_safe=found.thread_safe,
                param_schema=found.params.model_json_schema(),
            )
        )
    return infos


def call_style(
    fn: Processor,
    *,
    coords: bool | None = None,
    events: bool | None = None,
) -> CallStyle:
    """How to call `fn` (explicit flags win; else its parameters tell)."""
    if coords is not None and events is not None:
        return CallStyle(coords, events)
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):  # no signature: the plain style
        params = []
    n = len(params)
    last_is_events = bool(params) and params[-1].name in EVENT_PARAMETER_NAMES
    if events is None:
        events = n == 4 or (n == 3 and last_is_events)
    if coords is None:
        coords = n - int(events) >= 3
    return CallStyle(coords, events)
