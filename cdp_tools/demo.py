"""``make demo``: the whole path on one machine, from sample events to unified profiles."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from cdp_tools.produce import produce
from cdp_tools.quiesce import wait_caught_up
from cdp_tools.sample import FAMILY_TABLET, JUNK_EMAIL, SampleGenerator
from cdp_tools.stack import control
from cdp_tools.stack.errors import StackError
from cdp_tools.workerproc import WorkerProcess
from pipeline.publish.reader import latest_by_key, read_to_end
from pipeline.settings import Settings, Topics

CUSTOMERS = 200


def _holding(profiles: dict[str, Any], key: str) -> dict[str, Any]:
    return next(
        d
        for d in profiles.values()
        if key in {f"{i['namespace']}:{i['id']}" for i in d["identities"]}
    )


def _metric_lines(worker: WorkerProcess, name: str) -> list[str]:
    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def _show(document: dict[str, Any]) -> str:
    ids = ", ".join(f"{i['namespace']}:{i['id']}" for i in document["identities"])
    channels = ", ".join(f"{c} {n}" for c, n in document["events"].get("by_channel", {}).items())
    return (
        f"  {document['profile_id']}  v{document['version']}  {len(document['identities'])} "
        f"identities, {document['events']['count']} events ({channels})\n"
        f"    identities: {ids}\n"
        f"    attributes: {json.dumps(document['attributes'], ensure_ascii=False)}"
    )


async def _feed_and_read(settings: Settings) -> tuple[int, dict[str, Any], Counter[str], float]:
    topics = Topics(settings.topic_prefix)
    generator = SampleGenerator(CUSTOMERS, seed=7, start_ms=int(time.time() * 1000) - 6 * 3600_000)
    events = list(generator.events())
    started = time.monotonic()
    sent = await produce(settings, events)
    print(
        f"produced {sent} events for {CUSTOMERS} customers over "
        f"{len({c for c, _ in events})} channels; waiting for the pipeline to catch up..."
    )
    await wait_caught_up(settings, timeout_s=180)
    elapsed = time.monotonic() - started
    view = await latest_by_key(settings, topics.profiles)
    reasons: Counter[str] = Counter()
    async for record in read_to_end(settings, topics.deadletter, decoded=False):
        reasons[record.headers.get("cdp-reason", b"?").decode()] += 1
    return sent, view, reasons, elapsed


def _serve_until_interrupted(settings: Settings) -> None:
    """With --stay, the stack and the worker stay up for the profile viewer."""
    query = urllib.parse.urlencode({"namespace": "device_id", "id": FAMILY_TABLET})
    url = f"http://{settings.http_host}:{settings.http_port}/ui/?{query}"
    print(f"\n== the profile viewer, on the family tablet's profile:\n  {url}")
    print("(the stack and the worker stay up; Ctrl-C stops them)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping...")


def run_demo(settings: Settings, stay: bool = False) -> int:
    state = Path(settings.state_dir)
    try:
        control.up(fresh=True)
    except StackError as error:
        print(f"error: {error}")
        return 2
    worker = WorkerProcess(settings.http_port, state / "logs" / "demo-worker.log")
    try:
        worker.start()
        print(f"worker starting (log: {worker.log_path})...")
        worker.wait_ready()
        sent, view, reasons, elapsed = asyncio.run(_feed_and_read(settings))
        profiles = {k: v for k, v in view.items() if v is not None}
        tombstones = len(view) - len(profiles)
        print(
            f"\n== summary: {sent} events in, {len(profiles)} profiles out "
            f"({tombstones} tombstoned ids), {sum(reasons.values())} dead letters "
            f"{dict(reasons)}, caught up in {elapsed:.1f}s"
        )
        richest = sorted(profiles.values(), key=lambda d: -len(d["identities"]))
        print(
            f"\n== the family tablet ({FAMILY_TABLET}) was used by a parent, then a child; "
            f"it follows the last login (CONTRACT 4.2):"
        )
        for crm in ("CRM100000", "CRM100001"):
            document = _holding(profiles, f"crm_id:{crm}")
            has = any(i["id"] == FAMILY_TABLET for i in document["identities"])
            print(f"{_show(document)}\n    holds the tablet: {'yes' if has else 'no'}")
        dropped = _metric_lines(worker, "cdp_identities_dropped_total")
        print(f"\n== identities left out of events (junk values such as {JUNK_EMAIL}):")
        print("\n".join(f"  {line}" for line in dropped) or "  none")
        print("\n== a few unified profiles from the compacted topic cdp.profiles:")
        for document in richest[:3]:
            print(_show(document))
        # `make demo` ends by itself (the contract's section 1), also in a terminal.
        if stay:
            _serve_until_interrupted(settings)
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"error: {error}\n--- worker log ---\n{worker.tail()}")
        return 1
    finally:
        worker.stop()
        control.down()
