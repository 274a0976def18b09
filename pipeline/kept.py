"""A bounded store of results worth keeping between events (normalised identities,
decoded timeline summaries, a publisher's fragments), in two generations of half the
bound each: new entries go to the newer; when it is full, the older is dropped and the
newer takes its place. An entry found in the older moves to the newer, so what is still
in use survives the turn (emptying the whole store when full made every entry in use
miss at once, each time), and a hit costs a lookup or two where an LRU's bookkeeping
would cost every hit. Keys stand for their values' inputs; nothing here ever expires."""

from __future__ import annotations

from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(dict[K, V]):
    """The dict itself is the newer generation, so ``kept[key]`` finds an entry there at
    a dict's speed (a Python ``get`` cost a call per hit) and raises ``KeyError`` only
    when neither generation holds ``key``."""

    def __init__(self, most: int) -> None:
        super().__init__()
        self._half = max(1, most // 2)
        self._older: dict[K, V] = {}

    def __missing__(self, key: K) -> V:
        value = self._older.pop(key)  # KeyError: in neither
        return self.keep(key, value)

    def get(self, key: K, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keep(self, key: K, value: V) -> V:
        """Stores and returns ``value``, in place of what ``key`` held."""
        if len(self) >= self._half and key not in self:
            self._older = dict(self)
            super().clear()
        self[key] = value
        return value

    def pop(self, key: K, default: Any = None) -> Any:
        """Forgets ``key``; its value if it was kept."""
        older = self._older.pop(key, default)
        return super().pop(key, older)

    def clear(self) -> None:
        super().clear()
        self._older.clear()
