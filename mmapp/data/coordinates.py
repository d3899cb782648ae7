"""Coordinates that label data by position along named axes, and lazy iterators.

``DataCoordinates`` is a small, validated, ordered mapping of axis name to an
``int`` or ``str`` value (e.g. ``DataCoordinates(time=3, channel="DAPI")``), in
the style of ExEngine. ``DataCoordinatesIterator`` walks over a finite or
infinite source of coordinates, converting items only as they are consumed.
"""

from __future__ import annotations

import numbers
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from itertools import islice
from keyword import iskeyword
from typing import Any, TypeAlias

__all__ = ["AxisValue", "DataCoordinates", "DataCoordinatesIterator"]

AxisValue: TypeAlias = int | str
"""Value allowed at a position along an axis."""


def _validate_axis(name: object) -> str:
    """Return ``name`` if it is a valid axis name, else raise."""
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
    """Return ``value`` as a plain ``int``/``str``, else raise ``TypeError``."""
    if isinstance(value, bool):
        raise TypeError(
            f"value for axis {axis!r} must be int or str, got bool: {value!r}"
        )
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):  # int and numpy integer types
        return int(value)
    raise TypeError(
        f"value for axis {axis!r} must be int or str, "
        f"got {type(value).__name__}: {value!r}"
    )


class DataCoordinates(MutableMapping[str, AxisValue]):
    """Position of a piece of data along arbitrary named axes.

    Behaves like an ordered ``dict[str, int | str]`` with validation, plus
    attribute access (``coords.time``). Axis names are non-empty strings without
    whitespace that do not start with ``_``; values are ``int`` (numpy integers
    are converted, ``bool`` is rejected) or ``str``.

    Instances are hashable (hash of the frozenset of items) so they can be used
    as dict keys or set members; mutating an instance while it is used as a key
    is a user error, exactly as for any object whose hash depends on its state.
    """

    _coords: dict[str, AxisValue]

    def __init__(
        self,
        coords: Mapping[str, AxisValue] | None = None,
        /,
        **kwargs: AxisValue,
    ) -> None:
        """Build from an optional mapping plus keyword axes (keywords win)."""
        object.__setattr__(self, "_coords", {})
        if coords is not None:
            if not isinstance(coords, Mapping):
                raise TypeError(
                    "DataCoordinates() positional argument must be a mapping, "
                    f"got {type(coords).__name__}: {coords!r}"
                )
            for name, value in coords.items():
                self[name] = value
        for name, value in kwargs.items():
            self[name] = value

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
        if all(k.isidentifier() and not iskeyword(k) for k in self._coords):
            inner = ", ".join(f"{k}={v!r}" for k, v in self._coords.items())
            return f"{name}({inner})"
        return f"{name}({self._coords!r})"

    # -- copying ------------------------------------------------------------
    def copy(self) -> DataCoordinates:
        """Return an independent copy."""
        return type(self)(self._coords)

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
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"item {index}: {exc}") from exc
    raise TypeError(
        f"item {index} must be a dict or DataCoordinates, "
        f"got {type(item).__name__}: {item!r}"
    )


class DataCoordinatesIterator(Iterator[DataCoordinates]):
    """Lazy iterator over ``DataCoordinates``; build it with :meth:`create`.

    Items are converted (and validated) only when consumed, so infinite
    generators are never materialised. Finite sources (list/tuple, a single
    mapping) have a known length and exact :meth:`might_produce` /
    :meth:`has_been_produced`; for other iterables the length is unknown and
    memory stays bounded (no record of everything consumed is kept).
    """

    def __init__(self, source: Iterable[object], /, *, finite: bool = False) -> None:
        """Wrap ``source``; with ``finite=True`` it is snapshotted as a tuple."""
        self._items: tuple[object, ...] | None = tuple(source) if finite else None
        self._source: Iterator[object] | None = None if finite else iter(source)
        self._pulled = 0  # items taken from the source (including bad ones)
        self._produced = 0  # DataCoordinates successfully returned
        self._exhausted = False
        self._seen: set[frozenset[tuple[str, AxisValue]]] | None = (
            set() if finite else None
        )
        self._last: DataCoordinates | None = None

    @classmethod
    def create(cls, obj: object) -> DataCoordinatesIterator:
        """Build an iterator from an iterator, one coordinates, a list or iterable.

        Accepts a ``DataCoordinatesIterator`` (returned as is), a single
        ``DataCoordinates``/mapping, a list/tuple of them (finite), or any
        other iterable/generator (unknown length, possibly infinite).
        """
        if isinstance(obj, DataCoordinatesIterator):
            return obj
        if isinstance(obj, Mapping):  # includes DataCoordinates
            return cls((obj,), finite=True)
        if isinstance(obj, list | tuple):
            return cls(obj, finite=True)
        if isinstance(obj, str | bytes | bytearray) or not isinstance(obj, Iterable):
            raise TypeError(
                "cannot create a DataCoordinatesIterator from "
                f"{type(obj).__name__}: {obj!r}; expected a dict, DataCoordinates, "
                "list/tuple of them, or an iterable/generator"
            )
        return cls(obj)

    # -- iteration --------------------------------------------------------
    def __iter__(self) -> DataCoordinatesIterator:
        """Return self."""
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
    @property
    def is_finite(self) -> bool | None:
        """``True`` for list/tuple/single-item sources, ``None`` if unknown."""
        return True if self._items is not None else None

    @property
    def exhausted(self) -> bool:
        """Whether the source has signalled the end of iteration."""
        return self._exhausted

    @property
    def num_produced(self) -> int:
        """Number of ``DataCoordinates`` returned so far."""
        return self._produced

    def known_length(self) -> int | None:
        """Total number of items in the source, or ``None`` if unknown."""
        return len(self._items) if self._items is not None else None

    def might_produce(self, coords: Mapping[str, AxisValue]) -> bool:
        """Whether ``coords`` might still be produced.

        Finite sources: exact, ``True`` iff an equal item is among those not yet
        consumed. Other sources: ``True`` until the source is exhausted.
        """
        target = _as_coords(coords)
        if self._items is None:
            return not self._exhausted
        for item in islice(self._items, self._pulled, None):
            if not isinstance(item, Mapping):
                continue
            try:
                candidate = DataCoordinates(item)
            except (TypeError, ValueError):
                continue  # would raise when consumed, so is never produced
            if candidate == target:
                return True
        return False

    def has_been_produced(self, coords: Mapping[str, AxisValue]) -> bool:
        """Whether ``coords`` has already been produced.

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
