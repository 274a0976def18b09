"""flatten_attributes / unflatten_attributes: dotted paths, escapes, round trips."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest import flatten_attributes, unflatten_attributes
from pipeline.ingest.attributes import escape_key, split_path


def test_nested_objects_become_dotted_paths() -> None:
    attrs = {
        "firstName": "Evan",
        "loyalty": {"tier": "gold", "points": {"2026": 10}},
        "tags": ["a", {"b": 1}],
        "prefs": {},
        "none": None,
    }
    assert flatten_attributes(attrs) == {
        "firstName": "Evan",
        "loyalty.tier": "gold",
        "loyalty.points.2026": 10,
        "tags": ["a", {"b": 1}],  # lists are leaves
        "prefs": {},  # an empty object is a leaf
        "none": None,
    }


def test_dots_and_backslashes_in_keys_are_escaped() -> None:
    flat = flatten_attributes({"a.b": 1, "a": {"b": 2}, "c\\": {"d": 3}, "": {"": 4}})
    assert flat == {"a\\.b": 1, "a.b": 2, "c\\\\.d": 3, ".": 4}
    assert split_path("c\\\\.d") == ["c\\", "d"]


def test_later_path_wins_where_one_is_a_prefix_of_another() -> None:
    assert unflatten_attributes({"a": 1, "a.b": 2}) == {"a": {"b": 2}}
    assert unflatten_attributes({"a.b": 2, "a": 1}) == {"a": 1}


def test_unflatten_does_not_write_into_its_input() -> None:
    empty: dict[str, Any] = {}
    assert unflatten_attributes({"a": empty, "a.b": 1}) == {"a": {"b": 1}}
    assert empty == {}


keys = st.text(alphabet="ab.\\", max_size=4)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_round_trip(attrs: dict[str, Any]) -> None:
    flat = flatten_attributes(attrs)
    assert unflatten_attributes(flat) == attrs
    assert all(not isinstance(v, dict) or not v for v in flat.values())


@settings(max_examples=500, deadline=None)
@given(st.lists(keys, min_size=1, max_size=4))
def test_split_path_inverts_escaping(parts: list[str]) -> None:
    """Paths with and without escapes (split without walking their characters)."""
    assert split_path(".".join(escape_key(part) for part in parts)) == parts
