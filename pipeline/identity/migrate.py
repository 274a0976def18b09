"""The key layout before the `{cdp}` hash tag (``cdp:<name>``) and its move to today's
(``{cdp}:<name>``): a Redis filled by an earlier version keeps its graph on upgrade.

Graph blobs of the form before shared causes (each link with its own evidence) need no
step here: every script reads them as they are, and the next call that changes a graph
writes it in today's form (lua/includes/blob.lua)."""

from __future__ import annotations

from pipeline.identity.commands import KEYSPACE
from pipeline.identity.connect import Client

OLD_PREFIX = "cdp:"
# Written by every stitch call of both layouts: where it is, a graph is.
_MARKER = "calls"
_BATCH = 1000  # renames per round trip


def new_name(old: bytes) -> bytes:
    return f"{KEYSPACE}:".encode() + old[len(OLD_PREFIX) :]


async def holds_old_layout(client: Client) -> bool:
    """Whether this Redis holds a graph in the old layout and none in today's."""
    old, new = (
        await client.exists(OLD_PREFIX + _MARKER),
        await client.exists(f"{KEYSPACE}:{_MARKER}"),
    )
    return bool(old) and not new


async def migrate(client: Client) -> int:
    """Rename every old-layout key (values and TTLs kept); returns how many. The marker
    goes last, so a run cut short still reads as the old layout and the next run
    finishes it. Run it with the workers stopped."""
    marker = (OLD_PREFIX + _MARKER).encode()
    moved = 0
    batch: list[bytes] = []

    async def rename() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.rename(key, new_name(key))
        await pipe.execute()

    async for key in client.scan_iter(match=OLD_PREFIX + "*", count=_BATCH):
        if key != marker:
            batch.append(key)
        if len(batch) == _BATCH:
            await rename()
            moved, batch = moved + len(batch), []
    if await client.exists(marker):
        batch.append(marker)
    if batch:
        await rename()
    return moved + len(batch)
