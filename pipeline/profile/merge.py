"""Merge policies: which stored value of an attribute path the profile shows.

Every (path, channel) keeps its latest value in Redis, so a policy is only a choice
made at read time: changing it needs no reprocessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

from pipeline.model import POLICIES


class Candidate(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def seq(self) -> int: ...


C = TypeVar("C", bound=Candidate)


def _latest_key(c: Candidate) -> tuple[int, int]:
    # seq is the global arrival order: unique, so ties never depend on read order.
    return (c.timestamp_ms, c.seq)


def _order(policy: str, precedence: Sequence[str]) -> Callable[[Candidate], tuple[int, int, int]]:
    """The policy's strength of a candidate: the larger, the stronger."""
    return _order_of(policy, tuple(precedence))


# Every document asks for the same one or two orders: made once, not per document.
@lru_cache(maxsize=64)
def _order_of(
    policy: str, precedence: tuple[str, ...]
) -> Callable[[Candidate], tuple[int, int, int]]:
    if policy not in POLICIES:
        raise ValueError(f"unknown merge policy {policy!r}; use one of {POLICIES}")
    rank = {channel: i for i, channel in enumerate(precedence)}
    unlisted = len(rank)

    def key(c: Candidate) -> tuple[int, int, int]:
        source = -rank.get(c.channel, unlisted) if policy == "source_precedence" else 0
        return (source, *_latest_key(c))

    return key


def winners(candidates: Iterable[C], policy: str, precedence: Sequence[str] = ()) -> list[C]:
    """The winning candidate of each path, weakest winner first (by the policy's order).

    ``timestamp``: the latest event time wins. ``source_precedence``: the channel
    listed first in ``precedence`` wins (unlisted channels rank after every listed
    one), the latest within that channel. Ties go to the later arrival (``seq``).
    The order matters where one winning path is a prefix of another (``a`` and
    ``a.b``): the stronger one, last, shapes the document.
    """
    key = _order(policy, precedence)
    best: dict[str, C] = {}
    for c in candidates:
        current = best.get(c.path)
        if current is None or key(c) > key(current):
            best[c.path] = c
    return sorted(best.values(), key=key)


def ranked(
    candidates: Iterable[C], policy: str, precedence: Sequence[str] = ()
) -> dict[str, list[C]]:
    """Every candidate of each path, the winner first and the losers after it, strongest
    first; paths in order."""
    key = _order(policy, precedence)
    by_path: dict[str, list[C]] = {}
    for c in candidates:
        by_path.setdefault(c.path, []).append(c)
    return {path: sorted(by_path[path], key=key, reverse=True) for path in sorted(by_path)}
