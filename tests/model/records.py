"""A channel record as the stitch script gets it, for feeding the reference model the
same events a worker would stitch."""

from __future__ import annotations

from pipeline.identity import config as identity_config
from pipeline.identity.arguments import StitchEvent
from pipeline.identity.config import IdentityConfig
from pipeline.ingest import parse_event
from pipeline.records import Record
from pipeline.settings import Topics
from pipeline.stages.stitch import to_stitch_event

DEFAULT_CONFIG = identity_config.load(None)


def stitch_event(
    raw: bytes,
    channel: str,
    offset: int,
    prefix: str = "cdp.",
    now_ms: int | None = None,
    config: IdentityConfig = DEFAULT_CONFIG,
) -> StitchEvent:
    """A record value of a channel topic (partition 0) as the stitch script gets it, or
    ``Rejected``."""
    topic = Topics(prefix).events(channel)
    event = parse_event(
        raw,
        topic=topic,
        partition=0,
        offset=offset,
        config=config,
        channel_default=channel,
        max_bytes=1 << 20,
        now_ms=now_ms,
    )
    return to_stitch_event(event, Record(topic, 0, offset, None, raw))
