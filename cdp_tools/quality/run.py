"""``cdp bench quality``: the generator through real workers, scored from ``cdp.profiles``.

Needs Kafka and Redis (``cdp stack up``); runs on a fresh topic prefix and consumer
group. The identity graph is not prefixed: it WIPES the Redis DB at CDP_REDIS_URL first.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import redis

from cdp_tools.produce import produce
from cdp_tools.quality.generator import Dataset, generate
from cdp_tools.quality.score import Score, report, score
from cdp_tools.quiesce import wait_caught_up
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.publish.reader import latest_by_key, read_to_end
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path
from pipeline.settings import Settings, Topics

KILLS = 3


@dataclass
class Outcome:
    score: Score
    events: int  # distinct events produced
    counted: int  # sum of events.count over the profiles: each event exactly once
    dead_letters: int  # distinct events dead-lettered (e.g. only a quarantined kiosk)
    seconds: float


def delivery(events: list[Any], duplicates: bool, rng: random.Random) -> list[Any]:
    """Every event once, or twice with the second copy a little later in the stream."""
    if not duplicates:
        return list(events)
    placed = [(float(i), item) for i, item in enumerate(events)]
    placed += [(i + rng.randint(1, 200) + 0.5, item) for i, item in enumerate(events)]
    return [item for _, item in sorted(placed, key=lambda p: p[0])]


def _profiles(settings: Settings) -> list[dict[str, Any]]:
    view = asyncio.run(latest_by_key(settings, Topics(settings.topic_prefix).profiles))
    return [doc for doc in view.values() if doc]


async def _dead_letters(settings: Settings) -> int:
    """Distinct events on the dead-letter topic (a redelivered one is there twice)."""
    topic = Topics(settings.topic_prefix).deadletter
    ids = set()
    async for record in read_to_end(settings, topic, decoded=False):
        ids.add(json.loads(record.raw or b"{}").get("event_id"))
    return len(ids)


def run_through_pipeline(
    settings: Settings,
    data: Dataset,
    *,
    duplicates: bool = False,
    kill: bool = False,
    seed: int = 0,
    log_dir: Path | None = None,
    identity_config: str = "",
) -> Outcome:
    """Produce ``data`` to a fresh prefix, let one worker (two with ``kill``, one of them
    SIGKILLed and restarted three times) stitch it under ``identity_config`` (a path for
    CDP_IDENTITY_CONFIG; "" is the default), and score what ``cdp.profiles`` holds."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    s = replace(settings, topic_prefix=f"quality{tag}.", app_id=f"cdp-quality-{tag}")
    env = {
        "CDP_TOPIC_PREFIX": s.topic_prefix,
        "CDP_APP_ID": s.app_id,
        "CDP_IDENTITY_CONFIG": identity_config,
    }
    logs = log_dir or Path(s.state_dir) / "logs"

    def start(n: int) -> WorkerProcess:
        worker = WorkerProcess(free_port(), logs / f"quality-{tag}-{n}.log", env).start()
        worker.wait_ready()
        return worker

    redis.Redis.from_url(s.redis_url).flushdb()  # graphs of an earlier run would mix in
    stream = delivery(data.events, duplicates, rng)
    started = time.monotonic()
    workers = [start(0)] + ([start(1)] if kill else [])
    try:
        chunks = KILLS + 1 if kill else 1
        size = -(-len(stream) // chunks)
        for n in range(chunks):
            asyncio.run(produce(s, stream[n * size : (n + 1) * size]))
            if n < chunks - 1:
                time.sleep(rng.uniform(0.2, 1.5))
                workers[1].kill()  # SIGKILL mid-stream: no commit, no goodbye
                workers[1] = start(n + 2)
        asyncio.run(wait_caught_up(s, timeout_s=600, settle=3))
        profiles = _profiles(s)
        dead = asyncio.run(_dead_letters(s))
    finally:
        for worker in workers:
            worker.stop()
    keys = [[f"{i['namespace']}:{i['id']}" for i in doc["identities"]] for doc in profiles]
    return Outcome(
        score(keys, data.owners),
        len(data.events),
        sum(doc["events"]["count"] for doc in profiles),
        dead,
        time.monotonic() - started,
    )


# What `cdp bench quality` compares by default: CONTRACT 4.1's connected set, and the
# opt-in shared-device rule.
SHIPPED = {"default": "", "shared devices": schema_path(SHARED_DEVICES_CONFIG)}


def main(
    settings: Settings,
    people: int,
    seed: int,
    duplicates: bool,
    kill: bool,
    configs: dict[str, str] = SHIPPED,
    echo: Callable[[str], None] = print,
) -> dict[str, Outcome]:
    """One run of the same data set per identity configuration (name -> path)."""
    data = generate(people, seed, int(time.time() * 1000) - 40 * 86_400_000)
    mode = " + ".join(m for m, on in (("duplicates", duplicates), ("kill", kill)) if on)
    echo(
        f"{people} people, {len(data.events)} events over "
        f"{len({c for c, _ in data.events})} channels, seed {seed}, "
        f"delivery: {mode or 'plain'}"
    )
    outcomes = {}
    for name, path in configs.items():
        outcome = run_through_pipeline(
            settings, data, duplicates=duplicates, kill=kill, seed=seed, identity_config=path
        )
        echo(f"\n== identity configuration: {name}" + (f" ({path})" if path else ""))
        echo(report(outcome.score))
        echo(
            f"events counted     : {outcome.counted} of {outcome.events}, "
            f"{outcome.dead_letters} dead-lettered ({outcome.seconds:.0f} s)"
        )
        outcomes[name] = outcome
    return outcomes
