"""A bounded store of results worth keeping between events (normalised identities,
decoded timeline summaries): emptied when full, which costs one recomputation per entry
still in use, where an LRU's bookkeeping would cost every hit."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(dict[K, V]):
    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = most

    def keep(self, key: K, value: V) -> V:
        """Stores and returns ``value``; the store is emptied first if it is full."""
        if len(self) >= self.most:
            self.clear()
        self[key] = value
        return value
