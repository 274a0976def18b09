"""The bounded store of kept results: never a value other than the last one kept for its
key, never more than its bound, and what is in use survives it filling up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.kept import Kept

OPS = st.lists(
    st.tuples(st.sampled_from(["keep", "get", "pop", "clear"]), st.integers(0, 12), st.integers()),
    max_size=200,
)


@given(most=st.integers(1, 8), ops=OPS)
def test_a_kept_value_is_the_last_one_kept_for_its_key_or_none(
    most: int, ops: list[tuple[str, int, int]]
) -> None:
    kept: Kept[int, int] = Kept(most)
    last: dict[int, int] = {}  # what a store without a bound would hold
    for op, key, value in ops:
        if op == "keep":
            assert kept.keep(key, value) == value
            last[key] = value
        elif op == "get":
            assert kept.get(key) in (None, last.get(key))
        elif op == "pop":
            assert kept.pop(key) in (None, last.pop(key, None))
        else:
            kept.clear()
            last.clear()
        assert len(kept) + len(kept._older) <= max(2, most)


def test_an_entry_in_use_survives_the_store_filling_up() -> None:
    kept: Kept[int, str] = Kept(4)
    kept.keep(0, "in use")
    for key in range(1, 100):
        kept.keep(key, "once")
        assert kept.get(0) == "in use"
    assert kept.get(1) is None and kept.get(0, "gone") == "in use"
