"""``cdp bench stages``: CPU per event of the worker's own Python stages, in-process, with
no Kafka or Redis: ingest (``parse_event``, then the stitch call's form of the event, as
the stitch stage does) over the e2e bench's events, and the profile document (assemble,
then encode) of profiles shaped as the e2e bench leaves them.

Process CPU time, best and median of several rounds: run it paired with the code it is
compared with, as the machine's load moves every figure.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgpack

from cdp_tools.bench.e2e import CHANNELS, _events
from pipeline.identity.config import IdentityConfig, load
from pipeline.identity.replies import AttributeValue, Member, RawProfile
from pipeline.ingest import parse_event
from pipeline.profile.assemble import assemble
from pipeline.publish.encode import encode
from pipeline.records import Record
from pipeline.settings import Topics
from pipeline.stages.stitch import to_stitch_event
from pipeline.timefmt import iso_ms

T = TypeVar("T")
MAX_BYTES = 1 << 20


def records(n: int, start_ms: int) -> list[Record]:
    """The e2e bench's burst as the worker consumes it (JSON, ``cdp_tools.produce``'s
    default), one topic per channel."""
    topics = Topics("bench.")
    return [
        Record(topics.events(channel), 0, i, None, encode(event, "json"))
        for i, (channel, event) in enumerate(_events(n, max(1, n // 10), start_ms, "s"))
    ]


def profile(person: int, events: int, people: int, start_ms: int) -> RawProfile:
    """What Redis holds for a bench person after ``events`` of their events: their CRM id
    and two cookies, attribute ``n`` of the latest event (all a person's events come on one
    channel), a summary per event, newest first."""
    seen = [person + people * k for k in range(events)]  # the bench's event numbers
    last = seen[-1]
    channel = CHANNELS[person % len(CHANNELS)]
    summaries = [
        (start_ms + i, msgpack.packb(_summary(i, start_ms + i, channel))) for i in reversed(seen)
    ]
    crm = f"crm_id:Bs-{person}"
    cookies = [f"ecid:bc-s-{person + people * k}" for k in (0, 1)]
    return RawProfile(
        profile_id=f"p_{person:010x}",
        version=events,
        updated_at_ms=start_ms + last,
        members=[Member(key, start_ms + person, start_ms + last) for key in [crm, *cookies]],
        attributes=[AttributeValue("n", channel, msgpack.packb(last), start_ms + last, last, crm)],
        recent=summaries,
        count=events,
        counts_by_type={"bench": events},
        counts_by_channel={channel: events},
    )


def _summary(i: int, ts: int, channel: str) -> dict[str, Any]:
    event_id, timestamp = f"bench-s-{i}", iso_ms(ts)
    return {"event_id": event_id, "timestamp": timestamp, "channel": channel, "type": "bench"}


def cpu_us(work: Callable[[T], Any], items: Sequence[T], rounds: int) -> list[float]:
    """Process CPU microseconds per item of each round over all ``items``."""
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        for item in items:
            work(item)
        spent.append((time.process_time() - started) * 1e6 / len(items))
    return spent


def _ingest(config: IdentityConfig) -> Callable[[Record], Any]:
    channel_of = Topics("bench.").channel_of

    def work(record: Record) -> Any:
        event = parse_event(
            record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            config=config,
            channel_default=channel_of(record.topic),
            max_bytes=MAX_BYTES,
        )
        return to_stitch_event(event, record)

    return work


def main(n: int, rounds: int) -> None:
    config = load()
    start_ms = int(time.time() * 1000) - 3600_000
    people = max(1, n // 10)
    # Publications come while a person's events arrive: 1 to 10 of them so far.
    profiles = [profile(p % people, 1 + p % 10, people, start_ms) for p in range(n // 5)]
    rows = {
        "ingest, per event": cpu_us(_ingest(config), records(n, start_ms), rounds),
        "assemble, per profile": cpu_us(lambda raw: assemble(raw, config), profiles, rounds),
    }
    documents = [assemble(raw, config) for raw in profiles]
    for encoding in ("msgpack", "json"):
        rows[f"encode {encoding}, per profile"] = cpu_us(
            functools.partial(encode, encoding=encoding), documents, rounds
        )
    with open("/proc/loadavg") as loadavg:
        print(f"load average {loadavg.read().split()[0]}; {rounds} rounds, CPU us:")
    for name, spent in rows.items():
        print(f"  {name:<28} best {min(spent):6.2f}  median {statistics.median(spent):6.2f}")
