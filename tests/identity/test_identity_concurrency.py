"""Several clients stitch interleaved batches at once: the result equals a serial replay
of the calls in the order Redis applied them (StitchResult.call_seq)."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import Client, connect
from pipeline.identity.replies import StitchResult
from tests.identity.support import DEFAULTS, assert_same_state, make_event, without_time
from tests.model.reference import Model

# A real Redis at CDP_REDIS_URL (`make test` starts it).
pytestmark = pytest.mark.integration

CLIENTS, BATCHES, BATCH = 4, 25, 20
UNIVERSE = [
    *(f"crm_id:C{i}" for i in range(6)),
    *(f"email:u{i}@x.com" for i in range(6)),
    *(f"device_id:dev{i}" for i in range(4)),
    *(f"ecid:k{i}" for i in range(10)),
]


def batches(rng: random.Random) -> list[list[StitchEvent]]:
    out = []
    for b in range(CLIENTS * BATCHES):
        batch = []
        for n in range(BATCH):
            crm, email, other = (rng.choice(UNIVERSE[i:j]) for i, j in ((0, 6), (6, 12), (12, 26)))
            keys = rng.sample([crm, email, other], rng.randint(1, 3))
            # Some redelivery across clients: reuse an earlier event id verbatim.
            eid = f"b{rng.randrange(b + 1)}-{n}" if rng.random() < 0.1 else f"b{b}-{n}"
            batch.append(make_event(eid, rng.randrange(100) * 100, *keys))
        out.append(batch)
    return out


async def test_concurrent_clients_equal_serial_replay(client: Client, target_url: str) -> None:
    work = batches(random.Random(7))
    events = {e.event_id: e for batch in work for e in batch}  # one content per id
    work = [[events[e.event_id] for e in batch] for batch in work]
    conns = [connect(target_url) for _ in range(CLIENTS)]
    applied: list[tuple[StitchResult, list[StitchEvent]]] = []

    async def run(index: int) -> None:
        store = GraphStore(conns[index], DEFAULTS)
        for batch in work[index::CLIENTS]:
            applied.append((await store.stitch(batch), batch))

    try:
        await asyncio.gather(*(run(i) for i in range(CLIENTS)))
    finally:
        for conn in conns:
            await conn.aclose()
    model, ceased = Model(DEFAULTS), set()
    for result, batch in sorted(applied, key=lambda item: item[0].call_seq):
        want = model.stitch(batch)
        assert (result.outcomes, result.dirty, result.ceased) == (
            want.outcomes,
            want.dirty,
            want.ceased,
        )
        assert without_time(result.changes) == want.changes
        ceased |= result.ceased
    assert [r.call_seq for r, _ in sorted(applied, key=lambda i: i[0].call_seq)] == list(
        range(1, CLIENTS * BATCHES + 1)
    )
    await assert_same_state(GraphStore(client, DEFAULTS), model, UNIVERSE, ceased)
