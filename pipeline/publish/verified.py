"""Publishing profiles from the agent that changed them: write, then verify.

Whatever changes a profile (a stitch batch, a privacy delete, an operator's change)
publishes it itself, once its Redis call is done: one render per profile id and batch
(the batch's updates are coalesced), read with the graph version it shows. Two
writers may publish one id at once: two workers whose batches touch one profile (a
merge across channel partitions, partitions moving in a rebalance), two batches of one
worker whose publishing overlaps, a privacy request beside them. The guarantee of the
compacted topic (the last record of a key is the current state) is kept by checking,
once the broker acknowledged the records, that Redis still holds the versions sent:
each id whose version differs (a document since deleted: a tombstone) is published
again and checked again, until none differs.

Why it holds. Say my record of profile P, of version v, landed at t1, and at t2 > t1
Redis still holds v. Any later version is made after t2, and its writer reads P after
making it, so after t2 > t1: its record is sent after mine has landed, so it lands
after mine. Mine is stale only while no later record exists, and then Redis holds v.
If at t2 Redis holds another version, my record may be the stale one: I publish what
Redis holds now and check that in turn.

Two workers, A and B: A's batch makes v5 of P and B's then makes v6. A reads v6 (it
rendered late) or v5; B reads v6. Whatever order the records land in, whoever's
record of v5 lands finds v6 in Redis when it checks, and publishes v6 again; a record
of v6 checks out. The last record is v6 either way.

The rounds are not cut off: each round that finds another version needs P to have
changed between that round's read and its check, a few milliseconds. A worker that
stopped chasing would leave its record stale whenever the writer of the newer version
had landed and checked its own record before mine landed: that writer verifies only
its own records. So after ``BACK_TO_BACK`` rounds the rounds go on with a pause between
them (doubling up to ``MAX_PAUSE_S``), logged. They end: the writers that keep
changing P are batches whose own publishing holds their agent's next-but-one batch
(``InOrderAcks``), so their changes stop within two batches unless P is quiet first.
A batch is acknowledged only once its profiles are published and verified.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from pipeline import metrics
from pipeline.identity.commands import GraphStore
from pipeline.notes import UpdateNote
from pipeline.publish.profiles import Publication, Publisher
from pipeline.publish.sender import Sender
from pipeline.retry import until_redis_answers

log = logging.getLogger(__name__)
BACK_TO_BACK = 3  # rounds of publishing again before pausing between them
FIRST_PAUSE_S, MAX_PAUSE_S = 0.05, 1.0


class VerifiedPublisher:
    def __init__(self, publisher: Publisher, sender: Sender, store: GraphStore) -> None:
        self.publisher = publisher
        self.sender = sender
        self.store = store

    async def publish(self, notes: Mapping[str, UpdateNote]) -> None:
        """Publish the profiles ``notes`` name, then again while Redis holds other
        versions than those sent; returns once the last records sent check out."""
        if not notes:
            return
        sent = await self._send(list(notes))
        Publisher.observe(sent, notes)
        rounds, pause = 0, FIRST_PAUSE_S
        while stale := await self._stale(sent):
            rounds += 1
            metrics.PROFILES_REPUBLISHED.inc(len(stale))
            if rounds > BACK_TO_BACK:
                log.warning(
                    "%d profiles changed again while being published, %d rounds in a row; "
                    "publishing them again in %.2f s",
                    len(stale),
                    rounds,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(2 * pause, MAX_PAUSE_S)
            sent = await self._send(stale)
            Publisher.count(sent)

    async def _send(self, profile_ids: Sequence[str]) -> list[Publication]:
        """Render and send; returns what was sent once the broker has it."""
        publications = self.sender.publishable(await self.publisher.render(profile_ids))
        await (await self.sender.queue_publications(publications))
        return publications

    async def _stale(self, sent: Sequence[Publication]) -> list[str]:
        """The ids of ``sent`` whose version in Redis is not the one sent."""
        if not sent:
            return []
        ids = [p.profile_id for p in sent]
        current = await until_redis_answers("versions", lambda: self.store.versions(ids))
        return [p.profile_id for p, v in zip(sent, current, strict=True) if v != p.version]
