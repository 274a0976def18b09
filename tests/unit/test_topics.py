"""The topics the pipeline owns and the configuration it creates them with (CONTRACT 2)."""

from __future__ import annotations

import re

from pipeline.settings import Topics
from pipeline.topics import owned_topics


def test_every_owned_topic_and_the_channel_pattern_follow_the_prefix() -> None:
    topics = Topics("acme-7.")
    assert all(spec.name.startswith("acme-7.") for spec in owned_topics(topics))
    pattern = re.compile(topics.events_pattern)
    assert pattern.match("acme-7.events.kiosk")
    assert not pattern.match("cdp.events.kiosk") and not pattern.match("acme-7xevents.kiosk")


def test_topics_that_name_deleted_identities_are_not_kept_for_ever() -> None:
    """Found from outside: receipts (the identities a privacy delete removed, as given)
    were compacted only, so the last receipt of every request id stayed for ever."""
    topics = Topics("cdp.")
    specs = {spec.name: spec.config for spec in owned_topics(topics)}
    for name in (topics.privacy_receipts, topics.privacy_requests, topics.deadletter):
        assert "delete" in specs[name]["cleanup.policy"].split(","), name
        assert int(specs[name]["retention.ms"]) > 0, name
