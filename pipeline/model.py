"""The in-memory shapes that flow between the stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Separates namespace and value in an identity key; cannot occur in a namespace name.
KEY_SEP = ":"
# Merge policies of profile attributes (CONTRACT 5), per deployment or per request.
POLICIES = ("timestamp", "source_precedence")


@dataclass(frozen=True, order=True)
class Identity:
    """A normalised identity: a configured namespace and a value."""

    namespace: str
    id: str

    # Cached (in the instance's __dict__, outside the fields that compare and hash): ingest
    # hands out the same Identity for a raw value it has normalised before.
    @cached_property
    def key(self) -> str:
        """The identity's key in Redis and on the wire: ``namespace:value``."""
        return f"{self.namespace}{KEY_SEP}{self.id}"

    @classmethod
    def from_key(cls, key: str) -> Identity:
        namespace, _, value = key.partition(KEY_SEP)
        return cls(namespace, value)


@dataclass(frozen=True)
class Source:
    """Where an event came from in Kafka: named in dead letters and lineage."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class DroppedIdentity:
    """An identity left out of an event (CONTRACT 3): counted by namespace and reason."""

    namespace: str
    reason: str


@dataclass
class Event:
    """A validated, normalised event envelope (CONTRACT 3)."""

    event_id: str
    timestamp_ms: int
    kind: str  # "record" or "experience"
    channel: str
    identities: list[Identity]
    primary: Identity
    attributes: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    dropped: list[DroppedIdentity] = field(default_factory=list)

    @property
    def type(self) -> str:
        """The interaction type shown in the timeline; records show as ``record``."""
        value = self.event.get("type")
        return value if isinstance(value, str) and value else self.kind


class Rejected(Exception):
    """An input that goes to the dead-letter topic; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
