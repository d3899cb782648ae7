"""Coordinates that label data by position along named axes, and lazy iterators.

``DataCoordinates`` is a small, validated, ordered mapping of axis name to an
``int`` or ``str`` value (e.g. ``DataCoordinates(time=3, channel="DAPI")``) that
keeps ExEngine's documented contract: axes come either as one
``coordinate_dict`` or as keywords (not both), whole floats are taken as ints,
bad values raise pydantic's ``ValidationError`` and ``.coordinate_dict`` shows
the axes. ``DataCoordinatesIterator`` walks over a finite or infinite source of
coordinates, converting items only as they are consumed; a finite one starts
again from its first item each time it is iterated.

Deliberate differences from ExEngine: ``bool`` values and axis names that are
empty, start with ``_`` or contain whitespace are rejected; ``coordinate_dict``
is a read-only view (change axes through items or attributes); a list source is
snapshotted when the iterator is made; an axis missing from the coordinates is
an ``AttributeError``/``KeyError`` rather than ``None``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from itertools import islice
from keyword import iskeyword
from types import MappingProxyType
from typing import Any, TypeAlias

from pydantic_core import PydanticCustomError, ValidationError

__all__ = [
    "AxisValue",
    "CoordinateValueError",
    "DataCoordinates",
    "DataCoordinatesIterator",
]

AxisValue: TypeAlias = int | str
"""Value allowed at a position along an axis."""


class CoordinateValueError(ValidationError, TypeError):
    """An axis value that is not an int, a whole number or a str.

    It is pydantic's ``ValidationError`` (hence a ``ValueError``), as ExEngine's
    contract says, and also a ``TypeError``, which mmapp raised before.
    """


def _value_error(
    axis: str, value: object, item: int | None = None
) -> CoordinateValueError:
    """The error for a bad ``value`` on ``axis`` (of source ``item``, if given)."""
    prefix = "" if item is None else f"item {item}: "
    message = (
        f"{prefix}value for axis {axis!r} must be int or str (or a whole "
        f"number), got {type(value).__name__}: {value!r}"
    )
    loc: tuple[int | str, ...] = (axis,) if item is None else (item, axis)
    error = PydanticCustomError("coordinate_value", "{message}", {"message": message})
    return CoordinateValueError.from_exception_data(
        "DataCoordinates", [{"type": error, "loc": loc, "input": value}]
    )


def _validate_axis(name: object) -> str:
    """Return ``name`` if it is a valid axis name, else raise."""
    if type(name) is str and name.isidentifier() and name[0] != "_":
        return name  # fast path: most axis names
    if not isinstance(name, str):
        raise TypeError(f"axis name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError(f"axis name must be a non-empty string, got {name!r}")
    if name.startswith("_"):
        raise ValueError(
            f"axis name {name!r} must not start with '_' (reserved for private "
            "attributes)"
        )
    if any(ch.isspace() for ch in name):
        raise ValueError(f"axis name {name!r} must not contain whitespace")
    return str(name)


def _validate_value(axis: str, value: object) -> AxisValue:
    """Return ``value`` as a plain ``int``/``str``, else raise.

    Like pydantic's ``int | str``: numpy integers become ``int`` and whole
    finite floats (``1.0``, ``numpy.float32(2)``) too; unlike it, ``bool`` is
    rejected. The error is a :class:`CoordinateValueError`.
    """
    if type(value) is int or type(value) is str:
        return value  # fast path: most values
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        raise _value_error(axis, value)
    if isinstance(value, numbers.Integral):  # int and numpy integer types
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and int(value) == value:
        return int(value)
    raise _value_error(axis, value)


def _validated(axes: Mapping[Any, object]) -> dict[str, AxisValue]:
    """A new dict of the validated axes, in order."""
    out: dict[str, AxisValue] = {}
    for name, value in axes.items():
        axis = _validate_axis(name)
        out[axis] = _validate_value(axis, value)
    return out


class DataCoordinates(MutableMapping[str, AxisValue]):
    """Position of a piece of data along arbitrary named axes.

    Behaves like an ordered ``dict[str, int | str]`` with validation, plus
    attribute access (``coords.time``). Build it from one mapping
    (``DataCoordinates({"time": 1})`` or ``coordinate_dict={...}``) or from
    keywords (``DataCoordinates(time=1)``), not both. Axis names are non-empty
    strings without whitespace that do not start with ``_``; values are ``int``
    (numpy integers and whole floats are converted, ``bool`` is rejected) or
    ``str``; a bad value raises :class:`CoordinateValueError`.

    Instances are hashable (hash of the frozenset of items) so they can be used
    as dict keys or set members; mutating an instance while it is used as a key
    is a user error, exactly as for any object whose hash depends on its state.
    """

    _coords: dict[str, AxisValue]

    def __init__(
        self,
        coordinate_dict: Mapping[str, AxisValue] | None = None,
        **axes: AxisValue,
    ) -> None:
        """Build from ``coordinate_dict`` or from keyword axes (not both)."""
        if type(coordinate_dict) is dict and not axes:  # fast path: a plain dict
            coords = _validated(coordinate_dict)
        elif coordinate_dict is None:
            coords = _validated(axes)
        elif axes:
            raise ValueError(
                "DataCoordinates() takes the axes either as coordinate_dict or as "
                f"keywords, not both; got coordinate_dict={coordinate_dict!r} and "
                f"keywords {', '.join(axes)}"
            )
        elif isinstance(coordinate_dict, DataCoordinates):
            coords = dict(coordinate_dict._coords)  # already validated
        elif isinstance(coordinate_dict, Mapping):
            coords = _validated(coordinate_dict)
        else:
            raise TypeError(
                "DataCoordinates() coordinate_dict must be a mapping, "
                f"got {type(coordinate_dict).__name__}: {coordinate_dict!r}"
            )
        object.__setattr__(self, "_coords", coords)

    @property
    def coordinate_dict(self) -> Mapping[str, AxisValue]:
        """Read-only live view of the axes (``dict(coords)`` for a copy)."""
        return MappingProxyType(self._coords)

    # -- mapping protocol -------------------------------------------------
    def _missing_message(self, name: object) -> str:
        present = ", ".join(repr(k) for k in self._coords) or "(none)"
        return f"DataCoordinates has no axis {name!r}; present axes: {present}"

    def __getitem__(self, name: str) -> AxisValue:
        """Return the value along axis ``name``."""
        try:
            return self._coords[name]
        except (KeyError, TypeError):
            raise KeyError(self._missing_message(name)) from None

    def __setitem__(self, name: str, value: AxisValue) -> None:
        """Add or change axis ``name`` (validated)."""
        name = _validate_axis(name)
        self._coords[name] = _validate_value(name, value)

    def __delitem__(self, name: str) -> None:
        """Remove axis ``name``."""
        try:
            del self._coords[name]
        except (KeyError, TypeError):
            raise KeyError(self._missing_message(name)) from None

    def __iter__(self) -> Iterator[str]:
        """Iterate over axis names in insertion order."""
        return iter(self._coords)

    def __len__(self) -> int:
        """Return the number of axes."""
        return len(self._coords)

    def __contains__(self, name: object) -> bool:
        """Return whether ``name`` is an axis."""
        try:
            return name in self._coords
        except TypeError:  # unhashable
            return False

    def keys(self) -> KeysView[str]:
        """Axis names, in insertion order."""
        return self._coords.keys()

    def values(self) -> ValuesView[AxisValue]:
        """Axis values, in insertion order."""
        return self._coords.values()

    def items(self) -> ItemsView[str, AxisValue]:
        """``(axis, value)`` pairs, in insertion order."""
        return self._coords.items()

    # -- attribute access -------------------------------------------------
    def __getattr__(self, name: str) -> AxisValue:
        """Return axis ``name`` (only called when normal lookup fails)."""
        if name.startswith("_"):
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            )
        try:
            return self._coords[name]
        except KeyError:
            raise AttributeError(self._missing_message(name)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        """Set axis ``name``; names starting with ``_`` are plain attributes."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if hasattr(type(self), name):
            raise AttributeError(
                f"cannot set axis {name!r} as an attribute because it shadows a "
                f"DataCoordinates attribute; use coords[{name!r}] = ... instead"
            )
        self[name] = value

    def __delattr__(self, name: str) -> None:
        """Delete axis ``name``; names starting with ``_`` are plain attributes."""
        if name.startswith("_"):
            object.__delattr__(self, name)
            return
        if name not in self._coords:
            raise AttributeError(self._missing_message(name))
        del self._coords[name]

    def __dir__(self) -> list[str]:
        """Include attribute-accessible axis names (for tab completion)."""
        return sorted(
            set(super().__dir__()) | {k for k in self._coords if k.isidentifier()}
        )

    # -- comparison, hashing, repr ----------------------------------------
    def __eq__(self, other: object) -> bool:
        """Order-insensitive equality with DataCoordinates or any mapping."""
        if isinstance(other, DataCoordinates):
            return self._coords == other._coords
        if isinstance(other, Mapping):
            return self._coords == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        """Hash of the frozenset of items (do not mutate while used as a key)."""
        return hash(frozenset(self._coords.items()))

    def __repr__(self) -> str:
        """``DataCoordinates(time=3, channel='DAPI')``."""
        name = type(self).__name__
        if all(k.isidentifier() and not iskeyword(k) for k in self._coords) and (
            "coordinate_dict" not in self._coords
        ):
            inner = ", ".join(f"{k}={v!r}" for k, v in self._coords.items())
            return f"{name}({inner})"
        return f"{name}({self._coords!r})"

    # -- copying ------------------------------------------------------------
    def copy(self) -> DataCoordinates:
        """Return an independent copy."""
        return type(self)(self)

    def to_dict(self) -> dict[str, AxisValue]:
        """Return a new plain ``dict`` (insertion order preserved)."""
        return dict(self._coords)

    def __copy__(self) -> DataCoordinates:
        """Support ``copy.copy`` without sharing internal state."""
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> DataCoordinates:
        """Support ``copy.deepcopy`` (values are immutable)."""
        return self.copy()

    def __reduce__(self) -> tuple[Any, ...]:
        """Support pickling."""
        return (type(self), (dict(self._coords),))


def _coerce(item: object, index: int) -> DataCoordinates:
    """Convert one source item, naming its index in any error."""
    if isinstance(item, DataCoordinates):
        return item
    if isinstance(item, Mapping):
        try:
            return DataCoordinates(item)
        except CoordinateValueError as exc:
            error = exc.errors()[0]
            raise _value_error(error["loc"][-1], error["input"], index) from exc
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"item {index}: {exc}") from exc
    raise TypeError(
        f"item {index} must be a dict or DataCoordinates, "
        f"got {type(item).__name__}: {item!r}"
    )


def _contains(items: Iterable[object], target: DataCoordinates) -> bool:
    """Whether an item of ``items`` converts to coordinates equal to ``target``."""
    for item in items:
        if not isinstance(item, Mapping):
            continue
        try:
            candidate = DataCoordinates(item)
        except (TypeError, ValueError):
            continue  # would raise when consumed, so is never produced
        if candidate == target:
            return True
    return False


class DataCoordinatesIterator(Iterator[DataCoordinates]):
    """Lazy iterator over ``DataCoordinates``; build it with :meth:`create`.

    Items are converted (and validated) only when consumed, so infinite
    generators are never materialised. Finite sources (a sequence such as a
    list, or a single mapping) have a known length, exact :meth:`might_produce`
    / :meth:`has_been_produced`, and start again from their first item whenever
    ``iter()`` is called on them, so iterating twice gives the same coordinates
    (progress then refers to the current pass). For other iterables the length
    is unknown, ``iter()`` continues where the source is, and memory stays
    bounded (no record of everything consumed is kept).
    """

    def __init__(self, source: Iterable[object], /, *, finite: bool = False) -> None:
        """Wrap ``source``; with ``finite=True`` it is snapshotted as a tuple."""
        self._items: tuple[object, ...] | None = tuple(source) if finite else None
        self._source: Iterator[object] | None = None if finite else iter(source)
        self._last: DataCoordinates | None = None
        self._rewind()

    def _rewind(self) -> None:
        """Start a new pass: nothing pulled, produced or seen yet."""
        self._pulled = 0  # items taken from the source (including bad ones)
        self._produced = 0  # DataCoordinates successfully returned
        self._exhausted = False
        self._seen: set[frozenset[tuple[str, AxisValue]]] | None = (
            set() if self._items is not None else None
        )

    @classmethod
    def create(cls, obj: object) -> DataCoordinatesIterator:
        """Build an iterator from an iterator, one coordinates, a list or iterable.

        Accepts a ``DataCoordinatesIterator`` (returned as is), a single
        ``DataCoordinates``/mapping, a list, tuple or other sequence of them
        (finite), or any other iterable/generator (unknown length, possibly
        infinite).
        """
        if isinstance(obj, DataCoordinatesIterator):
            return obj
        if isinstance(obj, Mapping):  # includes DataCoordinates
            return cls((obj,), finite=True)
        if isinstance(obj, str | bytes | bytearray) or not isinstance(obj, Iterable):
            raise TypeError(
                "cannot create a DataCoordinatesIterator from "
                f"{type(obj).__name__}: {obj!r}; expected a dict, DataCoordinates, "
                "list/tuple of them, or an iterable/generator"
            )
        return cls(obj, finite=isinstance(obj, Sequence))

    # -- iteration --------------------------------------------------------
    def __iter__(self) -> DataCoordinatesIterator:
        """Return self, rewound to the first item if the source is finite."""
        if self._items is not None:
            self._rewind()
        return self

    def __next__(self) -> DataCoordinates:
        """Convert and return the next item; bad items raise ``TypeError``."""
        if self._exhausted:
            raise StopIteration
        if self._items is not None:
            if self._pulled >= len(self._items):
                self._exhausted = True
                raise StopIteration
            item = self._items[self._pulled]
        else:
            assert self._source is not None
            try:
                item = next(self._source)
            except StopIteration:
                self._exhausted = True
                self._source = None  # release the generator
                raise
        index = self._pulled
        self._pulled += 1
        coords = _coerce(item, index)
        self._produced += 1
        if self._seen is not None:
            self._seen.add(frozenset(coords.items()))
        else:
            self._last = coords.copy()
        return coords

    def __length_hint__(self) -> int:
        """Remaining items if known, else 0 (``operator.length_hint``)."""
        total = self.known_length()
        return 0 if total is None else max(total - self._pulled, 0)

    # -- introspection ----------------------------------------------------
    def is_finite(self) -> bool:
        """Whether the source is known to end (a sequence or single item).

        ``False`` for other iterables: their end is unknown, they may be
        infinite.
        """
        return self._items is not None

    @property
    def exhausted(self) -> bool:
        """Whether the source has signalled the end of iteration (this pass)."""
        return self._exhausted

    @property
    def num_produced(self) -> int:
        """Number of ``DataCoordinates`` returned so far (this pass)."""
        return self._produced

    def known_length(self) -> int | None:
        """Total number of items in the source, or ``None`` if unknown."""
        return len(self._items) if self._items is not None else None

    def might_produce_coordinates(self, coords: Mapping[str, AxisValue]) -> bool | None:
        """Whether the source holds ``coords`` at all (ExEngine's contract).

        Finite sources: exact, over all items whether consumed or not. Other
        sources: ``None``, as it cannot be known.
        """
        target = _as_coords(coords)
        if self._items is None:
            return None
        return _contains(self._items, target)

    def might_produce(self, coords: Mapping[str, AxisValue]) -> bool:
        """Whether ``coords`` might still be produced in this pass.

        Finite sources: exact, ``True`` iff an equal item is among those not yet
        consumed. Other sources: ``True`` until the source is exhausted.
        """
        target = _as_coords(coords)
        if self._items is None:
            return not self._exhausted
        return _contains(islice(self._items, self._pulled, None), target)

    def has_been_produced(self, coords: Mapping[str, AxisValue]) -> bool:
        """Whether ``coords`` has already been produced (in this pass).

        Exact for finite sources. For other sources only the most recently
        produced item is remembered (bounded memory), so ``False`` may be a
        false negative.
        """
        target = _as_coords(coords)
        if self._seen is not None:
            return frozenset(target.items()) in self._seen
        return self._last is not None and self._last == target

    def __repr__(self) -> str:
        """Short summary of progress."""
        total = self.known_length()
        size = "unknown length" if total is None else f"length {total}"
        state = ", exhausted" if self._exhausted else ""
        return f"DataCoordinatesIterator({size}, produced {self._produced}{state})"


def _as_coords(coords: object) -> DataCoordinates:
    """Validate a query argument as ``DataCoordinates``."""
    if isinstance(coords, DataCoordinates):
        return coords
    if isinstance(coords, Mapping):
        return DataCoordinates(coords)
    raise TypeError(
        f"expected a dict or DataCoordinates, got {type(coords).__name__}: {coords!r}"
    )
