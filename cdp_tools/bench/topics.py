"""Deleting a benchmark run's topics once it is done."""

from __future__ import annotations

from pipeline.settings import Settings
from pipeline.topics import admin_client


async def drop_topics(settings: Settings, prefixes: tuple[str, ...]) -> None:
    """Delete every topic whose name starts with one of ``prefixes``. Left behind, each
    run's topics made every later run's metadata larger: a worker lists the cluster's
    topics every 2 s (channel discovery), which took 12-19 ms of CPU at 400 topics."""
    admin = admin_client(settings)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
