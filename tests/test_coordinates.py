"""Tests for mmapp.data.coordinates."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import math
import operator
import os
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import mmapp.data
from mmapp.data import coordinates
from mmapp.data.coordinates import (
    CoordinateValueError,
    DataCoordinates,
    DataCoordinatesIterator,
)

# --------------------------------------------------------------------------
# DataCoordinates: construction and validation
# --------------------------------------------------------------------------


def test_kwargs_construction_preserves_order():
    c = DataCoordinates(time=3, channel="DAPI", z=5)
    assert list(c) == ["time", "channel", "z"]
    assert dict(c) == {"time": 3, "channel": "DAPI", "z": 5}


def test_mapping_construction_positional_or_coordinate_dict_keyword():
    by_position = DataCoordinates({"time": 3, "channel": "DAPI"})
    by_keyword = DataCoordinates(coordinate_dict={"time": 3, "channel": "DAPI"})
    assert list(by_position.items()) == [("time", 3), ("channel", "DAPI")]
    assert list(by_keyword.items()) == [("time", 3), ("channel", "DAPI")]
    assert "coordinate_dict" not in by_keyword  # not taken as an axis


@pytest.mark.parametrize("mapping", [{"time": 3}, {}, DataCoordinates(time=3)])
def test_mapping_and_keywords_together_rejected(mapping):
    with pytest.raises(
        ValueError,
        match=r"either as coordinate_dict or as keywords, not both; "
        r"got coordinate_dict=.* and keywords z, time",
    ):
        DataCoordinates(mapping, z=1, time=4)
    with pytest.raises(ValueError, match=r"not both"):
        DataCoordinates(coordinate_dict=mapping, z=1)


def test_coordinate_dict_is_a_read_only_live_view():
    c = DataCoordinates(time=1, channel="DAPI")
    view = c.coordinate_dict
    assert view == {"time": 1, "channel": "DAPI"}
    assert list(view.items()) == [("time", 1), ("channel", "DAPI")]
    c.z = 2
    assert view == {"time": 1, "channel": "DAPI", "z": 2}
    with pytest.raises(TypeError, match=r"does not support item assignment"):
        view["z"] = 3  # type: ignore[index]
    assert c.z == 2
    with pytest.raises(AttributeError, match=r"cannot set axis 'coordinate_dict'"):
        c.coordinate_dict = {"time": 5}
    c["coordinate_dict"] = 7  # still usable as an axis name through items
    assert c["coordinate_dict"] == 7
    assert dict(c.coordinate_dict) == {
        "time": 1,
        "channel": "DAPI",
        "z": 2,
        "coordinate_dict": 7,
    }
    # the repr falls back to the dict form, as a keyword would be the argument
    assert repr(c) == (
        "DataCoordinates({'time': 1, 'channel': 'DAPI', 'z': 2, 'coordinate_dict': 7})"
    )
    assert eval(repr(c), {"DataCoordinates": DataCoordinates}) == c


def test_construct_from_other_coordinates_is_independent():
    a = DataCoordinates(time=1)
    b = DataCoordinates(a)
    b.time = 2
    assert a.time == 1
    assert b.time == 2


def test_empty():
    c = DataCoordinates()
    assert len(c) == 0
    assert dict(c) == {}
    assert repr(c) == "DataCoordinates()"


def test_positional_non_mapping_rejected():
    with pytest.raises(TypeError, match=r"coordinate_dict must be a mapping, got list"):
        DataCoordinates([("time", 1)])  # type: ignore[arg-type]


def test_axis_named_coords_is_allowed_as_keyword():
    assert DataCoordinates(coords=1)["coords"] == 1


@pytest.mark.parametrize("value", [True, False])
def test_bool_value_rejected(value):
    with pytest.raises(
        CoordinateValueError,
        match=rf"value for axis 'time' must be int or str \(or a whole number\), "
        rf"got bool: {value}",
    ):
        DataCoordinates(time=value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (1.5, "float"),
        (np.float64(2.5), "float64"),
        (math.nan, "float"),
        (math.inf, "float"),
        (Fraction(1, 2), "Fraction"),
        (None, "NoneType"),
        ([1], "list"),
    ],
)
def test_bad_value_rejected(value, type_name):
    with pytest.raises(
        CoordinateValueError,
        match=rf"value for axis 'z' must be int or str \(or a whole number\), "
        rf"got {type_name}",
    ):
        DataCoordinates(z=value)


def test_bad_value_error_is_pydantic_validation_error_and_type_error():
    # ExEngine's contract: pydantic's ValidationError (a ValueError); mmapp: TypeError
    with pytest.raises(ValidationError) as info:
        DataCoordinates(time=1, z=1.5)
    error = info.value
    assert isinstance(error, CoordinateValueError)
    assert isinstance(error, ValueError)
    assert isinstance(error, TypeError)
    assert error.title == "DataCoordinates"
    assert [(e["type"], e["loc"], e["input"]) for e in error.errors()] == [
        ("coordinate_value", ("z",), 1.5)
    ]


def test_bad_value_message_contains_value():
    with pytest.raises(CoordinateValueError, match=r"got float: 1\.5"):
        DataCoordinates(z=1.5)


@pytest.mark.parametrize(
    "value",
    [1.0, -3.0, np.float64(2.0), np.float32(4.0), Fraction(6, 1)],
)
def test_whole_numbers_taken_as_int(value):
    c = DataCoordinates(time=value)
    assert c.time == value
    assert type(c.time) is int
    c["z"] = value
    c.p = value
    assert type(c["z"]) is int
    assert type(c.p) is int
    assert DataCoordinates({"time": value}) == DataCoordinates(time=int(value))


def test_numpy_bool_rejected():
    with pytest.raises(CoordinateValueError, match=r"value for axis 'z' must be int"):
        DataCoordinates(z=np.bool_(True))


@pytest.mark.parametrize("np_type", [np.int8, np.int32, np.int64, np.uint16])
def test_numpy_integers_converted_to_int(np_type):
    c = DataCoordinates(z=np_type(7))
    assert c.z == 7
    assert type(c.z) is int
    c["t"] = np_type(2)
    assert type(c["t"]) is int


def test_str_subclass_converted_to_plain_str():
    c = DataCoordinates(channel=np.str_("DAPI"))
    assert c.channel == "DAPI"
    assert type(c.channel) is str


def test_non_str_axis_name_rejected():
    with pytest.raises(TypeError, match=r"axis name must be a str, got int: 3"):
        DataCoordinates({3: 1})  # type: ignore[dict-item]


def test_empty_axis_name_rejected():
    with pytest.raises(ValueError, match=r"non-empty string, got ''"):
        DataCoordinates({"": 1})


def test_underscore_axis_name_rejected():
    with pytest.raises(ValueError, match=r"axis name '_x' must not start with '_'"):
        DataCoordinates({"_x": 1})


def test_whitespace_axis_name_rejected():
    with pytest.raises(ValueError, match=r"axis name 'a b' must not contain"):
        DataCoordinates({"a b": 1})


def test_non_identifier_axis_name_allowed_via_items():
    c = DataCoordinates({"z-stack": 1})
    assert c["z-stack"] == 1
    assert repr(c) == "DataCoordinates({'z-stack': 1})"


# --------------------------------------------------------------------------
# DataCoordinates: access, assignment, deletion
# --------------------------------------------------------------------------


def test_attribute_and_item_access():
    c = DataCoordinates(time=3, channel="DAPI")
    assert c.time == 3
    assert c["channel"] == "DAPI"


def test_missing_attribute_message():
    c = DataCoordinates(time=3, channel="DAPI")
    with pytest.raises(
        AttributeError,
        match=r"no axis 'z'; present axes: 'time', 'channel'",
    ):
        _ = c.z


def test_missing_item_message():
    c = DataCoordinates(time=3, channel="DAPI")
    with pytest.raises(KeyError, match=r"no axis 'z'; present axes: 'time', 'channel'"):
        _ = c["z"]


def test_missing_item_on_empty_and_non_str_key():
    c = DataCoordinates()
    with pytest.raises(KeyError, match=r"no axis 'z'; present axes: \(none\)"):
        _ = c["z"]
    with pytest.raises(KeyError, match=r"no axis \[1\]"):
        _ = c[[1]]  # type: ignore[index]


def test_missing_private_attribute_is_plain_attribute_error():
    c = DataCoordinates(time=1)
    with pytest.raises(AttributeError, match=r"has no attribute '_nope'"):
        _ = c._nope
    assert not hasattr(c, "__deepcopy_missing__")


def test_set_axis_by_attribute_and_item():
    c = DataCoordinates(time=1)
    c.position = 2
    c["z"] = np.int64(4)
    assert list(c.items()) == [("time", 1), ("position", 2), ("z", 4)]
    c.time = 9  # changing keeps position
    assert list(c) == ["time", "position", "z"]
    assert c.time == 9


def test_assignment_is_validated():
    c = DataCoordinates()
    with pytest.raises(CoordinateValueError, match=r"axis 'position'.*got bool"):
        c.position = True
    with pytest.raises(CoordinateValueError, match=r"value for axis 'z'.*got float"):
        c["z"] = 1.5
    with pytest.raises(CoordinateValueError, match=r"value for axis 't'.*got float"):
        c.t = 0.5
    with pytest.raises(TypeError, match=r"axis name must be a str, got int: 5"):
        c[5] = 1  # type: ignore[index]
    assert dict(c) == {}


def test_private_attribute_does_not_become_axis():
    c = DataCoordinates(time=1)
    c._note = "hello"
    assert c._note == "hello"
    assert "_note" not in c
    assert dict(c) == {"time": 1}
    del c._note
    assert not hasattr(c, "_note")


def test_attribute_shadowing_method_rejected_but_item_ok():
    c = DataCoordinates()
    with pytest.raises(AttributeError, match=r"cannot set axis 'copy' as an attribute"):
        c.copy = 1
    c["copy"] = 1
    assert c["copy"] == 1
    assert callable(c.copy)


def test_delete_axis():
    c = DataCoordinates(time=1, z=2)
    del c["z"]
    assert dict(c) == {"time": 1}
    del c.time
    assert dict(c) == {}
    with pytest.raises(KeyError, match=r"no axis 'z'"):
        del c["z"]
    with pytest.raises(AttributeError, match=r"no axis 'time'"):
        del c.time


def test_dir_lists_axes():
    c = DataCoordinates(time=1, channel="x")
    assert {"time", "channel", "copy"} <= set(dir(c))


# --------------------------------------------------------------------------
# DataCoordinates: mapping protocol
# --------------------------------------------------------------------------


def test_mapping_protocol():
    c = DataCoordinates(time=3, channel="DAPI")
    assert len(c) == 2
    assert "time" in c
    assert "z" not in c
    assert 3 not in c
    assert [] not in c  # unhashable: no crash
    assert list(iter(c)) == ["time", "channel"]
    assert list(c.keys()) == ["time", "channel"]
    assert list(c.values()) == [3, "DAPI"]
    assert list(c.items()) == [("time", 3), ("channel", "DAPI")]
    assert c.get("time") == 3
    assert c.get("z") is None
    assert c.get("z", 7) == 7


def test_mutable_mapping_helpers_validate():
    c = DataCoordinates(time=1)
    c.update({"z": 2}, channel="a")
    assert dict(c) == {"time": 1, "z": 2, "channel": "a"}
    with pytest.raises(CoordinateValueError, match=r"value for axis 'p'"):
        c.update(p=1.5)
    assert c.pop("z") == 2
    assert c.setdefault("z", 5) == 5


# --------------------------------------------------------------------------
# DataCoordinates: equality, hashing, repr, copying
# --------------------------------------------------------------------------


def test_equality_order_insensitive():
    a = DataCoordinates(time=1, channel="DAPI")
    b = DataCoordinates(channel="DAPI", time=1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != DataCoordinates(time=2, channel="DAPI")
    assert a != DataCoordinates(time=1)


def test_equality_with_dict():
    a = DataCoordinates(time=1, channel="DAPI")
    assert a == {"channel": "DAPI", "time": 1}
    assert {"channel": "DAPI", "time": 1} == a  # noqa: SIM300 (reflected __eq__)
    assert a != {"time": 1}
    assert a != [("time", 1), ("channel", "DAPI")]
    assert a != "time"


def test_hash_is_frozenset_of_items():
    a = DataCoordinates(time=1, channel="DAPI")
    assert hash(a) == hash(frozenset({("time", 1), ("channel", "DAPI")}))


def test_usable_as_dict_key_and_in_set():
    d = {DataCoordinates(time=1, z=2): "img"}
    assert d[DataCoordinates(z=2, time=1)] == "img"
    s = {DataCoordinates(time=1), DataCoordinates(time=1), DataCoordinates(time=2)}
    assert len(s) == 2


def test_repr():
    assert (
        repr(DataCoordinates(time=3, channel="DAPI"))
        == "DataCoordinates(time=3, channel='DAPI')"
    )
    # keyword axis names fall back to dict form so the repr stays valid Python
    assert repr(DataCoordinates({"class": 1})) == "DataCoordinates({'class': 1})"


def test_repr_roundtrip():
    c = DataCoordinates(time=3, channel="DAPI")
    assert eval(repr(c), {"DataCoordinates": DataCoordinates}) == c


def test_copy_is_independent():
    a = DataCoordinates(time=1)
    for b in (a.copy(), copy.copy(a), copy.deepcopy(a)):
        assert b == a
        assert b is not a
        assert isinstance(b, DataCoordinates)
        b.time = 5
        assert a.time == 1


def test_to_dict_is_plain_independent_dict():
    a = DataCoordinates(time=1, z=2)
    d = a.to_dict()
    assert type(d) is dict
    assert list(d.items()) == [("time", 1), ("z", 2)]
    d["time"] = 99
    assert a.time == 1


def test_pickle_roundtrip():
    a = DataCoordinates(time=1, channel="DAPI")
    b = pickle.loads(pickle.dumps(a))
    assert b == a
    assert list(b) == ["time", "channel"]


# --------------------------------------------------------------------------
# DataCoordinates: property tests
# --------------------------------------------------------------------------

axis_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_\-]{0,11}", fullmatch=True)
axis_values = st.one_of(st.integers(), st.text(max_size=10))
coord_dicts = st.dictionaries(axis_names, axis_values, max_size=8)


@given(coord_dicts)
def test_roundtrip_preserves_content_and_order(d):
    c = DataCoordinates(d)
    assert dict(c) == d
    assert list(c.items()) == list(d.items())
    assert c.to_dict() == d
    assert len(c) == len(d)


@given(coord_dicts)
def test_equality_and_hash_independent_of_order(d):
    a = DataCoordinates(d)
    b = DataCoordinates(dict(reversed(list(d.items()))))
    assert a == b
    assert a == d
    assert hash(a) == hash(b)
    assert hash(a) == hash(a.copy())


@given(coord_dicts, coord_dicts)
def test_equality_matches_dict_equality(d1, d2):
    a, b = DataCoordinates(d1), DataCoordinates(d2)
    assert (a == b) == (d1 == d2)
    assert (a != b) == (d1 != d2)
    if a == b:
        assert hash(a) == hash(b)


# --------------------------------------------------------------------------
# DataCoordinatesIterator
# --------------------------------------------------------------------------


def test_create_returns_existing_iterator_as_is():
    it = DataCoordinatesIterator.create([{"time": 1}])
    assert DataCoordinatesIterator.create(it) is it


@pytest.mark.parametrize("single", [{"time": 1}, DataCoordinates(time=1)])
def test_create_from_single_item(single):
    it = DataCoordinatesIterator.create(single)
    assert it.is_finite() is True
    assert it.known_length() == 1
    items = list(it)
    assert items == [DataCoordinates(time=1)]
    assert all(isinstance(i, DataCoordinates) for i in items)
    assert list(it) == [DataCoordinates(time=1)]  # a second pass gives the same


@pytest.mark.parametrize("container", [list, tuple])
def test_create_from_list_or_tuple(container):
    src = container([{"time": 0}, DataCoordinates(time=1), {"time": 2, "z": 1}])
    it = DataCoordinatesIterator.create(src)
    assert it.is_finite() is True
    assert it.known_length() == 3
    assert operator.length_hint(it) == 3
    assert iter(it) is it
    assert isinstance(it, Iterator)
    first = next(it)
    assert first == {"time": 0}
    assert isinstance(first, DataCoordinates)
    assert operator.length_hint(it) == 2
    assert [next(it), next(it)] == [{"time": 1}, {"time": 2, "z": 1}]
    with pytest.raises(StopIteration):
        next(it)
    assert it.exhausted
    assert it.num_produced == 3
    assert operator.length_hint(it) == 0
    assert it.known_length() == 3
    with pytest.raises(StopIteration):
        next(it)


def test_finite_iterator_restarts_on_each_pass():
    src = [{"time": 0}, {"time": 1}, {"time": 2}]
    it = DataCoordinatesIterator.create(src)
    assert list(it) == src
    assert list(it) == src  # ExEngine's contract: same coordinates again
    next(iter(it))
    assert it.num_produced == 1
    assert it.has_been_produced({"time": 0})
    # iter() rewinds, so a partly consumed finite iterator starts over
    assert [c["time"] for c in it] == [0, 1, 2]
    assert it.exhausted
    iter(it)
    assert not it.exhausted
    assert it.num_produced == 0
    assert operator.length_hint(it) == 3
    assert not it.has_been_produced({"time": 0})
    assert it.might_produce({"time": 0})


def test_generator_iterator_is_not_rewound():
    it = DataCoordinatesIterator.create({"time": i} for i in range(3))
    assert next(it) == {"time": 0}
    assert list(it) == [{"time": 1}, {"time": 2}]
    assert list(it) == []


def test_any_sequence_is_finite():
    class Plan(Sequence):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if not 0 <= i < self.n:
                raise IndexError(i)
            return {"z": i}

    it = DataCoordinatesIterator.create(Plan(2))
    assert it.is_finite() is True
    assert it.known_length() == 2
    assert list(it) == [{"z": 0}, {"z": 1}]
    assert list(it) == [{"z": 0}, {"z": 1}]


def test_list_snapshot_is_not_affected_by_later_mutation():
    src = [{"time": 0}]
    it = DataCoordinatesIterator.create(src)
    src.append({"time": 1})
    assert list(it) == [{"time": 0}]


def test_existing_coordinates_items_are_passed_through():
    c = DataCoordinates(time=1)
    assert next(DataCoordinatesIterator.create([c])) is c


@pytest.mark.parametrize("bad", [5, None, 1.5, "time", b"x"])
def test_create_rejects_non_iterables_and_strings(bad):
    with pytest.raises(
        TypeError,
        match=rf"cannot create a DataCoordinatesIterator from {type(bad).__name__}",
    ):
        DataCoordinatesIterator.create(bad)


def test_generator_is_lazy():
    consumed: list[int] = []

    def gen():
        for i in range(5):
            consumed.append(i)
            yield {"time": i}

    it = DataCoordinatesIterator.create(gen())
    assert consumed == []
    assert it.is_finite() is False
    assert it.known_length() is None
    assert operator.length_hint(it) == 0
    assert next(it) == {"time": 0}
    assert consumed == [0]
    assert next(it) == {"time": 1}
    assert consumed == [0, 1]


def test_list_items_converted_lazily():
    # a bad item late in a list only raises when it is reached
    it = DataCoordinatesIterator.create([{"time": 0}, 42])
    assert next(it) == {"time": 0}
    with pytest.raises(TypeError, match=r"item 1 must be a dict or DataCoordinates"):
        next(it)


def test_bad_item_type_error_names_index_and_type():
    def gen():
        yield {"time": 0}
        yield {"time": 1}
        yield ["time", 2]

    it = DataCoordinatesIterator.create(gen())
    assert [next(it), next(it)] == [{"time": 0}, {"time": 1}]
    with pytest.raises(
        TypeError,
        match=r"item 2 must be a dict or DataCoordinates, got list: \['time', 2\]",
    ):
        next(it)


def test_bad_item_content_error_names_index_and_axis():
    it = DataCoordinatesIterator.create([{"time": 0}, {"time": True}])
    next(it)
    with pytest.raises(
        CoordinateValueError, match=r"item 1: value for axis 'time'.*got bool"
    ) as info:
        next(it)
    assert [(e["loc"], e["input"]) for e in info.value.errors()] == [
        ((1, "time"), True)
    ]
    it2 = DataCoordinatesIterator.create([{"": 0}])
    with pytest.raises(ValueError, match=r"item 0: axis name must be a non-empty"):
        next(it2)


def test_iteration_continues_after_bad_item():
    it = DataCoordinatesIterator.create([{"time": 0}, 1, {"time": 2}])
    assert next(it) == {"time": 0}
    with pytest.raises(TypeError, match=r"item 1 .*got int"):
        next(it)
    assert next(it) == {"time": 2}
    assert it.num_produced == 2


def test_infinite_generator_never_materialised():
    def gen():
        for i in itertools.count():
            yield {"time": i, "channel": "DAPI"}

    it = DataCoordinatesIterator.create(gen())
    assert it.is_finite() is False
    assert it.known_length() is None
    taken = list(itertools.islice(it, 1000))
    assert len(taken) == 1000
    assert taken[0] == {"time": 0, "channel": "DAPI"}
    assert taken[-1] == DataCoordinates(time=999, channel="DAPI")
    assert it.num_produced == 1000
    assert not it.exhausted
    # unknown/infinite source: cannot rule anything out
    assert it.might_produce({"time": 1000, "channel": "DAPI"})
    assert it.might_produce(DataCoordinates(time=5, channel="DAPI"))
    # bounded memory: no record of everything consumed is kept
    assert it._seen is None
    assert it.has_been_produced({"time": 999, "channel": "DAPI"})
    assert not it.has_been_produced({"time": 1000, "channel": "DAPI"})
    # still going
    assert next(it) == {"time": 1000, "channel": "DAPI"}


def test_itertools_count_map_directly():
    it = DataCoordinatesIterator.create(map(lambda i: {"z": i}, itertools.count()))
    assert [next(it) for _ in range(3)] == [{"z": 0}, {"z": 1}, {"z": 2}]
    assert it.might_produce({"z": 0})


def test_might_produce_generator_false_after_exhaustion():
    it = DataCoordinatesIterator.create({"time": i} for i in range(3))
    assert it.might_produce({"time": 99})
    assert list(it) == [{"time": 0}, {"time": 1}, {"time": 2}]
    assert it.exhausted
    assert not it.might_produce({"time": 2})
    assert not it.might_produce({"time": 99})
    assert it.is_finite() is False


def test_might_produce_list_is_exact():
    it = DataCoordinatesIterator.create(
        [{"time": 0, "z": 0}, {"time": 0, "z": 1}, {"time": 1, "z": 0}]
    )
    assert it.might_produce({"time": 0, "z": 0})
    assert it.might_produce(DataCoordinates(z=1, time=0))
    assert not it.might_produce({"time": 0})  # exact match, not subset
    assert not it.might_produce({"time": 2, "z": 0})
    next(it)
    assert not it.might_produce({"time": 0, "z": 0})  # already consumed
    assert it.might_produce({"time": 0, "z": 1})
    next(it)
    next(it)
    assert not it.might_produce({"time": 1, "z": 0})


def test_might_produce_coordinates_finite_is_exact_over_whole_source():
    it = DataCoordinatesIterator.create(
        [{"time": 0, "z": 0}, DataCoordinates(time=0, z=1), {"time": True}, 5]
    )
    assert it.might_produce_coordinates({"time": 0, "z": 0}) is True
    assert it.might_produce_coordinates(DataCoordinates(z=1, time=0)) is True
    assert it.might_produce_coordinates({"time": 0}) is False  # exact, not subset
    assert it.might_produce_coordinates({"time": 1}) is False  # bad item skipped
    next(it)
    # unlike might_produce, consumed items still count: the source holds them
    assert it.might_produce_coordinates({"time": 0, "z": 0}) is True
    assert not it.might_produce({"time": 0, "z": 0})


def test_might_produce_coordinates_unknown_source_is_none():
    it = DataCoordinatesIterator.create({"time": i} for i in range(2))
    assert it.might_produce_coordinates({"time": 0}) is None
    assert list(it) == [{"time": 0}, {"time": 1}]
    assert it.might_produce_coordinates({"time": 0}) is None
    with pytest.raises(TypeError, match=r"expected a dict or DataCoordinates"):
        it.might_produce_coordinates(0)  # type: ignore[arg-type]


def test_might_produce_ignores_items_that_would_fail():
    it = DataCoordinatesIterator.create([{"time": True}, 5])
    assert not it.might_produce({"time": 1})


def test_might_produce_and_has_been_produced_validate_argument():
    it = DataCoordinatesIterator.create([{"time": 0}])
    with pytest.raises(TypeError, match=r"expected a dict or DataCoordinates, got int"):
        it.might_produce(3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"expected a dict or DataCoordinates, got list"
    ):
        it.has_been_produced([("time", 0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"value for axis 'time'.*got bool"):
        it.might_produce({"time": True})


def test_has_been_produced_finite_is_exact():
    it = DataCoordinatesIterator.create([{"time": 0}, {"time": 1}, {"time": 2}])
    assert not it.has_been_produced({"time": 0})
    next(it)
    next(it)
    assert it.has_been_produced({"time": 0})
    assert it.has_been_produced(DataCoordinates(time=1))
    assert not it.has_been_produced({"time": 2})
    next(it)
    assert it.has_been_produced({"time": 2})
    assert not it.has_been_produced({"time": 3})


def test_has_been_produced_not_fooled_by_mutating_yielded_item():
    it = DataCoordinatesIterator.create([{"time": 0}])
    c = next(it)
    c.time = 42
    assert it.has_been_produced({"time": 0})
    assert not it.has_been_produced({"time": 42})


def test_has_been_produced_generator_remembers_only_last():
    it = DataCoordinatesIterator.create({"time": i} for i in range(3))
    assert not it.has_been_produced({"time": 0})
    next(it)
    assert it.has_been_produced({"time": 0})
    next(it)
    assert it.has_been_produced({"time": 1})
    # documented false negative for unknown-length sources
    assert not it.has_been_produced({"time": 0})


def test_iterator_repr():
    it = DataCoordinatesIterator.create([{"time": 0}])
    assert repr(it) == "DataCoordinatesIterator(length 1, produced 0)"
    list(it)
    assert repr(it) == "DataCoordinatesIterator(length 1, produced 1, exhausted)"
    gen_it = DataCoordinatesIterator.create(iter([{"time": 0}]))
    assert repr(gen_it) == "DataCoordinatesIterator(unknown length, produced 0)"


# --------------------------------------------------------------------------
# ExEngine's documented contract and its own tests
# --------------------------------------------------------------------------


def test_documented_usage_example():
    coords = DataCoordinates(time=3, channel="DAPI", z=5)
    assert coords.time == 3
    assert coords["channel"] == "DAPI"
    coords.position = 2
    assert dict(coords) == {"time": 3, "channel": "DAPI", "z": 5, "position": 2}
    assert list(dict(coords)) == ["time", "channel", "z", "position"]


def test_documented_iterator_example():
    finite_iter = DataCoordinatesIterator.create(
        [
            {"time": 0, "channel": "DAPI"},
            {"time": 1, "channel": "DAPI"},
            {"time": 2, "channel": "DAPI"},
        ]
    )
    assert finite_iter.is_finite()
    assert [c.time for c in finite_iter] == [0, 1, 2]

    def infinite_coords():
        for i in itertools.count():
            yield {"time": i}

    infinite_iter = DataCoordinatesIterator.create(infinite_coords())
    assert not infinite_iter.is_finite()
    assert list(itertools.islice(infinite_iter, 3)) == [{"time": i} for i in range(3)]


def test_mmapp_data_exports_every_public_coordinates_name():
    defined_here = {
        name
        for name, obj in vars(coordinates).items()
        if not name.startswith("_")
        and getattr(obj, "__module__", None) == coordinates.__name__
    }
    assert defined_here <= set(coordinates.__all__)
    assert "AxisValue" in coordinates.__all__
    for name in coordinates.__all__:
        assert name in mmapp.data.__all__
        assert getattr(mmapp.data, name) is getattr(coordinates, name)


EXENGINE_TESTS_ENV = "MMAPP_EXENGINE_TESTS"
"""Path to ExEngine's ``kernel/test/test_data_coords.py``, or a folder holding
it (e.g. an unpacked ``exengine`` sdist); otherwise an installed ``exengine``
is looked in."""


def _find_exengine_coordinate_tests() -> Path | None:
    """ExEngine's own DataCoordinates tests, if they are on this machine."""
    given = os.environ.get(EXENGINE_TESTS_ENV)
    if given:
        path = Path(given)
        if path.is_dir():
            return next(
                iter(sorted(path.rglob("kernel/test/test_data_coords.py"))), None
            )
        return path if path.is_file() else None
    try:
        spec = importlib.util.find_spec("exengine")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location, "kernel", "test", "test_data_coords.py")
        if candidate.is_file():
            return candidate
    return None


def _load_with_mmapp_classes(path: Path) -> types.ModuleType:
    """Import ExEngine's test file, unchanged, its ``exengine`` import -> mmapp.data."""
    shim = {
        name: types.ModuleType(name)
        for name in ("exengine", "exengine.kernel", "exengine.kernel.data_coords")
    }
    shim["exengine.kernel.data_coords"].DataCoordinates = DataCoordinates
    shim[
        "exengine.kernel.data_coords"
    ].DataCoordinatesIterator = DataCoordinatesIterator
    saved = {name: sys.modules.get(name) for name in shim}
    sys.modules.update(shim)
    try:
        spec = importlib.util.spec_from_file_location("exengine_data_coords", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


_EXENGINE_TESTS_PATH = _find_exengine_coordinate_tests()
_EXENGINE_TESTS = (
    _load_with_mmapp_classes(_EXENGINE_TESTS_PATH) if _EXENGINE_TESTS_PATH else None
)
_EXENGINE_TEST_NAMES = [
    name
    for name, obj in vars(_EXENGINE_TESTS or types.ModuleType("none")).items()
    if name.startswith("test_") and callable(obj)
]


@pytest.mark.parametrize(
    "name",
    _EXENGINE_TEST_NAMES
    or [
        pytest.param(
            "",
            marks=pytest.mark.skip(
                reason="ExEngine's kernel/test/test_data_coords.py is not on this "
                f"machine: set {EXENGINE_TESTS_ENV} to it (or to an unpacked exengine "
                "sdist) or install exengine"
            ),
        )
    ],
)
def test_exengine_own_coordinate_tests_pass_against_mmapp(name):
    getattr(_EXENGINE_TESTS, name)()
