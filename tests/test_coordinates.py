"""Tests for mmapp.data.coordinates."""

from __future__ import annotations

import copy
import itertools
import operator
import pickle
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmapp.data.coordinates import DataCoordinates, DataCoordinatesIterator

# --------------------------------------------------------------------------
# DataCoordinates: construction and validation
# --------------------------------------------------------------------------


def test_kwargs_construction_preserves_order():
    c = DataCoordinates(time=3, channel="DAPI", z=5)
    assert list(c) == ["time", "channel", "z"]
    assert dict(c) == {"time": 3, "channel": "DAPI", "z": 5}


def test_mapping_construction_plus_kwargs():
    c = DataCoordinates({"time": 3}, z=1)
    assert list(c.items()) == [("time", 3), ("z", 1)]
    # keyword wins over the mapping, like dict(mapping, **kwargs)
    assert DataCoordinates({"time": 3}, time=4).time == 4


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
    with pytest.raises(TypeError, match=r"must be a mapping, got list"):
        DataCoordinates([("time", 1)])  # type: ignore[arg-type]


def test_axis_named_coords_is_allowed_as_keyword():
    assert DataCoordinates(coords=1)["coords"] == 1


@pytest.mark.parametrize("value", [True, False])
def test_bool_value_rejected(value):
    with pytest.raises(
        TypeError, match=rf"value for axis 'time' must be int or str, got bool: {value}"
    ):
        DataCoordinates(time=value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(1.5, "float"), (None, "NoneType"), ([1], "list"), (np.float64(2.0), "float64")],
)
def test_bad_value_type_rejected(value, type_name):
    with pytest.raises(
        TypeError, match=rf"value for axis 'z' must be int or str, got {type_name}"
    ):
        DataCoordinates(z=value)


def test_bad_value_message_contains_value():
    with pytest.raises(TypeError, match=r"got float: 1\.5"):
        DataCoordinates(z=1.5)


def test_numpy_bool_rejected():
    with pytest.raises(TypeError, match=r"value for axis 'z' must be int or str"):
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
    with pytest.raises(TypeError, match=r"value for axis 'position'.*got bool"):
        c.position = True
    with pytest.raises(TypeError, match=r"value for axis 'z'.*got float"):
        c["z"] = 1.0
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
    with pytest.raises(TypeError, match=r"value for axis 'p'"):
        c.update(p=1.0)
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
    assert it.is_finite is True
    assert it.known_length() == 1
    items = list(it)
    assert items == [DataCoordinates(time=1)]
    assert all(isinstance(i, DataCoordinates) for i in items)


@pytest.mark.parametrize("container", [list, tuple])
def test_create_from_list_or_tuple(container):
    src = container([{"time": 0}, DataCoordinates(time=1), {"time": 2, "z": 1}])
    it = DataCoordinatesIterator.create(src)
    assert it.is_finite is True
    assert it.known_length() == 3
    assert operator.length_hint(it) == 3
    assert iter(it) is it
    assert isinstance(it, Iterator)
    first = next(it)
    assert first == {"time": 0}
    assert isinstance(first, DataCoordinates)
    assert operator.length_hint(it) == 2
    assert list(it) == [{"time": 1}, {"time": 2, "z": 1}]
    assert it.exhausted
    assert it.num_produced == 3
    assert operator.length_hint(it) == 0
    assert it.known_length() == 3
    with pytest.raises(StopIteration):
        next(it)


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
    assert it.is_finite is None
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
    with pytest.raises(TypeError, match=r"item 1: value for axis 'time'.*got bool"):
        next(it)
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
    assert it.is_finite is None
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
    assert it.is_finite is None


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
    list(it)
    assert not it.might_produce({"time": 1, "z": 0})


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
