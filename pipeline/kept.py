"""A bounded store of results worth keeping between events (normalised identities,
decoded timeline summaries, a publisher's fragments), in two generations of half the
bound each: new entries go to the newer; when it is full, the older is dropped and the
newer takes its place. An entry found in the older moves to the newer, so what is still
in use survives the turn (emptying the whole store when full made every entry in use
miss at once, each time), and a hit costs a lookup or two where an LRU's bookkeeping
would cost every hit. Keys stand for their values' inputs; nothing here ever expires."""

from __future__ import annotations

from typing import Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
_ABSENT: object = object()


class Kept(Generic[K, V]):
    def __init__(self, most: int) -> None:
        self._half = max(1, most // 2)
        self._newer: dict[K, V] = {}
        self._older: dict[K, V] = {}

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: V) -> V: ...
    def get(self, key: K, default: V | None = None) -> V | None:
        """The kept value, moved to the newer generation if it was in the older."""
        found = self._newer.get(key, _ABSENT)
        if found is _ABSENT:
            found = self._older.pop(key, _ABSENT)
            if found is _ABSENT:
                return default
            self.keep(key, found)  # type: ignore[arg-type]
        return found  # type: ignore[return-value]

    def keep(self, key: K, value: V) -> V:
        """Stores and returns ``value``, in place of what ``key`` held."""
        newer = self._newer
        if len(newer) >= self._half and key not in newer:
            self._older, self._newer = newer, {}
            newer = self._newer
        newer[key] = value
        return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Forgets ``key``; its value if it was kept."""
        newer = self._newer.pop(key, _ABSENT)
        older = self._older.pop(key, _ABSENT)
        if newer is not _ABSENT:
            return newer  # type: ignore[return-value]
        return default if older is _ABSENT else older  # type: ignore[return-value]

    def clear(self) -> None:
        self._newer.clear()
        self._older.clear()
