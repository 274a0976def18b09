"""Rendering profiles to publish: profile ids -> their current documents or tombstones,
each with the graph version it shows (what publish/verified.py checks after sending).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import metrics
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.identity.replies import Fragment
from pipeline.kept import Kept
from pipeline.notes import Note, UpdateNote
from pipeline.profile.assemble import assemble
from pipeline.publish.encode import encode
from pipeline.retry import until_redis_answers

_CLOCKS = ("event_time", "ingest")
# Fragments of profiles published lately, by profile id, named to read.lua with each read
# of the same profile: Redis sends a fragment again only when it changed since, and of a
# timeline only the entries it gained. 4,096 profiles at most, ~18-27 MB (measured: 4.4 KB
# a bench profile of ten events, 6.6 KB with a full timeline of 20).
KEPT_PROFILES = 4096


@dataclass(frozen=True)
class Publication:
    profile_id: str
    value: bytes | None  # None is a tombstone: the id no longer exists
    document: dict[str, Any] | None
    version: int | None = None  # the graph version rendered; None with a tombstone


@dataclass(frozen=True)
class PublishSettings:
    encoding: str = "msgpack"
    policy: str = "timestamp"
    precedence: tuple[str, ...] = ()
    recent_limit: int = 20


class Publisher:
    def __init__(self, store: GraphStore, config: IdentityConfig, settings: PublishSettings):
        self.store = store
        self.config = config
        self.settings = settings
        self.kept: Kept[str, dict[str, Fragment]] = Kept(KEPT_PROFILES)

    @staticmethod
    def coalesce(notes: Sequence[Note]) -> dict[str, UpdateNote]:
        """One publication per profile id however many notes a burst brought."""
        merged: dict[str, UpdateNote] = {}
        for profile_id, note in notes:
            if profile_id in merged:
                merged[profile_id].fold(note)
            else:
                merged[profile_id] = UpdateNote(note.event_ms, note.ingest_ms)
        if folded := len(notes) - len(merged):
            metrics.UPDATES_COALESCED.inc(folded)
        return merged

    async def render(self, profile_ids: Sequence[str]) -> list[Publication]:
        kept = {k: f for pid in profile_ids for k, f in self.kept.get(pid, {}).items()}
        raws = await until_redis_answers(
            "read_profiles", lambda: self.store.read_profiles(profile_ids, kept)
        )
        s = self.settings
        publications = []
        for profile_id in profile_ids:
            raw = raws.get(profile_id)
            if raw is None:
                self.kept.pop(profile_id, None)
                publications.append(Publication(profile_id, None, None))
                continue
            self.kept.keep(profile_id, raw.fragments)
            document = assemble(
                raw,
                self.config,
                policy=s.policy,
                precedence=s.precedence,
                recent_limit=s.recent_limit,
            )
            value = encode(document, s.encoding)
            publications.append(Publication(profile_id, value, document, raw.version))
        return publications

    @staticmethod
    def count(publications: Sequence[Publication]) -> None:
        """Count what was sent (call once it is delivered)."""
        documents = sum(1 for p in publications if p.value)
        metrics.PROFILES_PUBLISHED.labels("document").inc(documents)
        metrics.PROFILES_PUBLISHED.labels("tombstone").inc(len(publications) - documents)

    @staticmethod
    def observe(publications: Sequence[Publication], notes: Mapping[str, UpdateNote]) -> None:
        """Count what was sent and how long after its events (call once it is delivered)."""
        Publisher.count(publications)
        now_ms = time.time() * 1000
        from_event, from_ingest = (metrics.EVENT_TO_PROFILE.labels(c) for c in _CLOCKS)
        for p in publications:
            note = notes[p.profile_id]
            from_event.observe(max(0, now_ms - note.event_ms) / 1000)
            from_ingest.observe(max(0, now_ms - note.ingest_ms) / 1000)
