"""Write, then verify (pipeline/publish/verified.py): profiles are published again while
Redis holds other versions than those sent, with a fake Redis and producer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pipeline import metrics
from pipeline.notes import UpdateNote
from pipeline.publish import verified as verified_module
from pipeline.publish.profiles import Publication
from pipeline.publish.sender import Sender
from pipeline.publish.verified import BACK_TO_BACK, VerifiedPublisher
from pipeline.records import OUTPUT_MAX_RECORD_BYTES
from pipeline.settings import Topics


class Graphs:
    """Profile id -> version, as Redis holds them; ``changes`` are applied one per check
    (another writer changing a profile between a send and its check)."""

    def __init__(self, versions: dict[str, int], changes: Sequence[dict[str, int | None]] = ()):
        self.current: dict[str, int | None] = dict(versions)
        self.changes = list(changes)
        self.checks = 0

    async def render(self, profile_ids: Sequence[str]) -> list[Publication]:
        out = []
        for pid in profile_ids:
            v = self.current.get(pid)
            value = None if v is None else f"{pid}@{v}".encode()
            size = OUTPUT_MAX_RECORD_BYTES if pid == "huge" else 0
            out.append(Publication(pid, value + b"x" * size if value else None, None, v))
        return out

    async def versions(self, profile_ids: Sequence[str]) -> list[int | None]:
        self.checks += 1
        if self.changes:
            self.current.update(self.changes.pop(0))
        return [self.current.get(pid) for pid in profile_ids]


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes | None]] = []

    async def send_all(self, records: Sequence[tuple[str, bytes | None, bytes | None, Any]]) -> Any:
        self.sent += [(key, value) for _, key, value, _ in records]

        async def delivered() -> None:
            return None

        return delivered()


def publisher(graphs: Graphs) -> tuple[VerifiedPublisher, Producer]:
    producer = Producer()
    sender = Sender(producer, Topics("cdp."), "msgpack", OUTPUT_MAX_RECORD_BYTES)
    return VerifiedPublisher(graphs, sender, graphs), producer  # type: ignore[arg-type]


def notes(*ids: str) -> dict[str, UpdateNote]:
    return {pid: UpdateNote(1, 1) for pid in ids}


def republished() -> float:
    return metrics.REGISTRY.get_sample_value("cdp_profiles_republished_total") or 0.0


async def test_what_still_checks_out_is_sent_once() -> None:
    graphs = Graphs({"p1": 1, "p2": 4})
    verified, producer = publisher(graphs)
    await verified.publish(notes("p1", "p2", "gone"))
    assert producer.sent == [(b"p1", b"p1@1"), (b"p2", b"p2@4"), (b"gone", None)]
    assert graphs.checks == 1


async def test_a_profile_changed_after_its_read_is_sent_again_until_it_checks_out() -> None:
    graphs = Graphs({"p1": 1, "p2": 4}, changes=[{"p2": 5}, {"p2": 6}])
    verified, producer = publisher(graphs)
    before = republished()
    await verified.publish(notes("p1", "p2"))
    assert producer.sent[2:] == [(b"p2", b"p2@5"), (b"p2", b"p2@6")]  # p1 once
    assert producer.sent[-1] == (b"p2", b"p2@6") and graphs.checks == 3
    assert republished() == before + 2


async def test_a_profile_deleted_after_its_read_gets_a_tombstone_and_one_back_a_document() -> None:
    graphs = Graphs({"p1": 1, "p2": 2}, changes=[{"p1": None, "p2": None}, {"p2": 3}])
    verified, producer = publisher(graphs)
    await verified.publish(notes("p1", "p2"))
    assert producer.sent[2:] == [(b"p1", None), (b"p2", None), (b"p2", b"p2@3")]


async def test_a_document_too_large_to_send_is_not_checked() -> None:
    graphs = Graphs({"huge": 1, "p1": 1}, changes=[{"huge": 2}])
    verified, producer = publisher(graphs)
    await verified.publish(notes("huge", "p1"))
    assert producer.sent == [(b"p1", b"p1@1")] and graphs.checks == 1


async def test_rounds_go_on_past_the_back_to_back_ones_with_growing_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(verified_module.asyncio, "sleep", sleep)
    rounds = BACK_TO_BACK + 3
    graphs = Graphs({"p1": 1}, changes=[{"p1": 2 + i} for i in range(rounds)])
    verified, producer = publisher(graphs)
    await verified.publish(notes("p1"))
    assert producer.sent[-1] == (b"p1", f"p1@{rounds + 1}".encode())
    assert pauses == [0.05, 0.1, 0.2]


async def test_nothing_to_publish_reads_nothing() -> None:
    graphs = Graphs({})
    verified, producer = publisher(graphs)
    await verified.publish({})
    assert producer.sent == [] and graphs.checks == 0
